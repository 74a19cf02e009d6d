"""Tests for `wi.critical_point`, the mean-field edge of chaos (Poole et al. 2016, Schoenholz et
al. 2017), against an independent scipy computation.

The reference shares nothing with the library: phi and phi' are written here in plain `math`,
expectations come from `scipy.integrate.quad`, and it solves the problem the other way round.
The library scans q and solves sigma_w from chi_1 = 1; the reference takes sigma_w as the unknown:
for a given sigma_w it finds the fixed point q* of the length map

    q <- sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2

(the limit of iterating it from q = 0), computes chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2], and finds
the sigma_w with chi_1 = 1 by `scipy.optimize.brentq`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
from scipy import integrate, optimize

import weightinit as wi

ScalarFn = Callable[[float], float]

_EDGE = 20.0  # normal mass beyond |z| = 20 is ~5e-89: negligible against double rounding


def _pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _moment(f: ScalarFn, q: float, kinks: tuple[float, ...] = ()) -> float:
    """E[f(sqrt(q) Z)^2], Z ~ N(0, 1), by quad split where f's kinks land in z."""
    s = math.sqrt(q)
    inner = sorted(k / s for k in kinks if abs(k / s) < _EDGE) if s > 0 else []
    points = [-_EDGE, *inner, _EDGE]
    total = 0.0
    for a, b in itertools.pairwise(points):
        value, _ = integrate.quad(
            lambda z: f(s * z) ** 2 * _pdf(z), a, b, epsabs=0.0, epsrel=1e-13, limit=400
        )
        total += value
    return total


def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _mish_prime(x: float) -> float:
    t = math.tanh(_softplus(x))
    return t + x * (1.0 - t * t) * _sigmoid(x)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

# name -> (phi, phi', kinks), by hand.
ACTS: dict[str, tuple[ScalarFn, ScalarFn, tuple[float, ...]]] = {
    "tanh": (math.tanh, lambda x: 1.0 - math.tanh(x) ** 2, ()),
    "gelu": (lambda x: x * _ncdf(x), lambda x: _ncdf(x) + x * _pdf(x), ()),
    "silu": (
        lambda x: x * _sigmoid(x),
        lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
        (),
    ),
    "elu": (
        lambda x: x if x > 0 else math.expm1(x),
        lambda x: 1.0 if x > 0 else math.exp(x),
        (0.0,),
    ),
    "sin": (math.sin, math.cos, ()),
    "selu": (
        lambda x: _SELU_SCALE * (x if x > 0 else _SELU_ALPHA * math.expm1(x)),
        lambda x: _SELU_SCALE * (1.0 if x > 0 else _SELU_ALPHA * math.exp(x)),
        (0.0,),
    ),
    "softsign": (
        lambda x: x / (1.0 + abs(x)),
        lambda x: 1.0 / (1.0 + abs(x)) ** 2,
        (0.0,),
    ),
    "mish": (lambda x: x * math.tanh(_softplus(x)), _mish_prime, ()),
}


def _fixed_point(name: str, sigma_w: float, sigma_b: float) -> float:
    """The fixed point of the length map reached by iterating from q = 0.

    The map is increasing in q and starts above the diagonal (it sends 0 to sigma_b^2 > 0), so
    iterating from 0 climbs to its smallest root. Plain iteration converges slowly near the
    edge of chaos (the map's slope there is close to 1), so we locate that same root directly:
    step q up from sigma_b^2 by doubling until the map falls below the diagonal, then brentq.
    """
    phi, _, kinks = ACTS[name]

    def excess(q: float) -> float:
        return sigma_w**2 * _moment(phi, q, kinks) + sigma_b**2 - q

    lo = sigma_b**2
    hi = 2.0 * lo
    while excess(hi) >= 0:
        lo, hi = hi, 2.0 * hi
        assert hi < 1e6, "the length map diverges: no fixed point"
    return optimize.brentq(excess, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=200)


def _chi1(name: str, sigma_w: float, q: float) -> float:
    _, dphi, kinks = ACTS[name]
    return sigma_w**2 * _moment(dphi, q, kinks)


