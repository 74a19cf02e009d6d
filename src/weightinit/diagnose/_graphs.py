"""Reading the recorded pass (``model.record``'s graph) for diagnose: which layers form a chain
that a depth trend can be read along, which adds are residual adds and which branches sit side by
side on one stream, and which adds sum embedding lookups.

Nodes are read by behaviour: what produced a tensor and from which tensors, never by module name.
A node's ancestors have smaller ids (a node is made after its inputs), which bounds every walk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from torch.utils._pytree import tree_flatten

from ..model import iter_ancestors

_RENAMES = {"iadd": "add", "radd": "add"}
_MAX_WALK = 256  # ops looked through between two layers, at most


def op_name(node: Any) -> str:
    """``__iadd__`` -> ``add``, ``add_`` -> ``add``, ``softmax`` -> ``softmax``."""
    core = str(node.name).strip("_")
    return _RENAMES.get(core, core)


def ref_nodes(node: Any) -> list[Any]:
    """The nodes of a recorded op's tensor arguments, in argument order (constants too)."""
    leaves = tree_flatten((node.args, node.kwargs))[0]
    return [leaf.node for leaf in leaves if hasattr(leaf, "node")]


def tensor_inputs(node: Any) -> list[Any]:
    """The inputs of `node` computed during the pass (not constants: buffers, parameters)."""
    return [n for n in node.inputs if n.kind != "const"]


def _numel(shape: Sequence[int]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def through(node: Any) -> Any:
    """Walk back over ops with one computed input and as many elements as it (casts, views,
    dropout, activations, a constant scale): the tensor they all start from."""
    for _ in range(_MAX_WALK):
        if node.kind != "op" or node.out_index not in (None, 0):
            return node
        inputs = tensor_inputs(node)
        if len(inputs) != 1 or _numel(inputs[0].shape) != _numel(node.shape):
            return node
        node = inputs[0]
    return node


class Pass:
    """One recorded forward pass, with the nodes the loss depends on and who consumes what."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.nodes: list[Any] = list(graph.nodes)
        # The loss is built from the first tensor output: what it does not depend on (the
        # internals of a layer, which its layer node replaces; statistics taken in hooks) gets
        # no gradient and is not part of any path.
        self.live: set[int] = set()
        if graph.result:
            self.live = {n.id for n in iter_ancestors(graph.result[0])}
        # The innermost module with parameters whose call returned each node (a container's
        # output is an op node: a mixture of experts ends in a sum).
        self.made_by: dict[int, str] = {}
        for module, outputs in graph.outputs.items():
            for node in outputs:
                self.made_by.setdefault(node.id, module)
        self.consumers: dict[int, list[Any]] = {}
        for node in self.nodes:
            if node.id in self.live:
                for parent in node.inputs:
                    self.consumers.setdefault(parent.id, []).append(node)

    def first_output(self, module: str) -> Any | None:
        outputs = self.graph.outputs.get(module)
        return outputs[0] if outputs else None

    def first_input(self, module: str) -> Any | None:
        calls = self.graph.calls.get(module)
        return calls[0][0] if calls and calls[0] else None

    def sole_path(self, start: Any, end: Any) -> bool:
        """Whether everything computed from `start` flows into `end` through ops alone (an
        activation may use its input twice: x * sigmoid(x)) and `end` into one consumer only:
        then the gradient at `start` is all that comes back through `end`."""
        if len(self.consumers.get(end.id, [])) != 1:
            return False
        seen = {start.id}
        stack = [start]
        while stack:
            current = stack.pop()
            if current is end:
                continue
            after = self.consumers.get(current.id, [])
            if not after or len(seen) > _MAX_WALK:
                return False  # a model output, or too far to tell
            for node in after:
                if node.kind != "op":
                    return False  # into another layer
                if node.id not in seen:
                    seen.add(node.id)
                    stack.append(node)
        return end.id in seen

    def residual_adds(self, norms: set[str], rms: dict[int, list[float | None]]
                      ) -> list[Branch]:
        """Every add of a stream and a branch computed from it (the branch holding at least one
        layer), in execution order, each linked to the residual add before it on its stream."""
        found: dict[int, Branch] = {}
        for node in self.nodes:
            if node.kind != "op" or op_name(node) != "add" or node.id not in rms:
                continue
            sides = ref_nodes(node)
            values = rms[node.id]
            if len(sides) != 2 or len(values) != 2 or sides[0] is sides[1]:
                continue
            if any(s.kind == "const" for s in sides):
                continue
            split = _split(sides[0], sides[1], norms)
            if split is None:
                continue
            shortcut, branch = split
            found[node.id] = Branch(node, branch, shortcut, values[sides.index(branch)],
                                    values[sides.index(shortcut)], self._end(branch), None)
        linked = []
        for branch in found.values():
            before = _stream_before(branch.shortcut, found, norms)
            linked.append(dataclasses.replace(branch, before=before))
        return linked

    def lookup_sums(self, lookups: set[str], rms: dict[int, list[float | None]],
                    varies: dict[str, bool]) -> list[LookupSum]:
        """Adds of two tensors that are each an embedding lookup (a layer called on integer
        indices, ``F.embedding``) or a sum of lookups: token + position (+ type) embeddings.
        `varies`: whether a lookup's indices differ from sample to sample (token ids do,
        position ids do not)."""
        memo: dict[int, tuple[str, ...] | None] = {}

        def lookup(node: Any) -> tuple[str, ...] | None:
            node = through(node)
            if node.id in memo:
                return memo[node.id]
            result: tuple[str, ...] | None = None
            if node.kind == "layer" and node.module in lookups and node.out_index is None:
                result = (node.module,)
            elif node.kind == "op" and op_name(node) == "embedding":
                result = ("F.embedding",)
            elif node.kind == "op" and op_name(node) == "add":
                sides = [lookup(s) for s in ref_nodes(node)]
                if len(sides) == 2 and all(s is not None for s in sides):
                    result = tuple(name for s in sides if s is not None for name in s)
            memo[node.id] = result
            return result

        sums = []
        for node in self.nodes:
            if node.kind != "op" or op_name(node) != "add" or node.id not in rms:
                continue
            sides = ref_nodes(node)
            values = rms[node.id]
            if len(sides) != 2 or len(values) != 2:
                continue
            names = [lookup(s) for s in sides]
            a, b = names
            if a is None or b is None:
                continue
            sums.append(LookupSum((a, b), (values[0], values[1]),
                                  (any(varies.get(n, False) for n in a),
                                   any(varies.get(n, False) for n in b))))
        return sums

    def _end(self, node: Any) -> str:
        """The layer (or module with parameters) a branch's output comes from, through ops
        with one computed input (padding trimmed by indexing, activations, a learned scale);
        else the op that made it."""
        current = node
        for _ in range(_MAX_WALK):
            if current.kind == "layer" and current.module is not None:
                return str(current.module)
            if current.id in self.made_by:
                return self.made_by[current.id]
            inputs = tensor_inputs(current) if current.kind == "op" else []
            if len(inputs) != 1:
                break
            current = inputs[0]
        return op_name(node) if node.kind == "op" else str(node.kind)


@dataclasses.dataclass(frozen=True)
class Branch:
    """A residual add: the branch's output (its RMS where it is added) and the stream it joins;
    `before` is the residual add before it on the same stream (None: the stream starts here)."""

    add: Any
    output: Any
    shortcut: Any
    rms: float | None
    stream_rms: float | None  # the stream it is added to
    end: str  # what the branch's output comes from: a module name, or an op
    before: Branch | None


@dataclasses.dataclass(frozen=True)
class LookupSum:
    """Two summed embeddings: the lookups on each side, their RMS where they are added, and
    whether each side's indices differ between samples (token ids) or not (positions)."""

    names: tuple[tuple[str, ...], tuple[str, ...]]
    rms: tuple[float | None, float | None]
    per_sample: tuple[bool, bool]


