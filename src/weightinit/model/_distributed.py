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


def shard_box(name: str, param: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(local shape, global offset) of a DTensor's shard, or InitError for placements whose
    shard is not a box of the global tensor."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    placements = tuple(param.placements)  # type: ignore[attr-defined]
    for placement in placements:
        if not (type(placement) is Shard or isinstance(placement, Replicate)):
            raise InitError(
                f"Parameter {name!r} (shape {tuple(param.shape)}) has placements {placements}: "
                f"its local part under {placement} is not one rectangular slice of the tensor, "
                "so it cannot be filled from the global stream. materialize supports Shard(d) "
                "and Replicate on any mesh (FSDP2, tensor parallelism): lay the parameter out "
                "with those, materialize, then redistribute it."
            )
    shape, offset = compute_local_shape_and_global_offset(
        param.shape, param.device_mesh, placements)  # type: ignore[attr-defined]
    return tuple(int(d) for d in shape), tuple(int(o) for o in offset)
