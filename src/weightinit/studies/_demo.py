"""The demo's experiments: what initialization does to signals and to learning, measured on
scikit-learn's digits. `run_demo` returns the results dict described in docs/demo-results.md."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import __version__
from .._sync import borrowed_rng
from ..diagnose import diagnose
from ..lsuv import lsuv
from ..model import Policy, Rule, init_model
from ..schemes import Constant, Glorot, He, Normal, Orthogonal, Spec, VarianceScaling, Zeros
from ..theory import critical_point, gain
from ._digits import RECIPE, Digits, load_digits, mlp, train

Progress = Callable[[str], None]
"""Called with the name of each step as it starts."""

DEPTH_INITS = ("N(0, 0.01)", "N(0, 1)", "Glorot", "He", "torch default", "auto", "LSUV")
TRAIN_INITS = ("zeros", "torch default", "N(0, 0.01)", "Glorot", "He", "orthogonal", "auto",
               "LSUV")
QUICK_TRAIN_INITS = ("zeros", "torch default", "auto")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def _weights_only(spec: Spec, name: str) -> Policy:
    """`spec` on every weight, zero biases: the classic per-layer schemes."""
    return Policy([Rule(spec, role=["linear.weight", "conv.weight"]),
                   Rule(Zeros(), role="*.bias")], name=name)


_SCHEMES: dict[str, Spec] = {
    "zeros": Zeros(), "constant 0.01": Constant(0.01), "N(0, 0.01)": Normal(std=0.01),
    "N(0, 1)": Normal(std=1.0), "Glorot": Glorot(), "He": He(),
    "orthogonal": Orthogonal(gain=math.sqrt(2.0)),
}


def initialize(model: nn.Module, name: str, batch: torch.Tensor, seed: int) -> nn.Module:
    """Apply the named initialization (keyed streams: the same seed gives the same bits)."""
    if name == "auto":
        init_model(model, seed=seed)
    elif name == "torch default":
        init_model(model, "torch", seed=seed)  # torch's constructors, in distribution
    elif name == "LSUV":
        lsuv(model, batch, seed=seed)
    else:
        init_model(model, _weights_only(_SCHEMES[name], name), seed=seed)
    return model


def _per_layer(values: list[float], *, square: bool) -> float:
    """Geometric growth per layer from the first value to the last (squared: variance)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 2 or finite[0] <= 0:
        return math.nan
    if finite[-1] <= 0:
        return 0.0
    growth = float((finite[-1] / finite[0]) ** (1.0 / (len(finite) - 1)))
    return growth * growth if square else growth


def _profile(model: nn.Module, batch: torch.Tensor) -> dict[str, Any]:
    diagnosis = diagnose(model, batch)
    linears = [x for x in diagnosis.layers if x.layer == "Linear"]
    std = [x.out_std for x in linears]
    grad = [x.grad_out_rms if x.grad_out_rms is not None else math.nan for x in linears]
    return {"std": std, "grad": grad, "variance_per_layer": _per_layer(std, square=True),
            "healthy": diagnosis.healthy}


