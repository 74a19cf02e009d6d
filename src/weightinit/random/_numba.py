"""The CPU fast path: stream v2 compiled by numba (LLVM ships in its wheel, so no C++ compiler is
needed), parallel over blocks, writing straight into the tensor's memory.

The same operations in the same order as `_transforms`' torch ops, so the same bits: numba
never contracts a * b + c into a fused multiply-add without fastmath, and every float constant
is a float32. Compiled kernels are cached on disk (`cache=True`: beside this file, or in a
per-user cache directory when site-packages is read-only; NUMBA_CACHE_DIR overrides).

numba keys that cache on this file alone: the constants come from `_transforms` and `_philox`,
so a change there alone would reuse a stale kernel. Installing a release rewrites every file,
which invalidates it; in a development checkout, touch this file too (the tests compare this
kernel with the torch ops, which read the constants afresh, and would catch it).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._philox import CALLS_PER_BLOCK, ROUNDS
from ._transforms import (
    ANGLE,
    CENTRAL_SHIFT,
    COS_POLY,
    FAR_SHIFT,
    LN2_HI,
    LN2_LO,
    LOG_POLY,
    NDTRI_CENTRAL,
    NDTRI_FAR,
    NDTRI_NEAR,
    NEAR_SHIFT,
    NORMAL,
    SIN_POLY,
    SPLIT_CENTRAL,
    SQRT2,
    TINY,
    TRUNCATED_FAR,
    UNIFORM,
)

F = np.float32
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_MASK, _32 = np.uint64(0xFFFFFFFF), np.uint64(32)
_K = CALLS_PER_BLOCK
_BLOCK = 4 * CALLS_PER_BLOCK
_L = tuple(F(c) for c in LOG_POLY)
_S = tuple(F(c) for c in SIN_POLY)
_C = tuple(F(c) for c in COS_POLY)
_NC = tuple(F(c) for c in NDTRI_CENTRAL[0]), tuple(F(c) for c in NDTRI_CENTRAL[1])
_NN = tuple(F(c) for c in NDTRI_NEAR[0]), tuple(F(c) for c in NDTRI_NEAR[1])
_NF = tuple(F(c) for c in NDTRI_FAR[0]), tuple(F(c) for c in NDTRI_FAR[1])
_LN2_HI, _LN2_LO, _SQRT2, _ANGLE = F(LN2_HI), F(LN2_LO), F(SQRT2), F(ANGLE)
_SPLIT, _CSHIFT, _NSHIFT, _FSHIFT = F(SPLIT_CENTRAL), F(CENTRAL_SHIFT), F(NEAR_SHIFT), F(
    FAR_SHIFT)
_TINY = F(TINY)
_HALF, _ONE, _ZERO, _MINUS_TWO = F(0.5), F(1.0), F(0.0), F(-2.0)
_P24, _P31, _P32 = F(2.0**-24), F(2.0**-31), F(2.0**-32)


@njit(inline="always")
def _philox(c0, c1, c2, c3, k0, k1):  # type: ignore[no-untyped-def]
    """Philox4x32-10 on uint64 values below 2**32 (the products are exact in 64 bits)."""
    for _ in range(ROUNDS):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _32) ^ c3 ^ k1, p0 & _MASK
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(inline="always")
def _log32(x):  # type: ignore[no-untyped-def]
    bits = F(x).view(np.int32)
    exponent = (bits >> 23) - 127
    mantissa = np.int32((bits & 0x7FFFFF) | 0x3F800000).view(np.float32)
    big = mantissa > _SQRT2
    mantissa = mantissa * _HALF if big else mantissa
    e = F(np.int32(exponent + 1 if big else exponent))
    f = mantissa - _ONE
    z = f * f
    p = ((((((((f * _L[0] + _L[1]) * f + _L[2]) * f + _L[3]) * f + _L[4]) * f + _L[5]) * f
           + _L[6]) * f + _L[7]) * f + _L[8])
    y = p * f * z
    y = y + e * _LN2_LO
    y = y - z * _HALF
    return (f + y) + e * _LN2_HI


@njit(inline="always")
def _rising4(c, x):  # type: ignore[no-untyped-def]
    """c[0] + c[1] x + c[2] x^2 + c[3] x^3 by Horner's rule."""
    return ((x * c[3] + c[2]) * x + c[1]) * x + c[0]


@njit(inline="always")
def _rising3(c, x):  # type: ignore[no-untyped-def]
    return (x * c[2] + c[1]) * x + c[0]


@njit(inline="always")
def _normal_pair(a, b):  # type: ignore[no-untyped-def]
    u1 = F(np.int32(a >> np.uint64(1))) * _P31 + _P32
    radius = np.sqrt(_log32(u1) * _MINUS_TWO)
    m = np.int32(b >> np.uint64(8))
    quadrant = np.int32((m + (1 << 21)) >> 22)
    x = F(np.int32(m - (quadrant << 22))) * _ANGLE
    z = x * x
    sin = ((z * _S[0] + _S[1]) * z + _S[2]) * z * x + x
    cos = ((z * _C[0] + _C[1]) * z + _C[2]) * z * z - z * _HALF + _ONE
    odd = (quadrant & 1) == 1
    cos_sign = F(np.int32(1 - ((quadrant + 1) & 2)))
    sin_sign = F(np.int32(1 - (quadrant & 2)))
    first = sin if odd else cos
    second = cos if odd else sin
    return radius * first * cos_sign, radius * second * sin_sign


