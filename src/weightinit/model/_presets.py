"""The named policies (`wi.Policy.preset(name)`, ``init_model(model, name)``): each one an
ordered list of rules, written as one decorated function here. Adding a preset is adding one
such function; `PRESETS`, the CLI's choices and the error messages read the names from here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

from .._errors import InitError, check_choice, did_you_mean
from ..schemes import (
    BlockConstant,
    Constant,
    Glorot,
    He,
    LeCun,
    Normal,
    Ones,
    Orthogonal,
    Spec,
    Uniform,
    VarianceScaling,
    Zeros,
)
from ._info import ParamInfo
from ._pointwise import default_params
from ._policy import CALIBRATORS, Policy, Rule

PRESETS: dict[str, Callable[..., Policy]] = {}
"""Preset name -> a function of the preset's options returning the Policy."""


def _preset(name: str, notes: tuple[str, ...] = ()
            ) -> Callable[[Callable[..., list[Rule | Policy]]], Callable[..., Policy]]:
    """Register a function returning a preset's rules as the preset `name`; `notes` go into
    every plan it makes."""
    def register(rules: Callable[..., list[Rule | Policy]]) -> Callable[..., Policy]:
        @functools.wraps(rules)
        def build(*args: Any, **options: Any) -> Policy:
            return Policy(rules(*args, **options), name=name, notes=notes)
        PRESETS[name] = build
        return build
    return register


# --- building blocks shared by the presets ---------------------------------------------------
def _keep_unknown() -> Rule:
    return Rule(None, role="unknown", label="unknown role: kept as is")


def variance_preserving(info: ParamInfo, scale: float = 1.0) -> Spec:
    """std = gain(feed) * sqrt(scale) / sqrt(fan_in): He with the computed gain, LeCun for
    linear (and SELU) inputs. An unknown feed gets LeCun (gain 1)."""
    act = info.feed.activation
    if scale == 1.0 and act is not None and act.known:
        if act.name in ("linear", "selu"):
            return LeCun()
        if act.params == default_params(act.name):
            return He(activation=act.name)
    gain = info.feed.gain if info.feed.gain is not None else 1.0
    if scale == 1.0 and gain == 1.0:
        return LeCun()
    return VarianceScaling(scale=gain * gain * scale, mode="fan_in", distribution="normal")


def _forget_bias(info: ParamInfo) -> Spec:
    values = [0.0] * info.gates
    if info.gates == 4:
        values[1] = 1.0  # LSTM gates are (input, forget, cell, output)
    return BlockConstant(values=tuple(values))


def _embedding_auto(info: ParamInfo) -> Spec:
    dim = info.shape[1] if info.tied_output and len(info.shape) == 2 else info.stream_dim
    return Normal(std=1.0 / math.sqrt(dim) if dim else 1.0)


def _kept(info: ParamInfo) -> bool:
    return bool(info.keep)


def _router(info: ParamInfo) -> bool:
    return info.router


ROUTER_SCALE = 0.1
"""The variance scale of a router's weight (Fedus et al., Switch Transformers, 2021,
https://arxiv.org/abs/2101.03961, section 2.4: initialization scale 0.1 for stable routing)."""

Residual = Literal["scale", "zero", "none"]


AUTO_SCALE = (
    "Scale: each weight is variance-preserving for what feeds it, so activations and the "
    "residual stream keep an RMS of order 1 at every depth, whatever scale the model's own "
    "init used (an N(0, 0.02) init keeps a transformer's stream near 0.02-0.1; norms, and the "
    "final norm where there is one, hide the difference downstream).")