def reference_critical(name: str, sigma_b: float, bracket: tuple[float, float]):
    """(sigma_w, q*) with chi_1 = 1 at the fixed point, sigma_w by brentq within `bracket`."""
    sigma_w = optimize.brentq(
        lambda s: _chi1(name, s, _fixed_point(name, s, sigma_b)) - 1.0,
        *bracket,
        xtol=1e-14,
        rtol=1e-13,
    )
    return sigma_w, _fixed_point(name, sigma_w, sigma_b)


# Brackets for sigma_w chosen by hand (wide, not from the library): chi_1 - 1 changes sign once
# inside, and the length map has a fixed point at both ends.
#
# GELU, SiLU and Mish have no case here: for them chi_1 < 1 at the attracting fixed point for
# every sigma_w that has one (the fixed point vanishes in a saddle-node bifurcation before chi_1
# reaches 1), so this reference finds no critical point; see test_q_star_is_attracting.
@pytest.mark.parametrize(
    ("name", "bias_std", "bracket"),
    [
        ("tanh", 0.05, (1.0, 1.6)),
        ("tanh", 0.1, (1.0, 1.6)),
        ("tanh", 0.2, (1.0, 1.8)),
        ("tanh", 0.3, (1.0, 1.8)),
        ("elu", 0.1, (1.0, 1.4)),  # kink at 0: it stays on 0 whatever q
        ("elu", 0.2, (1.0, 1.4)),
        ("selu", 0.2, (0.7, 1.1)),
        ("softsign", 0.2, (1.2, 2.2)),
        ("sin", 0.2, (1.0, 1.5)),
    ],
)
def test_critical_point_matches_independent_solution(name, bias_std, bracket):
    """sigma_w and q* agree with the reference to 1e-6 relative (both solvers converge to
    ~1e-12 and quad is accurate to ~1e-13, so 1e-6 is the contract's budget, not noise)."""
    cp = wi.critical_point(name, bias_std=bias_std)
    sigma_w, q_star = reference_critical(name, bias_std, bracket)
    assert cp.bias_std == bias_std
    assert cp.weight_std == pytest.approx(sigma_w, rel=1e-6)
    assert cp.q_star == pytest.approx(q_star, rel=1e-6)
    # chi_1 at the returned point, recomputed independently: 1e-9 because the solver's q*
    # (converged to ~1e-14) enters chi_1 only through E[phi'^2], smooth in q with slope O(1).
    assert _chi1(name, cp.weight_std, cp.q_star) == pytest.approx(1.0, abs=1e-9)
    assert cp.chi1 == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("name", "bias_std"),
    [
        ("tanh", 0.05),
        ("tanh", 0.3),
        ("elu", 0.3),
        ("selu", 0.1),
        ("softsign", 0.05),
        ("sin", 0.3),
    ],
)
def test_q_star_is_attracting(name, bias_std):
    """A network at (sigma_w, sigma_b) actually reaches q*: iterating the length map from
    q = 0 with the returned sigma_w converges to the returned q*."""
    cp = wi.critical_point(name, bias_std=bias_std)
    reached = _fixed_point(name, cp.weight_std, bias_std)
    assert reached == pytest.approx(cp.q_star, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "bias_std"), [("tanh", 0.1), ("elu", 0.2), ("sin", 0.1), ("softsign", 0.3)]
)
def test_returned_point_is_a_fixed_point(name, bias_std):
    """q* = sigma_w^2 E[phi(sqrt(q*) z)^2] + sigma_b^2 for the returned pair (it is a fixed
    point, attracting or not), with chi_1 = 1 there."""
    cp = wi.critical_point(name, bias_std=bias_std)
    phi, _, kinks = ACTS[name]
    mapped = cp.weight_std**2 * _moment(phi, cp.q_star, kinks) + bias_std**2
    assert mapped == pytest.approx(cp.q_star, rel=1e-9)
    assert _chi1(name, cp.weight_std, cp.q_star) == pytest.approx(1.0, abs=1e-9)


def test_weight_std_grows_with_bias_for_tanh():
    """More bias needs more weight variance to stay critical (Schoenholz et al. Fig. 1)."""
    stds = [wi.critical_point("tanh", bias_std=b).weight_std for b in (0.0, 0.05, 0.1, 0.2, 0.3)]
    assert stds == sorted(stds)
    assert len(set(stds)) == len(stds)


