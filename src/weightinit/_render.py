"""The rendering helpers every report shares: numbers as text, HTML escaping, HTML tables and
the page skeleton (under one Content-Security-Policy for pages that load nothing and run no
script), rich tables whose cells are `Text` (never parsed as markup), matplotlib figures
without pyplot or global state, PNG bytes and data URIs, and UTF-8 text files.

rich and matplotlib are imported inside the functions that need them."""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import InitError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from rich.console import JustifyMethod, OverflowMethod
    from rich.style import StyleType
    from rich.table import Table
    from rich.text import Text

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""Only inline CSS and data: images: a page with this policy fetches nothing and runs no
script, even if escaping were ever to fail."""


# --- text ----------------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` safe to write to a terminal, a figure or a UTF-8 file: control characters (an
    escape sequence in a module name would recolour or move the user's terminal) and lone
    surrogates (which UTF-8 cannot encode) become their backslash escapes; newlines and tabs
    stay."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --- numbers -------------------------------------------------------------------------------


def real(value: object) -> float | None:
    """A real number as a float; None for None, booleans and anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def number(value: object, digits: int = 4) -> str:
    """`digits` significant digits; "-" for a missing value (None, or not a number), "nan" /
    "inf" / "-inf" for broken ones."""
    x = real(value)
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def fixed(value: object, decimals: int) -> str:
    """`decimals` digits after the point; "-" for a missing or non-finite value."""
    x = real(value)
    return "-" if x is None or not math.isfinite(x) else f"{x:.{decimals}f}"


def positive(value: object) -> float:
    """The value where a log axis can show it (a positive finite number), NaN (a gap in the
    line) otherwise."""
    x = real(value)
    return x if x is not None and math.isfinite(x) and x > 0 else math.nan


# --- HTML ----------------------------------------------------------------------------------


def escape(text: object) -> str:
    """`str(text)` with &, <, >, " and ' escaped: safe in element text and quoted attributes."""
    return html.escape(str(text), quote=True)


def html_table(head: Sequence[str], rows: Iterable[Sequence[tuple[object, str]]],
               row_classes: Iterable[str] | None = None) -> str:
    """An HTML table in a horizontally scrolling ``<div class="scroll">``.

    Each cell is (content, CSS class of its ``<td>``); `row_classes`, when given, holds the
    CSS class of each ``<tr>``, one per row. Headers, contents and classes are escaped here."""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    listed = list(rows)
    classes: list[str | None] = [None] * len(listed) if row_classes is None else list(row_classes)
    body = "\n".join(
        ("<tr>" if kind is None else f'<tr class="{escape(kind)}">')
        + "".join(f'<td class="{escape(cls)}">{escape(text)}</td>' for text, cls in row) + "</tr>"
        for kind, row in zip(classes, listed, strict=True))
    return (f'<div class="scroll"><table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n'
            f"{body}\n</tbody></table></div>")


def page(title: str, css: str, body: str) -> str:
    """One self-contained HTML page: `title` escaped here, `css` and `body` already safe,
    under the CSP above."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
{css}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` as UTF-8 with "\\n" line ends on every platform."""
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        file.write(text)


# --- terminal ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of `rich_table`: its header and the layout of its cells, as
    `rich.table.Table.add_column` takes them (the defaults are rich's).

    A str header goes to rich as it is, and rich reads markup in it: give fixed words, or a
    `Text` for a header made from data."""

    header: str | Text
    justify: JustifyMethod = "left"
    overflow: OverflowMethod = "ellipsis"
    no_wrap: bool = False
    style: StyleType | None = None
    ratio: int | None = None


def rich_table(title: str | Text | None, columns: Sequence[Column | tuple[str, JustifyMethod]],
               rows: Iterable[Sequence[str | Text]], *, caption: str | Text | None = None,
               **options: Any) -> Table:
    """A `rich.table.Table` in which no string is ever parsed as rich markup.

    Args:
        title, caption: shown above and below the table; a str becomes `Text` in the table's
            `title_style` / `caption_style` (rich's "table.title" / "table.caption" by
            default), a `Text` is shown as it is.
        columns: a `Column`, or (header, justify) for a column with rich's other defaults.
        rows: the cells of each row, in column order; a str cell becomes `Text(cell)`, a
            `Text` cell (styled, say) is added as it is.
        **options: any other keyword of `rich.table.Table` (`caption_justify`, `title_style`,
            `box`, `show_edge`, `pad_edge`, `expand`, ...).
    """
    from rich.table import Table
    from rich.text import Text

    def text(value: str | Text, style: StyleType) -> Text:
        return value if isinstance(value, Text) else Text(printable(value), style=style)

    title_style = options.get("title_style")
    caption_style = options.get("caption_style")
    table = Table(
        title=None if title is None else text(title, "table.title" if title_style is None
                                              else title_style),
        caption=None if caption is None else text(caption, "table.caption"
                                                  if caption_style is None else caption_style),
        **options)
    for column in columns:
        spec = column if isinstance(column, Column) else Column(*column)
        table.add_column(spec.header, justify=spec.justify, overflow=spec.overflow,
                         no_wrap=spec.no_wrap, style=spec.style, ratio=spec.ratio)
    for row in rows:
        table.add_row(*(text(cell, "") for cell in row))
    return table


# --- figures -------------------------------------------------------------------------------


def new_figure(needs: str, fallback: str, **kwargs: Any) -> Figure:
    """A Figure on its own Agg canvas (no pyplot, no rcParams changes); `needs` and
    `fallback` finish the message when matplotlib is missing: "{needs} need matplotlib, ...
    {fallback}"."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise InitError(
            f"{needs} need matplotlib, which is not installed: pip install matplotlib (or "
            f"pip install 'weightinit[plot]'). {fallback}"
        ) from error
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def note(ax: Axes, text: str) -> None:
    """`text` in grey at the middle of `ax`: why a panel is empty."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#777777")


def png_bytes(figure: Figure, dpi: float) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