def _unit_distance(model: nn.Sequential) -> tuple[float, str]:
    """Max pairwise distance between the weight rows (units) of the middle hidden layer."""
    linears = [(name, m) for name, m in model.named_children() if isinstance(m, nn.Linear)]
    name, layer = linears[len(linears) // 2]
    rows = layer.weight.detach().double()
    return float(torch.cdist(rows, rows).max()), name


def demo_steps(quick: bool = False) -> int:
    """How many times `run_demo` calls `progress`."""
    profiles = 3 if quick else len(DEPTH_INITS) * len(ACTIVATIONS)  # quick: ReLU only
    training = len(QUICK_TRAIN_INITS) if quick else len(TRAIN_INITS) + 1  # + the constant
    return profiles + training + 2


def run_demo(*, seed: int = 0, quick: bool = False, progress: Progress | None = None
             ) -> dict[str, Any]:
    """Run every experiment of the demo; one torch thread and the global RNG as they were
    afterwards (nn.Linear's constructor draws from it; the keyed inits replace those values)."""
    start = time.perf_counter()
    step = progress or (lambda name: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with borrowed_rng():
            results = _experiments(seed, quick, step)
    finally:
        torch.set_num_threads(threads)
    results["seconds"] = time.perf_counter() - start
    results["findings"] = _findings(results)
    return results


def _experiments(seed: int, quick: bool, step: Progress) -> dict[str, Any]:
    data = load_digits(seed=seed)
    batch = data.x_train[:512]
    results: dict[str, Any] = {"seed": seed, "quick": quick, "torch": torch.__version__,
                               "weightinit": __version__}
    results["depth"] = _depth_study(batch, seed, quick, step)
    results["training"] = _training_study(data, batch, seed, quick, step)
    results["symmetry"] = _symmetry_study(data, batch, seed, quick, step,
                                          results["training"])
    results["beyond_relu"] = _beyond_relu(batch, seed, quick, step)
    return results


def _depth_study(batch: torch.Tensor, seed: int, quick: bool, step: Progress) -> dict[str, Any]:
    depth, width = 30, 128
    inits = ("N(0, 0.01)", "Glorot", "auto") if quick else DEPTH_INITS
    activations: dict[str, Any] = {}
    for act_name, act in ACTIVATIONS.items():
        if quick and act_name != "relu":
            continue
        activations[act_name] = {}
        for name in inits:
            step(f"signal: {act_name}, {name}")
            model = mlp(depth, width, act, d_in=batch.shape[1])
            activations[act_name][name] = _profile(initialize(model, name, batch, seed), batch)
    return {"depth": depth, "width": width, "batch": int(batch.shape[0]),
            "activations": activations}


def _training_study(data: Digits, batch: torch.Tensor, seed: int, quick: bool,
                    step: Progress) -> dict[str, Any]:
    depth, width = 20, 64
    epochs = 12 if quick else int(RECIPE["epochs"])
    runs: dict[str, Any] = {}
    models: dict[str, nn.Module] = {}
    for name in QUICK_TRAIN_INITS if quick else TRAIN_INITS:
        step(f"training: {name}")
        model = initialize(mlp(depth, width), name, batch, seed)
        result = train(model, data, epochs=epochs, seed=seed)
        runs[name] = {"test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
                      "losses": list(result.losses)}
        models[name] = model
    recipe = dict(RECIPE, epochs=epochs)
    return {"depth": depth, "width": width, "recipe": recipe, "runs": runs, "_models": models}


def _symmetry_study(data: Digits, batch: torch.Tensor, seed: int, quick: bool, step: Progress,
                    training: dict[str, Any]) -> dict[str, Any]:
    models = training.pop("_models")
    runs: dict[str, Any] = {}
    for name in ("zeros", "constant 0.01", "auto"):
        if name in models:
            model = models[name]
            accuracy = training["runs"][name]["test_accuracy"]
        elif not quick:
            step(f"training: {name}")
            model = initialize(mlp(training["depth"], training["width"]), name, batch, seed)
            accuracy = train(model, data, epochs=training["recipe"]["epochs"],
                             seed=seed).test_accuracy
        else:
            continue
        distance, layer = _unit_distance(model)
        runs[name] = {"max_unit_distance": distance, "layer": layer, "test_accuracy": accuracy}
    return {"depth": training["depth"], "width": training["width"], "runs": runs}


def _beyond_relu(batch: torch.Tensor, seed: int, quick: bool, step: Progress
                 ) -> dict[str, Any]:
    depth, width = 30, 128
    step("beyond ReLU: GELU gains")
    relu_gain, gelu_gain = gain("relu"), gain("gelu")
    gains = {}
    for label, g in ((f"relu's gain {relu_gain:.3f}", relu_gain),
                     (f"computed {gelu_gain:.3f}", gelu_gain)):
        # "auto" everywhere (LeCun on the data), with the gain under test where GELU feeds.
        model = mlp(depth, width, nn.GELU, d_in=batch.shape[1])
        policy = Policy([Rule(VarianceScaling(scale=g * g, mode="fan_in", distribution="normal"),
                              role="linear.weight", activation="gelu"),
                         Policy.preset("auto")], name=label)
        init_model(model, policy, seed=seed)
        profile = _profile(model, batch)
        # Over the first 10 layers: q = 1 is the computed gain's fixed point, but an unstable
        # one for GELU (the slope of q -> sigma^2 E[gelu(sqrt(q) z)^2] there is above 1), so
        # finite-width noise moves a deep net off it; the whole-depth rate says how far.
        gains[label] = {"std": profile["std"],
                        "variance_per_layer": _per_layer(profile["std"][:10], square=True),
                        "variance_per_layer_all": _per_layer(profile["std"], square=True)}
    step("beyond ReLU: tanh at the critical point")
    bias_std, tanh_depth = 0.05, 20 if quick else 50
    star = critical_point("tanh", bias_std=bias_std).weight_std
    runs = {}
    for label, factor in (("0.5 x critical", 0.5), ("critical", 1.0), ("2 x critical", 2.0)):
        model = mlp(tanh_depth, width, nn.Tanh, d_in=batch.shape[1])
        sigma = factor * star
        policy = Policy([Rule(VarianceScaling(scale=sigma * sigma, mode="fan_in",
                                              distribution="normal"), role="linear.weight"),
                         Rule(Normal(std=bias_std), role="linear.bias")], name=label)
        init_model(model, policy, seed=seed)
        profile = _profile(model, batch)
        # Hidden layers only: the output layer (10 units) and the data-fed first layer
        # are boundaries, not the recurrence chi_1 describes.
        runs[label] = {"std": profile["std"], "grad": profile["grad"],
                       "grad_per_layer": _per_layer(profile["grad"][1:-1][::-1], square=False)}
    return {"gelu": {"depth": depth, "gains": gains},
            "tanh": {"depth": tanh_depth, "bias_std": bias_std, "sigma_w_star": star,
                     "runs": runs}}


def _findings(results: dict[str, Any]) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []

    def add(id_: str, text: str, value: float) -> None:
        findings.append({"id": id_, "text": text, "value": value})

    sym = results["symmetry"]["runs"]
    zeros = sym["zeros"]
    contrast = (f"; after auto, {sym['auto']['max_unit_distance']:.2g}" if "auto" in sym
                else "")
    add("zeros_symmetry",
        f"Zeros: after training, the units of hidden layer {zeros['layer']} are still "
        f"identical (max distance {zeros['max_unit_distance']:.2g}{contrast}); test accuracy "
        f"{zeros['test_accuracy']:.3f}, chance.", zeros["max_unit_distance"])
    if "constant 0.01" in sym:
        constant = sym["constant 0.01"]
        add("constant_symmetry",
            f"Any constant (0.01): units stay identical up to rounding (max distance "
            f"{constant['max_unit_distance']:.2g}); test accuracy "
            f"{constant['test_accuracy']:.3f}.", constant["max_unit_distance"])
    relu = results["depth"]["activations"]["relu"]
    depth = results["depth"]["depth"]
    add("tiny", f"N(0, 0.01), {depth} ReLU layers: activation variance "
        f"x{relu['N(0, 0.01)']['variance_per_layer']:.3g} per layer: it vanishes.",
        relu["N(0, 0.01)"]["variance_per_layer"])
    if "N(0, 1)" in relu:
        add("huge", f"N(0, 1): variance x{relu['N(0, 1)']['variance_per_layer']:.3g} per "
            "layer: it explodes.", relu["N(0, 1)"]["variance_per_layer"])
    keep = ", ".join(f"{name} x{relu[name]['variance_per_layer']:.3f}"
                     for name in ("He", "auto") if name in relu)
    add("glorot_halves",
        f"Glorot halves the variance per ReLU layer (x{relu['Glorot']['variance_per_layer']:.3f}"
        f", He et al. 2015); {keep}.", relu["Glorot"]["variance_per_layer"])
    runs = results["training"]["runs"]
    scores = ", ".join(f"{name} {run['test_accuracy']:.3f}" for name, run in runs.items())
    add("training", f"Digits, {results['training']['depth']} ReLU layers, one recipe: {scores}.",
        runs["auto"]["test_accuracy"])
    gains = results["beyond_relu"]["gelu"]["gains"]
    (relu_label, relu_run), (gelu_label, gelu_run) = gains.items()
    add("gelu_gain",
        f"GELU, first 10 layers: {relu_label} loses variance (x"
        f"{relu_run['variance_per_layer']:.3f} per layer), the {gelu_label} keeps it (x"
        f"{gelu_run['variance_per_layer']:.3f}); q = 1 is unstable for GELU, so over 30 "
        f"layers it drifts (x{gelu_run['variance_per_layer_all']:.3f}).",
        gelu_run["variance_per_layer"])
    tanh = results["beyond_relu"]["tanh"]
    parts = ", ".join(f"{label} x{run['grad_per_layer']:.3f}"
                      for label, run in tanh["runs"].items())
    add("tanh_critical",
        f"tanh, {tanh['depth']} layers, gradient RMS per layer: {parts} (sigma_w* = "
        f"{tanh['sigma_w_star']:.3f}, bias std {tanh['bias_std']}).",
        tanh["runs"]["critical"]["grad_per_layer"])
    add("wall_time", f"Wall time {results['seconds']:.1f} s (one torch thread).",
        results["seconds"])
    return findings
