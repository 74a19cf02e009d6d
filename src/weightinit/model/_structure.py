"""What a recorded pass shows beyond feeds and residual branches: how attention scales its
scores (so a query projection can absorb a missing 1/sqrt(d)), which embedding lookups are
summed into one stream, which lookups are added to attention scores (a position bias), and
which layers route (their output only chooses, through a softmax or a top-k)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ._graph import Graph, Node, Ref
from ._ops import LAYOUT, SELECT, canonical, first_tensor_input, refs

_SOFTMAX = frozenset({"softmax", "_softmax", "log_softmax"})
_SCORES = frozenset({"matmul", "bmm"})
_ROUTE = frozenset({"softmax", "_softmax", "topk"})
_LIMIT = 64  # ops walked at most from one start


def _scalar(x: Any) -> float | None:
    """A plain number, or a one-element constant whose value was recorded."""
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, Ref) and x.node.kind == "const" and x.value is not None:
        return float(x.value.reshape(()).item()) if x.value.numel() == 1 else None
    return None


def _tensor_inputs(node: Node) -> list[Node]:
    return [r.node for r in refs(node) if not (r.node.kind == "const" and r.value is not None)]


def _scale_of(node: Node) -> float | None:
    """The constant factor a mul/div applies (None: not a constant factor)."""
    name = canonical(node.name)
    numbers = [_scalar(a) for a in node.args if _scalar(a) is not None]
    if name not in ("mul", "div") or len(numbers) != 1 or len(_tensor_inputs(node)) != 1:
        return None
    value = numbers[0]
    if value is None:
        return None
    if name == "div":
        return 1.0 / value if value else None
    return value


def _scores_of(node: Node, depth: int = 0) -> tuple[Node, float] | None:
    """The q @ k^T product behind a softmax's input, and the constant factor between them."""
    scale = 1.0
    current = node
    for _ in range(_LIMIT):
        if current.kind != "op":
            return None
        name = canonical(current.name)
        if name in _SCORES:
            return current, scale
        factor = _scale_of(current)
        inputs = _tensor_inputs(current)
        if factor is not None:
            scale *= factor
            current = inputs[0]
        elif name in LAYOUT and name not in ("cat", "stack") and inputs:
            current = inputs[0]
        elif name in ("add", "sub", "masked_fill", "where", "getitem") and depth < 4:
            # a mask or a position bias added to the scores: follow the side with the product
            for side in inputs:
                found = _scores_of(side, depth + 1)
                if found is not None:
                    return found[0], found[1] * scale
            return None
        else:
            return None
    return None


def _projection(node: Node, depth: int = 0) -> tuple[Node, float] | None:
    """The layer a query (or key) comes from, through reshapes, rotary embeddings, a key
    cache's concatenation and constant factors, and the product of those factors."""
    scale = 1.0
    current = node
    for _ in range(_LIMIT):
        if current.kind == "layer":
            return current, scale
        if current.kind != "op":
            return None
        name = canonical(current.name)
        factor = _scale_of(current)
        first = first_tensor_input(current)
        if first is None:
            return None
        if factor is not None:
            scale *= factor
            current = _tensor_inputs(current)[0]
        elif name in ("cat", "stack") and depth < 4:  # a key cache: past keys, then these
            for part in reversed(_tensor_inputs(current)):
                found = _projection(part, depth + 1)
                if found is not None:
                    return found[0], found[1] * scale
            return None
        elif name in LAYOUT or name in SELECT or name in ("add", "mul", "neg"):
            current = first.node  # rotary: q * cos + rotate_half(q) * sin
        else:
            return None
    return None


def query_factors(graph: Graph) -> dict[str, tuple[float, int]]:
    """Query projection module -> (the factor its std needs, head dim) for each attention whose
    scores are not q.k / sqrt(d): T5 computes q @ k^T unscaled and folds 1/sqrt(d) into q's
    init; SDPA with ``scale=1`` does the same. Only where the query has a projection of its
    own (not a packed q/k/v layer)."""
    found: dict[str, tuple[float, int]] = {}
    for node in graph.nodes:
        if node.kind != "op":
            continue
        name = canonical(node.name)
        if name == "scaled_dot_product_attention":
            q, k = (r.node for r in refs(node)[:2])
            given = node.kwargs.get("scale", node.args[6] if len(node.args) > 6 else None)
            base = _scalar(given) if given is not None else None
            scale = base if base is not None else (1.0 / math.sqrt(q.shape[-1]) if q.shape
                                                   else None)
        elif name in _SOFTMAX:
            first = first_tensor_input(node)
            scores = _scores_of(first.node) if first is not None else None
            if scores is None:
                continue
            product, scale = scores
            operands = _tensor_inputs(product)
            if len(operands) != 2:
                continue
            q, k = operands
        else:
            continue
        if scale is None or not q.shape:
            continue
        dim = q.shape[-1]
        q_layer, k_layer = _projection(q), _projection(k)
        if q_layer is None or k_layer is None or q_layer[0].module == k_layer[0].module:
            continue
        total = scale * q_layer[1] * k_layer[1] * math.sqrt(dim)
        module = q_layer[0].module
        if module is not None and module not in found and total > 0 and abs(
                math.log(total)) > math.log(1.05):
            found[module] = (1.0 / total, dim)
    return found


