"""Presets reproduce other systems, each checked against the real thing or its documented rule.

- ``"torch"``: every parameter against freshly built torch modules of the same class (torch's own
  ``reset_parameters``), by a two-sample Kolmogorov–Smirnov test for random tensors and exact
  equality for constant ones, plus the bound 1/sqrt(fan_in) of kaiming_uniform_(a=sqrt(5)).
- ``"keras"`` and ``"flax"`` (neither installed here): against the distributions their
  initializers document (glorot_uniform with Keras' fans, orthogonal recurrent kernels,
  unit_forget_bias; lecun_normal as a truncated normal, Embed N(0, 1/dim)), by one-sample KS
  tests against scipy, exact bounds and exact constants.
- ``"gpt2"``: against transformers' own GPT2LMHeadModel initialization, parameter by parameter.
- ``"fixup"``: zero branch ends and classifier, L^(-1/(2m-2)) inside the branches.
- options and errors: ``auto(residual="zero")``, ``gpt2(std=...)``, unknown names and options.

Randomness: tests seed the global RNG where torch's constructors need it; weightinit must not
touch it (checked on every init_model call here). All seeds are fixed. KS tests reject a correct
sampler with probability P_MIN each.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable

import model_nets as nets
import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

import weightinit as wi

P_MIN = 1e-4  # KS significance: a correct sampler fails one of these tests with probability 1e-4
N_MIN = 4096  # random tensors are compared on at least this many values (power of the KS tests)
N_CAP = 1 << 16  # ... and at most this many (keeps ks_2samp fast; values are i.i.d., so a prefix
#                 of a concatenation is a sample as good as any)
STD_SIGMAS = 6.0  # sample-std tolerance in standard errors (see _check_rms)


# --- helpers --------------------------------------------------------------------------------------
def _randn(*shape: int) -> torch.Tensor:
    """Example inputs from a private generator (the global RNG stays the tests' own)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def _init(model: nn.Module, policy, **kwargs) -> wi.InitPlan:
    """wi.init_model, checking that it leaves the global RNG alone and fills every parameter."""
    before = torch.get_rng_state()
    plan = wi.init_model(model, policy, **kwargs)
    assert torch.equal(torch.get_rng_state(), before), (
        f"init_model({type(model).__name__}, {policy!r}) changed the global RNG state")
    kept = [row.name for row in plan if row.kept]
    assert not kept, f"policy {policy!r} kept parameters as they were: {kept}"
    return plan


def _values(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().reshape(-1).double().numpy()


def _f32(bound: float) -> float:
    """The float32 nearest to `bound`: a correct float32 uniform sampler may reach it."""
    return float(torch.tensor(bound, dtype=torch.float32))


def _ks2(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert ours.size >= N_MIN and ref.size >= N_MIN, (
        f"{what}: too few values for a KS test with power ({ours.size}, {ref.size})")
    result = scipy.stats.ks_2samp(ours, ref)
    assert result.pvalue > P_MIN, (
        f"{what}: two-sample KS D={result.statistic:.3g}, p={result.pvalue:.3g} "
        f"(need p > {P_MIN}); n={ours.size} vs {ref.size}; std {ours.std():.5g} vs "
        f"{ref.std():.5g}; max|w| {np.abs(ours).max():.5g} vs {np.abs(ref).max():.5g}")


def _describe(dist) -> str:
    args = ", ".join(f"{a:.6g}" for a in dist.args)
    kwds = ", ".join(f"{k}={v:.6g}" for k, v in dist.kwds.items())
    return f"{dist.dist.name}({', '.join(x for x in (args, kwds) if x)})"


def _ks1(values: np.ndarray, dist, what: str) -> None:
    assert values.size >= N_MIN, f"{what}: only {values.size} values for a KS test"
    result = scipy.stats.kstest(values, dist.cdf)
    assert result.pvalue > P_MIN, (
        f"{what}: KS against {_describe(dist)}: D={result.statistic:.3g}, "
        f"p={result.pvalue:.3g} (need p > {P_MIN}), n={values.size}, sample std "
        f"{values.std():.5g}, expected {dist.std():.5g}")


def _check_rms(values: np.ndarray, std: float, what: str) -> None:
    """The root mean square (the std about the known mean 0) of n i.i.d. N(0, std^2) values has
    Var(rms^2) = 2 std^4 / n, so by the delta method rms has standard error std / sqrt(2n).
    Allow STD_SIGMAS of them: a correct sampler fails with probability ~2e-9. (A truncated
    normal or a uniform has less kurtosis, hence a smaller error: the tolerance is
    conservative for them.)"""
    rms = float(np.sqrt(np.mean(values ** 2)))
    tol = STD_SIGMAS / math.sqrt(2 * values.size)
    assert abs(rms / std - 1) <= tol, (
        f"{what}: std {rms:.6g}, expected {std:.6g} (relative error {rms / std - 1:+.3g}, "
        f"tolerance {tol:.3g} = {STD_SIGMAS} standard errors for n={values.size})")


def _check_uniform(values: np.ndarray, limit: float, what: str) -> None:
    """U(-limit, limit): KS against scipy, the bound exactly, and (for big tensors) a maximum
    close to it: P(max|w| < limit (1 - eps)) = (1 - eps)^n ~ exp(-20) for eps = 20 / n."""
    top = float(np.abs(values).max())
    assert top <= _f32(limit), f"{what}: max|w| = {top!r} > limit {limit!r}"
    eps = 20.0 / values.size
    if eps < 0.01:
        assert top >= limit * (1 - eps), (
            f"{what}: max|w| = {top:.6g}, expected within a factor (1 - {eps:.2g}) of the "
            f"limit {limit:.6g} for n={values.size}: the range is too narrow")
    _ks1(values, scipy.stats.uniform(loc=-limit, scale=2 * limit), what)


def _truncnorm(std: float):
    """weightinit's TruncatedNormal(std, a=-2, b=2) (std of the RESULT), as JAX's lecun_normal
    draws it: the underlying normal's sigma is std / c, c = the std of N(0,1) cut at +-2."""
    sigma = std / scipy.stats.truncnorm(-2.0, 2.0).std()
    return scipy.stats.truncnorm(-2.0, 2.0, loc=0.0, scale=sigma), sigma


def _check_truncated_normal(values: np.ndarray, std: float, what: str) -> None:
    dist, sigma = _truncnorm(std)
    top = float(np.abs(values).max())
    assert top <= _f32(2 * sigma), f"{what}: max|w| = {top!r} > 2 sigma = {2 * sigma!r}"
    _check_rms(values, std, what)
    _ks1(values, dist, what)


def _assert_const(tensor: torch.Tensor, value: float, what: str) -> None:
    expected = torch.full_like(tensor, value)
    assert torch.equal(tensor, expected), (
        f"{what}: expected all {value}, got values in [{tensor.min().item():.6g}, "
        f"{tensor.max().item():.6g}] ({torch.count_nonzero(tensor != expected).item()} of "
        f"{tensor.numel()} differ)")


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _state_bytes(model: nn.Module) -> dict[str, bytes]:
    return {name: t.detach().cpu().contiguous().numpy().tobytes()
            for name, t in model.state_dict().items()}


# --- "torch": against freshly built torch modules -------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TorchCase:
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple] | None  # None: the first layer makes the input shape obvious
    # name -> bound of the parameters torch fills with a symmetric uniform, computed here from the
    # constructor arguments (kaiming_uniform_(a=sqrt(5)) gives U(+-1/sqrt(fan_in)) with torch's
    # fan_in of the RAW weight; xavier_uniform_ sqrt(6 / (fan_in + fan_out))).
    bounds: dict[str, float]


def _kaiming(fan_in: int) -> float:
    return 1.0 / math.sqrt(fan_in)


def _xavier(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def _rnn_bounds(layers: int, hidden: int, *, proj: bool = False,
                bidirectional: bool = False) -> dict[str, float]:
    """torch's RNNBase.reset_parameters: every weight and bias U(+-1/sqrt(hidden_size))."""
    kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + (("weight_hr",) if proj else ())
    names = [f"{kind}_l{i}{suffix}" for i in range(layers) for kind in kinds
             for suffix in (("", "_reverse") if bidirectional else ("",))]
    return dict.fromkeys(names, _kaiming(hidden))


TORCH_CASES = {
    "linear": TorchCase(
        lambda: nn.Linear(256, 256), None,
        {"weight": _kaiming(256), "bias": _kaiming(256)}),
    "conv2d": TorchCase(
        lambda: nn.Conv2d(16, 512, 3), None,
        {"weight": _kaiming(16 * 9), "bias": _kaiming(16 * 9)}),
    "conv2d_groups2": TorchCase(
        lambda: nn.Conv2d(64, 512, 3, groups=2), None,
        {"weight": _kaiming(32 * 9), "bias": _kaiming(32 * 9)}),
    # Weight (in, out / groups, k, k): torch's fan_in is size(1) * k * k = out / groups * 9.
    "conv_transpose2d": TorchCase(
        lambda: nn.ConvTranspose2d(16, 512, 3), None,
        {"weight": _kaiming(512 * 9), "bias": _kaiming(512 * 9)}),
    "conv_transpose2d_groups2": TorchCase(
        lambda: nn.ConvTranspose2d(16, 512, 3, groups=2), None,
        {"weight": _kaiming(256 * 9), "bias": _kaiming(256 * 9)}),
    "conv1d": TorchCase(
        lambda: nn.Conv1d(16, 512, 5), None,
        {"weight": _kaiming(16 * 5), "bias": _kaiming(16 * 5)}),
    # Bilinear.reset_parameters: weight (out, in1, in2) and bias U(+-1/sqrt(in1)).
    "bilinear": TorchCase(
        lambda: nn.Bilinear(16, 8, 512), lambda: (_randn(4, 16), _randn(4, 8)),
        {"weight": _kaiming(16), "bias": _kaiming(16)}),
    "embedding_padding_idx": TorchCase(lambda: nn.Embedding(1024, 16, padding_idx=3), None, {}),
    "embedding_bag_padding_idx": TorchCase(
        lambda: nn.EmbeddingBag(1024, 16, mode="mean", padding_idx=2), None, {}),
    "layer_norm": TorchCase(lambda: nn.LayerNorm(64), lambda: (_randn(4, 64),), {}),
    "batch_norm2d": TorchCase(lambda: nn.BatchNorm2d(16), lambda: (_randn(2, 16, 4, 4),), {}),
    "group_norm": TorchCase(lambda: nn.GroupNorm(4, 16), lambda: (_randn(2, 16, 4, 4),), {}),
    "lstm_2_layers": TorchCase(
        lambda: nn.LSTM(16, 256, num_layers=2), lambda: (_randn(5, 2, 16),),
        _rnn_bounds(2, 256)),
    "gru": TorchCase(lambda: nn.GRU(16, 256), lambda: (_randn(5, 2, 16),), _rnn_bounds(1, 256)),
    "gru_bidirectional": TorchCase(
        lambda: nn.GRU(16, 512, bidirectional=True), lambda: (_randn(5, 2, 16),),
        _rnn_bounds(1, 512, bidirectional=True)),
    "lstm_proj_size": TorchCase(
        lambda: nn.LSTM(16, 256, proj_size=16), lambda: (_randn(5, 2, 16),),
        _rnn_bounds(1, 256, proj=True)),
    "rnn_tanh": TorchCase(lambda: nn.RNN(64, 512), lambda: (_randn(5, 2, 64),),
                          _rnn_bounds(1, 512)),
    "mha_add_bias_kv": TorchCase(
        lambda: nn.MultiheadAttention(128, 4, add_bias_kv=True),
        lambda: (_randn(3, 2, 128),) * 3,
        {"in_proj_weight": _xavier(128, 3 * 128), "out_proj.weight": _kaiming(128)}),
    "mha_kdim_vdim": TorchCase(
        lambda: nn.MultiheadAttention(256, 4, kdim=128, vdim=64),
        lambda: (_randn(3, 2, 256), _randn(3, 2, 128), _randn(3, 2, 64)),
        {"q_proj_weight": _xavier(256, 256), "k_proj_weight": _xavier(128, 256),
         "v_proj_weight": _xavier(64, 256), "out_proj.weight": _kaiming(256)}),
    "prelu": TorchCase(lambda: nn.PReLU(), lambda: (_randn(2, 3),), {}),
    "prelu_channels": TorchCase(lambda: nn.PReLU(8), lambda: (_randn(2, 8, 4, 4),), {}),
}


def _padding_rows(model: nn.Module) -> dict[str, int]:
    if isinstance(model, (nn.Embedding, nn.EmbeddingBag)) and model.padding_idx is not None:
        return {"weight": model.padding_idx}
    return {}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_torch_preset_matches_fresh_torch_modules(case):
    spec = TORCH_CASES[case]
    torch.manual_seed(1000)
    reference = [_params(spec.build())]
    padding = _padding_rows(spec.build())
    constant = {name: bool((t == t.reshape(-1)[0]).all()) for name, t in reference[0].items()}
    random_sizes = [t.numel() - (t[0].numel() if name in padding else 0)
                    for name, t in reference[0].items() if not constant[name]]
    reps = max([math.ceil(N_MIN / n) for n in random_sizes], default=1)
    for rep in range(1, reps):
        torch.manual_seed(1000 + rep)
        reference.append(_params(spec.build()))

    ours = []
    for seed in range(reps):
        torch.manual_seed(2000 + seed)  # whatever torch drew is overwritten by the preset
        model = spec.build()
        plan = _init(model, "torch", seed=seed,
                     example_inputs=spec.inputs() if spec.inputs else None)
        assert {row.name for row in plan} == set(reference[0]), case
        ours.append(_params(model))

    assert set(spec.bounds) <= set(reference[0]), f"{case}: bounds for unknown parameters"
    failures = []
    for name, ref0 in reference[0].items():
        try:
            _compare_with_torch(case, name, spec, ref0, constant[name], padding, ours, reference)
        except AssertionError as exc:
            failures.append(str(exc).split("\nassert")[0])
    assert not failures, "\n".join(failures)


def _compare_with_torch(case: str, name: str, spec: TorchCase, ref0: torch.Tensor,
                        constant: bool, padding: dict[str, int], ours: list[dict],
                        reference: list[dict]) -> None:
    """One parameter: exact constants; else the padding row, the bound, and a two-sample KS
    test of weightinit's values (one module per seed) against torch's (one per manual_seed)."""
    what = f"torch preset, {case}.{name} {tuple(ref0.shape)}"
    if constant:
        for rep, params in enumerate(ours):
            _assert_const(params[name], ref0.reshape(-1)[0].item(), f"{what} (seed {rep})")
        return
    if name in padding:
        row = padding[name]
        for rep, params in enumerate(ours):
            _assert_const(params[name][row], 0.0, f"{what}: padding row {row} (seed {rep})")
        keep = [i for i in range(ref0.shape[0]) if i != row]
        ours_values = np.concatenate([_values(p[name][keep]) for p in ours])
        ref_values = np.concatenate([_values(p[name][keep]) for p in reference])
    else:
        ours_values = np.concatenate([_values(p[name]) for p in ours])
        ref_values = np.concatenate([_values(p[name]) for p in reference])
    if name in spec.bounds:
        bound = spec.bounds[name]
        # The bound is checked on torch's own values too: that validates the fan_in above.
        for label, values in (("weightinit", ours_values), ("torch", ref_values)):
            top = float(np.abs(values).max())
            assert top <= _f32(bound), (
                f"{what}: {label} max|w| = {top!r} > bound {bound!r} (1/sqrt(fan_in) with "
                f"fan_in = {1 / bound ** 2:.6g} for kaiming_uniform_)")
    _ks2(ours_values[:N_CAP], ref_values[:N_CAP], what)


def test_torch_preset_embedding_padding_row_is_exactly_zero_in_the_plan():
    model = nn.Embedding(64, 8, padding_idx=5)
    nn.init.ones_(model.weight)
    plan = _init(model, "torch", seed=3)
    assert plan["weight"].padding_idx == 5
    assert torch.count_nonzero(model.weight[5]).item() == 0, model.weight[5]
    assert torch.count_nonzero(model.weight[torch.arange(64) != 5] == 1.0).item() == 0


# --- "keras" --------------------------------------------------------------------------------------
def _keras_limit(weight: torch.Tensor) -> tuple[float, int, int]:
    """Keras' glorot_uniform limit from the raw torch-layout weight (out, in, *kernel): Keras'
    kernel is (*kernel, in, out) (Dense: (in, out); LSTM: (in, 4 units)), so its fan_in =
    in * receptive field and fan_out = out * receptive field."""
    shape = tuple(weight.shape)
    rf = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * rf, shape[0] * rf
    return math.sqrt(6.0 / (fan_in + fan_out)), fan_in, fan_out


KERAS_GLOROT = {
    "linear": (lambda: nn.Linear(256, 512), None, ("weight",)),
    "conv2d_groups2": (lambda: nn.Conv2d(32, 64, 3, groups=2), None, ("weight",)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(32, 64, 3), None, ("weight",)),
    "lstm_2_layers": (lambda: nn.LSTM(32, 64, num_layers=2), lambda: (_randn(5, 2, 32),),
                      ("weight_ih_l0", "weight_ih_l1")),
    "gru": (lambda: nn.GRU(32, 64), lambda: (_randn(5, 2, 32),), ("weight_ih_l0",)),
}


@pytest.mark.parametrize("case", list(KERAS_GLOROT))
def test_keras_preset_glorot_uniform_kernels_with_keras_fans_and_zero_biases(case):
    build, inputs, kernels = KERAS_GLOROT[case]
    model = build()
    _init(model, "keras", seed=7, example_inputs=inputs() if inputs else None)
    for name in kernels:
        weight = dict(model.named_parameters())[name]
        limit, fan_in, fan_out = _keras_limit(weight)
        _check_uniform(_values(weight), limit,
                       f"keras {case}.{name} {tuple(weight.shape)}, glorot_uniform with "
                       f"fan_in={fan_in}, fan_out={fan_out}")
    for name, param in model.named_parameters():
        # All biases 0, except the LSTM forget block (checked with the recurrent kernels).
        if "bias" in name and not (case.startswith("lstm") and name.startswith("bias_ih")):
            _assert_const(param, 0.0, f"keras {case}.{name}")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_keras_preset_recurrent_kernels_are_orthogonal_and_biases_follow_keras(kind):
    hidden, gates = 64, {"LSTM": 4, "GRU": 3}[kind]
    model = getattr(nn, kind)(32, hidden, num_layers=2)
    _init(model, "keras", seed=1, example_inputs=(_randn(5, 2, 32),))
    for layer in range(2):
        w = getattr(model, f"weight_hh_l{layer}").detach().double()
        assert w.shape == (gates * hidden, hidden)
        # Keras' recurrent kernel is (units, gates * units) with orthonormal rows: in torch's
        # layout (gates * h, h) the COLUMNS are orthonormal, W^T W = I.
        err = (w.T @ w - torch.eye(hidden, dtype=torch.float64)).abs().max().item()
        assert err < 1e-5, f"keras {kind} weight_hh_l{layer}: max|W^T W - I| = {err:.3g}"
        bias_ih = getattr(model, f"bias_ih_l{layer}")
        expected = torch.zeros(gates * hidden)
        if kind == "LSTM":  # unit_forget_bias: gates (i, f, g, o), the forget block is 1
            expected[hidden:2 * hidden] = 1.0
        assert torch.equal(bias_ih, expected), (
            f"keras {kind} bias_ih_l{layer}: block means "
            f"{[round(b.mean().item(), 4) for b in bias_ih.detach().split(hidden)]}, expected "
            f"{[round(b.mean().item(), 4) for b in expected.split(hidden)]}")
        _assert_const(getattr(model, f"bias_hh_l{layer}"), 0.0, f"keras {kind} bias_hh_l{layer}")


def test_keras_preset_embeddings_uniform_005_and_norms_one_zero():
    model = nn.Sequential(nn.Embedding(4096, 16), nn.LayerNorm(16))
    _init(model, "keras", seed=2)
    _check_uniform(_values(model[0].weight), 0.05, "keras Embedding(4096, 16)")
    _assert_const(model[1].weight, 1.0, "keras LayerNorm weight")
    _assert_const(model[1].bias, 0.0, "keras LayerNorm bias")


def test_keras_preset_prelu_alpha_is_keras_default_zero():
    # keras.layers.PReLU(alpha_initializer="Zeros"): the slope starts at 0 (not torch's 0.25).
    model = nn.Sequential(nn.Linear(8, 8), nn.PReLU(8))
    _init(model, "keras", seed=0)
    _assert_const(model[1].weight, 0.0, "keras PReLU alpha")


# --- "flax" ---------------------------------------------------------------------------------------
FLAX_LECUN = {
    # name: (build, inputs, {param: fan_in as Flax computes it from its own kernel layout})
    "linear": (lambda: nn.Linear(256, 512), None, {"weight": 256}),  # Dense kernel (in, out)
    # Conv kernel (kh, kw, in / groups, out): fan_in = in / groups * kh * kw.
    "conv2d_groups2": (lambda: nn.Conv2d(32, 64, 3, groups=2), None, {"weight": 16 * 9}),
    # ConvTranspose kernel (kh, kw, in, out): fan_in = in * kh * kw.
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(32, 64, 3), None, {"weight": 32 * 9}),
    # LSTMCell: one Dense(in -> h) per gate, lecun_normal: fan_in = input size.
    "lstm": (lambda: nn.LSTM(32, 64), lambda: (_randn(5, 2, 32),), {"weight_ih_l0": 32}),
}


@pytest.mark.parametrize("case", list(FLAX_LECUN))
def test_flax_preset_lecun_normal_is_a_truncated_normal_with_std_one_over_sqrt_fan_in(case):
    build, inputs, kernels = FLAX_LECUN[case]
    model = build()
    _init(model, "flax", seed=11, example_inputs=inputs() if inputs else None)
    params = dict(model.named_parameters())
    for name, fan_in in kernels.items():
        _check_truncated_normal(
            _values(params[name]), 1.0 / math.sqrt(fan_in),
            f"flax {case}.{name} {tuple(params[name].shape)}, lecun_normal fan_in={fan_in}")
    for name, param in params.items():
        if "bias" in name:
            _assert_const(param, 0.0, f"flax {case}.{name}")


def test_flax_preset_embed_is_normal_with_variance_one_over_dim_and_norms_one_zero():
    model = nn.Sequential(nn.Embedding(4096, 16), nn.LayerNorm(16))
    _init(model, "flax", seed=5)
    values = _values(model[0].weight)
    _check_rms(values, 0.25, "flax Embed(4096, 16)")
    _ks1(values, scipy.stats.norm(scale=0.25), "flax Embed(4096, 16), N(0, 1/16)")
    _assert_const(model[1].weight, 1.0, "flax LayerNorm scale")
    _assert_const(model[1].bias, 0.0, "flax LayerNorm bias")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_flax_preset_recurrent_kernel_of_each_gate_is_orthogonal(kind):
    # flax.linen.LSTMCell / GRUCell (and OptimizedLSTMCell) build one Dense(h -> h) per gate, each
    # with recurrent_kernel_init=orthogonal(): every (h, h) gate block of torch's stacked
    # weight_hh is itself orthogonal (so the stacked W^T W = gates * I).
    hidden = 32
    model = getattr(nn, kind)(16, hidden)
    _init(model, "flax", seed=0, example_inputs=(_randn(5, 2, 16),))
    blocks = model.weight_hh_l0.detach().double().split(hidden)
    errors = [(b.T @ b - torch.eye(hidden, dtype=torch.float64)).abs().max().item()
              for b in blocks]
    assert max(errors) < 1e-5, (
        f"flax {kind}: max|B^T B - I| per gate block = {[f'{e:.3g}' for e in errors]}; "
        f"block norms^2 / h = {[round((b ** 2).sum().item() / hidden, 3) for b in blocks]}")


def test_flax_preset_prelu_negative_slope_is_flax_default():
    # flax.linen.PReLU(negative_slope_init=0.01).
    model = nn.Sequential(nn.Linear(8, 8), nn.PReLU(8))
    _init(model, "flax", seed=0)
    _assert_const(model[1].weight, 0.01, "flax PReLU negative_slope")


# --- "gpt2": against transformers' GPT2LMHeadModel ------------------------------------------------
GPT2_LAYERS = 4


@pytest.fixture(scope="module")
def gpt2_config():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        assert os.environ["HF_HUB_OFFLINE"] == "1"
        transformers = pytest.importorskip(
            "transformers", reason="the [hf] extra (pip install 'weightinit[hf]') is not installed")
        yield transformers, transformers.GPT2Config(
            n_layer=GPT2_LAYERS, n_embd=64, n_head=4, vocab_size=512, n_positions=128,
            bos_token_id=0, eos_token_id=0)


def _gpt2_expected_std(name: str, std: float = 0.02) -> float | None:
    """transformers' GPT2PreTrainedModel._init_weights: Linear / Conv1D weights and embeddings
    N(0, 0.02^2), the c_proj of attention and MLP N(0, (0.02 / sqrt(2 n_layer))^2); None for
    the constants (biases 0, LayerNorm weight 1)."""
    if name.endswith(".bias") or ".ln_" in name:
        return None
    if name.endswith("c_proj.weight"):
        return std / math.sqrt(2 * GPT2_LAYERS)
    return std


def test_gpt2_preset_matches_transformers_init(gpt2_config):
    transformers, config = gpt2_config
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(config)  # transformers runs its _init_weights
    torch.manual_seed(1)
    model = transformers.GPT2LMHeadModel(config)
    before = _params(model)
    plan = _init(model, "gpt2", seed=0)

    # Tied lm_head: one plan row (an alias of wte), still tied after init.
    assert "lm_head.weight" not in [row.name for row in plan]
    assert plan["lm_head.weight"].name == "transformer.wte.weight"
    assert plan["lm_head.weight"].aliases == ("lm_head.weight",)
    assert len(plan) == len(dict(model.named_parameters()))  # one row per distinct tensor
    assert model.lm_head.weight is model.transformer.wte.weight

    ref_params = dict(reference.named_parameters(remove_duplicate=False))
    our_params = dict(model.named_parameters(remove_duplicate=False))
    assert set(ref_params) == set(our_params)
    for name in sorted(our_params):
        ours, ref = our_params[name].detach(), ref_params[name].detach()
        what = f"gpt2 {name} {tuple(ours.shape)}"
        expected = _gpt2_expected_std(name)
        if expected is None:
            assert (ref == ref.reshape(-1)[0]).all(), f"{what}: transformers' is not constant"
            _assert_const(ours, ref.reshape(-1)[0].item(), what)
            continue
        assert not torch.equal(ours, before[name.replace("lm_head.weight",
                                                         "transformer.wte.weight")]), what
        # Both against the expected std: transformers' values validate the expectation.
        _check_rms(_values(ref), expected, f"{what} (transformers)")
        _check_rms(_values(ours), expected, f"{what} (weightinit)")
        _ks2(_values(ours)[:N_CAP], _values(ref)[:N_CAP], what)
        if name != "lm_head.weight":
            row = plan[name]
            assert row.std == pytest.approx(expected, rel=1e-12), (what, row)
            assert row.residual == name.endswith("c_proj.weight"), (what, row)


def test_gpt2_preset_std_option(gpt2_config):
    transformers, config = gpt2_config
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    plan = _init(model, wi.Policy.preset("gpt2", std=0.01), seed=4)
    for name, param in model.named_parameters():
        expected = _gpt2_expected_std(name, std=0.01)
        if expected is None:
            continue
        assert plan[name].std == pytest.approx(expected, rel=1e-12), (name, plan[name])
        _check_rms(_values(param), expected, f"gpt2(std=0.01) {name} {tuple(param.shape)}")


# --- "fixup" and auto(residual="zero") on residual nets without normalization ---------------------
class ResMLP(nn.Module):
    """stem -> relu -> L x [x = relu(x + branch(x))], branch = m Linear layers with ReLU between
    -> head. No normalization."""

    def __init__(self, d_in: int = 64, width: int = 256, branches: int = 4, m: int = 3,
                 classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList()
        for _ in range(branches):
            layers: list[nn.Module] = []
            for j in range(m):
                layers.append(nn.Linear(width, width))
                if j < m - 1:
                    layers.append(nn.ReLU())
            self.blocks.append(nn.Sequential(*layers))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = F.relu(x + block(x))
        return self.head(x)


class ResCNN(nn.Module):
    """Fixup's setting in small: BasicBlocks (conv-relu-conv, + identity, relu) without norms."""

    def __init__(self, channels: int = 32, branches: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.conv1 = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1)
                                   for _ in range(branches))
        self.conv2 = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1)
                                   for _ in range(branches))
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        for conv1, conv2 in zip(self.conv1, self.conv2, strict=True):
            x = F.relu(x + conv2(F.relu(conv1(x))))
        return self.fc(x.mean((2, 3)))


