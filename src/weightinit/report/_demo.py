"""Presentation of `weightinit demo`'s results: a terminal summary (rich), three figures
(matplotlib) and one self-contained HTML page, plus `save_demo` that writes them all.

The input is the results dict of docs/demo-results.md (what `weightinit.studies.run_demo`
returns, or the `results.json` it was saved as, where NaN and Inf are null). This module only
reads it. matplotlib is optional and imported inside the functions that draw; figures are built
with the object-oriented API (`Figure` + the Agg canvas), so pyplot is never imported and no
global style (`rcParams`) is changed.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import InitError
from .._render import data_uri, escape, new_figure, number, page, png_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURES = ("depth", "training", "beyond_relu")
"""The keys of `demo_figures` (each saved as key + ".png")."""

_DPI = 110
_ACTIVATIONS = ("relu", "tanh", "gelu")
_CHANCE = 0.1  # ten balanced classes

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


# --- reading the results -------------------------------------------------------------------


def _at(results: Any, *path: str) -> Any:
    """results[path[0]][path[1]]..., or an InitError naming the missing part."""
    node = results
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            where = "results" + "".join(f"[{k!r}]" for k in path[:depth + 1])
            raise InitError(f"{where} is missing: `results` must follow the demo results "
                            "schema (docs/demo-results.md), as weightinit.studies.run_demo() "
                            "returns it.")
        node = node[key]
    return node


def _float(value: Any) -> float | None:
    """A number as a float; None for null and anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _num(value: Any, digits: int = 3) -> str:
    """`digits` significant digits; "-" for a missing value, "nan" / "inf" for broken ones."""
    return number(_float(value), digits)


def _seconds(value: Any) -> str:
    number = _float(value)
    return "-" if number is None or not math.isfinite(number) else f"{number:.1f} s"


def _run_line(results: Any) -> str:
    """"seed 0, full run, 58.2 s (weightinit 0.1.0, torch 2.13.0)": what ran, how long."""
    quick = "quick run (--quick)" if results.get("quick") else "full run"
    return (f"seed {results.get('seed', '-')}, {quick}, {_seconds(results.get('seconds'))} "
            f"(weightinit {results.get('weightinit', '-')}, torch {results.get('torch', '-')})")


def _accuracy(value: Any) -> str:
    number = _float(value)
    return "-" if number is None or not math.isfinite(number) else f"{number:.3f}"


# --- terminal ------------------------------------------------------------------------------


