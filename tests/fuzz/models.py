"""Random small models, policies and batches, drawn as recipes whose repr is a reproducer.

A `ModelRecipe` is an ``nn.Sequential`` of Linear/Conv/Embedding layers, norms, activations,
dropout, residual blocks, learned scales, LSTM/GRU, attention and transposed convolutions, with
sizes that may be 0, plus what real models carry: tied weights, frozen parameters, stale grads,
an extra buffer, hooks, eval/train flags, a parametrization (weight_norm, spectral_norm,
orthogonal), sometimes a NaN weight. `build()` makes
it under a forked, seeded torch RNG (the same recipe gives the same model, and the test's own
global RNG is left alone). A `BatchRecipe` is the model's input, well-formed or not; a
`PolicyRecipe` a preset name (or a misspelling) or a `wi.Policy` of random rules."""

from __future__ import annotations

import dataclasses
from typing import Any

import fuzz_strategies as fs
import torch
from hypothesis import strategies as st
from torch import nn

import weightinit as wi
from weightinit.model import CALIBRATORS, PRESETS

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
               "sigmoid": nn.Sigmoid, "leaky_relu": lambda: nn.LeakyReLU(0.2),
               "selu": nn.SELU, "elu": nn.ELU, "identity": nn.Identity}


class Residual(nn.Module):
    """x + body(x): a residual branch (what `auto` and `fixup` scale)."""

    def __init__(self, width: int, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), ACTIVATIONS[activation](),
                                  nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LayerScale(nn.Module):
    """x * gamma with a learned per-feature gamma: a parameter of no known role."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((width,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Recurrent(nn.Module):
    """An LSTM (or GRU) on (B, T, width) or an unbatched (T, width) input, output only."""

    def __init__(self, width: int, hidden: int, kind: str) -> None:
        super().__init__()
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(width, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class SelfAttention(nn.Module):
    """nn.MultiheadAttention on (B, T, width), or an unbatched (T, width) input."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


PARAMETRIZATIONS = (None, "weight_norm", "spectral_norm", "orthogonal")


@dataclasses.dataclass(frozen=True)
class ModelRecipe:
    """`family`: "mlp" (input (B, width)), "conv1d"/"conv2d" (input (B, width, *spatial)) or
    "embed" (token ids (B, T) into Embedding(vocab, width)). `layers`: (kind, size or param)
    pairs applied in order; "head" flattens a conv family and adds a Linear."""

    family: str
    width: int
    layers: tuple[tuple[str, Any], ...]
    spatial: int = 3
    vocab: int = 5
    tie: bool = False
    frozen: tuple[int, ...] = ()
    grads: bool = False
    buffer: bool = False
    hooks: bool = False
    eval_mode: bool = False
    poison: bool = False
    parametrize: str | None = None
    seed: int = 0

    def input_shape(self, batch: int) -> tuple[int, ...]:
        if self.family == "embed":
            return (batch, self.spatial)
        if self.family == "mlp":
            return (batch, self.width)
        nd = 1 if self.family == "conv1d" else 2
        return (batch, self.width, *([self.spatial] * nd))

    def build(self) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self._build()

    def _build(self) -> nn.Module:
        mods: list[nn.Module] = []
        width = self.width
        nd = {"conv1d": 1, "conv2d": 2}.get(self.family, 0)
        conv = (nn.Conv1d, nn.Conv2d)[nd - 1] if nd else None
        bn = (nn.BatchNorm1d, nn.BatchNorm2d)[nd - 1] if nd else nn.BatchNorm1d
        flat = nd == 0
        if self.family == "embed":
            mods.append(nn.Embedding(self.vocab, width))
        for kind, arg in self.layers:
            if kind == "linear" and (flat or nd == 0):
                mods.append(nn.Linear(width, arg[0], bias=arg[1]))
                width = arg[0]
            elif kind == "linear" and conv is not None:
                out = max(arg[0], 1)
                groups = arg[2] if width % arg[2] == 0 and out % arg[2] == 0 else 1
                mods.append(conv(width, out, kernel_size=arg[3], padding="same", bias=arg[1],
                                 groups=groups))
                width = out
            elif kind == "head" and not flat:
                mods += [nn.Flatten(), nn.Linear(width * self.spatial ** nd, arg)]
                width, flat = arg, True
            elif kind == "act":
                mods.append(ACTIVATIONS[arg]())
            elif kind == "layernorm" and (flat or nd == 0):
                mods.append(nn.LayerNorm(width, elementwise_affine=arg))
            elif kind == "batchnorm" and self.family != "embed" and not flat:
                mods.append(bn(width, affine=arg))
            elif kind == "batchnorm" and self.family == "mlp":
                mods.append(nn.BatchNorm1d(width, affine=arg))
            elif kind == "groupnorm" and not flat and width:
                mods.append(nn.GroupNorm(1, width))
            elif kind == "dropout":
                mods.append(nn.Dropout(arg))
            elif kind == "residual" and (flat or nd == 0):
                mods.append(Residual(width, arg))
            elif kind == "layerscale" and (flat or nd == 0):
                mods.append(LayerScale(width))
            elif kind in ("lstm", "gru") and (flat or nd == 0) and width and arg:
                mods.append(Recurrent(width, arg, kind))
                width = arg
            elif kind == "attention" and (flat or nd == 0) and width:
                mods.append(SelfAttention(width, 2 if width % 2 == 0 else 1))
            elif kind == "conv_transpose" and conv is not None and not flat:
                transpose = (nn.ConvTranspose1d, nn.ConvTranspose2d)[nd - 1]
                mods.append(transpose(width, max(arg, 1), kernel_size=3, padding=1))
                width = max(arg, 1)
        model = nn.Sequential(*mods)
        self._decorate(model)
        return model

    def _decorate(self, model: nn.Sequential) -> None:
        with torch.no_grad():
            if self.tie:
                weights = [m for m in model if isinstance(m, (nn.Linear, nn.Embedding))]
                for i, a in enumerate(weights):
                    b = next((b for b in weights[i + 1:] if b.weight.shape == a.weight.shape),
                             None)
                    if b is not None:
                        b.weight = a.weight
                        break
            if self.poison:
                first = next((m for m in model if getattr(m, "weight", None) is not None
                              and m.weight.numel()), None)
                if first is not None:
                    first.weight.view(-1)[0] = float("nan")
            for index in self.frozen:
                if index < len(model):
                    model[index].requires_grad_(False)
            if self.grads:
                for p in model.parameters():
                    p.grad = torch.randn_like(p)
        if self.parametrize is not None:
            first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d,
                                                                      nn.Conv2d))
                          and m.weight.numel()), None)
            if first is not None:
                from torch.nn.utils import parametrizations

                getattr(parametrizations, self.parametrize)(first)
        if self.buffer:
            model.register_buffer("extra", torch.randn(3))
        if self.hooks and len(model):
            model[0].register_forward_hook(lambda m, i, o: None)
            model[-1].register_forward_pre_hook(lambda m, i: None)
        model.train(not self.eval_mode)


