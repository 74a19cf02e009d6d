"""The keyed stream's guarantees: a value depends only on (seed, key, index, distribution), so
any region, split, thread count or backend gives the same bits."""

import itertools
import math

import pytest
import torch

import weightinit as wi
from weightinit.random import fill_keyed_, philox4x32_reference

DISTS = [
    ("uniform", (-0.5, 1.5)),
    ("normal", (0.25, 2.0)),
    ("truncated_normal", (0.0, 1.0, -2.0, 2.0)),
    ("truncated_normal", (1.0, 0.5, 0.5, 3.0)),  # one-sided, takes the mirrored path
    ("truncated_normal", (0.0, 1.0, -8.0, -5.0)),  # reaches AS 241's far-tail branch
]


def _fill(shape, kind, params, **kw):
    out = torch.empty(shape, dtype=kw.pop("dtype", torch.float32))
    return fill_keyed_(out, kind, params, seed=kw.pop("seed", 7), key=kw.pop("key", "w"), **kw)


@pytest.mark.parametrize(("kind", "params"), DISTS)
def test_same_seed_and_key_same_bits(kind, params):
    a = _fill((300, 70), kind, params)
    b = _fill((300, 70), kind, params)
    assert torch.equal(a, b)
    assert not torch.equal(a, _fill((300, 70), kind, params, seed=8))
    assert not torch.equal(a, _fill((300, 70), kind, params, key="v"))


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
    full = _fill(shape, kind, params)
    for offset, size in _blocks(shape, SPLITS[split]):
        part = _fill(size, kind, params, global_shape=shape, offset=offset)
        expected = full[offset[0]:offset[0] + size[0], offset[1]:offset[1] + size[1]]
        assert torch.equal(part, expected), (split, offset, size)


def test_shards_of_a_4d_conv_weight_along_every_dim():
    shape = (8, 6, 3, 5)
    full = _fill(shape, "normal", (0.0, 1.0))
    for dim in range(4):
        for start in range(0, shape[dim], 2):
            size = list(shape)
            size[dim] = min(2, shape[dim] - start)
            offset = [0, 0, 0, 0]
            offset[dim] = start
            part = _fill(tuple(size), "normal", (0.0, 1.0), global_shape=shape, offset=offset)
            assert torch.equal(part, full.narrow(dim, start, size[dim]))


def test_chunk_size_does_not_change_values():
    a = _fill((1000, 37), "normal", (0.0, 1.0))
    b = _fill((1000, 37), "normal", (0.0, 1.0), chunk=999)  # blocks of whole rows
    assert torch.equal(a, b)
    c = _fill((20, 37), "normal", (0.0, 1.0), chunk=5)  # rows split into pieces
    assert torch.equal(a[:20], c)


def test_non_contiguous_tensor_gets_the_same_values():
    a = _fill((40, 30), "uniform", (0.0, 1.0))
    t = torch.empty(30, 40).T  # a (40, 30) view that is not contiguous
    fill_keyed_(t, "uniform", (0.0, 1.0), seed=7, key="w")
    assert torch.equal(a, t)


@pytest.mark.parametrize("index", [(1 << 33) + 12345, (1 << 33) + 12345 + 1024])
def test_value_at_a_high_index_matches_the_reference_generator(index):
    """The whole pipeline for one element past 2**32, in each half of a pair: the element's
    pair and half, counter words, key, bits to float (see the layout in _stream's docstring)."""
    seed, key = 3, "big.weight"
    pair = 1024 * (index // 2048) + index % 1024
    second_half = (index % 2048) // 1024 == 1
    words = philox4x32_reference((pair & 0xFFFFFFFF, pair >> 32, 0, 0), wi.derive_key(seed, key))

    def m53(hi, lo):
        return (hi >> 6) * (1 << 27) + (lo >> 5)

    def keyed(kind):
        out = torch.empty(1, dtype=torch.float64)
        fill_keyed_(out, kind, (0.0, 1.0), seed=seed, key=key, global_shape=(1 << 34,),
                    offset=(index,))
        return float(out)

    half_words = words[2:] if second_half else words[:2]
    assert keyed("uniform") == m53(*half_words) * 2.0**-53

    u1 = (m53(words[0], words[1]) + 1) * 2.0**-53
    u2 = m53(words[2], words[3]) * 2.0**-53
    trig = math.sin if second_half else math.cos
    expected = math.sqrt(-2.0 * math.log(u1)) * trig(2.0 * math.pi * u2)
    # Our sin/cos are Taylor polynomials and log/sqrt torch's: agreement to ~1e-15.
    assert keyed("normal") == pytest.approx(expected, rel=1e-14, abs=1e-15)


def test_different_keys_are_uncorrelated():
    # For independent streams the sample correlation of n = 2**20 pairs has std 1/sqrt(n) ~ 1e-3,
    # so |r| < 0.01 is a 10-sigma bound.
    n = 1 << 20
    a = _fill((n,), "normal", (0.0, 1.0), key="layer1.weight").double()
    b = _fill((n,), "normal", (0.0, 1.0), key="layer2.weight").double()
    c = _fill((n,), "normal", (0.0, 1.0), key="layer1.weight", seed=8).double()
    for other in (b, c):
        r = torch.corrcoef(torch.stack([a, other]))[0, 1].item()
        assert abs(r) < 0.01, r
    # Neighbouring elements of one stream are uncorrelated too (counter = element index).
    r = torch.corrcoef(torch.stack([a[:-1], a[1:]]))[0, 1].item()
    assert abs(r) < 0.01, r


@pytest.mark.parametrize(("kind", "params"), DISTS[:3])
def test_thread_count_does_not_change_values(kind, params):
    torch.set_num_threads(1)
    one = _fill((1 << 18,), kind, params)
    torch.set_num_threads(2)
    two = _fill((1 << 18,), kind, params)
    assert torch.equal(one, two)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "params"), DISTS[:3])
