"""Record one forward pass as a small dataflow graph: every tensor made during the pass is a node
that knows which op (or which module) produced it and from which nodes.

A `TorchFunctionMode` sees functional code (``F.gelu``, ``x * torch.sigmoid(x)``, ``a + b``);
module hooks see layers. A parameterized module's forward hook re-labels its output as one
``layer`` node whose inputs are the module's inputs, hiding the ops inside it. Nothing here
interprets the graph; `_dataflow` does.
"""

from __future__ import annotations

import dataclasses
import itertools
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrize import ParametrizationList
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

# Calls that only query metadata or toggle state: they make no dataflow.
_IGNORED = frozenset({
    "__get__", "__set__", "dim", "size", "numel", "stride", "is_floating_point", "is_complex",
    "element_size", "data_ptr", "_set_grad_enabled", "__len__", "__bool__", "__format__",
    "__repr__", "__hash__", "__index__", "__int__", "__float__", "item", "tolist",
    "is_contiguous", "storage_offset", "has_names", "requires_grad_", "retain_grad",
})


# Tensor attributes that are views of the tensor (read through `__get__`).
_TENSOR_PROPERTIES = frozenset({"T", "mT", "H", "mH", "data"})


@dataclasses.dataclass(eq=False)
class Node:
    """One tensor produced during the pass (or a graph input).

    `kind` is ``"input"`` (an argument of the model), ``"op"`` (a torch function), ``"layer"``
    (the output of a module with its own parameters) or ``"const"`` (a tensor that existed
    before the pass and is not a model input: a buffer, a parameter used functionally, a
    literal). `args`/`kwargs` keep the call's structure with tensors replaced by `Ref`s, so an
    op can be replayed on other values.
    """

    id: int
    kind: str
    name: str
    inputs: tuple[Node, ...] = ()
    func: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    out_index: int | None = None
    module: str | None = None
    shape: tuple[int, ...] = ()
    param: str | None = None  # a const that is this parameter of the model
    inner: Node | None = None  # a layer: the node its output was before the layer relabelled it

    def __hash__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"Node({self.id}, {self.kind}, {self.name})"


@dataclasses.dataclass(frozen=True, eq=False)
class Ref:
    """A tensor argument of a recorded op: the node that produced it, or a constant value."""

    node: Node
    value: torch.Tensor | None = None  # for small constants whose values are known


class Graph:
    """Nodes in creation order plus, per parameterized module, its calls in execution order."""

    def __init__(self, params: dict[int, str] | None = None) -> None:
        self.nodes: list[Node] = []
        self._params = params or {}  # id(tensor) -> qualified name, for the model's parameters
        self._consumers: tuple[int, dict[int, list[Node]]] | None = None
        # id(tensor) -> (weak reference, node): the pass's activations are not kept alive,
        # and a reused id is told apart because its weak reference no longer matches.
        self._by_tensor: dict[int, tuple[weakref.ref[torch.Tensor], Node]] = {}
        self._ids = itertools.count()
        self.calls: dict[str, list[tuple[Node, ...]]] = {}  # module name -> inputs per call
        self.outputs: dict[str, list[Node]] = {}  # module name -> output node per call
        self.order: list[str] = []  # parameterized modules by first call
        self.result: list[Node] = []  # nodes of the model's outputs
        self.moments: dict[str, float] = {}  # measured module -> E[x^2] of its first input

    def new(self, kind: str, name: str, tensor: torch.Tensor | None = None,
            **fields: Any) -> Node:
        shape = tuple(tensor.shape) if tensor is not None else ()
        node = Node(next(self._ids), kind, name, shape=shape, **fields)
        self.nodes.append(node)
        if tensor is not None:
            self.bind(tensor, node)
        return node

    def bind(self, tensor: torch.Tensor, node: Node) -> None:
        self._by_tensor[id(tensor)] = (weakref.ref(tensor), node)

    def bound(self, tensor: torch.Tensor) -> Node | None:
        """The node `tensor` is bound to, if any."""
        found = self._by_tensor.get(id(tensor))
        return found[1] if found is not None and found[0]() is tensor else None

    def node_of(self, tensor: torch.Tensor) -> Node:
        found = self.bound(tensor)
        if found is not None:
            return found
        # A tensor from outside the pass (a buffer, a parameter, a literal): a constant, with
        # its value kept when it is a known scalar so pointwise code around it can be replayed.
        known = tensor.device.type != "meta" and tensor.numel() <= 1
        return self.new("const", "const", tensor, param=self._params.get(id(tensor)),
                        args=(tensor.detach().clone(),) if known else ())

    def consumers(self) -> dict[int, list[Node]]:
        """Node id -> the nodes computed from it directly, in creation order. A layer's output
        counts as computed from the node it relabelled (what its forward returned). Built
        once per recorded pass."""
        if self._consumers is not None and self._consumers[0] == len(self.nodes):
            return self._consumers[1]
        found: dict[int, list[Node]] = {}
        for node in self.nodes:
            for parent in node.inputs:
                found.setdefault(parent.id, []).append(node)
            if node.inner is not None:
                found.setdefault(node.inner.id, []).append(node)
        self._consumers = (len(self.nodes), found)
        return found

    def release(self) -> None:
        self._by_tensor.clear()


def _tensors(tree: Any) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(tree)
    return [x for x in leaves if isinstance(x, torch.Tensor)]


