"""The drawing pieces the demo's figures share: one look per initialization, profiles relative
to a reference layer inside a clipped log band, the "flat" band of the verdict rule, and
readable log ticks (10⁻⁴ ... 10⁴, as text: no mathtext)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._render import real
from ._values import FLAT

if TYPE_CHECKING:
    from matplotlib.axes import Axes

BAND = (1e-4, 1e4)
"""The y range of a relative profile: 8 decades, so that a halving per layer is a clear slope
and the flat ones can be told apart; a profile that leaves it ends in a marker on the edge."""

# One look per initialization, the same in every figure. Dashed and dotted lines for the ones
# that can coincide with He (auto, LSUV, orthogonal), so the line under them stays visible.
INIT_STYLE: dict[str, tuple[str, str, str]] = {
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
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
FLAT_COLOR = "#e3f2e1"


def label(text: object) -> str:
    """A legend label shown as written: no mathtext, not hidden by a leading underscore."""
    shown = str(text).replace("$", r"\$")
    return " " + shown if shown.startswith("_") else shown


def styles(names: Iterable[str]) -> dict[str, tuple[str, str, str]]:
    """Color, line style and marker for each name: the fixed look of the known ones."""
    found: dict[str, tuple[str, str, str]] = {}
    spare = 0
    for name in names:
        if name in found:
            continue
        if name in INIT_STYLE:
            found[name] = INIT_STYLE[name]
        else:
            found[name] = (_SPARE_COLORS[spare % len(_SPARE_COLORS)], "-",
                           _SPARE_MARKERS[spare % len(_SPARE_MARKERS)])
            spare += 1
    return found


def power_of_ten(value: float) -> str:
    """10⁻⁴, 10⁻², 1, 10², ...: a decade as plain text."""
    if value <= 0 or not math.isfinite(value):
        return ""
    exponent = round(math.log10(value))
    if exponent == 0:
        return "1"
    if exponent == 1:
        return "10"
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def decade_axis(ax: Axes, low: float, high: float, every: int = 2) -> None:
    """A log y axis from `low` to `high` with a labelled tick every `every` decades."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ax.set_yscale("log")
    ax.set_ylim(low, high)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = [10.0 ** e for e in range(first, last + 1) if (e - first) % every == 0]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: power_of_ten(value)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)


def flat_band(ax: Axes) -> Any:
    """The band where a relative second moment reads "flat" (within FLAT either way)."""
    return ax.axhspan(1.0 / FLAT, FLAT, color=FLAT_COLOR, zorder=0, linewidth=0)


def relative(values: Sequence[Any], reference: int, *, square: bool = True) -> list[float]:
    """Each value divided by values[reference] (squared: a second moment), NaN where either
    is missing, 0 where the value is 0, inf where it is inf."""
    base = real(values[reference]) if 0 <= reference < len(values) else None
    out = []
    for value in values:
        x = real(value)
        if base is None or not (math.isfinite(base) and base > 0) or x is None or math.isnan(x):
            out.append(math.nan)
            continue
        ratio = x / base
        out.append(ratio * ratio if square else ratio)
    return out


def clipped_profile(ax: Axes, xs: Sequence[int], ys: Sequence[float], name: str,
                    style: tuple[str, str, str], low: float, high: float, *,
                    backward: bool = False) -> bool:
    """One profile inside [low, high] on a log axis; True if any of it is shown.

    Where it first leaves the band, going from its first layer (from its last with
    `backward`), a marker sits on the edge it left by: a triangle up on the top edge, down on
    the bottom edge (0 included), an x on the top edge where it has no number (NaN: overflow
    on the way, or missing)."""
    color, linestyle, marker = style
    shown = [y if math.isfinite(y) and low <= y <= high else math.nan for y in ys]
    every = max(1, len(xs) // 7)
    ax.plot(xs, shown, color=color, linestyle=linestyle, linewidth=1.6, marker=marker,
            markersize=4, markevery=every, label=label(name))
    pairs = list(zip(xs, ys, strict=True))
    for x, y in reversed(pairs) if backward else pairs:
        if math.isfinite(y) and low <= y <= high:
            continue
        edge, mark = ((1.0, "x") if math.isnan(y) else (1.0, "^") if y > high
                      else (0.0, "v"))
        ax.plot([x], [edge], linestyle="none", marker=mark, markersize=7, color=color,
                transform=ax.get_xaxis_transform(), clip_on=False, label="_nolegend_")
        break
    return any(math.isfinite(v) for v in shown)


def mean_of(runs: Sequence[Sequence[Any]]) -> list[float]:
    """The mean over runs at each position, of the runs long enough (NaN where none is)."""
    length = max((len(r) for r in runs), default=0)
    out = []
    for i in range(length):
        values = [x for x in (real(r[i]) for r in runs if len(r) > i) if x is not None]
        out.append(sum(values) / len(values) if values else math.nan)
    return out


def extreme_of(runs: Sequence[Sequence[Any]], pick: Any) -> list[float]:
    """min or max (`pick`) over runs at each position (NaN where none has a number)."""
    length = max((len(r) for r in runs), default=0)
    out = []
    for i in range(length):
        values = [x for x in (real(r[i]) for r in runs if len(r) > i)
                  if x is not None and math.isfinite(x)]
        out.append(pick(values) if values else math.nan)
    return out
