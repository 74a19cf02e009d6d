"""Property-based fuzzing of the specs: building them from awkward arguments, `std_for`,
serialization, and `fill_` on awkward tensors with awkward arguments.

Every call either succeeds, with values that are finite, inside the spec's support and the
same bits when repeated, or raises `InitError` leaving the tensor (bits, layout, grad) and the
process (RNG states, warning filters, grad mode, ...) exactly as they were."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from typing import Any

import fuzz_strategies as fs
import numpy as np
import pytest
import torch
from fuzz_snapshot import Snapshot, tensor_state
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

import weightinit as wi
from weightinit.theory import ACTIVATION_NAMES, LAYOUTS, infer_fans

NAMESPACE = {name: getattr(wi, name) for name in wi.__all__}
T, F = fs.TensorRecipe, fs.FillArgs
# The @example cases are what this suite found (kept as regressions; they run in every
# profile, before the generated ones).


def test_every_public_spec_is_fuzzed():
    public = {v for v in NAMESPACE.values()
              if isinstance(v, type) and issubclass(v, wi.Spec) and v is not wi.Spec}
    assert public == set(fs.SPEC_CLASSES), public ^ set(fs.SPEC_CLASSES)


# --- building specs --------------------------------------------------------------------------
@given(fs.spec_arguments())
@example((wi.Orthogonal, {"blocks": np.int64(3)}))  # kept np.int64: repr and JSON broke
@example((wi.Identity, {"groups": np.int64(3)}))
def test_a_spec_builds_or_refuses_and_round_trips(args):
    cls, kwargs = args
    before = Snapshot.take()
    try:
        spec = cls(**kwargs)
    except wi.InitError as exc:
        message = str(exc)
        assert message.strip(), "an InitError without a message"
        before.assert_same(Snapshot.take(), f"{cls.__name__}(**{kwargs!r}) refused")
        return
    before.assert_same(Snapshot.take(), f"{cls.__name__}(**{kwargs!r})")
    for f in dataclasses.fields(spec):  # normalized: floats are finite floats, not bools
        value = getattr(spec, f.name)
        assert not isinstance(value, bool) or f.name in ("activation",), (f.name, value)
        if isinstance(value, float):
            assert math.isfinite(value), (f.name, value)
    assert eval(repr(spec), dict(NAMESPACE)) == spec, repr(spec)
    data = spec.to_dict()
    assert wi.spec_from_dict(data) == spec
    assert wi.spec_from_dict(json.loads(json.dumps(data, allow_nan=False))) == spec
    assert hash(spec) == hash(wi.spec_from_dict(data))


spec_dicts = st.one_of(
    st.builds(lambda ck, extra: {"type": ck[0].__name__, **ck[1], **extra}, fs.spec_arguments(),
              st.dictionaries(st.sampled_from(["std", "gain", "bogus", "type2", "values"]),
                              fs.weird_values, max_size=2)),
    st.dictionaries(st.sampled_from(["type", "std", "mean"]),
                    st.one_of(fs.weird_values, st.sampled_from(["Normal", "normal", "Spec",
                                                                "_Fixed", "_Preset"])),
                    max_size=3),
    fs.weird_values,
)


@given(spec_dicts)
def test_spec_from_dict_builds_or_refuses(data):
    before = Snapshot.take()
    try:
        spec = wi.spec_from_dict(data)
    except wi.InitError:
        before.assert_same(Snapshot.take(), f"spec_from_dict({data!r}) refused")
        return
    assert isinstance(spec, wi.Spec) and type(spec).__name__ == data["type"]
    assert wi.spec_from_dict(spec.to_dict()) == spec


@given(fs.specs(), fs.fans_values)
@example(wi.ZerO(), (1, 1, 2))  # ZeroDivisionError
@example(wi.ZerO(), (2**62, 1))  # RuntimeError from torch.eye
@example(wi.ZerO(), (2**70, 2**70))  # ValueError from torch.eye
@example(wi.DeltaOrthogonal(), (8, 1, 8))  # fan_out not a multiple of the receptive field
@example(wi.Identity(), (4, 1, 4))
@example(wi.Sparse(0.9, 1.0), (34, 5, 8))
@example(wi.DeltaOrthogonal(gain=1.25e190), (1, 2, 2))  # OverflowError (gain**2)
@example(wi.LeCun(), (10**400, 3))  # OverflowError in fan_avg
@example(wi.Orthogonal(), (10**400, 3))
@example(wi.BlockConstant((1e300, 2.0)), (43, 20, 8))  # inf
def test_std_for_is_a_finite_std_or_refuses(spec, fans):
    before = Snapshot.take()
    try:
        std = spec.std_for(fans)
    except wi.InitError:
        before.assert_same(Snapshot.take(), f"{spec!r}.std_for({fans!r}) refused")
        return
    before.assert_same(Snapshot.take(), f"{spec!r}.std_for({fans!r})")
    assert isinstance(std, float) and math.isfinite(std) and std >= 0.0, std


# --- theory, which the specs are built on ----------------------------------------------------
@given(st.one_of(fs.shapes, st.lists(st.integers(-2, 2**40), max_size=5), fs.weird_values),
       fs.choice(tuple(LAYOUTS)), st.one_of(st.integers(-1, 4), fs.weird_values))
@example((6, 2, 3), "conv", np.int64(3))  # fan_out came back as np.int64
def test_compute_fans_gives_fans_or_refuses(shape, layout, groups):
    try:
        fans = wi.compute_fans(shape, layout, groups=groups)
    except wi.InitError:
        return
    for value in (fans.fan_in, fans.fan_out, fans.receptive_field):
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, fans


@given(fs.choice(ACTIVATION_NAMES), st.sampled_from(["forward", "backward", "torch", "fwd", 1]),
       st.one_of(st.none(), st.dictionaries(
           st.sampled_from(["negative_slope", "alpha", "beta", "threshold", "approximate",
                            "min_val", "max_val", "bogus"]),
           st.one_of(fs.number(-3.0, 3.0), st.sampled_from(["tanh", "none"])), max_size=2)))
@example("softplus", "forward", {"beta": 10**400})  # OverflowError
@example("celu", "backward", {"alpha": 1e300})  # RuntimeError from autograd's float conversion
def test_gain_is_positive_and_finite_or_refuses(activation, mode, params):
    before = Snapshot.take()
    try:
        value = wi.gain(activation, mode=mode, params=params)
    except wi.InitError:
        before.assert_same(Snapshot.take(), "gain refused")
        return
    before.assert_same(Snapshot.take(), "gain")
    assert isinstance(value, float) and math.isfinite(value) and value > 0, value


# --- fill_ -----------------------------------------------------------------------------------
def _rounded(value: float, dtype: torch.dtype) -> float:
    return float(torch.tensor(value, dtype=torch.float64).to(dtype).double())


def _check_support(spec: wi.Spec, values: torch.Tensor, dtype: torch.dtype) -> None:
    """Values (float64 copy of a filled tensor of `dtype`) lie in the spec's support."""
    if not values.numel():
        return
    constant = {wi.Zeros: 0.0, wi.Ones: 1.0}.get(type(spec))
    if isinstance(spec, wi.Constant):
        constant = spec.value
    if constant is not None:
        assert bool((values == _rounded(constant, dtype)).all()), (spec, values)
    low = high = None
    if isinstance(spec, wi.Uniform):
        low, high = spec.low, spec.high
    if isinstance(spec, wi.TruncatedNormal):
        slack = 8 * 2.0**-52 * (abs(spec.mean) + max(abs(spec.a), abs(spec.b)) * spec.sigma)
        low = spec.mean + spec.a * spec.sigma - slack
        high = spec.mean + spec.b * spec.sigma + slack
    if low is not None and high is not None:
        lo, hi = _rounded(low, dtype), _rounded(high, dtype)
        assert float(values.min()) >= lo and float(values.max()) <= hi, (
            spec, dtype, float(values.min()), float(values.max()), lo, hi)


