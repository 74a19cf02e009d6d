"""Discovery: one `ParamInfo` per parameter, in execution order, from the modules (roles, fans)
and one recorded forward pass (what feeds each layer, which layers end residual branches)."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from .._errors import InitError, failure, first_line
from .._sync import Busy
from ._dataflow import LINEAR, UNKNOWN, Dataflow, Feed
from ._graph import Graph
from ._info import ParamInfo
from ._keep import deliberate, structured
from ._norms import norm_offset
from ._ops import canonical
from ._probe import (
    as_call,
    check_measurable,
    input_candidates,
    synthesize_input,
    tensors_in,
    trace,
)
from ._roles import describe_parameters
from ._structure import embedding_groups, query_factors, routers, score_biases
from ._uses import Use, parameter_uses


@dataclasses.dataclass(frozen=True)
class Discovery:
    """The parameters in registration order (the order a policy's rules see them in), the row
    order of the plan (`order`: indices into `params`, execution order, then registration
    order), and what discovery says about the whole model (how the pass ran, residual branches
    found)."""

    params: tuple[ParamInfo, ...]
    order: tuple[int, ...]
    notes: tuple[str, ...]
    dataflow: bool = True  # a forward pass ran: feeds and residual branches are known


def discover(model: nn.Module, example_inputs: object = None, *, graph: Graph | None = None,
             argument: str = "example_inputs", measure: frozenset[str] = frozenset()
             ) -> Discovery:
    """Roles from the modules, feeds and residual branches from one forward pass (run here on
    `example_inputs`, passed by the user as `argument`; or already recorded: `graph`). The
    layers named in `measure` get their feed's second moment measured on the real pass
    (``Feed.label`` ``"measured"``) instead of derived for a unit-variance source."""
    notes: list[str] = []
    described = describe_parameters(model)  # refuses lazy (uninitialized) parameters first
    if graph is None:
        graph = _record(model, example_inputs, argument, notes, measure)
    modules = dict(model.named_modules(remove_duplicate=False))
    if graph is None:
        found = [dataclasses.replace(info, keep=deliberate(info, model)) for info in described]
        return Discovery(tuple(found), tuple(range(len(found))), tuple(notes), dataflow=False)
    flow = Dataflow(graph, model)
    if flow.n_residual:
        notes.append(f"{flow.n_residual} residual branches found.")
    facts = _Facts(graph, flow, modules, described)
    found = [facts.complete(info, model) for info in described]
    notes.extend(facts.notes)
    rank = {name: i for i, name in enumerate(graph.order)}
    order = sorted(range(len(found)), key=lambda i: (
        rank.get(found[i].module, _ancestor_rank(found[i].module, rank)), i))
    return Discovery(tuple(found), tuple(order), tuple(notes))


class _Facts:
    """What one recorded pass says about each parameter, computed once per model."""

    def __init__(self, graph: Graph, flow: Dataflow, modules: dict[str, nn.Module],
                 described: list[ParamInfo]) -> None:
        self.graph, self.flow, self.modules = graph, flow, modules
        self.uses = parameter_uses(graph)
        self.notes: list[str] = []
        self.feeds: dict[tuple[str, int], tuple[Feed, str]] = {}
        embeddings = {name for name, m in modules.items()
                      if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
        self.queries = query_factors(graph)
        self.routers = routers(graph)
        self.score_biases = score_biases(graph, embeddings)
        self.stream_dims: dict[str, int] = {}
        tied = {}  # every module holding an output-tied embedding -> its dim
        self.tied_functionally = {
            info.name for info in described if info.role == "embedding" and any(
                u.slot == "weight" for u in self.uses.get(info.name, []))}
        for info in described:
            if (info.tied_output or info.name in self.tied_functionally) and len(
                    info.shape) == 2:
                for name in (info.name, *info.aliases):
                    tied[name.rpartition(".")[0]] = info.shape[1]
        for group in embedding_groups(graph, embeddings):
            dims = [tied[m] for m in group if m in tied]
            for member in group:
                if dims:
                    self.stream_dims[member] = dims[0]
        self.ends = self._param_ends(described)
        self.offsets: dict[tuple[type, tuple[int, ...], tuple[int, ...]], float | None] = {}
        if self.queries:
            self.notes.append(
                f"{len(self.queries)} attention score computations without 1/sqrt(d): the "
                "query projection's std takes the factor instead.")

    def _param_ends(self, described: list[ParamInfo]) -> set[str]:
        """Weights that end a residual branch: every weight of a branch-end layer, except in
        a layer with several weights used inside it (an MoE's experts), where only the last
        one used before the layer's output."""
        ends = set()
        by_module: dict[str, list[str]] = {}
        for info in described:
            if info.is_weight and info.role != "embedding":
                by_module.setdefault(info.module, []).append(info.name)
        for module in self.flow.residual_ends:
            weights = by_module.get(module, [])
            used = [w for w in weights if any(u.slot == "weight" for u in self.uses.get(w, []))]
            if len(used) > 1 and len(used) == len(weights):
                ends.add(max(used, key=lambda w: max(u.op.id for u in self.uses[w]
                                                     if u.slot == "weight")))
            else:
                ends.update(weights)
        return ends

    def _feed(self, module: str, argument: int) -> tuple[Feed, str]:
        if (module, argument) not in self.feeds:
            self.feeds[(module, argument)] = _feed_for(module, self.flow, self.graph,
                                                       self.modules, argument)
        return self.feeds[(module, argument)]

    def complete(self, info: ParamInfo, model: nn.Module) -> ParamInfo:
        """`info` with the pass's findings: feed, residual structure, and what its uses say."""
        module = self.modules[info.module]
        # MultiheadAttention's separate k/v projections read the key and the value inputs.
        argument = {"k_proj_weight": 1, "v_proj_weight": 2}.get(info.attr, 0) if isinstance(
            module, nn.MultiheadAttention) else 0
        feed, note = self._feed(info.module, argument)
        uses = self.uses.get(info.name, [])
        weight_use = next((u for u in uses if u.slot in ("weight", "bias")), None)
        role, fans = info.role, info.fans
        if weight_use is not None and (role == "unknown" or feed.label == "unused"):
            # Used functionally: the op that consumes it says what it is and what feeds it.
            if role == "unknown":
                op = canonical(weight_use.op.name)
                kind = ("conv_transpose" if op.startswith("conv_transpose") else
                        "conv" if op.startswith("conv") else "linear")
                role = f"{kind}.{'weight' if weight_use.slot == 'weight' else 'bias'}"
                fans = weight_use.fans
            if weight_use.data is not None:
                feed = self.flow.feed_of(weight_use.data)
                note = "used functionally" if info.role != "unknown" else (
                    f"role from its use: {canonical(weight_use.op.name)}")
        measured = self.graph.moments.get(info.module)
        if measured is not None and not math.isfinite(measured):
            raise failure(
                f"Measuring the input of {info.module!r} ({info.layer}) for {info.name!r}: "
                f"its second moment on the forward pass is {measured!r}", fix="Pass "
                "example_inputs on which the model's activations stay finite (real data)")
        if measured is not None and info.is_weight and role not in ("embedding", "norm.weight"):
            feed = Feed("measured", f"{feed.label} <- {feed.source}", measured)
            note = "; ".join(n for n in (note, f"input E[x^2] {measured:.4g}, measured") if n)
        offset = 0.0
        if role == "norm.weight":
            offset = self._offset(module, info)
        factor, factor_note = 1.0, ""
        if info.module in self.queries and info.is_weight and role == "linear.weight":
            factor, dim = self.queries[info.module]
            factor_note = f"attention scores lack 1/sqrt({dim}): std x {factor:.4g}"
        info = dataclasses.replace(
            info, role=role, fans=fans, feed=feed,
            tied_output=info.tied_output or info.name in self.tied_functionally,
            note="; ".join(n for n in (note, factor_note) if n),
            residual_end=(info.is_weight and role != "embedding" and info.name in self.ends),
            n_residual=self.flow.n_residual,
            branch_layers=self.flow.branch_layers.get(info.module, 0),
            output_layer=info.module in self.flow.output_layers,
            std_factor=factor, scale_offset=offset,
            stream_dim=self.stream_dims.get(info.module),
            router=info.is_weight and self._routes(info.module, uses),
            score_bias=info.module in self.score_biases or info.name in self.score_biases)
        info = dataclasses.replace(info, keep=deliberate(info, model, uses))
        extra = structured(info, model)
        return dataclasses.replace(info, note="; ".join(n for n in (info.note, extra) if n))

    def _routes(self, module: str, uses: list[Use]) -> bool:
        """The layer's output (or its weight's linear op inside it) only chooses."""
        outputs = self.graph.outputs.get(module, [])
        return any(n.id in self.routers for n in outputs) or any(
            u.op.id in self.routers for u in uses if u.slot == "weight")

    def _offset(self, module: nn.Module, info: ParamInfo) -> float:
        calls = self.graph.calls.get(info.module)
        if not calls or not calls[0]:
            return 0.0
        shape = calls[0][0].shape
        key = (type(module), info.shape, shape)
        if key not in self.offsets:
            self.offsets[key] = norm_offset(module, info.attr, shape)
        found = self.offsets[key]
        return found if found is not None else 0.0


def _record(model: nn.Module, example_inputs: object, argument: str,
            notes: list[str], measure: frozenset[str] = frozenset()) -> Graph | None:
    """One forward pass on `example_inputs` (or a synthesized input) as a graph; None, with a
    note saying why, when no pass can run on a synthesized input."""
    if example_inputs is not None:
        args, kwargs = as_call(example_inputs, argument)
        if measure:  # the new layers' inputs are measured on them: they must be data
            check_measurable(tensors_in((args, kwargs)), argument)
        try:
            graph, how = trace(model, args, kwargs, measure=measure, given=True)
        except InitError:
            raise
        except Exception as exc:
            raise failure(f"The forward pass on `{argument}`", exc,
                          fix="Pass inputs the model accepts (a tuple of positional arguments "
                          "or a dict of keyword arguments)") from None
        notes.append(f"Dataflow from one forward pass ({how}) on {argument}.")
        return graph
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    target = "meta" if device.type == "meta" else device
    synthesized, what = synthesize_input(model, target)
    # The first registered layer is not always the first one called (fc2 defined before
    # fc1): each candidate's input is tried, and kept when its layer is the first called; else
    # the first registered layer's, when it makes the input shape obvious and its input ran.
    chosen: tuple[Graph, str, str] | None = None
    fallback: tuple[Graph, str, str] | None = None
    failed: tuple[str, BaseException] | None = None
    for index, (name, args, made) in enumerate(input_candidates(model, target)):
        try:
            graph, how = trace(model, args, {}, measure=measure)
        except Busy:
            raise
        except Exception as exc:
            failed = failed or (made, exc)
            continue
        if graph.order[:1] == [name]:
            chosen = (graph, how, made)
            break
        if index == 0 and synthesized is not None:
            fallback = (graph, how, made)
    chosen = chosen or fallback
    if chosen is None:
        if failed is None:
            notes.append(f"No forward pass ({what}); pass example_inputs=. Activations are "
                         "unknown and rows are in module order.")
        else:
            notes.append(f"No forward pass: the synthesized input ({failed[0]}) failed with "
                         f"{first_line(failed[1])}. Activations are unknown and rows are in "
                         "module order; pass example_inputs= to fix this.")
        return None
    graph, how, what = chosen
    notes.append(f"Dataflow from one forward pass ({how}) on a synthesized input: {what}.")
    return graph


def _feed_for(name: str, flow: Dataflow | None, graph: Graph | None,
              modules: dict[str, nn.Module], argument: int = 0) -> tuple[Feed, str]:
    """What feeds module `name` (its `argument`-th tensor input) on its first call, and a
    note on later calls or none."""
    if flow is None or graph is None:
        return UNKNOWN, ""
    if isinstance(modules.get(name), (nn.Embedding, nn.EmbeddingBag)):
        return Feed("lookup", "indices", None), ""
    calls = graph.calls.get(name)
    if calls:
        if not calls[0]:
            return UNKNOWN, "called without tensor inputs"
        feed = flow.feed_of(calls[0][min(argument, len(calls[0]) - 1)])
        if len(calls) == 1:
            return feed, ""
        others = sorted({flow.feed_of(c[0]).label for c in calls[1:] if c} - {feed.label})
        return feed, f"called {len(calls)}x" + (
            f"; later calls fed by {', '.join(others)}" if others else "")
    parent_name = name.rsplit(".", 1)[0] if "." in name else ""
    if isinstance(modules.get(parent_name), nn.MultiheadAttention) and graph.calls.get(
            parent_name):
        return LINEAR, ""  # out_proj, applied inside MultiheadAttention's own forward
    return Feed("unused", "not called in the forward pass", None), "not called"


def _ancestor_rank(module: str, rank: dict[str, int]) -> float:
    """Modules never called directly (MultiheadAttention's out_proj) sort with their parent."""
    parts = module.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        parent = ".".join(parts[:cut])
        if parent in rank:
            return rank[parent] + 0.5
    return math.inf
