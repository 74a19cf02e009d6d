"""Tests for `wi.gain`: reference values, an independent scipy computation for every named
activation (forward and backward), modules, callables, torch's convention and the errors.

The independent reference integrates phi(z)^2 (or phi'(z)^2) against the standard normal pdf with
`scipy.integrate.quad`, split at every kink of the activation, with phi and phi' written here by
hand in plain `math` (no torch), so it shares no code and no quadrature rule with the library.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from scipy import integrate
from torch import nn

import weightinit as wi
from weightinit.theory import ACTIVATION_NAMES

ScalarFn = Callable[[float], float]

# ---------------------------------------------------------------------------------------------
# Independent reference: E[f(Z)^2], Z ~ N(0, 1), by adaptive quadrature split at the kinks.
# ---------------------------------------------------------------------------------------------

# The normal pdf beyond |z| = 20 holds ~5e-89 of the mass: integrating on [-20, 20] changes the
# moments of these (at most linearly growing) functions by far less than double rounding.
_EDGE = 20.0


def _pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def ref_moment(f: ScalarFn, kinks: tuple[float, ...] = ()) -> float:
    """E[f(Z)^2] by scipy quad on pieces between the kinks, where the integrand is smooth."""
    points = [-_EDGE, *sorted(kinks), _EDGE]
    total = 0.0
    for a, b in itertools.pairwise(points):
        value, _ = integrate.quad(
            lambda z: f(z) ** 2 * _pdf(z), a, b, epsabs=0.0, epsrel=1e-13, limit=400
        )
        total += value
    return total


def ref_gain(f: ScalarFn, kinks: tuple[float, ...] = ()) -> float:
    return 1.0 / math.sqrt(ref_moment(f, kinks))


def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))  # overflow-free form of 1 / (1 + e^-x)


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))  # overflow-free log(1 + e^x)


def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _elu(alpha: float) -> tuple[ScalarFn, ScalarFn]:
    return (
        lambda x: x if x > 0 else alpha * math.expm1(x),
        lambda x: 1.0 if x > 0 else alpha * math.exp(x),
    )


_C = math.sqrt(2.0 / math.pi)  # GELU's tanh approximation: 0.5 x (1 + tanh(C (x + 0.044715 x^3)))


def _gelu_tanh(x: float) -> float:
    return 0.5 * x * (1.0 + math.tanh(_C * (x + 0.044715 * x**3)))


def _gelu_tanh_prime(x: float) -> float:
    t = math.tanh(_C * (x + 0.044715 * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _C * (1.0 + 3 * 0.044715 * x * x)


def _mish_prime(x: float) -> float:
    t = math.tanh(_softplus(x))
    return t + x * (1.0 - t * t) * _sigmoid(x)


# SELU's constants from Klambauer et al. 2017 (as in torch), to the digits torch uses.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ELU1, _ELU1_PRIME = _elu(1.0)

# name -> (phi, phi', kinks): phi and phi' by hand; kinks are where phi or a derivative jumps.
REFERENCE: dict[str, tuple[ScalarFn, ScalarFn, tuple[float, ...]]] = {
    "celu": (_ELU1, _ELU1_PRIME, (0.0,)),  # alpha = 1: celu == elu
    "elu": (_ELU1, _ELU1_PRIME, (0.0,)),
    "gelu": (lambda x: x * _ncdf(x), lambda x: _ncdf(x) + x * _pdf(x), ()),
    "hardsigmoid": (
        lambda x: min(max(x / 6.0 + 0.5, 0.0), 1.0),
        lambda x: 1.0 / 6.0 if -3.0 < x < 3.0 else 0.0,
        (-3.0, 3.0),
    ),
    "hardswish": (
        lambda x: 0.0 if x <= -3 else (x if x >= 3 else x * (x + 3.0) / 6.0),
        lambda x: 0.0 if x < -3 else (1.0 if x > 3 else (2.0 * x + 3.0) / 6.0),
        (-3.0, 3.0),
    ),
    "hardtanh": (
        lambda x: min(max(x, -1.0), 1.0),
        lambda x: 1.0 if -1.0 < x < 1.0 else 0.0,
        (-1.0, 1.0),
    ),
    "leaky_relu": (
        lambda x: x if x > 0 else 0.01 * x,
        lambda x: 1.0 if x > 0 else 0.01,
        (0.0,),
    ),
    "linear": (lambda x: x, lambda x: 1.0, ()),
    "mish": (lambda x: x * math.tanh(_softplus(x)), _mish_prime, ()),
    "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0, (0.0,)),
    "relu6": (
        lambda x: min(max(x, 0.0), 6.0),
        lambda x: 1.0 if 0.0 < x < 6.0 else 0.0,
        (0.0, 6.0),
    ),
    "selu": (
        lambda x: _SELU_SCALE * (x if x > 0 else _SELU_ALPHA * math.expm1(x)),
        lambda x: _SELU_SCALE * (1.0 if x > 0 else _SELU_ALPHA * math.exp(x)),
        (0.0,),
    ),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)), ()),
    "silu": (
        lambda x: x * _sigmoid(x),
        lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
        (),
    ),
    "sin": (math.sin, math.cos, ()),
    "softplus": (_softplus, _sigmoid, ()),  # threshold 20 is beyond where the pdf matters
    "softsign": (
        lambda x: x / (1.0 + abs(x)),
        lambda x: 1.0 / (1.0 + abs(x)) ** 2,
        (0.0,),  # phi'' jumps at 0
    ),
    "tanh": (math.tanh, lambda x: 1.0 - math.tanh(x) ** 2, ()),
}

# The contract (DESIGN.md) promises relative error < 1e-6 on gains; the scipy reference is
# accurate to ~1e-13, so any disagreement above 1e-6 is the library's.
REL = 1e-6


def test_reference_table_covers_every_named_activation():
    """A new named activation must get an independent reference here too."""
    assert set(REFERENCE) == set(ACTIVATION_NAMES)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_forward_gain_matches_independent_quadrature(name):
    """forward = 1/sqrt(E[phi(z)^2]) agrees with scipy quad, split at the kinks."""
    phi, _, kinks = REFERENCE[name]
    assert wi.gain(name) == pytest.approx(ref_gain(phi, kinks), rel=REL)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_backward_gain_matches_independent_quadrature(name):
    """backward = 1/sqrt(E[phi'(z)^2]) agrees with scipy quad of the hand-written derivative."""
    _, dphi, kinks = REFERENCE[name]
    assert wi.gain(name, mode="backward") == pytest.approx(ref_gain(dphi, kinks), rel=REL)


# Values rounded to 6 decimals: rounding uses up to 5e-7 of the 1e-6 absolute budget.
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relu", 1.414214),
        ("tanh", 1.592537),
        ("sigmoid", 1.846229),
        ("gelu", 1.533530),
        ("silu", 1.676532),
        ("mish", 1.486848),
        ("leaky_relu", 1.414143),
        ("linear", 1.0),
    ],
)
def test_forward_gain_reference_values(name, expected):
    assert wi.gain(name) == pytest.approx(expected, abs=1e-6)