def _fill(spec: wi.Spec, tensor: torch.Tensor, args: fs.FillArgs, inside: bool) -> Any:
    with torch.inference_mode(inside):
        return spec.fill_(tensor, **args.kwargs())


@st.composite
def fill_cases(draw):
    recipe = draw(fs.tensor_recipes())
    return draw(fs.specs()), recipe, draw(fs.fill_args(recipe.shape))


@given(fill_cases())
# RuntimeError: inplace update to an inference tensor (keyed constant, joint, generator paths)
@example((wi.Zeros(), T((), torch.float16, inference="created"), F(key="weight")))
@example((wi.ZerO(), T((2, 1, 4, 3), torch.float64, "narrow", inference="created"),
          F(generator_seed=5)))
@example((wi.Uniform(), T((), torch.float16, "narrow", inference="created"), F(generator_seed=2)))
# RuntimeError: more than one element of the written-to tensor refers to one memory location
@example((wi.Identity(), T((2, 3), view="expand"), F(generator_seed=2)))
@example((wi.Glorot(distribution="normal"), T((5,), view="expand"),
          F(generator_seed=5, fans=(60, 39))))
# inf values instead of a refusal: overflow of the target dtype
@example((wi.Orthogonal(gain=1e300), T((1, 5, 5, 4), view="channels_last"), F(generator_seed=4)))
@example((wi.Normal(std=1e10), T((4, 4), torch.float16), F(key="w")))
def test_fill_succeeds_with_good_values_or_refuses_and_changes_nothing(case):
    spec, recipe, args = case
    tensor = recipe.build()
    inside = recipe.inference == "inside"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        before = Snapshot.take(tensors={"t": tensor})
        try:
            out = _fill(spec, tensor, args, inside)
        except wi.InitError as exc:
            assert str(exc).strip()
            before.assert_same(Snapshot.take(tensors={"t": tensor}), "refused fill")
            event("fill_: refused")
            return
        event("fill_: succeeded" + ("" if tensor.numel() else " (empty)"))
        global_stream = not args.keyed and args.generator_seed is None
        after = Snapshot.take(tensors={"t": tensor})
    assert out is tensor
    # the layout, requires_grad and grad are the tensor's; only its values may change (and the
    # global generator, when it was the source)
    assert tensor_state(tensor)[:-1] == before.parts["tensor t"][:-1]
    before.assert_same(after, "fill", ignore=("tensor t",) + (("torch rng",) if global_stream
                                                                else ()))
    assert after.parts["tensor t grad"] == before.parts["tensor t grad"]
    if recipe.meta:
        return
    values = tensor.detach().double()
    assert bool(torch.isfinite(values).all()), f"non-finite values in {recipe.dtype}: {values}"
    _check_support(spec, values, recipe.dtype)
    if global_stream:
        return
    again = recipe.build()  # the same call on an identical tensor: the same bits
    _fill(spec, again, args, inside)
    assert tensor_state(again) == tensor_state(tensor), "a repeated fill gave other bits"
    if args.global_shape is not None and recipe.view != "expand":
        whole = torch.empty(tuple(args.global_shape), dtype=recipe.dtype)
        whole_args = dataclasses.replace(args, global_shape=None, offset=None)
        _fill(spec, whole, whole_args, False)
        offset = args.offset or (0,) * len(recipe.shape)
        part = whole[tuple(slice(o, o + n) for o, n in zip(offset, recipe.shape, strict=True))]
        assert tensor_state(part.contiguous())[-1] == tensor_state(tensor.contiguous())[-1], (
            "the region is not that slice of the whole")


