"""The demo's experiments: what initialization does to signals and to learning, measured on
scikit-learn's digits, every claim over several seeds. `run_demo` returns the results dict
described in docs/demo-results.md."""

from __future__ import annotations

import functools
import math
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import __version__
from .._sync import borrowed_rng
from ..lsuv import lsuv
from ..model import Policy, Rule, init_model
from ..schemes import Constant, Glorot, He, Normal, Orthogonal, Spec, VarianceScaling, Zeros
from ..theory import critical_point, gain
from ._digits import RECIPE, Digits, load_digits, mlp
from ._findings import findings
from ._measure import backward_growth, forward_growth, geometric_mean, mean_profile, profile
from ._train import train_many

Progress = Callable[[str], None]
"""Called with the name of each step as it starts."""

DEPTH_INITS = ("N(0, 0.01)", "N(0, 1)", "Glorot", "He", "torch default", "auto", "LSUV")
TRAIN_INITS = ("zeros", "torch default", "N(0, 0.01)", "Glorot", "He", "orthogonal", "auto",
               "LSUV")
QUICK_DEPTH_INITS = ("N(0, 0.01)", "Glorot", "auto")
QUICK_TRAIN_INITS = ("zeros", "torch default", "auto")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
SEEDS = 3
"""Seeds per experiment: `seed`, `seed` + 1, `seed` + 2, for the training runs, the signal
profiles and the GELU and tanh nets alike (--quick too). Three keeps the full demo near 30 s
of CPU on one thread; the claims stated are those that hold for every one of them."""
QUICK_EPOCHS = 12
FIRST_LAYERS = 10  # the GELU nets' rate near the fixed point q = 1: over layers 1 to 10


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


