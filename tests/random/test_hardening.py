"""Hardening of the keyed stream's entry points (issue 14): seeds of any integer type, keys with
lone surrogates, values beyond the destination dtype, tensors that cannot be written. Every
refusal is an InitError and leaves the tensor bit-identical."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import weightinit as wi
from weightinit.random import (
    NORMAL_REACH,
    Region,
    check_seed,
    derive_key,
    fill_keyed_,
    largest_magnitude,
    overflow_problem,
)
from weightinit.random._transforms import normal_variates


@pytest.mark.parametrize("seed", [np.int64(5), np.int32(5), np.uint64(5), np.int8(5),
                                  torch.tensor(5), 5], ids=repr)
def test_any_integer_is_a_seed_with_the_same_stream(seed):
    assert check_seed(seed) == 5 and type(check_seed(seed)) is int
    want = fill_keyed_(torch.empty(40), "normal", (0.0, 1.0), seed=5, key="w")
    got = fill_keyed_(torch.empty(40), "normal", (0.0, 1.0), seed=seed, key="w")
    assert torch.equal(got, want)


@pytest.mark.parametrize("seed", [True, np.bool_(False), torch.tensor(True), -1, 2**63,
                                  np.uint64(2**63), 1.0, np.float64(1.0), "1", None, [1],
                                  torch.tensor([1, 2])], ids=repr)
def test_non_integer_and_out_of_range_seeds_are_refused(seed):
    with pytest.raises(wi.InitError, match=r"`seed` must be an int in \[0, 2\*\*63\)"):
        check_seed(seed)


def test_a_lone_surrogate_key_is_refused_everywhere_it_is_hashed():
    t = torch.full((3,), 2.0)
    for key in ("\ud800", "fc.\udcffweight", "a\udfff"):
        with pytest.raises(wi.InitError, match="lone surrogate"):
            fill_keyed_(t, "normal", (0.0, 1.0), seed=0, key=key)
        with pytest.raises(wi.InitError, match="not valid Unicode"):
            derive_key(0, key)
    assert torch.equal(t, torch.full((3,), 2.0))
    # A valid pair is one character, U+1F642, and is fine.
    derive_key(0, "\U0001f642")


def test_the_normal_reach_bounds_every_variate_of_the_stream():
    # The Box–Muller radius is largest for the smallest u1, word a = 0 or 1; every angle b.
    a = torch.zeros(1 << 16, dtype=torch.int32)
    b = (torch.arange(1 << 16, dtype=torch.int32) << 16) | 0x8000
    first, second = normal_variates(a, b)
    reach = float(torch.maximum(first.abs(), second.abs()).max())
    assert 6.66 < reach <= NORMAL_REACH, reach


@pytest.mark.parametrize(("kind", "params", "dtype"), [
    ("normal", (0.0, 1e39), torch.float32),
    ("normal", (7e4, 1.0), torch.float16),
    ("normal", (0.0, 1e308), torch.float64),
    ("uniform", (-1e5, 1e5), torch.float16),
    ("uniform", (0.0, 3.4e38), torch.bfloat16),
    ("truncated_normal", (0.0, 4e4, -2.0, 2.0), torch.float16),
])
def test_values_beyond_the_dtype_are_refused_before_any_write(kind, params, dtype):
    assert overflow_problem(kind, params, dtype) is not None
    t = torch.full((8, 8), 0.5, dtype=dtype)
    with pytest.raises(wi.InitError, match=rf"beyond {dtype}'s range"):
        fill_keyed_(t, kind, params, seed=0, key="w")
    assert bool((t == 0.5).all())


def test_the_reach_of_each_distribution():
    assert largest_magnitude("uniform", (-3.0, 2.0)) == 3.0
    assert largest_magnitude("normal", (-1.0, 2.0)) == 1.0 + NORMAL_REACH * 2.0
    # TruncatedNormal(std=1, a=-2, b=2): sigma = 1 / 0.8796..., reach 2 sigma.
    assert largest_magnitude("truncated_normal", (0.0, 1.0, -2.0, 2.0)) == pytest.approx(
        2 / 0.8796, rel=1e-4)
    assert overflow_problem("uniform", (-65504.0, 65504.0), torch.float16) is None


def test_tensors_that_cannot_be_written_are_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nested = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
        cases = [
            (nested, "nested tensor"),
            (torch.eye(3).to_sparse(), r"layout torch\.sparse_coo"),
            (torch.eye(3).to_sparse_csr(), r"layout torch\.sparse_csr"),
            (torch.arange(6.0).as_strided((3, 3), (1, 1)), "repeats memory"),
            (torch.ones(3, dtype=torch.complex64), "dtype torch.complex64"),
        ]
    for tensor, match in cases:
        with pytest.raises(wi.InitError, match=match):
            fill_keyed_(tensor, "normal", (0.0, 1.0), seed=0, key="w")


def test_strided_views_that_do_not_overlap_are_filled():
    base = torch.zeros(6, 8)
    for view in (base[::2], base.T, base[:, 1::3], base.unsqueeze(1).expand(6, 1, 8),
                 base.as_strided((2, 2, 2), (1, 16, 2))):
        fill_keyed_(view, "normal", (0.0, 1.0), seed=0, key="v")
        assert bool(torch.isfinite(view).all())


def test_substream_and_region_accept_numpy_integers():
    want = fill_keyed_(torch.empty(4, 3), "normal", (0.0, 1.0), seed=0, key="w", substream=2,
                       global_shape=(8, 3), offset=(4, 0))
    got = fill_keyed_(torch.empty(4, 3), "normal", (0.0, 1.0), seed=0, key="w",
                      substream=np.int64(2), global_shape=np.array([8, 3]),
                      offset=(np.int64(4), np.int64(0)))
    assert torch.equal(got, want)
    with pytest.raises(wi.InitError, match="`substream`"):
        fill_keyed_(torch.empty(3), "normal", (0.0, 1.0), seed=0, key="w", substream=True)


@pytest.mark.parametrize(("global_shape", "offset", "match"), [
    ((10**400, 3), None, "more than 10\\*\\*30 elements"),
    ((4, 3), (10**400, 0), "outside `global_shape`"),
    ((4, 3), (0.5, 0), "non-negative ints"),
    ((4, 3), (np.bool_(True), 0), "non-negative ints"),
    ("43", None, "sequence of ints"),
])
def test_bad_regions_are_refused_with_short_messages(global_shape, offset, match):
    with pytest.raises(wi.InitError, match=match) as info:
        Region.of((2, 3), global_shape, offset)
    assert len(str(info.value)) < 300