@_preset("auto", notes=(AUTO_SCALE,))
def auto(residual: Residual = "scale") -> list[Rule | Policy]:
    """weightinit's default, variance-preserving for what actually feeds each layer.

    - kept as the model set them, with the reason in the plan: frozen parameters
      (``requires_grad=False``), parameters the model marks ``_no_reinit``, biases the model
      set to a deliberate offset (a mean far from 0: Mamba's time-step bias), lookups added
      to attention scores (T5's position bias), and parameters whose role is unknown (a
      learned scale such as LayerScale or CLIP's logit_scale, Mamba's A_log and D).
    - weights: std = gain(feed) / sqrt(fan_in) from the logical fans of the op that consumes
      them (He with the computed gain; LeCun for linear and SELU inputs; gated units use the
      product of the two moments; a concatenation the channel-weighted mean of its inputs';
      experts' 3-d weights the fans of one expert). A query whose attention scores lack
      1/sqrt(d) (T5 computes q.k unscaled) takes the factor in its std; a router (its logits
      only choose, through a softmax or top-k) gets variance scale 0.1 (Switch Transformers).
    - residual branches: the layer (or the norm) that ends each branch is scaled by
      1/sqrt(N), N the number of residual branches (a parallel residual x + f(x) + g(x) has
      two), so the stream's variance grows by at most (1 + 1/N)^N < e over the whole depth
      (as GPT-2's 1/sqrt(2 n_layer)); ``"zero"`` starts each branch at zero instead (Fixup,
      ReZero, torchvision's zero_init_residual); ``"none"`` leaves them unscaled.
    - biases 0; norms scale 1, bias 0, where the scale is what the norm's forward does with
      its weight, measured (Gemma's ``x_hat * (1 + w)`` starts at w = 0); LSTM forget-gate
      bias 1, recurrent weights orthogonal.
    - embeddings: one scale for every lookup summed into the stream (token, position, token
      type), so no lookup swamps another. When the token embedding is tied to the output
      layer it is N(0, 1/dim): the tied logits <h, e> of a normalized h then have unit
      variance, which is LeCun's rule for that output layer (fan_in = dim); the positions
      summed with it share that std. Untied, N(0, 1), the scale of a normalized stream.
      Class and mask tokens N(0, 1).
    """
    check_choice("residual", residual, ("scale", "zero", "none"))

    def weight(info: ParamInfo) -> Spec:
        scale = info.std_factor ** 2
        if info.residual_end and residual != "none" and info.n_residual:
            if residual == "zero":
                return Zeros()
            scale /= info.n_residual
        return variance_preserving(info, scale)

    def norm_weight(info: ParamInfo) -> Spec:
        target = 1.0
        if info.residual_end and residual != "none" and info.n_residual:
            target = 0.0 if residual == "zero" else 1.0 / math.sqrt(info.n_residual)
        value = target - info.scale_offset
        return Ones() if value == 1.0 else Zeros() if value == 0.0 else Constant(value)

    return [
        Rule(None, when=_kept, label="kept: the model's own init"),
        _keep_unknown(),
        Rule(_forget_bias, role="rnn.bias_ih", label="forget-gate bias 1"),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="biases 0"),
        Rule(norm_weight, role="norm.weight", label="norm scale"),
        Rule(lambda i: Orthogonal(blocks=i.gates), role="rnn.weight_hh",
             label="orthogonal per gate"),
        Rule(_embedding_auto, role=["embedding", "pos_embedding"],
             label="embeddings: one scale"),
        Rule(Normal(std=1.0), role=["class_token", "mask_token"], label="tokens N(0,1)"),
        Rule(Constant(0.25), role="prelu.weight", label="PReLU slope 0.25"),
        Rule(lambda i: Glorot(distribution="normal"), role="attention.bias_kv",
             label="attention bias_k/v Glorot normal"),
        Rule(lambda i: variance_preserving(i, ROUTER_SCALE), when=_router,
             label="router: variance scale 0.1"),
        Rule(weight, label="gain(feed)/sqrt(fan_in)"),
    ]


def _torch_bound(info: ParamInfo) -> Spec:
    shape = info.weight_shape if info.role.endswith("bias") else info.shape
    if shape is None or len(shape) < 2:
        raise InitError(f"{info.name!r}: no weight to take torch's fan_in from.")
    fan_in = shape[1] * math.prod(shape[2:])
    if info.layer == "Conv1D":  # transformers' (in, out) layout
        fan_in = shape[0]
    elif info.layer == "Bilinear":  # torch bounds both by 1/sqrt(in1_features)
        fan_in = shape[1]
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return Uniform(-bound, bound) if bound > 0 else Zeros()


