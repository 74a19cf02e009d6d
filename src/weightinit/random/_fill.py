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

from .._errors import InitError, check_choice, check_int, check_positive_int, show
from ._kernels import CHUNK, KINDS, Backend, choose_backend, run_numba, torch_kernel
from ._philox import BLOCK, check_key, derive_key, key_tensor
from ._region import Piece, Region, pieces
from ._transforms import (
    NORMAL,
    NORMAL_REACH,
    UNIFORM,
    Params,
    affine_,
    kernel_params,
    largest_magnitude,
    truncated_interval_problem,
)

Kind = Literal["uniform", "normal", "truncated_normal"]
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_seed(seed: object) -> int:
    """`seed` as a Python int in [0, 2**63), or InitError. Any integer that is not a bool is
    accepted: an int, a NumPy integer (``np.int64(1)``), a 0-d integer tensor, anything
    `operator.index` takes; the stream depends only on its value."""
    return check_int("seed", seed, low=0, high=2**63, form="an int in [0, 2**63)")


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
    check_target(tensor)
    check_seed(seed)
    check_key(key)
    check_params(kind, params)
    check_int("substream", substream, low=0, high=2**31, form="an int in [0, 2**31)")
    if chunk is not None:
        check_positive_int("chunk", chunk)
    region = Region.of(tensor.shape, global_shape, offset)
    if tensor.numel() == 0:
        return tensor
    check_writable(tensor)
    problem = overflow_problem(kind, params, tensor.dtype)
    if problem is not None:
        raise InitError(f"`params` {show(tuple(params))} for {kind!r} {problem}. The tensor is "
                        "unchanged.")
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


def check_target(tensor: object, owner: str = "The keyed stream") -> None:
    """InitError unless `tensor` is a dense (strided) floating tensor: not nested, not sparse,
    of dtype float16, bfloat16, float32 or float64. `owner` names what fills it."""
    if not isinstance(tensor, torch.Tensor):
        raise InitError(f"`tensor` must be a torch.Tensor, got {type(tensor).__name__}.")
    if tensor.is_nested:
        raise InitError(
            "`tensor` is a nested tensor: its components have different shapes, so it has no "
            "single logical shape to initialize. Fill each component (`t.unbind()`) on its own, "
            "or fill a dense tensor and build the nested one from it."
        )
    if tensor.layout != torch.strided:
        raise InitError(
            f"`tensor` has layout {tensor.layout}: only its stored entries exist, so an "
            "initializer cannot write every element. Fill a dense tensor, then convert it "
            "(e.g. `dense.to_sparse()`), or fill `t.values()` for the stored entries."
        )
    if tensor.dtype not in FLOAT_DTYPES:
        raise InitError(
            f"`tensor` has dtype {tensor.dtype}; {owner} fills float16, bfloat16, float32 and "
            "float64 tensors. Cast it first, e.g. `t = t.float()`."
        )


def _overlaps(tensor: torch.Tensor) -> bool:
    """Do two elements of `tensor` share memory (an expanded or overlapping strided view)?

    Sorted by stride, the dims cannot overlap when each stride exceeds the span of the dims
    below it (every view torch makes by slicing or permuting); otherwise the storage offsets
    of all elements are compared."""
    dims = sorted((stride, size) for stride, size in zip(tensor.stride(), tensor.shape,
                                                          strict=True) if size > 1)
    span = 0
    for stride, size in dims:
        if stride <= span:
            break
        span += (size - 1) * stride
    else:
        return False
    offsets = torch.zeros(1, dtype=torch.int64)
    for stride, size in dims:
        offsets = (offsets[:, None] + torch.arange(size) * stride).reshape(-1)
    return int(torch.unique(offsets).numel()) < offsets.numel()


def check_writable(tensor: torch.Tensor) -> None:
    """InitError unless every element of the (non-empty) `tensor` can be written in place:
    real memory (not meta), no two elements sharing memory, and not an inference tensor
    outside inference mode. Call after `check_target`."""
    if tensor.device.type == "meta":
        raise InitError(
            "`tensor` is on the meta device: it has no memory to fill. Allocate it first (e.g. "
            "wi.materialize(model, device=...) for a model built on meta)."
        )
    if _overlaps(tensor):
        raise InitError(
            f"`tensor` (shape {tuple(tensor.shape)}, strides {tensor.stride()}) repeats memory "
            "(an expanded view): its elements cannot hold different values. Fill a "
            "contiguous tensor, e.g. `t = t.contiguous()`, then expand it."
        )
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        raise InitError(
            "`tensor` was created under torch.inference_mode(), and such tensors cannot be "
            "changed in place outside it. Fill it inside inference_mode, or create it without "
            "(or fill a clone: `t = t.clone()` outside inference_mode is a normal tensor)."
        )


def overflow_problem(kind: str, params: Sequence[float], dtype: torch.dtype) -> str | None:
    """Why values of the distribution (`kind`, `params`, checked) would overflow `dtype`, or
    None: ``"gives values up to +-6.67e+39 (|mean| + 6.67 std), beyond float32's range
    (largest 3.403e+38)"``. Decided from the distribution's reach, not from a sample, so a
    spec either always fits a dtype or never does."""
    bound = largest_magnitude(kind, params)
    largest = torch.finfo(dtype).max
    if bound <= largest:
        return None
    how = {"uniform": "max(|low|, |high|)",
           "normal": f"|mean| + {NORMAL_REACH} std, the stream's widest normal variate",
           "truncated_normal": "the truncation bounds mean + sigma a, mean + sigma b"}[kind]
    return (f"gives values up to +-{bound:.4g} ({how}), beyond {dtype}'s range (largest "
            f"finite {largest:.4g}): they would be written as inf. Use a smaller scale, or a "
            "wider dtype")


def check_params(kind: str, params: Sequence[float]) -> None:
    """InitError unless `params` suit `kind` (see `fill_keyed_`); `kind` is checked first."""
    check_choice("kind", kind, KINDS)
    count = 4 if kind == "truncated_normal" else 2
    try:
        values = [float(p) for p in params]
    except (TypeError, ValueError, ArithmeticError, RuntimeError):
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values) or any(
            isinstance(p, (bool, str)) for p in params):
        form = "(mean, std, a, b)" if count == 4 else (
            "(low, high)" if kind == "uniform" else "(mean, std)")
        raise InitError(
            f"`params` for {kind!r} must be {count} finite numbers {form}, got {show(params)}."
        )
    if kind == "uniform" and not (values[0] < values[1] and math.isfinite(values[1] - values[0])):
        raise InitError(
            f"`params` for 'uniform' need low < high (finite width), got {show(params)}.")
    if kind != "uniform" and values[1] < 0:
        raise InitError(f"`params` for {kind!r} need a std >= 0, got {show(params)}.")
    if kind == "truncated_normal":
        problem = truncated_interval_problem(values[2], values[3])
        if problem is not None:
            raise InitError(f"`params` for 'truncated_normal': [a, b] = [{values[2]}, "
                            f"{values[3]}] {problem}. Got {show(params)}.")


