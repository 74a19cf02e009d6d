"""The demo's three figures (matplotlib), drawn from the results dict.

matplotlib is optional and imported inside the functions that draw; figures are built with the
object-oriented API (`Figure` + the Agg canvas), so pyplot is never imported and no global
style (`rcParams`) is changed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._render import new_figure, note, number, png_bytes, positive, real
from ._values import CHANCE, accuracy, activations, at

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = ("depth", "training", "beyond_relu")
"""The keys of `demo_figures` (each saved as key + ".png")."""

_DPI = 110
_NEEDS = "The demo's figures and HTML"
_FALLBACK = "The terminal summary (weightinit.report.summary_table) works without it."

# One look per initialization, the same in every figure. Dashed and dotted lines for the ones
# that can coincide with He (auto, LSUV, orthogonal), so the line under them stays visible.
_INIT_STYLE: dict[str, tuple[str, str, str]] = {
    "zeros": ("#3b3b3b", "-", "s"),
    "N(0, 0.01)": ("#1f77b4", "-", "v"),
    "N(0, 1)": ("#d62728", "-", "^"),
    "Glorot": ("#ff7f0e", "-", "D"),
    "He": ("#2ca02c", "-", "o"),
    "torch default": ("#7f7f7f", "-", "P"),
    "orthogonal": ("#8c564b", "--", "X"),
    "auto": ("#9467bd", "--", "o"),
    "LSUV": ("#17becf", ":", "s"),
}
_SPARE_COLORS = ("#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173")
_SPARE_MARKERS = ("h", "*", "p", "<", ">", "d")


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes, at the resolution of the demo's report."""
    return png_bytes(figure, dpi=_DPI)


def _label(text: object) -> str:
    """A legend label shown as written: no mathtext, not hidden by a leading underscore."""
    label = str(text).replace("$", r"\$")
    return " " + label if label.startswith("_") else label


def _styles(names: Iterable[str]) -> dict[str, tuple[str, str, str]]:
    """Color, line style and marker for each name: the fixed look of the known ones."""
    styles: dict[str, tuple[str, str, str]] = {}
    spare = 0
    for name in names:
        if name in styles:
            continue
        if name in _INIT_STYLE:
            styles[name] = _INIT_STYLE[name]
        else:
            styles[name] = (_SPARE_COLORS[spare % len(_SPARE_COLORS)], "-",
                            _SPARE_MARKERS[spare % len(_SPARE_MARKERS)])
            spare += 1
    return styles


def _profile(ax: Axes, values: Sequence[Any], label: str, color: str, linestyle: str = "-",
             marker: str = "o") -> bool:
    """One per-layer profile (layer 1 first) on a log axis; True if it has a value to show.

    Values a log axis cannot show are gaps in the line; where the profile first becomes
    non-finite (or null) an x is drawn on the top edge, where it first reaches 0 a triangle on
    the bottom edge."""
    xs = list(range(1, len(values) + 1))
    ys = [positive(v) for v in values]
    every = max(1, len(xs) // 8)
    ax.plot(xs, ys, color=color, linestyle=linestyle, linewidth=1.6, marker=marker,
            markersize=4, markevery=every, label=label)
    reals = [real(v) for v in values]
    broken = next((x for x, v in zip(xs, reals, strict=True)
                   if v is None or not math.isfinite(v)), None)
    zero = next((x for x, v in zip(xs, reals, strict=True) if v == 0), None)
    for x, y, mark in ((broken, 0.97, "x"), (zero, 0.03, "v")):
        if x is not None:
            ax.plot([x], [y], linestyle="none", marker=mark, markersize=7, color=color,
                    transform=ax.get_xaxis_transform(), clip_on=False, label="_nolegend_")
    return any(math.isfinite(y) for y in ys)


def _finish_log(ax: Axes, shown: bool, what: str) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_yscale("log")
    # Plain "1e-04" labels: mathtext's 10^x costs more to draw than everything else here.
    ax.yaxis.set_major_locator(LogLocator(numticks=7))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0e}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    ax.grid(True, which="major", alpha=0.3)
    if not shown:  # an empty log axis: give it a range and say why it is empty
        ax.set_ylim(1e-3, 1e3)
        note(ax, f"no positive finite {what}")


