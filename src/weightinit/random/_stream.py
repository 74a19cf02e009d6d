"""Keyed counter-based streams: the values of any region of a logical tensor.

The value at global flat index f of a logical tensor is a pure function of
(seed, key, f, distribution, substream). Elements come in pairs that share one Philox4x32-10
call (128 bits), laid out in blocks of 2048 consecutive elements: the first 1024 take the first
half of pairs 1024 b .. 1024 b + 1023, the next 1024 the second half of the same pairs. So
element f belongs to pair p = 1024 (f div 2048) + (f mod 1024), half h = (f mod 2048) div 1024,
and pair p is Philox4x32-10 of the counter (p mod 2**32, p div 2**32, substream, 0) under key
words derived from (seed, key). With m53 = 53 bits from two words and m52 = 52 bits:

- uniform: U = m53 * 2**-53 in [0, 1) from words (w0, w1) when h = 0, (w2, w3) when h = 1,
  then low + (high - low) * U;
- normal: Box–Muller in float64, R = sqrt(-2 log(U1)) with U1 = (m53(w0, w1) + 1) * 2**-53 in
  (0, 1], angle 2 pi U2 with U2 = m53(w2, w3) * 2**-53; h = 0 takes R cos, h = 1 takes R sin;
- truncated normal: inverse CDF (AS 241) of P = Phi(a) + (Phi(b) - Phi(a)) U with
  U = (2 m52 + 1) * 2**-53 in (0, 1) from the half's two words (no rejection loop, so no element
  depends on another), mirrored into the lower tail when the interval lies mostly above 0.

The block layout lets a fast kernel compute each Philox call and each logarithm once for two
contiguous outputs; a general kernel computes any single element with the same operations, for
the unaligned edges of a region. All arithmetic is float64, rounded once to the target dtype.
Integer words are the same bits on every device; floats can differ in the last bit between
devices whose log or sqrt differ.

Filling a region (a shard) walks it as R runs of L consecutive global indices, so its values are
exactly that slice of the whole tensor, whatever the split.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .._errors import InitError, InitWarning, check_choice
from ._philox import key_tensor, philox4x32

Kind = Literal["uniform", "normal", "truncated_normal"]
Backend = Literal["auto", "eager", "compiled"]
KernelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]
AlignedFn = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.dtype],
                     tuple[torch.Tensor, torch.Tensor]]
_KINDS = ("uniform", "normal", "truncated_normal")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# Elements per kernel call. Eager kernels keep dozens of temporaries alive, so they take 2**20
# (a working set of ~100 MB); compiled kernels keep none and amortize their launch over 2**22.
CHUNK = 1 << 20
COMPILED_CHUNK = 1 << 22
# A first compile costs 20-50 s on a 2-core machine (then torch's disk cache cuts it to a few);
# eager runs at ~9 Melem/s, so compiling pays off from about 2**28 elements of keyed work.
COMPILE_THRESHOLD = 1 << 28
PAIRS_PER_BLOCK = 1024
BLOCK = 2 * PAIRS_PER_BLOCK  # elements per block: first halves of 1024 pairs, then second halves
_TWO_PI = 2.0 * math.pi


# --- bits -------------------------------------------------------------------------------------
def _m26(word: torch.Tensor, shift: int) -> torch.Tensor:
    return ((word >> shift) & ((1 << (32 - shift)) - 1)).to(torch.float64)


def _m53(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """53 random bits as an exact float64 integer: 26 from `hi`, 27 from `lo`."""
    return _m26(hi, 6) * 134217728.0 + _m26(lo, 5)


def _philox_words(pairs: torch.Tensor, key: torch.Tensor, substream: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    c0 = (pairs & 0xFFFFFFFF).to(torch.int32)
    c1 = (pairs >> 32).to(torch.int32)
    c2 = torch.zeros_like(c0) + substream
    c3 = torch.zeros_like(c0)
    return philox4x32(c0, c1, c2, c3, key[0], key[1])


# --- float64 transforms, in plain torch ops so they compile into the kernels --------------------
# Taylor coefficients of sin(x)/x and cos(x) in x^2: for |x| <= pi/4 the first omitted terms
# are below 5e-17.
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(9))
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(9))


def _poly(coefficients: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    result = torch.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def _sincos_2pi(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of 2 pi u for u in [0, 1): the quadrant comes from u exactly, then Taylor
    polynomials on |x| <= pi/4 (vectorizes under compile, unlike two library calls)."""
    k = torch.floor(u * 4.0 + 0.5)  # nearest quarter turn, 0..4
    x = (u - k * 0.25) * _TWO_PI  # u - k/4 is exact
    x2 = x * x
    sin, cos = x * _poly(_SIN, x2), _poly(_COS, x2)
    quadrant = k - 4.0 * torch.floor(k * 0.25)
    cos_out = torch.where(quadrant == 0, cos, torch.where(
        quadrant == 1, -sin, torch.where(quadrant == 2, -cos, sin)))
    sin_out = torch.where(quadrant == 0, sin, torch.where(
        quadrant == 1, cos, torch.where(quadrant == 2, -sin, -cos)))
    return cos_out, sin_out


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
    return _poly(numerator, x) / _poly(denominator, x)