def _resmlp_branch(model: ResMLP) -> list[list[str]]:
    return [[f"blocks.{i}.{j}" for j, layer in enumerate(block) if isinstance(layer, nn.Linear)]
            for i, block in enumerate(model.blocks)]


def _rescnn_branch(model: ResCNN) -> list[list[str]]:
    return [[f"conv1.{i}", f"conv2.{i}"] for i in range(len(model.conv1))]


FIXUP_MODELS = {
    # name: (build, inputs, branches, (L, m), fan_in of the in-branch layers, output layer)
    "resmlp": (lambda: ResMLP(), lambda: (_randn(4, 64),), _resmlp_branch, (4, 3), 256, "head"),
    "rescnn": (lambda: ResCNN(), lambda: (_randn(2, 3, 8, 8),), _rescnn_branch, (3, 2), 32 * 9,
               "fc"),
}


@pytest.mark.parametrize("case", list(FIXUP_MODELS))
def test_fixup_zeroes_branch_ends_and_classifier_and_scales_the_rest(case):
    build, inputs, branches_of, (n_branches, m), fan_in, output = FIXUP_MODELS[case]
    model = build()
    plan = _init(model, "fixup", seed=0, example_inputs=inputs())
    modules = dict(model.named_modules())
    branches = branches_of(model)
    assert len(branches) == n_branches and all(len(b) == m for b in branches)
    # Fixup (Zhang et al. 2019): the layers before a branch's last get the variance-preserving
    # std (gain(relu) = sqrt(2): every branch input and inner activation is a ReLU output)
    # times L^(-1/(2m-2)).
    std = math.sqrt(2.0) / math.sqrt(fan_in) * n_branches ** (-1.0 / (2 * m - 2))
    for branch in branches:
        *inner, last = branch
        _assert_const(modules[last].weight, 0.0, f"fixup {case}: branch end {last}.weight")
        for name in inner:
            weight = modules[name].weight
            what = (f"fixup {case}: {name}.weight {tuple(weight.shape)}, L={n_branches}, m={m}, "
                    f"fan_in={fan_in}")
            assert plan[f"{name}.weight"].std == pytest.approx(std, rel=1e-12), (
                what, plan[f"{name}.weight"])
            _check_rms(_values(weight), std, what)
            _ks1(_values(weight), scipy.stats.norm(scale=std), what)
    _assert_const(modules[output].weight, 0.0, f"fixup {case}: classifier {output}.weight")
    for name, param in model.named_parameters():
        if name.endswith("bias"):
            _assert_const(param, 0.0, f"fixup {case}: {name}")
    stem = model.stem.weight
    stem_fan_in = math.prod(stem.shape[1:])  # fed by the input: LeCun, 1/sqrt(fan_in)
    assert plan["stem.weight"].std == pytest.approx(1 / math.sqrt(stem_fan_in), rel=1e-12)