def _elu_moment(alpha: float) -> float:
    """E[elu_alpha(Z)^2] in closed form, from E[e^{tZ}; Z < 0] = e^{t^2/2} Phi(-t):
    1/2 + alpha^2 (e^2 Phi(-2) - 2 e^{1/2} Phi(-1) + 1/2)."""
    negative = math.exp(2.0) * _ncdf(-2.0) - 2.0 * math.exp(0.5) * _ncdf(-1.0) + 0.5
    return 0.5 + alpha**2 * negative


def test_elu_and_selu_match_closed_forms():
    """Tables that list elu 1.245206 and selu 1.000012 carry Gauss-Hermite's error from the kink
    at 0; the closed forms (checked with mpmath to 30 digits) give 1.2451983007 and 1.0."""
    # Closed forms evaluated in double: ~1e-15 relative; 1e-10 leaves room for the library's
    # quadrature (it is accurate to rounding here, the kink sits on a panel edge).
    assert 1.0 / math.sqrt(_elu_moment(1.0)) == pytest.approx(1.2451983007, abs=1e-10)
    assert wi.gain("elu") == pytest.approx(1.2451983007, abs=1e-10)
    selu_moment = _SELU_SCALE**2 * _elu_moment(_SELU_ALPHA)
    assert selu_moment == pytest.approx(1.0, abs=1e-12)
    assert wi.gain("selu") == pytest.approx(1.0, abs=1e-10)
    # ...so the library must not drift back to the wrong published values.
    assert abs(wi.gain("elu") - 1.245206) > 5e-6
    assert abs(wi.gain("selu") - 1.000012) > 5e-6


