"""`diagnose`: one forward and one backward pass on the user's batch, per-layer statistics, and
findings that say what is wrong and how to fix it."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrize import ParametrizationList
from torch.utils._pytree import tree_flatten, tree_unflatten

from .._errors import InitError, failure
from .._sync import borrowed_rng
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
from ._findings import find
from ._graphs import Pass
from ._structure import links, measure
from ._types import Diagnosis, LayerStats
from ._watch import Watch, looks_like_norm, norm_scale

_SATURATING = {"tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "hardtanh": (-1.0, 1.0),
               "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0)}
# Activations whose outputs are exactly 0 on part of the line: a unit can die.
_ZEROING = frozenset({"relu", "relu6", "hardsigmoid", "hardswish", "threshold"})
_HIST_SAMPLE = 4096
_HIST_BINS = 40


def _first_tensor(tree: Any) -> torch.Tensor | None:
    for leaf in tree_flatten(tree)[0]:
        if isinstance(leaf, torch.Tensor):
            return leaf
    return None


_CHANNELS_FIRST: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm)


def _unit_dim(module: nn.Module, tensor: torch.Tensor) -> int:
    """Channels (dim 1) for convolutions and batch/group/instance norms, features (the last
    dim) otherwise."""
    if isinstance(module, _CHANNELS_FIRST) and tensor.dim() > 2:
        return 1
    return tensor.dim() - 1


def _sum_and_norm(x: torch.Tensor) -> tuple[float, float]:
    """sum(x) and ||x||_2: in float32 for float32 and narrower (torch's cascaded reductions,
    relative error ~1e-7), again in float64 when that overflows or underflows to 0 (squares
    of values below 1e-19 do: a vanishing gradient must not read as exactly zero)."""
    x = x.detach()
    wide = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else None
    summed = float(x.sum(dtype=wide))
    norm = float(torch.linalg.vector_norm(x, dtype=wide))
    if not (math.isfinite(summed) and math.isfinite(norm) and norm > 0):
        summed = float(x.sum(dtype=torch.float64))
        norm = float(torch.linalg.vector_norm(x, dtype=torch.float64))
    return summed, norm


def _rms(x: torch.Tensor) -> float:
    if x.numel() == 0:
        return math.nan
    return _sum_and_norm(x)[1] / math.sqrt(x.numel())


@contextlib.contextmanager
def _left_as_it_was(model: nn.Module) -> Iterator[None]:
    """Buffers (BatchNorm's running stats) restored, train/eval flags and the global RNG too;
    parameters and .grad are never written (gradients come from torch.autograd.grad)."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    modes = [(m, m.training) for m in model.modules()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        with borrowed_rng(devices):
            yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for module, mode in modes:
            module.training = mode


def _loss(output: torch.Tensor, target: object, loss_fn: Callable[..., Any] | None
          ) -> tuple[torch.Tensor, str]:
    if output.is_complex():
        raise InitError(
            f"The model's output is complex ({output.dtype}): diagnose measures real signals "
            "and backpropagates a real loss. Pass a model whose output is real (e.g. wrap it "
            "to return .abs() or torch.view_as_real of it)."
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

    Without `target`, the loss is ``<output, r>`` with r ~ N(0, 1) drawn from a private
    generator (seed 0): the gradient at the output is unit-variance noise, so gradient RMS
    through depth measures backward propagation alone. With `target`, `loss_fn(output,
    target)` (default: cross-entropy for integer targets, MSE otherwise).

    The model is left as it was: parameters and their ``.grad`` are not written (gradients
    come from ``torch.autograd.grad``), buffers such as BatchNorm's running statistics are
    restored, as are train/eval flags and the global RNG state; hooks are removed whatever
    happens.

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
        InitError: a bad batch, a forward pass or loss that fails, or a non-scalar loss.
    """
    if not isinstance(model, nn.Module):
        raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
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
                    inputs[name] = _input_summary(module, tensor.detach())
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
            outputs[name] = _output_summary(module, tensor.detach())
        if tensor.requires_grad:
            def keep(grad: torch.Tensor, name: str = name) -> None:
                grads[name] = grad.detach()
            tensor.register_hook(keep)  # type: ignore[no-untyped-call]

    handles = []
    for module in names:
        if owns_parameters(module) and not isinstance(module, ParametrizationList):
            handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
    weights = {n: p for n, p in model.named_parameters() if p.requires_grad}
    notes: list[str] = []
    watch = Watch()
    with _left_as_it_was(model):
        try:
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
                raise InitError(f"The loss must be a scalar tensor, got {loss!r}.")
            weight_grads: dict[str, torch.Tensor | None] = {}
            if loss.requires_grad and weights:
                listed = list(weights)
                found = torch.autograd.grad(loss, [weights[n] for n in listed],
                                            allow_unused=True)
                weight_grads = dict(zip(listed, found, strict=True))
            else:
                notes.append("No gradient: the loss does not depend on trainable parameters.")
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
            layers.append(_stats(index, name, module, activation, source, inputs.get(name),
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
    if 0 < samples < 16:
        notes.append(f"A batch of {samples} samples is too small to call units dead (a ReLU "
                     "unit is off for a few samples by chance): that check was skipped.")
    return Diagnosis(tuple(layers), tuple(findings), float(loss.detach()), loss_kind,
                     tuple(notes))


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


def _output_summary(module: nn.Module, out: torch.Tensor) -> dict[str, Any]:
    total = out.numel()
    mean = rms = std = math.nan
    nonfinite = 0
    if total and out.is_floating_point():
        # Two reductions and no copy; the NaN/Inf count only when the result is not finite.
        summed, norm = _sum_and_norm(out)
        if not (math.isfinite(summed) and math.isfinite(norm)):
            finite = torch.isfinite(out)
            nonfinite = int(total - finite.sum())
            kept = out[finite]
            summed, norm = _sum_and_norm(kept)
            total = kept.numel()
        if total:
            mean, rms = summed / total, norm / math.sqrt(total)
            std = math.sqrt(max(rms * rms - mean * mean, 0.0))
    edges, counts = _histogram(out) if out.is_floating_point() else ((), ())
    return {"mean": mean, "rms": rms, "std": std, "nonfinite": nonfinite, "edges": edges,
            "counts": counts, "positions": _positions(module, out)}


def _input_summary(module: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """RMS; the fraction of units that are 0 for every sample; and, when every value lies in
    [-1, 1], the fractions within 1% of tanh-like (+-1) and sigmoid-like (0, 1) bounds."""
    summary: dict[str, Any] = {"rms": math.nan, "dead": None, "saturated": {}}
    if not x.is_floating_point() or x.numel() == 0:
        return summary
    summary["rms"] = _rms(x)
    if x.dim() >= 2:
        unit = _unit_dim(module, x)
        alive = x.ne(0).movedim(unit, 0).reshape(x.shape[unit], -1).any(1)
        summary["dead"] = 1.0 - float(alive.float().mean())
    low, high = (float(v) for v in torch.aminmax(x))
    if low >= -1.0 and high <= 1.0:
        for (lo, hi) in set(_SATURATING.values()):
            margin = 0.01 * (hi - lo)
            summary["saturated"][(lo, hi)] = float(((x <= lo + margin) | (x >= hi - margin))
                                                   .float().mean())
    return summary


def _stats(index: int, name: str, module: nn.Module, activation: str, source: str,
           seen: dict[str, Any] | None, out: dict[str, Any], grad_out: torch.Tensor | None,
           grad_weight: torch.Tensor | None, recommended: float | None) -> LayerStats:
    mean, rms, std, nonfinite = out["mean"], out["rms"], out["std"], out["nonfinite"]
    dead = saturated = None
    in_rms = math.nan
    if seen is not None:
        in_rms = seen["rms"]
        if activation in _ZEROING:
            dead = seen["dead"]
        bounds = _SATURATING.get(activation)
        if bounds is not None:
            saturated = seen["saturated"].get(bounds, 0.0)
    weight = getattr(module, "weight", None)
    weight = weight if isinstance(weight, torch.Tensor) else None
    bias = getattr(module, "bias", None)
    bias = bias if isinstance(bias, torch.Tensor) and bias.numel() else None
    own = [p.detach() for p in module.parameters(recurse=False) if p.is_floating_point()]
    param_nonfinite, param_max, denormals = 0, 0.0, 0
    for p in own:  # one pass over |p| when it is clean, which it almost always is
        size = p.abs()
        if size.numel() == 0:
            continue
        largest = float(size.amax())
        if not math.isfinite(largest):
            finite = torch.isfinite(size)
            param_nonfinite += int(size.numel() - finite.sum())
            size = size[finite]
            largest = float(size.amax()) if size.numel() else 0.0
        param_max = max(param_max, largest)
        smallest = float(torch.where(size > 0, size, math.inf).amin()) if size.numel() else 0.0
        if smallest < torch.finfo(p.dtype).tiny:
            denormals += int(((size > 0) & (size < torch.finfo(p.dtype).tiny)).sum())
    identical = 0
    weight_std = None
    if weight is not None and weight.dim() >= 2 and weight.is_floating_point():
        w = weight.detach()
        weight_std = float(w.double().std()) if w.numel() > 1 else None
        rows = w.reshape(w.shape[0], -1)
        if rows.shape[0] >= 2:
            identical = int((rows == rows[0]).all(1).sum())
    edges, counts = out["edges"], out["counts"]
    return LayerStats(
        name=name, layer=type(module).__name__, index=index, activation=activation,
        source=source, out_mean=mean, out_std=std, out_rms=rms, out_nonfinite=nonfinite,
        in_rms=in_rms, dead_fraction=dead, saturated_fraction=saturated,
        grad_out_rms=_rms(grad_out) if grad_out is not None else None,
        grad_weight_rms=_rms(grad_weight) if grad_weight is not None else None,
        weight_std=weight_std, recommended_std=recommended,
        bias_mean=float(bias.detach().double().mean()) if bias is not None else None,
        identical_units=identical, param_nonfinite=param_nonfinite, param_max_abs=param_max,
        param_denormals=denormals, hist_edges=edges, hist_counts=counts,
        positions=out["positions"],
    )


def _positions(module: nn.Module, out: torch.Tensor) -> int:
    """Output elements per sample and unit: H x W for a convolution, 1 for a linear layer
    on (batch, features), the sequence length on (batch, tokens, features)."""
    if out.dim() < 2 or out.numel() == 0:
        return 1
    per_sample = out.numel() // out.shape[0]
    return max(1, per_sample // out.shape[_unit_dim(module, out)])


def _histogram(values: torch.Tensor) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """A histogram of an evenly strided sample of at most 4096 values (cheap at any size)."""
    flat = values.reshape(-1)
    if flat.numel() == 0:
        return (), ()
    step = max(1, flat.numel() // _HIST_SAMPLE)
    sample = flat[::step][:_HIST_SAMPLE].double()
    sample = sample[torch.isfinite(sample)]
    if sample.numel() == 0:
        return (), ()
    low, high = float(sample.min()), float(sample.max())
    if not high > low:
        low, high = low - 0.5, high + 0.5
    counts = torch.histc(sample, bins=_HIST_BINS, min=low, max=high)
    edges = torch.linspace(low, high, _HIST_BINS + 1, dtype=torch.float64)
    return tuple(float(e) for e in edges), tuple(int(c) for c in counts)