def summary_table(results: Mapping[str, Any]) -> Any:
    """The demo's findings as one compact `rich` Table: a row per finding (its text, wrapped,
    and its value), with the seed, the quick flag and the wall time in the caption.

    Fits a 100-column, 30-line terminal for about ten findings. Texts are added as plain
    `Text`, never parsed as rich markup.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    findings = _at(results, "findings")
    table = Table(title="weightinit demo", title_style="bold", caption=_run_line(results),
                  caption_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column("finding", ratio=1, overflow="fold")
    table.add_column("value", justify="right", no_wrap=True, style="cyan")
    for index, finding in enumerate(findings, 1):
        table.add_row(str(index), Text(str(finding.get("text", ""))),
                      Text(_num(finding.get("value"), 4)))
    if not findings:
        table.add_row("", Text("no findings"), "")
    return table


# --- figures -------------------------------------------------------------------------------


def _new_figure(**kwargs: Any) -> Figure:
    return new_figure("The demo's figures and HTML", "The terminal summary "
                      "(weightinit.report.summary_table) works without it.", dpi=_DPI, **kwargs)


def _positive(value: Any) -> float:
    """The value where a log axis can show it, NaN (a gap in the line) otherwise."""
    number = _float(value)
    if number is None or not math.isfinite(number) or number <= 0:
        return math.nan
    return number


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
    ys = [_positive(v) for v in values]
    every = max(1, len(xs) // 8)
    ax.plot(xs, ys, color=color, linestyle=linestyle, linewidth=1.6, marker=marker,
            markersize=4, markevery=every, label=label)
    numbers_ = [_float(v) for v in values]
    broken = next((x for x, v in zip(xs, numbers_, strict=True)
                   if v is None or not math.isfinite(v)), None)
    zero = next((x for x, v in zip(xs, numbers_, strict=True) if v == 0), None)
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
        ax.text(0.5, 0.5, f"no positive finite {what}", transform=ax.transAxes,
                ha="center", va="center", color="#777777")


def _activations(block: Mapping[str, Any]) -> list[str]:
    """relu, tanh, gelu first (when present), then any others, in their order."""
    names = list(block)
    return [a for a in _ACTIVATIONS if a in block] + [a for a in names if a not in _ACTIVATIONS]


def _depth_figure(results: Mapping[str, Any]) -> Figure:
    study = _at(results, "depth")
    block = _at(results, "depth", "activations")
    acts = _activations(block)
    inits = [name for act in acts for name in block[act]]
    styles = _styles(inits)
    rows = max(1, len(acts))
    height = 2.75 * rows + 1.3
    figure = _new_figure(figsize=(10.0, height))
    axes = figure.subplots(rows, 2, sharex=True, squeeze=False)
    # Fixed margins: constrained layout measured every tick label and cost over half of the
    # demo report's time.
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
    study = _at(results, "training")
    runs = _at(results, "training", "runs")
    recipe = study.get("recipe", {})
    styles = _styles(runs)
    figure = _new_figure(figsize=(10.0, 4.6))
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
    accuracies = [_float(runs[n].get("test_accuracy")) for n in names]
    widths = [a if a is not None and math.isfinite(a) else 0.0 for a in accuracies]
    positions = list(range(len(names)))
    ax_acc.barh(positions, widths, color=[styles[n][0] for n in names], height=0.7)
    for y, width, accuracy in zip(positions, widths, accuracies, strict=True):
        inside = width > 0.8
        ax_acc.text(width - 0.02 if inside else width + 0.02, y, _accuracy(accuracy),
                    va="center", ha="right" if inside else "left", fontsize=9,
                    color="white" if inside else "#222222")
    ax_acc.axvline(_CHANCE, color="#555555", linestyle="--", linewidth=1.2)
    ax_acc.text(_CHANCE, 1.0, " chance", transform=ax_acc.get_xaxis_transform(), va="bottom",
                ha="center", fontsize=8, color="#555555")
    ax_acc.set_yticks(positions, [_label(n) for n in names], fontsize=9)
    ax_acc.invert_yaxis()
    ax_acc.set_xlim(0.0, 1.08)
    ax_acc.set_xlabel("test accuracy")
    ax_acc.set_title("test accuracy after training", fontsize=10, pad=14)
    ax_acc.grid(True, axis="x", alpha=0.3)
    figure.suptitle(
        f"Training on digits: {study.get('depth', '?')}-layer ReLU MLP "
        f"(width {study.get('width', '?')}), SGD lr {_num(recipe.get('lr'))}, momentum "
        f"{_num(recipe.get('momentum'))}, batch {recipe.get('batch_size', '?')}, "
        f"{recipe.get('epochs', '?')} epochs", fontsize=12, parse_math=False)
    return figure


def _beyond_relu_figure(results: Mapping[str, Any]) -> Figure:
    gelu = _at(results, "beyond_relu", "gelu")
    tanh = _at(results, "beyond_relu", "tanh")
    figure = _new_figure(figsize=(10.0, 4.4))
    ax_gelu, ax_tanh = figure.subplots(1, 2)
    figure.subplots_adjust(left=0.07, right=0.98, top=0.84, bottom=0.12, wspace=0.22)
    shown = False
    gains = _at(results, "beyond_relu", "gelu", "gains")
    for (name, run), color in zip(gains.items(), ("#ef8f00", "#2e7d32", "#6a1b9a", "#1565c0"),
                                  strict=False):
        label = f"{name} (variance ×{_num(run.get('variance_per_layer'), 4)} per layer)"
        shown |= _profile(ax_gelu, list(run.get("std") or []), _label(label), color)
    _finish_log(ax_gelu, shown, "std")
    ax_gelu.set_title(f"GELU, {gelu.get('depth', '?')} layers: activation std", fontsize=10,
                      parse_math=False)
    ax_gelu.set_ylabel("activation std")
    shown = False
    runs = _at(results, "beyond_relu", "tanh", "runs")
    for (name, run), color in zip(runs.items(), ("#1565c0", "#2e7d32", "#c62828", "#6a1b9a"),
                                  strict=False):
        label = f"{name} (gradient ×{_num(run.get('grad_per_layer'), 4)} per layer back)"
        shown |= _profile(ax_tanh, list(run.get("grad") or []), _label(label), color)
    _finish_log(ax_tanh, shown, "gradient RMS")
    ax_tanh.set_title(f"tanh, {tanh.get('depth', '?')} layers, bias std "
                      f"{_num(tanh.get('bias_std'))}: gradient RMS, "
                      f"σw* = {_num(tanh.get('sigma_w_star'), 4)}", fontsize=10,
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


def _png(figure: Figure) -> bytes:
    return png_bytes(figure, dpi=_DPI)


# --- HTML ----------------------------------------------------------------------------------

# Inline CSS only; the Content-Security-Policy forbids scripts and any load but data: images.
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#fafafa;line-height:1.5}
main{max-width:960px;margin:0 auto;padding:0 1.2rem 3rem}
header{padding:1.2rem;color:#fff;background:#1565c0}
header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0}
h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
ul.findings li{margin:.25rem 0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee;background:#fff}
figcaption{color:#555;font-size:.9rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.88rem;background:#fff;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.25rem .55rem;vertical-align:top}
th{background:#f0f0f0;text-align:left}
td.n{text-align:right;white-space:nowrap;font-family:ui-monospace,Menlo,Consolas,monospace}
td.bad{background:#fdecea}td.ok{background:#edf7ed}
.tag{font-family:system-ui,sans-serif;font-size:.75rem;color:#555;margin-left:.35rem}
code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.9em}
.refs{color:#555;font-size:.85rem}
""".strip()

