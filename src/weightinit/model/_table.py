"""The plan as a table for people: `InitPlan.table()`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._render import Column, rich_table
from ..schemes import Spec

if TYPE_CHECKING:
    from ._plan import InitPlan


def plan_table(plan: InitPlan) -> Any:
    """`plan` as a `rich.table.Table`: one row per parameter, cells as plain text."""
    columns = [Column(header, "right" if header in ("fans in/out", "std") else "left",
                      overflow="fold")
               for header in ("parameter", "shape", "layer", "role", "activation <- source",
                              "residual", "fans in/out", "spec", "std", "rule")]
    rows = []
    for row in plan.rows:
        rule = row.rule.removeprefix(f"{plan.policy}: ") + (
            f" ({row.note})" if row.note else "")
        rows.append([
            row.name + "".join(f"\n= {alias}" for alias in row.aliases),
            "x".join(map(str, row.shape)) or "()", row.layer, row.role,
            f"{row.activation} <- {row.source}", "end" if row.residual else "",
            "" if row.fans is None else f"{row.fans.fan_in}/{row.fans.fan_out}",
            "kept" if row.spec is None else spec_label(row.spec),
            "" if row.std is None else f"{row.std:.4g}", rule])
    return rich_table(f"weightinit plan: policy {plan.policy!r}, seed {plan.seed}",
                      columns, rows, caption="\n".join(plan.notes) or None,
                      caption_justify="left")


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
