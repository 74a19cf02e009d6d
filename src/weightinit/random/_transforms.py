"""From Philox words to values (stream v2): the float32 transforms and their constants, in plain
torch ops. `_numba` computes the same operations in the same order, so both give the same bits.

Every transform uses only +, -, *, /, sqrt, comparisons, integer-to-float conversions and
float32 bit casts: operations IEEE 754 rounds exactly, so any correct implementation gets the
same bits. Logarithm, sine and cosine are polynomials written out here, not library calls (whose
last bit differs between libraries). All constants are float32 values. docs/stream.md is the
specification; the tests check it with known-answer vectors.

A *standard variate* comes first, in float32:

- uniform: u = float(w >> 8) * 2**-24, in [0, 1);
- normal (Box–Muller on a pair of words (a, b)): u1 = float(a >> 1) * 2**-31 + 2**-32 in
  (0, 1], radius sqrt(-2 log u1), angle 2 pi (b >> 8) / 2**24; the first element of the pair
  takes radius * cos, the second radius * sin;
- truncated normal (inverse CDF, no rejection): u = float(2 (w >> 9) + 1) * 2**-24 in (0, 1);
  P = Phi(lo) + (Phi(hi) - Phi(lo)) u and Q = Phi(-hi) + (Phi(hi) - Phi(lo)) (1 - u), the same
  point seen from each end, so that both tails keep float32's relative precision; then
  z = Phi^-1 (AS 241, single precision), clamped to [lo, hi].

Then the affine map in float64 (low + width u, mean + std z, mean + sigma clamp(z, lo, hi)),
rounded once to float64's or float32's precision, and float32 rounded again to float16 or
bfloat16 targets.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..theory import truncated_std_factor


def _f32(x: float) -> float:
    """`x` rounded to the nearest float32, as a Python float."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _f32s(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(_f32(v) for v in values)


# Natural log on [sqrt(1/2), sqrt(2)) as f + f^3 P(f) - f^2 / 2 with f = m - 1 (Cephes' logf
# polynomial), plus e ln 2 in two parts (ln 2 = LN2_HI + LN2_LO, LN2_HI exact in 9 bits).
LOG_POLY = _f32s((7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                  1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                  3.3333331174e-1))
LN2_HI = _f32(0.693359375)
LN2_LO = _f32(-2.12194440e-4)
SQRT2 = _f32(1.41421356)
# sin x = x + x^3 S(x^2), cos x = 1 - x^2/2 + x^4 C(x^2) on |x| <= pi/4 (Cephes' sinf, cosf).
SIN_POLY = _f32s((-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1))
COS_POLY = _f32s((2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2))
ANGLE = _f32(2.0 * math.pi / 2**24)  # radians per step of the 24-bit angle
# Wichura, AS 241 (1988), PPND7: Phi^-1 to about 1e-7 relative, in three regions of p.
NDTRI_CENTRAL = (_f32s((3.3871327179e0, 5.0434271938e1, 1.5929113202e2, 5.9109374720e1)),
                 _f32s((1.0, 1.7895169469e1, 7.8757757664e1, 6.7187563600e1)))
NDTRI_NEAR = (_f32s((1.4234372777e0, 2.7568153900e0, 1.3067284816e0, 1.7023821103e-1)),
              _f32s((1.0, 7.3700164250e-1, 1.2021132975e-1)))
NDTRI_FAR = (_f32s((6.6579051150e0, 3.0812263860e0, 4.2868294337e-1, 1.7337203997e-2)),
             _f32s((1.0, 2.4197894225e-1, 1.2258202635e-2)))
SPLIT_CENTRAL = _f32(0.425)
CENTRAL_SHIFT = _f32(0.180625)
NEAR_SHIFT = _f32(1.6)
FAR_SHIFT = _f32(5.0)
TINY = 2.0**-126  # smallest normal float32: P and Q never go below it
FAR_TAIL = 6.6  # |z| beyond which PPND7 uses its far-tail branch (r = sqrt(-log p) > 5)
DEEPEST = 11.0  # a truncated interval must reach within 11 sigma of 0 (float32's CDF range)
NARROWEST = 2.0**-12  # and be at least this wide, relative to max(1, |a|, |b|)


def truncated_interval_problem(a: float, b: float) -> str | None:
    """Why the stream cannot sample a standard normal truncated to [a, b], or None.

    Beyond 11 sigma the float32 CDF (2**-24 of the interval's mass must stay a normal float32)
    cannot hold the interval; narrower than 2**-12 max(1, |a|, |b|), float32 variates take too
    few distinct values in it (fewer than about 2**11) to be a truncated normal."""
    if not a < b:
        return "needs a < b"
    if a > DEEPEST or b < -DEEPEST:
        return (f"lies beyond {DEEPEST:g} sigma of 0, where the stream's float32 normal CDF "
                "cannot hold it; shift the mean instead, keeping [a, b] within 11 sigma of it")
    if b - a < NARROWEST * max(1.0, abs(a), abs(b)):
        return ("is too narrow for float32 variates (it must be at least 2**-12 x "
                "max(1, |a|, |b|) wide); widen it, or use Constant for a fixed value")
    return None


