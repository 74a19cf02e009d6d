"""Per-layer statistics for `diagnose`, each taken once, in a hook, while the tensor is fresh:
output moments and signal, input deadness and saturation, parameter health, histograms."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ._types import LayerStats

_SATURATING = {"tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "hardtanh": (-1.0, 1.0),
               "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0)}
# Activations whose outputs are exactly 0 on part of the line: a unit can die.
_ZEROING = frozenset({"relu", "relu6", "hardsigmoid", "hardswish", "threshold"})
_HIST_SAMPLE = 4096
_HIST_BINS = 40


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


def output_summary(module: nn.Module, out: torch.Tensor) -> dict[str, Any]:
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
    signal = _signal(out, rms) if not nonfinite else math.nan
    edges, counts = _histogram(out) if out.is_floating_point() else ((), ())
    return {"mean": mean, "rms": rms, "std": std, "nonfinite": nonfinite, "edges": edges,
            "counts": counts, "positions": _positions(module, out), "signal": signal}


def _signal(out: torch.Tensor, rms: float) -> float:
    """The RMS over output elements of their std across the batch (dim 0): how much of the
    output depends on the input. Cheap form: E[x^2] - E[mean_b(x)^2], one small reduction
    beyond the RMS; where that difference is under 1e-3 of E[x^2] (a bias dominates, so float32
    would cancel), the exact centered form instead."""
    if (not out.is_floating_point() or out.dim() < 2 or out.shape[0] < 2 or out.numel() == 0
            or not math.isfinite(rms)):
        return math.nan
    wide = torch.float32 if out.dtype in (torch.float16, torch.bfloat16) else None
    centre = out.mean(0, dtype=wide)
    spread = rms * rms - float(torch.linalg.vector_norm(centre)) ** 2 / centre.numel()
    if spread > 1e-3 * rms * rms:
        return math.sqrt(spread)
    wide_out = out.double()  # rare: only where the signal is tiny next to the RMS
    deviation = torch.linalg.vector_norm(wide_out - wide_out.mean(0))
    return float(deviation) / math.sqrt(out.numel())


def input_summary(module: nn.Module, x: torch.Tensor) -> dict[str, Any]:
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


def stats(index: int, name: str, module: nn.Module, activation: str, source: str,
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
        positions=out["positions"], out_signal=out["signal"],
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
