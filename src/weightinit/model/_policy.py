"""Policies: an ordered list of small rules, first match wins; the presets are such lists."""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import math
from collections.abc import Callable, Sequence
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
from ..theory import Fans
from ._dataflow import Feed, default_params


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """Everything a rule can match on and a preset can compute from, for one parameter.

    Attributes:
        name: the qualified name (the first one, when the parameter is tied).
        aliases: the other names of a tied parameter.
        shape: its shape.
        role: what it is (``"linear.weight"``, ``"norm.bias"``, ... see `wi.ROLES`).
        layer: the owning module's class name; `module` its qualified name.
        fans: from the logical layout (per block for packed q/k/v and recurrent gates).
        torch_fans: torch's ``_calculate_fan_in_and_fan_out`` of the raw shape.
        feed: what feeds the layer (activation label, source, second moment).
        residual_end: the layer ends a residual branch (its output reaches a residual add).
        n_residual: residual branches found in the model.
        branch_layers: weight layers in the residual branch this layer sits in (0: none).
        output_layer: the layer's output is the model's output.
        tied_output: an embedding whose weight is also an output projection.
        gates: stacked gates in a recurrent weight (LSTM 4, GRU 3, else 1).
        weight_shape: the shape of the owning module's ``weight`` (for biases, whose torch
            default depends on it).
    """

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    role: str
    layer: str
    module: str
    fans: Fans | None
    torch_fans: Fans | None
    feed: Feed
    residual_end: bool = False
    n_residual: int = 0
    branch_layers: int = 0
    output_layer: bool = False
    tied_output: bool = False
    gates: int = 1
    weight_shape: tuple[int, ...] | None = None

    @property
    def activation(self) -> str:
        return self.feed.label


SpecOrFactory = Spec | None | Callable[[ParamInfo], "Spec | None"]