@st.composite
def shard_cases(draw):
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple))
    dim = draw(st.integers(0, len(shape) - 1))
    cut = draw(st.integers(0, shape[dim]))
    key = draw(st.text(max_size=8))
    seed = draw(st.integers(0, 2**63 - 1))
    dtype = draw(st.sampled_from(fs.FLOATING))
    fans = draw(st.one_of(st.none(), st.tuples(st.integers(1, 9), st.integers(1, 9))))
    return draw(fs.specs()), shape, dim, cut, key, seed, dtype, fans


@given(shard_cases())
# the whole (and the shard holding 1e300) is refused for bfloat16, the other shard is filled
@example((wi.BlockConstant(values=(0.25, 1e300, 1.0, 0.5)), (4,), 0, 2, "k", 58, torch.bfloat16,
          None))
def test_keyed_shards_are_slices_of_the_whole_on_every_backend(case):
    spec, shape, dim, cut, key, seed, dtype, fans = case
    whole = torch.empty(shape, dtype=dtype)
    kwargs: dict[str, Any] = {"key": key, "seed": seed, "fans": fans}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wi.InitWarning)
        try:
            spec.fill_(whole, **kwargs)
        except wi.InitError:
            whole = None
        for lo, hi in ((0, cut), (cut, shape[dim])):
            local = list(shape)
            local[dim] = hi - lo
            offset = [0] * len(shape)
            offset[dim] = lo
            shard = torch.full(local, 7.0, dtype=dtype)
            if whole is None:  # the whole is refused: so is every non-empty shard of it
                if shard.numel():
                    with pytest.raises(wi.InitError):
                        spec.fill_(shard, global_shape=shape, offset=offset, **kwargs)
                    assert bool((shard == 7.0).all())
                continue
            spec.fill_(shard, global_shape=shape, offset=offset, **kwargs)
            assert tensor_state(shard)[-1] == tensor_state(whole.narrow(dim, lo, hi - lo)
                                                           .contiguous())[-1]
        if whole is not None:
            eager = spec.fill_(torch.empty(shape, dtype=dtype), backend="eager", **kwargs)
            assert tensor_state(eager)[-1] == tensor_state(whole)[-1], "eager != numba"


