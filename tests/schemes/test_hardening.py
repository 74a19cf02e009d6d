"""Hardening of `Spec.fill_` and `std_for` against what an adversarial fuzzer found (issue 14):
values that overflow the destination dtype, tensors that cannot be written in place, arguments
of odd types or sizes, user subclasses that define too little. Every refusal is an InitError
with a message that names the problem, and the tensor is bit-identical before and after."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

import weightinit as wi

F16_MAX = torch.finfo(torch.float16).max
F32_MAX = torch.finfo(torch.float32).max


def _bits(t: torch.Tensor) -> bytes:
    """The tensor's stored bytes (a bit-for-bit comparison that also sees NaN payloads)."""
    return t.detach().contiguous().view(torch.uint8).numpy().tobytes()


def _refused(spec: wi.Spec, tensor: torch.Tensor, match: str, **kwargs) -> None:
    """`spec.fill_(tensor, **kwargs)` raises InitError matching `match`; tensor unchanged."""
    before = _bits(tensor)
    with pytest.raises(wi.InitError, match=match):
        spec.fill_(tensor, **kwargs)
    assert _bits(tensor) == before, "a refused fill changed the tensor"


# --- values beyond the destination dtype's range ---------------------------------------------
OVERFLOWS = [
    ("blockconstant-f16", wi.BlockConstant((1e5,)), (4, 4), torch.float16),
    ("blockconstant-mixed-f16", wi.BlockConstant((0.0, -7e4)), (4, 4), torch.float16),
    ("uniform-f16", wi.Uniform(-1e5, 1e5), (4, 4), torch.float16),
    ("identity-f16", wi.Identity(gain=1e5), (4, 4), torch.float16),
    ("normal-f32", wi.Normal(std=1e39), (4, 4), torch.float32),
    ("normal-mean-f16", wi.Normal(std=1.0, mean=7e4), (4, 4), torch.float16),
    ("normal-f64", wi.Normal(std=1e308), (4, 4), torch.float64),
    ("normal-bf16", wi.Normal(std=1e38), (4, 4), torch.bfloat16),
    ("truncated-f16", wi.TruncatedNormal(std=4e4), (4, 4), torch.float16),
    ("truncated-f64", wi.TruncatedNormal(std=1.7e308), (4, 4), torch.float64),
    ("variance-scaling-f32", wi.VarianceScaling(scale=1e300), (4, 4), torch.float32),
    ("glorot-f16", wi.Glorot(gain=1e6), (4, 4), torch.float16),
    ("orthogonal-f16", wi.Orthogonal(gain=1e6), (4, 4), torch.float16),
    ("delta-orthogonal-f16", wi.DeltaOrthogonal(gain=1e6), (4, 4, 3), torch.float16),
    ("sparse-f32", wi.Sparse(0.5, std=1e300), (8, 4), torch.float32),
    ("constant-f16", wi.Constant(1e5), (4, 4), torch.float16),
]


@pytest.mark.parametrize(("spec", "shape", "dtype"), [c[1:] for c in OVERFLOWS],
                         ids=[c[0] for c in OVERFLOWS])
@pytest.mark.parametrize("how", ["keyed", "generator"])
def test_values_beyond_the_dtype_are_refused_and_nothing_changes(spec, shape, dtype, how):
    kwargs = ({"key": "w", "seed": 3} if how == "keyed"
              else {"generator": torch.Generator().manual_seed(3)})
    tensor = torch.full(shape, 0.5, dtype=dtype)
    _refused(spec, tensor, rf"{dtype}|range|overflows", **kwargs)


def test_the_refusal_names_the_spec_the_reach_and_the_range():
    tensor = torch.zeros(4, 4, dtype=torch.float16)
    with pytest.raises(wi.InitError) as info:
        wi.Uniform(-1e5, 1e5).fill_(tensor, key="w")
    message = str(info.value)
    for part in ("Uniform(low=-100000.0, high=100000.0)", "1e+05", "torch.float16", "6.55e+04",
                 "inf", "unchanged"):
        assert part in message, (part, message)


def test_a_shard_of_a_joint_tensor_is_refused_like_the_whole():
    # Every shard decides as the whole does, even one whose own values would fit: a sharded
    # fill is then refused on every rank or on none.
    spec = wi.BlockConstant((0.5, 1e5))
    _refused(spec, torch.zeros(4, 3, dtype=torch.float16), "float16", key="w")
    for offset in ((0, 0), (2, 0)):  # block 0 alone (0.5) and block 1 alone (1e5)
        _refused(spec, torch.zeros(2, 3, dtype=torch.float16), "float16", key="w",
                 global_shape=(4, 3), offset=offset)
    _refused(wi.Identity(gain=1e5), torch.zeros(2, 4, dtype=torch.float16), "float16", key="w",
             global_shape=(4, 4), offset=(1, 0))


