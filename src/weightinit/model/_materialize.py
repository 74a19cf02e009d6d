"""`materialize`: allocate a meta-device model (plain, FSDP2 or DTensor) and fill only what this
rank holds, bit-identical to `init_model` in one process.

Every parameter is filled from the keyed stream of (seed, its qualified name) at the global
indices of the elements this rank holds: a DTensor's local shard is a union of boxes of the
global tensor (one box under Shard/Replicate, several under _StridedShard; they come from the
mesh coordinate and the placements), so each rank fills exactly those slices of what one process
would fill. Fans come from the plan, which is built from the global shapes. Joint schemes
(Orthogonal, ...) build the whole matrix on every rank (once per box) and keep the slice.

All or nothing, like `init_model`: everything that can be refused is refused before anything is
allocated, and every parameter is allocated and filled outside the model before any of them is
put into it; on a failure the meta buffers are put back, so the model is as it was.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._errors import InitError, did_you_mean, failure
from ..random import FLOAT_DTYPES, check_seed
from ._discovery import discover
from ._distributed import Box, is_dtensor, is_meta, local_tensor, shard_boxes
from ._init_model import build_plan
from ._plan import InitPlan, PlanRow
from ._policy import CALIBRATORS
from ._presets import resolve_policy
from ._probe import unwrap


def _device(device: object) -> torch.device:
    try:
        resolved: torch.device = torch.device(device)  # type: ignore[call-overload]
    except (RuntimeError, TypeError):
        raise InitError(
            f"`device` must be a torch.device or a device string such as 'cpu' or 'cuda:0', "
            f"got {device!r}."
        ) from None
    if resolved.type == "meta":
        raise InitError(
            "`device` is 'meta': materialize allocates real memory; pass the device the model "
            "should live on, e.g. device='cpu' or device='cuda'."
        )
    return resolved


# --- buffers ------------------------------------------------------------------------------------
@dataclass
class _MetaBuffer:
    name: str
    module: nn.Module
    attr: str
    original: torch.Tensor
    allocated: torch.Tensor | None = None
    version: int = 0


def _meta_buffers(model: nn.Module) -> list[_MetaBuffer]:
    found: list[_MetaBuffer] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for attr, buffer in module._buffers.items():
            if buffer is None or id(buffer) in seen or not is_meta(buffer):
                continue
            seen.add(id(buffer))
            found.append(_MetaBuffer(f"{module_name}.{attr}" if module_name else attr, module,
                                     attr, buffer))
    return found


def _hf_initializer(model: nn.Module, module_name: str) -> Callable[[nn.Module], None] | None:
    """The `_init_weights` of the outermost transformers model above `module_name`: it knows
    how to recompute the buffers of its modules (rotary inv_freq, ...)."""
    parts = module_name.split(".") if module_name else []
    for cut in range(len(parts) + 1):
        owner = model.get_submodule(".".join(parts[:cut]))
        init = getattr(owner, "_init_weights", None)
        if callable(init) and type(owner).__module__.startswith("transformers."):
            return init  # type: ignore[no-any-return]
    return None


def _recipe(model: nn.Module, module_name: str, module: nn.Module) -> tuple[
        str, Callable[[], object]] | None:
    """How `module`'s own code recomputes its buffers, or None."""
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return "reset_running_stats()", module.reset_running_stats
    hf = _hf_initializer(model, module_name)
    if hf is not None:
        return "transformers' _init_weights", lambda: hf(module)
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        return f"{type(module).__name__}.reset_parameters()", reset
    return None


def _written(buffer: _MetaBuffer) -> bool:
    current = buffer.module._buffers.get(buffer.attr)
    if current is None or is_meta(current):
        return False
    return current is not buffer.allocated or current._version > buffer.version


def _put_back(buffers: list[_MetaBuffer]) -> None:
    for buffer in buffers:
        buffer.module._buffers[buffer.attr] = buffer.original


