"""Presentation of a `Diagnosis`: a terminal table (rich), figures (matplotlib) and one HTML file.

This module only reads a Diagnosis. matplotlib is optional and imported inside the functions
that draw; figures are built with the object-oriented API (`Figure` + the Agg canvas), so
pyplot is never imported and no global style (`rcParams`) is changed.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import InitError, check_positive_int
from .._render import (
    data_uri,
    escape,
    html_table,
    new_figure,
    note,
    number,
    page,
    png_bytes,
    positive,
    printable,
    write_text,
)
from ._types import SEVERITIES, Diagnosis, Finding, LayerStats, Severity

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from rich.console import JustifyMethod

_RICH_STYLE: dict[str, str] = {"error": "bold red", "warning": "yellow", "info": "dim"}
_PLOT_COLOR: dict[str, str] = {"error": "#c62828", "warning": "#ef8f00", "info": "#607d8b",
                               "healthy": "#2e7d32"}
_MAX_HISTOGRAMS = 12
_NEEDS = "Diagnosis figures and HTML"
_FALLBACK = "The table (Diagnosis.table()) and JSON (Diagnosis.to_json()) work without it."


# --- numbers and words --------------------------------------------------------------------


def _clean(text: str) -> str:
    """`text` as UTF-8 can encode it and a terminal shows it: a lone surrogate (a module named
    ``"\\ud800"``) becomes the escape ``\\ud800``, where it would crash a terminal, matplotlib
    or the HTML file; a control character its escape too (`weightinit._render.printable`)."""
    return printable(text)


def _percent(fraction: float | None) -> str:
    return number(None if fraction is None else 100.0 * fraction)


def _weight_std(x: LayerStats) -> str:
    if x.weight_std is None and x.recommended_std is None:
        return "-"
    return f"{number(x.weight_std)} / {number(x.recommended_std)}"


def _out_std(x: LayerStats) -> str:
    broken = f" ({x.out_nonfinite} non-finite)" if x.out_nonfinite else ""
    return number(x.out_std) + broken


def _status(d: Diagnosis) -> str:
    """One line: healthy, or the worst severity and how many findings of each."""
    counts = {s: sum(f.severity == s for f in d.findings) for s in reversed(SEVERITIES)}
    listed = ", ".join(f"{n} {s}{'s' if n != 1 and s != 'info' else ''}"
                       for s, n in counts.items() if n)
    if d.healthy:
        return "healthy" + (f" ({listed})" if listed else "")
    return f"not healthy: worst finding is {d.worst} ({listed})"


def _loss_line(d: Diagnosis) -> str:
    return f"{len(d.layers)} layers, loss {number(d.loss)} ({d.loss_kind})"


def _layer_severity(d: Diagnosis) -> dict[str, Severity]:
    """The worst severity of the findings about each layer (by qualified name)."""
    worst: dict[str, Severity] = {}
    for f in d.findings:
        old = worst.get(f.layer)
        if old is None or SEVERITIES.index(f.severity) > SEVERITIES.index(old):
            worst[f.layer] = f.severity
    return worst


_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("#", "right"), ("layer", "left"), ("class", "left"), ("activation <- source", "left"),
    ("out std", "right"), ("out RMS", "right"), ("signal", "right"), ("dead %", "right"),
    ("saturated %", "right"),
    ("grad out RMS", "right"), ("grad W RMS", "right"), ("weight std / recommended", "right"),
)
# What the terminal keeps when every column does not fit: the numbers findings are read from.
_COMPACT = ("#", "layer", "out std", "signal", "dead %", "saturated %", "grad out RMS",
            "weight std / recommended")



def _layer_cells(x: LayerStats) -> tuple[str, ...]:
    return (str(x.index), x.name, x.layer, f"{x.activation} <- {x.source}", _out_std(x),
            number(x.out_rms), number(x.out_signal), _percent(x.dead_fraction),
            _percent(x.saturated_fraction),
            number(x.grad_out_rms), number(x.grad_weight_rms), _weight_std(x))


# --- terminal ------------------------------------------------------------------------------


def table(d: Diagnosis) -> Any:
    """The per-layer statistics and the findings as a `rich` renderable (a Group of two
    tables) that fits the width it is printed at: every statistic when there is room, else
    the ones that show a problem (`weightinit._layout.AdaptiveTable`); numbers and layer
    names are never split, findings wrap at spaces.

    Every string from the model is added as plain text, never parsed as rich markup, so a
    module named ``[bold]x`` or ``[/]`` shows as written.
    """
    from rich.console import Group
    from rich.text import Text

    from .._layout import AdaptiveTable, Breakable

    severity_of = _layer_severity(d)
    headers = [name for name, _ in _COLUMNS]
    right = {name for name, justify in _COLUMNS if justify == "right"}
    rows = []
    for x in d.layers:
        severity = severity_of.get(x.name)
        rows.append({
            header: Breakable(_clean(cell), "." if header == "layer" else "",
                              "  " if header == "layer" else "",
                              "right" if header in right else "left",
                              _RICH_STYLE[severity] if severity and header == "layer" else "")
            for header, cell in zip(headers, _layer_cells(x), strict=True)})
    caption = _clean(_loss_line(d) + "".join(f"\n{n}" for n in d.notes))
    layers = AdaptiveTable(Text(f"weightinit diagnose: {_status(d)}", style="table.title"),
                           Text(caption, style="table.caption"), headers, rows,
                           compact=_COMPACT, right=right, whole={"layer"})
    findings = AdaptiveTable(
        Text("findings" if d.findings else "findings: none", style="table.title"), None,
        ("finding", "what is wrong, what it does, the fix"),
        [{"finding": Breakable(f"{f.severity}\n{f.kind}\n{_clean(f.layer or '(model)')}",
                               "._", "  ", style=_RICH_STYLE[f.severity]),
          "what is wrong, what it does, the fix": Breakable(
              f"{_clean(f.message)}\nFix: {_clean(f.fix)}\n{_clean(f.code)}")}
         for f in _sorted(d.findings)])
    return Group(layers, findings)


def _sorted(findings: Sequence[Finding]) -> list[Finding]:
    """Worst first; the measuring order otherwise."""
    return sorted(findings, key=lambda f: -SEVERITIES.index(f.severity))


# --- figures -------------------------------------------------------------------------------


def _depth_panel(ax: Axes, xs: list[int], values: list[float | None], label: str,
                 color: str) -> None:
    ys = [positive(v) for v in values]
    ax.plot(xs, ys, marker="o", markersize=4, color=color, label=label)
    # Values a log axis cannot show, marked along the bottom edge (y in axes units).
    for name, marker, test in (
        ("zero", "v", lambda v: v is not None and v == 0),
        ("nan / inf", "X", lambda v: v is not None and not math.isfinite(v)),
    ):
        bad = [x for x, v in zip(xs, values, strict=True) if test(v)]
        if bad:
            ax.plot(bad, [0.04] * len(bad), linestyle="none", marker=marker, color="#c62828",
                    transform=ax.get_xaxis_transform(), clip_on=False, label=f"{label}: {name}")
    ax.set_yscale("log")
    ax.set_ylabel(label)
    ax.grid(True, which="major", alpha=0.3)
    if all(math.isnan(y) for y in ys):
        note(ax, f"no positive finite {label}")
    ax.legend(loc="best", fontsize=8)


def depth_figure(d: Diagnosis) -> Figure:
    """Activation std and gradient RMS (d loss / d output) of every layer against depth.

    Two panels sharing the x axis (layer index, execution order), log y axes. Zero and
    non-finite values, which a log axis cannot show, are marked along each panel's bottom edge;
    layers with a warning or an error are shaded. The title says healthy or the worst severity.
    """
    figure = new_figure(_NEEDS, _FALLBACK, figsize=(8.0, 6.0), layout="constrained")
    ax_out, ax_grad = figure.subplots(2, 1, sharex=True)
    xs = [x.index for x in d.layers]
    _depth_panel(ax_out, xs, [x.out_std for x in d.layers], "activation std", "#1565c0")
    _depth_panel(ax_grad, xs, [x.grad_out_rms for x in d.layers], "gradient RMS", "#6a1b9a")
    index_of = {x.name: x.index for x in d.layers}
    for layer, severity in _layer_severity(d).items():
        if layer in index_of and severity != "info":
            for ax in (ax_out, ax_grad):
                ax.axvspan(index_of[layer] - 0.4, index_of[layer] + 0.4,
                           color=_PLOT_COLOR[severity], alpha=0.12, linewidth=0)
    if not xs:
        ax_out.set_xticks([])
    elif len(xs) <= 40:
        ax_grad.set_xticks(xs, [str(x) for x in xs], fontsize=8 if len(xs) <= 20 else 6)
    else:
        from matplotlib.ticker import MaxNLocator

        ax_grad.xaxis.set_major_locator(MaxNLocator(nbins=20, integer=True))
    ax_grad.set_xlabel("layer index (execution order)")
    ax_out.set_title("output std per layer", fontsize=10)
    ax_grad.set_title("gradient RMS at each layer's output", fontsize=10)
    key = "healthy" if d.healthy else (d.worst or "healthy")
    figure.suptitle(f"weightinit diagnose: {_status(d)}", color=_PLOT_COLOR[key],
                    parse_math=False)
    return figure


def _has_histogram(x: LayerStats) -> bool:
    edges, counts = x.hist_edges, x.hist_counts
    return (len(counts) > 0 and len(edges) == len(counts) + 1 and sum(counts) > 0
            and all(math.isfinite(e) for e in edges)
            and all(a < b for a, b in itertools.pairwise(edges)))


def _spread(items: Sequence[LayerStats], most: int) -> list[LayerStats]:
    """Up to `most` items picked evenly from first to last."""
    if len(items) <= most:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (most - 1)) for i in range(most)})
    return [items[i] for i in picks]


def _short(text: str, width: int = 36) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def histogram_figure(d: Diagnosis, max_layers: int = _MAX_HISTOGRAMS) -> Figure:
    """Histograms of each layer's outputs, one small panel per layer (Glorot & Bengio 2010).

    Up to `max_layers` layers, picked evenly through depth; layers without a recorded
    histogram are skipped. Each panel has its own x range (a vanishing or exploding layer
    would be a spike or a flat line on a shared one); read the scale from its axis. The y axis
    is the fraction of the sampled outputs in each bin.

    X. Glorot and Y. Bengio, Understanding the difficulty of training deep feedforward neural
    networks, AISTATS 2010.
    """
    check_positive_int("max_layers", max_layers)
    recorded = [x for x in d.layers if _has_histogram(x)]
    picked = _spread(recorded, max_layers)
    cols = max(1, min(4, len(picked)))
    rows = max(1, math.ceil(len(picked) / cols))
    figure = new_figure(_NEEDS, _FALLBACK, figsize=(2.9 * cols + 0.4, 2.2 * rows + 0.7),
                        layout="constrained")
    axes = list(figure.subplots(rows, cols, squeeze=False).flat)
    if not picked:
        note(axes[0], "no output histograms recorded")
        axes[0].set_axis_off()
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    for i, (ax, x) in enumerate(zip(axes, picked, strict=False)):
        total = sum(x.hist_counts)
        share = [c / total for c in x.hist_counts]
        color = cmap(0.85 * i / max(1, len(picked) - 1))
        ax.stairs(share, x.hist_edges, fill=True, color=color, alpha=0.45)
        ax.stairs(share, x.hist_edges, color=color, linewidth=1.0)
        ax.set_title(f"#{x.index} {_short(_clean(x.name))}", fontsize=8, parse_math=False)
        ax.text(0.98, 0.95, f"{x.layer}\nstd {number(x.out_std)}", transform=ax.transAxes,
                ha="right", va="top", fontsize=7, color="#444444", parse_math=False)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.25)
    for ax in axes[len(picked):] if picked else []:
        ax.set_visible(False)
    shown = (f"{len(picked)} of {len(recorded)} layers, evenly through depth"
             if len(picked) < len(recorded) else f"{len(picked)} layers")
    figure.suptitle(f"Output histograms ({shown})", fontsize=11)
    return figure


def _png_data_uri(figure: Figure) -> str:
    return data_uri(png_bytes(figure, dpi=100))


# --- HTML ----------------------------------------------------------------------------------

# Inline CSS only; the Content-Security-Policy forbids scripts and any load but data: images.
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#fafafa;line-height:1.45}
main{max-width:1200px;margin:0 auto;padding:0 1.2rem 3rem}
header{padding:1.2rem;color:#fff}
header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0}
.s-healthy{background:#2e7d32}.s-error{background:#c62828}.s-warning{background:#ef8f00}
h2{margin-top:2rem;border-bottom:1px solid #ddd}
.finding{background:#fff;border:1px solid #ddd;border-left:6px solid #607d8b;border-radius:4px;
padding:.6rem .9rem;margin:.8rem 0}
.finding.error{border-left-color:#c62828}.finding.warning{border-left-color:#ef8f00}
.finding h3{margin:0 0 .3rem;font-size:1rem}
.badge{display:inline-block;padding:0 .45rem;border-radius:3px;font-size:.8rem;color:#fff;
background:#607d8b;text-transform:uppercase;margin-right:.4rem}
.badge.error{background:#c62828}.badge.warning{background:#ef8f00}
.numbers{color:#555;font-size:.85rem}
pre{background:#f3f3f3;padding:.5rem .7rem;overflow-x:auto;border-radius:3px}
code,pre,td.n{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee;background:#fff}
figcaption{color:#555;font-size:.9rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;background:#fff}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}
th{background:#f0f0f0;text-align:left}
td.n{text-align:right;white-space:nowrap}
tr.error td.name{color:#c62828;font-weight:600}tr.warning td.name{color:#b26a00;font-weight:600}
""".strip()

