"""The plan: one row per parameter saying what is (or was) done to it, how to fill it, and how
to save it and read it back."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._errors import InitError, failure
from ..random import Backend, check_seed
from ..schemes import Spec, spec_from_dict
from ..theory import Fans, infer_fans
from ._info import ParamId, ParamInfo
from ._probe import check_model
from ._progress import Progress, check_progress


@dataclasses.dataclass(frozen=True)
class PlanRow(ParamId):
    """What the plan does to one parameter (tied parameters: one row, with their aliases):
    the `ParamId` fields (name, aliases, shape, role, layer, module), what feeds it, and the
    spec the policy's `rule` chose (None: kept as it is) with the std it gives."""

    activation: str
    source: str
    fans: Fans | None
    spec: Spec | None
    std: float | None
    rule: str
    residual: bool = False
    note: str = ""
    padding_idx: int | None = None

    @property
    def kept(self) -> bool:
        """The plan keeps the parameter as it is (no spec)."""
        return self.spec is None

    @property
    def key(self) -> str:
        """The parameter's key in the keyed stream: its qualified name without the segments
        wrappers insert (activation checkpointing's ``_checkpoint_wrapped_module``, a compiled
        submodule's ``_orig_mod``), so a wrapped model gets the bare model's bits."""
        return canonical_key(self.name)

    @classmethod
    def from_info(cls, info: ParamInfo, spec: Spec | None, rule: str) -> PlanRow:
        """The row for a discovered parameter that a policy's `rule` gave `spec` (None: kept)."""
        note = info.note
        if spec is None:
            why = ("no rule matched: kept" if rule == "unmatched" else info.keep or (
                "weightinit does not know this parameter" if info.role == "unknown" else ""))
            note = "; ".join(n for n in (note, why) if n)
        return cls(
            **{field.name: getattr(info, field.name) for field in dataclasses.fields(ParamId)},
            activation=info.feed.label, source=info.feed.source, fans=info.fans, spec=spec,
            std=_std_of(spec, info), rule=rule, residual=info.residual_end, note=note,
            padding_idx=info.padding_idx if spec is not None else None,
        )

    def fill_(self, tensor: torch.Tensor, *, seed: int, offset: Sequence[int] | None = None,
              backend: Backend = "auto") -> torch.Tensor:
        """Fill `tensor` with this row's values from the keyed stream of (seed, its name): the
        whole parameter, or (with `offset`) the region of it that starts there, e.g. a shard.
        An embedding's padding row is 0. A kept row (no spec) is an InitError."""
        if self.spec is None:
            raise InitError(f"The plan keeps {self.name!r} as it is: there is nothing to fill.")
        start = tuple(offset) if offset is not None else (0,) * len(self.shape)
        with torch.no_grad():
            self.spec.fill_(tensor, fans=self.fans if self.spec.needs_fans else None, seed=seed,
                            key=self.key, global_shape=self.shape, offset=start,
                            backend=backend)
            if self.padding_idx is not None:
                index = self.padding_idx - start[0]
                if 0 <= index < tensor.shape[0]:
                    tensor[index] = 0
        return tensor

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON-able data (the spec as its own ``to_dict()``); read back by
        `PlanRow.from_dict`."""
        return {
            "name": self.name, "aliases": list(self.aliases), "shape": list(self.shape),
            "role": self.role, "layer": self.layer, "module": self.module,
            "activation": self.activation, "source": self.source,
            "fans": None if self.fans is None else list(self.fans),
            "spec": None if self.spec is None else self.spec.to_dict(),
            "std": self.std, "rule": self.rule, "residual": self.residual, "note": self.note,
            "padding_idx": self.padding_idx,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanRow:
        """Rebuild a row from `to_dict()` output; the spec goes through `wi.spec_from_dict`."""
        if not isinstance(data, Mapping):
            raise InitError(f"A plan row must be a dict (PlanRow.to_dict()), got {data!r:.80}.")
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.name not in data and f.default is dataclasses.MISSING]
        if missing:
            raise InitError(
                f"The plan row {data.get('name', '?')!r} lacks {', '.join(missing)}: pass what "
                "PlanRow.to_dict() (or InitPlan.to_json()) wrote."
            )
        return cls(**_row_arguments(data))


_TEXT_FIELDS = ("name", "role", "layer", "module", "activation", "source", "rule", "note")


def _count(value: object) -> bool:
    """A non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _row_arguments(data: Mapping[str, Any]) -> dict[str, Any]:
    """PlanRow's constructor arguments from `to_dict()` output, each field checked."""
    name = data["name"]

    def bad(field: str, want: str) -> InitError:
        return InitError(
            f"The plan row {name!r}: `{field}` must be {want}, got {data[field]!r:.80}; pass "
            "what PlanRow.to_dict() (or InitPlan.to_json()) wrote."
        )

    for field in _TEXT_FIELDS:
        if field in data and not isinstance(data[field], str):
            raise bad(field, "a str")
    aliases, shape, fans, std = data["aliases"], data["shape"], data["fans"], data["std"]
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise bad("aliases", "a list of str")
    if not isinstance(shape, list) or not all(_count(d) for d in shape):
        raise bad("shape", "a list of non-negative ints")
    if fans is not None and not (isinstance(fans, list) and 2 <= len(fans) <= 3
                                 and all(_count(f) for f in fans)):
        raise bad("fans", "null or [fan_in, fan_out(, receptive_field)] of non-negative ints")
    if std is not None and (isinstance(std, bool) or not isinstance(std, (int, float))
                            or not 0 <= std < math.inf):
        raise bad("std", "null or a finite number >= 0")
    if not isinstance(data.get("residual", False), bool):
        raise bad("residual", "true or false")
    padding = data.get("padding_idx")
    if padding is not None and not (_count(padding) and shape and padding < shape[0]):
        raise bad("padding_idx", f"null or a row index below {shape[0] if shape else 0}")
    spec = data["spec"]
    if spec is not None:
        if not isinstance(spec, Mapping):
            raise bad("spec", "null or a scheme's to_dict()")
        try:
            spec = spec_from_dict(dict(spec))
        except InitError as exc:
            raise InitError(f"The plan row {name!r}: {exc}") from None
    return {**{f: data[f] for f in _TEXT_FIELDS if f in data}, "aliases": tuple(aliases),
            "shape": tuple(shape), "fans": None if fans is None else Fans(*fans), "spec": spec,
            "std": None if std is None else float(std), "residual": data.get("residual", False),
            "padding_idx": padding}