@pytest.mark.parametrize(("spec", "dtype"), [
    (wi.Uniform(-F16_MAX, F16_MAX), torch.float16),  # the bound itself is representable
    (wi.Constant(F16_MAX), torch.float16),
    (wi.BlockConstant((F16_MAX, -F16_MAX)), torch.float16),
    (wi.Normal(std=F16_MAX / 6.7), torch.float16),  # just inside |mean| + 6.67 std
    (wi.TruncatedNormal(std=1e4), torch.float16),  # +-2 sigma = 2.27e4
    (wi.Normal(std=F32_MAX / 7.0), torch.float32),
])
@pytest.mark.parametrize("how", ["keyed", "generator"])
def test_values_up_to_the_dtypes_largest_are_written_and_finite(spec, dtype, how):
    kwargs = ({"key": "w"} if how == "keyed"
              else {"generator": torch.Generator().manual_seed(0)})
    tensor = spec.fill_(torch.zeros(64, 64, dtype=dtype), **kwargs)
    assert bool(torch.isfinite(tensor).all())


def test_a_generator_normal_near_the_range_is_drawn_aside_with_the_same_values():
    # |mean| + 6.67 std fits float32 but |mean| + 40 std does not: the values are drawn into a
    # temporary and checked before the copy; they are the generator's values all the same.
    spec = wi.Normal(std=F32_MAX / 10)
    got = spec.fill_(torch.zeros(32, 32), generator=torch.Generator().manual_seed(5))
    want = torch.zeros(32, 32).normal_(0.0, F32_MAX / 10, generator=torch.Generator()
                                       .manual_seed(5))
    assert torch.equal(got, want)
    assert bool(torch.isfinite(got).all())


# --- tensors that cannot be written in place --------------------------------------------------
SPECS = [wi.Zeros(), wi.Normal(0.5), wi.He(), wi.TruncatedNormal(0.1), wi.Orthogonal(),
         wi.Identity(), wi.Sparse(0.5), wi.ZerO(), wi.BlockConstant((1.0, 2.0))]


def _kwargs(how: str) -> dict:
    return {"key": "w"} if how == "keyed" else {"generator": torch.Generator().manual_seed(1)}


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize("how", ["keyed", "generator"])
def test_an_expanded_view_is_refused_and_its_memory_unchanged(spec, how):
    base = torch.arange(4.0).reshape(1, 4)
    before = _bits(base)
    with pytest.raises(wi.InitError, match="expanded view"):
        spec.fill_(base.expand(4, 4), **_kwargs(how))
    assert _bits(base) == before


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize("how", ["keyed", "generator"])
def test_an_overlapping_strided_view_is_refused(spec, how):
    base = torch.arange(8.0)
    before = _bits(base)
    with pytest.raises(wi.InitError, match="repeats memory"):
        spec.fill_(base.as_strided((4, 4), (1, 1)), **_kwargs(how))
    assert _bits(base) == before


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize("how", ["keyed", "generator"])
def test_an_inference_tensor_outside_inference_mode_is_refused(spec, how):
    with torch.inference_mode():
        frozen = torch.full((4, 4), 3.0)
    before = _bits(frozen)
    with pytest.raises(wi.InitError, match="inference_mode"):
        spec.fill_(frozen, **_kwargs(how))
    assert _bits(frozen) == before
    with torch.inference_mode():  # inside it, the same tensor fills
        spec.fill_(frozen, **_kwargs(how))


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_a_sparse_tensor_is_refused(spec, layout):
    dense = torch.eye(4) * 3
    sparse = dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()
    for how in ("keyed", "generator"):
        with pytest.raises(wi.InitError, match=r"layout torch\.sparse"):
            spec.fill_(sparse, **_kwargs(how))
        assert torch.equal(sparse.to_dense(), dense)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_a_nested_tensor_is_refused(spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested tensors are a prototype and say so
        nested = torch.nested.nested_tensor([torch.ones(2, 4), torch.ones(3, 4)])
    for how in ("keyed", "generator"):
        with pytest.raises(wi.InitError, match="nested tensor"):
            spec.fill_(nested, **_kwargs(how))
    assert all(bool((part == 1).all()) for part in nested.unbind())


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_a_meta_tensor_is_refused_on_every_path(spec):
    for how in ("keyed", "generator"):
        with pytest.raises(wi.InitError, match="meta device"):
            spec.fill_(torch.empty(4, 4, device="meta"), **_kwargs(how))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_generator_of_another_device_is_refused():
    tensor = torch.full((4, 4), 2.0)
    _refused(wi.Normal(), tensor, "generator of its device",
             generator=torch.Generator(device="cuda"))


# --- odd arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("fans", [(10**400, 1), (2**62, 1), (1, 2**70), (True, 2), (1.5, 2),
                                  (-1, 2), (), (1,), (1, 2, 3, 4), "12", 7, np.array([3, 4])],
                         ids=repr)
