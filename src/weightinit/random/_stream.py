"""Keyed counter-based streams: the values of any region of a logical tensor.

The value at global flat index f of a logical tensor is a pure function of
(seed, key, f, distribution, substream): Philox4x32-10 with the counter
(f mod 2**32, f div 2**32, substream, 0) and key words derived from (seed, key). One counter
gives 128 bits, used per element as follows (m53 = 53 bits from two words, m52 = 52 bits):

- uniform: U = m53(w0, w1) * 2**-53 in [0, 1), then low + (high - low) * U;
- normal: Box–Muller in float64, Z = sqrt(-2 log(U1)) cos(2 pi U2) with
  U1 = (m53(w0, w1) + 1) * 2**-53 in (0, 1] and U2 = m53(w2, w3) * 2**-53;
- truncated normal: inverse CDF of P = Phi(a) + (Phi(b) - Phi(a)) U, U = (2 m52 + 1) * 2**-53
  in (0, 1) (no rejection loop, so no element depends on another), mirrored into the lower tail
  when the interval lies mostly above 0, for precision.

All arithmetic is float64, rounded once to the target dtype. Integer words are the same bits on
every device; float results can differ in the last bit between devices whose log/cos differ.

Filling a region (a shard) walks it as R runs of L consecutive global indices, so its values are
exactly that slice of the whole tensor, whatever the split.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .._errors import InitError
from ._philox import key_tensor, philox4x32

Kind = Literal["uniform", "normal", "truncated_normal"]
Backend = Literal["auto", "eager", "compiled"]
_KINDS = ("uniform", "normal", "truncated_normal")

CHUNK = 1 << 20  # elements per kernel call: bounds the working set to a few tens of MB
COMPILE_THRESHOLD = 1 << 25  # below this many elements, eager beats paying for a compile
_TWO_PI = 2.0 * math.pi


def _m26(word: torch.Tensor, shift: int) -> torch.Tensor:
    return ((word >> shift) & ((1 << (32 - shift)) - 1)).to(torch.float64)


def _m53(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """53 random bits as an exact float64 integer: 26 from `hi`, 27 from `lo`."""
    return _m26(hi, 6) * 134217728.0 + _m26(lo, 5)


def _words(starts: torch.Tensor, length: int, key: torch.Tensor, substream: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    index = starts + torch.arange(length, dtype=torch.int64, device=starts.device)
    c0 = (index & 0xFFFFFFFF).to(torch.int32)
    c1 = (index >> 32).to(torch.int32)
    c2 = torch.zeros_like(c0) + substream
    c3 = torch.zeros_like(c0)
    return philox4x32(c0, c1, c2, c3, key[0], key[1])


def _uniform_kernel(out: torch.Tensor, starts: torch.Tensor, key: torch.Tensor,
                    substream: torch.Tensor, affine: torch.Tensor) -> None:
    w0, w1, _, _ = _words(starts, out.shape[-1], key, substream)
    u = _m53(w0, w1) * 2.0**-53
    out.copy_(affine[0] + affine[1] * u)


def _normal_kernel(out: torch.Tensor, starts: torch.Tensor, key: torch.Tensor,
                   substream: torch.Tensor, affine: torch.Tensor) -> None:
    w0, w1, w2, w3 = _words(starts, out.shape[-1], key, substream)
    u1 = (_m53(w0, w1) + 1.0) * 2.0**-53
    u2 = _m53(w2, w3) * 2.0**-53
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(_TWO_PI * u2)
    out.copy_(affine[0] + affine[1] * z)


# Wichura, Algorithm AS 241: The Percentage Points of the Normal Distribution, 1988 (PPND16):
# rational approximations with relative error about 1e-16, in three regions of p.
_AS241_CENTRAL = (
    (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
     1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
     3.3430575583588128105e4, 2.5090809287301226727e3),
    (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
     2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
     5.2264952788528545610e3),
)
_AS241_NEAR = (
    (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
     3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
     2.27238449892691845833e-2, 7.74545014278341407640e-4),
    (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
     1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
     1.05075007164441684324e-9),
)
_AS241_FAR = (
    (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
     2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
     2.71155556874348757815e-5, 2.01033439929228813265e-7),
    (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
     7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
     2.04426310338993978564e-15),
)


def _rational(coefficients: tuple[tuple[float, ...], tuple[float, ...]],
              x: torch.Tensor) -> torch.Tensor:
    numerator, denominator = coefficients
    top = torch.full_like(x, numerator[-1])
    for c in reversed(numerator[:-1]):
        top = top * x + c
    bottom = torch.full_like(x, denominator[-1])
    for c in reversed(denominator[:-1]):
        bottom = bottom * x + c
    return top / bottom


def ndtri(p: torch.Tensor) -> torch.Tensor:
    """The standard normal quantile Phi^-1(p) for float64 p in (0, 1), in plain torch ops (so it
    compiles into the fill kernel; torch.special.ndtri would run as a separate pass)."""
    q = p - 0.5
    central = q * _rational(_AS241_CENTRAL, 0.180625 - q * q)
    r = torch.sqrt(-torch.log(torch.minimum(p, 1.0 - p)))
    tail = torch.where(r <= 5.0, _rational(_AS241_NEAR, r - 1.6), _rational(_AS241_FAR, r - 5.0))
    tail = torch.where(q < 0.0, -tail, tail)
    return torch.where(q.abs() <= 0.425, central, tail)


def _truncated_kernel(out: torch.Tensor, starts: torch.Tensor, key: torch.Tensor,
                      substream: torch.Tensor, affine: torch.Tensor) -> None:
    """affine = (Phi(lo), Phi(hi) - Phi(lo), lo, hi, mean, scale): mean + scale * Phi^-1(P)."""
    w0, w1, _, _ = _words(starts, out.shape[-1], key, substream)
    m52 = _m26(w0, 6) * 67108864.0 + _m26(w1, 6)
    u = (2.0 * m52 + 1.0) * 2.0**-53  # in the open interval (0, 1)
    z = torch.clamp(ndtri(affine[0] + affine[1] * u), affine[2], affine[3])
    out.copy_(affine[4] + affine[5] * z)


KernelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]
_EAGER: dict[str, KernelFn] = {
    "uniform": _uniform_kernel,
    "normal": _normal_kernel,
    "truncated_normal": _truncated_kernel,
}
_COMPILED: dict[str, KernelFn] = {}


def _compiled(name: str) -> KernelFn:
    """The torch.compile'd kernel, built on first use (a few seconds; cached on disk by torch)."""
    fn = _COMPILED.get(name)
    if fn is None:
        fn = torch.compile(_EAGER[name], dynamic=True, fullgraph=True)
        _COMPILED[name] = fn
    return fn


