"""Read a recorded forward pass: what feeds each layer, and which layers end residual branches.

The activation feeding a layer is not looked up by module type. Walking back from the layer's
input, every pointwise op (``F.gelu``, ``x * torch.sigmoid(x)``, a constant scale) that depends
on one earlier tensor, its *source* (a layer output, a norm, the model input, a residual add),
is kept; layout ops (view, dropout in eval mode, pooling) are looked through. The kept ops are
replayed on a float64 grid, so the function phi with input = phi(source) is known exactly:
it is named when it equals one of weightinit's activations (x * sigmoid(x) is ``silu``) and its
gain is computed by quadrature otherwise. A product of two different sources (a gated unit:
``silu(gate(x)) * up(x)``) is a `Feed` whose second moment is the product of the two.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map

from ..theory import (
    ACTIVATION_NAMES,
    PREFERRED_NAMES,
    Activation,
    activation_parameters,
    resolve_activation,
    second_moment,
)
from ._graph import Graph, Node, Ref, iter_ancestors

_RENAMES = {"iadd": "add", "radd": "add", "imul": "mul", "rmul": "mul", "isub": "sub",
            "truediv": "div", "itruediv": "div", "rtruediv": "rdiv", "ipow": "pow",
            "rpow": "rpow", "div_": "div", "true_divide": "div", "multiply": "mul",
            "subtract": "sub", "clip": "clamp", "negative": "neg", "swish": "silu"}

POINTWISE = frozenset({
    *ACTIVATION_NAMES, "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "threshold",
    "sin", "cos", "exp", "exp2", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "neg",
    "erf", "erfc", "square", "pow", "rpow", "mul", "add", "sub", "rsub", "div", "rdiv",
    "clamp", "clamp_min", "clamp_max", "minimum", "maximum", "where", "gt", "lt", "ge", "le",
    "sign", "reciprocal", "addcmul", "lerp",
})
# The same values, passed through (dropout runs in eval mode during discovery).
PASSTHROUGH = frozenset({
    "clone", "to", "float", "double", "half", "bfloat16", "type", "type_as", "detach",
    "contiguous", "cpu", "cuda", "identity", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "feature_alpha_dropout",
})
# The same elements, rearranged: looked through, but remembered, so that two tensors laid out
# differently are not taken for the same tensor.
LAYOUT = PASSTHROUGH | frozenset({
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "squeeze",
    "unsqueeze", "expand", "expand_as", "view_as", "reshape_as", "movedim",
    # Concatenation, padding and resampling keep each element's distribution: the feed of a
    # DenseNet or U-Net layer is the activation before them (the first input's, for a cat).
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "pad", "interpolate",
    "upsample", "upsample_nearest2d", "upsample_bilinear2d", "flip", "roll",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
})
# Statistics of a window: looked through for the activation, but they change which elements
# line up, so two tensors pooled differently are not the same tensor.
POOLING = frozenset({
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "adaptive_max_pool2d_with_indices", "mean",
})
# A subset of the elements.
SELECT = frozenset({"getitem", "chunk", "split", "tensor_split", "narrow", "select", "unbind",
                    "split_with_sizes", "index_select", "slice"})


def canonical(name: str) -> str:
    """``__iadd__`` -> ``add``, ``relu_`` -> ``relu``, ``__rmul__`` -> ``mul``."""
    core = name.strip("_")
    return _RENAMES.get(core, core)


_GRID = torch.linspace(-8.0, 8.0, 641, dtype=torch.float64)


@dataclasses.dataclass(frozen=True)
class Feed:
    """What a layer's input is: phi(source), phi an activation (or a product of two).

    `label` names phi (``"relu"``, ``"leaky_relu(negative_slope=0.2)"``, ``"silu*linear"``
    for a gated unit, ``"unknown"`` when no forward pass ran). `source` says what produced
    phi's input: ``"input"``, a layer (``"Linear fc1"``), ``"add"`` (a residual stream),
    an op (``"scaled_dot_product_attention"``). `moment` is E[phi(z)^2] for z ~ N(0, 1)
    (the product of the two for a gated unit), so the variance-preserving gain is
    1 / sqrt(moment).
    """

    label: str
    source: str
    moment: float | None
    activation: Activation | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def gain(self) -> float | None:
        if self.moment is None or not self.moment > 0:
            return None
        return 1.0 / math.sqrt(self.moment)

    @property
    def known(self) -> bool:
        return self.label != "unknown"


UNKNOWN = Feed("unknown", "unknown", None)
LINEAR = Feed("linear", "attention", 1.0, resolve_activation("linear"))


@dataclasses.dataclass(frozen=True)
class _Expr:
    """A pointwise function of one source tensor, with the layout ops on the way."""

    source: Node
    path: tuple[Any, ...]
    nodes: frozenset[int]  # ids of the pointwise ops kept (empty: the identity)
    top: Node  # the node whose value this is


def _first_tensor_input(node: Node) -> Ref | None:
    for arg in (*node.args, *node.kwargs.values()):
        if isinstance(arg, Ref):
            return arg
        if isinstance(arg, (tuple, list)):
            for inner in arg:
                if isinstance(inner, Ref):
                    return inner
    return None


def _refs(node: Node) -> list[Ref]:
    found: list[Ref] = []

    def visit(x: Any) -> Any:
        if isinstance(x, Ref):
            found.append(x)
        return x

    tree_map(visit, (node.args, node.kwargs))
    return found


def _static(x: Any) -> str:
    return "T" if isinstance(x, Ref) else repr(x)


class Dataflow:
    """Feeds and residual structure of one recorded pass."""

    def __init__(self, graph: Graph, model: nn.Module) -> None:
        self.graph = graph
        self._memo: dict[int, _Expr] = {}
        modules = dict(model.named_modules(remove_duplicate=False))
        self._norms = {name for name, m in modules.items() if is_norm(m)}
        self.residual_ends: dict[str, int] = {}  # module -> residual adds it ends
        self.branch_layers: dict[str, int] = {}  # module -> weight layers in its branch (m)
        self.n_residual = 0
        self.output_layers: set[str] = set()
        self._find_residuals()
        self._find_outputs()
        # MultiheadAttention applies out_proj inside its own functional forward: the layer
        # that ends a branch (or the model) is that child, not the packed input projection.
        for name, module in modules.items():
            if isinstance(module, nn.MultiheadAttention):
                child = f"{name}.out_proj" if name else "out_proj"
                if name in self.residual_ends:
                    self.residual_ends[child] = self.residual_ends.pop(name)
                if name in self.branch_layers:
                    self.branch_layers[child] = self.branch_layers[name]
                if name in self.output_layers:
                    self.output_layers.discard(name)
                    self.output_layers.add(child)

    # -- feeds ------------------------------------------------------------------------------
    def _expr(self, node: Node) -> _Expr:
        cached = self._memo.get(node.id)
        if cached is not None:
            return cached
        result = self._analyze(node)
        self._memo[node.id] = result
        return result

    def _analyze(self, node: Node) -> _Expr:
        opaque = _Expr(node, (), frozenset(), node)
        if node.kind != "op":
            return opaque
        name = canonical(node.name)
        first = _first_tensor_input(node)
        if name in LAYOUT or name in POOLING or name in SELECT:
            if first is None or first.value is not None:
                return opaque
            inner = self._expr(first.node)
            step: tuple[Any, ...] = () if name in PASSTHROUGH else (
                (name, tuple(_static(a) for a in node.args[1:]),
                 tuple(sorted((k, _static(v)) for k, v in node.kwargs.items())),
                 node.out_index),)
            return _Expr(inner.source, inner.path + step, inner.nodes, node)
        if name not in POINTWISE:
            return opaque
        parts = []
        for ref in _refs(node):
            if ref.node.kind == "const":
                if ref.value is None:
                    return opaque  # a tensor whose values we do not know (a meta buffer)
                continue
            parts.append(self._expr(ref.node))
        if not parts:
            return opaque
        head = parts[0]
        if any(p.source is not head.source or p.path != head.path for p in parts[1:]):
            return opaque  # depends on two different tensors: a merge, itself a source
        nodes = frozenset().union(*(p.nodes for p in parts)) | {node.id}
        return _Expr(head.source, head.path, nodes, node)

    def feed_of(self, node: Node) -> Feed:
        """The feed of a layer whose input is `node`."""
        expr = self._expr(node)
        merge = expr.source
        if merge.kind == "op" and canonical(merge.name) == "mul" and not expr.nodes:
            parts = [self._expr(r.node) for r in _refs(merge) if r.node.kind != "const"]
            if len(parts) == 2:  # a gated unit: phi_a(a) * phi_b(b)
                feeds = [self._pointwise(p) for p in parts]
                moments = [f.moment for f in feeds]
                if all(m is not None for m in moments):
                    label = "*".join(f.label for f in feeds)
                    source = " * ".join(f.source for f in feeds)
                    return Feed(label, source, math.prod(m for m in moments if m is not None))
        return self._pointwise(expr)

    def _pointwise(self, expr: _Expr) -> Feed:
        source = _describe(expr.source)
        if not expr.nodes:
            return Feed("linear", source, 1.0, resolve_activation("linear"))
        fn = functools.partial(_replay, expr)
        act = _recognize(expr, fn)
        label = act.name if act.known and act.params == default_params(act.name) else act.label
        try:
            moment = _known_moment(act.name, act.params) if act.known else second_moment(act)
        except Exception:  # a function the quadrature cannot integrate: say unknown
            return Feed(label, source, None, act)
        return Feed(label, source, moment, act)

    # -- residual branches ------------------------------------------------------------------
    def _is_layer(self, node: Node) -> bool:
        return node.kind == "layer" and node.out_index is None

    def _weight_layers(self, nodes: set[Node]) -> set[str]:
        return {n.module for n in nodes
                if self._is_layer(n) and n.module is not None and n.module not in self._norms}

    def _find_residuals(self) -> None:
        for node in self.graph.nodes:
            if node.kind != "op" or canonical(node.name) != "add":
                continue
            sides = [r.node for r in _refs(node) if r.node.kind != "const"]
            if len(sides) != 2 or sides[0] is sides[1]:
                continue
            a, b = sides
            anc_a, anc_b = set(iter_ancestors(a)), set(iter_ancestors(b))
            if a in anc_b:
                _shortcut, branch, base = a, b, anc_a
            elif b in anc_a:
                _shortcut, branch, base = b, a, anc_b
            else:
                common = anc_a & anc_b
                if not common:
                    continue  # two independent inputs (token + position embedding)
                fork = max(common, key=lambda n: n.id)
                base = set(iter_ancestors(fork))
                layers_a = self._weight_layers(anc_a - base)
                layers_b = self._weight_layers(anc_b - base)
                if len(layers_a) < len(layers_b) and len(layers_a) <= 1:
                    _shortcut, branch = a, b
                elif len(layers_b) < len(layers_a) and len(layers_b) <= 1:
                    _shortcut, branch = b, a
                else:
                    continue
            in_branch = self._weight_layers(set(iter_ancestors(branch)) - base)
            if not in_branch:
                continue
            end = self._branch_end(branch)
            if end is None:
                continue
            self.n_residual += 1
            self.residual_ends[end] = self.residual_ends.get(end, 0) + 1
            for layer in in_branch:
                self.branch_layers[layer] = max(self.branch_layers.get(layer, 0),
                                                len(in_branch))

    def _branch_end(self, node: Node) -> str | None:
        """The first layer (a norm or a weight layer) walking back from a branch's output."""
        current = node
        while True:
            if self._is_layer(current):
                return current.module
            if current.kind != "op":
                return None
            name = canonical(current.name)
            if name not in LAYOUT and name not in POINTWISE:
                return None
            inputs = [r.node for r in _refs(current) if r.node.kind != "const"]
            if len(inputs) != 1:
                return None
            current = inputs[0]

    def _find_outputs(self) -> None:
        for node in self.graph.result:
            current = node
            while current.kind == "op":
                first = _first_tensor_input(current)
                if first is None or canonical(current.name) not in LAYOUT | POOLING | SELECT:
                    break
                current = first.node
            if self._is_layer(current) and current.module is not None:
                self.output_layers.add(current.module)