# --- nn.Module instances: their parameters are read ------------------------------------------


def test_leaky_relu_module_reads_slope():
    expected = math.sqrt(2.0 / (1.0 + 0.2**2))
    by_module = wi.gain(nn.LeakyReLU(0.2))
    by_params = wi.gain("leaky_relu", params={"negative_slope": 0.2})
    assert by_module == pytest.approx(expected, rel=1e-12)
    assert by_params == pytest.approx(expected, rel=1e-12)
    assert wi.gain(nn.LeakyReLU(0.2), mode="backward") == pytest.approx(expected, rel=1e-12)


_ELU_HALF, _ELU_HALF_PRIME = _elu(0.5)


def _softplus_beta2(x: float) -> float:
    return _softplus(2.0 * x) / 2.0


@pytest.mark.parametrize(
    ("module", "name", "params", "phi", "dphi", "kinks"),
    [
        (nn.ELU(alpha=0.5), "elu", {"alpha": 0.5}, _ELU_HALF, _ELU_HALF_PRIME, (0.0,)),
        (
            nn.GELU(approximate="tanh"),
            "gelu",
            {"approximate": "tanh"},
            _gelu_tanh,
            _gelu_tanh_prime,
            (),
        ),
        (
            nn.Softplus(beta=2),
            "softplus",
            {"beta": 2.0},
            _softplus_beta2,
            lambda x: _sigmoid(2.0 * x),
            (),
        ),
    ],
    ids=["elu-alpha0.5", "gelu-tanh", "softplus-beta2"],
)
def test_module_parameters_are_read(module, name, params, phi, dphi, kinks):
    """A module's gain uses its parameters: equals the named gain with those params, matches an
    independent quadrature, and differs from the default parameters' gain."""
    forward = wi.gain(module)
    backward = wi.gain(module, mode="backward")
    assert forward == pytest.approx(wi.gain(name, params=params), rel=1e-12)
    assert backward == pytest.approx(wi.gain(name, params=params, mode="backward"), rel=1e-12)
    assert forward == pytest.approx(ref_gain(phi, kinks), rel=REL)
    assert backward == pytest.approx(ref_gain(dphi, kinks), rel=REL)
    assert abs(forward - wi.gain(name)) > 1e-5  # the parameters made a difference


def test_elu_alpha_matches_closed_form():
    assert wi.gain(nn.ELU(alpha=0.5)) == pytest.approx(1 / math.sqrt(_elu_moment(0.5)), rel=1e-10)


# --- arbitrary callables ----------------------------------------------------------------------


def test_callable_silu_equals_named_silu():
    """A lambda is integrated like the built-in; both quadratures share nodes, hence 1e-9."""

    def swish(x):
        return x * torch.sigmoid(x)

    assert wi.gain(swish) == pytest.approx(wi.gain("silu"), rel=1e-9)
    assert wi.gain(lambda x: x * torch.sigmoid(x)) == pytest.approx(wi.gain("silu"), rel=1e-9)


@pytest.mark.parametrize(
    ("fn", "name"),
    [
        (lambda x: x * torch.sigmoid(x), "silu"),
        (lambda x: torch.where(x > 0, x, torch.expm1(x)), "elu"),
        (lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))), "gelu"),
        (lambda x: 1 / (1 + torch.exp(-x)), "sigmoid"),
    ],
    ids=["silu", "elu", "gelu", "sigmoid"],
)
def test_callable_backward_by_autograd_equals_named(fn, name):
    """Backward mode differentiates a plain callable with autograd (kinks included)."""
    assert wi.gain(fn, mode="backward") == pytest.approx(wi.gain(name, mode="backward"), rel=1e-9)