def _materialize_buffers(model: nn.Module, device: torch.device,
                         given: Mapping[str, torch.Tensor], buffers: list[_MetaBuffer]
                         ) -> list[str]:
    """Allocate every meta buffer in `buffers` on `device` and have its module recompute it;
    all of them, or InitError with every buffer put back on meta. Returns notes on what was
    done."""
    by_name = {b.name: b for b in buffers}
    for name, value in given.items():
        if name not in by_name:
            raise InitError(
                f"`buffers` names {name!r}, which is not a meta-device buffer of the model."
                f"{did_you_mean(name, by_name)} Meta buffers: "
                f"{', '.join(by_name) if by_name else 'none'}."
            )
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(
                by_name[name].original.shape) or value.is_meta:
            raise InitError(
                f"`buffers[{name!r}]` must be a tensor with values of shape "
                f"{tuple(by_name[name].original.shape)}, got "
                f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}"
                "."
            )
    modules = dict(model.named_modules())
    owners = {id(m): name for name, m in modules.items()}
    how: dict[str, list[str]] = {}
    failed: list[str] = []
    try:
        with torch.no_grad():
            pending: dict[int, list[_MetaBuffer]] = {}
            for buffer in buffers:
                if buffer.name in given:
                    value = given[buffer.name].detach().to(device=device,
                                                           dtype=buffer.original.dtype).clone()
                    buffer.module._buffers[buffer.attr] = value
                    buffer.allocated = value
                    how.setdefault("given in `buffers`", []).append(buffer.name)
                    continue
                allocated = torch.empty_like(buffer.original, device=device)
                buffer.module._buffers[buffer.attr] = allocated
                buffer.allocated, buffer.version = allocated, allocated._version
                pending.setdefault(id(buffer.module), []).append(buffer)
            for mine in pending.values():
                module = mine[0].module
                recipe = _recipe(model, owners[id(module)], module)
                why = f"{type(module).__name__} has no reset_parameters()"
                if recipe is not None:
                    label, run = recipe
                    try:
                        run()
                        why = f"{label} did not set it"
                    except Exception as exc:
                        why = f"{label} raised {type(exc).__name__}: {exc}"
                for buffer in mine:
                    if _written(buffer):
                        how.setdefault(recipe[0] if recipe else "", []).append(buffer.name)
                    else:
                        failed.append(f"{buffer.name!r} (shape {tuple(buffer.original.shape)}; "
                                      f"{why})")
        if failed:
            raise failure(
                f"Buffer{'s' if len(failed) > 1 else ''} {', '.join(failed[:5])}"
                f"{f' and {len(failed) - 5} more' if len(failed) > 5 else ''} would stay "
                "uninitialized: built on the meta device, they have no values, and their "
                "module's code does not recompute them",
                fix="Give the module a reset_parameters() that sets them, pass "
                "buffers={name: tensor}, or create them with an explicit device= in __init__")
    except BaseException:
        _put_back(buffers)
        raise
    return [f"Buffers recomputed by {label}: {', '.join(names)}." for label, names in how.items()]


# --- parameters ---------------------------------------------------------------------------------
@dataclass
class _Target:
    """One parameter's values on this rank. `local` is the union of `boxes` (local start,
    global start, size) of the global tensor: the local tensor of `fresh`, the allocation that
    replaces a meta parameter, or scratch space copied into an allocated parameter once
    every fill has succeeded."""

    row: PlanRow
    param: torch.Tensor
    boxes: list[Box]
    fresh: torch.Tensor | None = None
    local: torch.Tensor | None = None


def _layouts(plan: InitPlan, params: Mapping[str, torch.Tensor]) -> list[_Target]:
    """Where each planned parameter's values go, refusing what cannot be filled before
    anything is allocated: placements that are not unions of boxes, local shards of another
    shape, dtypes no scheme fills, meta parameters no row covers."""
    targets, wrong_dtype = [], []
    for row in plan.rows:
        if row.spec is None:
            continue
        param = params[row.name]
        if param.dtype not in FLOAT_DTYPES:
            wrong_dtype.append(f"{row.name!r} (shape {row.shape}, dtype {param.dtype})")
        if is_dtensor(param):
            shape, boxes = shard_boxes(row.name, param)
            if tuple(local_tensor(param).shape) != shape:
                raise InitError(
                    f"Parameter {row.name!r}: its local shard has shape "
                    f"{tuple(local_tensor(param).shape)}, its placements say {shape}; "
                    "weightinit cannot tell which slice it holds."
                )
        else:
            boxes = [((0,) * param.dim(), (0,) * param.dim(), tuple(param.shape))]
        targets.append(_Target(row, param, boxes))
    if wrong_dtype:
        raise failure(
            f"Parameter{'s' if len(wrong_dtype) > 1 else ''} {', '.join(wrong_dtype[:5])}"
            f"{f' and {len(wrong_dtype) - 5} more' if len(wrong_dtype) > 5 else ''} cannot "
            "be filled: weightinit's schemes fill float16, bfloat16, float32 and float64 "
            "tensors",
            fix="Build them in one of those dtypes and cast after materialize, e.g. "
            "model.to(torch.complex64)")
    planned = {id(t.param) for t in targets}
    missed = sorted({name for name, p in params.items() if is_meta(p) and id(p) not in planned})
    if missed:
        raise InitError(
            f"Parameter{'s' if len(missed) > 1 else ''} {', '.join(map(repr, missed[:5]))} "
            "would stay on the meta device: the plan has no row for them (a parametrization's "
            "originals?). Nothing was changed. Allocate them yourself (module.to_empty) and "
            "fill them, or register them as plain parameters."
        )
    return targets