def test_auto_residual_zero_zeroes_branch_ends_only():
    model = ResMLP()
    plan = _init(model, wi.Policy.preset("auto", residual="zero"), seed=0,
                 example_inputs=(_randn(4, 64),))
    modules = dict(model.named_modules())
    he = math.sqrt(2.0 / 256)
    for branch in _resmlp_branch(model):
        *inner, last = branch
        _assert_const(modules[last].weight, 0.0, f"auto(residual='zero'): {last}.weight")
        assert plan[f"{last}.weight"].residual
        for name in inner:
            _check_rms(_values(modules[name].weight), he, f"auto(residual='zero'): {name}")
    # The classifier is not a branch end: He for its ReLU input, not zero.
    assert not plan["head.weight"].residual
    assert plan["head.weight"].std == pytest.approx(he, rel=1e-12)
    assert torch.count_nonzero(model.head.weight).item() == model.head.weight.numel()


def test_auto_residual_zero_on_resnet_zeroes_the_last_norm_of_each_block():
    # torchvision's zero_init_residual: bn2.weight = 0 in every BasicBlock, all other norms 1.
    model = nets.ResNet()
    _init(model, wi.Policy.preset("auto", residual="zero"), seed=0)
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            value = 0.0 if name.endswith("bn2") else 1.0
            _assert_const(module.weight, value, f"auto(residual='zero'): {name}.weight")
            _assert_const(module.bias, 0.0, f"auto(residual='zero'): {name}.bias")
        elif isinstance(module, nn.Conv2d):
            assert torch.count_nonzero(module.weight).item() == module.weight.numel(), name