_e = escape
_data_uri = data_uri


def _table(head: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]]) -> str:
    """An HTML table; each cell is (text, class) and every text is escaped here."""
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "\n".join("<tr>" + "".join(f'<td class="{_e(kind)}">{_e(text)}</td>'
                                      for text, kind in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n'
            f"{body}\n</tbody></table></div>")


def _last(values: Any) -> Any:
    return values[-1] if isinstance(values, Sequence) and values else None


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, Sequence) and values else None


def _symmetry_section(results: Mapping[str, Any]) -> str:
    study = _at(results, "symmetry")
    runs = _at(results, "symmetry", "runs")
    rows = [[(name, "t"), (str(run.get("layer", "-")), "t"),
             (_num(run.get("max_unit_distance")), "n"),
             (_accuracy(run.get("test_accuracy")), "n")] for name, run in runs.items()]
    table = _table(("initialization", "layer measured", "max distance between units",
                    "test accuracy"), rows)
    return f"""<h2>1. Why not zeros (or any constant)?</h2>
<p>When every weight of a layer starts at the same value, every unit of that layer computes
the same function of its input and receives the same gradient, so every update keeps them the
same: a layer of {_e(study.get("width", "?"))} units behaves like a single unit, however long
it trains. The table shows it after training the {_e(study.get("depth", "?"))}-layer network:
the largest distance between the weight rows of any two units of one hidden layer, where 0
means they are all still copies of one another.</p>
<p>All zeros is worse still. Each weight's gradient is the product of the signal arriving
from below and the error arriving from above; with zero weights and zero biases the hidden
activations and the errors sent back are all exactly 0, so the hidden layers never receive a
gradient. Only the output bias learns: it learns how often each class occurs, which on ten
balanced classes is chance accuracy. Random initialization is there to break this
symmetry.</p>
{table}"""


def _variance_cell(profile: Mapping[str, Any]) -> tuple[str, str]:
    """The variance factor per layer, tagged vanishing / exploding where it is unhealthy."""
    factor = _float(profile.get("variance_per_layer"))
    text = _num(factor, 4)
    healthy = profile.get("healthy")
    if healthy is True:
        return f"{text} ✓", "n ok"
    if healthy is False:
        if factor is not None and math.isfinite(factor):
            text += " (vanishes)" if factor < 1 else " (explodes)"
        return text, "n bad"
    return text, "n"