def _fill(targets: list[_Target], device: torch.device, seed: int) -> None:
    """Allocate and fill every target's local values, none of them in the model yet; on a
    failure, InitError with everything allocated here released."""
    target = box = None
    try:
        for target in targets:
            if is_meta(target.param):
                target.fresh = torch.empty_like(target.param, device=device)
                target.local = local_tensor(target.fresh)
            else:  # allocated: fill scratch space, copied in once every fill has succeeded
                target.local = torch.empty_like(local_tensor(target.param))
            for start, offset, size in target.boxes:
                box = target.local[tuple(slice(a, a + n) for a, n in zip(start, size,
                                                                         strict=True))]
                target.row.fill_(box, seed=seed, offset=offset)
    except Exception as exc:
        if target is None:
            raise
        row = target.row
        for each in targets:
            each.fresh = each.local = None
        target = box = None
        traceback.clear_frames(exc.__traceback__)  # their locals hold what was allocated
        # An unexpected exception (a bug in a custom spec) keeps its traceback.
        raise failure(f"Filling {row.name!r} (shape {row.shape}) with {row.spec!r}", exc,
                      fix="Give this parameter a rule with a spec that can fill it") from (
                          None if isinstance(exc, InitError) else exc)


def _commit(model: nn.Module, targets: list[_Target]) -> None:
    """Put the filled values into the model: the fresh tensors in place of the meta
    parameters (by ``Module._apply``, as ``to_empty`` does: FSDP2 re-points its sharded
    storage afterwards), ties kept, scratch copied into allocated parameters. On a failure
    every plain parameter is put back (a DTensor's ``_apply`` swaps its contents in place,
    which cannot be undone)."""
    fresh = {id(t.param): t.fresh for t in targets if t.fresh is not None}

    def install(tensor: torch.Tensor) -> torch.Tensor:
        return fresh.get(id(tensor), tensor) if is_meta(tensor) else tensor

    sites = [(module, attr, tensor) for module in model.modules()
             for attr, tensor in module._parameters.items() if tensor is not None]
    try:
        model._apply(install)  # type: ignore[no-untyped-call]
        first: dict[int, nn.Parameter | None] = {}
        for module, attr, tensor in sites:  # _apply gives each site of a tie its own copy
            if id(tensor) in first:
                module._parameters[attr] = first[id(tensor)]
            else:
                first[id(tensor)] = module._parameters[attr]
        left = [name for name, t in [*model.named_parameters(remove_duplicate=False),
                                     *model.named_buffers(remove_duplicate=False)]
                if is_meta(t)]
        if left:
            raise InitError(f"Still on the meta device after materialize: {', '.join(left[:5])}"
                            ". Nothing was changed.")
    except BaseException:
        for module, attr, tensor in sites:
            module._parameters[attr] = tensor
        raise
    with torch.no_grad():
        for target in targets:
            if target.fresh is None and target.local is not None:
                local_tensor(target.param).copy_(target.local)