class InitPlan:
    """One row per parameter, in execution order: what was (or will be) done to it.

    `apply(model)` fills the model from the plan: each parameter from the keyed stream of
    (seed, its qualified name), so the values do not depend on construction order or on any
    other parameter. All or nothing: if any parameter fails, none is changed. A plan saved
    with `to_json` and read back with `InitPlan.from_json` fills the same bits.
    """

    def __init__(self, rows: Sequence[PlanRow], *, seed: int, policy: str,
                 notes: Sequence[str] = ()) -> None:
        self.rows: tuple[PlanRow, ...] = tuple(rows)
        self.seed = seed
        self.policy = policy
        self.notes: tuple[str, ...] = tuple(notes)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[PlanRow]:
        return iter(self.rows)

    def __getitem__(self, name: str) -> PlanRow:
        for row in self.rows:
            if name == row.name or name in row.aliases:
                return row
        raise KeyError(name)

    def __repr__(self) -> str:
        kept = sum(row.kept for row in self.rows)
        return (f"InitPlan({len(self.rows)} parameters, policy={self.policy!r}, "
                f"seed={self.seed}, kept={kept})")

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-able data: policy, seed, notes and rows; read back by
        `InitPlan.from_dict`."""
        return {"policy": self.policy, "seed": self.seed, "notes": list(self.notes),
                "rows": [row.to_dict() for row in self.rows]}

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict` as JSON text (`indent` as in ``json.dumps``); read back by
        `InitPlan.from_json`, which fills the same bits."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InitPlan:
        """Rebuild a plan from `to_dict()` output."""
        if not isinstance(data, Mapping) or not isinstance(data.get("rows"), list):
            what = (f"a dict whose 'rows' is {type(data.get('rows')).__name__}"
                    if isinstance(data, Mapping) else f"a {type(data).__name__}")
            raise InitError(
                f"`data` must be a dict with a list of 'rows', as InitPlan.to_dict() writes it; "
                f"got {what}."
            )
        seed = check_seed(data.get("seed"))
        policy, notes = data.get("policy", "custom"), data.get("notes", [])
        if not isinstance(policy, str):
            raise InitError(f"The plan's `policy` must be a str, got {policy!r:.80}.")
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise InitError(f"The plan's `notes` must be a list of str, got {notes!r:.80}.")
        return cls([PlanRow.from_dict(row) for row in data["rows"]], seed=seed, policy=policy,
                   notes=notes)

    @classmethod
    def from_json(cls, text: str) -> InitPlan:
        """Rebuild a plan from `to_json()` output."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InitError(f"`text` is not a plan's JSON: {exc}.") from None
        return cls.from_dict(data)

    def table(self, *, wide: bool = False) -> Any:
        """The plan as a `rich.table.Table` (print it with ``rich.print`` or a Console) that
        fits the width it is printed at: every column when there is room, else the compact
        ones (parameter, shape, role, spec, std, rule), names never split mid-word unless the
        console is narrower than that. `wide`: every column, whatever the width."""
        from ._table import plan_table

        return plan_table(self, wide=wide)

    def apply(self, model: nn.Module, *, progress: Progress | None = None) -> InitPlan:
        """Fill `model`'s parameters as planned; all of them or, on any error, none.

        Every destination is checked before anything is computed (names, shapes, shared
        memory, and tensors that cannot be written in place: inference tensors, expanded
        ones, sparse ones, DTensor shards), and every value is computed outside the model
        before the first is written.

        Args:
            model: the model the plan was made for (wrappers are looked through).
            progress: optional ``progress(done, total, "filling")``, called with 0 first
                and then after each planned parameter is computed (``done == total``
                last), all before the model is written: an exception it raises propagates
                and leaves the model unchanged.

        Raises:
            InitError: a parameter the model lacks or with another shape, one that cannot
                be written, a fill that fails. The model is unchanged.
        """
        from ._apply import apply_plan

        apply_plan(self, check_model(model), check_progress(progress))
        return self


