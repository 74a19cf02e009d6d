"""`fill_keyed_`'s guarantees: a value depends only on (seed, key, index, distribution), so any
region, split, thread count or dtype gives the same (rounded) bits; bad arguments are refused
with the tensor unchanged."""

import itertools
import math

import pytest
import torch
from random_streams import DISTS, fill

import weightinit as wi
from weightinit.random import fill_keyed_


@pytest.mark.parametrize(("kind", "params"), DISTS)
def test_same_seed_and_key_same_bits(kind, params):
    a = fill((300, 70), kind, params)
    b = fill((300, 70), kind, params)
    assert torch.equal(a, b)
    assert not torch.equal(a, fill((300, 70), kind, params, seed=8))
    assert not torch.equal(a, fill((300, 70), kind, params, key="v"))


def _blocks(shape, cuts):
    """Rectangular blocks of a 2-d shape split at the given row and column cut points."""
    rows = [0, *cuts[0], shape[0]]
    cols = [0, *cuts[1], shape[1]]
    for r0, r1 in itertools.pairwise(rows):
        for c0, c1 in itertools.pairwise(cols):
            yield (r0, c0), (r1 - r0, c1 - c0)


SPLITS = {
    "2 row shards": ([50], []),
    "4 row shards": ([25, 50, 75], []),
    "2 column shards": ([], [33]),
    "odd 3x3 grid": ([17, 61], [5, 40]),
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("kind", "params"), DISTS)
def test_shards_equal_slices_of_the_full_fill(split, kind, params):
    shape = (100, 67)
    full = fill(shape, kind, params)
    for offset, size in _blocks(shape, SPLITS[split]):
        part = fill(size, kind, params, global_shape=shape, offset=offset)
        expected = full[offset[0]:offset[0] + size[0], offset[1]:offset[1] + size[1]]
        assert torch.equal(part, expected), (split, offset, size)


def test_shards_of_a_4d_conv_weight_along_every_dim():
    shape = (8, 6, 3, 5)
    full = fill(shape, "normal", (0.0, 1.0))
    for dim in range(4):
        for start in range(0, shape[dim], 2):
            size = list(shape)
            size[dim] = min(2, shape[dim] - start)
            offset = [0, 0, 0, 0]
            offset[dim] = start
            part = fill(tuple(size), "normal", (0.0, 1.0), global_shape=shape, offset=offset)
            assert torch.equal(part, full.narrow(dim, start, size[dim]))


def test_chunk_size_does_not_change_values():
    a = fill((1000, 37), "normal", (0.0, 1.0))
    b = fill((1000, 37), "normal", (0.0, 1.0), chunk=999)  # blocks of whole rows
    assert torch.equal(a, b)
    c = fill((20, 37), "normal", (0.0, 1.0), chunk=5)  # rows split into pieces
    assert torch.equal(a[:20], c)


def test_non_contiguous_tensor_gets_the_same_values():
    a = fill((40, 30), "uniform", (0.0, 1.0))
    t = torch.empty(30, 40).T  # a (40, 30) view that is not contiguous
    fill_keyed_(t, "uniform", (0.0, 1.0), seed=7, key="w")
    assert torch.equal(a, t)


def test_different_keys_are_uncorrelated():
    # For independent streams the sample correlation of n = 2**20 pairs has std 1/sqrt(n) ~ 1e-3,
    # so |r| < 0.01 is a 10-sigma bound.
    n = 1 << 20
    a = fill((n,), "normal", (0.0, 1.0), key="layer1.weight").double()
    b = fill((n,), "normal", (0.0, 1.0), key="layer2.weight").double()
    c = fill((n,), "normal", (0.0, 1.0), key="layer1.weight", seed=8).double()
    for other in (b, c):
        r = torch.corrcoef(torch.stack([a, other]))[0, 1].item()
        assert abs(r) < 0.01, r
    # Neighbouring elements of one stream are uncorrelated too (counter = element index).
    r = torch.corrcoef(torch.stack([a[:-1], a[1:]]))[0, 1].item()
    assert abs(r) < 0.01, r


@pytest.mark.parametrize(("kind", "params"), DISTS[:3])
def test_thread_count_does_not_change_values(kind, params):
    torch.set_num_threads(1)
    one = fill((1 << 18,), kind, params)
    torch.set_num_threads(2)
    two = fill((1 << 18,), kind, params)
    assert torch.equal(one, two)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_every_float_dtype_is_the_rounded_float64_value(dtype):
    # docs/stream.md, section 4: one float64 value per element, rounded to each dtype.
    wide = fill((500,), "normal", (0.0, 1.0), dtype=torch.float64)
    narrow = fill((500,), "normal", (0.0, 1.0), dtype=dtype)
    assert torch.equal(narrow, wide.to(dtype))


