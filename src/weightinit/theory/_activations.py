"""Resolve what a user calls an activation (a name, a module, a function) into one value."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import InitError, check_finite, did_you_mean, show

TensorFn = Callable[[torch.Tensor], torch.Tensor]
Params = Mapping[str, Any]


@dataclass(frozen=True)
class Activation:
    """A resolved activation: its name, parameters and the function on tensors."""

    name: str
    fn: TensorFn = field(repr=False, compare=False)
    params: tuple[tuple[str, Any], ...] = ()
    known: bool = False
    """True when resolved from weightinit's table of names (so closed forms apply)."""
    kinks: tuple[float, ...] = ()
    """Where phi or phi' is not smooth, if known: edges for the quadrature."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    @property
    def label(self) -> str:
        """`leaky_relu(negative_slope=0.2)`, or just the name when there are no parameters."""
        if not self.params:
            return self.name
        inner = ", ".join(f"{key}={value!r}" for key, value in self.params)
        return f"{self.name}({inner})"


# name -> (function of (x, **params), default params). Parameters are validated by name.
_NAMED: dict[str, tuple[Callable[..., torch.Tensor], dict[str, Any]]] = {
    "linear": (lambda x: x, {}),
    "relu": (F.relu, {}),
    "leaky_relu": (F.leaky_relu, {"negative_slope": 0.01}),
    "tanh": (torch.tanh, {}),
    "sigmoid": (torch.sigmoid, {}),
    "gelu": (F.gelu, {"approximate": "none"}),
    "silu": (F.silu, {}),
    "selu": (F.selu, {}),
    "elu": (F.elu, {"alpha": 1.0}),
    "celu": (F.celu, {"alpha": 1.0}),
    "softplus": (F.softplus, {"beta": 1.0, "threshold": 20.0}),
    "mish": (F.mish, {}),
    "softsign": (F.softsign, {}),
    "hardtanh": (F.hardtanh, {"min_val": -1.0, "max_val": 1.0}),
    "relu6": (F.relu6, {}),
    "hardswish": (F.hardswish, {}),
    "hardsigmoid": (F.hardsigmoid, {}),
    "sin": (torch.sin, {}),
}
ALIASES = {"identity": "linear", "swish": "silu", "none": "linear"}
ACTIVATION_NAMES = tuple(sorted(_NAMED))
PREFERRED_NAMES = tuple(_NAMED)
"""The names in the order to try them when naming a function that several of them equal
(``elu`` before ``celu``, which is the same function at alpha = 1)."""


def activation_parameters(name: str) -> tuple[str, ...]:
    """The parameters of the named activation, in the order its torch function takes them
    after the input (``hardtanh``: ``("min_val", "max_val")``); () for an unknown name."""
    entry = _NAMED.get(name)
    return tuple(entry[1]) if entry is not None else ()

# module type -> (name, attributes that are its parameters)
_MODULES: dict[type[nn.Module], tuple[str, tuple[str, ...]]] = {
    nn.Identity: ("linear", ()),
    nn.ReLU: ("relu", ()),
    nn.LeakyReLU: ("leaky_relu", ("negative_slope",)),
    nn.Tanh: ("tanh", ()),
    nn.Sigmoid: ("sigmoid", ()),
    nn.GELU: ("gelu", ("approximate",)),
    nn.SiLU: ("silu", ()),
    nn.SELU: ("selu", ()),
    nn.ELU: ("elu", ("alpha",)),
    nn.CELU: ("celu", ("alpha",)),
    nn.Softplus: ("softplus", ("beta", "threshold")),
    nn.Mish: ("mish", ()),
    nn.Softsign: ("softsign", ()),
    nn.Hardtanh: ("hardtanh", ("min_val", "max_val")),
    nn.ReLU6: ("relu6", ()),
    nn.Hardswish: ("hardswish", ()),
    nn.Hardsigmoid: ("hardsigmoid", ()),
}


def _named(name: str, params: Params | None) -> Activation:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in _NAMED:
        choices = sorted([*_NAMED, *ALIASES])
        raise InitError(
            f"`activation` {show(name)} is not a known activation name."
            f"{did_you_mean(key[:100], choices)} "
            f"Known names: {', '.join(choices)}. Any nn.Module or function on tensors also works."
        )
    fn, defaults = _NAMED[key]
    given = dict(params or {})
    unknown = sorted(set(given) - set(defaults), key=repr)
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise InitError(
            f"`params` {show(unknown)} are not parameters of {key!r} (its parameters: "
            f"{allowed})."
        )
    merged = {**defaults, **given}
    for pname, value in merged.items():
        default = defaults[pname]
        if isinstance(default, float):
            merged[pname] = _number(key, pname, value)
    if key == "gelu" and merged["approximate"] not in ("none", "tanh"):
        raise InitError(
            f"`approximate` of 'gelu' must be 'none' or 'tanh', got "
            f"{show(merged['approximate'])}."
        )
    if key == "softplus" and merged["beta"] <= 0:
        raise InitError(f"`beta` of 'softplus' must be > 0, got {merged['beta']!r}.")
    if key == "hardtanh" and not merged["min_val"] < merged["max_val"]:
        raise InitError(
            f"`min_val` (={merged['min_val']!r}) of 'hardtanh' must be < `max_val` "
            f"(={merged['max_val']!r})."
        )

    def call(x: torch.Tensor) -> torch.Tensor:
        return fn(x, **merged)

    return Activation(key, call, tuple(sorted(merged.items())), known=True,
                      kinks=_kinks(key, merged))


def _number(name: str, pname: str, value: object) -> float:
    """Parameter `pname` of activation `name` as a finite float, or InitError."""
    if isinstance(value, (str, bytes)) or value is None:
        raise InitError(f"`{pname}` of {name!r} must be a number, got {show(value)}.")
    try:
        return check_finite(pname, value)
    except InitError as exc:
        what = "a number" if "real number" in str(exc) else "finite (within float64's range)"
        raise InitError(f"`{pname}` of {name!r} must be {what}, got {show(value)}.") from None


def _kinks(name: str, params: dict[str, Any]) -> tuple[float, ...]:
    if name == "hardtanh":
        return (float(params["min_val"]), float(params["max_val"]))
    if name == "relu6":
        return (0.0, 6.0)
    if name in ("hardswish", "hardsigmoid"):
        return (-3.0, 3.0)
    if name == "softplus":  # torch switches to the identity above threshold / beta
        return (0.0, float(params["threshold"]) / float(params["beta"]))
    return (0.0,)


def _module(module: nn.Module) -> Activation:
    known = _MODULES.get(type(module))
    if known is not None:
        name, attrs = known
        return _named(name, {attr: getattr(module, attr) for attr in attrs})
    # Unknown module: evaluate it in float64 on a private copy in eval mode (no dropout), so
    # the user's module, its parameters and its mode are untouched.
    try:
        private = copy.deepcopy(module).to(torch.float64).eval().requires_grad_(False)
    except Exception as exc:  # deepcopy and .to run the module's own code
        raise InitError(
            f"`activation` module {type(module).__name__} cannot be copied to float64 "
            f"({type(exc).__name__}: {str(exc)[:200]}): weightinit evaluates a private float64 "
            "copy so that yours stays untouched. Pass a function on tensors instead, e.g. "
            "`lambda x: module(x)` if it accepts float64."
        ) from None

    def call(x: torch.Tensor) -> torch.Tensor:
        out = private(x)
        if not isinstance(out, torch.Tensor):
            raise InitError(
                f"`activation` module {type(module).__name__} returned "
                f"{type(out).__name__}, not a tensor."
            )
        return out

    return Activation(type(module).__name__, call)


def resolve_activation(activation: object, params: Params | None = None) -> Activation:
    """Turn a name, an `nn.Module` or a callable on tensors into an `Activation`.

    Raises:
        InitError: for unknown names (with the closest known name), bad parameters, or objects
            that are not activations.
    """
    if isinstance(activation, Activation):
        if params is not None and not isinstance(params, Mapping):
            raise InitError(f"`params` must be a mapping, got {show(params)}.")
        if params:
            raise InitError("`params` cannot be combined with an already resolved Activation.")
        return activation
    if params is not None and not isinstance(params, Mapping):
        raise InitError(
            f"`params` must be a mapping of parameter names to values, e.g. "
            f"{{'negative_slope': 0.2}}, got {type(params).__name__} {show(params)}."
        )
    if isinstance(activation, str):
        return _named(activation, params)
    if params:
        raise InitError(
            "`params` only applies to activation names; for a module or function, "
            "set its parameters on the object itself."
        )
    if activation is None:
        return _named("linear", None)
    if isinstance(activation, nn.Module):
        return _module(activation)
    if callable(activation):
        name = getattr(activation, "__name__", type(activation).__name__)
        return Activation(str(name), activation)
    raise InitError(
        f"`activation` must be a name, an nn.Module or a function on tensors, "
        f"got {type(activation).__name__} {show(activation)}."
    )