def _glob(pattern: str | Sequence[str] | None, value: str) -> bool:
    if pattern is None:
        return True
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclasses.dataclass(frozen=True)
class Rule:
    """Give `spec` to every parameter that matches all the given criteria.

    Args:
        spec: a `Spec`; ``None`` to keep the parameter as it is; or a function of the
            `ParamInfo` returning either (so a rule can depend on fans or the activation).
        module: a module class (or tuple of classes), or a class-name glob (``"*Norm"``).
        name: a glob on the qualified parameter name or its aliases (``"*.c_proj.weight"``).
        role: a glob (or list of globs) on the role (``"*.bias"``, ``"norm.*"``).
        activation: a glob on the feeding activation's label (``"relu"``, ``"leaky_relu*"``).
        label: what the plan's rule column says (default: the criteria).

    Example:
        >>> wi.Rule(wi.Zeros(), role="*.bias")
    """

    spec: SpecOrFactory
    module: type | tuple[type, ...] | str | None = None
    name: str | Sequence[str] | None = None
    role: str | Sequence[str] | None = None
    activation: str | Sequence[str] | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.spec is not None and not isinstance(self.spec, Spec) and not callable(
                self.spec):
            raise InitError(
                f"`spec` of a Rule must be a weightinit Spec, None (keep the parameter) or a "
                f"function of the ParamInfo, got {type(self.spec).__name__} {self.spec!r}."
            )
        if isinstance(self.module, type) or (isinstance(self.module, tuple) and all(
                isinstance(m, type) for m in self.module)) or self.module is None:
            pass
        elif not isinstance(self.module, str):
            raise InitError(
                f"`module` of a Rule must be a class, a tuple of classes or a class-name glob, "
                f"got {self.module!r}."
            )
        for field in ("name", "role", "activation"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str) and not (
                    isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
                raise InitError(f"`{field}` of a Rule must be a glob string, got {value!r}.")
        from ._roles import ROLES
        roles = [self.role] if isinstance(self.role, str) else list(self.role or [])
        for role in roles:
            if not any(c in role for c in "*?[") and role not in ROLES:
                raise InitError(
                    f"`role` {role!r} of a Rule is not a role.{did_you_mean(role, ROLES)}"
                    f" Roles: {', '.join(ROLES)} (globs like '*.bias' work too)."
                )
        if isinstance(self.spec, type):
            raise InitError(
                f"`spec` of a Rule must be a Spec instance, got the class {self.spec.__name__}; "
                f"write {self.spec.__name__}()."
            )

    def describe(self) -> str:
        if self.label is not None:
            return self.label
        parts = []
        for field in ("module", "name", "role", "activation"):
            value = getattr(self, field)
            if value is not None:
                shown = value.__name__ if isinstance(value, type) else value
                parts.append(f"{field}={shown!r}")
        return f"Rule({', '.join(parts) or 'all'})"

    def matches(self, info: ParamInfo, module_type: type | None = None) -> bool:
        if self.module is not None:
            if isinstance(self.module, str):
                if not fnmatch.fnmatchcase(info.layer, self.module):
                    return False
            elif module_type is None or not issubclass(module_type, self.module):
                return False
        if self.name is not None and not any(_glob(self.name, n)
                                             for n in (info.name, *info.aliases)):
            return False
        return _glob(self.role, info.role) and _glob(self.activation, info.activation)

    def resolve(self, info: ParamInfo) -> Spec | None:
        if self.spec is None or isinstance(self.spec, Spec):
            return self.spec
        result = self.spec(info)
        if result is not None and not isinstance(result, Spec):
            raise InitError(
                f"The rule {self.describe()} returned {result!r} for {info.name!r}; a rule's "
                "function must return a weightinit Spec or None."
            )
        return result


class Policy:
    """An ordered list of `Rule`s; for each parameter the first rule that matches decides.

    Args:
        rules: the rules, highest precedence first. A `Policy` in the list contributes its
            rules in place, so ``Policy([my_rule, *Policy.preset("auto").rules])`` and
            ``Policy([my_rule, Policy.preset("auto")])`` are the same.
        strict: raise when a parameter matches no rule, or a rule matches no parameter.
            Otherwise unmatched parameters are kept as they are and flagged in the plan.
        name: shown in the plan.
    """

    def __init__(self, rules: Sequence[Rule | Policy], *, strict: bool = False,
                 name: str = "custom") -> None:
        if isinstance(rules, (Rule, Policy)) or not isinstance(rules, Sequence):
            raise InitError(
                f"`rules` must be a list of wi.Rule, got {type(rules).__name__}; wrap a single "
                "rule in a list: wi.Policy([rule])."
            )
        flat: list[Rule] = []
        own: list[Rule] = []  # the rules listed here, not those of a nested policy
        for rule in rules:
            if isinstance(rule, Policy):
                flat.extend(rule.rules)
            elif isinstance(rule, Rule):
                flat.append(rule)
                own.append(rule)
            else:
                raise InitError(
                    f"Every item of `rules` must be a wi.Rule (or a wi.Policy), got "
                    f"{type(rule).__name__} {rule!r}."
                )
        self.rules: tuple[Rule, ...] = tuple(flat)
        self._own = tuple(own)
        self.strict = bool(strict)
        self.name = name

    def __repr__(self) -> str:
        return f"Policy({len(self.rules)} rules, name={self.name!r}, strict={self.strict})"

    def decide(self, infos: Sequence[ParamInfo], module_types: Sequence[type | None]
               ) -> list[tuple[Spec | None, str]]:
        """(spec, rule label) for each parameter; (None, "unmatched") when none matches."""
        used = [False] * len(self.rules)
        out: list[tuple[Spec | None, str]] = []
        for info, module_type in zip(infos, module_types, strict=True):
            for i, rule in enumerate(self.rules):
                if rule.matches(info, module_type):
                    used[i] = True
                    try:
                        spec = rule.resolve(info)
                    except InitError as exc:
                        raise InitError(
                            f"{exc} (rule {rule.describe()}, parameter {info.name!r} of shape "
                            f"{info.shape})"
                        ) from None
                    except Exception as exc:
                        raise InitError(
                            f"The rule {rule.describe()} raised {type(exc).__name__}: {exc} "
                            f"for parameter {info.name!r} of shape {info.shape}. Nothing was "
                            "changed."
                        ) from exc
                    out.append((spec, f"{self.name}: {rule.describe()}"))
                    break
            else:
                if self.strict:
                    raise InitError(
                        f"No rule of policy {self.name!r} matches parameter {info.name!r} "
                        f"(shape {info.shape}, role {info.role!r}, layer {info.layer}, "
                        f"activation {info.activation!r}); add a rule for it, or pass "
                        "strict=False to keep it as it is."
                    )
                out.append((None, "unmatched"))
        if self.strict:  # a nested preset's catch-alls may go unused; the rules given here not
            unused = [r.describe() for r, u in zip(self.rules, used, strict=True)
                      if not u and any(r is o for o in self._own)]
            if unused:
                raise InitError(
                    f"Rules of policy {self.name!r} matched no parameter: {', '.join(unused)}. "
                    "Fix their criteria (a typo in a name glob?), or pass strict=False."
                )
        return out

    @classmethod
    def preset(cls, name: str, **options: Any) -> Policy:
        """A named policy: ``"auto"``, ``"torch"``, ``"keras"``, ``"flax"``, ``"gpt2"``,
        ``"fixup"``. Options: ``auto(residual="scale"|"zero"|"none")``,
        ``gpt2(std=0.02)``."""
        check_choice("policy", name, tuple(PRESETS))
        factory = PRESETS[name]
        valid = list(inspect.signature(factory).parameters)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            if not valid:
                raise InitError(f"Bad options {unknown}: policy {name!r} takes no options.")
            raise InitError(
                f"Bad options {unknown} for policy {name!r}.{did_you_mean(unknown[0], valid)} "
                f"Its options: {', '.join(valid)}."
            )
        return factory(**options)


# --- building blocks shared by the presets ---------------------------------------------------
def _keep_unknown() -> Rule:
    return Rule(None, role="unknown", label="unknown role: kept as is")


def _fans_of(info: ParamInfo) -> Fans:
    if info.fans is None:
        raise InitError(f"{info.name!r} (role {info.role}) has no fans.")
    return info.fans


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
    if info.tied_output and len(info.shape) == 2:
        return Normal(std=1.0 / math.sqrt(info.shape[1]))
    return Normal(std=1.0)


Residual = Literal["scale", "zero", "none"]


def auto(residual: Residual = "scale") -> Policy:
    """weightinit's default, variance-preserving for what actually feeds each layer.

    - weights: std = gain(feed) / sqrt(fan_in) from the logical fans (He with the computed gain;
      LeCun for linear and SELU inputs; gated units use the product of the two moments).
    - residual branches: the layer (or the norm) that ends each branch is scaled by
      1/sqrt(N), N the number of residual branches, so the stream's variance grows by at most
      (1 + 1/N)^N < e over the whole depth (as GPT-2's 1/sqrt(2 n_layer)); ``"zero"``
      starts each branch at zero instead (Fixup, ReZero, torchvision's zero_init_residual);
      ``"none"`` leaves them unscaled.
    - biases 0; norms (1, 0); LSTM forget-gate bias 1, recurrent weights orthogonal.
    - embeddings N(0, 1), or N(0, 1/dim) when the weight is tied to an output layer (its
      logits then have unit variance); positional embeddings and class tokens N(0, 1).
    - parameters whose role is unknown are kept as they are and flagged.
    """
    check_choice("residual", residual, ("scale", "zero", "none"))

    def weight(info: ParamInfo) -> Spec:
        if info.residual_end and residual != "none" and info.n_residual:
            if residual == "zero":
                return Zeros()
            return variance_preserving(info, 1.0 / info.n_residual)
        return variance_preserving(info)

    def norm_weight(info: ParamInfo) -> Spec:
        if info.residual_end and residual != "none" and info.n_residual:
            return Zeros() if residual == "zero" else Constant(1.0 / math.sqrt(info.n_residual))
        return Ones()

    return Policy([
        _keep_unknown(),
        Rule(_forget_bias, role="rnn.bias_ih", label="forget-gate bias 1"),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="biases 0"),
        Rule(norm_weight, role="norm.weight", label="norm scale"),
        Rule(lambda i: Orthogonal(blocks=i.gates), role="rnn.weight_hh",
             label="orthogonal per gate"),
        Rule(_embedding_auto, role="embedding", label="embedding"),
        Rule(Normal(std=1.0), role=["pos_embedding", "class_token", "mask_token"],
             label="tokens N(0,1)"),
        Rule(Constant(0.25), role="prelu.weight", label="PReLU slope 0.25"),
        Rule(lambda i: Glorot(distribution="normal"), role="attention.bias_kv",
             label="attention bias_k/v Glorot normal"),
        Rule(weight, label="gain(feed)/sqrt(fan_in)"),
    ], name="auto")


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


