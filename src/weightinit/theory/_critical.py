"""The mean-field edge of chaos: where a deep random network neither orders nor explodes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._errors import InitError, check_positive_finite
from ._activations import Activation, Params, resolve_activation
from ._gain import second_moment

# Activations that are positively homogeneous (phi(c x) = c phi(x) for c > 0): for them the
# length map is linear in q, so chi_1 = 1 holds for every q and q* is not a single number.
_HOMOGENEOUS = ("linear", "relu", "leaky_relu")


@dataclass(frozen=True)
class CriticalPoint:
    """Where chi_1 = 1 at the fixed point of the length map.

    Attributes:
        weight_std: sigma_w, the weight std times sqrt(fan_in).
        bias_std: sigma_b, the bias std it was computed for.
        q_star: the fixed point of the pre-activation variance q. ``0.0`` when the fixed point
            is the origin; ``inf`` when it diverges; ``nan`` when every q is a fixed point
            (positively homogeneous activations without bias).
        chi1: sigma_w^2 E[phi'(sqrt(q*) z)^2] at the returned point: 1 by construction,
            since sigma_w is solved from it; kept so the point can be read on its own.
    """

    weight_std: float
    bias_std: float
    q_star: float
    chi1: float


def _ratio(act: Activation, q: float) -> float:
    """E[phi(sqrt q z)^2] / E[phi'(sqrt q z)^2]: sigma_w^2 times this is the length map at q."""
    denominator = second_moment(act, q=q, derivative=True)
    if denominator <= 0:
        raise InitError(f"`activation` {act.label} has phi' = 0 almost everywhere at q={q:g}.")
    return second_moment(act, q=q) / denominator


def critical_point(activation: object = "tanh", *, bias_std: float = 0.0,
                   params: Params | None = None) -> CriticalPoint:
    r"""The weight std on the edge of chaos for `activation` and `bias_std`.

    Mean-field theory of deep random networks (Poole et al., Exponential expressivity in deep
    neural networks through transient chaos, 2016, https://arxiv.org/abs/1606.05340; Schoenholz
    et al., Deep Information Propagation, 2017, https://arxiv.org/abs/1611.01232): with weights
    N(0, sigma_w^2 / fan_in) and biases N(0, sigma_b^2), the pre-activation variance follows

    .. math::

        q_{l+1} = \sigma_w^2\,\mathbb{E}[\phi(\sqrt{q_l} z)^2] + \sigma_b^2, \qquad
        \chi_1 = \sigma_w^2\,\mathbb{E}[\phi'(\sqrt{q^*} z)^2].

    Correlations between inputs are preserved to the greatest depth at chi_1 = 1. We solve the
    two equations jointly: for each q the condition chi_1 = 1 fixes sigma_w, and the fixed-point
    equation picks q* by bisection on a log grid of q in [1e-12, 1e4]. Only an attracting fixed
    point counts (slope of the length map below 1): that is where a deep network settles.

    Returns:
        A `CriticalPoint`. ReLU gives sigma_w = sqrt(2) (q* any value without bias, infinite
        with); tanh without bias gives sigma_w = 1 at q* = 0.

    Raises:
        InitError: bad `bias_std`, or an activation with no attracting critical point in that
            range (GELU, SiLU, Mish and hardswish, for example: chi_1 stays below 1 wherever a
            stable fixed point exists).
    """
    bias = check_positive_finite("bias_std", bias_std, allow_zero=True)
    if bias > 1e150:  # sigma_b^2 overflows float64; no fixed point is within reach anyway
        raise InitError(
            f"`bias_std` (={bias!r}) is too large: sigma_b^2 overflows float64, and with a bias "
            "std beyond 100 the pre-activation variance q* lies past the q in [1e-12, 1e4] "
            "searched. Pass a bias std of at most about 100."
        )
    act = resolve_activation(activation, params)
    if act.known and act.name in _HOMOGENEOUS:
        sigma_w = 1.0 / math.sqrt(second_moment(act, derivative=True))
        return CriticalPoint(sigma_w, bias, math.nan if bias == 0 else math.inf, 1.0)

    bias_var = bias * bias

    def excess(q: float) -> float:  # sigma_w(q)^2 E[phi^2] + sigma_b^2 - q; zero at q*
        return _ratio(act, q) + bias_var - q

    # Without bias the origin is a fixed point of activations with phi(0) = 0; crossings below
    # q = 1e-6 are then rounding noise around it (excess(q) is O(q^2) there).
    grid = [float(q) for q in np.logspace(-12 if bias > 0 else -6, 4, 161)]
    values = [excess(q) for q in grid]
    for i in range(len(grid) - 1):
        if (values[i] >= 0) == (values[i + 1] >= 0):
            continue
        if max(abs(values[i]) / grid[i], abs(values[i + 1]) / grid[i + 1]) < 1e-9:
            continue  # a sign flip at rounding level (hardtanh near 0), not a crossing
        q_star = _bisect(excess, grid[i], grid[i + 1], rising=values[i] < 0)
        slope_moment = second_moment(act, q=q_star, derivative=True)
        weight_var = 1.0 / slope_moment
        if _is_attracting(act, q_star, weight_var):
            return CriticalPoint(math.sqrt(weight_var), bias, q_star, weight_var * slope_moment)
    below = all(v < 0 or abs(v) < 1e-9 * q for q, v in zip(grid, values, strict=True))
    if bias == 0 and below and second_moment(act, q=0.0) == 0:
        # The origin: chi_1 = sigma_w^2 E[phi'(sqrt(q) z)^2] as q -> 0+, which averages the
        # squared one-sided slopes at a kink (SELU), hence a tiny q rather than q = 0.
        slope = second_moment(act, q=1e-30, derivative=True)
        if slope <= 0:
            raise InitError(f"`activation` {act.label} has phi'(0) = 0: no critical point.")
        # It counts only if small q shrinks back to 0 (tanh, SELU), not if it grows (GELU).
        small = 1e-4
        if second_moment(act, q=small) / slope <= small * (1 + 1e-9):
            return CriticalPoint(1.0 / math.sqrt(slope), bias, 0.0, 1.0)
    raise InitError(
        f"`activation` {act.label} with `bias_std`={bias!r} has no attracting fixed point with "
        "chi_1 = 1 for q in [1e-12, 1e4]: a deep network with this activation and bias has no "
        "edge of chaos. Odd activations such as tanh have one; GELU, SiLU, Mish and hardswish "
        "do not."
    )


def _bisect(fn: Callable[[float], float], lo: float, hi: float, *, rising: bool) -> float:
    """The root of `fn` in [lo, hi] by geometric bisection, to ~1e-14 relative."""
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if (fn(mid) < 0) == rising:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * hi:
            break
    return 0.5 * (lo + hi)


def _is_attracting(act: Activation, q: float, weight_var: float) -> bool:
    """Is q a stable fixed point of q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 (slope < 1)?

    Iterating the map, as a deep network does, only reaches a fixed point whose slope is below
    one; an unstable crossing is not where the network settles."""
    h = 1e-4
    up = second_moment(act, q=q * (1 + h))
    down = second_moment(act, q=q * (1 - h))
    slope = weight_var * (up - down) / (2 * h * q)
    return slope < 1.0 + 1e-6
