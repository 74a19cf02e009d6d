"""Stream v2 in plain Python, one element at a time, written from docs/stream.md (importable as
`stream_reference`, see tests/conftest.py). Python ints for the integer part; numpy float32
scalars, whose +, -, *, / and sqrt are IEEE single precision, for the float part. It shares no
code with weightinit, so agreeing with it checks the specification, not the implementation."""

from __future__ import annotations

import hashlib
import math

import numpy as np

f32 = np.float32
MASK = 0xFFFFFFFF


def key_words(seed: int, key: str) -> tuple[int, int]:
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8,
                             person=b"weightinit-v2").digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


def philox(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, ...]:
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK, (p0 >> 32) ^ c3 ^ k1, p0 & MASK
        k0, k1 = (k0 + 0x9E3779B9) & MASK, (k1 + 0xBB67AE85) & MASK
    return c0, c1, c2, c3


def words_of(index: int, seed: int, key: str, substream: int = 0) -> tuple[tuple[int, ...], int]:
    """The four words of element `index`'s Philox call, and which of them it reads."""
    block, position = divmod(index, 4096)
    word, lane = divmod(position, 1024)
    call = 1024 * block + lane
    return philox((call & MASK, call >> 32, substream, 0), key_words(seed, key)), word


def to_f32(x: float) -> np.float32:
    return f32(x)


def bits(x: np.float32) -> int:
    return int(np.array(x, dtype=np.float32).view(np.uint32))


def from_bits(b: int) -> np.float32:
    return np.array(b, dtype=np.uint32).view(np.float32)[()]


def horner(coefficients, x):
    """coefficients from the highest power down."""
    result = x * f32(coefficients[0]) + f32(coefficients[1])
    for c in coefficients[2:]:
        result = result * x + f32(c)
    return result


LOG = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
       -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)


def log32(x: np.float32) -> np.float32:
    b = bits(x)
    e = (b >> 23) - 127
    m = from_bits((b & 0x7FFFFF) | 0x3F800000)
    if m > f32(1.41421356):
        m, e = m * f32(0.5), e + 1
    ef = f32(e)
    f = m - f32(1)
    z = f * f
    y = horner(LOG, f) * f * z
    y = y + ef * f32(-2.12194440e-4)
    y = y - z * f32(0.5)
    return (f + y) + ef * f32(0.693359375)


def normal_pair(a: int, b: int) -> tuple[np.float32, np.float32]:
    u1 = f32(a >> 1) * f32(2.0**-31) + f32(2.0**-32)
    radius = np.sqrt(log32(u1) * f32(-2))
    m = b >> 8
    quadrant = (m + (1 << 21)) >> 22
    x = f32(m - (quadrant << 22)) * f32(2 * math.pi / 2**24)
    z = x * x
    sin = horner((-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1), z) * z * x + x
    cos = horner((2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2),
                 z) * z * z - z * f32(0.5) + f32(1)
    cos, sin = [(cos, sin), (-sin, cos), (-cos, -sin), (sin, -cos)][quadrant % 4]
    return radius * cos, radius * sin


def rising(coefficients, x):
    """coefficients from the constant term up (AS 241's order), by Horner's rule."""
    return horner(coefficients[::-1], x)


CENTRAL = ((3.3871327179e0, 5.0434271938e1, 1.5929113202e2, 5.9109374720e1),
           (1.0, 1.7895169469e1, 7.8757757664e1, 6.7187563600e1))
NEAR = ((1.4234372777e0, 2.7568153900e0, 1.3067284816e0, 1.7023821103e-1),
        (1.0, 7.3700164250e-1, 1.2021132975e-1))
FAR = ((6.6579051150e0, 3.0812263860e0, 4.2868294337e-1, 1.7337203997e-2),
       (1.0, 2.4197894225e-1, 1.2258202635e-2))


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def truncated(w: int, a: float, b: float) -> np.float32:
    """The standard variate: Phi^-1 of a point of [Phi(a), Phi(b)], before clamping."""
    # Phi(b) - Phi(a), from the tail each bound is in (no cancellation).
    if a >= 0:
        width = phi(-a) - phi(-b)
    elif b <= 0:
        width = phi(b) - phi(a)
    else:
        width = 1 - phi(a) - phi(-b)
    p_lo, q_hi, width = f32(phi(a)), f32(phi(-b)), f32(width)
    u = f32(2 * (w >> 9) + 1) * f32(2.0**-24)
    p = u * width + p_lo
    q = (f32(1) - u) * width + q_hi
    t = p - f32(0.5)
    if abs(t) <= f32(0.425):
        r = f32(0.180625) - t * t
        return t * rising(CENTRAL[0], r) / rising(CENTRAL[1], r)
    tail = max(p if t < 0 else q, f32(2.0**-126))
    s = np.sqrt(-log32(tail))
    far = (a < -6.6 or b > 6.6) and s > f32(5)
    top, bottom = FAR if far else NEAR
    s = s - f32(5 if far else 1.6)
    value = rising(top, s) / rising(bottom, s)
    return -value if t < 0 else value


def value(kind: str, params: tuple[float, ...], index: int, seed: int, key: str,
          substream: int = 0) -> float:
    """The float64 value of element `index` (round it to get any other dtype)."""
    words, which = words_of(index, seed, key, substream)
    if kind == "uniform":
        low, high = params
        return low + (high - low) * float(f32(words[which] >> 8) * f32(2.0**-24))
    if kind == "normal":
        mean, std = params
        pair = normal_pair(words[which & 2], words[(which & 2) + 1])
        return mean + std * float(pair[which & 1])
    mean, std, a, b = params
    from scipy.stats import truncnorm
    sigma = std / math.sqrt(truncnorm(a, b).var())
    z = min(max(float(truncated(words[which], a, b)), a), b)
    return mean + sigma * z
