"""Probing a model with one forward pass: its inputs (given, or synthesized from the first
layer), checked batches, and a recorded pass without side effects (on the meta device or for
real on copies)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from .._errors import InitError
from .._sync import borrowed_rng, quiet_warnings
from ._distributed import has_fsdp, is_dtensor, meta_like, without_forward_hooks
from ._graph import Graph, owns_parameters, record


def synthesize_input(model: nn.Module, device: torch.device | str
                     ) -> tuple[tuple[Any, ...] | None, str]:
    """An input batch when the first layer makes its shape obvious (Linear, ConvNd,
    Embedding), built on `device` from a private generator; else (None, why)."""
    for module in model.modules():
        if owns_parameters(module):
            found = input_for(module, device)
            if found is None:
                return None, (f"the first layer ({type(module).__name__}) does not make the "
                              "input shape obvious (Linear, ConvNd and Embedding do)")
            return found
    return None, "no Linear, ConvNd or Embedding layer to infer an input shape from"


def input_candidates(model: nn.Module, device: torch.device | str, limit: int = 4
                     ) -> list[tuple[str, tuple[Any, ...], str]]:
    """(module name, input batch, what it is) for the first `limit` layers, in registration
    order, whose input shape is obvious (Linear, ConvNd, Embedding): registration order is not
    execution order, so discovery tries each and keeps the one the forward pass calls first."""
    found = []
    for name, module in model.named_modules():
        if owns_parameters(module):
            made = input_for(module, device)
            if made is not None:
                found.append((name, *made))
                if len(found) == limit:
                    break
    return found


def input_for(module: nn.Module, device: torch.device | str
              ) -> tuple[tuple[Any, ...], str] | None:
    """An input batch for `module` when it is a Linear, ConvNd or Embedding, built on `device`
    from a private generator (seed 0), and what it is; else None."""
    # recurse: a parametrized layer's tensors live under module.parametrizations.
    weight = next(module.parameters(recurse=True), None)
    if weight is None:
        return None
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
        if module.num_embeddings < 1:  # an empty table: no id to look up
            return None
        ids = torch.randint(0, module.num_embeddings, (2, 16), device=device,
                            generator=generator) if generator else torch.empty(
            (2, 16), dtype=torch.long, device=device)
        return (ids,), f"token ids of shape (2, 16) for {type(module).__name__}"
    else:
        return None
    if generator is None:
        return (torch.empty(shape, dtype=dtype, device=device),), f"N(0,1) of shape {shape}"
    return (torch.randn(shape, dtype=dtype, device=device, generator=generator),), (
        f"N(0,1) of shape {shape}")


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside `torch.compile`'s OptimizedModule and DataParallel/DDP: discovery
    reads it, and its parameter names (without ``_orig_mod.`` or ``module.``) are the keys,
    so a wrapped model gets the same bits as the bare one."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while True:
        inner = getattr(model, "_orig_mod", None)
        if type(model).__name__ == "OptimizedModule" and isinstance(inner, nn.Module):
            model = inner
        elif isinstance(model, (DataParallel, DistributedDataParallel)):
            model = model.module
        else:
            return model


def check_model(model: object) -> nn.Module:
    """`model` unwrapped (`unwrap`), or InitError: not an ``nn.Module``, or TorchScript."""
    if not isinstance(model, nn.Module):
        raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__} "
                        f"{_short(model)}.")
    model = unwrap(model)
    scripted = [name for name, m in model.named_modules()
                if isinstance(m, torch.jit.ScriptModule)]
    if scripted:
        where = "`model` is" if scripted[0] == "" else f"Its submodule {scripted[0]!r} is"
        raise InitError(
            f"{where} a TorchScript module (torch.jit.script or torch.jit.trace): weightinit "
            "reads a model's Python forward, which TorchScript compiles away. Initialize the "
            "eager model, then script it. Nothing was changed."
        )
    return model


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_call(inputs: object, argument: str = "example_inputs"
            ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) for calling the model on `inputs`, passed as `argument` by the user."""
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, tuple):
        return inputs, {}
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    raise InitError(
        f"`{argument}` must be a tuple of positional arguments, a dict of keyword "
        f"arguments or a tensor, got {type(inputs).__name__}."
    )


