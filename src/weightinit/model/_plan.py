"""`init_model`: discover the model, decide a spec per parameter, fill them all or none."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from .._errors import InitError
from ..random import check_seed
from ..schemes import Spec
from ..theory import Fans, infer_fans
from ._dataflow import LINEAR, UNKNOWN, Dataflow, Feed
from ._graph import Graph, record
from ._policy import CALIBRATORS, ParamInfo, Policy, resolve_policy
from ._roles import Slot, slots


@dataclasses.dataclass(frozen=True)
class PlanRow:
    """What the plan does to one parameter (tied parameters: one row, with their aliases)."""

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    role: str
    layer: str
    module: str
    activation: str
    source: str
    fans: Fans | None
    spec: Spec | None
    std: float | None
    rule: str
    residual: bool = False
    note: str = ""
    padding_idx: int | None = None

    @property
    def kept(self) -> bool:
        return self.spec is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "aliases": list(self.aliases), "shape": list(self.shape),
            "role": self.role, "layer": self.layer, "module": self.module,
            "activation": self.activation, "source": self.source,
            "fans": None if self.fans is None else list(self.fans),
            "spec": None if self.spec is None else self.spec.to_dict(),
            "std": self.std, "rule": self.rule, "residual": self.residual, "note": self.note,
        }


class InitPlan:
    """One row per parameter, in execution order: what was (or will be) done to it.

    `apply(model)` fills the model from the plan: each parameter from the keyed stream of
    (seed, its qualified name), so the values do not depend on construction order or on any
    other parameter. All or nothing: if any parameter fails, none is changed.
    """

    def __init__(self, rows: Sequence[PlanRow], *, seed: int, policy: str,
                 notes: Sequence[str] = ()) -> None:
        self.rows: tuple[PlanRow, ...] = tuple(rows)
        self.seed = seed
        self.policy = policy
        self.notes: tuple[str, ...] = tuple(notes)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[PlanRow]:
        return iter(self.rows)

    def __getitem__(self, name: str) -> PlanRow:
        for row in self.rows:
            if name == row.name or name in row.aliases:
                return row
        raise KeyError(name)

    def __repr__(self) -> str:
        kept = sum(row.kept for row in self.rows)
        return (f"InitPlan({len(self.rows)} parameters, policy={self.policy!r}, "
                f"seed={self.seed}, kept={kept})")

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "seed": self.seed, "notes": list(self.notes),
                "rows": [row.to_dict() for row in self.rows]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> Any:
        """The plan as a `rich.table.Table` (print it with ``rich.print`` or a Console)."""
        from rich.table import Table

        table = Table(title=f"weightinit plan: policy {self.policy!r}, seed {self.seed}",
                      caption="\n".join(self.notes) or None, caption_justify="left")
        for column, justify in (("parameter", "left"), ("shape", "left"), ("layer", "left"),
                                ("role", "left"),
                                ("activation <- source", "left"), ("residual", "left"),
                                ("fans in/out", "right"), ("spec", "left"), ("std", "right"),
                                ("rule", "left")):
            table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in self.rows:
            name = row.name + "".join(f"\n= {alias}" for alias in row.aliases)
            fans = "" if row.fans is None else f"{row.fans.fan_in}/{row.fans.fan_out}"
            spec = "kept" if row.spec is None else spec_label(row.spec)
            std = "" if row.std is None else f"{row.std:.4g}"
            rule = row.rule.removeprefix(f"{self.policy}: ") + (
                f" ({row.note})" if row.note else "")
            table.add_row(name, "x".join(map(str, row.shape)) or "()", row.layer, row.role,
                          f"{row.activation} <- {row.source}", "end" if row.residual else "",
                          fans, spec, std, rule)
        return table

    def apply(self, model: nn.Module) -> InitPlan:
        """Fill `model`'s parameters as planned; all of them or, on any error, none."""
        if not isinstance(model, nn.Module):
            raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
        params = dict(model.named_parameters(remove_duplicate=False))
        for row in self.rows:
            param = params.get(row.name)
            if param is None:
                raise InitError(
                    f"The plan has parameter {row.name!r}, which the model does not; build the "
                    "plan for this model with wi.init_model(model, dry_run=True)."
                )
            if tuple(param.shape) != row.shape:
                raise InitError(
                    f"Parameter {row.name!r} has shape {tuple(param.shape)}, the plan expected "
                    f"{row.shape}; rebuild the plan for this model."
                )
            if param.device.type == "meta":
                raise InitError(
                    f"Parameter {row.name!r} is on the meta device (no memory to fill); "
                    "wi.materialize(model, device='cpu') allocates and initializes it."
                )
        fresh: dict[str, torch.Tensor] = {}
        for row in self.rows:
            if row.spec is None:
                continue
            param = params[row.name]
            values = torch.empty_like(param, memory_format=torch.contiguous_format)
            try:
                row.spec.fill_(values, fans=row.fans if row.spec.needs_fans else None,
                               seed=self.seed, key=row.name)
            except InitError as exc:
                raise InitError(
                    f"Filling {row.name!r} (shape {row.shape}) with {row.spec!r} failed: {exc} "
                    "No parameter was changed."
                ) from None
            except Exception as exc:
                raise InitError(
                    f"Filling {row.name!r} (shape {row.shape}) with {row.spec!r} failed: "
                    f"{type(exc).__name__}: {exc}. No parameter was changed."
                ) from exc
            if row.padding_idx is not None:
                values[row.padding_idx] = 0
            fresh[row.name] = values
        with torch.no_grad():
            for name, values in fresh.items():
                params[name].copy_(values)
        return self


