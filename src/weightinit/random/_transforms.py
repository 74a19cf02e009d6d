"""From Philox words to floats: the stream's float64 transforms, in plain torch ops so that they
run eagerly and compile into the fill kernels alike.

With m53 = 53 bits from two words and m52 = 52 bits (`_kernels` says which words each element
takes):

- uniform: U = m53 * 2**-53 in [0, 1), then low + (high - low) * U;
- normal: Box–Muller, R = sqrt(-2 log(U1)) with U1 = (m53(w0, w1) + 1) * 2**-53 in (0, 1],
  angle 2 pi U2 with U2 = m53(w2, w3) * 2**-53; the first half of a pair takes R cos, the
  second R sin;
- truncated normal: inverse CDF (AS 241) of P = Phi(a) + (Phi(b) - Phi(a)) U with
  U = (2 m52 + 1) * 2**-53 in (0, 1) (no rejection loop, so no element depends on another),
  mirrored into the lower tail when the interval lies mostly above 0.

All arithmetic is float64; the caller rounds once to the target dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..theory import truncated_std_factor

_TWO_PI = 2.0 * math.pi


def _m26(word: torch.Tensor, shift: int) -> torch.Tensor:
    return ((word >> shift) & ((1 << (32 - shift)) - 1)).to(torch.float64)


def _m53(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """53 random bits as an exact float64 integer: 26 from `hi`, 27 from `lo`."""
    return _m26(hi, 6) * 134217728.0 + _m26(lo, 5)


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


def normal_pair(w: tuple[torch.Tensor, ...], affine: torch.Tensor) -> tuple[
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
HALVES = {"uniform": _uniform_half, "truncated_normal": _truncated_half,
          "truncated_near": _truncated_near_half}


def pair_values(kind: str, w: tuple[torch.Tensor, ...], affine: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor]:
    if kind == "normal":
        return normal_pair(w, affine)
    half = HALVES[kind]
    return half(w[0], w[1], affine), half(w[2], w[3], affine)


def kernel_params(kind: str, params: Sequence[float]) -> list[float]:
    """The transforms' affine parameters for a distribution's `params`:

    - ``"uniform"`` (low, high) -> (low, high - low);
    - ``"normal"`` (mean, std) -> (mean, std);
    - ``"truncated_normal"`` (mean, std, a, b), `std` the std of the result and [a, b] in
      units of the underlying normal's sigma = std / c(a, b) (`truncated_std_factor`), as in
      `wi.TruncatedNormal` -> (Phi(lo), Phi(hi) - Phi(lo), lo, hi, mean, scale), with
      [lo, hi] = [a, b], or [-b, -a] and scale = -sigma when the interval lies mostly above 0
      (sampled as its mirror image in the lower tail, then negated).
    """
    values = [float(p) for p in params]
    if kind == "uniform":
        low, high = values[:2]
        return [low, high - low]
    if kind == "normal":
        return values[:2]
    mean, std, a, b = values[:4]
    sigma = std / truncated_std_factor(a, b)
    mirror = a + b > 0
    lo, hi = (-b, -a) if mirror else (a, b)
    p_lo, p_hi = _std_normal_cdf(lo), _std_normal_cdf(hi)
    return [p_lo, p_hi - p_lo, lo, hi, mean, -sigma if mirror else sigma]


def _std_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))