# --- options and errors ---------------------------------------------------------------------------
def _small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


@pytest.mark.parametrize("name, wanted", [("gtp2", "gpt2"), ("kerass", "keras"),
                                          ("Torch", "torch"), ("fix_up", "fixup")])
def test_unknown_preset_name_raises_a_helpful_error_and_leaves_the_model_alone(name, wanted):
    model = _small_model()
    before = _state_bytes(model)
    with pytest.raises(wi.InitError) as info:
        wi.init_model(model, name)
    message = str(info.value)
    assert repr(name) in message and f"Did you mean {wanted!r}" in message, message
    assert all(preset in message for preset in ("auto", "torch", "keras", "flax", "gpt2",
                                                "fixup")), message
    assert _state_bytes(model) == before
    with pytest.raises(wi.InitError) as info:
        wi.Policy.preset(name)
    assert repr(name) in str(info.value) and wanted in str(info.value), str(info.value)


@pytest.mark.parametrize("name, options, shown", [
    # unknown options: the message names the option and the preset
    ("gpt2", {"sd": 0.01}, ("sd", "'gpt2'")),
    ("torch", {"residual": "zero"}, ("residual", "'torch'")),
    ("auto", {"residul": "zero"}, ("residul", "'auto'")),
    # bad values: the message names the option, shows the value and the fix
    ("auto", {"residual": "zeros"}, ("`residual`", "'zeros'", "Did you mean 'zero'?")),
    ("gpt2", {"std": -0.01}, ("`std`", "-0.01", ">= 0")),
    ("gpt2", {"std": "big"}, ("`std`", "'big'")),
])
def test_bad_preset_options_raise_init_error_and_leave_the_model_alone(name, options, shown):
    model = _small_model()
    before = _state_bytes(model)
    with pytest.raises(wi.InitError) as info:
        wi.init_model(model, wi.Policy.preset(name, **options))
    message = str(info.value)
    assert all(text in message for text in shown), (shown, message)
    assert _state_bytes(model) == before