def _depth_section(results: Mapping[str, Any], uri: str) -> str:
    study = _at(results, "depth")
    block = _at(results, "depth", "activations")
    acts = _activations(block)
    inits = list(dict.fromkeys(name for act in acts for name in block[act]))
    rows = [[(name, "t")] + [_variance_cell(block[act][name]) if name in block[act] else ("-", "n")
                             for act in acts] for name in inits]
    table = _table(["initialization"] + [f"{act}: variance × per layer" for act in acts], rows)
    width = study.get("width", "?")
    healthy = [name for name in inits
               if all(block[act].get(name, {}).get("healthy") is True for act in acts)]
    steady = (f"In this run the profiles of {', '.join(healthy)} are healthy for every "
              "activation." if healthy else "In this run no initialization is healthy for "
              "every activation.")
    return f"""<h2>2. Too small, too large?</h2>
<figure>
<img alt="Activation std and gradient RMS per layer, for each activation and initialization"
src="{_e(uri)}">
<figcaption>A batch through a {_e(study.get("depth", "?"))}-layer MLP of width {_e(width)}:
the std of each layer's activations (left) and the RMS of the gradient arriving at it (right),
log scale. An x on a panel's top edge marks where a profile became non-finite (overflow), a
triangle on the bottom edge where it reached exactly 0.</figcaption>
</figure>
<p>Each layer multiplies the variance of the signal by about fan_in × Var(W) × E[φ(z)²] / Var(z)
on the way forward, and the gradient by a similar factor on the way back; through
{_e(study.get("depth", "?"))} layers that factor is compounded {_e(study.get("depth", "?"))}
times, so anything but 1 vanishes or explodes. N(0, 0.01) is far too small for width
{_e(width)} and N(0, 1) far too large: with ReLU and GELU their activations fall or climb by
orders of magnitude; tanh, bounded by 1, saturates instead, and then its gradients grow on the
way back.</p>
<p>A ReLU zeroes half of its inputs and so keeps half of the second moment. Glorot's
Var(W) = 2 / (fan_in + fan_out), which is 1 / width here, therefore halves the variance at
every ReLU layer, and He's 2 / fan_in, derived for exactly this reason (He et al. 2015), keeps
it. With PyTorch's default for <code>nn.Linear</code> (uniform with bound 1 / √fan_in,
variance 1 / (3 fan_in)) the weights keep only about a sixth. tanh and GELU need gains of their
own: <code>auto</code> uses the gain of the activation each layer feeds (1 / √E[φ(z)²] for
z ~ N(0, 1)), and LSUV (Mishkin and Matas 2016) measures every layer on a batch and rescales
it to unit variance. {_e(steady)}</p>
<p>The table gives each profile's variance factor per layer (the geometric mean from the first
layer to the last; 1 is ideal), marked ✓ where the profile is healthy and as vanishing or
exploding where it is not.</p>
{table}"""


def _training_section(results: Mapping[str, Any], uri: str) -> str:
    study = _at(results, "training")
    runs = _at(results, "training", "runs")
    recipe = study.get("recipe", {})
    rows = [[(name, "t"), (_accuracy(run.get("test_accuracy")), "n"),
             (_num(run.get("test_loss")), "n"), (_num(_last(run.get("losses"))), "n")]
            for name, run in runs.items()]
    table = _table(("initialization", "test accuracy", "test loss", "last epoch's training loss"),
                   rows)
    accuracy = {name: _float(run.get("test_accuracy")) for name, run in runs.items()}
    good = [n for n, a in accuracy.items() if a is not None and a >= 0.9]
    stuck = [n for n, a in accuracy.items() if a is not None and a < _CHANCE + 0.1]
    outcome = [f"{len(good)} of {len(runs)} initializations reached 90% test accuracy or more"
               + (f" ({', '.join(good)})" if good else "")]
    if stuck:
        outcome.append(f"{', '.join(stuck)} stayed within 10 points of chance")
    return f"""<h2>3. Does it matter for learning?</h2>
<figure>
<img alt="Training loss per epoch and test accuracy for each initialization" src="{_e(uri)}">
<figcaption>Mean training loss per epoch (left, log scale) and test accuracy after training
(right); the dashed line is chance (0.1, ten classes).</figcaption>
</figure>
<p>The same {_e(study.get("depth", "?"))}-layer ReLU network (width
{_e(study.get("width", "?"))}) trained on scikit-learn's 8×8 digits with one fixed recipe:
SGD with learning rate {_e(_num(recipe.get("lr")))}, momentum
{_e(_num(recipe.get("momentum")))}, batches of {_e(recipe.get("batch_size", "?"))},
{_e(recipe.get("epochs", "?"))} epochs, no normalization, no schedule. Only the initialization
changes. In this run {_e("; ".join(outcome))}.</p>
<p>A signal that vanishes on the way forward comes with a gradient that vanishes on the way
back, so the first layers of a network initialized too small barely move in the steps
available, and a constant initialization never breaks its symmetry at all. Initializations that
keep the variance near 1 per layer give every layer a usable gradient from the first
step.</p>
{table}"""