def spec_label(spec: Spec) -> str:
    """``He(relu)``-style: the class and the fields that differ from its defaults."""
    data = spec.to_dict()
    name = data.pop("type")
    try:
        defaults = type(spec)().to_dict()
    except Exception:
        defaults = {}
    shown = []
    for key, value in data.items():
        if defaults.get(key) == value and key != "activation":
            continue
        text = f"{value:.4g}" if isinstance(value, float) else (
            "(" + ", ".join(f"{v:g}" for v in value) + ")" if isinstance(value, tuple)
            else str(value))
        shown.append(text if key == "activation" else f"{key}={text}")
    return f"{name}({', '.join(shown)})"


# --- discovery -----------------------------------------------------------------------------------
def _own_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def _synthesize(model: nn.Module, device: torch.device | str
                ) -> tuple[tuple[Any, ...] | None, str]:
    """An input batch when the first layer makes its shape obvious (Linear, ConvNd,
    Embedding), built on `device` from a private generator; else (None, why)."""
    for module in model.modules():
        if not _own_params(module):
            continue
        weight = next(module.parameters(recurse=False))
        dtype = weight.dtype if weight.dtype.is_floating_point else torch.float32
        generator = None
        if torch.device(device).type != "meta":
            generator = torch.Generator(device=device).manual_seed(0)
        if isinstance(module, nn.Linear):
            shape: tuple[int, ...] = (4, module.in_features)
        elif isinstance(module, nn.modules.conv._ConvNd):
            dims = len(module.kernel_size)
            size = 32 if dims <= 2 else 8
            shape = (2, module.in_channels, *[size] * dims)
            if isinstance(module, nn.modules.conv._ConvTransposeNd):
                shape = (2, module.in_channels, *[8] * dims)
        elif isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            ids = torch.randint(0, module.num_embeddings, (2, 16), device=device,
                                generator=generator) if generator else torch.empty(
                (2, 16), dtype=torch.long, device=device)
            return (ids,), f"token ids of shape (2, 16) for {type(module).__name__}"
        else:
            # Only the first layer decides: a guess from a later one could be wrong.
            return None, (f"the first layer ({type(module).__name__}) does not make the input "
                          "shape obvious (Linear, ConvNd and Embedding do)")
        if generator is None:
            return (torch.empty(shape, dtype=dtype, device=device),), f"N(0,1) of shape {shape}"
        return (torch.randn(shape, dtype=dtype, device=device, generator=generator),), (
            f"N(0,1) of shape {shape}")
    return None, "no Linear, ConvNd or Embedding layer to infer an input shape from"