@st.composite
def model_recipes(draw: st.DrawFn, max_layers: int = 6) -> ModelRecipe:
    family = draw(st.sampled_from(["mlp", "mlp", "conv1d", "conv2d", "embed"]))
    sizes = st.integers(0, 5) if family in ("mlp", "embed") else st.integers(1, 4)
    kinds = ["linear", "linear", "act", "layernorm", "batchnorm", "dropout", "residual",
             "layerscale", "lstm", "gru", "attention"]
    if family.startswith("conv"):
        kinds += ["groupnorm", "head", "conv_transpose"]
    layers = []
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=0, max_size=max_layers)):
        if kind == "linear":
            arg: Any = (draw(sizes), draw(st.booleans()), draw(st.sampled_from([1, 2])),
                        draw(st.sampled_from([1, 3])))
        elif kind in ("act", "residual"):
            arg = draw(st.sampled_from(sorted(ACTIVATIONS)))
        elif kind == "dropout":
            arg = draw(st.sampled_from([0.0, 0.5, 1.0]))
        elif kind in ("head", "lstm", "gru", "conv_transpose"):
            arg = draw(st.integers(0, 4))
        elif kind == "attention":
            arg = None
        else:
            arg = draw(st.booleans())
        layers.append((kind, arg))
    return ModelRecipe(
        family=family, width=draw(sizes), layers=tuple(layers),
        spatial=draw(st.integers(1, 3)), vocab=draw(st.integers(1, 6)),
        tie=draw(st.booleans()),
        frozen=tuple(draw(st.lists(st.integers(0, 6), max_size=2, unique=True))),
        grads=draw(st.booleans()), buffer=draw(st.booleans()), hooks=draw(st.booleans()),
        eval_mode=draw(st.booleans()), poison=draw(st.sampled_from([False] * 5 + [True])),
        parametrize=draw(st.sampled_from(PARAMETRIZATIONS + (None,) * 5)),
        seed=draw(st.integers(0, 3)),
    )


# --- batches ---------------------------------------------------------------------------------
BATCH_KINDS = ("good", "good", "good", "good", "empty", "wrong_shape", "nan", "inf", "huge",
               "zeros", "meta", "wrong_dtype", "tuple", "dict", "not_tensor", "list", "half")