WRAPPER_SEGMENTS = ("_checkpoint_wrapped_module", "_orig_mod")
"""Name segments that wrappers insert between a module and its parameters."""


def canonical_key(name: str) -> str:
    """`name` without wrapper segments: ``h.0._checkpoint_wrapped_module.mlp.weight`` ->
    ``h.0.mlp.weight``."""
    return ".".join(part for part in name.split(".") if part not in WRAPPER_SEGMENTS)


def _std_of(spec: Spec | None, info: ParamInfo) -> float | None:
    """The std `spec` gives the parameter (None: kept, or a spec with no std for its fans);
    InitError naming the parameter when computing it overflows or it is not finite."""
    if spec is None:
        return None
    try:
        if spec.needs_fans:
            std = spec.std_for(info.fans if info.fans is not None else infer_fans(info.shape))
        else:
            std = spec.std_for(infer_fans(info.shape) if len(info.shape) >= 2 else None)
    except InitError:
        return None
    except ArithmeticError as exc:  # OverflowError, ZeroDivisionError: a spec's arithmetic
        raise failure(f"Computing the std {spec!r} gives {info.name!r} (shape {info.shape}, "
                      f"fans {info.fans})", exc,
                      fix="Give it a spec whose std is a finite float (a smaller gain or "
                      "scale)") from None
    if not isinstance(std, (int, float)) or not math.isfinite(std):
        raise failure(f"{spec!r} gives {info.name!r} (shape {info.shape}, fans {info.fans}) "
                      f"the std {std!r}, not a finite number",
                      fix="Give it a spec whose std is a finite float (a smaller gain or "
                      "scale)")
    return float(std)
