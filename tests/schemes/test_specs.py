"""Specs as values: exact preset formulas, serialization, and refusal of bad inputs.

Every refusal is a wi.InitError whose message names the argument, and a refused fill leaves the
tensor exactly as it was.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

import weightinit as wi
from weightinit.schemes import truncated_std_factor

FANS = [wi.Fans(512, 256), wi.Fans(288, 576, 9), wi.Fans(3, 7), wi.Fans(144, 288, 9)]
FAN_IDS = [f"in{f.fan_in}-out{f.fan_out}" for f in FANS]
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


# --- the presets are exact -----------------------------------------------------------------------
def test_aliases_are_the_same_classes():
    assert wi.Kaiming is wi.He
    assert wi.Xavier is wi.Glorot
    assert wi.schemes.truncated_std_factor is truncated_std_factor


@pytest.mark.parametrize("fans", FANS, ids=FAN_IDS)
def test_he(fans):
    for distribution in DISTRIBUTIONS:
        assert wi.He(distribution=distribution).std_for(fans) == pytest.approx(
            math.sqrt(2 / fans.fan_in), rel=1e-15)
        assert wi.He(mode="fan_out", distribution=distribution).std_for(fans) == pytest.approx(
            math.sqrt(2 / fans.fan_out), rel=1e-15)
    for activation in ("tanh", "gelu", "selu", "leaky_relu", "linear"):
        assert wi.He(activation).std_for(fans) == pytest.approx(
            wi.gain(activation) / math.sqrt(fans.fan_in), rel=1e-14), activation
    assert wi.He("tanh").std_for(fans) == pytest.approx(1.592537 / math.sqrt(fans.fan_in), rel=1e-6)
    assert wi.Kaiming().std_for(fans) == wi.He().std_for(fans)


@pytest.mark.parametrize("fans", FANS, ids=FAN_IDS)
def test_glorot(fans):
    total = fans.fan_in + fans.fan_out
    for distribution in DISTRIBUTIONS:
        assert wi.Glorot(distribution).std_for(fans) == pytest.approx(math.sqrt(2 / total),
                                                                      rel=1e-15)
        assert wi.Glorot(distribution, gain=3.0).std_for(fans) == pytest.approx(
            3.0 * math.sqrt(2 / total), rel=1e-15)
    # The uniform bound is sqrt(3) std: gain * sqrt(6 / (fan_in + fan_out)).
    assert math.sqrt(3) * wi.Glorot().std_for(fans) == pytest.approx(math.sqrt(6 / total),
                                                                     rel=1e-15)
    assert wi.Glorot().distribution == "uniform"


def test_glorot_uniform_samples_reach_but_never_exceed_the_bound():
    shape = (256, 512)
    bound = math.sqrt(6 / (256 + 512))
    t = wi.Glorot().fill_(torch.empty(shape, dtype=torch.float64), key="w")
    assert float(t.abs().max()) <= bound
    assert float(t.abs().max()) > 0.999 * bound
    assert float(t.min()) < -0.999 * bound


@pytest.mark.parametrize("fans", FANS, ids=FAN_IDS)
def test_lecun(fans):
    for distribution in DISTRIBUTIONS:
        assert wi.LeCun(distribution).std_for(fans) == pytest.approx(
            1 / math.sqrt(fans.fan_in), rel=1e-15)


@pytest.mark.parametrize("fans", FANS, ids=FAN_IDS)
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_variance_scaling_modes(fans, distribution):
    n = {"fan_in": fans.fan_in, "fan_out": fans.fan_out,
         "fan_avg": (fans.fan_in + fans.fan_out) / 2}
    for scale in (0.1, 1.0, 2.0, 7.5):
        for mode, count in n.items():
            spec = wi.VarianceScaling(scale, mode, distribution)
            assert spec.std_for(fans) == pytest.approx(math.sqrt(scale / count), rel=1e-15), spec


@pytest.mark.parametrize("fans", FANS, ids=FAN_IDS)
def test_presets_are_variance_scaling(fans):
    for distribution in DISTRIBUTIONS:
        pairs = [
            (wi.He("gelu", "fan_out", distribution),
             wi.VarianceScaling(wi.gain("gelu") ** 2, "fan_out", distribution)),
            (wi.Glorot(distribution, gain=2.0),
             wi.VarianceScaling(4.0, "fan_avg", distribution)),
            (wi.LeCun(distribution), wi.VarianceScaling(1.0, "fan_in", distribution)),
        ]
        for preset, general in pairs:
            assert preset.std_for(fans) == pytest.approx(general.std_for(fans), rel=1e-14)
            a = preset.fill_(torch.empty(8, 6), fans=fans, key="w")
            b = general.fill_(torch.empty(8, 6), fans=fans, key="w")
            torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_fixed_specs_std():
    assert wi.Normal(0.02, mean=5.0).std_for() == 0.02
    assert wi.Uniform(-1.0, 2.0).std_for() == pytest.approx(3 / math.sqrt(12), rel=1e-15)
    assert wi.TruncatedNormal(0.3, a=-1.0, b=3.0).std_for() == 0.3
    assert wi.Zeros().std_for() == wi.Ones().std_for() == wi.Constant(4.0).std_for() == 0.0


@pytest.mark.parametrize("spec", [wi.He(), wi.Glorot(), wi.LeCun(), wi.VarianceScaling(),
                                  wi.Orthogonal(), wi.Identity(), wi.DeltaOrthogonal(),
                                  wi.Sparse(), wi.ZerO()], ids=repr)
def test_fan_based_std_needs_fans(spec):
    with pytest.raises(wi.InitError, match="fans"):
        spec.std_for(None)


def test_zero_std_is_allowed_where_documented():
    """Normal and TruncatedNormal accept std=0 (a constant at `mean`); Sparse does not."""
    assert torch.equal(wi.Normal(0.0, mean=2.0).fill_(torch.empty(5), key="w"),
                       torch.full((5,), 2.0))
    assert torch.equal(wi.TruncatedNormal(0.0, mean=-1.0).fill_(torch.empty(5), key="w"),
                       torch.full((5,), -1.0))


def test_far_upper_tail_interval_is_accepted():
    spec = wi.TruncatedNormal(std=1.0, a=10.0, b=12.0)
    t = spec.fill_(torch.empty(1000, dtype=torch.float64), key="w")
    assert float(t.min()) >= 10.0 * spec.sigma and float(t.max()) <= 12.0 * spec.sigma


@pytest.mark.parametrize(("a", "b"), [(12.0, 13.0), (-40.0, -39.0)])
def test_truncation_beyond_the_streams_range_is_refused_when_the_spec_is_built(a, b):
    # Refused up front, not late in a keyed fill: float32's normal CDF cannot hold it.
    with pytest.raises(wi.InitError, match="11 sigma"):
        wi.TruncatedNormal(a=a, b=b)


@pytest.mark.parametrize("width", [1e-6, 1e-7, 1e-9])
def test_too_narrow_truncation_is_refused(width):
    with pytest.raises(wi.InitError, match=r"`a`, `b`.*widen"):
        wi.TruncatedNormal(a=-width, b=width)


# --- serialization -------------------------------------------------------------------------------
SPECS = [
    wi.Zeros(), wi.Ones(), wi.Constant(), wi.Constant(-0.25),
    wi.Normal(), wi.Normal(0.02), wi.Normal(std=0.1, mean=-3.0),
    wi.Uniform(), wi.Uniform(-0.3, 0.7),
    wi.TruncatedNormal(), wi.TruncatedNormal(0.5, mean=0.1, a=-1.0, b=3.0),
    wi.VarianceScaling(), wi.VarianceScaling(2.0, "fan_out", "uniform"),
    wi.VarianceScaling(0.5, "fan_avg", "normal"),
    wi.He(), wi.He("tanh", "fan_out", "truncated_normal"), wi.Kaiming("gelu"),
    wi.Glorot(), wi.Glorot("normal", gain=2.0), wi.Xavier("truncated_normal"),
    wi.LeCun(), wi.LeCun("truncated_normal"),
    wi.Orthogonal(), wi.Orthogonal(1.5), wi.Identity(), wi.Identity(2.0, groups=4),
    wi.DeltaOrthogonal(), wi.DeltaOrthogonal(0.5), wi.Sparse(), wi.Sparse(0.25, std=0.1),
    wi.ZerO(),
]


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_repr_round_trips(spec):
    import weightinit

    again = eval(repr(spec), vars(weightinit))
    assert again == spec and type(again) is type(spec)
    assert hash(again) == hash(spec)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_dict_round_trips_through_json(spec):
    data = spec.to_dict()
    assert data["type"] == type(spec).__name__
    text = json.dumps(data)  # raises if not JSON-serializable
    assert wi.spec_from_dict(data) == spec
    assert wi.spec_from_dict(json.loads(text)) == spec


def test_specs_are_frozen_values():
    spec = wi.Normal(0.02)
    with pytest.raises(AttributeError):
        spec.mean = 1.0
    assert wi.Normal(1) == wi.Normal(1.0)
    assert wi.Uniform(0, 1) == wi.Uniform()
    assert wi.He() != wi.He("tanh")
    assert len({wi.Normal(0.02), wi.Normal(0.02), wi.Normal(0.03)}) == 2


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_every_field_is_a_constructor_argument_and_replace_works(spec):
    for field in dataclasses.fields(spec):
        again = dataclasses.replace(spec, **{field.name: getattr(spec, field.name)})
        assert again == spec and type(again) is type(spec)
    assert dataclasses.replace(wi.Normal(0.1), mean=1.0) == wi.Normal(std=0.1, mean=1.0)
    assert dataclasses.replace(wi.TruncatedNormal(0.5), b=3.0).b == 3.0
    assert dataclasses.replace(wi.Sparse(0.5), std=0.2) == wi.Sparse(0.5, std=0.2)
    with pytest.raises(wi.InitError, match="`std`"):  # replace validates like the constructor
        dataclasses.replace(wi.Normal(0.1), std=-1.0)


def test_presets_say_which_variance_scaling_they_are():
    assert wi.He("gelu", "fan_out", "uniform").variance_scaling() == wi.VarianceScaling(
        wi.gain("gelu") ** 2, "fan_out", "uniform")
    assert wi.Glorot("normal", gain=3.0).variance_scaling() == wi.VarianceScaling(
        9.0, "fan_avg", "normal")
    assert wi.LeCun().variance_scaling() == wi.VarianceScaling(1.0, "fan_in", "normal")
    # Their mode and distribution are checked once, by VarianceScaling, with its messages.
    for build in (lambda: wi.He(mode="fanin"), lambda: wi.VarianceScaling(mode="fanin")):
        with pytest.raises(wi.InitError, match=r"`mode` must be one of.*Did you mean 'fan_in'"):
            build()


def test_he_with_a_module_activation_is_serializable_or_refused():
    try:
        spec = wi.He(torch.nn.Tanh())
    except wi.InitError:
        return
    assert wi.spec_from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(("data", "match"), [
    ({"type": "Normall"}, r"`type` 'Normall'.*Did you mean 'Normal'\?"),
    ({"type": "Spec"}, r"`type` 'Spec'"),
    ({"std": 1.0}, r"`data`.*'type'"),
    ("Normal", r"`data`"),
    ({"type": "Normal", "sd": 1.0}, r"Normal.*'sd'"),
    ({"type": "Normal", "std": -1.0}, r"`std` must be >= 0"),
    ({"type": "VarianceScaling", "mode": "fanin"}, r"Did you mean 'fan_in'\?"),
])
def test_spec_from_dict_refuses_bad_data(data, match):
    with pytest.raises(wi.InitError, match=match):
        wi.spec_from_dict(data)


# --- bad arguments to constructors ---------------------------------------------------------------
NAN, INF = math.nan, math.inf
BAD_SPECS = [
    # (id, factory, match)
    ("normal-std-nan", lambda: wi.Normal(NAN), r"`std` must be finite"),
    ("normal-std-inf", lambda: wi.Normal(INF), r"`std` must be finite"),
    ("normal-std-neg", lambda: wi.Normal(-1.0), r"`std` must be >= 0, got -1.0"),
    ("normal-std-bool", lambda: wi.Normal(True), r"`std`.*bool"),
    ("normal-std-str", lambda: wi.Normal("abc"), r"`std` must be a real number"),
    ("normal-mean-inf", lambda: wi.Normal(1.0, mean=INF), r"`mean` must be finite"),
    ("constant-nan", lambda: wi.Constant(NAN), r"`value` must be finite"),
    ("constant-inf", lambda: wi.Constant(-INF), r"`value` must be finite"),
    ("uniform-equal", lambda: wi.Uniform(1.0, 1.0), r"`low` \(=1.0\) must be < `high`"),
    ("uniform-reversed", lambda: wi.Uniform(2.0, 1.0), r"`low` \(=2.0\) must be < `high`"),
    ("uniform-low-nan", lambda: wi.Uniform(NAN, 1.0), r"`low` must be finite"),
    ("uniform-high-inf", lambda: wi.Uniform(0.0, INF), r"`high` must be finite"),
    ("truncated-std-neg", lambda: wi.TruncatedNormal(-1.0), r"`std` must be >= 0"),
    ("truncated-std-nan", lambda: wi.TruncatedNormal(NAN), r"`std` must be finite"),
    ("truncated-a-eq-b", lambda: wi.TruncatedNormal(a=1.0, b=1.0), r"`a` \(=1.0\) must be < `b`"),
    ("truncated-a-gt-b", lambda: wi.TruncatedNormal(a=2.0, b=-2.0), r"`a` \(=2.0\) must be < `b`"),
    ("truncated-a-inf", lambda: wi.TruncatedNormal(a=-INF), r"`a` must be finite"),
    ("truncated-b-nan", lambda: wi.TruncatedNormal(b=NAN), r"`b` must be finite"),
    ("vs-scale-zero", lambda: wi.VarianceScaling(0.0), r"`scale` must be > 0, got 0.0"),
    ("vs-scale-neg", lambda: wi.VarianceScaling(-1.0), r"`scale` must be > 0"),
    ("vs-scale-nan", lambda: wi.VarianceScaling(NAN), r"`scale` must be finite"),
    ("vs-scale-inf", lambda: wi.VarianceScaling(INF), r"`scale` must be finite"),
    ("vs-mode-typo", lambda: wi.VarianceScaling(mode="fanin"),
     r"`mode` must be one of .*got 'fanin'\. Did you mean 'fan_in'\?"),
    ("vs-mode-unknown", lambda: wi.VarianceScaling(mode="sideways"), r"`mode`.*'sideways'"),
    ("vs-distribution-typo", lambda: wi.VarianceScaling(distribution="truncated"),
     r"`distribution`.*Did you mean 'truncated_normal'\?"),
    ("he-activation-typo", lambda: wi.He("relux"), r"`activation` 'relux'.*Did you mean 'relu'\?"),
    ("he-activation-unknown", lambda: wi.He("swooshy"), r"`activation` 'swooshy'"),
    ("he-activation-int", lambda: wi.He(3), r"`activation`"),
    ("he-mode-typo", lambda: wi.He(mode="fanout"), r"`mode`.*Did you mean 'fan_out'\?"),
    ("he-distribution", lambda: wi.He(distribution="gaussian"), r"`distribution`.*'gaussian'"),
    ("glorot-distribution", lambda: wi.Glorot("normall"),
     r"`distribution`.*Did you mean 'normal'\?"),
    ("glorot-gain-zero", lambda: wi.Glorot(gain=0.0), r"`gain` must be > 0"),
    ("glorot-gain-neg", lambda: wi.Glorot(gain=-1.0), r"`gain` must be > 0"),
    ("glorot-gain-nan", lambda: wi.Glorot(gain=NAN), r"`gain` must be finite"),
    ("lecun-distribution", lambda: wi.LeCun("uniformm"), r"`distribution`.*'uniform'"),
    ("orthogonal-gain-zero", lambda: wi.Orthogonal(0.0), r"`gain` must be > 0"),
    ("orthogonal-gain-nan", lambda: wi.Orthogonal(NAN), r"`gain` must be finite"),
    ("orthogonal-gain-inf", lambda: wi.Orthogonal(INF), r"`gain` must be finite"),
    ("delta-gain-neg", lambda: wi.DeltaOrthogonal(-1.0), r"`gain` must be > 0"),
    ("identity-gain-inf", lambda: wi.Identity(INF), r"`gain` must be finite"),
    ("identity-groups-zero", lambda: wi.Identity(groups=0), r"`groups` must be a positive int"),
    ("identity-groups-float", lambda: wi.Identity(groups=2.0), r"`groups` must be a positive int"),
    ("identity-groups-bool", lambda: wi.Identity(groups=True), r"`groups` must be a positive int"),
    ("sparse-one", lambda: wi.Sparse(1.0), r"`sparsity` must be in \[0, 1\), got 1.0"),
    ("sparse-above", lambda: wi.Sparse(1.5), r"`sparsity` must be in \[0, 1\)"),
    ("sparse-negative", lambda: wi.Sparse(-0.1), r"`sparsity` must be in \[0, 1\)"),
    ("sparse-nan", lambda: wi.Sparse(NAN), r"`sparsity` must be finite"),
    ("sparse-std-zero", lambda: wi.Sparse(std=0.0), r"`std` must be > 0"),
    ("sparse-std-inf", lambda: wi.Sparse(std=INF), r"`std` must be finite"),
]


@pytest.mark.parametrize(("factory", "match"), [(f, m) for _, f, m in BAD_SPECS],
                         ids=[i for i, _, _ in BAD_SPECS])
def test_constructor_refuses_bad_arguments(factory, match):
    with pytest.raises(wi.InitError, match=match):
        factory()


def test_init_error_is_a_value_error():
    assert issubclass(wi.InitError, ValueError)
    assert issubclass(wi.InitWarning, UserWarning)


def test_sparsity_zero_is_allowed():
    t = wi.Sparse(0.0, std=1.0).fill_(torch.empty(16, 8), key="w")
    assert bool((t != 0).all())


# --- bad arguments to fill_: refused, tensor unchanged -------------------------------------------
FAN_BASED = [wi.He(), wi.Glorot(), wi.LeCun(), wi.VarianceScaling(), wi.Orthogonal()]


def _float(*shape):
    return torch.full(shape, 7.0)


BAD_FILLS = [
    # (id, spec, tensor factory, fill kwargs, match)
    *[(f"{type(s).__name__}-0d", s, lambda: _float(), {"key": "w"}, r"\b0 dims|at least 2 dims")
      for s in FAN_BASED],
    *[(f"{type(s).__name__}-1d", s, lambda: _float(5), {"key": "w"}, r"\b1 dims|at least 2 dims")
      for s in FAN_BASED],
    *[(f"{type(s).__name__}-1d-generator", s, lambda: _float(5), {}, r"\b1 dims|at least 2 dims")
      for s in FAN_BASED],
    ("sparse-3d", wi.Sparse(), lambda: _float(4, 4, 3), {"key": "w"}, r"Sparse needs a 2-d"),
    ("sparse-1d", wi.Sparse(), lambda: _float(4), {"key": "w"}, r"Sparse needs a 2-d"),
    ("delta-2d", wi.DeltaOrthogonal(), lambda: _float(4, 4), {"key": "w"}, r"at least 3 dims"),
    ("identity-1d", wi.Identity(), lambda: _float(4), {"key": "w"}, r"at least 2 dims"),
    ("identity-groups", wi.Identity(groups=3), lambda: _float(4, 4, 3),
     {"key": "w"}, r"`groups` \(=3\) must divide out_channels \(=4\)"),
    ("zero-1d", wi.ZerO(), lambda: _float(4), {"key": "w"}, r"at least 2 dims"),
    ("he-fan-in-zero", wi.He(), lambda: _float(4, 4), {"key": "w", "fans": wi.Fans(0, 4)},
     r"fan_in > 0"),
    ("he-fan-out-zero", wi.He(mode="fan_out"), lambda: _float(4, 4),
     {"fans": wi.Fans(4, 0)}, r"fan_out > 0"),
    *[(f"{name}-{dtype}", spec, (lambda d=dtype: torch.full((4, 4), 7, dtype=d)), kwargs,
       r"`tensor` has dtype torch\.(int|bool|uint8)")
      for name, spec in [("normal", wi.Normal()), ("he", wi.He()), ("orthogonal", wi.Orthogonal()),
                         ("zeros", wi.Zeros()), ("identity", wi.Identity())]
      for dtype in (torch.int32, torch.int64, torch.uint8, torch.bool)
      for kwargs in ({"key": "w"}, {})],
    ("offset-outside", wi.Normal(), lambda: _float(4, 4),
     {"key": "w", "global_shape": (8, 8), "offset": (6, 0)},
     r"`offset` \(6, 0\).*outside `global_shape` \(8, 8\)"),
    ("offset-outside-joint", wi.Orthogonal(), lambda: _float(4, 4),
     {"key": "w", "global_shape": (8, 8), "offset": (0, 5)}, r"`offset`.*outside `global_shape`"),
    ("offset-negative", wi.Normal(), lambda: _float(4, 4),
     {"key": "w", "global_shape": (8, 8), "offset": (-1, 0)}, r"`offset`.*non-negative"),
    ("offset-wrong-rank", wi.Normal(), lambda: _float(4, 4),
     {"key": "w", "global_shape": (8, 8), "offset": (0,)}, r"`offset`.*one entry per dim"),
    ("global-shape-wrong-rank", wi.Normal(), lambda: _float(4, 4),
     {"key": "w", "global_shape": (16,)}, r"`global_shape`.*one entry per dim"),
    ("offset-without-global-shape", wi.Normal(), lambda: _float(4, 4),
     {"key": "w", "offset": (1, 0)}, r"`offset` \(1, 0\) needs `global_shape`"),
    ("offset-without-key", wi.Normal(), lambda: _float(4, 4),
     {"global_shape": (8, 8), "offset": (0, 0)}, r"`global_shape`/`offset`.*need `key=`"),
    ("seed-without-key", wi.Normal(), lambda: _float(4, 4), {"seed": 3},
     r"`seed` \(=3\).*needs `key=`"),
    ("seed-without-key-joint", wi.Orthogonal(), lambda: _float(4, 4), {"seed": 0},
     r"`seed`.*needs `key=`"),
    ("key-and-generator", wi.Normal(), lambda: _float(4, 4),
     {"key": "w", "generator": torch.Generator()}, r"either `key=`.*or `generator=`"),
    ("key-and-generator-joint", wi.Sparse(), lambda: _float(4, 4),
     {"key": "w", "generator": torch.Generator()}, r"either `key=`.*or `generator=`"),
    *[(f"seed-{seed!r}", wi.Normal(), lambda: _float(4, 4), {"key": "w", "seed": seed},
       r"`seed` must be an int in \[0, 2\*\*63\)")
      for seed in (-1, 1.5, 2.0, True, "3", 2**63)],
    ("key-not-str", wi.Normal(), lambda: _float(4, 4), {"key": 3}, r"`key` must be a str"),
    ("not-a-tensor", wi.Normal(), lambda: [7.0, 7.0], {"key": "w"}, r"`tensor` must be a torch"),
]


@pytest.mark.parametrize(("spec", "make", "kwargs", "match"),
                         [(s, f, k, m) for _, s, f, k, m in BAD_FILLS],
                         ids=[b[0] for b in BAD_FILLS])
def test_fill_refuses_bad_arguments_and_leaves_the_tensor_unchanged(spec, make, kwargs, match):
    tensor = make()
    before = tensor.clone() if isinstance(tensor, torch.Tensor) else list(tensor)
    with pytest.raises(wi.InitError, match=match):
        spec.fill_(tensor, **kwargs)
    if isinstance(tensor, torch.Tensor):
        assert torch.equal(tensor, before), f"{spec!r}.fill_(**{kwargs}) changed the tensor"
    else:
        assert tensor == before


def test_fans_as_a_plain_tuple():
    tensor = _float(4, 4)
    before = tensor.clone()
    try:
        wi.He().fill_(tensor, fans=(300, 700), key="w")
    except wi.InitError as error:
        assert "`fans`" in str(error)
        assert torch.equal(tensor, before)


# --- empty tensors: a no-op with a warning -------------------------------------------------------
EMPTY = [
    (spec, shape)
    for spec in [wi.Zeros(), wi.Ones(), wi.Constant(2.0), wi.Normal(), wi.Uniform(),
                 wi.TruncatedNormal(), wi.VarianceScaling(), wi.He(), wi.Glorot(), wi.LeCun(),
                 wi.Orthogonal(), wi.Identity(), wi.Sparse(), wi.ZerO()]
    for shape in [(0, 5), (5, 0), (0, 4, 3, 3)]
    if not (isinstance(spec, wi.Sparse) and len(shape) != 2)
] + [(wi.DeltaOrthogonal(), (0, 4, 3, 3)), (wi.DeltaOrthogonal(), (4, 0, 3))] + [
    (spec, (0,)) for spec in [wi.Zeros(), wi.Normal(), wi.Uniform(), wi.TruncatedNormal()]
]


@pytest.mark.parametrize(("spec", "shape"), EMPTY,
                         ids=[f"{type(s).__name__}-{'x'.join(map(str, sh))}" for s, sh in EMPTY])
@pytest.mark.parametrize("source", ["keyed", "generator", "global"])
def test_empty_tensor_is_a_no_op_with_a_warning(spec, shape, source):
    kwargs = {"keyed": {"key": "w", "seed": 1},
              "generator": {"generator": torch.Generator().manual_seed(0)},
              "global": {}}[source]
    tensor = torch.empty(shape)
    state = torch.random.get_rng_state()
    with pytest.warns(wi.InitWarning, match="empty"):
        out = spec.fill_(tensor, **kwargs)
    assert out is tensor
    assert torch.equal(torch.random.get_rng_state(), state)


# --- tensors that are not plain contiguous buffers -----------------------------------------------
def test_non_contiguous_tensor_gets_the_values_of_its_logical_shape():
    for spec in (wi.Normal(0.5), wi.TruncatedNormal(), wi.He(), wi.Orthogonal(), wi.Sparse(0.5)):
        view = torch.empty(16, 24).T  # logical shape (24, 16), not contiguous
        spec.fill_(view, key="w", seed=2)
        assert torch.equal(view, spec.fill_(torch.empty(24, 16), key="w", seed=2)), repr(spec)


def test_parameter_requiring_grad_is_filled_in_place():
    param = torch.nn.Parameter(torch.zeros(8, 4))
    out = wi.He().fill_(param, key="weight")
    assert out is param and param.requires_grad and param.is_leaf
    assert param.grad_fn is None and bool((param != 0).any())


# --- inputs found in review ----------------------------------------------------------


def test_identity_std_counts_groups_with_plain_fans():
    for shape, groups in [((4, 2), 2), ((8, 2, 3, 3), 4), ((6, 4, 3), 3)]:
        spec = wi.Identity(gain=1.5, groups=groups)
        t = spec.fill_(torch.empty(shape, dtype=torch.float64), key="w")
        fans = wi.compute_fans(shape, "linear" if len(shape) == 2 else "conv")
        assert spec.std_for(fans) == pytest.approx(float(t.std(correction=0)), rel=1e-12), shape


def test_zero_builds_only_the_block_it_needs():
    """ZerO's Hadamard block comes from (-1)^popcount(i & j): a 50257 x 16 weight would need a
    65536^2 matrix if built whole."""
    import math as _math

    t = wi.ZerO().fill_(torch.empty(50257, 16, dtype=torch.float64), key="w")
    m = _math.ceil(_math.log2(50257))
    expected = torch.tensor([[(-1) ** bin(i & j).count("1") for j in range(16)]
                             for i in range(0, 50257, 997)], dtype=torch.float64)
    assert torch.equal(t[::997], 2.0 ** (-(m - 1) / 2) * expected)
    assert wi.ZerO().std_for(wi.Fans(16, 50257)) == pytest.approx(float(t.std(correction=0)),
                                                               rel=1e-12)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: wi.Uniform(-1e308, 1e308), "overflows"),
    (lambda: wi.Constant(1e300).fill_(torch.zeros(3, dtype=torch.float16)), "overflows"),
    (lambda: wi.Normal().fill_(torch.zeros(3, dtype=torch.float8_e4m3fn)), "float8"),
    (lambda: wi.Normal().fill_(torch.zeros(3), generator=5), "`generator`"),
    (lambda: wi.spec_from_dict({"type": ["x"]}), "'type'"),
    (lambda: wi.Normal().fill_(torch.zeros(3), key="w", offset=("x",)), "`offset`"),
    (lambda: wi.Sparse().std_for(wi.Fans(3, 0)), "positive fans"),
    (lambda: wi.Orthogonal().std_for(wi.Fans(0, 0)), "positive fans"),
])
def test_more_bad_inputs_raise_init_error(call, match):
    with pytest.raises(wi.InitError, match=match):
        call()


def test_std_accepts_a_fans_tuple_like_fill():
    assert wi.He().std_for((300, 700)) == pytest.approx((2 / 300) ** 0.5)


def test_an_empty_shard_of_a_real_tensor_does_not_warn():
    import warnings as _warnings

    with _warnings.catch_warnings():
        _warnings.simplefilter("error")
        wi.Normal().fill_(torch.empty(0, 4), key="w", global_shape=(8, 4), offset=(8, 0))


@pytest.mark.parametrize("gain", [1e200, 1e-200])
def test_a_glorot_gain_whose_square_leaves_float64_is_refused_by_name(gain):
    with pytest.raises(wi.InitError, match=r"`gain` \(=1e[+-]200\) squared"):
        wi.Glorot(gain=gain)
