"""The memory-lean joint constructions (issue 14) give the same bits as the ones they replaced.

Sparse selects each column's zeros block by block instead of argsorting the whole matrix,
ZerO writes its matrix a few rows at a time and has a closed-form std, Orthogonal and
DeltaOrthogonal work in the memory of their Gaussian draw. The old implementations are kept
below, verbatim but for names, as independent references: on small tensors, keyed and with a
generator, in every float dtype, the new paths must match them bit for bit. Peak memory itself
is not tested (RSS is not deterministic); a ZerO std for a matrix that could not be built is the
deterministic proof that std_for no longer builds it.
"""

from __future__ import annotations

import math

import pytest
import torch

import weightinit as wi
from weightinit.random import fill_keyed_

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


# --- the old implementations (as of commit 4dddb8c) --------------------------------------------
def _old_haar(gaussian: torch.Tensor) -> torch.Tensor:
    rows, cols = gaussian.shape
    tall = gaussian if rows >= cols else gaussian.T
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        q, r = torch.linalg.qr(tall)
    finally:
        torch.set_num_threads(threads)
    signs = torch.sign(torch.diagonal(r))
    q = q * torch.where(signs == 0, torch.ones_like(signs), signs)
    return q if rows >= cols else q.T


def _old_orthogonal(spec, shape, draw):
    gaussian = draw("normal", (0.0, 1.0), 0).reshape(spec.blocks, shape[0] // spec.blocks, -1)
    parts = [_old_haar(block) for block in gaussian]
    return (spec.gain * torch.cat(parts)).reshape(shape)


def _old_delta(spec, shape, draw):
    tap = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
    gaussian = draw("normal", (0.0, 1.0), 0)[tap]
    full = torch.zeros(shape, dtype=torch.float64)
    full[tap] = spec.gain * _old_haar(gaussian)
    return full


def _old_sparse(spec, shape, draw):
    values = draw("normal", (0.0, spec.std), 0)
    order = draw("uniform", (0.0, 1.0), 1).argsort(dim=0, stable=True)
    zeros = math.ceil(spec.sparsity * shape[0])
    mask = torch.zeros(shape, dtype=torch.bool)
    mask.scatter_(0, order[:zeros], True)
    return values.masked_fill_(mask, 0.0)


def _old_hadamard_block(rows, cols):
    bits = (torch.arange(rows, dtype=torch.int64)[:, None]
            & torch.arange(cols, dtype=torch.int64)[None, :])
    parity = torch.zeros_like(bits)
    while bool(bits.any()):
        parity ^= bits & 1
        bits >>= 1
    return 1.0 - 2.0 * parity.to(torch.float64)


def _old_zero_matrix(out, inp):
    if out <= inp:
        return torch.eye(out, inp, dtype=torch.float64)
    m = math.ceil(math.log2(out))
    return 2.0 ** (-(m - 1) / 2) * _old_hadamard_block(out, inp)


def _old_zero(spec, shape, draw):
    full = torch.zeros(shape, dtype=torch.float64)
    full[(slice(None), slice(None), *(k // 2 for k in shape[2:]))] = _old_zero_matrix(*shape[:2])
    return full


def _old_zero_std(fans):
    rf = fans.receptive_field
    block = _old_zero_matrix(fans.fan_out // rf, fans.fan_in // rf)
    count = block.numel() * rf
    mean = float(block.sum()) / count
    return math.sqrt(max(float((block**2).sum()) / count - mean * mean, 0.0))


# --- the comparison ------------------------------------------------------------------------------
def _keyed_draw(shape, seed, key):
    def draw(kind, params, substream=0):
        out = torch.empty(shape, dtype=torch.float64)
        return fill_keyed_(out, kind, params, seed=seed, key=key, substream=substream)
    return draw


def _generator_draw(shape, generator):
    def draw(kind, params, substream=0):
        out = torch.empty(shape, dtype=torch.float64)
        if kind == "normal":
            return out.normal_(params[0], params[1], generator=generator)
        return out.uniform_(params[0], params[1], generator=generator)
    return draw


def _check_same(spec, old, shape, dtype):
    for seed in (0, 11):
        want = torch.empty(shape, dtype=dtype).copy_(old(spec, shape, _keyed_draw(shape, seed,
                                                                                   "layer.w")))
        got = spec.fill_(torch.empty(shape, dtype=dtype), seed=seed, key="layer.w")
        assert torch.equal(got, want), (spec, shape, dtype, "keyed", seed)
        g = torch.Generator().manual_seed(seed)
        want = torch.empty(shape, dtype=dtype).copy_(old(spec, shape, _generator_draw(shape, g)))
        got = spec.fill_(torch.empty(shape, dtype=dtype),
                         generator=torch.Generator().manual_seed(seed))
        assert torch.equal(got, want), (spec, shape, dtype, "generator", seed)


SPARSE_SHAPES = [(1, 1), (5, 3), (64, 7), (7, 64), (1000, 600), (2**18 + 3, 2)]


@pytest.mark.parametrize("shape", SPARSE_SHAPES, ids=str)
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_sparse_matches_the_argsort_implementation(shape, sparsity):
    # (1000, 600) takes three column blocks, (2**18 + 3, 2) one column per block.
    for dtype in (DTYPES if shape[0] * shape[1] < 10_000 else [torch.float32]):
        _check_same(wi.Sparse(sparsity, std=0.5), _old_sparse, shape, dtype)


def test_sparse_breaks_ties_by_row_like_a_stable_argsort():
    from weightinit.schemes._structured import _smallest_per_column
    g = torch.Generator().manual_seed(0)
    u = torch.randint(0, 4, (50, 30), generator=g).float() / 4  # four values: ties everywhere
    for k in (1, 7, 25, 49, 50):
        order = u.argsort(dim=0, stable=True)[:k]
        want = torch.zeros(u.shape, dtype=torch.bool).scatter_(0, order, True)
        assert torch.equal(_smallest_per_column(u, k), want), k


def test_a_sparse_shard_is_the_slice_of_the_whole():
    spec = wi.Sparse(0.7, std=1.0)
    whole = spec.fill_(torch.empty(300, 40), key="s", seed=2)
    part = spec.fill_(torch.empty(300, 20), key="s", seed=2, global_shape=(300, 40),
                      offset=(0, 10))
    assert torch.equal(part, whole[:, 10:30])
    rows = spec.fill_(torch.empty(100, 40), key="s", seed=2, global_shape=(300, 40),
                      offset=(150, 0))
    assert torch.equal(rows, whole[150:250])


ZERO_SHAPES = [(5, 3), (3, 5), (8, 8), (17, 4), (2, 1), (1, 2), (6, 2, 3, 3), (2, 6, 3),
               (9, 5, 2), (2**17 + 5, 2)]


@pytest.mark.parametrize("shape", ZERO_SHAPES, ids=str)
def test_zero_matches_the_full_matrix_implementation(shape):
    # (2**17 + 5, 2) is written in two pieces of rows.
    for dtype in (DTYPES if math.prod(shape) < 10_000 else [torch.float32]):
        _check_same(wi.ZerO(), _old_zero, shape, dtype)


def test_zero_std_matches_the_full_matrix_std():
    # Compared as variances: the old float sums cancel to ~1e-16 where the variance is 0 (a
    # single column of c), which the square root turns into 1e-8; the closed form gives 0.
    for out in range(1, 40):
        for inp in range(1, 40, 3):
            for rf in (1, 9):
                fans = wi.Fans(inp * rf, out * rf, rf)
                assert wi.ZerO().std_for(fans) ** 2 == pytest.approx(
                    _old_zero_std(fans) ** 2, rel=1e-12, abs=1e-15), fans


def test_the_hadamard_sum_is_exact():
    from weightinit.schemes._structured import _hadamard_sum
    full = _old_hadamard_block(64, 64)
    for rows in range(65):
        for cols in range(65):
            assert _hadamard_sum(rows, cols) == int(full[:rows, :cols].sum()), (rows, cols)


def test_zero_std_for_a_matrix_too_large_to_build():
    # 2**61 elements (16 EiB in float64): only a closed form answers. out = 2**31 > in = 2**30,
    # so the matrix is c H[:, :in] with c^2 = 2^-30: mean square 2^-30, and a mean of
    # c * 2^31 / 2^61 (only the first column is unbalanced) whose square is 2^-92: negligible.
    fans = wi.Fans(2**30, 2**31)
    std = wi.ZerO().std_for(fans)
    assert std == pytest.approx(2.0**-15, rel=1e-6)
    # A dry-run plan of a meta Linear(20000, 20000) asks for this (the partial identity):
    assert wi.ZerO().std_for(wi.Fans(20000, 20000)) == pytest.approx(
        math.sqrt(1 / 20000 - 1 / 20000**2), rel=1e-12)


ORTHOGONAL_CASES = [(wi.Orthogonal(), (5, 3)), (wi.Orthogonal(), (3, 5)),
                    (wi.Orthogonal(1.5), (4, 4)), (wi.Orthogonal(), (6, 2, 3)),
                    (wi.Orthogonal(blocks=2), (8, 3)), (wi.Orthogonal(0.5, blocks=3), (6, 4, 2)),
                    (wi.Orthogonal(blocks=4), (4, 9))]


@pytest.mark.parametrize(("spec", "shape"), ORTHOGONAL_CASES, ids=str)
def test_orthogonal_matches_the_concatenating_implementation(spec, shape):
    for dtype in DTYPES:
        _check_same(spec, _old_orthogonal, shape, dtype)


@pytest.mark.parametrize("shape", [(6, 4, 3), (4, 6, 3, 3), (5, 5, 1, 2)], ids=str)
def test_delta_orthogonal_matches_the_old_implementation(shape):
    for dtype in DTYPES:
        _check_same(wi.DeltaOrthogonal(1.3), _old_delta, shape, dtype)