@dataclasses.dataclass(frozen=True)
class BatchRecipe:
    kind: str = "good"
    size: int = 4
    seed: int = 0

    def build(self, recipe: ModelRecipe) -> Any:
        g = torch.Generator().manual_seed(self.seed)
        shape = recipe.input_shape(0 if self.kind == "empty" else self.size)
        if self.kind == "wrong_shape":
            shape = (*shape[:-1], shape[-1] + 1) if len(shape) > 1 else (*shape, 2)
        if recipe.family == "embed" and self.kind not in ("wrong_dtype", "half", "meta"):
            high = recipe.vocab + (3 if self.kind in ("huge", "inf") else 0)
            x: Any = torch.randint(-1 if self.kind == "nan" else 0, high, shape, generator=g)
        elif self.kind == "meta":
            x = torch.empty(shape, device="meta")
        elif recipe.family == "embed":
            x = torch.randn(shape, generator=g)
            x = x.half() if self.kind == "half" else x
        else:
            x = torch.randn(shape, generator=g)
            if self.kind == "nan" and x.numel():
                x.view(-1)[0] = float("nan")
            elif self.kind == "inf" and x.numel():
                x.view(-1)[-1] = float("inf")
            elif self.kind == "huge":
                x = x * 1e30
            elif self.kind == "zeros":
                x = torch.zeros_like(x)
            elif self.kind == "wrong_dtype":
                x = x.to(torch.int64)
            elif self.kind == "half":
                x = x.half()
        if self.kind == "tuple":
            return (x,)
        if self.kind == "dict":
            return {"input": x}
        if self.kind == "not_tensor":
            return "a batch"
        if self.kind == "list":
            return x.tolist()
        return x


batch_recipes = st.builds(BatchRecipe, st.sampled_from(BATCH_KINDS), st.integers(1, 5),
                          st.integers(0, 3))


# --- policies --------------------------------------------------------------------------------
ROLE_GLOBS = (*wi.ROLES, "*.weight", "*.bias", "norm.*", "*", "nonsense", "linear.weigth")
NAME_GLOBS = ("*", "0.weight", "*.bias", "1.*", "nothing.*")


def _raising(info: Any) -> Any:
    raise RuntimeError("a rule's factory failed")


def _not_a_spec(info: Any) -> Any:
    return 3


def _fan_based(info: Any) -> Any:
    return wi.Normal(std=1.0 / max(info.fans.fan_in, 1)) if info.fans is not None else wi.Zeros()


FACTORIES = {"raising": _raising, "not_a_spec": _not_a_spec, "fan_based": _fan_based}


@dataclasses.dataclass(frozen=True)
class PolicyRecipe:
    """`name`: a preset or calibrator name (maybe misspelled) used as a string, or None for
    `wi.Policy(rules, strict=strict)`. `rules`: (spec or factory name, criterion, glob)."""

    name: str | None = "auto"
    rules: tuple[tuple[Any, str, Any], ...] = ()
    strict: bool = False
    residual: str | None = None
    base: str | None = None

    def build(self) -> Any:
        if self.name is not None:
            if self.residual is not None:
                return wi.Policy.preset(self.name, residual=self.residual)
            return self.name
        rules: list[Any] = []
        for spec, criterion, glob in self.rules:
            rules.append(wi.Rule(FACTORIES.get(spec, spec), **{criterion: glob}))
        if self.base is not None:
            rules.append(wi.Policy.preset(self.base))
        return wi.Policy(rules, strict=self.strict)


names = st.sampled_from([*PRESETS, *PRESETS, *CALIBRATORS, "Auto", "gtp2", "", "none"])


@st.composite
def policy_recipes(draw: st.DrawFn) -> PolicyRecipe:
    how = draw(st.sampled_from(["name", "name", "options", "rules"]))
    if how == "name":
        return PolicyRecipe(name=draw(names))
    if how == "options":
        return PolicyRecipe(name="auto", residual=draw(st.sampled_from(
            ["scale", "zero", "none", "bogus"])))
    rule = st.tuples(
        st.one_of(fs.specs(), st.none(), st.sampled_from(sorted(FACTORIES))),
        st.sampled_from(["role", "name", "module", "activation"]),
        st.one_of(st.sampled_from(ROLE_GLOBS), st.sampled_from(NAME_GLOBS),
                  st.sampled_from(["Linear", "*Norm*", "relu", "*"])),
    )
    return PolicyRecipe(name=None, rules=tuple(draw(st.lists(rule, max_size=3))),
                        strict=draw(st.booleans()),
                        base=draw(st.sampled_from([None, "auto", "torch"])))