def _depth_figure(results: Mapping[str, Any]) -> Figure:
    study = at(results, "depth")
    block = at(results, "depth", "activations")
    acts = activations(block)
    styles = _styles(name for act in acts for name in block[act])
    rows = max(1, len(acts))
    height = 2.75 * rows + 1.3
    figure = new_figure(_NEEDS, _FALLBACK, dpi=_DPI, figsize=(10.0, height))
    axes = figure.subplots(rows, 2, sharex=True, squeeze=False)
    # Fixed margins: constrained layout would measure every tick label, which is slow.
    figure.subplots_adjust(left=0.08, right=0.98, top=1 - 0.6 / height,
                           bottom=1.05 / height, hspace=0.42, wspace=0.2)
    handles: dict[str, Any] = {}
    for row, act in enumerate(acts):
        for column, (key, what) in enumerate((("std", "activation std"),
                                              ("grad", "gradient RMS"))):
            ax = axes[row][column]
            shown = False
            for name, profile in block[act].items():
                color, linestyle, marker = styles[name]
                shown |= _profile(ax, list(profile.get(key) or []), _label(name), color,
                                  linestyle, marker)
            _finish_log(ax, shown, what)
            ax.set_title(f"{act}: {what}", fontsize=10, parse_math=False)
            ax.tick_params(labelsize=8)
            if row == rows - 1:
                ax.set_xlabel("layer")
            for line in ax.get_lines():
                label = str(line.get_label())
                if not label.startswith("_"):
                    handles.setdefault(label, line)
    if handles:
        figure.legend(list(handles.values()), list(handles), loc="lower center",
                      bbox_to_anchor=(0.5, 0.0), ncols=min(4, len(handles)), fontsize=9,
                      frameon=False)
    figure.suptitle(f"Signal through a {study.get('depth', '?')}-layer MLP "
                    f"(width {study.get('width', '?')}), by initialization", fontsize=12,
                    parse_math=False)
    return figure


def _training_figure(results: Mapping[str, Any]) -> Figure:
    study = at(results, "training")
    runs = at(results, "training", "runs")
    recipe = study.get("recipe", {})
    styles = _styles(runs)
    figure = new_figure(_NEEDS, _FALLBACK, dpi=_DPI, figsize=(10.0, 4.6))
    from matplotlib.ticker import MaxNLocator

    ax_loss, ax_acc = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1.0]})
    figure.subplots_adjust(left=0.09, right=0.97, top=0.84, bottom=0.12, wspace=0.42)
    shown = False
    for name, run in runs.items():
        color, linestyle, marker = styles[name]
        shown |= _profile(ax_loss, list(run.get("losses") or []), _label(name), color,
                          linestyle, marker)
    _finish_log(ax_loss, shown, "loss")
    ax_loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("mean training loss (cross-entropy)")
    ax_loss.set_title("training loss", fontsize=10)
    ax_loss.legend(fontsize=8, loc="best")

    names = list(runs)
    accuracies = [real(runs[n].get("test_accuracy")) for n in names]
    widths = [a if a is not None and math.isfinite(a) else 0.0 for a in accuracies]
    positions = list(range(len(names)))
    ax_acc.barh(positions, widths, color=[styles[n][0] for n in names], height=0.7)
    for y, width, value in zip(positions, widths, accuracies, strict=True):
        inside = width > 0.8
        ax_acc.text(width - 0.02 if inside else width + 0.02, y, accuracy(value),
                    va="center", ha="right" if inside else "left", fontsize=9,
                    color="white" if inside else "#222222")
    ax_acc.axvline(CHANCE, color="#555555", linestyle="--", linewidth=1.2)
    ax_acc.text(CHANCE, 1.0, " chance", transform=ax_acc.get_xaxis_transform(), va="bottom",
                ha="center", fontsize=8, color="#555555")
    ax_acc.set_yticks(positions, [_label(n) for n in names], fontsize=9)
    ax_acc.invert_yaxis()
    ax_acc.set_xlim(0.0, 1.08)
    ax_acc.set_xlabel("test accuracy")
    ax_acc.set_title("test accuracy after training", fontsize=10, pad=14)
    ax_acc.grid(True, axis="x", alpha=0.3)
    figure.suptitle(
        f"Training on digits: {study.get('depth', '?')}-layer ReLU MLP "
        f"(width {study.get('width', '?')}), SGD lr {number(recipe.get('lr'), 3)}, momentum "
        f"{number(recipe.get('momentum'), 3)}, batch {recipe.get('batch_size', '?')}, "
        f"{recipe.get('epochs', '?')} epochs", fontsize=12, parse_math=False)
    return figure


