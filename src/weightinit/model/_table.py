"""The plan as a table for people: `InitPlan.table()`.

Ten columns do not fit 80-120 terminal columns with GPT-2's names in them, and rich, short of
room, narrows the widest columns and breaks their words anywhere ("linea/r.wei/ght"). So the
table lays itself out when it is printed, for the width it is given: every column when they
fit without breaking a word, else the columns that say what is done to each parameter
(parameter, shape, role, spec, std, rule / note); `wide=True` keeps every column. Inside a
cell, text breaks only where it reads well: names after a dot (the rest indented), specs after
"(", "," or "=", shapes after "x"; a word is split only when it alone is wider than the whole
column (a terminal narrower than the compact table's shortest layout).

rich is imported here, and this module only by `InitPlan.table()`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..schemes import Spec

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult

    from ._plan import InitPlan

_INDENT = "  "  # before the continuation lines of a folded name


class Breakable:
    """Text (one or more lines) that wraps only after the characters in `after` and at
    spaces; continuation lines start with `indent`. Never parsed as markup."""

    def __init__(self, text: str, after: str = "", indent: str = "",
                 justify: JustifyMethod = "left") -> None:
        # A lone surrogate (from a name built of undecodable bytes) cannot be written to a
        # terminal: shown as its escape, and measured as such.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        self.text = text
        self.indent = indent
        self.justify: JustifyMethod = justify
        chars = re.escape(after)
        pattern = (rf"[^{chars}\s]*[{chars}]+\s*|[^{chars}\s]+\s*|\s+" if after
                   else r"\S+\s*|\s+")
        self.lines = [re.findall(pattern, line) or [""] for line in text.split("\n")]

    def _minimum(self) -> int:
        widths = [cell_len(piece.rstrip()) + (cell_len(self.indent) if i else 0)
                  for line in self.lines for i, piece in enumerate(line)]
        return max(widths, default=0)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((cell_len("".join(line).rstrip()) for line in self.lines), default=0)
        return Measurement(min(self._minimum(), longest), longest).with_maximum(
            options.max_width)

    def wrapped(self, width: int) -> list[str]:
        """The lines at `width` columns: pieces packed greedily, a piece alone on a line
        when it is wider (the console folds it then)."""
        out: list[str] = []
        for pieces in self.lines:
            line = ""
            for piece in pieces:
                if line.strip() and cell_len((line + piece).rstrip()) > width:
                    out.append(line.rstrip())
                    line = self.indent + piece.lstrip()
                else:
                    line += piece
            out.append(line.rstrip())
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n".join(self.wrapped(options.max_width)), justify=self.justify,
                   overflow="fold", end="")


def _cell(text: str, after: str = "", indent: str = "", justify: JustifyMethod = "left"
          ) -> Breakable:
    return Breakable(text, after, indent, justify)


# header, justify, where its cells break, the cell of a row (by a function below)
_FULL = ("parameter", "shape", "layer", "role", "activation <- source", "residual",
         "fans in/out", "spec", "std", "rule")
_COMPACT = ("parameter", "shape", "role", "spec", "std", "rule / note")
_RIGHT = {"fans in/out", "std"}
_ROOMY = 24  # every column at least this wide (or its longest line) before all are shown


def _row_cells(plan: InitPlan, row: Any) -> dict[str, Breakable]:
    rule = row.rule.removeprefix(f"{plan.policy}: ")
    noted = rule + (f" ({row.note})" if row.note else "")
    return {
        "parameter": _cell(row.name + "".join(f"\n= {alias}" for alias in row.aliases),
                           ".", _INDENT),
        "shape": _cell("x".join(map(str, row.shape)) or "()", "x"),
        "layer": _cell(row.layer),
        "role": _cell(row.role, "._"),
        "activation <- source": _cell(f"{row.activation} <- {row.source}", ".(,"),
        "residual": _cell("end" if row.residual else ""),
        "fans in/out": _cell("" if row.fans is None else f"{row.fans.fan_in}/{row.fans.fan_out}",
                             "/", justify="right"),
        "spec": _cell("kept" if row.spec is None else spec_label(row.spec), "(,="),
        "std": _cell("" if row.std is None else f"{row.std:.4g}", justify="right"),
        "rule": _cell(noted, "/(,"),
        "rule / note": _cell(noted, "/(,"),
    }


class PlanTable(Table):
    """The plan's table: a `rich.table.Table` of every column (so it can be inspected as
    before) that, when printed, lays itself out for the width it gets (see the module's
    docstring). Set `wide` to keep every column whatever the width."""

    def __init__(self, plan: InitPlan, *, wide: bool = False) -> None:
        self.wide = wide
        self._title = Text(f"weightinit plan: policy {plan.policy!r}, seed {plan.seed}",
                           style="table.title")
        notes = "\n".join(plan.notes)
        self._caption = Text(notes, style="table.caption") if notes else None
        super().__init__(title=self._title, caption=self._caption, caption_justify="left")
        self._cells = [_row_cells(plan, row) for row in plan.rows]
        for header in _FULL:
            self.add_column(header, justify="right" if header in _RIGHT else "left",
                            overflow="fold")
        for cells in self._cells:
            self.add_row(*(cells[header] for header in _FULL))

    def layout(self, console: Console, width: int) -> Table:
        """The table to print at `width` columns: the first of these that fits without
        breaking a word: every column with whole names and room to read (each at least
        `_ROOMY` wide or its longest line); the compact columns with whole names; the
        compact columns with names folded at dots. `wide`: every column, names whole if
        they fit. Else rich's layout, which splits words."""
        options = console.options.update_width(max(width, 1))
        ranges = {}
        for header in _FULL if self.wide else _FULL + _COMPACT[-1:]:
            cells: list[Any] = [Text(header), *(cells[header] for cells in self._cells)]
            measured = [Measurement.get(console, options, cell) for cell in cells]
            ranges[header] = (max(m.minimum for m in measured), max(m.maximum for m in measured))
        attempts: list[tuple[tuple[str, ...], int]] = (
            [(_FULL, 0), (_FULL, -1)] if self.wide
            else [(_FULL, _ROOMY), (_COMPACT, 0), (_COMPACT, -1)])
        for headers, roomy in attempts:
            floors = []
            for header in headers:
                low, high = ranges[header]
                if header == "parameter" and roomy >= 0:
                    low = high  # names whole
                elif roomy > 0:
                    low = max(low, min(high, roomy))
                floors.append(low)
            room = width - (3 * len(headers) + 1)  # edges, separators, padding of 1 each side
            widths = fit_widths(floors, [ranges[h][1] for h in headers], room)
            if widths is not None:
                return self._build(headers, widths)
        return self._build(attempts[-1][0], None)

    def _build(self, headers: Sequence[str], widths: Sequence[int] | None) -> Table:
        table = Table(title=self._title, caption=self._caption, caption_justify="left")
        for i, header in enumerate(headers):
            table.add_column(header, justify="right" if header in _RIGHT else "left",
                             overflow="fold", width=None if widths is None else widths[i])
        for cells in self._cells:
            table.add_row(*(cells[header] for header in headers))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.layout(console, options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.layout(console, options.max_width))


