"""Philox4x32-10 (Salmon et al., Parallel Random Numbers: As Easy as 1, 2, 3, SC 2011) in torch
integer ops, so that the same code runs eagerly, under torch.compile, on CPU and on CUDA.

Words are uint32 values held in int32 tensors (two's complement). Only operations whose low 32
bits do not depend on signedness are used: +, *, ^, & and arithmetic shifts followed by a mask.
The 32x32 -> 64-bit multiply is split into 16-bit halves so that no step needs 64-bit lanes
(AVX2 has no 64-bit multiply or arithmetic shift; int32 lanes are twice as wide as well).
"""

from __future__ import annotations

import hashlib

import torch

from .._errors import InitError, show

_M0 = 0xD2511F53
_M1 = 0xCD9E8D57
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
ROUNDS = 10
# Stream v2's layout (docs/stream.md): blocks of 4096 elements read the four words of 1024
# consecutive Philox calls, word by word: element f is word (f mod 4096) div 1024 of call
# 1024 (f div 4096) + f mod 1024.
CALLS_PER_BLOCK = 1024
BLOCK = 4 * CALLS_PER_BLOCK


def _signed(word: int) -> int:
    """The int32 with the same bits as the uint32 `word`."""
    word &= 0xFFFFFFFF
    return word - (1 << 32) if word >= (1 << 31) else word


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32 bits of the 64-bit product of uint32 words `a` and constant `m`."""
    m_hi, m_lo = m >> 16, m & 0xFFFF
    a_lo = a & 0xFFFF
    a_hi = (a >> 16) & 0xFFFF
    lo_lo = a_lo * m_lo  # each partial product < 2**32: exact as uint32, wraps as int32
    lo_hi = a_lo * m_hi
    hi_lo = a_hi * m_lo
    hi_hi = a_hi * m_hi
    middle = ((lo_lo >> 16) & 0xFFFF) + (lo_hi & 0xFFFF) + (hi_lo & 0xFFFF)
    # middle < 3 * 2**16 is non-negative, so its arithmetic shift needs no mask.
    high = hi_hi + ((lo_hi >> 16) & 0xFFFF) + ((hi_lo >> 16) & 0xFFFF) + (middle >> 16)
    low = a * _signed(m)
    return high, low


def philox4x32(
    c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor,
    k0: torch.Tensor, k1: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ten Philox rounds on int32 counter words `c*` with int32 key words `k*` (0-d tensors)."""
    for _ in range(ROUNDS):
        hi0, lo0 = _mulhilo(c0, _M0)
        hi1, lo1 = _mulhilo(c2, _M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + _signed(_W0)
        k1 = k1 + _signed(_W1)
    return c0, c1, c2, c3


def philox4x32_reference(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[
        int, int, int, int]:
    """Philox4x32-10 on Python ints, written from the paper; the tests' independent check."""
    mask = 0xFFFFFFFF
    c0, c1, c2, c3 = (c & mask for c in counter)
    k0, k1 = (k & mask for k in key)
    for _ in range(ROUNDS):
        p0, p1 = _M0 * c0, _M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & mask, p1 & mask, ((p0 >> 32) ^ c3 ^ k1) & mask, \
            p0 & mask
        k0, k1 = (k0 + _W0) & mask, (k1 + _W1) & mask
    return c0, c1, c2, c3


def check_key(key: object) -> str:
    """`key` as a str UTF-8 can encode, or InitError.

    The stream hashes the key's UTF-8 bytes. A str holding a lone surrogate (``"\\ud800"``:
    half of a UTF-16 pair, or a byte that ``os.fsdecode`` could not decode) has no UTF-8
    encoding; it is refused rather than encoded some other way (``surrogatepass`` would give
    such keys bytes that no valid str has, a second encoding to keep stable forever), since
    keys are parameter names: Python identifiers joined by dots, which never hold one."""
    if not isinstance(key, str):
        raise InitError(f"`key` must be a str (e.g. a parameter name), got {show(key)}.")
    try:
        key.encode()
    except UnicodeEncodeError as exc:
        raise InitError(
            f"`key` {show(key)} is not valid Unicode (UTF-8 cannot encode it): it holds the "
            f"lone surrogate {key[exc.start]!r} at index {exc.start}, and the keyed stream "
            "hashes the key's UTF-8 bytes. Pass a key without surrogates, e.g. the parameter's "
            "name, or the text decoded properly from its bytes."
        ) from None
    return key


def derive_key(seed: int, key: str) -> tuple[int, int]:
    """Two uint32 Philox key words from (seed, key) by BLAKE2b: stable across runs, machines and
    Python versions (unlike `hash`). `key` must be a str UTF-8 can encode (`check_key`)."""
    check_key(key)
    digest = hashlib.blake2b(
        f"{seed}\x1f{key}".encode(), digest_size=8, person=b"weightinit-v2"
    ).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


def key_tensor(seed: int, key: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """The key words as an int32 tensor of shape (2,), ready for the kernels."""
    k0, k1 = derive_key(seed, key)
    return torch.tensor([_signed(k0), _signed(k1)], dtype=torch.int32, device=device)