FAR_TAIL = 6.6  # |z| beyond which AS 241 uses its far-tail branch (r = sqrt(-log p) > 5)


def ndtri(p: torch.Tensor, *, far: bool = True) -> torch.Tensor:
    """The standard normal quantile Phi^-1(p) for float64 p in (0, 1), in plain torch ops (so it
    compiles into the fill kernel; torch.special.ndtri would run as a separate pass).

    `far=False` drops the branch for |z| > 6.6, for callers whose p never reaches it; where
    both apply they give the same bits."""
    q = p - 0.5
    central = q * _rational(_AS241_CENTRAL, 0.180625 - q * q)
    r = torch.sqrt(-torch.log(torch.minimum(p, 1.0 - p)))
    tail = _rational(_AS241_NEAR, r - 1.6)
    if far:
        tail = torch.where(r <= 5.0, tail, _rational(_AS241_FAR, r - 5.0))
    tail = torch.where(q < 0.0, -tail, tail)
    return torch.where(q.abs() <= 0.425, central, tail)


def _normal_pair(w: tuple[torch.Tensor, ...], affine: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor]:
    """affine = (mean, std)."""
    u1 = (_m53(w[0], w[1]) + 1.0) * 2.0**-53
    u2 = _m53(w[2], w[3]) * 2.0**-53
    radius = torch.sqrt(-2.0 * torch.log(u1))
    cos, sin = _sincos_2pi(u2)
    return affine[0] + affine[1] * (radius * cos), affine[0] + affine[1] * (radius * sin)