def _as_call(example_inputs: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, tuple):
        return example_inputs, {}
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    raise InitError(
        f"`example_inputs` must be a tuple of positional arguments, a dict of keyword "
        f"arguments or a tensor, got {type(example_inputs).__name__}."
    )


def check_batch(batch: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) of a model's input batch, refused when empty or not finite."""
    if batch is None:
        raise InitError("`batch` is required: it is what the model is measured on.")
    args, kwargs = _as_call(batch if isinstance(batch, (tuple, Mapping)) else (batch,))
    tensors = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
    if not tensors:
        raise InitError("`batch` holds no tensor; pass the model's input batch.")
    for tensor in tensors:
        if tensor.numel() == 0:
            raise InitError(
                f"`batch` has an empty tensor (shape {tuple(tensor.shape)}); measuring needs "
                "samples."
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise InitError(
                f"`batch` has {bad} NaN/Inf values (tensor of shape {tuple(tensor.shape)}); "
                "the model must be measured on finite inputs."
            )
    return args, kwargs


def _to_meta(tree: Any) -> Any:
    return tree_map(lambda x: torch.empty_like(x, device="meta")
                    if isinstance(x, torch.Tensor) else x, tree)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, mode in modes:
            module.training = mode


REAL_FIRST_BELOW = 1 << 24
"""Models on the CPU with fewer parameters than this are probed for real first: a pass costs
milliseconds there, while the meta device's first use imports torch._dynamo (about 2 s)."""


def is_dtensor(tensor: object) -> bool:
    """Whether `tensor` is a torch.distributed DTensor (without importing torch.distributed
    for models that have none)."""
    return any(cls.__name__ == "DTensor" and cls.__module__.startswith("torch.distributed")
               for cls in type(tensor).__mro__)


def _meta_like(tensor: torch.Tensor) -> torch.Tensor:
    """A meta tensor of `tensor`'s logical shape: a DTensor's global shape, not its shard."""
    if is_dtensor(tensor):
        return torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")
    return torch.empty_like(tensor, device="meta")


@contextlib.contextmanager
def without_forward_hooks(model: nn.Module) -> Iterator[None]:
    """Hide every module's forward hooks for the duration: FSDP2's and tensor parallelism's
    hooks would gather shards or redistribute activations, which a probe on global-shape meta
    tensors must not do."""
    kinds = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
             "_forward_hooks_with_kwargs", "_forward_hooks_always_called")
    saved = []
    for module in model.modules():
        for kind in kinds:
            hooks = getattr(module, kind, None)
            if hooks:
                saved.append((module, kind, hooks))
                setattr(module, kind, type(hooks)())
    try:
        yield
    finally:
        for module, kind, hooks in saved:
            setattr(module, kind, hooks)