def _rnn_bound(info: ParamInfo) -> Spec:
    hidden = info.shape[0] // info.gates if info.role != "rnn.weight_hr" else info.shape[1]
    bound = 1.0 / math.sqrt(hidden)
    return Uniform(-bound, bound)


def _raw_glorot(distribution: str) -> Callable[[ParamInfo], Spec]:
    def make(info: ParamInfo) -> Spec:
        fans = info.torch_fans
        if fans is None:
            raise InitError(f"{info.name!r} of shape {info.shape} has no fans.")
        std = math.sqrt(2.0 / (fans.fan_in + fans.fan_out))
        if distribution == "uniform":
            return Uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std)
        return Normal(std=std)
    return make


@_preset("torch")
def torch_defaults() -> list[Rule | Policy]:
    """What torch's (and transformers' Conv1D's) constructors do, layer by layer: Linear,
    ConvNd and ConvTransposeNd weights and biases U(+-1/sqrt(fan_in)) with torch's raw fan_in
    (kaiming_uniform_ with a = sqrt(5)); Embedding N(0, 1); norms (1, 0); RNN/LSTM/GRU
    U(+-1/sqrt(hidden)); MultiheadAttention in_proj Glorot uniform, its biases 0, bias_k/v
    Glorot normal; Conv1D N(0, 0.02) and bias 0; PReLU 0.25."""
    return [
        _keep_unknown(),
        Rule(Normal(std=0.02), module="Conv1D", role="*.weight", label="Conv1D N(0,0.02)"),
        Rule(Zeros(), module="Conv1D", label="Conv1D bias 0"),
        Rule(Zeros(), module="MultiheadAttention", role="qkv.bias", label="MHA in_proj_bias 0"),
        Rule(Zeros(), module="NonDynamicallyQuantizableLinear", role="linear.bias",
             label="MHA out_proj bias 0"),
        Rule(_raw_glorot("uniform"), module="MultiheadAttention",
             role=["qkv.weight", "linear.weight"], label="MHA xavier_uniform_"),
        Rule(_raw_glorot("normal"), role="attention.bias_kv", label="MHA xavier_normal_"),
        Rule(_rnn_bound, role="rnn.*", label="RNN U(+-1/sqrt(hidden))"),
        Rule(Normal(std=1.0), role="embedding", label="Embedding N(0,1)"),
        Rule(Ones(), role="norm.weight", label="norm weight 1"),
        Rule(Zeros(), role="norm.bias", label="norm bias 0"),
        Rule(Constant(0.25), role="prelu.weight", label="PReLU 0.25"),
        Rule(_torch_bound, role=["linear.*", "qkv.*", "conv.*", "conv_transpose.*"],
             label="kaiming_uniform_(a=sqrt(5))"),
    ]


@_preset("keras")
def keras() -> list[Rule | Policy]:
    """Keras defaults: glorot_uniform kernels (fans of the raw kernel, as Keras computes
    them), zero biases, orthogonal recurrent kernels (the whole stacked kernel), LSTM
    unit_forget_bias, Embedding U(-0.05, 0.05), norms (1, 0), PReLU alpha 0."""
    return [
        _keep_unknown(),
        Rule(_forget_bias, role="rnn.bias_ih", label="unit_forget_bias"),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="zeros"),
        Rule(Ones(), role="norm.weight", label="ones"),
        Rule(Orthogonal(), role="rnn.weight_hh", label="orthogonal"),
        Rule(Uniform(-0.05, 0.05), role=["embedding", "pos_embedding", "class_token",
                                         "mask_token"], label="uniform(-0.05, 0.05)"),
        Rule(Zeros(), role="prelu.weight", label="PReLU alpha zeros"),
        Rule(_raw_glorot("uniform"), label="glorot_uniform"),
    ]


