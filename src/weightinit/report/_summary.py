"""The demo's findings as one compact terminal table (rich)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._render import Column, number, rich_table
from ._values import at, run_line

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

_COLUMNS = (Column("#", "right", no_wrap=True, style="dim"),
            Column("finding", overflow="fold", ratio=1),
            Column("key number", "right", no_wrap=True))


def _measured(finding: Mapping[str, Any]) -> Text:
    """The finding's number (4 significant digits), and on the line below what it is."""
    from rich.text import Text

    cell = Text(number(finding.get("value"), 4), style="cyan")
    what = finding.get("label")
    if what:
        cell.append("\n" + str(what), style="dim")
    return cell


def summary_table(results: Mapping[str, Any]) -> Table:
    """The demo's findings as one compact `rich` Table: a row per finding (its text, wrapped,
    and its key number with what that number is), with the seeds, the quick flag and the wall
    time in the caption.

    Fits a 100-column, 30-line terminal for about ten findings. Texts are added as plain
    `Text`, never parsed as rich markup.
    """
    from rich import box

    rows = [(str(index), str(finding.get("text", "")), _measured(finding))
            for index, finding in enumerate(at(results, "findings"), 1)]
    return rich_table("weightinit demo", _COLUMNS, rows or [("", "no findings", "")],
                      caption=run_line(results), title_style="bold", caption_justify="left",
                      box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
