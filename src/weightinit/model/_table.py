"""The plan as a table for people: `InitPlan.table()`.

Ten columns do not fit 80-120 terminal columns with GPT-2's names in them, and rich, short of
room, narrows the widest columns and breaks their words anywhere ("linea/r.wei/ght"). So the
table lays itself out when it is printed, for the width it is given: every column when they
fit without breaking a word, else the columns that say what is done to each parameter
(parameter, shape, role, spec, std, rule / note), else only what is done and why (parameter,
spec, std, rule / note); `wide=True` keeps every column. Inside a
cell, text breaks only where it reads well: names after a dot (the rest indented), specs after
"(", "," or "=", shapes after "x"; a word is split only when it alone is wider than the whole
column (a terminal narrower than the compact table's shortest layout).

The layout is `weightinit._layout.AdaptiveTable`'s. rich is imported here, and this module
only by `InitPlan.table()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from .._layout import AdaptiveTable, Breakable
from ..schemes import Spec

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from ._plan import InitPlan

_INDENT = "  "  # before the continuation lines of a folded name


def _cell(text: str, after: str = "", indent: str = "", justify: JustifyMethod = "left"
          ) -> Breakable:
    return Breakable(text, after, indent, justify)


# header, justify, where its cells break, the cell of a row (by a function below)
_FULL = ("parameter", "shape", "layer", "role", "activation <- source", "residual",
         "fans in/out", "spec", "std", "rule")
_COMPACT = ("parameter", "shape", "role", "spec", "std", "rule / note")
_NARROW = ("parameter", "spec", "std", "rule / note")  # what is done, and why
_RIGHT = {"fans in/out", "std"}


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


class PlanTable(AdaptiveTable):
    """The plan's table: every column when they fit, else the compact ones, names whole
    (folded after dots when even the compact table has no room for them). Set `wide` to
    keep every column whatever the width."""

    def __init__(self, plan: InitPlan, *, wide: bool = False) -> None:
        notes = "\n".join(plan.notes)
        super().__init__(
            Text(f"weightinit plan: policy {plan.policy!r}, seed {plan.seed}",
                 style="table.title"),
            Text(notes, style="table.caption") if notes else None,
            _FULL, [_row_cells(plan, row) for row in plan.rows], compact=_COMPACT, narrow=_NARROW,
            right=_RIGHT, whole={"parameter"}, wide=wide)


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
