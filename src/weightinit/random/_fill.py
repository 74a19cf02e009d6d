"""`fill_keyed_`: fill a tensor, or a region of a logical tensor, from the keyed stream (v2).

The value at global flat index f of a logical tensor is a pure function of
(seed, key, f, distribution, substream, dtype): `_kernels` gives the layout (which Philox call
and which word each element takes), `_transforms` the maps from words to values, `_region` how
a region of the logical tensor becomes runs of consecutive indices. The numba kernel (CPU) and
the torch ops (the reference, and the path on other devices) give the same bits on the CPU;
integer words are the same on every device, floats to within an ulp where a device's division
or square root differ. docs/stream.md specifies it all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from .._errors import InitError, check_choice, check_positive_int
from ._kernels import CHUNK, KINDS, Backend, choose_backend, run_numba, torch_kernel
from ._philox import BLOCK, derive_key, key_tensor
from ._region import Piece, Region, pieces
from ._transforms import (
    NORMAL,
    UNIFORM,
    Params,
    affine_,
    kernel_params,
    truncated_interval_problem,
)

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
        backend: ``"auto"`` (numba on the CPU, torch ops elsewhere), ``"numba"`` (CPU
            tensors), ``"eager"`` (torch ops, any device) or ``"compiled"`` (the torch ops
            under torch.compile); the same bits either way.
        chunk: elements per torch-ops call, and per numba call for targets other than
            float32 (default 2**20): bounds the working memory; values never depend on it.

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
    check_key(key)
    _check_params(kind, params)
    if isinstance(substream, bool) or not isinstance(substream, int) or not (
            0 <= substream < 2**31):
        raise InitError(f"`substream` must be an int in [0, 2**31), got {substream!r}.")
    if chunk is not None:
        check_positive_int("chunk", chunk)
    region = Region.of(tensor.shape, global_shape, offset)
    if tensor.numel() == 0:
        return tensor
    _check_writable(tensor)
    chosen = choose_backend(backend, tensor.device)
    target = tensor if tensor.is_contiguous() else torch.empty_like(
        tensor, memory_format=torch.contiguous_format)
    starts, length = region.runs()
    with torch.no_grad():
        flat = target.detach().view(-1)
        stream = _Stream(seed, key, substream, kernel_params(kind, params))
        if chosen == "numba":
            stream.fill_numba(flat, starts, length, chunk or CHUNK)
        else:
            stream.fill_torch(flat, starts, length, chunk or CHUNK, chosen == "compiled")
        if target is not tensor:
            tensor.copy_(target)
    return tensor


class _Stream:
    """One keyed stream and distribution, filling pieces of a flat tensor."""

    def __init__(self, seed: int, key: str, substream: int, params: Params) -> None:
        self.seed, self.key, self.substream, self.params = seed, key, substream, params

    def _identity(self) -> tuple[float, ...]:
        """The affine map that leaves standard variates as they are (for float64 targets,
        whose affine map runs after the kernel)."""
        if self.params.code in (UNIFORM, NORMAL):
            return (0.0, 1.0)
        return (-math.inf, math.inf, 0.0, 1.0)

    def fill_numba(self, flat: torch.Tensor, starts: torch.Tensor, length: int,
                   chunk: int) -> None:
        key = derive_key(self.seed, self.key)
        # float64 targets take the standard variates and apply the affine map in `_store`.
        affine = self._identity() if flat.dtype == torch.float64 else self.params.affine

        def run(out: np.ndarray, piece_starts: torch.Tensor, piece_length: int) -> None:
            run_numba(out, piece_starts.numpy(), piece_length, key, self.substream,
                      self.params, affine)

        if flat.dtype == torch.float32:  # in place, in one parallel call
            run(flat.numpy(), starts, length)
            # Writes through numpy bypass autograd's version counter: bump it as an in-place
            # torch op would, so that a graph that saved this tensor refuses to backward.
            torch.autograd.graph.increment_version(flat)
            return
        for piece in pieces(starts, length, chunk):
            work = torch.empty(piece.numel, dtype=torch.float32)
            run(work.numpy(), piece.starts, piece.length)
            self._store(flat, piece, work)

    def fill_torch(self, flat: torch.Tensor, starts: torch.Tensor, length: int, chunk: int,
                   compiled: bool) -> None:
        device = flat.device
        key = key_tensor(self.seed, self.key, device)
        for piece in pieces(starts, length, chunk):
            if piece.starts.numel() == 1 and piece.length >= 2 * BLOCK:
                start = int(piece.starts[0])
                first = start // BLOCK
                blocks = (start + piece.length - 1) // BLOCK - first + 1
                values = torch_kernel("block", compiled)(
                    torch.tensor(first, device=device), blocks, key, self.substream, self.params)
                values = values[start - first * BLOCK:start - first * BLOCK + piece.length]
            else:
                index = piece.starts.to(device)[:, None] + torch.arange(piece.length,
                                                                        device=device)
                values = torch_kernel("element", compiled)(index.view(-1), key, self.substream,
                                                           self.params)
            self._store(flat, piece, values, affine=True)

    def _store(self, flat: torch.Tensor, piece: Piece, values: torch.Tensor, *,
               affine: bool = False) -> None:
        """Write a piece's float32 values into `flat`: standard variates (`affine`, and always
        for float64 targets) go through the affine map in float64 first."""
        out = flat[piece.position:piece.position + piece.numel]
        if affine or flat.dtype == torch.float64:
            values = affine_(values.double(), self.params.code, self.params.affine)
            if flat.dtype != torch.float64:
                values = values.float()  # float16 and bfloat16 round from float32
        out.copy_(values)


def check_key(key: object) -> str:
    """`key` as a str that UTF-8 can encode (the key derivation hashes its bytes), or
    InitError."""
    if not isinstance(key, str):
        raise InitError(f"`key` must be a str (e.g. a parameter name), got {key!r}.")
    try:
        key.encode()
    except UnicodeEncodeError:
        raise InitError(f"`key` {key!r} is not valid Unicode (UTF-8 cannot encode it).") from None
    return key


def _check_writable(tensor: torch.Tensor) -> None:
    if tensor.device.type == "meta":
        raise InitError(
            "`tensor` is on the meta device: it has no memory to fill. Allocate it first (e.g. "
            "wi.materialize(model, device=...) for a model built on meta)."
        )
    if any(stride == 0 and size > 1 for stride, size in zip(tensor.stride(), tensor.shape,
                                                             strict=True)):
        raise InitError(
            f"`tensor` (shape {tuple(tensor.shape)}, strides {tensor.stride()}) repeats memory "
            "(an expanded view): its elements cannot hold different values. Fill a "
            "contiguous tensor, e.g. `t = t.contiguous()`, then expand it."
        )
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        raise InitError(
            "`tensor` was created under torch.inference_mode(), and such tensors cannot be "
            "changed in place outside it. Fill it inside inference_mode, or create it without."
        )


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
        problem = truncated_interval_problem(values[2], values[3])
        if problem is not None:
            raise InitError(f"`params` for 'truncated_normal': [a, b] = [{values[2]}, "
                            f"{values[3]}] {problem}. Got {params!r}.")