@njit(inline="always")
def _truncated(w, p_lo, q_hi, width, far):  # type: ignore[no-untyped-def]
    m = F(np.int32((w >> np.uint64(9)) * np.uint64(2) + np.uint64(1))) * _P24
    p = m * width + p_lo
    q = (_ONE - m) * width + q_hi
    t = p - _HALF
    r = _CSHIFT - t * t
    central = abs(t) <= _SPLIT
    lower = t < _ZERO
    tail_p = p if lower else q
    tail_p = tail_p if tail_p > _TINY else _TINY
    s = np.sqrt(-_log32(tail_p))
    if far and s > _FSHIFT:
        far_s = s - _FSHIFT
        top, bottom = _rising4(_NF[0], far_s), _rising3(_NF[1], far_s)
    else:
        near_s = s - _NSHIFT
        top, bottom = _rising4(_NN[0], near_s), _rising3(_NN[1], near_s)
    top = -top if lower else top
    # One division: (t A(r)) / B(r) in the centre, +-C(s) / D(s) in the tails.
    if central:
        top, bottom = t * _rising4(_NC[0], r), _rising4(_NC[1], r)
    return top / bottom


@njit(parallel=True, cache=True, nogil=True)
def fill(out, starts, length, k0, k1, substream, code, standard, affine):  # type: ignore[no-untyped-def]
    """Fill float32 `out` (R * length, contiguous) with runs r of `length` elements from global
    index starts[r]: standard variates of `code`, then the affine map `affine` (float64)
    rounded to float32."""
    runs = starts.shape[0]
    per_run = (length + _BLOCK - 1) // _BLOCK + 1  # blocks one run can touch
    sub = np.uint64(substream)
    p_lo, q_hi, width = standard[0], standard[1], standard[2]
    zero = np.uint64(0)
    for task in prange(runs * per_run):
        run = task // per_run
        start = starts[run]
        block = start // _BLOCK + task % per_run
        lo = max(start, block * _BLOCK)
        hi = min(start + length, (block + 1) * _BLOCK)
        if lo >= hi:
            continue
        p0, p1 = lo - block * _BLOCK, hi - block * _BLOCK  # positions in the block
        c_lo, c_hi = 0, _K  # the calls these positions read
        if p1 - p0 < _K and p0 // _K == (p1 - 1) // _K:
            c_lo, c_hi = p0 % _K, (p1 - 1) % _K + 1
        # Zero-based loops over views: numba then knows no index is negative (a negative one
        # would wrap around), and LLVM vectorizes every loop.
        calls = c_hi - c_lo
        first_call = block * _K + c_lo
        words = np.empty((4, _K), np.uint32)
        w0, w1, w2, w3 = words[0, c_lo:c_hi], words[1, c_lo:c_hi], words[2, c_lo:c_hi], words[
            3, c_lo:c_hi]
        for i in range(calls):
            call = np.uint64(first_call + i)
            w0[i], w1[i], w2[i], w3[i] = _philox(call & _MASK, call >> _32, sub, zero, k0, k1)
        z = np.empty((4, _K), np.float32)
        z0, z1, z2, z3 = z[0, c_lo:c_hi], z[1, c_lo:c_hi], z[2, c_lo:c_hi], z[3, c_lo:c_hi]
        if code == NORMAL:
            for i in range(calls):
                z0[i], z1[i] = _normal_pair(np.uint64(w0[i]), np.uint64(w1[i]))
            for i in range(calls):
                z2[i], z3[i] = _normal_pair(np.uint64(w2[i]), np.uint64(w3[i]))
        elif code == UNIFORM:
            for zj, wj in ((z0, w0), (z1, w1), (z2, w2), (z3, w3)):
                for i in range(calls):
                    zj[i] = F(np.int32(wj[i] >> np.uint32(8))) * _P24
        elif code == TRUNCATED_FAR:  # two loops, so that the near one has no far branch
            for zj, wj in ((z0, w0), (z1, w1), (z2, w2), (z3, w3)):
                for i in range(calls):
                    zj[i] = _truncated(np.uint64(wj[i]), p_lo, q_hi, width, True)
        else:
            for zj, wj in ((z0, w0), (z1, w1), (z2, w2), (z3, w3)):
                for i in range(calls):
                    zj[i] = _truncated(np.uint64(wj[i]), p_lo, q_hi, width, False)
        values = z.reshape(_BLOCK)[p0:p1]
        at = run * length + block * _BLOCK + p0 - start  # where position p0 goes in `out`
        dst = out[at:at + p1 - p0]
        if code <= NORMAL:  # UNIFORM or NORMAL
            shift, scale = affine[0], affine[1]
            for g in range(p1 - p0):
                dst[g] = F(np.float64(values[g]) * scale + shift)
        else:
            low, high, mean, sigma = affine[0], affine[1], affine[2], affine[3]
            for g in range(p1 - p0):
                dst[g] = F(min(max(np.float64(values[g]), low), high) * sigma + mean)