def _embedding_sources(node: Node, embeddings: set[str], depth: int = 0) -> set[str] | None:
    """The embedding lookups whose sum (or scaled copy) `node` is; None if it is anything
    else (or deeper than a sum of embeddings goes)."""
    if depth > 16:
        return None
    if node.kind == "layer":
        return {node.module} if node.module in embeddings else None
    if node.kind != "op":
        return None
    name = canonical(node.name)
    inputs = _tensor_inputs(node)
    if _scale_of(node) is not None or (name in LAYOUT and name not in ("cat", "stack")
                                       and len(inputs) == 1):
        return _embedding_sources(inputs[0], embeddings, depth + 1)
    if name == "add" and len(inputs) == 2:
        a = _embedding_sources(inputs[0], embeddings, depth + 1)
        b = _embedding_sources(inputs[1], embeddings, depth + 1) if a is not None else None
        return a | b if a is not None and b is not None else None
    return None


def embedding_groups(graph: Graph, embeddings: set[str]) -> list[set[str]]:
    """Sets of embedding modules whose lookups are summed into one stream (token + position
    + token type)."""
    groups: list[set[str]] = []
    if len(embeddings) < 2:
        return groups
    for node in graph.nodes:
        if node.kind != "op" or canonical(node.name) != "add":
            continue
        sources = _embedding_sources(node, embeddings)
        if sources is None or len(sources) < 2:
            continue
        touching = [g for g in groups if g & sources]
        merged = set(sources).union(*touching)
        groups = [g for g in groups if not g & sources] + [merged]
    return groups


def _downstream(node: Node, consumers: dict[int, list[Node]], through: frozenset[str],
                limit: int = 16) -> Iterator[Node]:
    """The ops reached from `node` through ops named in `through`, breadth first."""
    frontier, seen = [node], {node.id}
    for _ in range(limit):
        following = []
        for current in frontier:
            for op in consumers.get(current.id, []):
                relabelled = op.kind == "layer" and op.inner is current
                if op.id in seen or not (op.kind == "op" or relabelled):
                    continue
                seen.add(op.id)
                if relabelled:  # a module's output: the same values
                    following.append(op)
                    continue
                yield op
                if canonical(op.name) in through:
                    following.append(op)
        frontier = following
        if not frontier:
            return


_TOWARD_SCORES = LAYOUT | SELECT | {"add", "masked_fill", "where", "float", "to"}


def score_biases(graph: Graph, embeddings: set[str]) -> set[str]:
    """Embedding modules and parameters whose values are added to attention scores before
    the softmax: T5's relative position bias (a lookup), Swin's relative position table (a
    parameter indexed by relative position)."""
    consumers = graph.consumers()
    found = set()
    for node in graph.nodes:
        if node.kind == "layer" and node.module in embeddings:
            name = node.module
        elif node.kind == "const" and node.param is not None:
            name = node.param
        else:
            continue
        if name not in found and any(_attention_scores(op)
                                     for op in _downstream(node, consumers, _TOWARD_SCORES)):
            found.add(name)
    return found


def _attention_scores(op: Node) -> bool:
    """Whether `op` turns attention scores into probabilities: SDPA, or a softmax over a
    q @ k^T product of two computed tensors (not a classifier's x @ W + b)."""
    name = canonical(op.name)
    if name in _SCORES_SDPA:
        return True
    if name not in _SOFTMAX:
        return False
    first = first_tensor_input(op)
    scores = _scores_of(first.node) if first is not None else None
    if scores is None:
        return False
    operands = _tensor_inputs(scores[0])
    return len(operands) == 2 and all(n.kind != "const" for n in operands)


_SCORES_SDPA = frozenset({"scaled_dot_product_attention"})


def routers(graph: Graph) -> set[int]:
    """Ids of the nodes (layer outputs, or linear ops inside a module) whose values go only
    to a softmax or a top-k, through casts and reshapes: a mixture of experts' router,
    whose logits only choose."""
    consumers = graph.consumers()
    outputs = {n.id for n in graph.result}
    found = set()
    for node in graph.nodes:
        if node.out_index is not None or not (
                node.kind == "layer" or (node.kind == "op" and canonical(node.name) == "linear")):
            continue
        reached = list(_downstream(node, consumers, LAYOUT, limit=4))
        if reached and any(canonical(op.name) in _ROUTE for op in reached) and all(
                canonical(op.name) in _ROUTE | LAYOUT for op in reached) and not any(
                op.id in outputs for op in reached):
            found.add(node.id)  # (a classifier returning softmax(logits) is not a router)
    return found