def _uniform_half(hi: torch.Tensor, lo: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """affine = (low, high - low)."""
    return affine[0] + affine[1] * (_m53(hi, lo) * 2.0**-53)


def _truncated_half(hi: torch.Tensor, lo: torch.Tensor, affine: torch.Tensor, *,
                    far: bool = True) -> torch.Tensor:
    """affine = (Phi(lo), Phi(hi) - Phi(lo), lo, hi, mean, scale): mean + scale * Phi^-1(P)."""
    m52 = _m26(hi, 6) * 67108864.0 + _m26(lo, 6)
    u = (2.0 * m52 + 1.0) * 2.0**-53  # in the open interval (0, 1)
    z = torch.clamp(ndtri(affine[0] + affine[1] * u, far=far), affine[2], affine[3])
    return affine[4] + affine[5] * z


def _truncated_near_half(hi: torch.Tensor, lo: torch.Tensor, affine: torch.Tensor) -> (
        torch.Tensor):
    return _truncated_half(hi, lo, affine, far=False)


# "truncated_near" is the truncated normal for intervals inside [-6.6, 6.6] (the usual +-2):
# it skips AS 241's far-tail branch, which those intervals never reach.
_HALVES = {"uniform": _uniform_half, "truncated_normal": _truncated_half,
           "truncated_near": _truncated_near_half}


def _pair_values(kind: str, w: tuple[torch.Tensor, ...], affine: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor]:
    if kind == "normal":
        return _normal_pair(w, affine)
    half = _HALVES[kind]
    return half(w[0], w[1], affine), half(w[2], w[3], affine)


# --- kernels ------------------------------------------------------------------------------------
def _aligned_kernel(kind: str) -> AlignedFn:
    """Whole blocks from pair `start` (shape (1, 1)): the (blocks, 1024) first and second halves,
    in `dtype`. Returning them (rather than writing into strided views of the output) lets
    inductor emit one vectorized loop; the caller copies them into place."""
    def kernel(blocks: int, start: torch.Tensor, key: torch.Tensor, substream: torch.Tensor,
               affine: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        count = blocks * PAIRS_PER_BLOCK
        pairs = (start.view(1) + torch.arange(count, dtype=torch.int64, device=start.device))
        words = _philox_words(pairs.view(blocks, PAIRS_PER_BLOCK), key, substream)
        first, second = _pair_values(kind, words, affine)
        return first.to(dtype), second.to(dtype)
    return kernel


def _general_kernel(kind: str) -> KernelFn:
    """Any elements: `out` is (rows, L); `starts` (rows, 1) the global index of each row."""
    def kernel(out: torch.Tensor, starts: torch.Tensor, key: torch.Tensor,
               substream: torch.Tensor, affine: torch.Tensor) -> None:
        index = starts + torch.arange(out.shape[-1], dtype=torch.int64, device=out.device)
        pairs = ((index >> 11) << 10) | (index & (PAIRS_PER_BLOCK - 1))
        second = ((index >> 10) & 1) == 1
        w = _philox_words(pairs, key, substream)
        if kind == "normal":
            first_value, second_value = _normal_pair(w, affine)
            out.copy_(torch.where(second, second_value, first_value))
        else:
            hi = torch.where(second, w[2], w[0])
            lo = torch.where(second, w[3], w[1])
            out.copy_(_HALVES[kind](hi, lo, affine))
    return kernel


_KERNEL_KINDS = (*_KINDS, "truncated_near")
_EAGER: dict[tuple[str, str], Callable[..., Any]] = {
    **{(kind, "aligned"): _aligned_kernel(kind) for kind in _KERNEL_KINDS},
    **{(kind, "general"): _general_kernel(kind) for kind in _KERNEL_KINDS},
}
_COMPILED: dict[tuple[str, str], Callable[..., Any]] = {}


def _kernel(kind: str, layout: str, compiled: bool) -> Callable[..., Any]:
    """The eager kernel, or its torch.compile'd twin (same bits), built on first use: tens of
    seconds on a 2-core machine, then cached by torch on disk."""
    if not compiled:
        return _EAGER[(kind, layout)]
    fn = _COMPILED.get((kind, layout))
    if fn is None:
        fn = _with_eager_fallback(torch.compile(_EAGER[(kind, layout)], dynamic=True,
                                                fullgraph=True), kind, layout)
        _COMPILED[(kind, layout)] = fn
    return fn


def _with_eager_fallback(compiled: Callable[..., Any], kind: str, layout: str) -> Callable[
        ..., Any]:
    """Run the compiled kernel; if compiling fails (no C++ compiler, an unsupported device),
    use the eager kernel from then on. Both give the same bits, so a fill that switches
    midway is still exact."""
    eager = _EAGER[(kind, layout)]
    state = {"failed": False}

    def run(*args: Any) -> Any:
        if not state["failed"]:
            try:
                return compiled(*args)
            except Exception as exc:  # torch raises many types from inductor and its compiler
                state["failed"] = True
                warnings.warn(
                    f"torch.compile of the keyed {kind} kernel failed ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); using the eager kernel (same values, slower).",
                    InitWarning, stacklevel=3,
                )
        return eager(*args)
    return run


def check_seed(seed: object) -> int:
    """`seed` as an int in [0, 2**63), or InitError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InitError(f"`seed` must be an int in [0, 2**63), got {seed!r}.")
    return seed


WARM_MINIMUM = 1 << 14
"""Under "auto", tensors of at least this many elements use a kernel this process has already
compiled (a compiled call costs microseconds; the eager kernel runs at ~9 Melem/s)."""


_WARM: set[tuple[str, torch.dtype, str]] = set()  # (kernel kind, dtype, device type) compiled


def choose_backend(backend: Backend, numel: int, kind: str | None = None,
                   dtype: torch.dtype | None = None, device: str = "cpu") -> Literal[
        "eager", "compiled"]:
    """The concrete backend for `numel` elements of `kind` (a kernel kind) in `dtype`."""
    check_choice("backend", backend, ("auto", "eager", "compiled"))
    if backend != "auto":
        return backend
    setting = os.environ.get("WEIGHTINIT_COMPILE", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return "eager"
    if setting in ("1", "true", "yes", "on"):
        return "compiled"
    if numel >= COMPILE_THRESHOLD:
        return "compiled"
    warm = (kind, dtype, device) in _WARM
    return "compiled" if warm and numel >= WARM_MINIMUM else "eager"


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
            if offset is not None and any(o != 0 for o in _int_tuple("offset", offset)):
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


@dataclass(frozen=True)
class _Piece:
    """A part of the flat local tensor and the kernel layout that fills it."""

    position: int  # flat offset in the local tensor
    rows: int
    cols: int
    starts: torch.Tensor  # (rows, 1) global index of each row's first element
    aligned: bool  # whole blocks: one row of cols = k * BLOCK elements starting on a block


def _pieces(starts: torch.Tensor, length: int, chunk: int) -> Iterator[_Piece]:
    """Cover R runs of `length` consecutive global indices with pieces of about `chunk`
    elements: whole aligned blocks where a run holds them, general rows elsewhere."""
    chunk = max(chunk, 1)
    if length < 2 * BLOCK:  # short runs (e.g. column shards): batch rows, general kernel
        rows = max(1, chunk // max(length, 1))
        for r in range(0, starts.numel(), rows):
            block = starts[r:r + rows, None]
            yield _Piece(r * length, block.shape[0], length, block, aligned=False)
        return
    per_piece = max(BLOCK, chunk // BLOCK * BLOCK)
    for r, start in enumerate(starts.tolist()):
        base, end = r * length, start + length
        body_start = min(-(-start // BLOCK) * BLOCK, end)
        body_end = max(end // BLOCK * BLOCK, body_start)
        edges = [(start, body_start, False)]
        edges += [(j, min(j + per_piece, body_end), True)
                  for j in range(body_start, body_end, per_piece)]
        edges.append((body_end, end, False))
        for lo, hi, aligned in edges:
            if hi > lo:
                yield _Piece(base + lo - start, 1, hi - lo,
                             torch.tensor([[lo]], dtype=torch.int64), aligned)


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
            ``"truncated_normal"`` with ``(mean, sigma, a, b)``, bounds in units of sigma.
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
    check_choice("kind", kind, _KINDS)
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
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)
                              or chunk < 1):
        raise InitError(f"`chunk` must be a positive int, got {chunk!r}.")
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
        for piece in _pieces(starts, length, chunk):
            out = flat[piece.position:piece.position + piece.rows * piece.cols]
            if piece.aligned:
                out = out.view(-1, 2, PAIRS_PER_BLOCK)
                first_pair = (int(piece.starts) // BLOCK) * PAIRS_PER_BLOCK
                first, second = _kernel(kernel_kind, "aligned", compiled)(
                    out.shape[0], torch.tensor([[first_pair]], device=device), key_words, sub,
                    affine, tensor.dtype)
                out[:, 0, :].copy_(first)
                out[:, 1, :].copy_(second)
                if compiled:
                    _WARM.add((kernel_kind, tensor.dtype, device.type))
            else:
                # Ragged edges are small: compile the general kernel only for big regions.
                big = compiled and piece.rows * piece.cols >= chunk // 2
                kernel = _kernel(kernel_kind, "general", big)
                kernel(out.view(piece.rows, piece.cols), piece.starts.to(device), key_words,
                       sub, affine)
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
        form = "(mean, sigma, a, b)" if count == 4 else (
            "(low, high)" if kind == "uniform" else "(mean, std)")
        raise InitError(
            f"`params` for {kind!r} must be {count} finite numbers {form}, got {params!r}."
        )
    if kind == "uniform" and not (values[0] < values[1] and math.isfinite(values[1] - values[0])):
        raise InitError(f"`params` for 'uniform' need low < high (finite width), got {params!r}.")
    if kind != "uniform" and values[1] < 0:
        raise InitError(f"`params` for {kind!r} need a std/sigma >= 0, got {params!r}.")
    if kind == "truncated_normal":
        _, _, a, b = values
        if not a < b:
            raise InitError(f"`params` for 'truncated_normal' need a < b, got {params!r}.")
        if a * b > 0 and min(abs(a), abs(b)) > 37:
            raise InitError(
                f"`params` for 'truncated_normal': [a, b] = [{a}, {b}] lies beyond 37 sigma, "
                "where the normal CDF underflows float64."
            )


def kernel_params(kind: str, params: Sequence[float]) -> list[float]:
    """The kernels' affine parameters for a distribution's params (see the kernels' docs)."""
    values = [float(p) for p in params]
    if kind == "uniform":
        low, high = values[:2]
        return [low, high - low]
    if kind == "normal":
        return values[:2]
    mean, sigma, a, b = values[:4]
    mirror = a + b > 0  # sample the interval's mirror image in the lower tail, then negate
    lo, hi = (-b, -a) if mirror else (a, b)
    p_lo, p_hi = _std_normal_cdf(lo), _std_normal_cdf(hi)
    return [p_lo, p_hi - p_lo, lo, hi, mean, -sigma if mirror else sigma]


def _std_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))
