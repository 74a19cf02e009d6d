"""The demo's findings: one sentence each, with the number it rests on, every verdict by the
one rule of `weightinit.report.verdict` applied to the number the sentence shows."""

from __future__ import annotations

from typing import Any

from ..report import seed_list, span_of, times, total, verdict


def _over(value: float, steps: int) -> str:
    """"×1.2e-09 over 28": the change over `steps` layers that the verdict reads."""
    change = total(value, steps)
    text = "nan" if change is None else (f"{change:.2g}" if 1e-3 <= change < 1e4
                                         else f"{change:.1e}")
    return f"×{text} over {steps}"


def findings(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings, in order: {"id", "text", "value", "label"} (label: what the value is)."""
    found: list[dict[str, Any]] = []

    def add(id_: str, text: str, value: float, label: str) -> None:
        found.append({"id": id_, "text": text, "value": float(value), "label": label})

    sym = results["symmetry"]["runs"]
    zeros = sym["zeros"]
    contrast = (f"; after auto, {sym['auto']['max_unit_distance']:.2g}" if "auto" in sym
                else "")
    add("zeros_symmetry",
        f"Zeros: after training (seed {results['symmetry']['seed']}), the units of hidden "
        f"layer {zeros['layer']} are still identical (max distance "
        f"{zeros['max_unit_distance']:.2g}{contrast}); test accuracy "
        f"{zeros['test_accuracy']:.3f}, chance.", zeros["max_unit_distance"], "max distance")
    if "constant 0.01" in sym:
        constant = sym["constant 0.01"]
        add("constant_symmetry",
            f"Any constant (0.01): units stay identical up to rounding (max distance "
            f"{constant['max_unit_distance']:.2g}); test accuracy "
            f"{constant['test_accuracy']:.3f}.", constant["max_unit_distance"], "max distance")

    depth = results["depth"]
    relu = depth["activations"]["relu"]
    first, last = span_of(depth)
    steps = last - first

    def rate(name: str, act: dict[str, Any] = relu, way: str = "forward") -> str:
        f = act[name][f"{way}_mean"]
        return f"{times(f)} per layer ({_over(f, steps)}): {verdict(f, steps)}"

    add("tiny", f"N(0, 0.01), {depth['depth']} ReLU layers (width {depth['width']}), seeds "
        f"{seed_list(depth.get('seeds'))}: activation variance {rate('N(0, 0.01)')}.",
        relu["N(0, 0.01)"]["forward_mean"], "variance ×/layer")
    if "N(0, 1)" in relu:
        add("huge", f"N(0, 1): {rate('N(0, 1)')}.", relu["N(0, 1)"]["forward_mean"],
            "variance ×/layer")
    glorot = relu["Glorot"]["forward_mean"]
    kept = [name for name in ("He", "auto", "LSUV") if name in relu]
    words = sorted({verdict(relu[name]["forward_mean"], steps) for name in kept})
    add("glorot_halves",
        f"Glorot halves the variance per ReLU layer ({times(glorot)}, He et al. 2015): "
        f"{verdict(glorot, steps)}. "
        + ", ".join(f"{name} {times(relu[name]['forward_mean'])}" for name in kept)
        + f" per layer: {' / '.join(words)}.", glorot, "variance ×/layer")
    tanh_auto = depth["activations"].get("tanh", {}).get("auto")
    if tanh_auto is not None:
        b = tanh_auto["backward_mean"]
        add("tanh_chaos",
            f"tanh, auto: variance {verdict(tanh_auto['forward_mean'], steps)} "
            f"({times(tanh_auto['forward_mean'])} per layer), but the gradient "
            f"{verdict(b, steps)} on the way back ({times(b)} per layer, {_over(b, steps)}): "
            "the gain that keeps q = 1 puts tanh in its chaotic phase.", b,
            "gradient ×/layer")

    training = results["training"]
    runs = training["runs"]
    chance = training["chance"]
    stuck = [n for n, r in runs.items() if max(r["test_accuracy"]) < chance + 0.02]
    parts = [f"{', '.join(stuck)} at chance ({chance:.3f}) in every run"] if stuck else []
    parts += [f"{name} {run['accuracy']['mean']:.3f} ± {run['accuracy']['sd']:.3f}"
              for name, run in runs.items() if name not in stuck]
    auto = runs.get("auto", next(iter(runs.values())))
    add("training",
        f"Digits, {training['depth']} ReLU layers, test accuracy over seeds "
        f"{seed_list(training['seeds'])} (mean ± sd): {'; '.join(parts)}.",
        auto["accuracy"]["mean"], "auto accuracy, mean")

    gelu = results["beyond_relu"]["gelu"]
    (relu_label, relu_run), (gelu_label, gelu_run) = gelu["gains"].items()
    early = gelu["first_layers"]
    g_first, g_last = span_of(gelu)
    whole = gelu_run["all_mean"]
    add("gelu_gain",
        f"GELU, layers 1-{early}: {relu_label} {times(relu_run['first_mean'])} per layer "
        f"({verdict(relu_run['first_mean'], early - 1)}), the {gelu_label} "
        f"{times(gelu_run['first_mean'])} ({verdict(gelu_run['first_mean'], early - 1)}); "
        f"q = 1 is unstable for GELU: over layers {g_first}-{g_last} the computed gain "
        f"{verdict(whole, g_last - g_first)} ({times(whole)} per layer).",
        gelu_run["first_mean"], "variance ×/layer")

    tanh = results["beyond_relu"]["tanh"]
    t_first, t_last = span_of(tanh)
    described = ", ".join(
        f"{label} {times(run['backward_mean'])} "
        f"({verdict(run['backward_mean'], t_last - t_first)})"
        for label, run in tanh["runs"].items())
    add("tanh_critical",
        f"tanh, {tanh['depth']} layers, gradient per layer on the way back: {described}; "
        f"sigma_w* = {tanh['sigma_w_star']:.3f} (bias std {tanh['bias_std']}).",
        tanh["runs"]["critical"]["backward_mean"], "gradient ×/layer")
    return found