@pytest.mark.parametrize("name, options, valid", [
    ("gpt2", {"sd": 0.01}, ["std"]),
    ("auto", {"residul": "zero"}, ["residual"]),
    ("torch", {"residual": "zero"}, []),
])
def test_unknown_preset_option_error_lists_the_valid_options(name, options, valid):
    # DESIGN: error messages "list valid choices or the fix". An unknown keyword must name the
    # options the preset takes (or say that it takes none).
    with pytest.raises(wi.InitError) as info:
        wi.Policy.preset(name, **options)
    message = str(info.value)
    assert next(iter(options)) in message, message
    if valid:
        assert all(f"'{option}'" in message or f"`{option}`" in message for option in valid), (
            f"the error for {name}({options}) does not list the valid options {valid}: "
            f"{message}")
    else:
        assert "no options" in message or "takes none" in message, (
            f"the error for {name}({options}) does not say {name!r} takes no options: {message}")


def test_preset_with_options_is_a_policy_named_after_the_preset():
    for name, options in (("auto", {"residual": "zero"}), ("gpt2", {"std": 0.01}),
                          ("keras", {}), ("fixup", {})):
        policy = wi.Policy.preset(name, **options)
        assert isinstance(policy, wi.Policy) and policy.name == name, policy
        plan = wi.init_model(_small_model(), policy, dry_run=True)
        assert plan.policy == name
        assert all(row.rule.startswith(f"{name}:") for row in plan), [r.rule for r in plan]
