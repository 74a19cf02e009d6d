"""Signal propagation through the demo's MLPs, measured directly: the std of every Linear
layer's output and the RMS of the gradient arriving at it, and the growth per layer of their
second moments.

The same two statistics as `wi.diagnose`'s ``out_std`` and ``grad_out_rms`` with its
synthetic loss (<output, r>, r ~ N(0, 1) from a private generator with seed 0: unit-variance
noise sent back from the output), computed in one forward and one backward pass without the
hooks and the findings, so that every seed of the demo can be measured in the time one
diagnosis takes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def profile(model: nn.Module, batch: torch.Tensor) -> tuple[list[float], list[float]]:
    """(std of each Linear layer's output, RMS of d loss / d that output), layer 1 first, for
    a chain of layers (an `nn.Sequential`: its children run in order).

    Statistics in float64 (a vanishing gradient must not underflow to 0 when squared), the
    std over all elements without Bessel's correction, as diagnose computes it; the
    model's parameters and their ``.grad`` are not touched."""
    outputs: list[torch.Tensor] = []
    with torch.enable_grad():
        h = batch
        for layer in model.children():
            h = layer(h)
            if isinstance(layer, nn.Linear):
                outputs.append(h)
        noise = torch.randn(h.shape, generator=torch.Generator().manual_seed(0),
                            dtype=h.dtype)
        grads = torch.autograd.grad((h * noise).sum(), outputs)
    std = [float(x.detach().double().std(correction=0)) for x in outputs]
    rms = [float(g.double().square().mean().sqrt()) for g in grads]
    return std, rms


def growth(start: float, end: float, steps: int) -> float:
    """The factor per step by which a second moment goes from start² to end² in `steps`
    steps: (end / start) ** (2 / steps). 0.0 when it reaches 0, inf when it overflows, NaN
    when `start` is not a positive finite number."""
    if not (math.isfinite(start) and start > 0) or steps < 1:
        return math.nan
    if math.isnan(end):
        return math.inf  # overflow on the way (inf - inf): it grew without bound
    if end <= 0:
        return 0.0
    if math.isinf(end):
        return math.inf
    return float((end / start) ** (2.0 / steps))


def forward_growth(std: Sequence[float], span: tuple[int, int]) -> float:
    """Activation variance per layer, from layer span[0] to layer span[1] (1-based)."""
    first, last = span
    return growth(std[first - 1], std[last - 1], last - first)


def backward_growth(grad: Sequence[float], span: tuple[int, int]) -> float:
    """Gradient second moment per layer on the way back, from layer span[1] to span[0]."""
    first, last = span
    return growth(grad[last - 1], grad[first - 1], last - first)


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(log v)): 0.0 if any is 0, inf if any is inf, NaN if any is NaN or negative."""
    if any(math.isnan(v) or v < 0 for v in values) or not values:
        return math.nan
    if any(v == 0 for v in values):
        return 0.0 if not any(math.isinf(v) for v in values) else math.nan
    if any(math.isinf(v) for v in values):
        return math.inf
    return math.exp(sum(math.log(v) for v in values) / len(values))


def mean_profile(profiles: Sequence[Sequence[float]]) -> list[float]:
    """The geometric mean over seeds at each layer."""
    return [geometric_mean([p[i] for p in profiles]) for i in range(len(profiles[0]))]