@functools.cache
def default_params(name: str) -> tuple[tuple[str, Any], ...]:
    """The parameters a named activation has when none are given."""
    return resolve_activation(name).params


@functools.lru_cache(maxsize=256)
def _known_moment(name: str, params: tuple[tuple[str, Any], ...]) -> float:
    return second_moment(name, params=dict(params))


def is_norm(module: nn.Module) -> bool:
    """BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm and look-alikes by class name."""
    norms: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm,
                                          nn.GroupNorm, nn.LocalResponseNorm)
    rms = getattr(nn, "RMSNorm", None)
    if rms is not None:
        norms = (*norms, rms)
    return isinstance(module, norms) or type(module).__name__.endswith("Norm")


def _describe(node: Node) -> str:
    if node.kind == "input":
        return "input"
    if node.kind == "layer":
        return f"{node.name} {node.module}"
    if node.kind == "op":
        return canonical(node.name)
    return "constant"


def _replay(expr: _Expr, z: torch.Tensor) -> torch.Tensor:
    """phi(z): the expression's pointwise ops evaluated with the source set to `z`."""
    values: dict[int, torch.Tensor] = {}

    def value(node: Node) -> torch.Tensor:
        if node is expr.source:
            return z
        if node.id in values:
            return values[node.id]
        if node.id not in expr.nodes:  # a layout op on the way: same values
            first = _first_tensor_input(node)
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


def _recognize(expr: _Expr, fn: Callable[[torch.Tensor], torch.Tensor]) -> Activation:
    """Name phi when it is one of weightinit's activations (with the parameters the code
    passed), else an `Activation` of the replayed function, labelled by its expression."""
    try:
        with torch.no_grad():
            values = fn(_GRID)
    except Exception:
        return Activation(_text(expr), fn)
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
    return Activation(_text(expr), fn)


_COMMON = [*(resolve_activation(name) for name in PREFERRED_NAMES if name != "linear"),
           resolve_activation("gelu", {"approximate": "tanh"})]


def _text(expr: _Expr) -> str:
    """``mul(x, sigmoid(x))``: the kept ops as an expression of the source x."""

    def text(node: Node) -> str:
        if node is expr.source:
            return "x"
        if node.id not in expr.nodes:
            first = _first_tensor_input(node)
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
