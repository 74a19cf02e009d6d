"""`fill_keyed_`: fill a tensor, or a region of a logical tensor, from the keyed stream.

The value at global flat index f of a logical tensor is a pure function of
(seed, key, f, distribution, substream): `_kernels` gives the layout (which Philox call and
which words each element takes), `_transforms` the maps from words to values, `_region` how a
region of the logical tensor becomes runs of consecutive indices. Integer words are the same
bits on every device; floats can differ in the last bit between devices whose log or sqrt
differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from .._errors import InitError, check_choice, check_positive_int
from ..theory import truncated_std_factor
from ._kernels import (
    BLOCK,
    CHUNK,
    COMPILED_CHUNK,
    KINDS,
    PAIRS_PER_BLOCK,
    Backend,
    choose_backend,
    kernel,
    mark_warm,
)
from ._philox import key_tensor
from ._region import Region, pieces
from ._transforms import FAR_TAIL, kernel_params

Kind = Literal["uniform", "normal", "truncated_normal"]
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_seed(seed: object) -> int:
    """`seed` as an int in [0, 2**63), or InitError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InitError(f"`seed` must be an int in [0, 2**63), got {seed!r}.")
    return seed


def fill_keyed_(
    tensor: torch.Tensor,
    kind: Kind,
    params: Sequence[float],
    *,
    seed: int,
    key: str,
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
    substream: int = 0,
    backend: Backend = "auto",
    chunk: int | None = None,
) -> torch.Tensor:
    """Fill `tensor` in place with keyed values of one distribution.

    Args:
        tensor: a floating tensor: the whole logical tensor, or the region of it described by
            `global_shape` and `offset`.
        kind: ``"uniform"`` with params ``(low, high)``; ``"normal"`` with ``(mean, std)``;
            ``"truncated_normal"`` with ``(mean, std, a, b)``: `std` is the std of the
            values (as in `wi.TruncatedNormal`), [a, b] the bounds in units of the
            underlying normal's sigma = std / c(a, b).
        seed, key: select the stream; `key` is usually the parameter's qualified name.
        global_shape, offset: the logical tensor and where `tensor` sits in it.
        substream: an independent stream under the same (seed, key), for schemes that need
            several draws per element.
        backend: ``"eager"``, ``"compiled"`` (torch.compile; same bits) or ``"auto"`` (compiled
            for tensors of at least 2**28 elements, or of 2**14 once this process has compiled
            the kernel; env WEIGHTINIT_COMPILE=0/1 overrides).
        chunk: elements per kernel call (default 2**20 eager, 2**22 compiled): bounds the
            working set; values never depend on it.

    Returns:
        `tensor`.
    """
    check_choice("kind", kind, KINDS)
    if not isinstance(tensor, torch.Tensor) or tensor.dtype not in FLOAT_DTYPES:
        what = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise InitError(
            f"`tensor` must be a float16, bfloat16, float32 or float64 tensor, got {what}."
        )
    check_seed(seed)
    if not isinstance(key, str):
        raise InitError(f"`key` must be a str (e.g. a parameter name), got {key!r}.")
    _check_params(kind, params)
    if isinstance(substream, bool) or not isinstance(substream, int) or not (
            0 <= substream < 2**31):
        raise InitError(f"`substream` must be an int in [0, 2**31), got {substream!r}.")
    if chunk is not None:
        check_positive_int("chunk", chunk)
    region = Region.of(tensor.shape, global_shape, offset)
    if tensor.numel() == 0:
        return tensor
    values = kernel_params(kind, params)
    kernel_kind: str = kind
    if kind == "truncated_normal" and values[2] >= -FAR_TAIL:  # interval lo (mirrored) > -6.6
        kernel_kind = "truncated_near"
    compiled = choose_backend(backend, tensor.numel(), kernel_kind, tensor.dtype,
                              tensor.device.type) == "compiled"
    if chunk is None:
        chunk = COMPILED_CHUNK if compiled else CHUNK
    device = tensor.device
    key_words = key_tensor(seed, key, device)
    sub = torch.tensor(substream, dtype=torch.int32, device=device)
    affine = torch.tensor(values, dtype=torch.float64, device=device)
    starts, length = region.runs()

    target = tensor if tensor.is_contiguous() else torch.empty_like(
        tensor, memory_format=torch.contiguous_format)
    flat = target.view(-1)
    with torch.no_grad():
        for piece in pieces(starts, length, chunk):
            out = flat[piece.position:piece.position + piece.rows * piece.cols]
            if piece.aligned:
                out = out.view(-1, 2, PAIRS_PER_BLOCK)
                first_pair = (int(piece.starts) // BLOCK) * PAIRS_PER_BLOCK
                first, second = kernel(kernel_kind, "aligned", compiled)(
                    out.shape[0], torch.tensor([[first_pair]], device=device), key_words, sub,
                    affine, tensor.dtype)
                out[:, 0, :].copy_(first)
                out[:, 1, :].copy_(second)
                if compiled:
                    mark_warm(kernel_kind, tensor.dtype, device.type)
            else:
                # Ragged edges are small: compile the general kernel only for big regions.
                big = compiled and piece.rows * piece.cols >= chunk // 2
                kernel(kernel_kind, "general", big)(out.view(piece.rows, piece.cols),
                                                    piece.starts.to(device), key_words, sub,
                                                    affine)
        if target is not tensor:
            tensor.copy_(target)
    return tensor


def _check_params(kind: str, params: Sequence[float]) -> None:
    count = 4 if kind == "truncated_normal" else 2
    try:
        values = [float(p) for p in params]
    except (TypeError, ValueError):
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values) or any(
            isinstance(p, (bool, str)) for p in params):
        form = "(mean, std, a, b)" if count == 4 else (
            "(low, high)" if kind == "uniform" else "(mean, std)")
        raise InitError(
            f"`params` for {kind!r} must be {count} finite numbers {form}, got {params!r}."
        )
    if kind == "uniform" and not (values[0] < values[1] and math.isfinite(values[1] - values[0])):
        raise InitError(f"`params` for 'uniform' need low < high (finite width), got {params!r}.")
    if kind != "uniform" and values[1] < 0:
        raise InitError(f"`params` for {kind!r} need a std >= 0, got {params!r}.")
    if kind == "truncated_normal":
        _, _, a, b = values
        if not a < b:
            raise InitError(f"`params` for 'truncated_normal' need a < b, got {params!r}.")
        if a * b > 0 and min(abs(a), abs(b)) > 37:
            raise InitError(
                f"`params` for 'truncated_normal': [a, b] = [{a}, {b}] lies beyond 37 sigma, "
                "where the normal CDF underflows float64."
            )
        if truncated_std_factor(a, b) < 1e-6:
            raise InitError(
                f"`params` for 'truncated_normal': [a, b] = [{a}, {b}] is too narrow to sample "
                "by inverse CDF (its std factor is below 1e-6)."
            )


