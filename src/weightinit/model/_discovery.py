"""Discovery: one `ParamInfo` per parameter, in execution order, from the modules (roles, fans)
and one recorded forward pass (what feeds each layer, which layers end residual branches)."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from .._errors import InitError, failure, first_line
from ._dataflow import LINEAR, UNKNOWN, Dataflow, Feed
from ._graph import Graph
from ._info import ParamInfo
from ._probe import as_call, synthesize_input, trace
from ._roles import describe_parameters


@dataclasses.dataclass(frozen=True)
class Discovery:
    """The parameters in registration order (the order a policy's rules see them in), the row
    order of the plan (`order`: indices into `params`, execution order, then registration
    order), and what discovery says about the whole model (how the pass ran, residual branches
    found)."""

    params: tuple[ParamInfo, ...]
    order: tuple[int, ...]
    notes: tuple[str, ...]


def discover(model: nn.Module, example_inputs: object = None, *, graph: Graph | None = None,
             argument: str = "example_inputs") -> Discovery:
    """Roles from the modules, feeds and residual branches from one forward pass (run here on
    `example_inputs`, passed by the user as `argument`; or already recorded: `graph`)."""
    notes: list[str] = []
    if graph is None:
        graph = _record(model, example_inputs, argument, notes)
    flow = None
    if graph is not None:
        flow = Dataflow(graph, model)
        if flow.n_residual:
            notes.append(f"{flow.n_residual} residual branches found.")
    modules = dict(model.named_modules(remove_duplicate=False))
    feeds: dict[tuple[str, int], tuple[Feed, str]] = {}
    found = []
    for info in describe_parameters(model):
        # MultiheadAttention's separate k/v projections read the key and the value inputs.
        argument_index = {"k_proj_weight": 1, "v_proj_weight": 2}.get(info.attr, 0) if (
            isinstance(modules[info.module], nn.MultiheadAttention)) else 0
        if (info.module, argument_index) not in feeds:
            feeds[(info.module, argument_index)] = _feed_for(info.module, flow, graph, modules,
                                                             argument_index)
        feed, note = feeds[(info.module, argument_index)]
        if flow is not None:
            info = dataclasses.replace(
                info, residual_end=(info.is_weight and info.role != "embedding"
                                    and info.module in flow.residual_ends),
                n_residual=flow.n_residual,
                branch_layers=flow.branch_layers.get(info.module, 0),
                output_layer=info.module in flow.output_layers)
        found.append(dataclasses.replace(info, feed=feed, note=note))
    rank = {name: i for i, name in enumerate(graph.order)} if graph is not None else {}
    order = sorted(range(len(found)), key=lambda i: (
        rank.get(found[i].module, _ancestor_rank(found[i].module, rank)), i))
    return Discovery(tuple(found), tuple(order), tuple(notes))


def _record(model: nn.Module, example_inputs: object, argument: str,
            notes: list[str]) -> Graph | None:
    """One forward pass on `example_inputs` (or a synthesized input) as a graph; None, with a
    note saying why, when no pass can run on a synthesized input."""
    if example_inputs is not None:
        args, kwargs = as_call(example_inputs, argument)
        try:
            graph, how = trace(model, args, kwargs)
        except InitError:
            raise
        except Exception as exc:
            raise failure(f"The forward pass on `{argument}`", exc,
                          fix="Pass inputs the model accepts (a tuple of positional arguments "
                          "or a dict of keyword arguments)") from None
        notes.append(f"Dataflow from one forward pass ({how}) on {argument}.")
        return graph
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    synthesized, what = synthesize_input(model, "meta" if device.type == "meta" else device)
    if synthesized is None:
        notes.append(f"No forward pass ({what}); pass example_inputs=. Activations are "
                     "unknown and rows are in module order.")
        return None
    try:
        graph, how = trace(model, synthesized, {})
    except Exception as exc:
        notes.append(f"No forward pass: the synthesized input ({what}) failed with "
                     f"{first_line(exc)}. Activations are unknown and rows are in module "
                     "order; pass example_inputs= to fix this.")
        return None
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