def test_callable_gain_is_computed_not_looked_up():
    """A scaled activation has the gain divided by the scale (a smooth one, no closed form)."""
    assert wi.gain(lambda x: 3.0 * torch.tanh(x)) == pytest.approx(wi.gain("tanh") / 3.0, rel=1e-12)


def test_functional_leaky_relu_callable():
    assert wi.gain(F.leaky_relu) == pytest.approx(wi.gain("leaky_relu"), rel=1e-9)


def test_callable_named_like_a_closed_form_is_still_integrated():
    def relu(x):  # twice ReLU: the gain must be sqrt(2) / 2
        return 2.0 * torch.relu(x)

    def linear(x):  # actually tanh
        return torch.tanh(x)

    assert wi.gain(relu) == pytest.approx(math.sqrt(2.0) / 2.0, rel=1e-9)
    assert wi.gain(linear) == pytest.approx(wi.gain("tanh"), rel=1e-9)


@pytest.mark.parametrize("mode", ["forward", "backward"])
def test_hardtanh_with_off_grid_kinks(mode):
    lo, hi = -0.3, 0.7
    phi = (
        (lambda x: min(max(x, lo), hi))
        if mode == "forward"
        else (lambda x: 1.0 if lo < x < hi else 0.0)
    )
    expected = ref_gain(phi, (lo, hi))
    assert wi.gain(nn.Hardtanh(lo, hi), mode=mode) == pytest.approx(expected, rel=REL)


# --- mode="torch": torch.nn.init.calculate_gain's table -------------------------------------


@pytest.mark.parametrize(
    ("activation", "params", "torch_args", "value"),
    [
        ("linear", None, ("linear",), 1.0),
        ("relu", None, ("relu",), math.sqrt(2.0)),
        ("tanh", None, ("tanh",), 5.0 / 3.0),
        ("sigmoid", None, ("sigmoid",), 1.0),
        ("selu", None, ("selu",), 0.75),
        ("leaky_relu", None, ("leaky_relu",), math.sqrt(2.0 / (1 + 0.01**2))),
        ("leaky_relu", {"negative_slope": 0.2}, ("leaky_relu", 0.2), math.sqrt(2.0 / 1.04)),
        (nn.LeakyReLU(0.3), None, ("leaky_relu", 0.3), math.sqrt(2.0 / 1.09)),
    ],
)
def test_torch_mode_matches_calculate_gain(activation, params, torch_args, value):
    got = wi.gain(activation, mode="torch", params=params)
    assert got == pytest.approx(torch.nn.init.calculate_gain(*torch_args), rel=1e-12)
    assert got == pytest.approx(value, rel=1e-12)


def test_torch_mode_differs_from_forward_where_torch_disagrees():
    """torch's tanh 5/3 and sigmoid 1 are table entries, not the variance-preserving gains."""
    assert abs(wi.gain("tanh", mode="torch") - wi.gain("tanh")) > 0.05
    assert abs(wi.gain("sigmoid", mode="torch") - wi.gain("sigmoid")) > 0.5


def test_torch_mode_unknown_to_torch_points_to_forward():
    with pytest.raises(wi.InitError, match="forward"):
        wi.gain("gelu", mode="torch")


# --- errors -----------------------------------------------------------------------------------


def test_unknown_name_suggests_closest():
    with pytest.raises(wi.InitError, match="Did you mean 'gelu'"):
        wi.gain("gelx")


def test_bad_mode():
    with pytest.raises(wi.InitError, match=r"`mode` must be one of 'forward', 'backward', 'torch'"):
        wi.gain("relu", mode="sideways")


@pytest.mark.parametrize(
    ("name", "params", "pattern"),
    [
        ("relu", {"negative_slope": 0.1}, r"\['negative_slope'\] are not parameters of 'relu'"),
        ("leaky_relu", {"slope": 0.1}, r"\['slope'\] are not parameters of 'leaky_relu'"),
        ("tanh", {"alpha": 1.0}, r"its parameters: none"),
    ],
)
def test_unknown_params(name, params, pattern):
    with pytest.raises(wi.InitError, match=pattern):
        wi.gain(name, params=params)


