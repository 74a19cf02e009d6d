"""What discovery and materialize need to know about sharded models (FSDP2, DTensor) without
importing torch.distributed for models that have none."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from .._errors import InitError


def is_dtensor(tensor: object) -> bool:
    """Whether `tensor` is a torch.distributed DTensor."""
    return any(cls.__name__ == "DTensor" and cls.__module__.startswith("torch.distributed")
               for cls in type(tensor).__mro__)


def has_fsdp(model: nn.Module) -> bool:
    """Whether any module of `model` is wrapped by FSDP2's ``fully_shard``."""
    return any(cls.__name__ == "FSDPModule" for module in model.modules()
               for cls in type(module).__mro__)


def local_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor's local shard as a plain tensor sharing its memory; any other tensor as is."""
    return tensor._local_tensor if is_dtensor(tensor) else tensor  # type: ignore[attr-defined]


def is_meta(tensor: torch.Tensor) -> bool:
    """On the meta device (for a DTensor: its local shard is)."""
    return bool(tensor.is_meta) or (is_dtensor(tensor) and bool(local_tensor(tensor).is_meta))


def meta_like(tensor: torch.Tensor) -> torch.Tensor:
    """A meta tensor of `tensor`'s logical shape: a DTensor's global shape, not its shard."""
    if is_dtensor(tensor):
        return torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")
    return torch.empty_like(tensor, device="meta")


@contextlib.contextmanager
def without_forward_hooks(model: nn.Module) -> Iterator[None]:
    """Hide every module's forward hooks for the duration: FSDP2's and tensor parallelism's
    hooks would gather shards or redistribute activations, which a probe on global-shape meta
    tensors must not do."""
    kinds = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
             "_forward_hooks_with_kwargs", "_forward_hooks_always_called")
    saved = []
    for module in model.modules():
        for kind in kinds:
            hooks = getattr(module, kind, None)
            if hooks:
                saved.append((module, kind, hooks))
                setattr(module, kind, type(hooks)())
    try:
        yield
    finally:
        for module, kind, hooks in saved:
            setattr(module, kind, hooks)


Box = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
"""(start in the local tensor, start in the global tensor, size): one rectangular piece."""


def shard_boxes(name: str, param: torch.Tensor) -> tuple[tuple[int, ...], list[Box]]:
    """(local shape, boxes) of a DTensor's shard on this rank: the local tensor is the union of
    the boxes, each a rectangular slice of the global tensor. InitError for placements whose
    shard is not such a union (Partial, ...)."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    placements = tuple(param.placements)  # type: ignore[attr-defined]
    for placement in placements:
        if type(placement) not in (Shard, _StridedShard) and not isinstance(placement,
                                                                              Replicate):
            raise InitError(
                f"Parameter {name!r} (shape {tuple(param.shape)}) has placements {placements}: "
                f"its local part under {placement} is not made of slices of the tensor, so it "
                "cannot be filled from the global stream. materialize supports Shard(d), "
                "_StridedShard(d) (FSDP2 over tensor parallelism) and Replicate on any mesh: "
                "lay the parameter out with those, materialize, then redistribute it."
            )
    mesh = param.device_mesh  # type: ignore[attr-defined]
    coordinate = mesh.get_coordinate()
    if coordinate is None:  # this rank is not in the mesh: it holds nothing
        return (0,), []
    return local_boxes(tuple(param.shape), tuple(mesh.shape), tuple(coordinate), placements)


def local_boxes(shape: tuple[int, ...], mesh_shape: tuple[int, ...],
                coordinate: tuple[int, ...], placements: tuple[object, ...]
                ) -> tuple[tuple[int, ...], list[Box]]:
    """(local shape, boxes) of the rank at `coordinate` of a mesh of `mesh_shape`, for a global
    tensor of `shape` laid out by `placements` (Shard, _StridedShard or Replicate).

    DTensor's semantics, replayed on runs of global indices: the placements apply left to
    right; Shard(d) keeps chunk `coordinate[mesh_dim]` of the current indices of dim d as
    ``torch.chunk`` cuts them (trailing chunks may be short or empty); _StridedShard(d,
    split_factor=s) first cuts them into s chunks the same way, cuts each of those into one
    chunk per rank, and keeps the concatenation of this rank's pieces (torch's
    ``_StridedShard._split_tensor``). Each dim ends as a list of runs of consecutive global
    indices; the boxes are their products."""
    runs: list[list[tuple[int, int]]] = [[(0, n)] if n else [] for n in shape]
    for mesh_dim, placement in enumerate(placements):
        dim = getattr(placement, "dim", None)
        if dim is None:  # Replicate
            continue
        dim = int(dim) % len(shape)
        current = runs[dim]
        total = sum(length for _, length in current)
        factor = int(getattr(placement, "split_factor", 1))
        kept: list[tuple[int, int]] = []
        for lo, hi in _chunk(total, factor):
            start, stop = _chunk(hi - lo, mesh_shape[mesh_dim])[coordinate[mesh_dim]]
            kept.extend(_select(current, lo + start, lo + stop))
        runs[dim] = _merged(kept)
    local = tuple(sum(length for _, length in dim_runs) for dim_runs in runs)
    boxes: list[Box] = [((), (), ())]
    for dim_runs in runs:
        placed, position = [], 0
        for start, length in dim_runs:
            placed.append((position, start, length))
            position += length
        boxes = [((*a, p), (*b, g), (*c, n)) for a, b, c in boxes for p, g, n in placed]
    return local, boxes


def _chunk(size: int, chunks: int) -> list[tuple[int, int]]:
    """[start, stop) of each of `chunks` pieces of range(size), as ``torch.chunk`` cuts them
    (pieces of ceil(size / chunks); the trailing ones short or empty)."""
    step = -(-size // chunks)
    return [(min(i * step, size), min((i + 1) * step, size)) for i in range(chunks)]


def _select(runs: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """Positions [lo, hi) of the index sequence that `runs` (start, length) spell, as runs."""
    out, position = [], 0
    for start, length in runs:
        a, b = max(lo, position), min(hi, position + length)
        if a < b:
            out.append((start + a - position, b - a))
        position += length
    return out


def _merged(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, length in runs:
        if out and out[-1][0] + out[-1][1] == start:
            out[-1] = (out[-1][0], out[-1][1] + length)
        else:
            out.append((start, length))
    return out