def test_compiled_backend_gives_the_same_bits_as_eager(kind, params):
    # Covers the compiled aligned kernel on whole chunks and a partial one, the ragged tail,
    # the compiled general kernel on a region, and 1 and 2 threads. The first call of each
    # kernel compiles (tens of seconds on a 2-core machine; torch caches it on disk).
    shape = ((1 << 20) + 4099,)
    eager = _fill(shape, kind, params, backend="eager")
    compiled = _fill(shape, kind, params, backend="compiled")
    assert torch.equal(eager, compiled)
    # chunk=64 makes each row its own piece, big enough to use the compiled general kernel.
    region = _fill((100, 33), kind, params, backend="compiled", global_shape=(300, 101),
                   offset=(17, 60), chunk=64)
    full = _fill((300, 101), kind, params, backend="eager")
    assert torch.equal(region, full[17:117, 60:93])
    torch.set_num_threads(2)
    assert torch.equal(_fill(shape, kind, params, backend="compiled"), eager)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_every_float_dtype_is_the_rounded_float64_value(dtype):
    wide = _fill((500,), "normal", (0.0, 1.0), dtype=torch.float64)
    narrow = _fill((500,), "normal", (0.0, 1.0), dtype=dtype)
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
    with pytest.raises(wi.InitError, match="float16, bfloat16, float32 or float64"):
        fill_keyed_(torch.zeros(3, dtype=torch.int64), "normal", (0.0, 1.0), seed=0, key="w")
    assert torch.equal(t, torch.full((4, 5), 7.0))


def test_ndtri_matches_scipy_to_rounding():
    """AS 241 in torch ops (the truncated normal's inverse CDF) against scipy's ndtri."""
    from scipy.special import ndtri as scipy_ndtri

    from weightinit.random._stream import ndtri

    p = torch.cat([
        torch.logspace(-300, -1, 2000, dtype=torch.float64),
        torch.linspace(0.01, 0.99, 20001, dtype=torch.float64),
        1 - torch.logspace(-16, -1, 2000, dtype=torch.float64),
    ])
    ours, ref = ndtri(p), torch.from_numpy(scipy_ndtri(p.numpy()))
    # AS 241 is accurate to about 1e-16 relative; allow a few ulps of float64 rounding.
    big = ref.abs() > 1e-3
    assert ((ours - ref).abs()[big] / ref.abs()[big]).max() < 1e-14
    assert (ours - ref).abs().max() < 1e-13


@pytest.mark.parametrize(("kind", "params"), DISTS)
def test_aligned_blocks_equal_the_general_per_element_kernel(kind, params):
    """The fast kernel (whole 2048-element blocks, one Philox call and one log per pair) and the
    general one (any element on its own) are the same function of the index."""
    from weightinit.random._stream import _general_kernel, kernel_params, key_tensor

    shape = (3, 9000)  # runs long enough for aligned bodies with ragged heads and tails
    full = _fill(shape, kind, params, dtype=torch.float64)
    general = torch.empty(1, 27000, dtype=torch.float64)
    _general_kernel(kind)(general, torch.zeros(1, 1, dtype=torch.int64), key_tensor(7, "w"),
                          torch.tensor(0, dtype=torch.int32),
                          torch.tensor(kernel_params(kind, params), dtype=torch.float64))
    assert torch.equal(full.view(-1), general.view(-1))
    for chunk in (1, 2048, 5000):
        assert torch.equal(_fill(shape, kind, params, dtype=torch.float64, chunk=chunk), full)
    part = _fill((2, 7001), kind, params, dtype=torch.float64, global_shape=shape,
                 offset=(1, 1499))
    assert torch.equal(part, full[1:, 1499:8500])


@pytest.mark.parametrize(("kind", "params", "match"), [
    ("truncated_normal", (0.0, 1.0, 2.0, -2.0), "a < b"),
    ("truncated_normal", (0.0, 1.0, -40.0, -39.0), "37 sigma"),
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


def test_a_failing_compile_falls_back_to_the_eager_kernel():
    """No C++ compiler, an unsupported device: the compiled kernel raises on its first call;
    the fill continues eagerly (same values) and says so once."""
    from weightinit.random._stream import _EAGER, _with_eager_fallback

    def broken(*args):
        raise RuntimeError("no compiler")

    run = _with_eager_fallback(broken, "normal", "general")
    out, expected = torch.empty(2, 50), torch.empty(2, 50)
    args = (torch.tensor([[0], [50]]), wi.random._philox.key_tensor(0, "w"),
            torch.tensor(0, dtype=torch.int32), torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.warns(wi.InitWarning, match="eager kernel"):
        run(out, *args)
    _EAGER[("normal", "general")](expected, *args)
    assert torch.equal(out, expected)