def _trace(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Graph, str]:
    """Record one forward pass without side effects, in one of two ways, the other as the
    fallback: on the meta device (parameters and buffers swapped for meta tensors for the
    call; no memory, no compute), or for real under no_grad on copies of the buffers, with
    the global RNG state restored. Big or non-CPU models try meta first; small CPU models
    try the real pass first. Eval mode either way (no dropout), and every module's train/eval
    flag restored."""
    from torch.func import functional_call

    def run_with(tensors: dict[str, torch.Tensor]) -> Any:
        def run(a: tuple[Any, ...], k: dict[str, Any]) -> Any:
            return functional_call(model, tensors, a, k, strict=False)
        return run

    # One entry per tensor: tied parameters are substituted once (functional_call re-ties them).
    params = dict(model.named_parameters())
    state = {**params, **dict(model.named_buffers())}
    on_cpu = all(t.device.type == "cpu" for t in state.values()) and all(
        t.device.type == "cpu" for t in _tensors_in((args, kwargs)))
    small = on_cpu and sum(p.numel() for p in params.values()) < REAL_FIRST_BELOW

    def on_meta() -> Graph:
        meta = {name: _meta_like(t) for name, t in state.items()}
        return record(model, _to_meta(args), _to_meta(kwargs), run_with(meta))[0]

    def for_real() -> Graph:
        copies = {name: t if name in params else t.detach().clone()
                  for name, t in state.items()}
        # Copies of the inputs too: a forward that edits its input in place edits ours.
        mine = tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x,
                        (args, kwargs))
        return record(model, mine[0], mine[1], run_with(copies))[0]

    ways: list[tuple[str, Callable[[], Graph]]] = [("meta", on_meta), ("real", for_real)]
    if small:
        ways.reverse()
    sharded = any(is_dtensor(t) for t in state.values())
    if sharded:  # a shard's values are not the tensor's: only the meta probe can see the model
        ways = ways[:1] if ways[0][0] == "meta" else ways[1:]
    hooks = without_forward_hooks(model) if sharded or _has_fsdp(model) else (
        contextlib.nullcontext())
    devices = sorted({t.device.index or 0 for t in state.values() if t.device.type == "cuda"})
    with _eval_mode(model), warnings.catch_warnings(), torch.random.fork_rng(devices=devices), \
            hooks:
        warnings.simplefilter("ignore")  # the probe's warnings are not the user's
        try:
            return ways[0][1](), ways[0][0]
        except Exception as first:  # e.g. data-dependent code on meta
            if len(ways) == 1:
                raise
            try:
                return ways[1][1](), ways[1][0]
            except Exception as second:
                # Say what the real pass said: a meta tensor's complaint explains nothing.
                raise (first if ways[0][0] == "real" else second) from None


def _has_fsdp(model: nn.Module) -> bool:
    return any(cls.__name__ == "FSDPModule" for module in model.modules()
               for cls in type(module).__mro__)


def _tensors_in(tree: Any) -> list[torch.Tensor]:
    return [x for x in tree_flatten(tree)[0] if isinstance(x, torch.Tensor)]


@dataclasses.dataclass
class Discovery:
    slots: list[Slot]
    infos: list[ParamInfo]
    module_types: list[type | None]
    order: list[int]  # row order: execution order, then module order
    row_notes: list[str]


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


