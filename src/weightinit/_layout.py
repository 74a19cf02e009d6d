"""Tables that lay themselves out for the width they are printed at, shared by the plan's and
the diagnosis's terminal tables.

rich, short of room, narrows the widest columns and breaks their words anywhere
("linea/r.wei/ght", "0.083/02"). An `AdaptiveTable` instead tries layouts in order when it is
printed: every column with room to read, then a compact subset of the columns, each with its
"whole" columns (names) at full width and every other cell broken only where it reads well
(`Breakable`: after chosen characters and at spaces; a number never); only when none fits
does rich's layout, which splits words, take over.

rich is imported at the top: import this module only inside the functions that print.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ._render import printable

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult

ROOMY = 24  # every column at least this wide (or its longest line) before all are shown
_NARROWEST = 10  # the last layout: columns this narrow fold only their pieces that are wider


class Breakable:
    """Text (one or more lines) that wraps only after the characters in `after` and at
    spaces; continuation lines start with `indent`. Never parsed as markup."""

    def __init__(self, text: str, after: str = "", indent: str = "",
                 justify: JustifyMethod = "left", style: str = "") -> None:
        # A lone surrogate (from a name built of undecodable bytes) or a control character
        # (an escape sequence) must not reach the terminal: shown as its escape, and measured
        # as such.
        text = printable(text)
        self.text = text
        self.indent = indent
        self.justify: JustifyMethod = justify
        self.style = style
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
                   overflow="fold", end="", style=self.style)


class AdaptiveTable(Table):
    """A `rich.table.Table` of every column (so it can be inspected as one) that, printed,
    lays itself out for the width it gets: the first of these that fits without breaking a
    word: every column, each at least `ROOMY` wide or its longest line, the `whole` columns
    at full width; the `compact` columns with the `whole` ones at full width; the compact
    columns with everything broken only at its break points; the same two with the `narrow`
    columns, if given; the last of those with columns down to
    `_NARROWEST`, only a piece wider than its column folded. `wide`: every column, whole
    columns at full width if they fit. Else rich's layout, which splits words.

    Args:
        title, caption: above and below, as `Text` (never parsed as markup).
        headers: every column, in order; `compact`: the subset shown when they do not fit;
            `narrow`: a smaller one still, tried after `compact`.
        rows: each row's cells, header -> `Breakable`.
        right: headers justified right; whole: headers whose cells are never folded while
            a layout keeps them whole.
    """

    def __init__(self, title: Text | None, caption: Text | None, headers: Sequence[str],
                 rows: Sequence[Mapping[str, Breakable]], *, compact: Sequence[str] = (),
                 narrow: Sequence[str] = (),
                 right: Collection[str] = (), whole: Collection[str] = (),
                 wide: bool = False) -> None:
        self.wide = wide
        self._title, self._caption = title, caption
        self._headers, self._compact = tuple(headers), tuple(compact) or tuple(headers)
        self._narrow = tuple(narrow)
        self._right, self._whole = frozenset(right), frozenset(whole)
        self._cells = list(rows)
        super().__init__(title=title, caption=caption, caption_justify="left")
        for header in self._headers:
            self.add_column(header, justify="right" if header in self._right else "left",
                            overflow="fold")
        for cells in self._cells:
            self.add_row(*(cells[header] for header in self._headers))

    def layout(self, console: Console, width: int) -> Table:
        """The table to print at `width` columns (see the class docstring)."""
        options = console.options.update_width(max(width, 1))
        ranges = {}
        for header in dict.fromkeys(self._headers + self._compact + self._narrow):
            cells: list[Any] = [Text(header), *(cells[header] for cells in self._cells)]
            measured = [Measurement.get(console, options, cell) for cell in cells]
            ranges[header] = (max(m.minimum for m in measured), max(m.maximum for m in measured))
        attempts: list[tuple[tuple[str, ...], int]] = (
            [(self._headers, 0), (self._headers, -1)] if self.wide
            else [(self._headers, ROOMY), (self._compact, 0), (self._compact, -1)]
            + ([(self._narrow, 0), (self._narrow, -1)] if self._narrow else [])
            + [(self._narrow or self._compact, -2)])
        for headers, roomy in attempts:
            floors = []
            for header in headers:
                low, high = ranges[header]
                if header in self._whole and roomy >= 0:
                    low = high
                elif roomy > 0:
                    low = max(low, min(high, roomy))
                elif roomy == -2:  # a piece wider than this is folded; the rest break as usual
                    low = min(low, _NARROWEST)
                floors.append(low)
            room = width - (3 * len(headers) + 1)  # edges, separators, padding of 1 each side
            widths = fit_widths(floors, [ranges[h][1] for h in headers], room)
            if widths is not None:
                return self._build(headers, widths)
        return self._build(attempts[-1][0], None)

    def _build(self, headers: Sequence[str], widths: Sequence[int] | None) -> Table:
        table = Table(title=self._title, caption=self._caption, caption_justify="left")
        for i, header in enumerate(headers):
            table.add_column(header, justify="right" if header in self._right else "left",
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