def test_odd_fans_are_refused_and_the_tensor_unchanged(fans):
    tensor = torch.full((4, 4), 2.0)
    for spec in (wi.He(), wi.Glorot(), wi.Orthogonal(), wi.Normal()):
        _refused(spec, tensor, "`fans` must be", key="w", fans=fans)
    for spec in (wi.He(), wi.Orthogonal(), wi.ZerO(), wi.Sparse(), wi.Identity()):
        with pytest.raises(wi.InitError, match="`fans` must be"):
            spec.std_for(fans)


def test_numpy_integers_are_fans_seeds_offsets_and_counts():
    fans = (np.int64(16), np.int32(8))
    assert wi.He().std_for(fans) == wi.He().std_for((16, 8))
    want = wi.He().fill_(torch.empty(8, 16), key="w", seed=7, fans=(16, 8))
    for seed in (np.int64(7), np.uint64(7), torch.tensor(7)):
        got = wi.He().fill_(torch.empty(8, 16), key="w", seed=seed, fans=fans)
        assert torch.equal(got, want), type(seed)
    whole = wi.Orthogonal().fill_(torch.empty(6, 4), key="q", seed=1)
    part = wi.Orthogonal().fill_(torch.empty(3, 4), key="q", seed=1,
                                 global_shape=(np.int64(6), np.int64(4)),
                                 offset=(np.int64(3), torch.tensor(0)))
    assert torch.equal(part, whole[3:])
    blocks = wi.Orthogonal(blocks=np.int64(2))
    assert type(blocks.blocks) is int and blocks == wi.Orthogonal(blocks=2)
    assert eval(repr(blocks), {"Orthogonal": wi.Orthogonal}) == blocks
    assert type(wi.Identity(groups=np.int32(2)).groups) is int


@pytest.mark.parametrize("seed", [True, np.bool_(True), -1, 2**63, np.uint64(2**63), 1.0, "3",
                                  10**400, torch.tensor(1.0)], ids=repr)
def test_bad_seeds_are_refused(seed):
    _refused(wi.Normal(), torch.full((3, 3), 2.0), "`seed` must be an int in", key="w",
             seed=seed)


@pytest.mark.parametrize(("global_shape", "offset"), [
    ((10**400, 3), (0, 0)), ((6, 3), (10**400, 0)), ((6, 3), (True, 0)), ((6, 3), (1.0, 0)),
    ("ab", None), ((6, 3), "ab"), ((6, -3), None), ((6,), (0,)),
])
def test_bad_regions_are_refused(global_shape, offset):
    for spec in (wi.Normal(), wi.Orthogonal()):
        _refused(spec, torch.full((3, 3), 2.0), "`global_shape`|`offset`", key="w",
                 global_shape=global_shape, offset=offset)


def test_a_key_with_a_lone_surrogate_is_refused_with_the_reason():
    tensor = torch.full((3, 3), 2.0)
    for spec in (wi.Normal(), wi.Orthogonal(), wi.Zeros()):
        _refused(spec, tensor, r"lone surrogate '\\udc80' at index 1", key="w\udc80x")


def test_huge_numbers_are_refused_not_overflowed():
    for build, match in [
        (lambda: wi.Normal(std=10**400), "`std` must be finite"),
        (lambda: wi.Uniform(-(10**400), 1.0), "`low` must be finite"),
        (lambda: wi.Glorot(gain=1e200), "`gain`"),
        (lambda: wi.VarianceScaling(scale=10**400), "`scale` must be finite"),
        (lambda: wi.BlockConstant((1.0, 10**400)), "`values` must be finite"),
        (lambda: wi.Orthogonal(blocks=10**400).fill_(torch.empty(4, 4)), "`blocks`"),
        (lambda: wi.Orthogonal(blocks=1.5), "`blocks` must be a positive int"),
    ]:
        with pytest.raises(wi.InitError, match=match) as info:
            build()
        assert len(str(info.value)) < 400, "the value is shown truncated"