def _func_name(func: Callable[..., Any]) -> str:
    return str(getattr(func, "__name__", type(func).__name__))


class _Recorder(TorchFunctionMode):
    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = _func_name(func)
        if name == "__get__":  # w.T, w.mT, w.data: a view of a tensor, recorded as a layout op
            name = str(getattr(getattr(func, "__self__", None), "__name__", ""))
            if name not in _TENSOR_PROPERTIES:
                return func(*args, **kwargs)
        if name in _IGNORED:
            return func(*args, **kwargs)
        graph = self.graph
        # Read the inputs' nodes BEFORE the call: an in-place op rebinds its tensor.
        refs: dict[int, Ref] = {}
        for tensor in _tensors((args, kwargs)):
            node = graph.node_of(tensor)
            known = node.args[0] if node.kind == "const" and node.args else None
            refs[id(tensor)] = Ref(node, known)
        out = func(*args, **kwargs)
        outputs = _tensors(out)
        if not outputs:
            return out

        def as_ref(x: Any) -> Any:
            return refs[id(x)] if isinstance(x, torch.Tensor) else x

        rec_args = tree_map(as_ref, tuple(args))
        rec_kwargs = tree_map(as_ref, dict(kwargs))
        inputs = tuple(dict.fromkeys(ref.node for ref in refs.values()))
        several = len(outputs) > 1 or not isinstance(out, torch.Tensor)
        for index, tensor in enumerate(outputs):
            graph.new("op", name, tensor, inputs=inputs, func=func, args=rec_args,
                      kwargs=rec_kwargs, out_index=index if several else None)
        return out


def owns_parameters(module: nn.Module) -> bool:
    """Whether `module` has parameters of its own (not only in its children): a layer. A
    parametrized weight (``torch.nn.utils.parametrize``: weight_norm, spectral_norm) is its
    module's own, not the parametrization's."""
    if isinstance(module, ParametrizationList):
        return False
    return any(True for _ in module.parameters(recurse=False)) or bool(
        getattr(module, "parametrizations", None))


def record(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
           run: Callable[[tuple[Any, ...], dict[str, Any]], Any], *,
           grad: bool = False, params: dict[str, torch.Tensor] | None = None,
           measure: frozenset[str] = frozenset()) -> tuple[Graph, Any]:
    """Run `run(args, kwargs)` (a forward of `model`); return the graph it made and its result.

    Every module with its own parameters is a layer: its output becomes one `layer` node.
    `params` (default: the model's) are the tensors `run` uses as the model's parameters, by
    qualified name: a const node that is one of them says which (`Node.param`), so a weight
    used functionally is seen where it is consumed. For the modules named in `measure`, the
    second moment of the first tensor input on the first call is kept (`Graph.moments`; real
    values only). Runs under no_grad unless `grad`. Hooks are removed and the mode popped
    whatever happens.
    """
    if params is None:
        params = dict(model.named_parameters())
    graph = Graph({id(tensor): name for name, tensor in params.items()})
    names: dict[nn.Module, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(module, name)  # a module registered twice keeps its first name
    handles: list[Any] = []
    pending: dict[str, list[tuple[tuple[Node, ...], int]]] = {}
    done = [0]  # layer calls completed so far

    def pre_hook(module: nn.Module, inputs: Any, kw: Any = None) -> None:
        name = names[module]
        tensors = _tensors((inputs, kw or {}))
        nodes = tuple(graph.node_of(t) for t in tensors)
        pending.setdefault(name, []).append((nodes, done[0]))
        if name in measure and name not in graph.moments and tensors and not tensors[
                0].is_meta and tensors[0].is_floating_point() and tensors[0].numel():
            graph.moments[name] = float(tensors[0].detach().double().pow(2).mean())

    def post_hook(module: nn.Module, inputs: Any, kw: Any, output: Any = None) -> None:
        name = names[module]
        nodes, before = pending[name].pop()
        inner_layers_ran = done[0] != before
        done[0] += 1
        graph.calls.setdefault(name, []).append(nodes)
        if name not in graph.order:
            graph.order.append(name)
        tensors = _tensors(output)
        if not tensors:
            return
        if inner_layers_ran:  # a container with parameters of its own: keep the inner graph
            graph.outputs.setdefault(name, []).append(graph.node_of(tensors[0]))
            return
        # The first tensor output is the layer's result (MultiheadAttention also returns
        # its attention weights, an LSTM its states).
        node = graph.new("layer", type(module).__name__, tensors[0], inputs=nodes,
                         module=name, inner=graph.bound(tensors[0]))
        graph.outputs.setdefault(name, []).append(node)
        for extra in tensors[1:]:
            graph.new("layer", type(module).__name__, extra, inputs=nodes, module=name,
                      out_index=1)

    for module, _name in names.items():
        if owns_parameters(module):
            handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
    try:
        for tensor in _tensors((args, kwargs)):
            graph.new("input", "input", tensor)
        with torch.set_grad_enabled(grad), _Recorder(graph):
            result = run(args, kwargs)
        graph.result = [graph.node_of(t) for t in _tensors(result)]
    finally:
        for handle in handles:
            handle.remove()
        graph.release()
    return graph, result


def iter_ancestors(node: Node) -> Iterator[Node]:
    """`node` and every node it was computed from (each once)."""
    seen = {node.id}
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for parent in current.inputs:
            if parent.id not in seen:
                seen.add(parent.id)
                stack.append(parent)
