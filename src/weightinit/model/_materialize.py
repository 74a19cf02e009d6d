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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._errors import InitError, failure
from ..random import FLOAT_DTYPES, check_seed
from ._apply import unwritable
from ._buffers import check_given, materialize_buffers, meta_buffers, put_back
from ._discovery import discover
from ._distributed import Box, is_dtensor, is_meta, local_tensor, shard_boxes
from ._init_model import build_plan
from ._plan import InitPlan, PlanRow
from ._policy import CALIBRATORS
from ._presets import resolve_policy
from ._probe import check_model
from ._progress import Progress, check_progress, report, stages


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
    if resolved.type == "cuda" and not torch.cuda.is_available():
        why = "was built without CUDA" if torch.version.cuda is None else "sees no GPU"
        raise InitError(
            f"`device` is {str(resolved)!r}, but CUDA is not available (torch "
            f"{torch.__version__} {why}); pass device='cpu', or run where a GPU is "
            "visible. Nothing was changed."
        )
    try:  # a device torch knows by name but cannot use here (no GPU, an index out of range)
        torch.empty(0, device=resolved)
    except Exception as exc:
        raise failure(f"Allocating on `device` {str(resolved)!r}", exc,
                      fix="Pass a device this process can allocate on, e.g. device='cpu'"
                      ) from None
    return resolved


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
        why = "" if is_meta(param) else unwritable(local_tensor(param))
        if why:  # allocated already: it is overwritten in place
            raise failure(f"Parameter {row.name!r} (shape {row.shape}) {why}")
        targets.append(_Target(row, param, boxes))
    if wrong_dtype:
        raise failure(
            f"Parameter{'s' if len(wrong_dtype) > 1 else ''} {', '.join(wrong_dtype[:5])}"
            f"{f' and {len(wrong_dtype) - 5} more' if len(wrong_dtype) > 5 else ''} cannot "
            "be filled: weightinit's schemes fill float16, bfloat16, float32 and float64 "
            "tensors",
            fix="Build them in one of those dtypes and cast after materialize, e.g. "
            "model.to(torch.complex64)")
    graded = sorted(name for name, p in params.items() if is_meta(p) and p.grad is not None)
    if graded:
        raise failure(
            f"Parameter{'s' if len(graded) > 1 else ''} {', '.join(map(repr, graded[:5]))} "
            "on the meta device hold a .grad, which has no values to move",
            fix="Drop the gradients first (model.zero_grad(set_to_none=True))")
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


def _fill(targets: list[_Target], device: torch.device, seed: int,
          progress: Progress | None = None) -> None:
    """Allocate and fill every target's local values, none of them in the model yet, calling
    `progress` after each; on a failure (InitError) or an exception from `progress` (as it
    is), everything allocated here is released."""
    step = stages(progress, "materializing", len(targets))
    try:
        for done, target in enumerate(targets, 1):
            _fill_one(target, device, seed)
            step(done)
    except BaseException as exc:
        for each in targets:
            each.fresh = each.local = None
        traceback.clear_frames(exc.__traceback__)  # their locals hold what was allocated
        raise


def _fill_one(target: _Target, device: torch.device, seed: int) -> None:
    box = None
    try:
        if is_meta(target.param):
            target.fresh = torch.empty_like(target.param, device=device)
            target.local = local_tensor(target.fresh)
        else:  # allocated: fill scratch space, copied in once every fill has succeeded
            target.local = torch.empty_like(local_tensor(target.param))
        for start, offset, size in target.boxes:
            box = target.local[tuple(slice(a, a + n) for a, n in zip(start, size, strict=True))]
            target.row.fill_(box, seed=seed, offset=offset)
            box = None
    except Exception as exc:
        target.fresh = target.local = box = None
        traceback.clear_frames(exc.__traceback__)
        row = target.row
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
                buffers: Mapping[str, torch.Tensor] | None = None,
                progress: Progress | None = None) -> InitPlan:
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
        progress: optional ``progress(done, total, stage)``: ``"probing"`` (0 of 1, then 1
            of 1) around discovery, then ``(0, n, "materializing")`` and ``(i, n,
            "materializing")`` after each of the n parameters this process fills is
            allocated and filled, all before any goes into the model. An exception it raises
            propagates, with the model as it was.

    Returns:
        The `InitPlan`; its notes say what was allocated and how buffers were recomputed.

    Raises:
        InitError: a bad argument (a device this process cannot allocate on, CUDA without
            a GPU; `buffers` keys that are not meta buffers' names, values of another
            shape), an unsupported placement (Partial), a dtype no scheme fills (complex,
            integer), a meta parameter the policy would keep as it is (no values to keep),
            an allocated parameter that cannot be written in place, a buffer that would
            stay uninitialized, or a fill that fails. All but the last two are refused
            before anything is allocated.
            The model is left as it was: its parameters and buffers are the same (meta)
            objects, and nothing allocated is kept.
    """
    model = check_model(model)
    target_device = _device(device)
    seed = check_seed(seed)
    if isinstance(policy, str) and policy in CALIBRATORS:
        raise InitError(
            f"Policy {policy!r} calibrates on data, which needs allocated weights: materialize "
            f"with policy='auto' first, then run wi.{policy}(model, batch)."
        )
    resolved = resolve_policy(policy)
    progress = check_progress(progress)
    if buffers is not None and not isinstance(buffers, Mapping):
        raise InitError(f"`buffers` must be a dict of buffer name -> tensor, got "
                        f"{type(buffers).__name__} {buffers!r:.60}.")
    given = dict(buffers or {})
    found_buffers = meta_buffers(model)
    check_given(given, found_buffers)
    params = dict(model.named_parameters(remove_duplicate=False))
    for name, param in params.items():
        if is_dtensor(param):
            shard_boxes(name, param)  # refuse unsupported placements before discovery
    report(progress, 0, 1, "probing")
    plan = build_plan(discover(model, example_inputs), resolved, seed)
    report(progress, 1, 1, "probing")
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
    notes += materialize_buffers(model, target_device, given, found_buffers, seed)
    try:  # parameters: all filled before any goes into the model
        _fill(targets, target_device, seed, progress)
        _commit(model, targets)
    except BaseException:
        put_back(found_buffers)
        raise
    local = sum(math.prod(size) for t in targets for _, _, size in t.boxes)
    total = sum(math.prod(row.shape) for row in plan.rows if row.spec is not None)
    notes.append(
        f"Materialized on {target_device}: {meta_params} meta parameters allocated; filled "
        f"{local:,} local elements of {total:,}."
    )
    return InitPlan(plan.rows, seed=plan.seed, policy=plan.policy, notes=notes)