def materialize(model: nn.Module, *, device: torch.device | str, seed: int = 0,
                policy: Any = "auto", example_inputs: object = None,
                buffers: Mapping[str, torch.Tensor] | None = None) -> InitPlan:
    """Allocate a model built on the meta device and initialize it by `policy`, filling only
    what this process holds: plain parameters whole, a DTensor's (FSDP2's, tensor
    parallelism's) local shard only, each box of it at its global offsets. The assembled
    model equals ``wi.init_model(model, policy, seed=seed)`` on one process, bit for bit,
    whatever the mesh and placements.

    Discovery runs on the meta device with the global shapes (FSDP2's and tensor parallelism's
    forward hooks are hidden for it, so nothing is gathered). Buffers on meta are recomputed by
    their module's own code: BatchNorm's ``reset_running_stats()``, transformers'
    ``_init_weights`` (rotary ``inv_freq``), or the module's ``reset_parameters()``; a buffer
    none of them sets is refused by name. Parameters and buffers already allocated stay where
    they are; parameters are (re)initialized like the rest.

    Fills run in place on as many threads as torch uses (``torch.set_num_threads``): the
    numba kernel on the CPU, torch ops on other devices. Memory: the model's local bytes
    (plus one 2**20-element chunk for float16, bfloat16 and float64 parameters); joint
    schemes (Orthogonal) build their whole matrix once per rank.

    Args:
        model: an ``nn.Module`` whose parameters are on the meta device, possibly wrapped by
            ``fully_shard`` or holding DTensors (Shard(d), _StridedShard(d) as FSDP2 over
            tensor parallelism lays them out, Replicate; any mesh, uneven sizes included).
        device: where to allocate, e.g. ``"cpu"`` or ``"cuda"``.
        seed: selects the keyed streams, as in `init_model`.
        policy: as in `init_model` (data-driven policies such as ``"lsuv"`` need a real
            model: materialize first, then run `wi.lsuv`).
        example_inputs: inputs for discovery, as in `init_model`.
        buffers: values for meta buffers that no module code recomputes, by qualified name.

    Returns:
        The `InitPlan`; its notes say what was allocated and how buffers were recomputed.

    Raises:
        InitError: a bad argument, an unsupported placement (Partial), a dtype no scheme
            fills (complex, integer), a meta parameter the policy would keep as it is (no
            values to keep), a buffer that would stay uninitialized, or a fill that fails.
            The model is left as it was: its parameters and buffers are the same (meta)
            objects, and nothing allocated is kept.
    """
    if not isinstance(model, nn.Module):
        raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    model = unwrap(model)
    target_device = _device(device)
    seed = check_seed(seed)
    if isinstance(policy, str) and policy in CALIBRATORS:
        raise InitError(
            f"Policy {policy!r} calibrates on data, which needs allocated weights: materialize "
            f"with policy='auto' first, then run wi.{policy}(model, batch)."
        )
    resolved = resolve_policy(policy)
    if buffers is not None and not isinstance(buffers, Mapping):
        raise InitError(f"`buffers` must be a dict of buffer name -> tensor, got {buffers!r}.")
    params = dict(model.named_parameters(remove_duplicate=False))
    for name, param in params.items():
        if is_dtensor(param):
            shard_boxes(name, param)  # refuse unsupported placements before discovery
    plan = build_plan(discover(model, example_inputs), resolved, seed)
    parametrized = [row.name for row in plan.rows if row.name not in params]
    if parametrized:
        raise InitError(
            f"{parametrized[0]!r} is computed by a parametrization (weight_norm, spectral_norm, "
            "...), which materialize cannot allocate through: materialize the model first, "
            "then register the parametrization (or build it for real and call "
            "wi.init_model). Nothing was allocated."
        )
    unfilled = [f"{row.name!r} (shape {row.shape}, role {row.role!r})" for row in plan.rows
                if row.spec is None and is_meta(params[row.name])]
    if unfilled:
        raise failure(
            f"Parameter{'s' if len(unfilled) > 1 else ''} {', '.join(unfilled[:5])}"
            f"{f' and {len(unfilled) - 5} more' if len(unfilled) > 5 else ''} would be "
            "allocated but not filled: the policy keeps them as they are, and on the meta "
            "device they have no values",
            fix="Give them a rule, e.g. wi.Policy([wi.Rule(wi.Normal(0.02), name='...'), "
            "wi.Policy.preset('auto')])")
    targets = _layouts(plan, params)
    meta_params = sum(1 for t in targets if is_meta(t.param))
    notes = list(plan.notes)
    meta_buffers = _meta_buffers(model)
    notes += _materialize_buffers(model, target_device, dict(buffers or {}), meta_buffers)
    try:  # parameters: all filled before any goes into the model
        _fill(targets, target_device, seed)
        _commit(model, targets)
    except BaseException:
        _put_back(meta_buffers)
        raise
    local = sum(math.prod(size) for t in targets for _, _, size in t.boxes)
    total = sum(math.prod(row.shape) for row in plan.rows if row.spec is not None)
    notes.append(
        f"Materialized on {target_device}: {meta_params} meta parameters allocated; filled "
        f"{local:,} local elements of {total:,}."
    )
    return InitPlan(plan.rows, seed=plan.seed, policy=plan.policy, notes=notes)