def fit_widths(minimums: Sequence[int], maximums: Sequence[int], room: int) -> list[int] | None:
    """Column widths within `room` that give each column at least its minimum (its longest
    unbreakable piece): all maximums when they fit, else the widest columns narrowed first
    (as rich does, but never below a minimum). None when the minimums alone do not fit."""
    widths = list(maximums)
    if sum(minimums) > room:
        return None
    excess = sum(widths) - room
    while excess > 0:
        narrowable = [i for i, w in enumerate(widths) if w > minimums[i]]
        widest = max(widths[i] for i in narrowable)
        tied = [i for i in narrowable if widths[i] == widest]
        below = max([widths[i] for i in narrowable if widths[i] < widest] + [0])
        floor = max(below, max(minimums[i] for i in tied))
        step = min(widest - floor, -(-excess // len(tied)))  # at least 1: widest > floor
        for i in tied:
            cut = min(step, widths[i] - minimums[i], excess)
            widths[i] -= cut
            excess -= cut
    return widths


def plan_table(plan: InitPlan, *, wide: bool = False) -> PlanTable:
    """`plan` as a table (a `rich.table.Table`), one row per parameter, cells as plain text,
    that fits the width it is printed at (`wide`: every column, always)."""
    return PlanTable(plan, wide=wide)


def spec_label(spec: Spec) -> str:
    """``He(relu)``-style: the class and the fields that differ from its defaults."""
    data = spec.to_dict()
    name = data.pop("type")
    try:
        defaults = type(spec)().to_dict()
    except Exception:
        defaults = {}
    shown = []
    for key, value in data.items():
        if defaults.get(key) == value and key != "activation":
            continue
        text = f"{value:.4g}" if isinstance(value, float) else (
            "(" + ", ".join(f"{v:g}" for v in value) + ")" if isinstance(value, tuple)
            else str(value))
        shown.append(text if key == "activation" else f"{key}={text}")
    return f"{name}({', '.join(shown)})"