# --- the std a spec claims -------------------------------------------------------------------
_JOINT = (wi.Orthogonal, wi.DeltaOrthogonal)  # std_for is their RMS: exact, not sampled


@given(fs.specs(), st.tuples(st.integers(16, 48), st.integers(16, 48),
                             st.sampled_from([(), (1,), (3,), (1, 3)])),
       st.integers(0, 2**32))
def test_std_for_matches_the_filled_values(spec, dims, seed):
    out, inp, kernel = dims
    shape = (out, inp, *kernel)
    if isinstance(spec, wi.Sparse):
        shape = (out, inp)
    tensor = torch.empty(shape, dtype=torch.float64)
    try:
        spec.fill_(tensor, key="w", seed=seed)
        claimed = spec.std_for(infer_fans(shape))
    except wi.InitError:
        return
    assert math.isfinite(claimed), f"{spec!r}.std_for gives {claimed}"
    # Values of order 1e-308 and below are subnormal: quantized to multiples of 5e-324, their
    # spread is not the distribution's.
    assume(claimed == 0.0 or claimed > 1e-290)
    # Measured in units of the largest value: squares of values below 1e-154 (or above
    # 1e154) would underflow (overflow) in float64.
    unit = float(tensor.abs().max()) or 1.0
    tensor, claimed_unit = tensor / unit, claimed / unit
    mean = float(tensor.mean())
    assume(abs(mean) < 1e6 * max(claimed_unit, 1e-300))  # float64 rounding of the mean rules
    centred = tensor - mean
    n = tensor.numel()
    claimed = claimed_unit
    if isinstance(spec, (*_JOINT, wi.Sparse)):
        measured = float(tensor.pow(2).mean().sqrt())  # their claim is the RMS
    else:
        measured = float(centred.pow(2).mean().sqrt())
    if isinstance(spec, (*_JOINT, wi.Identity, wi.ZerO, wi.BlockConstant, wi.Zeros, wi.Ones,
                         wi.Constant)):
        tolerance = 1e-9 * claimed  # deterministic sums of squares
    else:
        # Sampling error of a std from n i.i.d. values: sd(s)/sigma ~ sqrt((kurtosis - 1)/(4n));
        # kurtosis estimated from the sample (Sparse: of its nonzero entries, the rest fixed).
        values = tensor[tensor != 0] if isinstance(spec, wi.Sparse) else centred
        m2 = float(values.pow(2).mean()) if values.numel() else 0.0
        kurtosis = float(values.pow(4).mean()) / (m2 * m2) if m2 > 0 else 3.0
        count = max(values.numel(), 1)
        tolerance = 6 * claimed * math.sqrt(max(kurtosis - 1, 0.5) / (4 * count))
    tolerance += 1e-12 * abs(mean)  # float64 rounding of the mean itself
    assert abs(measured - claimed) <= tolerance, (
        f"{spec!r} on {shape}: std_for says {claimed * unit}, {n} values measure "
        f"{measured * unit} (tolerance {tolerance * unit})")