def _unit_distance(model: nn.Sequential) -> tuple[float, str]:
    """Max pairwise distance between the weight rows (units) of the middle hidden layer."""
    linears = [(name, m) for name, m in model.named_children() if isinstance(m, nn.Linear)]
    name, layer = linears[len(linears) // 2]
    rows = layer.weight.detach().double()
    return float(torch.cdist(rows, rows).max()), name


def _spread(values: Sequence[float]) -> dict[str, float]:
    """mean, sample sd (0 for one value), min and max of the finite values; NaN if none."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return dict.fromkeys(("mean", "sd", "min", "max"), math.nan)
    sd = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {"mean": statistics.fmean(finite), "sd": sd, "min": min(finite),
            "max": max(finite)}


def demo_steps(quick: bool = False) -> int:
    """How many times `run_demo` calls `progress`."""
    profiles = len(QUICK_DEPTH_INITS) if quick else len(DEPTH_INITS) * len(ACTIVATIONS)
    epochs = QUICK_EPOCHS if quick else int(RECIPE["epochs"])
    return profiles + 1 + epochs + 2  # + initializing the training nets, + beyond ReLU


def run_demo(*, seed: int = 0, quick: bool = False, progress: Progress | None = None
             ) -> dict[str, Any]:
    """Run every experiment of the demo over the seeds `seed`, `seed` + 1, `seed` + 2; one
    torch thread, and the global RNG as it was afterwards (nn.Linear's
    constructor draws from it; the keyed inits replace those values)."""
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
    results["findings"] = findings(results)
    return results


def _experiments(seed: int, quick: bool, step: Progress) -> dict[str, Any]:
    data = load_digits(seed=seed)
    batch = data.x_train[:512]
    seeds = [seed + i for i in range(SEEDS)]
    results: dict[str, Any] = {
        "seed": seed, "seeds": seeds, "quick": quick, "torch": torch.__version__,
        "weightinit": __version__,
        "platform": {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                     "machine": platform.machine(), "python": platform.python_version()}}
    results["depth"] = _depth_study(batch, seeds, quick, step)
    results["training"], trained = _training_study(data, batch, seeds, quick, step)
    results["symmetry"] = _symmetry_study(results["training"], trained, seeds[0])
    results["beyond_relu"] = _beyond_relu(batch, seeds, quick, step)
    return results


def _profiles(build: Callable[[], nn.Sequential], name: str, batch: torch.Tensor,
              seeds: Sequence[int], span: tuple[int, int]) -> dict[str, Any]:
    """The profiles of one initialization over `seeds`, their growth per layer over `span`
    (per seed) and the geometric means over the seeds."""
    std, grad = [], []
    for s in seeds:
        a, b = profile(initialize(build(), name, batch, s), batch)
        std.append(a)
        grad.append(b)
    forward = [forward_growth(p, span) for p in std]
    backward = [backward_growth(p, span) for p in grad]
    return {"std": std, "grad": grad, "std_mean": mean_profile(std),
            "grad_mean": mean_profile(grad), "forward": forward, "backward": backward,
            "forward_mean": geometric_mean(forward), "backward_mean": geometric_mean(backward)}


def _depth_study(batch: torch.Tensor, seeds: list[int], quick: bool, step: Progress
                 ) -> dict[str, Any]:
    depth, width = 30, 128
    span = (1, depth - 1)  # the hidden layers: the output layer (10 units) is a boundary
    activations: dict[str, Any] = {}
    for act_name, act in ACTIVATIONS.items():
        if quick and act_name != "relu":
            continue
        activations[act_name] = {}
        build = functools.partial(mlp, depth, width, act, d_in=batch.shape[1])
        for name in QUICK_DEPTH_INITS if quick else DEPTH_INITS:
            step(f"signal: {act_name}, {name}")
            activations[act_name][name] = _profiles(build, name, batch, seeds, span)
    return {"depth": depth, "width": width, "batch": int(batch.shape[0]), "seeds": seeds,
            "span": list(span), "activations": activations}


def _training_study(data: Digits, batch: torch.Tensor, seeds: list[int], quick: bool,
                    step: Progress
                    ) -> tuple[dict[str, Any], dict[str, tuple[nn.Module, float]]]:
    depth, width = 20, 64
    epochs = QUICK_EPOCHS if quick else int(RECIPE["epochs"])
    names = QUICK_TRAIN_INITS if quick else TRAIN_INITS
    step("training: initializing")
    jobs = [(name, s) for name in names for s in seeds]
    if not quick:  # Q1's other constant, trained beside the rest on the first seed
        jobs.append(("constant 0.01", seeds[0]))
    models = [initialize(mlp(depth, width), name, batch, s) for name, s in jobs]
    trained = train_many(models, data, seeds=[s for _, s in jobs], epochs=epochs,
                         on_epoch=lambda e: step(f"training: epoch {e + 1} of {epochs}"))
    runs: dict[str, Any] = {}
    for name in names:
        done = [r for (n, _), r in zip(jobs, trained, strict=True) if n == name]
        runs[name] = {"test_accuracy": [r.test_accuracy for r in done],
                      "test_loss": [r.test_loss for r in done],
                      "losses": [list(r.losses) for r in done],
                      "accuracy": _spread([r.test_accuracy for r in done])}
    first = {name: (model, result) for (name, s), model, result
             in zip(jobs, models, trained, strict=True) if s == seeds[0]}
    majority = int(torch.bincount(data.y_train).argmax())
    chance = float((data.y_test == majority).float().mean())
    study = {"depth": depth, "width": width, "recipe": dict(RECIPE, epochs=epochs),
             "seeds": seeds, "chance": chance, "runs": runs}
    return study, {name: (model, r.test_accuracy) for name, (model, r) in first.items()}


def _symmetry_study(training: dict[str, Any], trained: dict[str, tuple[nn.Module, float]],
                    seed: int) -> dict[str, Any]:
    """Q1 on the first seed's trained nets: zeros, a constant and auto for contrast."""
    runs: dict[str, Any] = {}
    for name in ("zeros", "constant 0.01", "auto"):
        model, accuracy = trained.get(name, (None, math.nan))
        if isinstance(model, nn.Sequential):
            distance, layer = _unit_distance(model)
            runs[name] = {"max_unit_distance": distance, "layer": layer,
                          "test_accuracy": accuracy}
    return {"depth": training["depth"], "width": training["width"], "seed": seed,
            "runs": runs}


def _beyond_relu(batch: torch.Tensor, seeds: list[int], quick: bool, step: Progress
                 ) -> dict[str, Any]:
    depth, width = 30, 128
    step("beyond ReLU: GELU gains")
    relu_gain, gelu_gain = gain("relu"), gain("gelu")
    gains = {}
    for label, g in ((f"relu's gain {relu_gain:.3f}", relu_gain),
                     (f"computed {gelu_gain:.3f}", gelu_gain)):
        # "auto" everywhere (LeCun on the data), with the gain under test where GELU feeds.
        policy = Policy([Rule(VarianceScaling(scale=g * g, mode="fan_in", distribution="normal"),
                              role="linear.weight", activation="gelu"),
                         Policy.preset("auto")], name=label)
        std = []
        for s in seeds:
            model = mlp(depth, width, nn.GELU, d_in=batch.shape[1])
            init_model(model, policy, seed=s)
            std.append(profile(model, batch)[0])
        # Over the first 10 layers: q = 1 is the computed gain's fixed point, but an unstable
        # one for GELU (the slope of q -> sigma^2 E[gelu(sqrt(q) z)^2] there is above 1), so
        # finite-width noise moves a deep net off it; the rate over the hidden layers says
        # how far.
        first = [forward_growth(p, (1, FIRST_LAYERS)) for p in std]
        whole = [forward_growth(p, (1, depth - 1)) for p in std]
        gains[label] = {"std": std, "std_mean": mean_profile(std), "first": first,
                        "first_mean": geometric_mean(first), "all": whole,
                        "all_mean": geometric_mean(whole)}
    step("beyond ReLU: tanh at the critical point")
    bias_std, tanh_depth = 0.05, 20 if quick else 30
    point = critical_point("tanh", bias_std=bias_std)
    star = point.weight_std
    # The first layer maps the data to the fixed point q* of the critical net (the state
    # chi_1 describes): from the data's unit variance, a net would spend its first layers
    # on the way there, where chi_1 is not 1 yet. The three nets differ only after it.
    to_fixed_point = Rule(VarianceScaling(scale=point.q_star, mode="fan_in",
                                          distribution="normal"), name="0.weight")
    runs = {}
    for label, factor in (("0.5 x critical", 0.5), ("critical", 1.0), ("2 x critical", 2.0)):
        sigma = factor * star
        policy = Policy([to_fixed_point,
                         Rule(VarianceScaling(scale=sigma * sigma, mode="fan_in",
                                              distribution="normal"), role="linear.weight"),
                         Rule(Normal(std=bias_std), role="linear.bias")], name=label)
        grad = []
        for s in seeds:
            model = mlp(tanh_depth, width, nn.Tanh, d_in=batch.shape[1])
            init_model(model, policy, seed=s)
            grad.append(profile(model, batch)[1])
        backward = [backward_growth(p, (1, tanh_depth - 1)) for p in grad]
        runs[label] = {"grad": grad, "grad_mean": mean_profile(grad), "backward": backward,
                       "backward_mean": geometric_mean(backward)}
    return {"gelu": {"depth": depth, "first_layers": FIRST_LAYERS, "span": [1, depth - 1],
                     "gains": gains},
            "tanh": {"depth": tanh_depth, "bias_std": bias_std, "sigma_w_star": star,
                     "q_star": point.q_star, "span": [1, tanh_depth - 1], "runs": runs}}
