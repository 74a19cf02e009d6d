"""`diagnose`: one forward and one backward pass on the user's batch, per-layer statistics, and
findings that say what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrize import ParametrizationList
from torch.utils._pytree import tree_flatten, tree_unflatten

from .._errors import InitError, failure
from .._state import preserved
from ..model import (
    Policy,
    build_plan,
    check_batch,
    discover,
    is_norm,
    owns_parameters,
    record,
    unwrap,
)
from ._findings import find, nonfinite_loss
from ._graphs import Pass
from ._layerstats import input_summary, output_summary, stats
from ._structure import links, measure
from ._types import Diagnosis
from ._watch import Watch, looks_like_norm, norm_scale


def _first_tensor(tree: Any) -> torch.Tensor | None:
    for leaf in tree_flatten(tree)[0]:
        if isinstance(leaf, torch.Tensor):
            return leaf
    return None


def _loss(output: torch.Tensor, target: object, loss_fn: Callable[..., Any] | None
          ) -> tuple[torch.Tensor, str]:
    if output.is_complex():
        raise InitError(
            f"The model's output is complex ({output.dtype}): diagnose measures real signals "
            "and backpropagates a real loss. Pass a model whose output is real (e.g. wrap it "
            "to return .abs() or torch.view_as_real of it). Nothing was changed."
        )
    if target is None:
        if loss_fn is not None:
            return loss_fn(output), getattr(loss_fn, "__name__", type(loss_fn).__name__)
        # <output, r> with r ~ N(0, 1) from a private generator: d loss / d output = r, so the
        # backward pass carries unit-variance noise from the output down, and the gradient RMS
        # per layer shows backward signal propagation alone.
        generator = torch.Generator(device=output.device).manual_seed(0)
        noise = torch.randn(output.shape, generator=generator, device=output.device,
                            dtype=output.dtype)
        return (output * noise).sum(), "synthetic"
    if not isinstance(target, torch.Tensor):
        raise InitError(f"`target` must be a tensor, got {type(target).__name__}.")
    if loss_fn is not None:
        return loss_fn(output, target), getattr(loss_fn, "__name__", type(loss_fn).__name__)
    if not target.is_floating_point():
        return F.cross_entropy(output, target), "cross_entropy"
    return F.mse_loss(output, target), "mse"


def diagnose(model: nn.Module, batch: object, *, target: object = None,
             loss_fn: Callable[..., Any] | None = None) -> Diagnosis:
    """Measure signal propagation through `model` on `batch` and say what is wrong.

    One forward and one backward pass, in the model's current train/eval mode. Per layer with
    parameters, in execution order: output mean, std and RMS, NaN/Inf counts, dead input units
    (exactly 0 for every sample: dead ReLUs upstream), saturation of tanh/sigmoid-like inputs,
    gradient RMS of the output and of the weight, the weight's std against what
    ``init_model``'s "auto" would give, units with identical weights (symmetry), and signs of
    uninitialized memory (NaN, huge magnitudes, denormals). The activation feeding each layer
    comes from the same pass (weightinit's dataflow discovery).

    The recorded pass also says how the parts meet. Vanishing and exploding signals are read
    along chains of layers that feed each other directly (not across a norm, an attention, a
    residual add, a LayerScale or a constant scale, nor from one tower into another), each
    verdict from the two end points its message shows. And it flags a norm whose output on a
    unit-RMS input is not ~1 (measured by running it again, when it is scale-invariant),
    attention already near one-hot (mean max probability, from softmax outputs or recomputed
    from the queries and keys of ``scaled_dot_product_attention``), summed embeddings of very
    different RMS (positions swamping tokens), a residual branch orders of magnitude below the
    one next to it on its stream, and a stream whose RMS compounds with depth.

    Each finding's severity says what happens if it is ignored, calibrated on training runs
    (the numbers are in ``weightinit.diagnose._calibration``): "info", it differs from a
    variance-preserving init but nets measured like it trained as well (transformers' own
    N(0, 0.02) init; a signal that falls 10-100x along a chain); "warning", measurably slower
    or worse training; "error", the network cannot train as it stands (a signal lost or blown
    up by more than 1000x / 100x along a chain, every unit of a layer dead, NaN, identical
    units, no gradient). ``Diagnosis.healthy`` means no warning and no error. The forward
    trend is read on each output's std across the batch (the part that depends on the input),
    not its RMS: biases hold the RMS of a torch-default deep net up while the signal vanishes.

    Without `target`, the loss is ``<output, r>`` with r ~ N(0, 1) drawn from a private
    generator (seed 0): the gradient at the output is unit-variance noise, so gradient RMS
    through depth measures backward propagation alone. With `target`, `loss_fn(output,
    target)` (default: cross-entropy for integer targets, MSE otherwise).

    The model is left exactly as it was, whatever happens: gradients come from
    ``torch.autograd.grad`` (``.grad`` is not written), and everything the model's own forward
    may change is saved first and put back by module and name (one copy of the parameters and
    buffers): parameter values, ``requires_grad`` and ``.grad``, buffers (BatchNorm's running
    statistics, non-persistent buffers, a buffer the forward replaces with a new tensor),
    train/eval flags, and torch's (CPU and CUDA), Python's and NumPy's global RNG state; the
    hooks diagnose adds are removed.

    Args:
        model: the network.
        batch: its input: a tensor, a tuple of positional arguments or a dict of keyword
            arguments.
        target: optional targets for `loss_fn`.
        loss_fn: ``loss_fn(output, target)``, or ``loss_fn(output)`` without a target.

    Returns:
        A `Diagnosis`: ``.layers``, ``.findings``, ``.healthy``, ``.table()``, ``.figure()``,
        ``.histograms()``, ``.save_html(path)``, ``.to_dict()``.

    Raises:
        InitError: a bad batch (empty, NaN/Inf, on the meta device), a forward pass or loss
            that fails, a non-scalar loss, a complex output or parameter, or a layer whose
            weight has no elements (``nn.Linear(8, 0)``); the model is then exactly as before.
    """
    if not isinstance(model, nn.Module):
        raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    if torch.is_inference_mode_enabled():
        raise InitError(
            "diagnose was called inside torch.inference_mode(): it measures gradients, which "
            "inference mode turns off. Call it outside inference mode (torch.no_grad() around "
            "it is fine). Nothing was changed.")
    model = unwrap(model)
    if loss_fn is not None and not callable(loss_fn):
        raise InitError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}.")
    args, kwargs = check_batch(batch)
    complex_params = [n for n, p in model.named_parameters() if p.is_complex()]
    if complex_params:
        raise InitError(
            f"Parameter {complex_params[0]!r} is complex: diagnose measures real weights and "
            "signals. Nothing was changed."
        )
    _check_not_empty(model)
    names: dict[nn.Module, str] = {}
    for n, m in model.named_modules(remove_duplicate=False):
        names.setdefault(m, n)
    # Statistics are taken inside the hooks, when each tensor is fresh: an in-place op later
    # in the pass (ReLU(inplace=True), `out += identity`) rewrites the memory.
    inputs: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {}
    grads: dict[str, torch.Tensor] = {}
    order: list[str] = []
    # Candidate norms keep their first input, to measure their scale after the pass; layers
    # called on integers are embedding lookups.
    candidates = {m for m in names if looks_like_norm(m, is_norm(m))}
    norm_inputs: dict[str, tuple[nn.Module, Any, Any]] = {}
    lookups: set[str] = set()

    def pre_hook(module: nn.Module, a: Any, k: Any) -> None:
        name = names[module]
        if name not in inputs:
            tensor = _first_tensor((a, k))
            if tensor is not None:
                with torch.no_grad():
                    inputs[name] = input_summary(module, tensor.detach())
                if not (tensor.is_floating_point() or tensor.is_complex()):
                    lookups.add(name)
                elif module in candidates:
                    norm_inputs[name] = (module, *_kept(a, k))

    def post_hook(module: nn.Module, a: Any, k: Any, output: Any) -> None:
        name = names[module]
        if name in outputs:
            return
        tensor = _first_tensor(output)
        if tensor is None:
            return
        order.append(name)
        with torch.no_grad():
            outputs[name] = output_summary(module, tensor.detach())
        if tensor.requires_grad:
            def keep(grad: torch.Tensor, name: str = name) -> None:
                grads[name] = grad.detach()
            tensor.register_hook(keep)  # type: ignore[no-untyped-call]

    weights = {n: p for n, p in model.named_parameters() if p.requires_grad}
    notes: list[str] = []
    watch = Watch()
    handles = []
    # enable_grad: a caller's torch.no_grad() must not turn the backward pass off.
    with preserved(model, tensors=tree_flatten((args, kwargs))[0]), torch.enable_grad():
        try:
            for module in names:
                if owns_parameters(module) and not isinstance(module, ParametrizationList):
                    handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
                    handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
            try:
                # Outside the recorder: the watch sees each op once, after the recorder.
                with watch.modules(model), watch:
                    graph, result = record(model, args, kwargs, lambda a, k: model(*a, **k),
                                           grad=True)
            except InitError:
                raise
            except Exception as exc:
                raise failure("The forward pass on `batch`", exc,
                              fix="Pass inputs the model accepts") from None
            output = _first_tensor(result)
            if output is None:
                raise InitError("The model returned no tensor; diagnose needs its output.")
            try:
                loss, loss_kind = _loss(output, target, loss_fn)
            except InitError:
                raise
            except Exception as exc:
                raise failure("The loss", exc, fix=f"The model's output has shape "
                              f"{tuple(output.shape)}: pass a `target` and `loss_fn` that fit "
                              "it") from None
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                shown = (f"a tensor of shape {tuple(loss.shape)}" if isinstance(
                    loss, torch.Tensor) else f"a {type(loss).__name__}")
                raise InitError(f"The loss must be a scalar tensor, got {shown}: reduce it "
                                "(e.g. .mean()) in `loss_fn`. Nothing was changed.")
            weight_grads: dict[str, torch.Tensor | None] = {}
            if loss.requires_grad and weights:
                listed = list(weights)
                try:
                    found = torch.autograd.grad(loss, [weights[n] for n in listed],
                                                allow_unused=True)
                except Exception as exc:
                    raise failure("The backward pass", exc, fix="Check the model's backward "
                                  "hooks and custom autograd functions") from None
                weight_grads = dict(zip(listed, found, strict=True))
            elif weights:
                notes.append("No gradient: the loss is not connected to any trainable "
                             "parameter (it does not depend on them, or `loss_fn` detached "
                             "it), so the gradient columns are empty.")
            else:
                notes.append("No gradient: the model has no trainable parameters.")
        finally:
            for handle in handles:
                handle.remove()
        discovery = discover(model, graph=graph)
        moments = {info.module: info.feed.moment for info in discovery.params}
        plan = build_plan(discovery, Policy.preset("auto"), seed=0)
        recommended = {row.name: row.std for row in plan}
        feeds = {row.module: (row.activation, row.source) for row in plan}
        residual_ends = {row.module for row in plan if row.residual}
        modules = dict(model.named_modules(remove_duplicate=False))
        # Hooks are gone: each candidate norm runs again on its own input, rescaled.
        scales = {n: norm_scale(m, a, k) for n, (m, a, k) in norm_inputs.items()}
        norms = {n for n, m in modules.items() if is_norm(m)} | {
            n for n, v in scales.items() if v is not None}
        flow = Pass(graph)
        structure = measure(flow, watch, norms, lookups,
                            {n: v for n, v in scales.items()
                             if v is not None and n not in residual_ends})
        layers = []
        # Still inside: reading a parametrized `.weight` (spectral_norm) can step its buffers.
        for index, name in enumerate(order):
            module = modules[name]
            activation, source = feeds.get(name, ("unknown", "unknown"))
            layers.append(stats(index, name, module, activation, source, inputs.get(name),
                                 outputs[name], grads.get(name),
                                 weight_grads.get(f"{name}.weight" if name else "weight"),
                                 # a parametrization (spectral_norm) sets the weight's scale
                                 None if parametrize.is_parametrized(module, "weight") else
                                 recommended.get(f"{name}.weight" if name else "weight")))
    weight_layers = {x.name for x in layers
                     if not is_norm(modules[x.name]) and x.weight_std is not None
                     and not isinstance(modules[x.name], (nn.Embedding, nn.EmbeddingBag))}
    samples = int(args[0].shape[0]) if args and isinstance(args[0], torch.Tensor) and args[
        0].dim() else 0
    findings = find(layers, weight_layers, residual_ends=residual_ends, samples=samples,
                    links=links(flow, layers, weight_layers, moments), structure=structure)
    if not any(f.kind in ("nonfinite", "uninitialized") for f in findings):  # the cause, once
        findings.extend(nonfinite_loss(float(loss.detach()), [
            n for n, g in weight_grads.items()
            if g is not None and not bool(torch.isfinite(g).all())]))
    if 0 < samples < 16:
        notes.append(f"A batch of {samples} samples is too small to call units dead (a ReLU "
                     "unit is off for a few samples by chance): that check was skipped.")
    return Diagnosis(tuple(layers), tuple(findings), float(loss.detach()), loss_kind,
                     tuple(notes))


def _check_not_empty(model: nn.Module) -> None:
    """Refuse a layer whose weight has no elements (``nn.Linear(8, 0)``): it passes no signal,
    so there is nothing to measure after it."""
    for name, p in model.named_parameters():
        if p.dim() >= 2 and p.numel() == 0:
            raise InitError(
                f"Parameter {name!r} has shape {tuple(p.shape)}, no elements: that layer has no "
                "input or no output units, so it passes no signal and nothing after it can be "
                "measured. Give it at least one unit on each side (or remove it). Nothing was "
                "changed.")


def _kept(a: Any, k: Any) -> tuple[Any, Any]:
    """A module call's arguments with its first tensor copied: later in-place ops (a residual
    ``+=``) may rewrite the tensor the module saw."""
    leaves, spec = tree_flatten((a, k))
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, torch.Tensor):
            with torch.no_grad():
                leaves[i] = leaf.detach().clone()
            break
    kept: tuple[Any, Any] = tree_unflatten(leaves, spec)
    return kept
