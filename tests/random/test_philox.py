"""Philox4x32-10 in torch int32 ops against the Random123 known-answer vectors and a pure-Python
reference written from the paper."""

import random

import pytest
import torch

from weightinit.random import derive_key, philox4x32, philox4x32_reference

# Known-answer tests shipped with Random123 (kat_vectors, philox4x32 with 10 rounds).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _as_int32(words):
    return torch.tensor([w - (1 << 32) if w >= 1 << 31 else w for w in words], dtype=torch.int32)


def _torch_philox(counters, key):
    c = [_as_int32([ctr[i] for ctr in counters]) for i in range(4)]
    k = _as_int32(key)
    out = philox4x32(*c, k[0], k[1])
    return [tuple(int(w[j]) & 0xFFFFFFFF for w in out) for j in range(len(counters))]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_reference_matches_random123(counter, key, expected):
    assert philox4x32_reference(counter, key) == expected


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_torch_ops_match_random123(counter, key, expected):
    assert _torch_philox([counter], key) == [expected]


def test_torch_ops_match_reference_on_random_words():
    rng = random.Random(1234)
    for _ in range(5):
        key = (rng.getrandbits(32), rng.getrandbits(32))
        counters = [tuple(rng.getrandbits(32) for _ in range(4)) for _ in range(200)]
        got = _torch_philox(counters, key)
        assert got == [philox4x32_reference(c, key) for c in counters]


def test_key_derivation_is_stable():
    # Frozen values (stream v2, docs/stream.md): changing the derivation would silently change
    # every user's weights.
    assert derive_key(0, "layer.weight") == derive_key(0, "layer.weight")
    assert derive_key(0, "layer.weight") != derive_key(1, "layer.weight")
    assert derive_key(0, "layer.weight") != derive_key(0, "layer.bias")
    assert derive_key(0, "w") == (222211932, 2094941967)
    assert derive_key(0, "layer.weight") == (0x43C8078C, 0x4FF7D30D)
