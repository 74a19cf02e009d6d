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
import threading
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from .._errors import InitError, check_choice, check_positive_int
from ..theory import truncated_std_factor
from ._kernels import CHUNK, KINDS, Backend, choose_backend, numba_kernel, torch_kernel
from ._philox import BLOCK, derive_key, key_tensor
from ._region import Piece, Region, pieces
from ._transforms import DEEPEST, NORMAL, UNIFORM, Params, affine_, kernel_params

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
    chosen = choose_backend(backend, tensor.device)
    if chosen == "numba" and tensor.device.type != "cpu":
        raise InitError(
            f"`backend`='numba' fills CPU tensors; this one is on {tensor.device}. Use "
            "backend='auto' (torch ops there, the same values)."
        )
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


_NUMBA_LOCK = threading.Lock()  # numba's workqueue layer (no OpenMP) is not thread-safe


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
        import numba

        fill = numba_kernel()
        k0, k1 = (np.uint64(k) for k in derive_key(self.seed, self.key))
        standard = np.array(self.params.standard or (0.0, 0.0, 0.0), dtype=np.float32)
        wide = flat.dtype == torch.float64

        def run(out: np.ndarray, piece_starts: torch.Tensor, piece_length: int) -> None:
            affine = self._identity() if wide else self.params.affine
            most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
            with _NUMBA_LOCK:
                numba.set_num_threads(max(1, min(torch.get_num_threads(), most)))
                fill(out, piece_starts.numpy(), piece_length, k0, k1, self.substream,
                     self.params.code, standard, np.array(affine, dtype=np.float64))

        if flat.dtype == torch.float32:  # in place, in one parallel call
            run(flat.numpy(), starts, length)
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
            piece_starts = piece.starts.to(device)
            if piece.starts.numel() == 1 and piece.length >= 2 * BLOCK:
                start = int(piece.starts[0])
                first = start // BLOCK
                blocks = (start + piece.length - 1) // BLOCK - first + 1
                values = torch_kernel("block", compiled)(
                    torch.tensor(first, device=device), blocks, key, self.substream, self.params)
                values = values[start - first * BLOCK:start - first * BLOCK + piece.length]
            else:
                index = piece_starts[:, None] + torch.arange(piece.length, device=device)
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
        out.copy_(values)


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
        if a > DEEPEST or b < -DEEPEST:
            raise InitError(
                f"`params` for 'truncated_normal': [a, b] = [{a}, {b}] lies beyond {DEEPEST:g} "
                "sigma, where the stream's float32 normal CDF underflows. Shift the mean "
                "instead: an interval within 11 sigma of it."
            )
        if truncated_std_factor(a, b) < 1e-6:
            raise InitError(
                f"`params` for 'truncated_normal': [a, b] = [{a}, {b}] is too narrow to sample "
                "by inverse CDF (its std factor is below 1e-6)."
            )


