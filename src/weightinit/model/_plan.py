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
from ._probe import unwrap


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
        return {"policy": self.policy, "seed": self.seed, "notes": list(self.notes),
                "rows": [row.to_dict() for row in self.rows]}

    def to_json(self, indent: int | None = 2) -> str:
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

    def table(self) -> Any:
        """The plan as a `rich.table.Table` (print it with ``rich.print`` or a Console)."""
        from ._table import plan_table

        return plan_table(self)

    def apply(self, model: nn.Module) -> InitPlan:
        """Fill `model`'s parameters as planned; all of them or, on any error, none."""
        if not isinstance(model, nn.Module):
            raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
        model = unwrap(model)
        params = dict(model.named_parameters(remove_duplicate=False))
        for row in self.rows:
            param: torch.Tensor | None = params.get(row.name)
            if param is None:
                param = _first_original(_parametrized(model, row.name))
            if param is None:
                raise InitError(
                    f"The plan has parameter {row.name!r}, which the model does not; build the "
                    "plan for this model with wi.init_model(model, dry_run=True)."
                )
            if row.name not in params:
                pass  # a parametrized tensor: its originals are checked once filled
            elif tuple(param.shape) != row.shape:
                raise InitError(
                    f"Parameter {row.name!r} has shape {tuple(param.shape)}, the plan expected "
                    f"{row.shape}; rebuild the plan for this model."
                )
            if param.device.type == "meta":
                raise InitError(
                    f"Parameter {row.name!r} is on the meta device (no memory to fill); "
                    "wi.materialize(model, device='cpu') allocates and initializes it."
                )
        _refuse_shared_memory(params, self.rows)
        fresh: list[tuple[torch.Tensor, torch.Tensor]] = []  # (destination, values)
        reparametrized = []
        for row in self.rows:
            if row.spec is None:
                continue
            plist = None if row.name in params else _parametrized(model, row.name)
            like = params[row.name] if plist is None else _first_original(plist)
            assert like is not None  # checked above
            values = torch.empty(row.shape, dtype=like.dtype, device=like.device)
            try:
                row.fill_(values, seed=self.seed)
                _check_finite(row, values)
                if plist is None:
                    fresh.append((params[row.name], values))
                else:
                    fresh.extend(_through_parametrization(row.name, plist, values))
                    reparametrized.append(plist)
            except Exception as exc:
                # An unexpected exception (a bug in a custom spec) keeps its traceback.
                raise failure(f"Filling {row.name!r} (shape {row.shape}) with {row.spec!r}",
                              exc, unchanged="No parameter") from (
                    None if isinstance(exc, InitError) else exc)
        with torch.no_grad():
            for destination, values in fresh:
                destination.copy_(values)
            for plist in reparametrized:
                _restart_power_iteration(plist)
        return self


def _check_finite(row: PlanRow, values: torch.Tensor) -> None:
    """InitError when a spec's values overflow the parameter's dtype (a std of 1e39 in
    float32, a bound of 1e5 in float16): inf or NaN would be written silently otherwise."""
    if values.is_floating_point() and values.numel() and not bool(torch.isfinite(values).all()):
        limit = torch.finfo(values.dtype).max
        raise InitError(
            f"{row.spec!r} gives {row.name!r} values that overflow {values.dtype} (largest "
            f"finite value {limit:.4g}); give it a spec whose values fit the dtype"
        )


def _refuse_shared_memory(params: Mapping[str, torch.Tensor], rows: Sequence[PlanRow]) -> None:
    """InitError when two different parameters the plan fills share memory (one made from a
    slice of the other): filling one would silently overwrite part of the other."""
    owners: dict[int, str] = {}
    seen: set[int] = set()
    for row in rows:
        param = params.get(row.name)
        if (row.spec is None or param is None or id(param) in seen or param.numel() == 0
                or param.device.type == "meta"):
            continue
        seen.add(id(param))
        try:
            storage = param.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # no plain storage (a tensor subclass)
            continue
        if storage in owners:
            raise InitError(
                f"Parameters {owners[storage]!r} and {row.name!r} share memory (one was made "
                "from a slice of the other), so filling one would overwrite part of the other. "
                "Give one of them its own storage (.clone()), or tie them as the same "
                "nn.Parameter. No parameter was changed."
            )
        owners[storage] = row.name


def _parametrized(model: nn.Module, name: str) -> Any:
    """The ParametrizationList behind a parametrized tensor's logical name (``fc.weight``),
    or None."""
    from torch.nn.utils import parametrize

    owner, _, attr = name.rpartition(".")
    try:
        module = model.get_submodule(owner)
    except AttributeError:
        return None
    if not parametrize.is_parametrized(module, attr):
        return None
    return module.parametrizations[attr]  # type: ignore[index]


def _restart_power_iteration(plist: Any) -> None:
    """spectral_norm estimates sigma with vectors it keeps between calls: converge them on
    the new weight, as registering spectral_norm does (15 iterations), or they would
    describe the old one."""
    for parametrization in plist:
        power = getattr(parametrization, "_power_method", None)
        reshape = getattr(parametrization, "_reshape_weight_to_matrix", None)
        if power is not None and reshape is not None and plist.is_tensor:
            power(reshape(plist.original), 15)


def _first_original(plist: Any) -> torch.Tensor | None:
    if plist is None:
        return None
    first: torch.Tensor = plist.original if plist.is_tensor else plist.original0
    return first


def _through_parametrization(name: str, plist: Any, values: torch.Tensor
                             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(original, its values) for a parametrized tensor set to `values`: each
    parametrization's right_inverse, last first (what assigning the tensor does, without
    assigning yet)."""
    with torch.no_grad():
        value: Any = values
        for parametrization in reversed(list(plist)):
            inverse = getattr(parametrization, "right_inverse", None)
            if inverse is not None:
                value = inverse(value)
    originals = [plist.original] if plist.is_tensor else [
        getattr(plist, f"original{i}") for i in range(plist.ntensors)]
    computed = [value] if plist.is_tensor else list(value)
    if len(computed) != len(originals) or any(
            tuple(c.shape) != tuple(o.shape) for c, o in zip(computed, originals, strict=False)):
        raise InitError(
            f"The parametrization of {name!r} maps its values to tensors of shapes "
            f"{[tuple(c.shape) for c in computed]}, not its originals' "
            f"{[tuple(o.shape) for o in originals]}; give it a rule that keeps it (spec None)."
        )
    return list(zip(originals, computed, strict=True))


WRAPPER_SEGMENTS = ("_checkpoint_wrapped_module", "_orig_mod")
"""Name segments that wrappers insert between a module and its parameters."""


def canonical_key(name: str) -> str:
    """`name` without wrapper segments: ``h.0._checkpoint_wrapped_module.mlp.weight`` ->
    ``h.0.mlp.weight``."""
    return ".".join(part for part in name.split(".") if part not in WRAPPER_SEGMENTS)


def _std_of(spec: Spec | None, info: ParamInfo) -> float | None:
    if spec is None:
        return None
    try:
        if spec.needs_fans:
            return spec.std_for(info.fans if info.fans is not None else infer_fans(info.shape))
        return spec.std_for(infer_fans(info.shape) if len(info.shape) >= 2 else None)
    except InitError:
        return None
