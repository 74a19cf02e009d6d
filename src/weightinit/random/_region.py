"""Regions of a logical tensor (a shard is one) as runs of consecutive global indices, and the
pieces the kernels fill them in.

Filling a region walks it as R runs of L consecutive global indices, so its values are exactly
that slice of the whole tensor, whatever the split.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .._errors import InitError, check_int, show


@dataclass(frozen=True)
class Region:
    """Where a local tensor sits in its logical (global) tensor."""

    global_shape: tuple[int, ...]
    offset: tuple[int, ...]
    shape: tuple[int, ...]

    @staticmethod
    def of(shape: Sequence[int], global_shape: Sequence[int] | None,
           offset: Sequence[int] | None) -> Region:
        local = tuple(int(d) for d in shape)
        if global_shape is None:
            given = None if offset is None else _int_tuple("offset", offset)
            if given is not None and (any(given) or len(given) != len(local)):
                raise InitError(
                    f"`offset` {show(given)} needs `global_shape`: the shape of the whole logical "
                    "tensor this region belongs to."
                )
            return _checked(Region(local, (0,) * len(local), local))
        full = _int_tuple("global_shape", global_shape)
        if offset is None:
            offset = (0,) * len(full)
        start = _int_tuple("offset", offset)
        if len(full) != len(local) or len(start) != len(local):
            raise InitError(
                f"`global_shape` {show(full)} and `offset` {show(start)} must have one entry "
                f"per dim of the tensor being filled, shape {show(local)}."
            )
        for dim, (o, n, g) in enumerate(zip(start, local, full, strict=True)):
            if o + n > g:
                raise InitError(
                    f"`offset` {show(start)} with tensor shape {show(local)} reaches index "
                    f"{show(o + n)} in dim {dim}, outside `global_shape` {show(full)}. The "
                    "region must lie inside the global tensor."
                )
        return _checked(Region(full, start, local))

    def runs(self) -> tuple[torch.Tensor, int]:
        """(starts, L): the region is R = len(starts) runs of L consecutive global indices."""
        ndim = len(self.shape)
        inner = ndim  # dims [inner:] of the region span the whole global extent
        while inner > 0 and self.shape[inner - 1] == self.global_shape[inner - 1]:
            inner -= 1
        strides = [1] * ndim
        for d in range(ndim - 2, -1, -1):
            strides[d] = strides[d + 1] * self.global_shape[d + 1]
        if inner == 0:  # the whole tensor
            return torch.zeros(1, dtype=torch.int64), math.prod(self.shape)
        run_dim = inner - 1
        length = self.shape[run_dim] * strides[run_dim]
        starts = torch.tensor([self.offset[run_dim] * strides[run_dim]], dtype=torch.int64)
        for d in range(run_dim - 1, -1, -1):
            steps = (torch.arange(self.shape[d], dtype=torch.int64) + self.offset[d]) * strides[d]
            starts = (steps[:, None] + starts[None, :]).reshape(-1)
        return starts, length


LARGEST = 2**62
"""Elements a logical tensor may have: flat indices stay below 2**62 (docs/stream.md)."""


def _checked(region: Region) -> Region:
    count = math.prod(region.global_shape)
    if count >= LARGEST:
        shown = f"{count:,}" if count < 10**30 else "more than 10**30"
        raise InitError(
            f"`global_shape` {show(region.global_shape)} has {shown} elements; the keyed stream "
            "indexes at most 2**62 per tensor."
        )
    return region


def _int_tuple(argument: str, values: Sequence[int]) -> tuple[int, ...]:
    """`values` as a tuple of Python ints >= 0 (ints, NumPy integers, 0-d integer tensors; not
    bools), or InitError naming `argument`."""
    if isinstance(values, (str, bytes)):
        raise InitError(f"`{argument}` must be a sequence of ints, got {show(values)}.")
    try:
        items = tuple(values)
    except TypeError:
        raise InitError(f"`{argument}` must be a sequence of ints, got {show(values)}.") from None
    try:
        return tuple(check_int(argument, v) for v in items)
    except InitError:
        raise InitError(
            f"`{argument}` must hold non-negative ints, got {show(values)}."
        ) from None


@dataclass(frozen=True)
class Piece:
    """Runs of the region filled in one kernel call: `starts` (R,) global indices, each run
    `length` elements, stored consecutively in the flat local tensor from `position`."""

    position: int
    starts: torch.Tensor
    length: int

    @property
    def numel(self) -> int:
        return self.starts.numel() * self.length


def pieces(starts: torch.Tensor, length: int, chunk: int) -> Iterator[Piece]:
    """Cover R runs of `length` consecutive global indices with pieces of at most about `chunk`
    elements: groups of whole runs, or parts of one run when a run is longer than `chunk`."""
    chunk = max(chunk, 1)
    if length <= chunk:
        rows = chunk // length
        for r in range(0, starts.numel(), rows):
            yield Piece(r * length, starts[r:r + rows], length)
        return
    for r, start in enumerate(starts.tolist()):
        for j in range(0, length, chunk):
            yield Piece(r * length + j, torch.tensor([start + j], dtype=torch.int64),
                        min(chunk, length - j))