def torch_defaults() -> Policy:
    """What torch's (and transformers' Conv1D's) constructors do, layer by layer: Linear,
    ConvNd and ConvTransposeNd weights and biases U(+-1/sqrt(fan_in)) with torch's raw fan_in
    (kaiming_uniform_ with a = sqrt(5)); Embedding N(0, 1); norms (1, 0); RNN/LSTM/GRU
    U(+-1/sqrt(hidden)); MultiheadAttention in_proj Glorot uniform, its biases 0, bias_k/v
    Glorot normal; Conv1D N(0, 0.02) and bias 0; PReLU 0.25."""
    return Policy([
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
    ], name="torch")


def keras() -> Policy:
    """Keras defaults: glorot_uniform kernels (fans of the raw kernel, as Keras computes
    them), zero biases, orthogonal recurrent kernels (the whole stacked kernel), LSTM
    unit_forget_bias, Embedding U(-0.05, 0.05), norms (1, 0), PReLU alpha 0."""
    return Policy([
        _keep_unknown(),
        Rule(_forget_bias, role="rnn.bias_ih", label="unit_forget_bias"),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="zeros"),
        Rule(Ones(), role="norm.weight", label="ones"),
        Rule(Orthogonal(), role="rnn.weight_hh", label="orthogonal"),
        Rule(Uniform(-0.05, 0.05), role=["embedding", "pos_embedding", "class_token",
                                         "mask_token"], label="uniform(-0.05, 0.05)"),
        Rule(Zeros(), role="prelu.weight", label="PReLU alpha zeros"),
        Rule(_raw_glorot("uniform"), label="glorot_uniform"),
    ], name="keras")


