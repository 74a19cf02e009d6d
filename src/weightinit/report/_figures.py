"""The demo's three figures (matplotlib), drawn from the results dict.

matplotlib is optional and imported inside the functions that draw; figures are built with the
object-oriented API (`Figure` + the Agg canvas), so pyplot is never imported and no global
style (`rcParams`) is changed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._render import new_figure, note, number, png_bytes, real
from ._plots import (
    BAND,
    FLAT_COLOR,
    clipped_profile,
    decade_axis,
    extreme_of,
    flat_band,
    label,
    mean_of,
    relative,
    styles,
)
from ._values import (
    FLAT,
    activations,
    at,
    chance_of,
    check_seeds,
    mean_sd,
    seed_list,
    span_of,
    times,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = ("depth", "training", "beyond_relu")
"""The keys of `demo_figures` (each saved as key + ".png")."""

_DPI = 110
_NEEDS = "The demo's figures and HTML"
_FALLBACK = "The terminal summary (weightinit.report.summary_table) works without it."
_SAME = 0.01  # mean loss curves within 1% at every epoch draw as one line


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes, at the resolution of the demo's report."""
    return png_bytes(figure, dpi=_DPI)


def _band_handle(text: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=FLAT_COLOR, edgecolor="#9ccc9c", label=text)


def _relative_panel(ax: Axes, profiles: Mapping[str, Sequence[Any]], span: tuple[int, int],
                    reference: int, looks: Mapping[str, tuple[str, str, str]],
                    labels: Mapping[str, str] | None = None) -> None:
    """Second moments relative to layer `reference`, over the layers of `span`, in BAND."""
    first, last = span
    flat_band(ax)
    shown = False
    xs = list(range(first, last + 1))
    for name, values in profiles.items():
        part = list(values)[first - 1:last]
        if len(part) != len(xs):
            continue
        ys = relative(part, reference - first)
        shown |= clipped_profile(ax, xs, ys, (labels or {}).get(name, name), looks[name],
                                 *BAND, backward=reference == last and reference != first)
    decade_axis(ax, *BAND)
    if not shown:
        note(ax, "no profile to show")
    ax.tick_params(labelsize=8)


def _depth_figure(results: Mapping[str, Any]) -> Figure:
    study = at(results, "depth")
    block = at(results, "depth", "activations")
    acts = activations(block)
    looks = styles(name for act in acts for name in block[act])
    first, last = span_of(study)
    rows = max(1, len(acts))
    height = 2.6 * rows + 1.5
    figure = new_figure(_NEEDS, _FALLBACK, dpi=_DPI, figsize=(10.0, height))
    axes = figure.subplots(rows, 2, sharex=True, squeeze=False)
    # Fixed margins: constrained layout would measure every tick label, which is slow.
    figure.subplots_adjust(left=0.07, right=0.98, top=1 - 0.75 / height,
                           bottom=1.2 / height, hspace=0.42, wspace=0.16)
    handles: dict[str, Any] = {}
    panels = (("std_mean", first, f"activation variance ÷ its value at layer {first}"),
              ("grad_mean", last, f"gradient² ÷ its value at layer {last}"))
    for row, act in enumerate(acts):
        for column, (key, reference, what) in enumerate(panels):
            ax = axes[row][column]
            _relative_panel(ax, {name: profile.get(key) or []
                                 for name, profile in block[act].items()},
                            (first, last), reference, looks)
            ax.set_title(f"{act}: {what}", fontsize=10, parse_math=False)
            if row == rows - 1:
                ax.set_xlabel("layer")
            for line in ax.get_lines():
                text = str(line.get_label())
                if not text.startswith("_"):
                    handles.setdefault(text, line)
    handles[f"flat: within ×{FLAT:g} either way"] = _band_handle(
        f"flat: within ×{FLAT:g} either way")
    figure.legend(list(handles.values()), list(handles), loc="lower center",
                  bbox_to_anchor=(0.5, 0.0), ncols=4, fontsize=9, frameon=False)
    figure.suptitle(
        f"Signal through a {study.get('depth', '?')}-layer MLP (width "
        f"{study.get('width', '?')}), layers {first}–{last}, by initialization: geometric mean "
        f"over seeds {seed_list(study.get('seeds'))}", fontsize=12, parse_math=False)
    return figure