def discover(model: nn.Module, example_inputs: object = None, *,
             graph: Graph | None = None) -> tuple[Discovery, list[str]]:
    """Roles from the modules, feeds and residual branches from one forward pass (run here,
    or already recorded: `graph`)."""
    found = slots(model)
    modules = dict(model.named_modules(remove_duplicate=False))
    notes: list[str] = []
    flow: Dataflow | None = None
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if graph is not None:
        pass
    elif example_inputs is None:
        synth_device = "meta" if device.type == "meta" else device
        args_or_none, what = _synthesize(model, synth_device)
        if args_or_none is None:
            notes.append(f"No forward pass ({what}); pass example_inputs=. Activations are "
                         "unknown and rows are in module order.")
        else:
            try:
                graph, how = _trace(model, args_or_none, {})
                notes.append(f"Dataflow from one forward pass ({how}) on a synthesized input: "
                             f"{what}.")
            except Exception as exc:
                notes.append(
                    f"No forward pass: the synthesized input ({what}) failed with "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                    "Activations are unknown and rows are in module order; pass "
                    "example_inputs= to fix this."
                )
    else:
        args, kwargs = _as_call(example_inputs)
        try:
            graph, how = _trace(model, args, kwargs)
        except InitError:
            raise
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise InitError(
                f"The forward pass on `example_inputs` failed: {type(exc).__name__}: {first}. "
                "Pass inputs the model accepts (a tuple of positional arguments or a dict of "
                "keyword arguments); the model was not changed."
            ) from None
        notes.append(f"Dataflow from one forward pass ({how}) on example_inputs.")
    if graph is not None:
        flow = Dataflow(graph, model)
        if flow.n_residual:
            notes.append(f"{flow.n_residual} residual branches found.")
    feeds: dict[tuple[str, int], tuple[Feed, str]] = {}
    infos: list[ParamInfo] = []
    types: list[type | None] = []
    row_notes: list[str] = []
    for slot in found:
        module = modules[slot.module]
        # MultiheadAttention's separate k/v projections read the key and the value inputs.
        argument = {"k_proj_weight": 1, "v_proj_weight": 2}.get(slot.attr, 0) if isinstance(
            module, nn.MultiheadAttention) else 0
        if (slot.module, argument) not in feeds:
            feeds[(slot.module, argument)] = _feed_for(slot.module, flow, graph, modules,
                                                       argument)
        feed, note = feeds[(slot.module, argument)]
        is_weight = not slot.role.endswith("bias") and not slot.role.startswith("rnn.bias")
        residual = bool(flow is not None and is_weight and slot.role != "embedding"
                        and slot.module in flow.residual_ends)
        tied_output = slot.role == "embedding" and any(
            isinstance(modules.get(alias.rsplit(".", 1)[0] if "." in alias else ""), nn.Linear)
            for alias in slot.aliases)
        weight = getattr(module, "weight", None)
        infos.append(ParamInfo(
            name=slot.name, aliases=slot.aliases, shape=slot.shape, role=slot.role,
            layer=slot.layer, module=slot.module, fans=slot.fans, torch_fans=slot.torch_fans,
            feed=feed, residual_end=residual,
            n_residual=flow.n_residual if flow is not None else 0,
            branch_layers=flow.branch_layers.get(slot.module, 0) if flow is not None else 0,
            output_layer=bool(flow is not None and slot.module in flow.output_layers),
            tied_output=tied_output, gates=slot.gates,
            weight_shape=tuple(weight.shape) if isinstance(weight, torch.Tensor) else None,
        ))
        types.append(type(module))
        row_notes.append(note)
    rank = {name: i for i, name in enumerate(graph.order)} if graph is not None else {}
    order = sorted(range(len(found)), key=lambda i: (
        rank.get(found[i].module, _ancestor_rank(found[i].module, rank)), i))
    return Discovery(found, infos, types, order, row_notes), notes


def _ancestor_rank(module: str, rank: dict[str, int]) -> float:
    """Modules never called directly (MultiheadAttention's out_proj) sort with their parent."""
    parts = module.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        parent = ".".join(parts[:cut])
        if parent in rank:
            return rank[parent] + 0.5
    return math.inf