@_preset("flax")
def flax() -> list[Rule | Policy]:
    """Flax linen defaults: lecun_normal (a truncated normal, std 1/sqrt(fan_in)) kernels,
    zero biases, orthogonal recurrent kernels per gate (LSTMCell/GRUCell), Embed N(0, 1/dim),
    norms (1, 0), PReLU negative_slope 0.01."""
    def embed(info: ParamInfo) -> Spec:
        return Normal(std=1.0 / math.sqrt(info.shape[-1]))

    def lecun(info: ParamInfo) -> Spec:
        if info.fans is None:
            return embed(info)
        return LeCun(distribution="truncated_normal")

    return [
        _keep_unknown(),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="zeros"),
        Rule(Ones(), role="norm.weight", label="ones"),
        Rule(lambda i: Orthogonal(blocks=i.gates), role="rnn.weight_hh",
             label="orthogonal per gate"),
        Rule(embed, role=["embedding", "pos_embedding", "class_token", "mask_token"],
             label="embed_init"),
        Rule(Constant(0.01), role="prelu.weight", label="PReLU negative_slope 0.01"),
        Rule(lecun, label="lecun_normal"),
    ]


@_preset("gpt2")
def gpt2(std: float = 0.02) -> list[Rule | Policy]:
    """GPT-2 (Radford et al. 2019; transformers' GPT2PreTrainedModel): every weight and
    embedding N(0, std^2), biases 0, norms (1, 0), and the projection that ends each residual
    branch N(0, (std / sqrt(N))^2), N = residual branches = 2 n_layer."""
    def projection(info: ParamInfo) -> Spec:
        if info.residual_end and info.n_residual:
            return Normal(std=std / math.sqrt(info.n_residual))
        return Normal(std=std)

    return [
        _keep_unknown(),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="biases 0"),
        Rule(Ones(), role="norm.weight", label="norm scale 1"),
        Rule(Normal(std=std), role=["embedding", "pos_embedding", "class_token", "mask_token"],
             label=f"N(0,{std:g})"),
        Rule(projection, label=f"N(0,{std:g}), /sqrt(N) at branch ends"),
    ]


@_preset("fixup")
def fixup() -> list[Rule | Policy]:
    """Fixup (Zhang et al., Fixup Initialization: Residual Learning Without Normalization,
    2019, https://arxiv.org/abs/1901.09321): the last layer of each residual branch and the
    classification layer start at 0; the other layers in a branch of m layers get the
    variance-preserving std times L^(-1/(2m-2)), L the number of branches. Everything else as
    in ``"auto"`` (without residual scaling)."""
    def branch(info: ParamInfo) -> Spec:
        if info.residual_end or info.output_layer:
            return Zeros()
        m = info.branch_layers
        if m >= 2 and info.n_residual:
            factor = info.n_residual ** (-1.0 / (2 * m - 2))
            return variance_preserving(info, factor * factor)
        return variance_preserving(info)

    base = auto(residual="none")
    return [
        Rule(None, when=_kept, label="kept: the model's own init"),
        Rule(branch, role=["linear.weight", "conv.weight", "conv_transpose.weight",
                           "qkv.weight"], label="fixup: L^(-1/(2m-2)), ends 0"),
        base,
    ]


def resolve_policy(policy: object) -> Policy:
    """A `Policy` from what a user passes as `policy`: a Policy, a preset name, or a list of
    rules; InitError (with the closest name) otherwise."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        if policy not in PRESETS:
            names = [*PRESETS, *CALIBRATORS]
            raise InitError(
                f"`policy` {policy!r} is not a preset.{did_you_mean(policy, names)} "
                f"Presets: {', '.join(names)}; or pass a wi.Policy([...rules...])."
            )
        return PRESETS[policy]()
    if isinstance(policy, (list, tuple)):
        return Policy(policy)
    raise InitError(
        f"`policy` must be a preset name ({', '.join(PRESETS)}) or a wi.Policy, got "
        f"{type(policy).__name__} {policy!r}."
    )
