"""Where each parameter is consumed in a recorded pass: the op that takes it (through views,
slices and dtype casts) and in which slot, so a weight used functionally (``F.linear(x,
self.dt_proj.weight)``, ``x @ self.experts[i]``, an einsum over an expert dimension) gets the
role, fans and feed of the op that really uses it."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Literal

from ..theory import Fans, compute_fans
from ._graph import Graph, Node, Ref
from ._ops import LAYOUT, MERGES, SELECT, canonical

# op -> (data argument position, {parameter slot position: slot kind})
_LINEAR_LIKE = {
    "linear": (0, {1: "weight", 2: "bias"}),
    "conv1d": (0, {1: "weight", 2: "bias"}), "conv2d": (0, {1: "weight", 2: "bias"}),
    "conv3d": (0, {1: "weight", 2: "bias"}),
    "conv_transpose1d": (0, {1: "weight", 2: "bias"}),
    "conv_transpose2d": (0, {1: "weight", 2: "bias"}),
    "conv_transpose3d": (0, {1: "weight", 2: "bias"}),
    "embedding": (0, {1: "lookup"}),
    "layer_norm": (0, {2: "norm", 3: "norm_bias"}), "rms_norm": (0, {2: "norm"}),
    "group_norm": (0, {2: "norm", 3: "norm_bias"}),
    "batch_norm": (0, {3: "norm", 4: "norm_bias"}),
}
_KWARG_POSITIONS = {"weight": 1, "bias": 2}
_NORM_KWARGS = {"weight": 2, "bias": 3}
_MATMUL = frozenset({"matmul", "mm", "bmm", "_grouped_mm", "grouped_mm"})
_ADD_MATMUL = frozenset({"addmm", "baddbmm", "addbmm"})  # (bias, a, b)


@dataclasses.dataclass(frozen=True)
class Use:
    """One consumption of a parameter: `op` takes it (as `slot`: ``"weight"``, ``"bias"``,
    ``"lookup"``, ``"norm"``, ``"norm_bias"`` or ``"other"``), with the fans of the slot's
    logical layout (fan_in: the contracted dimensions) and the data it multiplies."""

    op: Node
    slot: str
    fans: Fans | None = None
    data: Node | None = None


def parameter_uses(graph: Graph) -> dict[str, list[Use]]:
    """Parameter name -> its uses, in execution order."""
    consumers = graph.consumers()
    found: dict[str, list[Use]] = {}
    for node in graph.nodes:
        if node.kind == "const" and node.param is not None:
            uses = found.setdefault(node.param, [])
            for end in _views(node, consumers):
                for op in consumers.get(end.id, []):
                    if op.kind == "op" and not _is_view(op, end):
                        uses.append(_classify(op, end))
    return found


def _is_view(op: Node, of: Node) -> bool:
    name = canonical(op.name)
    return ((name in LAYOUT or name in SELECT) and name not in MERGES and bool(op.inputs)
            and op.inputs[0] is of)


def _views(node: Node, consumers: dict[int, list[Node]]) -> list[Node]:
    """`node` and every view, slice or cast of it (the tensors that are still the parameter)."""
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(c for c in consumers.get(current.id, []) if c.kind == "op"
                     and _is_view(c, current))
    return out


def _position(op: Node, end: Node) -> int | str | None:
    for i, arg in enumerate(op.args):
        if isinstance(arg, Ref) and arg.node is end:
            return i
        if isinstance(arg, (tuple, list)) and any(isinstance(a, Ref) and a.node is end
                                                  for a in arg):
            return i
    for key, arg in op.kwargs.items():
        if isinstance(arg, Ref) and arg.node is end:
            return key
    return None


def _node_at(op: Node, position: int) -> Node | None:
    if position < len(op.args) and isinstance(op.args[position], Ref):
        ref: Ref = op.args[position]
        return ref.node
    return None


def _classify(op: Node, end: Node) -> Use:
    name = canonical(op.name)
    position = _position(op, end)
    shape = end.shape
    if name in _LINEAR_LIKE:
        data, slots = _LINEAR_LIKE[name]
        if isinstance(position, str):
            position = (_NORM_KWARGS if "norm" in name else _KWARG_POSITIONS).get(position)
        slot = slots.get(position, "other") if isinstance(position, int) else "other"
        fans = None
        if slot == "weight" and len(shape) >= 2:
            kind: Literal["linear", "conv", "conv_transpose"] = (
                "conv_transpose" if name.startswith("conv_transpose") else
                "conv" if name.startswith("conv") else "linear")
            # groups is the 7th argument of conv (.., dilation, groups) and of conv_transpose
            # (.., output_padding, groups, dilation) alike
            groups = op.args[6] if len(op.args) > 6 and isinstance(op.args[6], int) else (
                op.kwargs.get("groups", 1))
            fans = compute_fans(shape, kind, groups=groups if isinstance(groups, int) else 1)
        return Use(op, slot, fans, _node_at(op, data))
    if name in _MATMUL or name in _ADD_MATMUL:
        offset = 1 if name in _ADD_MATMUL else 0
        if position == offset and len(shape) >= 2:  # W @ x
            return Use(op, "weight", Fans(shape[-1], shape[-2]), _node_at(op, offset + 1))
        if position == offset + 1 and len(shape) >= 2:  # x @ W
            return Use(op, "weight", Fans(shape[-2], shape[-1]), _node_at(op, offset))
        if position == 0 and name in _ADD_MATMUL:
            return Use(op, "bias")
        return Use(op, "other")
    if name == "einsum":
        return _einsum_use(op, end)
    return Use(op, "other")


def _einsum_use(op: Node, end: Node) -> Use:
    """An einsum operand's fans: the letters summed over are its fan_in, the letters only it
    and the output have are its fan_out, letters shared by all (an expert index) neither."""
    equation = op.args[0] if op.args and isinstance(op.args[0], str) else None
    operands = list(op.args[1:])
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = list(operands[0])
    if equation is None or "." in equation or len(operands) != 2:
        return Use(op, "other")
    equation = equation.replace(" ", "")
    inputs, _, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != 2 or not all(re.fullmatch(r"[a-zA-Z]*", t) for t in (*terms, output)):
        return Use(op, "other")
    if not _:  # implicit output: the letters that appear once, sorted
        output = "".join(sorted(c for c in set(inputs) - {","} if inputs.count(c) == 1))
    mine = next((i for i, o in enumerate(operands) if isinstance(o, Ref) and o.node is end),
                None)
    if mine is None or len(terms[mine]) != len(end.shape):
        return Use(op, "other")
    other = terms[1 - mine]
    size = dict(zip(terms[mine], end.shape, strict=True))
    fan_in = math.prod(size[c] for c in terms[mine] if c in other and c not in output)
    fan_out = math.prod(size[c] for c in terms[mine] if c in output and c not in other)
    data = operands[1 - mine]
    return Use(op, "weight", Fans(fan_in, fan_out), data.node if isinstance(data, Ref) else None)