_e = escape


def _finding_html(f: Finding) -> str:
    where = f" <code>{_e(f.layer)}</code>" if f.layer else " (whole model)"
    numbers = ", ".join(f"{_e(k)} = {_e(number(v))}" for k, v in f.numbers.items())
    parts = [
        f'<article class="finding {_e(f.severity)}">',
        f'<h3><span class="badge {_e(f.severity)}">{_e(f.severity)}</span>{_e(f.kind)}'
        f"{where}</h3>",
        f"<p>{_e(f.message)}</p>",
    ]
    if numbers:
        parts.append(f'<p class="numbers">{numbers}</p>')
    if f.fix:
        parts.append(f"<p><strong>Fix:</strong> {_e(f.fix)}</p>")
    if f.code:
        parts.append(f"<pre><code>{_e(f.code)}</code></pre>")
    parts.append("</article>")
    return "\n".join(parts)


def _layers_html(d: Diagnosis) -> str:
    """The layers table: numbers right-aligned, the layer's name in the color of its worst
    finding."""
    severity_of = _layer_severity(d)
    kinds = ["n" if justify == "right" else ("name" if column == 1 else "t")
             for column, (_, justify) in enumerate(_COLUMNS)]
    rows = [list(zip(_layer_cells(x), kinds, strict=True)) for x in d.layers]
    return html_table([name for name, _ in _COLUMNS], rows,
                      [severity_of.get(x.name, "") for x in d.layers])