def _runs_panel(ax: Axes, runs: Mapping[str, Any], key: str, what: str, factor: str,
                legend: str, colors: Sequence[str]) -> None:
    """One line per run: its profile `key` (`what` it is) on a log axis, labelled by `legend`
    (a format string of {name} and {factor}, the run's value of `factor`)."""
    shown = False
    for (name, run), color in zip(runs.items(), colors, strict=False):
        label = legend.format(name=name, factor=number(run.get(factor), 4))
        shown |= _profile(ax, list(run.get(key) or []), _label(label), color)
    _finish_log(ax, shown, what)


def _beyond_relu_figure(results: Mapping[str, Any]) -> Figure:
    gelu = at(results, "beyond_relu", "gelu")
    tanh = at(results, "beyond_relu", "tanh")
    figure = new_figure(_NEEDS, _FALLBACK, dpi=_DPI, figsize=(10.0, 4.4))
    ax_gelu, ax_tanh = figure.subplots(1, 2)
    figure.subplots_adjust(left=0.07, right=0.98, top=0.84, bottom=0.12, wspace=0.22)
    _runs_panel(ax_gelu, at(results, "beyond_relu", "gelu", "gains"), "std", "std",
                "variance_per_layer", "{name} (variance ×{factor} per layer)",
                ("#ef8f00", "#2e7d32", "#6a1b9a", "#1565c0"))
    ax_gelu.set_title(f"GELU, {gelu.get('depth', '?')} layers: activation std", fontsize=10,
                      parse_math=False)
    ax_gelu.set_ylabel("activation std")
    _runs_panel(ax_tanh, at(results, "beyond_relu", "tanh", "runs"), "grad", "gradient RMS",
                "grad_per_layer", "{name} (gradient ×{factor} per layer back)",
                ("#1565c0", "#2e7d32", "#c62828", "#6a1b9a"))
    ax_tanh.set_title(f"tanh, {tanh.get('depth', '?')} layers, bias std "
                      f"{number(tanh.get('bias_std'), 3)}: gradient RMS, "
                      f"σw* = {number(tanh.get('sigma_w_star'), 4)}", fontsize=10,
                      parse_math=False)
    ax_tanh.set_ylabel("gradient RMS")
    for ax in (ax_gelu, ax_tanh):
        ax.set_xlabel("layer")
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, loc="best")
    figure.suptitle("Beyond ReLU: the gain and the critical point come from the activation",
                    fontsize=12)
    return figure


def demo_figures(results: Mapping[str, Any]) -> dict[str, Figure]:
    """The demo's three figures, by name (each is saved as name + ".png"):

    - "depth": activation std and gradient RMS against layer for relu / tanh / gelu (rows),
      one line per initialization, log y;
    - "training": training loss per epoch (log y) and test accuracy per initialization, with
      chance (0.1) dashed;
    - "beyond_relu": a GELU net's activation std for ReLU's gain and the computed one, and a
      tanh net's gradient RMS below, at and above the critical weight std sigma_w*.

    Values a log axis cannot show (null, NaN, Inf, 0) are gaps; an x on a panel's top edge
    marks where a profile became non-finite, a triangle on the bottom edge where it reached 0.

    Raises:
        InitError: matplotlib is not installed, or `results` lacks a part of the schema.
    """
    return {"depth": _depth_figure(results), "training": _training_figure(results),
            "beyond_relu": _beyond_relu_figure(results)}