def _merged(runs: Mapping[str, Any]) -> list[tuple[list[str], list[float], list[float],
                                                   list[float]]]:
    """(names, mean loss, min, max) per line: runs whose mean curves agree within 1% at every
    epoch are one line (with their names joined), since they would draw as one."""
    lines: list[tuple[list[str], list[float], list[float], list[float]]] = []
    for name, run in runs.items():
        losses = [list(x) for x in run.get("losses") or [] if isinstance(x, Sequence)]
        mean = mean_of(losses)
        for names, other, _, _ in lines:
            if len(other) == len(mean) and mean and all(
                    math.isfinite(a) and math.isfinite(b) and abs(a - b) <= _SAME * abs(b)
                    for a, b in zip(mean, other, strict=True)):
                names.append(name)
                break
        else:
            lines.append(([name], mean, extreme_of(losses, min), extreme_of(losses, max)))
    return lines


def _loss_panel(ax: Axes, runs: Mapping[str, Any],
                looks: Mapping[str, tuple[str, str, str]]) -> None:
    from matplotlib.ticker import MaxNLocator

    shown = False
    for names, mean, low, high in _merged(runs):
        color, linestyle, marker = looks[names[0]]
        xs = list(range(1, len(mean) + 1))
        ys = [y if math.isfinite(y) and y > 0 else math.nan for y in mean]
        ax.fill_between(xs, [y if y > 0 else math.nan for y in low],
                        [y if y > 0 else math.nan for y in high], color=color, alpha=0.15,
                        linewidth=0)
        ax.plot(xs, ys, color=color, linestyle=linestyle, linewidth=1.6, marker=marker,
                markersize=4, markevery=max(1, len(xs) // 7), label=label(" = ".join(names)))
        shown |= any(math.isfinite(y) for y in ys)
    values = [y for _, mean, low, high in _merged(runs) for y in (*mean, *low, *high)
              if math.isfinite(y) and y > 0]
    if values:
        decade_axis(ax, 10.0 ** math.floor(math.log10(min(values))),
                    10.0 ** math.ceil(math.log10(max(values))), every=1)
    else:
        decade_axis(ax, 1e-2, 1e1, every=1)
        note(ax, "no positive finite loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss (cross-entropy)")
    ax.set_title("training loss: mean over seeds, band = min to max", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax.tick_params(labelsize=8)


def _accuracy_panel(ax: Axes, runs: Mapping[str, Any], chance: float,
                    looks: Mapping[str, tuple[str, str, str]]) -> None:
    names = list(runs)
    positions = list(range(len(names)))
    for y, name in zip(positions, names, strict=True):
        run = runs[name]
        values = [x for x in (real(v) for v in run.get("test_accuracy") or [])
                  if x is not None and math.isfinite(x)]
        spread = run.get("accuracy") if isinstance(run.get("accuracy"), Mapping) else {}
        mean = real(spread.get("mean"))
        width = mean if mean is not None and math.isfinite(mean) else 0.0
        ax.barh([y], [width], color=looks[name][0], height=0.7, alpha=0.85)
        if values:
            ax.plot([min(values), max(values)], [y, y], color="#222222", linewidth=1.2)
            ax.plot(values, [y] * len(values), linestyle="none", marker="o", markersize=3.5,
                    markerfacecolor="white", markeredgecolor="#222222", label="_nolegend_")
        right = max([width, *values])
        ax.text(right + 0.02, y, mean_sd(spread), va="center", ha="left", fontsize=8.5,
                color="#222222")
    ax.axvline(chance, color="#555555", linestyle="--", linewidth=1.2)
    ax.text(chance + 0.01, -0.9, f"chance {chance:.3f}", va="bottom", ha="left", fontsize=8,
            color="#555555")
    ax.set_yticks(positions, [label(n) for n in names], fontsize=9)
    ax.set_ylim(len(names) - 0.4, -1.2)
    ax.set_xlim(0.0, 1.22)
    ax.set_xticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xlabel("test accuracy (bar: mean, line: min to max, dots: seeds)")
    ax.set_title("test accuracy after training (mean ± sd)", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    ax.tick_params(labelsize=8)


def _training_figure(results: Mapping[str, Any]) -> Figure:
    study = at(results, "training")
    runs = at(results, "training", "runs")
    recipe = study.get("recipe", {})
    looks = styles(runs)
    figure = new_figure(_NEEDS, _FALLBACK, dpi=_DPI, figsize=(10.0, 4.8))
    ax_loss, ax_acc = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1.0]})
    figure.subplots_adjust(left=0.08, right=0.98, top=0.84, bottom=0.12, wspace=0.34)
    _loss_panel(ax_loss, runs, looks)
    _accuracy_panel(ax_acc, runs, chance_of(results), looks)
    figure.suptitle(
        f"Training on digits: {study.get('depth', '?')}-layer ReLU MLP "
        f"(width {study.get('width', '?')}), SGD lr {number(recipe.get('lr'), 3)}, momentum "
        f"{number(recipe.get('momentum'), 3)}, batch {recipe.get('batch_size', '?')}, "
        f"{recipe.get('epochs', '?')} epochs; seeds {seed_list(study.get('seeds'))}",
        fontsize=11, parse_math=False)
    return figure


def _gelu_panel(ax: Axes, gelu: Mapping[str, Any]) -> None:
    gains = gelu.get("gains") or {}
    first, last = span_of(gelu)
    early = gelu.get("first_layers", "?")
    colors = ("#ef8f00", "#2e7d32", "#6a1b9a", "#1565c0")
    looks = {name: (color, "-", "o") for name, color in zip(gains, colors * 4, strict=False)}
    labels = {name: f"{name}: {times(run.get('first_mean'))}/layer over layers 1–{early}"
                    f", {times(run.get('all_mean'))} over {first}–{last}"
              for name, run in gains.items()}
    _relative_panel(ax, {name: run.get("std_mean") or [] for name, run in gains.items()},
                    (first, last), first, looks, labels)
    if isinstance(early, int):
        ax.axvline(early, color="#777777", linestyle=":", linewidth=1.0)
        ax.text(early + 0.3, 0.03, f"layer {early}", transform=ax.get_xaxis_transform(),
                fontsize=8, color="#555555")
    ax.set_title(f"GELU, {gelu.get('depth', '?')} layers: activation variance ÷ layer {first}",
                 fontsize=10, parse_math=False)
    ax.legend(fontsize=7.5, loc="upper left")


def _tanh_panel(ax: Axes, tanh: Mapping[str, Any]) -> None:
    runs = tanh.get("runs") or {}
    first, last = span_of(tanh)
    colors = ("#1565c0", "#2e7d32", "#c62828", "#6a1b9a")
    looks = {name: (color, "-", "o") for name, color in zip(runs, colors * 4, strict=False)}
    labels = {name: f"{name}: {times(run.get('backward_mean'))}/layer on the way back"
              for name, run in runs.items()}
    _relative_panel(ax, {name: run.get("grad_mean") or [] for name, run in runs.items()},
                    (first, last), last, looks, labels)
    ax.set_title(f"tanh, {tanh.get('depth', '?')} layers (σw* = "
                 f"{number(tanh.get('sigma_w_star'), 4)}, σb = "
                 f"{number(tanh.get('bias_std'), 3)}): gradient² ÷ layer {last}", fontsize=9,
                 parse_math=False)
    ax.legend(fontsize=7.5, loc="lower left")


def _beyond_relu_figure(results: Mapping[str, Any]) -> Figure:
    gelu = at(results, "beyond_relu", "gelu")
    tanh = at(results, "beyond_relu", "tanh")
    at(results, "beyond_relu", "gelu", "gains")
    at(results, "beyond_relu", "tanh", "runs")
    figure = new_figure(_NEEDS, _FALLBACK, dpi=_DPI, figsize=(10.0, 4.6))
    ax_gelu, ax_tanh = figure.subplots(1, 2)
    figure.subplots_adjust(left=0.07, right=0.98, top=0.84, bottom=0.12, wspace=0.18)
    _gelu_panel(ax_gelu, gelu)
    _tanh_panel(ax_tanh, tanh)
    for ax in (ax_gelu, ax_tanh):
        ax.set_xlabel("layer")
    figure.suptitle("Beyond ReLU: the gain and the critical point come from the activation "
                    f"(geometric mean over seeds {seed_list(results.get('seeds'))})",
                    fontsize=11, parse_math=False)
    return figure


def demo_figures(results: Mapping[str, Any]) -> dict[str, Figure]:
    """The demo's three figures, by name (each is saved as name + ".png"):

    - "depth": for relu / tanh / gelu (rows), the activation variance relative to layer 1 and
      the gradient's second moment relative to the last hidden layer, one line per
      initialization (the geometric mean over the seeds), in a log band of 10⁻⁴ to 10⁴ with
      the "flat" band of the verdict rule (`FLAT`) shaded;
    - "training": mean training loss per epoch over the seeds (band: min to max; curves that
      would coincide are one line, their names joined) and test accuracy per initialization
      (mean, range and each seed), with chance (the measured constant-prediction accuracy)
      dashed;
    - "beyond_relu": a GELU net's activation variance for ReLU's gain and the computed one,
      and a tanh net's gradient below, at and above the critical weight std sigma_w*, in the
      same relative band.

    A profile that leaves the band ends in a triangle on the edge it left by (an x where it
    has no number).

    Raises:
        InitError: matplotlib is not installed, or `results` lacks a part of the schema
            or holds one number where it has one per seed (an older demo's results).
    """
    check_seeds(results)
    return {"depth": _depth_figure(results), "training": _training_figure(results),
            "beyond_relu": _beyond_relu_figure(results)}
