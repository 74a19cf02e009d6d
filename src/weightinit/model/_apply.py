"""`InitPlan.apply`: fill a model from a plan, every parameter or none.

Three phases. Every destination is checked before anything is computed: the plan's names and
shapes, memory shared between parameters, and whether each tensor can be written in place at
all (an inference tensor, an expanded one, a sparse one, a DTensor shard). Every value is then
computed into scratch space outside the model, parametrized tensors through their
``right_inverse`` with the parametrization's own state (orthogonal's ``base``) captured and put
back. Only then is the model written, the writes that might still fail first, each with a
backup to roll back to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .._errors import InitError, failure, first_line
from ._distributed import is_dtensor
from ._probe import probe_rng
from ._progress import Progress, stages

if TYPE_CHECKING:  # _plan imports this module
    from ._plan import InitPlan, PlanRow


@dataclasses.dataclass
class _Write:
    """One tensor of the model to overwrite with `values`; `risky`: a write the checks cannot
    vouch for (a tensor subclass, an unusual device, a parametrization's original), done first
    and backed up."""

    name: str
    destination: torch.Tensor
    values: torch.Tensor
    risky: bool


@dataclasses.dataclass
class _BufferChange:
    """A buffer of a parametrization that its ``right_inverse`` replaced (`now` the new object,
    None: removed) or changed in place (`values`)."""

    module: nn.Module
    attr: str
    now: torch.Tensor | None
    values: torch.Tensor | None = None


def apply_plan(plan: InitPlan, model: nn.Module, progress: Progress | None = None) -> None:
    """Fill `model` (already unwrapped) from `plan`; all of it, or InitError with nothing
    changed. `progress`: called as ``progress(done, total, "filling")`` after each planned
    parameter is computed, all before the model is written."""
    params = dict(model.named_parameters(remove_duplicate=False))
    for row in plan.rows:
        _check_row(model, params, row)
    refuse_shared_memory(params, plan.rows)
    planned = [row for row in plan.rows if row.spec is not None]
    for row in planned:
        plist = None if row.name in params else parametrized(model, row.name)
        targets = [params[row.name]] if plist is None else originals(plist)
        for target in targets:
            _check_writable(row, target)
    step = stages(progress, "filling", len(planned))
    writes: list[_Write] = []
    changes: list[_BufferChange] = []
    restart = []
    for done, row in enumerate(planned, 1):
        plist = None if row.name in params else parametrized(model, row.name)
        like = params[row.name] if plist is None else originals(plist)[0]
        values = torch.empty(row.shape, dtype=like.dtype, device=like.device)
        try:
            row.fill_(values, seed=plan.seed)
            check_finite(row, values)
            if plist is None:
                writes.append(_Write(row.name, params[row.name], values, _risky(like)))
            else:
                pairs, changed = isolated_inverse(row, plist, values, plan.seed)
                writes.extend(_Write(row.name, o, v, True) for o, v in pairs)
                changes.extend(changed)
                restart.append(plist)
        except Exception as exc:
            # An unexpected exception (a bug in a custom spec) keeps its traceback.
            raise failure(f"Filling {row.name!r} (shape {row.shape}) with {row.spec!r}",
                          exc, unchanged="No parameter") from (
                None if isinstance(exc, InitError) else exc)
        step(done)
    _commit(writes, changes, restart)


def _check_row(model: nn.Module, params: Mapping[str, torch.Tensor], row: PlanRow) -> None:
    param: torch.Tensor | None = params.get(row.name)
    if param is None:
        plist = parametrized(model, row.name)
        param = None if plist is None else originals(plist)[0]
    if param is None:
        raise InitError(
            f"The plan has parameter {row.name!r}, which the model does not; build the "
            "plan for this model with wi.init_model(model, dry_run=True)."
        )
    if row.name in params and tuple(param.shape) != row.shape:
        raise InitError(
            f"Parameter {row.name!r} has shape {tuple(param.shape)}, the plan expected "
            f"{row.shape}; rebuild the plan for this model."
        )
    if param.device.type == "meta":
        raise InitError(
            f"Parameter {row.name!r} is on the meta device (no memory to fill); "
            "wi.materialize(model, device='cpu') allocates and initializes it."
        )


def unwritable(tensor: torch.Tensor) -> str:
    """Why `tensor` cannot be overwritten in place, or ""."""
    if is_dtensor(tensor):
        return ("is a DTensor (this process holds a shard of it): wi.materialize(model, "
                "device=...) fills each rank's shard at its global offsets")
    if tensor.layout != torch.strided:
        return (f"has layout {tensor.layout}: weightinit fills dense tensors; make it dense "
                "(nn.Parameter(p.to_dense()))")
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        return ("is an inference tensor (made under torch.inference_mode()), which cannot be "
                "written outside inference mode; make it a normal tensor "
                "(nn.Parameter(p.clone()) outside inference mode)")
    if any(size > 1 and stride == 0 for size, stride in zip(tensor.shape, tensor.stride(),
                                                             strict=True)):
        return (f"is expanded (strides {tuple(tensor.stride())}: several of its elements are "
                "one memory location), so it cannot hold independent values; give it its own "
                "memory (nn.Parameter(p.clone()))")
    return ""


def _check_writable(row: PlanRow, tensor: torch.Tensor) -> None:
    why = unwritable(tensor)
    if why:
        raise failure(f"Parameter {row.name!r} (shape {row.shape}) {why}",
                      unchanged="No parameter")


def _risky(tensor: torch.Tensor) -> bool:
    return type(tensor) not in (torch.Tensor, nn.Parameter) or tensor.device.type not in (
        "cpu", "cuda")


def _commit(writes: list[_Write], changes: list[_BufferChange], restart: list[Any]) -> None:
    """Write the model: the risky writes first (each backed up), the parametrizations' state,
    then the plain writes. A failure rolls back everything backed up; a plain write failing
    after the checks passed would be a bug, and the message names what was written."""
    undo: list[tuple[torch.Tensor, torch.Tensor]] = []  # (tensor, its old values)
    buffers = [(module, dict(module._buffers)) for plist in restart
               for module in plist.modules()]  # the objects, put back on a failure
    written: list[str] = []
    try:
        with torch.no_grad():
            for write in (w for w in writes if w.risky):
                old = write.destination.detach().clone()
                write.destination.copy_(write.values)  # a failing copy_ writes nothing
                undo.append((write.destination, old))
            for _, objects in buffers:  # spectral_norm's vectors, orthogonal's base
                undo.extend((b, b.detach().clone()) for b in objects.values() if b is not None)
            for change in changes:
                current = change.module._buffers.get(change.attr)
                if change.values is not None and current is not None:
                    current.copy_(change.values)
                else:
                    change.module._buffers[change.attr] = change.now
            for plist in restart:
                restart_power_iteration(plist)
            for write in (w for w in writes if not w.risky):
                write.destination.copy_(write.values)
                written.append(write.name)
    except BaseException as exc:
        with torch.no_grad():
            for module, objects in buffers:
                module._buffers.clear()
                module._buffers.update(objects)
            for tensor, old in reversed(undo):
                tensor.copy_(old)
        if not isinstance(exc, Exception):
            raise
        if written:
            raise InitError(
                f"Writing the initialized values into the model failed: {first_line(exc)}, "
                f"after {len(written)} parameters passed every check and were written "
                f"({', '.join(map(repr, written[:5]))}{' ...' if len(written) > 5 else ''}); "
                "they keep their new values. This is a bug in weightinit: please report it."
            ) from exc
        raise failure("Writing the initialized values into the model", exc,
                      unchanged="No parameter") from exc


def check_finite(row: PlanRow, values: torch.Tensor) -> None:
    """InitError when a spec's values overflow the parameter's dtype (a std of 1e39 in
    float32, a bound of 1e5 in float16): inf or NaN would be written silently otherwise."""
    if values.is_floating_point() and values.numel() and not bool(torch.isfinite(values).all()):
        limit = torch.finfo(values.dtype).max
        raise InitError(
            f"{row.spec!r} gives {row.name!r} values that overflow {values.dtype} (largest "
            f"finite value {limit:.4g}); give it a spec whose values fit the dtype"
        )


def refuse_shared_memory(params: Mapping[str, torch.Tensor], rows: Sequence[PlanRow]) -> None:
    """InitError when two different parameters the plan fills overlap in memory (one made
    from a slice of the other): filling one would silently overwrite part of the other.
    Parameters that are disjoint views of one buffer (a flat parameter's pieces) are fine."""
    spans: dict[int, list[tuple[int, int, str]]] = {}  # storage -> (first byte, end, name)
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
        reach = sum((size - 1) * abs(stride) for size, stride in zip(
            param.shape, param.stride(), strict=True))
        first = param.data_ptr()
        spans.setdefault(storage, []).append(
            (first, first + (reach + 1) * param.element_size(), row.name))
    for pieces in spans.values():
        pieces.sort()
        for (_, end, name), (start, _, other) in itertools.pairwise(pieces):
            if start < end:
                order = [r.name for r in rows]
                name, other = sorted((name, other), key=order.index)  # the plan's order
                raise InitError(
                    f"Parameters {name!r} and {other!r} share memory (one was made from a "
                    "slice of the other), so filling one would overwrite part of the other. "
                    "Give one of them its own storage (.clone()), or tie them as the same "
                    "nn.Parameter. No parameter was changed."
                )


def parametrized(model: nn.Module, name: str) -> Any:
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


def originals(plist: Any) -> list[torch.Tensor]:
    """The tensors a ParametrizationList stores (``original`` or ``original0``, ...)."""
    if plist.is_tensor:
        return [plist.original]
    return [getattr(plist, f"original{i}") for i in range(plist.ntensors)]


def restart_power_iteration(plist: Any) -> None:
    """spectral_norm estimates sigma with vectors it keeps between calls: converge them on
    the new weight, as registering spectral_norm does (15 iterations), or they would
    describe the old one."""
    for parametrization in plist:
        power = getattr(parametrization, "_power_method", None)
        reshape = getattr(parametrization, "_reshape_weight_to_matrix", None)
        if power is not None and reshape is not None and plist.is_tensor:
            power(reshape(plist.original), 15)


def through_parametrization(name: str, plist: Any, values: torch.Tensor
                            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(original, its values) for a parametrized tensor set to `values`: each
    parametrization's right_inverse, last first (what assigning the tensor does, without
    assigning yet). May change the parametrizations' state: see `isolated_inverse`."""
    with torch.no_grad():
        value: Any = values
        for parametrization in reversed(list(plist)):
            inverse = getattr(parametrization, "right_inverse", None)
            if inverse is not None:
                value = inverse(value)
    kept = originals(plist)
    computed = [value] if plist.is_tensor else list(value)
    if len(computed) != len(kept) or any(
            tuple(c.shape) != tuple(o.shape) for c, o in zip(computed, kept, strict=False)):
        raise InitError(
            f"The parametrization of {name!r} maps its values to tensors of shapes "
            f"{[tuple(c.shape) for c in computed]}, not its originals' "
            f"{[tuple(o.shape) for o in kept]}; give it a rule that keeps it (spec None)."
        )
    return list(zip(kept, computed, strict=True))


def inverse_seed(seed: int, key: str) -> int:
    """The seed of the generators a parametrization's right_inverse draws from for the
    parameter `key` (orthogonal completes a wide matrix with torch.randn): a function of
    the plan's seed and the key, so the result is reproducible and no caller state moves."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (1 << 63)


def isolated_inverse(row: PlanRow, plist: Any, values: torch.Tensor, seed: int
                     ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[_BufferChange]]:
    """`through_parametrization` with the parametrizations' buffers as they were afterwards
    (orthogonal's right_inverse stores a new ``base``) and what it changed returned instead,
    to be committed with the parameters; its draws from torch's generators seeded by
    `inverse_seed` on forked generators."""
    before = [(m, attr, t, None if t is None else t._version)
              for m in plist.modules() for attr, t in m._buffers.items()]
    copies = {id(t): t.detach().clone() for _, _, t, _ in before if t is not None}
    devices = sorted({t.device.index or 0 for t in originals(plist) if t.device.type == "cuda"})
    changes: list[_BufferChange] = []
    known = {(id(m), attr) for m, attr, _, _ in before}
    try:
        with probe_rng(devices, seed=inverse_seed(seed, row.key)):
            pairs = through_parametrization(row.name, plist, values)
        for m, attr, old, version in before:
            now = m._buffers.get(attr)
            if now is not old:
                changes.append(_BufferChange(m, attr, now))
            elif old is not None and old._version != version:
                changes.append(_BufferChange(m, attr, old, old.detach().clone()))
        for m in plist.modules():
            for attr, now in m._buffers.items():
                if (id(m), attr) not in known:
                    changes.append(_BufferChange(m, attr, now))
    finally:
        with torch.no_grad():
            for m in plist.modules():
                for attr in [a for a in m._buffers if (id(m), a) not in known]:
                    del m._buffers[attr]
            for m, attr, old, version in before:
                m._buffers[attr] = old
                if old is not None and old._version != version:
                    old.copy_(copies[id(old)])
    return pairs, changes