def to_html(d: Diagnosis) -> str:
    """The diagnosis as one self-contained HTML page (a string).

    Figures are embedded as base64 PNG ``data:`` URIs and the CSS is inline: the page loads
    nothing from the network and runs no script. Every string from the model (layer names,
    messages, codes) is HTML-escaped.
    """
    depth_uri = _png_data_uri(depth_figure(d))
    histogram_uri = _png_data_uri(histogram_figure(d))
    key = "healthy" if d.healthy else (d.worst or "healthy")
    status = _status(d)
    findings = ("\n".join(_finding_html(f) for f in _sorted(d.findings))
                or "<p>No findings.</p>")
    notes = ("<h2>Notes</h2>\n<ul>" + "".join(f"<li>{_e(n)}</li>" for n in d.notes) + "</ul>"
             if d.notes else "")
    return _clean(page(f"weightinit diagnose: {status}", _CSS, f"""<header class="s-{_e(key)}">
<h1>weightinit diagnose: {_e(status)}</h1>
<p>{_e(_loss_line(d))}</p>
</header>
<main>
<h2>Findings</h2>
{findings}
{notes}
<h2>Signal through depth</h2>
<figure>
<img alt="Activation std and gradient RMS per layer against depth" src="{depth_uri}">
<figcaption>Output std (top) and gradient RMS at each layer's output (bottom), log scale,
against layer index. Zero and non-finite values are marked along the bottom edge; layers
with a warning or error are shaded.</figcaption>
</figure>
<h2>Output histograms</h2>
<figure>
<img alt="Histograms of each layer's outputs" src="{histogram_uri}">
<figcaption>Distribution of each layer's outputs (a sample), after Glorot and Bengio (2010);
each panel has its own x range.</figcaption>
</figure>
<h2>Layers</h2>
{_layers_html(d)}
</main>"""))


def save_html(d: Diagnosis, path: str | os.PathLike[str]) -> str:
    """Write `to_html(d)` to `path` as UTF-8 (one file, nothing else) and return the path.

    Raises:
        InitError: `path` is not a str or os.PathLike, its folder does not exist, it is a
            folder, or matplotlib is not installed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InitError(f"`path` must be a file path (a str or os.PathLike), got "
                        f"{type(path).__name__} {str(path)[:80]!r}; for example "
                        "d.save_html('diagnosis.html').")
    target = os.fspath(path)
    if not isinstance(target, str):
        raise InitError(f"`path` must name a file as text, got {type(target).__name__} "
                        f"{target[:80]!r}; pass a str.")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise InitError(f"`path` ({target!r}): the folder {folder!r} does not exist; "
                        "create it first or choose another path.")
    if os.path.isdir(target):
        raise InitError(f"`path` ({target!r}) is a folder; give a file name such as "
                        f"{os.path.join(target, 'diagnosis.html')!r}.")
    write_text(target, to_html(d))
    return target