@pytest.mark.parametrize("activation", [nn.LeakyReLU(0.1), lambda x: x])
def test_params_with_module_or_callable(activation):
    with pytest.raises(wi.InitError, match="only applies to activation names"):
        wi.gain(activation, params={"negative_slope": 0.2})


@pytest.mark.parametrize(
    ("name", "params", "pattern"),
    [
        ("leaky_relu", {"negative_slope": math.nan}, r"`negative_slope` of 'leaky_relu' .*finite"),
        ("elu", {"alpha": math.inf}, r"`alpha` of 'elu' must be finite"),
        ("softplus", {"beta": -math.inf}, r"`beta` of 'softplus' must be finite"),
        ("leaky_relu", {"negative_slope": "0.1"}, r"must be a number"),
        ("leaky_relu", {"negative_slope": True}, r"must be a number"),
    ],
)
def test_bad_param_values(name, params, pattern):
    with pytest.raises(wi.InitError, match=pattern):
        wi.gain(name, params=params)


@pytest.mark.parametrize(
    ("fn", "pattern"),
    [
        (lambda x: x.sum(), r"must return a tensor shaped like its input"),
        (lambda x: x[:10], r"must return a tensor shaped like its input"),
        (lambda x: 1.0, r"must return a tensor shaped like its input"),
        (lambda x: x * math.nan, r"is not finite"),
        (torch.log, r"is not finite"),  # NaN only for negative inputs
        (lambda x: torch.zeros_like(x), r"zero output"),
    ],
    ids=["scalar", "slice", "float", "nan", "log", "zero"],
)
def test_bad_callables(fn, pattern):
    with pytest.raises(wi.InitError, match=pattern):
        wi.gain(fn)


def test_constant_function_has_no_backward_gain():
    """phi' = 0 everywhere: the backward gain is undefined."""
    with pytest.raises(wi.InitError, match=r"zero derivative"):
        wi.gain(lambda x: torch.ones_like(x), mode="backward")


def test_callable_that_raises_is_wrapped():
    def broken(x):
        raise RuntimeError("boom")

    with pytest.raises(wi.InitError, match=r"failed on a float64 tensor: RuntimeError: boom"):
        wi.gain(broken)


@pytest.mark.parametrize("obj", [3, 2.5, object()])
def test_not_an_activation(obj):
    with pytest.raises(wi.InitError, match=r"must be a name, an nn.Module or a function"):
        wi.gain(obj)


def test_init_error_is_value_error():
    with pytest.raises(ValueError):
        wi.gain("gelx")


# --- inputs that once escaped as non-InitError or never finished ----------------------------------


@pytest.mark.parametrize(
    ("activation", "params", "match"),
    [
        (lambda x: 1e200 * x, None, "not finite"),  # phi finite, phi^2 overflows
        ("elu", {"alpha": 1e200}, "not finite"),
        ("leaky_relu", {"negative_slope": 1e200}, "too large"),
        (lambda x: x + 1e-3 * torch.rand_like(x), None, "does not converge"),  # random
        (nn.Softmax(-1), None, "does not converge"),  # not elementwise
    ],
)
def test_unintegrable_activations_are_refused_quickly(activation, params, match):
    with pytest.raises(wi.InitError, match=match):
        wi.gain(activation, params=params)


def test_modules_are_evaluated_in_eval_mode():
    """Dropout in eval mode is the identity: gain 1, and the user's module stays in train."""
    module = nn.Dropout(0.5)
    assert wi.gain(module) == pytest.approx(1.0, rel=1e-12)
    assert module.training


def test_unknown_module_with_parameters_is_evaluated_on_a_private_copy():
    """PReLU is not in the table: it is integrated (slope 0.25 -> sqrt(2 / (1 + 0.25^2))) on a
    float64 copy, and the user's module keeps its dtype, grads and mode."""
    module = nn.PReLU()
    assert wi.gain(module) == pytest.approx(math.sqrt(2 / (1 + 0.25**2)), rel=1e-9)
    assert module.weight.dtype == torch.float32 and module.weight.grad is None
    assert module.training