# --- kernel parameters --------------------------------------------------------------------------

UNIFORM, NORMAL, TRUNCATED, TRUNCATED_FAR = 0, 1, 2, 3


@dataclass(frozen=True)
class Params:
    """What the kernels need for one distribution: `code` (UNIFORM, ...), the float32 inputs of
    the standard variate (`standard`: Phi(lo), Phi(-hi), Phi(hi) - Phi(lo) for the truncated
    normal, empty otherwise) and the float64 affine map (`affine`)."""

    code: int
    standard: tuple[float, ...]
    affine: tuple[float, ...]


def kernel_params(kind: str, params: Sequence[float]) -> Params:
    """The kernels' parameters for a distribution's `params`:

    - ``"uniform"`` (low, high): affine (low, high - low);
    - ``"normal"`` (mean, std): affine (mean, std);
    - ``"truncated_normal"`` (mean, std, a, b), `std` the std of the result and [a, b] in units
      of the underlying normal's sigma = std / c(a, b) (`truncated_std_factor`), as in
      `wi.TruncatedNormal`: standard (Phi(a), Phi(-b), Phi(b) - Phi(a)), affine
      (a, b, mean, sigma); the far-tail code when [a, b] reaches beyond 6.6.
    """
    values = [float(p) for p in params]
    if kind == "uniform":
        low, high = values[:2]
        return Params(UNIFORM, (), (low, high - low))
    if kind == "normal":
        return Params(NORMAL, (), (values[0], values[1]))
    mean, std, a, b = values[:4]
    sigma = std / truncated_std_factor(a, b)
    code = TRUNCATED_FAR if a < -FAR_TAIL or b > FAR_TAIL else TRUNCATED
    return Params(code, _f32s((normal_cdf(a), normal_cdf(-b), normal_mass(a, b))),
                  (a, b, mean, sigma))


NORMAL_REACH = 6.67
"""No standard normal variate of the stream exceeds this in magnitude: the Box–Muller radius
is largest at the smallest u1, 2**-32, where it is sqrt(64 ln 2) = 6.6604 (rounded up)."""


def largest_magnitude(kind: str, params: Sequence[float]) -> float:
    """The largest |value| the distribution (`kind`, checked `params`, as for
    `kernel_params`) can take: max(|low|, |high|) for ``"uniform"``, |mean| + NORMAL_REACH std
    for ``"normal"`` (the keyed stream's reach; torch's generator reaches further, rarely),
    the larger truncation bound for ``"truncated_normal"``; inf where float64 overflows."""
    values = [float(p) for p in params]
    if kind == "uniform":
        return max(abs(values[0]), abs(values[1]))
    if kind == "normal":
        return abs(values[0]) + NORMAL_REACH * values[1]
    mean, std, a, b = values[:4]
    sigma = std / truncated_std_factor(a, b)
    return max(abs(mean + sigma * a), abs(mean + sigma * b))


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_mass(a: float, b: float) -> float:
    """Phi(b) - Phi(a), without cancellation in either tail."""
    if a >= 0:
        return normal_cdf(-a) - normal_cdf(-b)
    if b <= 0:
        return normal_cdf(b) - normal_cdf(a)
    return 1.0 - normal_cdf(a) - normal_cdf(-b)


# --- the transforms in torch ops ----------------------------------------------------------------