def test_std_for_with_huge_gains_and_values_is_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from numpy either
        assert wi.BlockConstant((1e308, -1e308)).std_for() == 1e308
        assert wi.BlockConstant((0.0, 1.0)).std_for() == float(np.std([0.0, 1.0]))
        assert wi.BlockConstant((0.0,)).std_for() == 0.0
        std = wi.DeltaOrthogonal(gain=1e300).std_for(wi.Fans(27, 36, 9))
        assert std == pytest.approx(1e300 * math.sqrt(3 / (4 * 3 * 9)), rel=1e-15)


@pytest.mark.parametrize("spec", [wi.Orthogonal(), wi.Identity(), wi.ZerO(), wi.Sparse(),
                                  wi.DeltaOrthogonal()], ids=repr)
def test_joint_std_for_needs_the_plain_fans_of_a_tensor(spec):
    with pytest.raises(wi.InitError, match="multiples of receptive_field"):
        spec.std_for(wi.Fans(10, 9, 3))  # no (out, in, *kernel) tensor has these fans


def test_a_tiny_shard_of_a_huge_joint_tensor_is_refused_before_allocating():
    shard = torch.full((2, 4), 2.0)
    for spec in (wi.Orthogonal(), wi.ZerO(), wi.Identity(), wi.Sparse(), wi.BlockConstant()):
        _refused(spec, shard, r"builds the whole logical tensor .* GiB, more than", key="w",
                 global_shape=(2**20, 2**20), offset=(2**19, 0))


# --- user subclasses and serialized input -----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Bare(wi.Spec):
    """Defines nothing."""


@dataclasses.dataclass(frozen=True)
class BadShape(wi.Spec):
    def std_for(self, fans=None):
        return 1.0

    def _full(self, shape, fans, draw):
        return torch.zeros(2, 2, dtype=torch.float64)


@dataclasses.dataclass(frozen=True)
class Failing(wi.Spec):
    def std_for(self, fans=None):
        return 1.0

    def _full(self, shape, fans, draw):
        raise RuntimeError("boom")


@dataclasses.dataclass(frozen=True)
class BadDistribution(wi.Spec):
    def std_for(self, fans=None):
        return 1.0

    def _distribution(self, fans):
        return "cauchy", (0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class NaNValues(wi.Spec):
    def std_for(self, fans=None):
        return 1.0

    def _full(self, shape, fans, draw):
        return torch.full(shape, math.nan, dtype=torch.float64)


@pytest.mark.parametrize(("spec", "match"), [
    (Bare(), r"Bare defines none of _constant\(\), _distribution\(fans\) or _full"),
    (BadShape(), r"_full must return a dense real tensor of the logical shape \(3, 3\)"),
    (Failing(), r"Building Failing\(\) over the whole .* RuntimeError: boom"),
    (BadDistribution(), r"`kind` must be one of"),
    (NaNValues(), r"up to \+-nan"),
])
@pytest.mark.parametrize("how", ["keyed", "generator"])
def test_user_subclasses_that_cannot_fill_are_refused(spec, match, how):
    _refused(spec, torch.full((3, 3), 2.0), match, **_kwargs(how))


def test_a_subclass_without_std_for_says_so():
    with pytest.raises(wi.InitError, match=r"Bare does not define std_for\(fans\)"):
        Bare().std_for(wi.Fans(3, 3))


def test_deeply_nested_spec_from_dict_input_is_refused_briefly():
    data: object = 0.1
    for _ in range(50_000):
        data = {"type": "Normal", "std": data}
    with pytest.raises(wi.InitError) as info:
        wi.spec_from_dict(data)
    assert len(str(info.value)) < 400
    deep: object = []
    for _ in range(50_000):
        deep = [deep]
    for bad in ({"type": deep}, deep, {"type": "BlockConstant", "values": deep}):
        with pytest.raises(wi.InitError):
            wi.spec_from_dict(bad)


def test_concurrent_orthogonal_fills_leave_the_thread_count_as_it_was():
    # Each QR runs on one thread and puts torch's (process-wide) count back: under the library
    # lock, so two threads cannot restore each other's count in the wrong order.
    import threading
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        want = wi.Orthogonal().fill_(torch.empty(24, 16), key="w")
        results: list[bool] = []

        def work() -> None:
            for _ in range(20):
                got = wi.Orthogonal().fill_(torch.empty(24, 16), key="w")
                results.append(torch.equal(got, want))

        workers = [threading.Thread(target=work) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert all(results) and len(results) == 40
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