def _choose_backend(backend: Backend, numel: int) -> Literal["eager", "compiled"]:
    if backend not in ("auto", "eager", "compiled"):
        raise InitError(f"`backend` must be 'auto', 'eager' or 'compiled', got {backend!r}.")
    if backend != "auto":
        return backend
    setting = os.environ.get("WEIGHTINIT_COMPILE", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return "eager"
    if setting in ("1", "true", "yes", "on"):
        return "compiled"
    return "compiled" if numel >= COMPILE_THRESHOLD else "eager"


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
            if offset is not None and any(int(o) != 0 for o in offset):
                raise InitError(
                    f"`offset` {tuple(offset)} needs `global_shape`: the shape of the whole "
                    "logical tensor this region belongs to."
                )
            return Region(local, (0,) * len(local), local)
        full = _int_tuple("global_shape", global_shape)
        if offset is None:
            offset = (0,) * len(full)
        start = _int_tuple("offset", offset)
        if len(full) != len(local) or len(start) != len(local):
            raise InitError(
                f"`global_shape` {full} and `offset` {start} must have one entry per dim of the "
                f"tensor being filled, shape {local}."
            )
        for dim, (o, n, g) in enumerate(zip(start, local, full, strict=True)):
            if o + n > g:
                raise InitError(
                    f"`offset` {start} with tensor shape {local} reaches index {o + n} in dim "
                    f"{dim}, outside `global_shape` {full}. The region must lie inside the "
                    "global tensor."
                )
        return Region(full, start, local)

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


def _int_tuple(argument: str, values: Sequence[int]) -> tuple[int, ...]:
    try:
        items = tuple(values)
    except TypeError:
        raise InitError(f"`{argument}` must be a sequence of ints, got {values!r}.") from None
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InitError(f"`{argument}` must hold non-negative ints, got {values!r}.")
    return items


def _blocks(starts: torch.Tensor, length: int, chunk: int) -> Iterator[tuple[int, int, int,
                                                                         torch.Tensor]]:
    """(flat position, rows, columns, row starts) blocks of about `chunk` elements."""
    if length >= chunk:
        for r, start in enumerate(starts.tolist()):
            for j in range(0, length, chunk):
                n = min(chunk, length - j)
                yield r * length + j, 1, n, torch.tensor([[start + j]], dtype=torch.int64)
    else:
        rows = max(1, chunk // length) if length else 1
        for r in range(0, starts.numel(), rows):
            block = starts[r:r + rows, None]
            yield r * length, block.shape[0], length, block


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
    chunk: int = CHUNK,
) -> torch.Tensor:
    """Fill `tensor` in place with keyed values of one distribution.

    Args:
        tensor: a floating tensor: the whole logical tensor, or the region of it described by
            `global_shape` and `offset`.
        kind: ``"uniform"`` with params ``(low, high)``; ``"normal"`` with ``(mean, std)``;
            ``"truncated_normal"`` with ``(mean, sigma, a, b)``, bounds in units of sigma.
        seed, key: select the stream; `key` is usually the parameter's qualified name.
        global_shape, offset: the logical tensor and where `tensor` sits in it.
        substream: an independent stream under the same (seed, key), for schemes that need
            several draws per element.
        backend: ``"eager"``, ``"compiled"`` (torch.compile; same bits) or ``"auto"`` (compiled
            for tensors of at least 2**25 elements; env WEIGHTINIT_COMPILE=0/1 overrides).

    Returns:
        `tensor`.
    """
    if kind not in _KINDS:
        raise InitError(f"`kind` must be one of {', '.join(_KINDS)}, got {kind!r}.")
    region = Region.of(tensor.shape, global_shape, offset)
    if tensor.numel() == 0:
        return tensor
    chosen = _choose_backend(backend, tensor.numel())
    device = tensor.device
    key_words = key_tensor(seed, key, device)
    sub = torch.tensor(substream, dtype=torch.int32, device=device)
    starts, length = region.runs()
    starts = starts.to(device)

    if kind == "truncated_normal":
        mean, sigma, a, b = (float(p) for p in params)
        mirror = a + b > 0  # sample the interval's mirror image in the lower tail, then negate
        lo, hi = (-b, -a) if mirror else (a, b)
        p_lo, p_hi = _std_normal_cdf(lo), _std_normal_cdf(hi)
        affine = torch.tensor([p_lo, p_hi - p_lo, lo, hi, mean, -sigma if mirror else sigma],
                              dtype=torch.float64, device=device)
    else:
        first, second = (float(p) for p in params[:2])
        shift, scale = (first, second - first) if kind == "uniform" else (first, second)
        affine = torch.tensor([shift, scale], dtype=torch.float64, device=device)

    kernel = _EAGER[kind] if chosen == "eager" else _compiled(kind)
    target = tensor if tensor.is_contiguous() else torch.empty_like(
        tensor, memory_format=torch.contiguous_format)
    flat = target.view(-1)
    with torch.no_grad():
        for position, rows, cols, block_starts in _blocks(starts, length, chunk):
            out = flat[position:position + rows * cols].view(rows, cols)
            kernel(out, block_starts.to(device), key_words, sub, affine)
        if target is not tensor:
            tensor.copy_(target)
    return tensor


def _std_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))