# --- positively homogeneous and bias-free cases ----------------------------------------------


@pytest.mark.parametrize(
    ("activation", "params", "expected"),
    [
        ("relu", None, math.sqrt(2.0)),
        ("linear", None, 1.0),
        ("leaky_relu", {"negative_slope": 0.2}, math.sqrt(2.0 / 1.04)),
    ],
)
def test_homogeneous_without_bias_any_q_is_fixed(activation, params, expected):
    """For phi(cx) = c phi(x) the length map is linear: every q is a fixed point -> q* is nan."""
    cp = wi.critical_point(activation, params=params)
    assert cp.weight_std == pytest.approx(expected, rel=1e-12)
    assert math.isnan(cp.q_star)
    assert cp.chi1 == pytest.approx(1.0, abs=1e-9)
    assert cp.bias_std == 0.0


@pytest.mark.parametrize("bias_std", [0.1, 1.0])
def test_relu_with_bias_diverges(bias_std):
    """With bias, chi_1 = 1 makes the linear length map add sigma_b^2 each layer: q* = inf."""
    cp = wi.critical_point("relu", bias_std=bias_std)
    assert cp.weight_std == pytest.approx(math.sqrt(2.0), rel=1e-12)
    assert cp.q_star == math.inf
    assert cp.bias_std == bias_std


def test_tanh_without_bias_is_the_origin():
    """tanh with sigma_b = 0: the fixed point is q* = 0, where chi_1 = sigma_w^2 tanh'(0)^2."""
    cp = wi.critical_point("tanh", bias_std=0.0)
    assert cp.weight_std == pytest.approx(1.0, abs=1e-12)
    assert cp.q_star == 0.0
    assert cp.chi1 == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(("name", "expected"), [("tanh", 1.0), ("sin", 1.0)])
def test_bias_free_limit_is_continuous(name, expected):
    """sigma_w at sigma_b = 0 is the limit of sigma_w as sigma_b -> 0+, 1/|phi'(0)|."""
    at_zero = wi.critical_point(name).weight_std
    near_zero = wi.critical_point(name, bias_std=1e-5).weight_std
    assert at_zero == pytest.approx(expected, rel=1e-9)
    assert near_zero == pytest.approx(at_zero, rel=1e-3)


def test_selu_bias_free_limit_is_continuous():
    scale, alpha = 1.0507009873554805, 1.6732632423543772
    expected = 1.0 / math.sqrt((scale**2 + (scale * alpha) ** 2) / 2.0)
    assert wi.critical_point("selu").weight_std == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", ["gelu", "silu", "mish", "hardswish"])
@pytest.mark.parametrize("bias_std", [0.0, 0.1, 0.3])
def test_no_attracting_edge_of_chaos_is_refused(name, bias_std):
    """GELU-like activations have no attracting fixed point with chi_1 = 1: at the crossings
    the length map's slope exceeds 1 (1.05-1.10 with bias), and without bias small q grows away
    from the origin (L(q) = q + c q^2, c > 0). Returning such a point would be wrong; the
    library says so instead."""
    with pytest.raises(wi.InitError, match="no attracting fixed point"):
        wi.critical_point(name, bias_std=bias_std)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bias_std", "pattern"),
    [
        (-0.1, r"`bias_std` must be >= 0"),
        (math.nan, r"`bias_std` must be finite"),
        (math.inf, r"`bias_std` must be finite"),
        (-math.inf, r"`bias_std` must be finite"),
        ("0.1x", r"`bias_std` must be a real number"),
        (True, r"`bias_std` must be a real number"),
    ],
)
def test_bad_bias_std(bias_std, pattern):
    with pytest.raises(wi.InitError, match=pattern):
        wi.critical_point("tanh", bias_std=bias_std)


def test_unknown_activation():
    with pytest.raises(wi.InitError, match="Did you mean 'tanh'"):
        wi.critical_point("tahn")


def test_hardtanh_without_bias_is_the_origin_not_rounding_noise():
    """hardtanh is the identity near 0, so excess(q) is zero to rounding for small q; a sign
    flip there is not a fixed point."""
    cp = wi.critical_point("hardtanh")
    assert cp.q_star == 0.0
    assert cp.weight_std == pytest.approx(1.0, rel=1e-9)