def test_bad_arguments_are_refused_and_leave_the_tensor_unchanged():
    t = torch.full((4, 5), 7.0)
    cases = [
        (dict(kind="poisson", params=(1.0,)), "`kind`"),
        (dict(kind="normal", params=(0.0, 1.0), global_shape=(4, 4), offset=(0, 0)), "`offset`"),
        (dict(kind="normal", params=(0.0, 1.0), global_shape=(8, 5), offset=(5, 0)), "outside"),
        (dict(kind="normal", params=(0.0, 1.0), global_shape=(8, 5, 1)), "one entry per dim"),
        (dict(kind="normal", params=(0.0, 1.0), offset=(1, 0)), "needs `global_shape`"),
        (dict(kind="normal", params=(0.0, 1.0), global_shape=(8, -5)), "non-negative"),
        (dict(kind="normal", params=(0.0, 1.0), backend="gpu"), "`backend`"),
        (dict(kind="normal", params=(0.0,)), "`params`"),
        (dict(kind="truncated_normal", params=(0.0, 1.0)), "`params`"),
        (dict(kind="uniform", params=(0.0, math.inf)), "`params`"),
        (dict(kind="normal", params=(0.0, 1.0), chunk=0), "`chunk`"),
    ]
    for kwargs, match in cases:
        with pytest.raises(wi.InitError, match=match):
            fill_keyed_(t, seed=0, key="w", **kwargs)
        assert torch.equal(t, torch.full((4, 5), 7.0)), kwargs
    for seed, key, match in [(-1, "w", "`seed`"), (True, "w", "`seed`"), (0.5, "w", "`seed`"),
                             (0, 3, "`key`")]:
        with pytest.raises(wi.InitError, match=match):
            fill_keyed_(t, "normal", (0.0, 1.0), seed=seed, key=key)
    for backend in ("numba", "eager"):
        with pytest.raises(wi.InitError, match="meta device"):
            fill_keyed_(torch.empty(3, device="meta"), "normal", (0.0, 1.0), seed=0, key="w",
                        backend=backend)
    with pytest.raises(wi.InitError, match="not valid Unicode"):
        fill_keyed_(t, "normal", (0.0, 1.0), seed=0, key="w\ud800")
    with pytest.raises(wi.InitError, match="2\\*\\*62"):
        fill_keyed_(t, "normal", (0.0, 1.0), seed=0, key="w", global_shape=(2**31, 2**31 + 5),
                    offset=(0, 0))
    with pytest.raises(wi.InitError, match="needs `global_shape`"):
        fill_keyed_(t, "normal", (0.0, 1.0), seed=0, key="w", offset=(0, 0, 0))
    expanded = torch.zeros(5).expand(4, 5)
    with pytest.raises(wi.InitError, match="expanded view"):
        fill_keyed_(expanded, "normal", (0.0, 1.0), seed=0, key="w")
    assert not expanded.any()
    with torch.inference_mode():
        frozen = torch.zeros(6)
    with pytest.raises(wi.InitError, match="inference_mode"):
        fill_keyed_(frozen, "normal", (0.0, 1.0), seed=0, key="w")
    assert not frozen.any()
    with pytest.raises(wi.InitError, match="float16, bfloat16, float32 and float64"):
        fill_keyed_(torch.zeros(3, dtype=torch.int64), "normal", (0.0, 1.0), seed=0, key="w")
    assert torch.equal(t, torch.full((4, 5), 7.0))


@pytest.mark.parametrize(("kind", "params", "match"), [
    ("truncated_normal", (0.0, 1.0, 2.0, -2.0), "a < b"),
    ("truncated_normal", (0.0, 1.0, -40.0, -39.0), "11 sigma"),
    ("truncated_normal", (0.0, 1.0, 12.0, 13.0), "11 sigma"),
    ("truncated_normal", (0.0, 1.0, 2.0, 2.0001), "too narrow"),
    ("uniform", (1.0, 0.0), "low < high"),
    ("normal", (0.0, -1.0), ">= 0"),
    ("normal", ("0", "x"), "finite numbers"),
])
def test_fill_keyed_checks_distribution_params(kind, params, match):
    t = torch.full((3,), 7.0)
    with pytest.raises(wi.InitError, match=match):
        fill_keyed_(t, kind, params, seed=0, key="w")
    with pytest.raises(wi.InitError, match="`substream`"):
        fill_keyed_(t, "normal", (0.0, 1.0), seed=0, key="w", substream=2**40)
    assert torch.equal(t, torch.full((3,), 7.0))


@pytest.mark.parametrize("backend", ["numba", "eager"])
def test_a_fill_bumps_the_version_counter_so_autograd_refuses_stale_graphs(backend):
    x = torch.ones(8, requires_grad=True)
    y = (x * x).sum()  # saves x for backward
    before = x._version
    fill_keyed_(x, "normal", (0.0, 1.0), seed=0, key="w", backend=backend)
    assert x._version > before
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_inside_inference_mode_inference_tensors_are_filled():
    with torch.inference_mode():
        t = fill_keyed_(torch.empty(100), "normal", (0.0, 1.0), seed=7, key="w")
    assert torch.equal(t, fill((100,), "normal", (0.0, 1.0)))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_can_fill_after_its_parent_did():
    """numba's default OpenMP layer terminates a forked child; the stream runs numba on its
    fork-safe workqueue layer (DataLoader workers and multiprocessing fork)."""
    import os

    expected = fill((300, 70), "normal", (0.0, 1.0))
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its fill gives the parent's bits
        try:
            os._exit(0 if torch.equal(fill((300, 70), "normal", (0.0, 1.0)), expected) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
