"""The pointwise function between a layer and its source, as recorded: an expression of kept ops,
replayed on a float64 grid to name it (x * sigmoid(x) is ``silu``) or to integrate it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_map

from ..theory import (
    ACTIVATION_NAMES,
    PREFERRED_NAMES,
    Activation,
    activation_parameters,
    resolve_activation,
    second_moment,
)
from ._graph import Node, Ref
from ._ops import canonical, first_tensor_input

_GRID = torch.linspace(-8.0, 8.0, 641, dtype=torch.float64)


@dataclasses.dataclass(frozen=True)
class Expr:
    """A pointwise function of one source tensor, with the layout ops on the way."""

    source: Node
    path: tuple[Any, ...]
    nodes: frozenset[int]  # ids of the pointwise ops kept (empty: the identity)
    top: Node  # the node whose value this is


@functools.cache
def default_params(name: str) -> tuple[tuple[str, Any], ...]:
    """The parameters a named activation has when none are given."""
    return resolve_activation(name).params


@functools.lru_cache(maxsize=256)
def known_moment(name: str, params: tuple[tuple[str, Any], ...]) -> float:
    return second_moment(name, params=dict(params))


def replay(expr: Expr, z: torch.Tensor) -> torch.Tensor:
    """phi(z): the expression's pointwise ops evaluated with the source set to `z`."""
    values: dict[int, torch.Tensor] = {}

    def value(node: Node) -> torch.Tensor:
        if node is expr.source:
            return z
        if node.id in values:
            return values[node.id]
        if node.id not in expr.nodes:  # a layout op on the way: same values
            first = first_tensor_input(node)
            if first is None:
                raise RuntimeError(f"cannot replay {node}")
            return value(first.node)

        def arg(x: Any) -> Any:
            if not isinstance(x, Ref):
                return x
            if x.node.kind == "const" and x.value is not None:
                return x.value.to(torch.float64)
            return value(x.node).clone()  # clones: in-place ops must not touch shared values

        args = tree_map(arg, node.args)
        kwargs = tree_map(arg, node.kwargs)
        if "inplace" in kwargs:
            kwargs["inplace"] = False
        if node.func is None:
            raise RuntimeError(f"cannot replay {node}")
        out = node.func(*args, **kwargs)
        if isinstance(out, (tuple, list)):
            out = out[node.out_index or 0]
        result: torch.Tensor = out
        values[node.id] = result
        return result

    return value(expr.top)


def recognize(expr: Expr, fn: Callable[[torch.Tensor], torch.Tensor]) -> Activation:
    """Name phi when it is one of weightinit's activations (with the parameters the code
    passed), else an `Activation` of the replayed function, labelled by its expression."""
    try:
        with torch.no_grad():
            values = fn(_GRID)
    except Exception:
        return Activation(expression_text(expr), fn)
    candidates: list[Activation] = []
    top = expr.top
    if len(expr.nodes) == 1 and canonical(top.name) in ACTIVATION_NAMES:
        name = canonical(top.name)
        defaults = list(activation_parameters(name))
        params = {k: v for k, v in zip(defaults, top.args[1:], strict=False)}
        params.update({k: v for k, v in top.kwargs.items() if k in defaults})
        with contextlib.suppress(Exception):
            candidates.append(resolve_activation(name, params))
    candidates += _COMMON
    for act in candidates:
        with torch.no_grad():
            ref = act(_GRID)
        # Equal up to the rounding of a differently ordered float64 formula (HF's NewGELU is
        # gelu(approximate="tanh") written out).
        if values.shape == ref.shape and torch.allclose(values, ref, rtol=1e-9, atol=1e-10):
            return act
    return Activation(expression_text(expr), fn)


_COMMON = [*(resolve_activation(name) for name in PREFERRED_NAMES if name != "linear"),
           resolve_activation("gelu", {"approximate": "tanh"})]


def expression_text(expr: Expr) -> str:
    """``mul(x, sigmoid(x))``: the kept ops as an expression of the source x."""

    def text(node: Node) -> str:
        if node is expr.source:
            return "x"
        if node.id not in expr.nodes:
            first = first_tensor_input(node)
            return text(first.node) if first is not None else "?"

        def arg(x: Any) -> str:
            if isinstance(x, Ref):
                if x.node.kind == "const" and x.value is not None:
                    return f"{x.value.item():g}"
                return text(x.node)
            if isinstance(x, float):
                return f"{x:g}"
            return repr(x)

        parts = [arg(a) for a in node.args]
        parts += [f"{k}={arg(v)}" for k, v in node.kwargs.items() if k != "inplace"]
        return f"{canonical(node.name)}({', '.join(parts)})"

    return text(expr.top)
