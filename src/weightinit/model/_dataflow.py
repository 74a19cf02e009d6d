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

import dataclasses
import functools
import math
from typing import Any

from torch import nn

from ..theory import Activation, resolve_activation, second_moment
from ._graph import Graph, Node, iter_ancestors
from ._ops import (
    LAYOUT,
    MERGES,
    PASSTHROUGH,
    POINTWISE,
    POOLING,
    SELECT,
    canonical,
    first_tensor_input,
    refs,
    static,
)
from ._pointwise import Expr, default_params, known_moment, recognize, replay


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
        """1/sqrt(E[x^2]) of the feed (the factor that restores a unit second moment), or
        None when the moment is unknown or not positive."""
        if self.moment is None or not self.moment > 0:
            return None
        return 1.0 / math.sqrt(self.moment)

    @property
    def known(self) -> bool:
        """Whether the feed was determined (not ``"unknown"``)."""
        return self.label != "unknown"


UNKNOWN = Feed("unknown", "unknown", None)
LINEAR = Feed("linear", "attention", 1.0, resolve_activation("linear"))


class Dataflow:
    """Feeds and residual structure of one recorded pass."""

    def __init__(self, graph: Graph, model: nn.Module) -> None:
        self.graph = graph
        self._memo: dict[int, Expr] = {}
        modules = dict(model.named_modules(remove_duplicate=False))
        self._norms = {name for name, m in modules.items() if is_norm(m)}
        self._lookups = {name for name, m in modules.items()
                         if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
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
    def _expr(self, node: Node) -> Expr:
        cached = self._memo.get(node.id)
        if cached is not None:
            return cached
        result = self._analyze(node)
        self._memo[node.id] = result
        return result

    def _analyze(self, node: Node) -> Expr:
        opaque = Expr(node, (), frozenset(), node)
        if node.kind != "op":
            return opaque
        name = canonical(node.name)
        first = first_tensor_input(node)
        if name in LAYOUT or name in POOLING or name in SELECT:
            if first is None or first.value is not None:
                return opaque
            inner = self._expr(first.node)
            if name in MERGES and any(
                    (e.source, e.path) != (inner.source, inner.path)
                    for e in (self._expr(r.node) for r in refs(node)
                              if r.node.kind != "const")):
                return opaque  # cat([relu(a), b]): a merge of different tensors, a source
            step: tuple[Any, ...] = () if name in PASSTHROUGH else (
                (name, tuple(static(a) for a in node.args[1:]),
                 tuple(sorted((k, static(v)) for k, v in node.kwargs.items())),
                 node.out_index),)
            return Expr(inner.source, inner.path + step, inner.nodes, node)
        if name not in POINTWISE:
            return opaque
        parts = []
        for ref in refs(node):
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
        return Expr(head.source, head.path, nodes, node)

    def feed_of(self, node: Node) -> Feed:
        """The feed of a layer whose input is `node`."""
        expr = self._expr(node)
        merge = expr.source
        if merge.kind == "op" and canonical(merge.name) == "mul" and not expr.nodes:
            parts = [self._expr(r.node) for r in refs(merge) if r.node.kind != "const"]
            if len(parts) == 2:  # a gated unit: phi_a(a) * phi_b(b)
                feeds = [self._pointwise(p) for p in parts]
                moments = [f.moment for f in feeds]
                if all(m is not None for m in moments):
                    label = "*".join(f.label for f in feeds)
                    source = " * ".join(f.source for f in feeds)
                    return Feed(label, source, math.prod(m for m in moments if m is not None))
        if merge.kind == "op" and canonical(merge.name) in MERGES and not expr.nodes:
            return self._concat_feed(merge)
        return self._pointwise(expr)

    def _concat_feed(self, merge: Node) -> Feed:
        """A concatenation's feed: the second moment is the mean of its inputs', weighted by
        how many channels each gives (each element of the layer's input is one of them)."""
        parts = [r for r in refs(merge) if r.node.kind != "const"]
        dim = merge.args[1] if len(merge.args) > 1 else merge.kwargs.get("dim", 0)
        stacked = canonical(merge.name) == "stack"
        weights = []
        for ref in parts:
            shape = ref.node.shape
            if stacked or not isinstance(dim, int) or not shape or not -len(shape) <= dim < len(
                    shape):
                weights.append(1)
            else:
                weights.append(shape[dim])
        feeds = [self.feed_of(r.node) for r in parts]
        label = f"cat({', '.join(f.label for f in feeds)})"
        source = "cat"
        moments = [f.moment for f in feeds]
        if not feeds or any(m is None for m in moments) or not sum(weights):
            return Feed(label, source, None)
        moment = sum(w * m for w, m in zip(weights, moments, strict=True)
                     if m is not None) / sum(weights)
        return Feed(label, source, moment)

    def _pointwise(self, expr: Expr) -> Feed:
        source = _describe(expr.source)
        if not expr.nodes:
            return Feed("linear", source, 1.0, resolve_activation("linear"))
        fn = functools.partial(replay, expr)
        act = recognize(expr, fn)
        label = act.name if act.known and act.params == default_params(act.name) else act.label
        try:
            moment = known_moment(act.name, act.params) if act.known else second_moment(act)
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
        stream: set[int] = set()  # outputs of residual adds found so far
        for node in self.graph.nodes:
            if node.kind != "op" or canonical(node.name) != "add":
                continue
            sides = [r.node for r in refs(node) if r.node.kind != "const"]
            if len(sides) != 2 or sides[0] is sides[1]:
                continue
            a, b = sides
            anc_a, anc_b = set(iter_ancestors(a)), set(iter_ancestors(b))
            if a in anc_b:
                branch, base = b, anc_a
            elif b in anc_a:
                branch, base = a, anc_b
            else:
                common = anc_a & anc_b
                if not common:
                    continue  # two independent inputs (token + position embedding)
                fork = max(common, key=lambda n: n.id)
                base = set(iter_ancestors(fork))
                if not any(n.kind in ("input", "layer") for n in base):
                    continue  # they share only constants (a position-ids buffer)
                layers_a = self._weight_layers(anc_a - base)
                layers_b = self._weight_layers(anc_b - base)
                if a.id in stream and layers_b:  # a parallel residual: x + f(x) + g(x)
                    branch = b
                elif b.id in stream and layers_a:
                    branch = a
                elif len(layers_a) < len(layers_b) and len(layers_a) <= 1:
                    branch = b
                elif len(layers_b) < len(layers_a) and len(layers_b) <= 1:
                    branch = a
                else:
                    continue
            in_branch = self._weight_layers(set(iter_ancestors(branch)) - base)
            ends = self._branch_ends(branch) if in_branch - self._lookups else []
            if not ends:
                continue
            stream.add(node.id)
            for end in ends:  # several when the branch is itself a sum: (f(x) + g(x)) + x
                self.n_residual += 1
                self.residual_ends[end] = self.residual_ends.get(end, 0) + 1
            for layer in in_branch:
                self.branch_layers[layer] = max(self.branch_layers.get(layer, 0),
                                                len(in_branch))

    def _branch_ends(self, node: Node) -> list[str]:
        """The first layers (norms or weight layers) walking back from a branch's output,
        through pointwise, layout and slicing ops (a causal conv's ``[..., :-pad]``); both
        sides of a sum of branches; the one layer both factors of a gate come from
        (``a * sigmoid(g)`` with ``a, g = f(x).chunk(2)``)."""
        current = node
        while True:
            if self._is_layer(current):
                return [current.module] if current.module is not None else []
            if current.kind != "op":
                return []
            name = canonical(current.name)
            if name not in LAYOUT and name not in POINTWISE and name not in SELECT:
                return []
            inputs = [r.node for r in refs(current) if r.node.kind != "const"]
            if len(inputs) == 2 and inputs[0] is not inputs[1] and name in ("add", "mul"):
                ends = [self._branch_ends(side) for side in inputs]
                if name == "add":
                    return ends[0] + ends[1] if all(ends) else []
                return ends[0] if ends[0] and ends[0] == ends[1] else []
            if name in SELECT and inputs:
                inputs = inputs[:1]  # the sliced tensor (an index tensor is not the branch)
            if len(inputs) != 1:
                return []
            current = inputs[0]

    def _find_outputs(self) -> None:
        for node in self.graph.result:
            current = node
            while current.kind == "op":
                first = first_tensor_input(current)
                if first is None or canonical(current.name) not in LAYOUT | POOLING | SELECT:
                    break
                current = first.node
            if self._is_layer(current) and current.module is not None:
                self.output_layers.add(current.module)


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
