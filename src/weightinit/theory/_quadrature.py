"""Expectations under the standard normal by composite Gauss–Legendre quadrature.

Gauss–Hermite quadrature is exact for polynomials but converges slowly on the kinks that
activations are full of (ReLU at 0, ReLU6 at 6, hardtanh at ±1, hardswish at ±3): its error on
E[relu(z)^2] is still ~1e-4 with 100 nodes. Instead we integrate f(z) φ(z) on [-12, 12] with
16-point Gauss–Legendre panels of width 1/4. Every kink at a multiple of 1/4 falls on a panel
boundary, where the rule needs no smoothness, and inside a panel the integrand is analytic, so the
rule is accurate to rounding (relative error ~1e-15 on the closed forms we test against). The mass
of φ beyond ±12 is 3.6e-33.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

_HALF_WIDTH = 12.0
_PANEL = 0.25
_NODES_PER_PANEL = 16


@functools.cache
def _nodes_and_weights() -> tuple[torch.Tensor, torch.Tensor]:
    x, w = np.polynomial.legendre.leggauss(_NODES_PER_PANEL)
    edges = np.arange(-_HALF_WIDTH, _HALF_WIDTH, _PANEL)
    half = _PANEL / 2
    nodes = (edges[:, None] + half + half * x[None, :]).ravel()
    weights = (half * np.broadcast_to(w, (edges.size, w.size))).ravel()
    weights = weights * np.exp(-0.5 * nodes**2) / math.sqrt(2 * math.pi)
    return torch.from_numpy(nodes), torch.from_numpy(weights)


def gaussian_nodes() -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes z_i and weights w_i (float64) with sum_i w_i f(z_i) ≈ E[f(Z)], Z ~ N(0, 1)."""
    nodes, weights = _nodes_and_weights()
    return nodes.clone(), weights.clone()


def gaussian_expectation(values: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """E[values(Z)] for Z ~ N(0, 1); `values` maps the float64 nodes to a same-shape tensor."""
    nodes, weights = gaussian_nodes()
    return float((values(nodes) * weights).sum())