def _beyond_relu_section(results: Mapping[str, Any], uri: str) -> str:
    gelu = _at(results, "beyond_relu", "gelu")
    tanh = _at(results, "beyond_relu", "tanh")
    gelu_rows = [[(name, "t"), (_num(run.get("variance_per_layer")), "n"),
                  (_num(_last(run.get("std"))), "n")]
                 for name, run in _at(results, "beyond_relu", "gelu", "gains").items()]
    gelu_table = _table(("GELU net, gain", "variance × per layer",
                         f"activation std at layer {gelu.get('depth', '?')}"), gelu_rows)
    tanh_rows = [[(name, "t"), (_num(run.get("grad_per_layer")), "n"),
                  (_num(_last(run.get("grad"))), "n"), (_num(_first(run.get("grad"))), "n")]
                 for name, run in _at(results, "beyond_relu", "tanh", "runs").items()]
    tanh_table = _table(("tanh net, weight std", "gradient × per layer (backward)",
                         f"gradient RMS at layer {tanh.get('depth', '?')}",
                         "gradient RMS at layer 1"), tanh_rows)
    star, bias = _num(tanh.get("sigma_w_star"), 4), _num(tanh.get("bias_std"))
    return f"""<h2>4. Beyond ReLU</h2>
<figure>
<img alt="GELU activation std for two gains and tanh gradient RMS around the critical point"
src="{_e(uri)}">
<figcaption>Left: activation std through a {_e(gelu.get("depth", "?"))}-layer GELU network
with ReLU's gain and with the gain computed for GELU. Right: gradient RMS through a
{_e(tanh.get("depth", "?"))}-layer tanh network at half, exactly and twice the critical weight
std σw* = {_e(star)} (bias std {_e(bias)}); both log scale.</figcaption>
</figure>
<p>He's factor of 2 belongs to ReLU, for which E[relu(z)²] = 1/2. GELU keeps less of the
second moment, E[gelu(z)²] ≈ 0.425 for z ~ N(0, 1), so its gain is 1 / √0.425 ≈ 1.534
(<code>wi.gain("gelu")</code>). With ReLU's gain √2 a GELU network keeps only about
2 × 0.425 ≈ 0.85 of its variance per layer and fades with depth. The computed gain maps unit
variance to unit variance; GELU, unlike ReLU, is not homogeneous (scaling its input does not
just scale its output), so away from unit variance the factor differs from 1 and over many
layers the variance can still drift, slowly. The first table gives the measured factors.</p>
<p>For tanh the variance settles at a fixed point whatever the gain, and what decides whether
gradients survive depth is χ₁ = σw² E[tanh′(h)²] at that fixed point, for weights drawn with
std σw / √fan_in (Poole et al. 2016; Schoenholz et al. 2017). Below the critical σw* (the
ordered phase) the gradient shrinks geometrically on its way back to the first layer, above it
(the chaotic phase) it grows; at σw* = {_e(star)}, which
<code>wi.critical_point("tanh", bias_std={_e(bias)})</code> computes, it crosses all
{_e(tanh.get("depth", "?"))} layers at about the same size.</p>
{gelu_table}
{tanh_table}"""


_REFERENCES = """<h2>References</h2>
<ul class="refs">
<li>X. Glorot and Y. Bengio. Understanding the difficulty of training deep feedforward neural
networks. AISTATS 2010.</li>
<li>K. He, X. Zhang, S. Ren and J. Sun. Delving deep into rectifiers: surpassing human-level
performance on ImageNet classification. ICCV 2015.</li>
<li>D. Mishkin and J. Matas. All you need is a good init. ICLR 2016.</li>
<li>B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli. Exponential expressivity
in deep neural networks through transient chaos. NeurIPS 2016.</li>
<li>S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein. Deep information
propagation. ICLR 2017.</li>
</ul>"""