def init_model(model: nn.Module, policy: str | Policy = "auto", *, seed: int = 0,
               example_inputs: object = None, dry_run: bool = False) -> InitPlan:
    """Initialize every parameter of `model` by `policy`, and return the plan of what was done.

    Discovery runs one forward pass (on the meta device for models of 2**24 parameters or
    more, or off the CPU, when their code allows; for real under no_grad on copies of the
    buffers for smaller CPU models or code that needs values; eval mode; no side effects: weights,
    buffers, grads, train/eval flags and the global RNG are as before) on `example_inputs`,
    or on an input synthesized from the first layer (Linear, ConvNd, Embedding). From it each
    layer gets the activation that feeds it, and the layers that end residual branches are
    found. When no forward pass can run, rows are in module order with activation
    ``"unknown"``, and the plan's notes say so.

    Args:
        model: any ``torch.nn.Module`` with allocated parameters.
        policy: ``"auto"`` (default), a preset (``"torch"``, ``"keras"``, ``"flax"``,
            ``"gpt2"``, ``"fixup"``), or a `wi.Policy`; ``wi.Policy.preset("auto",
            residual="zero")`` for options. ``"lsuv"`` calibrates on `example_inputs`
            (`wi.lsuv` with its defaults) and returns the plan that reproduces the result.
        seed: selects the keyed streams; each parameter's stream is keyed by its qualified name.
        example_inputs: a tuple of positional arguments, a dict of keyword arguments, or a
            tensor. Optional when the first layer makes the input shape obvious.
        dry_run: plan only; change nothing.

    Returns:
        The `InitPlan`, one row per parameter (tied parameters once), in execution order.

    Raises:
        InitError: a bad policy or seed, inputs the model rejects, a rule that fails, or a
            spec that cannot fill its parameter. The model is unchanged.

    Example:
        >>> plan = wi.init_model(model)
        >>> rich.print(plan.table())
    """
    if not isinstance(model, nn.Module):
        raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    if isinstance(policy, str) and policy in CALIBRATORS:
        seed = check_seed(seed)
        if example_inputs is None:
            raise InitError(f"Policy {policy!r} calibrates on data: pass example_inputs=batch.")
        if dry_run:
            raise InitError(
                f"Policy {policy!r} measures the model while it changes it, so it cannot "
                "dry-run; run it on a copy (copy.deepcopy(model)) and read the plan."
            )
        plan: InitPlan = CALIBRATORS[policy](model, example_inputs, seed=seed)
        return plan
    resolved = resolve_policy(policy)
    seed = check_seed(seed)
    if not isinstance(dry_run, bool):
        raise InitError(f"`dry_run` must be a bool, got {dry_run!r}.")
    found, notes = discover(model, example_inputs)
    plan = build_plan(found, notes, resolved, seed)
    if not dry_run:
        plan.apply(model)
    return plan


def build_plan(found: Discovery, notes: Sequence[str], policy: Policy, seed: int) -> InitPlan:
    """The rows `policy` gives the discovered parameters, in execution order."""
    decisions = policy.decide(found.infos, found.module_types)
    rows = []
    for i in found.order:
        slot, info = found.slots[i], found.infos[i]
        spec, rule = decisions[i]
        note = found.row_notes[i]
        if spec is not None:
            _check_fits(spec, info)
        elif rule != "unmatched" and info.role == "unknown":
            note = (note + "; " if note else "") + "weightinit does not know this parameter"
        elif rule == "unmatched":
            note = (note + "; " if note else "") + "no rule matched: kept"
        rows.append(PlanRow(
            name=info.name, aliases=info.aliases, shape=info.shape, role=info.role,
            layer=info.layer, module=info.module, activation=info.feed.label,
            source=info.feed.source, fans=info.fans, spec=spec,
            std=_std_of(spec, info), rule=rule, residual=info.residual_end, note=note,
            padding_idx=slot.padding_idx if spec is not None else None,
        ))
    return InitPlan(rows, seed=seed, policy=policy.name, notes=notes)


def _check_fits(spec: Spec, info: ParamInfo) -> None:
    try:
        spec._check_shape(info.shape, spec.needs_fans and info.fans is not None)
        if spec.needs_fans and info.fans is None and len(info.shape) < 2:
            raise InitError(f"{type(spec).__name__} needs fans, and a {len(info.shape)}-d "
                            "parameter has none")
    except InitError as exc:
        raise InitError(
            f"{spec!r} cannot fill {info.name!r} (shape {info.shape}, role {info.role!r}): "
            f"{exc} Give this parameter a rule with a spec that fits (Zeros, Normal, ...). "
            "The model was not changed."
        ) from None


def _std_of(spec: Spec | None, info: ParamInfo) -> float | None:
    if spec is None:
        return None
    try:
        if spec.needs_fans:
            return spec.std(info.fans if info.fans is not None else infer_fans(info.shape))
        return spec.std(infer_fans(info.shape) if len(info.shape) >= 2 else None)
    except InitError:
        return None