def flax() -> Policy:
    """Flax linen defaults: lecun_normal (a truncated normal, std 1/sqrt(fan_in)) kernels,
    zero biases, orthogonal recurrent kernels per gate (LSTMCell/GRUCell), Embed N(0, 1/dim),
    norms (1, 0), PReLU negative_slope 0.01."""
    def embed(info: ParamInfo) -> Spec:
        return Normal(std=1.0 / math.sqrt(info.shape[-1]))

    def lecun(info: ParamInfo) -> Spec:
        if info.fans is None:
            return embed(info)
        return LeCun(distribution="truncated_normal")

    return Policy([
        _keep_unknown(),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="zeros"),
        Rule(Ones(), role="norm.weight", label="ones"),
        Rule(lambda i: Orthogonal(blocks=i.gates), role="rnn.weight_hh",
             label="orthogonal per gate"),
        Rule(embed, role=["embedding", "pos_embedding", "class_token", "mask_token"],
             label="embed_init"),
        Rule(Constant(0.01), role="prelu.weight", label="PReLU negative_slope 0.01"),
        Rule(lecun, label="lecun_normal"),
    ], name="flax")


def gpt2(std: float = 0.02) -> Policy:
    """GPT-2 (Radford et al. 2019; transformers' GPT2PreTrainedModel): every weight and
    embedding N(0, std^2), biases 0, norms (1, 0), and the projection that ends each residual
    branch N(0, (std / sqrt(N))^2), N = residual branches = 2 n_layer."""
    def projection(info: ParamInfo) -> Spec:
        if info.residual_end and info.n_residual:
            return Normal(std=std / math.sqrt(info.n_residual))
        return Normal(std=std)

    return Policy([
        _keep_unknown(),
        Rule(Zeros(), role=["*.bias", "rnn.bias_*"], label="biases 0"),
        Rule(Ones(), role="norm.weight", label="norm scale 1"),
        Rule(Normal(std=std), role=["embedding", "pos_embedding", "class_token", "mask_token"],
             label=f"N(0,{std:g})"),
        Rule(projection, label=f"N(0,{std:g}), /sqrt(N) at branch ends"),
    ], name="gpt2")


def fixup() -> Policy:
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
    return Policy([
        Rule(branch, role=["linear.weight", "conv.weight", "conv_transpose.weight",
                           "qkv.weight"], label="fixup: L^(-1/(2m-2)), ends 0"),
        base,
    ], name="fixup")


PRESETS: dict[str, Callable[..., Policy]] = {
    "auto": auto, "torch": torch_defaults, "keras": keras, "flax": flax, "gpt2": gpt2,
    "fixup": fixup,
}


CALIBRATORS: dict[str, Callable[..., Any]] = {}
"""Data-driven policies, registered by the layers above this one (``"lsuv"`` by
weightinit.lsuv): init_model calls ``CALIBRATORS[name](model, batch, seed=seed)`` and returns
the InitPlan it gives."""


def resolve_policy(policy: object) -> Policy:
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