def check_batch(batch: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) of a model's input batch, refused when empty or not finite."""
    if batch is None:
        raise InitError("`batch` is required: it is what the model is measured on.")
    args, kwargs = as_call(batch if isinstance(batch, (tuple, Mapping)) else (batch,), "batch")
    tensors = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
    if not tensors:
        raise InitError("`batch` holds no tensor; pass the model's input batch.")
    check_measurable(tensors, "batch")
    return args, kwargs


def check_measurable(tensors: list[torch.Tensor], argument: str) -> None:
    """InitError for a tensor that cannot be measured on: on meta, empty, or not finite."""
    for tensor in tensors:
        if tensor.device.type == "meta":
            raise InitError(
                f"`{argument}` has a meta tensor (shape {tuple(tensor.shape)}): measuring "
                "needs values; pass a batch on a real device."
            )
        if tensor.numel() == 0:
            raise InitError(
                f"`{argument}` has an empty tensor (shape {tuple(tensor.shape)}); measuring "
                "needs samples."
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise InitError(
                f"`{argument}` has {bad} NaN/Inf values (tensor of shape "
                f"{tuple(tensor.shape)}); the model must be measured on finite inputs."
            )


def to_meta(tree: Any) -> Any:
    """`tree` with every tensor replaced by an empty meta tensor of its shape and dtype."""
    return tree_map(lambda x: torch.empty_like(x, device="meta")
                    if isinstance(x, torch.Tensor) else x, tree)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration; each module's own flag restored afterwards. The flags are
    set directly, module by module, both ways: a model whose ``train()`` does more (freezes a
    backbone by setting ``requires_grad``) is not asked to do it."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        for module, _ in modes:
            module.training = False
        yield
    finally:
        for module, mode in modes:
            module.training = mode


@contextlib.contextmanager
def kept_attributes(model: nn.Module) -> Iterator[None]:
    """Every module's attributes as they were before (shallowly: the same objects), whatever a
    forward sets: the old-style ``torch.nn.utils.spectral_norm`` stores ``module.weight``
    (a meta tensor on the meta probe), a cache ``self._cached = x``, a call counter. Set
    back, and those the forward added removed."""
    saved = [(vars(module), dict(vars(module))) for module in model.modules()]
    try:
        yield
    finally:
        for attributes, before in saved:
            for key in [k for k in attributes if k not in before]:
                del attributes[key]
            for key, value in before.items():
                if attributes.get(key, _MISSING) is not value:
                    attributes[key] = value


_MISSING = object()


PROBE_SEED = 0
"""The probe forward's draws from torch's CPU generator (a ``torch.rand`` in a forward)
come from this seed, on a forked generator: the plan does not depend on the caller's RNG
state, and the caller's state is untouched."""


@contextlib.contextmanager
def probe_rng(devices: Sequence[int] = (), seed: int = PROBE_SEED) -> Iterator[None]:
    """`borrowed_rng` with torch's CPU generator (and those of the CUDA `devices`) seeded
    with `seed` for the duration: library code that runs model code drawing from the global
    generators gets the same values every time, and the caller's states are put back."""
    with borrowed_rng(devices):
        torch.default_generator.manual_seed(seed)
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


REAL_FIRST_BELOW = 1 << 24
"""Models on the CPU with fewer parameters than this are probed for real first: a pass costs
milliseconds there, while the meta device's first use imports torch._dynamo (about 2 s)."""


def trace(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *,
          measure: frozenset[str] = frozenset(), given: bool = False) -> tuple[Graph, str]:
    """Record one forward pass without side effects, in one of two ways, the other as the
    fallback: on the meta device (parameters and buffers swapped for meta tensors for the
    call; no memory, no compute), or for real under no_grad on copies of the parameters,
    buffers and inputs (a forward that edits its weights in place, a max-norm constraint,
    edits the copies), with the global RNG states forked (`probe_rng`). Big or non-CPU
    models try meta first; small CPU models try the real pass first. Eval mode either way
    (no dropout), every module's train/eval flag and attributes restored (`kept_attributes`).
    `measure`: modules whose input second moment to keep (`Graph.moments`), which needs the
    real pass, so it is tried first. `given`: the inputs are the user's, so a real pass that
    fails is their error, raised, not hidden by a meta pass (which checks no values: token
    ids out of range pass there)."""
    from torch.func import functional_call

    def run_with(tensors: dict[str, torch.Tensor]) -> Any:
        def run(a: tuple[Any, ...], k: dict[str, Any]) -> Any:
            return functional_call(model, tensors, a, k, strict=False)
        return run

    # One entry per tensor: tied parameters are substituted once (functional_call re-ties them).
    params = dict(model.named_parameters())
    state = {**params, **dict(model.named_buffers())}
    on_cpu = all(t.device.type == "cpu" for t in state.values()) and all(
        t.device.type == "cpu" for t in tensors_in((args, kwargs)))
    small = on_cpu and sum(p.numel() for p in params.values()) < REAL_FIRST_BELOW

    def on_meta() -> Graph:
        meta = {name: meta_like(t) for name, t in state.items()}
        return record(model, to_meta(args), to_meta(kwargs), run_with(meta),
                      params={name: meta[name] for name in params})[0]

    def for_real() -> Graph:
        copies = {name: _copy(t) for name, t in state.items()}
        # Copies of the inputs too: a forward that edits its input in place edits ours.
        mine = tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x,
                        (args, kwargs))
        return record(model, mine[0], mine[1], run_with(copies), measure=measure,
                      params={name: copies[name] for name in params})[0]

    ways: list[tuple[str, Callable[[], Graph]]] = [("meta", on_meta), ("real", for_real)]
    if small or measure:
        ways.reverse()
    sharded = any(is_dtensor(t) for t in state.values())
    if sharded:  # a shard's values are not the tensor's: only the meta probe can see the model
        ways = ways[:1] if ways[0][0] == "meta" else ways[1:]
    hooks = without_forward_hooks(model) if sharded or has_fsdp(model) else (
        contextlib.nullcontext())
    eager = _eager_compiled(model)
    devices = sorted({t.device.index or 0 for t in state.values() if t.device.type == "cuda"})
    # The probe's warnings are not the user's; its draws must not advance the user's RNGs.
    with quiet_warnings(), probe_rng(devices), kept_attributes(model), eval_mode(model), \
            hooks, eager:
        try:
            return ways[0][1](), ways[0][0]
        except Exception as first:  # e.g. data-dependent code on meta
            if len(ways) == 1 or (given and ways[0][0] == "real"):
                raise
            try:
                return ways[1][1](), ways[1][0]
            except Exception as second:
                # Say what the real pass said: a meta tensor's complaint explains nothing.
                raise (first if ways[0][0] == "real" else second) from None


def _eager_compiled(model: nn.Module) -> contextlib.AbstractContextManager[Any]:
    """Compiled submodules (torch.compile's OptimizedModule inside the model) run eagerly for
    the probe: the recorder must see their ops, and compiling would cost seconds."""
    stance = getattr(torch.compiler, "set_stance", None)
    if stance is None or not any(type(m).__name__ == "OptimizedModule" for m in model.modules()):
        return contextlib.nullcontext()
    manager: contextlib.AbstractContextManager[Any] = stance("force_eager")
    return manager


def _copy(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of a parameter or buffer for the real probe: its own memory; a parameter's is an
    ``nn.Parameter`` with the same requires_grad (a forward may branch on either)."""
    copy = tensor.detach().clone()
    if isinstance(tensor, nn.Parameter):
        return nn.Parameter(copy, requires_grad=tensor.requires_grad)
    return copy


def tensors_in(tree: Any) -> list[torch.Tensor]:
    """The tensors among the leaves of `tree`."""
    return [x for x in tree_flatten(tree)[0] if isinstance(x, torch.Tensor)]