def demo_html(results: Mapping[str, Any], pngs: Mapping[str, bytes]) -> str:
    """The demo as one self-contained HTML page (a string): the findings, then four questions
    (why not zeros, too small or too large, does it matter for learning, beyond ReLU), each
    with its figure, its numbers and a short explanation.

    `pngs` holds the PNG bytes of the figures by name ("depth", "training", "beyond_relu"), as
    drawn by `demo_figures`; they are embedded as base64 ``data:`` URIs and the CSS is inline,
    so the page loads nothing and runs no script (its Content-Security-Policy forbids both).
    Every string and number from `results` is HTML-escaped.

    Raises:
        InitError: a figure is missing from `pngs`, or `results` lacks a part of the schema.
    """
    missing = [key for key in FIGURES if key not in pngs]
    if missing:
        raise InitError(f"`pngs` lacks the figure(s) {', '.join(map(repr, missing))}: pass the "
                        f"PNG bytes of every figure of demo_figures() ({', '.join(FIGURES)}).")
    uris = {key: _data_uri(pngs[key]) for key in FIGURES}
    findings = "\n".join(f"<li>{_e(f.get('text', ''))}</li>" for f in _at(results, "findings"))
    sections = "\n".join((_symmetry_section(results), _depth_section(results, uris["depth"]),
                          _training_section(results, uris["training"]),
                          _beyond_relu_section(results, uris["beyond_relu"])))
    return page("weightinit demo: what initialization does", _CSS, f"""<header>
<h1>weightinit demo: what initialization does</h1>
<p>{_e(_run_line(results))}</p>
</header>
<main>
<h2>Findings</h2>
<ul class="findings">
{findings or "<li>No findings.</li>"}
</ul>
{sections}
<p class="refs">Every number on this page is in <code>results.json</code>, which
<code>weightinit demo</code> writes next to it.</p>
{_REFERENCES}
</main>""")


# --- files ---------------------------------------------------------------------------------


def _jsonable(value: Any, where: str = "results") -> Any:
    """`value` with NaN and Inf as None, tuples as lists; InitError on anything not JSON."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InitError(f"{where} is a {type(value).__name__} ({value!r:.80}), which JSON cannot "
                    "hold: results must hold only dicts, lists, strings, numbers, booleans "
                    "and None.")


def save_demo(results: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Write the demo's results into the folder `out_dir` (created, parents too):
    results.json (NaN and Inf as null, indent 2), the figures (depth.png, training.png,
    beyond_relu.png) and index.html (the page of `demo_html`). Files of those names are
    replaced; nothing else in the folder is touched.

    Returns the paths written: {"index": ..., "results": ..., "depth": ..., "training": ...,
    "beyond_relu": ...}.

    Raises:
        InitError: `out_dir` is a file or cannot be created, matplotlib is not installed, or
            `results` lacks a part of the schema. Nothing is written then.
    """
    target = os.fspath(out_dir)
    if os.path.exists(target) and not os.path.isdir(target):
        raise InitError(f"`out_dir` ({target!r}) is a file, not a folder: choose a folder "
                        "to write the demo's report into (it is created if missing).")
    above = os.path.dirname(os.path.abspath(target))
    while not os.path.exists(above):  # checked before drawing: a bad path fails at once
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise InitError(f"`out_dir` ({target!r}) could not be created: {above!r} is a file, "
                        "not a folder.")
    text = json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n"
    pngs = {key: _png(figure) for key, figure in demo_figures(results).items()}
    page = demo_html(results, pngs)
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as error:
        raise InitError(f"`out_dir` ({target!r}) could not be created: {error}.") from None
    paths = {"index": os.path.join(target, "index.html"),
             "results": os.path.join(target, "results.json")}
    with open(paths["results"], "w", encoding="utf-8", newline="\n") as file:
        file.write(text)
    for key, png in pngs.items():
        paths[key] = os.path.join(target, f"{key}.png")
        with open(paths[key], "wb") as binary:
            binary.write(png)
    with open(paths["index"], "w", encoding="utf-8", newline="\n") as file:
        file.write(page)
    return paths