def _descends(node: Any, ancestor: Any) -> bool:
    """Whether `node` is computed from `ancestor` (ids bound the search from below)."""
    seen = {node.id}
    stack = [node]
    while stack:
        current = stack.pop()
        if current is ancestor:
            return True
        for parent in current.inputs:
            if parent.id >= ancestor.id and parent.id not in seen:
                seen.add(parent.id)
                stack.append(parent)
    return False


def _layers(nodes: Iterable[Any], norms: set[str]) -> set[str]:
    return {n.module for n in nodes
            if n.kind == "layer" and n.out_index is None and n.module not in norms}


def _split(a: Any, b: Any, norms: set[str]) -> tuple[Any, Any] | None:
    """(shortcut, branch) of an add, or None when it is not a residual add: the branch is
    computed from the shortcut, or both from one tensor with at most one layer on the shortcut
    (a projection shortcut) and more on the branch."""
    if _descends(b, a):
        shortcut, branch = a, b
    elif _descends(a, b):
        shortcut, branch = b, a
    else:
        anc_a = {n.id: n for n in iter_ancestors(a)}
        anc_b = {n.id: n for n in iter_ancestors(b)}
        common = anc_a.keys() & anc_b.keys()
        if not common:
            return None  # two independent inputs: a merge, not a residual add
        base = {n.id for n in iter_ancestors(anc_a[max(common)])}
        if not any(anc_a[i].kind == "input" for i in base):
            return None  # both from a buffer (position ids): embeddings summed, not a stream
        layers_a = _layers((n for i, n in anc_a.items() if i not in base), norms)
        layers_b = _layers((n for i, n in anc_b.items() if i not in base), norms)
        if len(layers_a) < len(layers_b) and len(layers_a) <= 1:
            return a, b
        if len(layers_b) < len(layers_a) and len(layers_b) <= 1:
            return b, a
        return None
    inside = [n for n in iter_ancestors(branch) if n.id > shortcut.id]
    if not any(n.kind == "layer" for n in inside):
        return None  # x + f(x) with no layer in f: an activation's own arithmetic (RoPE)
    return shortcut, branch


def _stream_before(node: Any, adds: dict[int, Branch], norms: set[str]) -> Branch | None:
    """The residual add that produced the stream `node` (through casts, activations and norm
    layers: post-norm blocks normalize the stream after each add)."""
    for _ in range(_MAX_WALK):
        node = through(node)
        if node.id in adds:
            return adds[node.id]
        if node.kind == "layer" and node.module in norms and len(tensor_inputs(node)) == 1:
            node = tensor_inputs(node)[0]
            continue
        return None
    return None