def _poly(coefficients: Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """c[0] x^(n-1) + ... + c[n-1] by Horner's rule (the highest power first)."""
    result = x * coefficients[0] + coefficients[1]
    for c in coefficients[2:]:
        result = result * x + c
    return result


def _poly_rising(coefficients: Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """c[0] + c[1] x + ... by Horner's rule (AS 241's order: the constant term first)."""
    result = x * coefficients[-1] + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        result = result * x + c
    return result


def log32(x: torch.Tensor) -> torch.Tensor:
    """Natural log of positive normal float32 values."""
    bits = x.view(torch.int32)
    exponent = (bits >> 23) - 127
    mantissa = ((bits & 0x7FFFFF) | 0x3F800000).view(torch.float32)  # in [1, 2)
    big = mantissa > SQRT2
    mantissa = torch.where(big, mantissa * 0.5, mantissa)
    e = torch.where(big, exponent + 1, exponent).to(torch.float32)
    f = mantissa - 1.0
    z = f * f
    y = _poly(LOG_POLY, f) * f * z
    y = y + e * LN2_LO
    y = y - z * 0.5
    return (f + y) + e * LN2_HI


def _to_float(word: torch.Tensor) -> torch.Tensor:
    """A non-negative int32 as float32 (one rounding)."""
    return word.to(torch.float32)


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """The correctly rounded float32 square root. torch's CPU sqrt is not (measured: 16% of
    float32 and 1% of float64 results differ from IEEE's in the last bit), but the float32
    rounding of a float64 root of a float32 value is, even when that root is off by an ulp."""
    return torch.sqrt(x.double()).to(torch.float32)


def uniform_variate(w: torch.Tensor) -> torch.Tensor:
    return _to_float((w >> 8) & 0xFFFFFF) * 2.0**-24


def normal_variates(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box–Muller on word pairs: (radius cos, radius sin)."""
    u1 = _to_float((a >> 1) & 0x7FFFFFFF) * 2.0**-31 + 2.0**-32
    radius = _sqrt(log32(u1) * -2.0)
    m = (b >> 8) & 0xFFFFFF
    quadrant = (m + (1 << 21)) >> 22  # nearest quarter turn, 0..4
    x = _to_float(m - (quadrant << 22)) * ANGLE  # |x| <= pi / 4
    z = x * x
    sin = _poly(SIN_POLY, z) * z * x + x
    cos = _poly(COS_POLY, z) * z * z - z * 0.5 + 1.0
    odd = (quadrant & 1) == 1
    cos_sign = (1 - ((quadrant + 1) & 2)).to(torch.float32)
    sin_sign = (1 - (quadrant & 2)).to(torch.float32)
    return (radius * torch.where(odd, sin, cos) * cos_sign,
            radius * torch.where(odd, cos, sin) * sin_sign)


def truncated_variate(w: torch.Tensor, standard: Sequence[float], far: bool) -> torch.Tensor:
    """Phi^-1 of a uniform point of [Phi(lo), Phi(hi)] (unclamped)."""
    p_lo, q_hi, width = standard
    m = _to_float(((w >> 9) & 0x7FFFFF) * 2 + 1) * 2.0**-24  # in (0, 1)
    p = m * width + p_lo
    q = (1.0 - m) * width + q_hi
    return ndtri32(p, q, far)


def ndtri32(p: torch.Tensor, q: torch.Tensor, far: bool) -> torch.Tensor:
    """Phi^-1(p) where q = 1 - p is given separately (for its precision near 0)."""
    t = p - 0.5
    r = CENTRAL_SHIFT - t * t
    lower = t < 0.0
    tail_p = torch.clamp(torch.where(lower, p, q), min=TINY)
    s = _sqrt(-log32(tail_p))
    near_s = s - NEAR_SHIFT
    top = _poly_rising(NDTRI_NEAR[0], near_s)
    bottom = _poly_rising(NDTRI_NEAR[1], near_s)
    if far:
        far_s = s - FAR_SHIFT
        beyond = s > FAR_SHIFT
        top = torch.where(beyond, _poly_rising(NDTRI_FAR[0], far_s), top)
        bottom = torch.where(beyond, _poly_rising(NDTRI_FAR[1], far_s), bottom)
    top = torch.where(lower, -top, top)
    # One division: (t A(r)) / B(r) in the centre, +-C(s) / D(s) in the tails.
    central = t.abs() <= SPLIT_CENTRAL
    top = torch.where(central, t * _poly_rising(NDTRI_CENTRAL[0], r), top)
    bottom = torch.where(central, _poly_rising(NDTRI_CENTRAL[1], r), bottom)
    return top / bottom


def standard_variates(code: int, words: Sequence[torch.Tensor], which: torch.Tensor,
                      standard: Sequence[float]) -> torch.Tensor:
    """Each element's standard variate, from its call's four `words` (int32) and its word
    number `which` (0-3; a normal element's pair is words (0, 1) or (2, 3))."""
    if code == NORMAL:
        c01, s01 = normal_variates(words[0], words[1])
        c23, s23 = normal_variates(words[2], words[3])
        first = torch.where(which >= 2, c23, c01)
        second = torch.where(which >= 2, s23, s01)
        return torch.where((which & 1) == 1, second, first)
    word = torch.where(which == 0, words[0], torch.where(
        which == 1, words[1], torch.where(which == 2, words[2], words[3])))
    if code == UNIFORM:
        return uniform_variate(word)
    return truncated_variate(word, standard, code == TRUNCATED_FAR)


def affine_(values: torch.Tensor, code: int, affine: Sequence[float]) -> torch.Tensor:
    """The affine map of standard variates, in place, in `values`' precision (float64)."""
    if code in (UNIFORM, NORMAL):
        shift, scale = affine
        return values.mul_(scale).add_(shift)
    lo, hi, mean, sigma = affine
    return values.clamp_(lo, hi).mul_(sigma).add_(mean)


def truncated_inverse_cdf_params(params: Sequence[float]) -> tuple[float, ...]:
    """For torch's generator path (float64): (Phi(lo), Phi(hi) - Phi(lo), lo, hi, mean,
    scale) with [lo, hi] = [a, b], or [-b, -a] and scale = -sigma when the interval lies mostly
    above 0 (sampled as its mirror image in the lower tail, then negated)."""
    mean, std, a, b = (float(p) for p in params)
    sigma = std / truncated_std_factor(a, b)
    mirror = a + b > 0
    lo, hi = (-b, -a) if mirror else (a, b)
    return normal_cdf(lo), normal_mass(lo, hi), lo, hi, mean, -sigma if mirror else sigma
