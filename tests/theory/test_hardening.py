"""Hardening of `wi.gain` and `wi.critical_point` against odd parameters (issue 14): huge numbers,
non-mapping `params`, activations that change the dtype, modules that cannot be copied. Each is
an InitError whose message says what is wrong, never an OverflowError, TypeError or a
misleading "not deterministic"."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import weightinit as wi


@pytest.mark.parametrize("params", [[1, 2], ("negative_slope",), "negative_slope", 0.2,
                                    [("negative_slope", 0.2)]], ids=repr)
def test_params_must_be_a_mapping(params):
    for fn in (lambda: wi.gain("leaky_relu", params=params),
               lambda: wi.critical_point("leaky_relu", params=params)):
        with pytest.raises(wi.InitError, match="`params` must be a mapping"):
            fn()


@pytest.mark.parametrize(("name", "params", "match"), [
    ("leaky_relu", {"negative_slope": 10**400}, r"`negative_slope` of 'leaky_relu' must be finite"),
    ("elu", {"alpha": -(10**400)}, r"`alpha` of 'elu' must be finite"),
    ("softplus", {"beta": 10**400}, r"`beta` of 'softplus' must be finite"),
    ("leaky_relu", {"negative_slope": [0.1]}, r"must be a number"),
    ("leaky_relu", {"negative_slope": None}, r"must be a number"),
    ("leaky_relu", {"negative_slope": np.bool_(True)}, r"must be a number"),
    ("leaky_relu", {1: 0.1}, r"are not parameters of 'leaky_relu'"),
    ("leaky_relu", {1: 0.1, "x": 2}, r"are not parameters of 'leaky_relu'"),
])
def test_odd_parameter_values_are_refused(name, params, match):
    with pytest.raises(wi.InitError, match=match) as info:
        wi.gain(name, params=params)
    assert len(str(info.value)) < 300, "huge values are shown truncated"


def test_numpy_parameters_are_numbers():
    assert wi.gain("leaky_relu", params={"negative_slope": np.float32(0.25)}) == pytest.approx(
        math.sqrt(2 / (1 + 0.25**2)), rel=1e-15)
    assert wi.gain("elu", params={"alpha": np.int64(1)}) == wi.gain("elu")


@pytest.mark.parametrize("mode", ["forward", "backward", "torch"])
def test_parameters_whose_square_overflows_are_refused(mode):
    with pytest.raises(wi.InitError, match="too large"):
        wi.gain("leaky_relu", mode=mode, params={"negative_slope": 1e200})


@pytest.mark.parametrize("bias_std", [1e200, 10**400, 1e155])
def test_a_huge_bias_std_is_refused(bias_std):
    with pytest.raises(wi.InitError, match="`bias_std`") as info:
        wi.critical_point("tanh", bias_std=bias_std)
    assert len(str(info.value)) < 400


def test_a_large_bias_std_has_no_edge_of_chaos_in_range():
    with pytest.raises(wi.InitError, match="no attracting fixed point"):
        wi.critical_point("tanh", bias_std=1e100)


@pytest.mark.parametrize(("fn", "dtype"), [
    (lambda x: x.half(), "torch.float16"),
    (lambda x: torch.tanh(x.float()), "torch.float32"),
    (lambda x: (x > 0).to(torch.int64), "torch.int64"),
    (lambda x: x > 0, "torch.bool"),
])
@pytest.mark.parametrize("mode", ["forward", "backward"])
def test_an_activation_that_changes_the_dtype_is_named_as_such(fn, dtype, mode):
    with pytest.raises(wi.InitError, match=rf"returned {dtype} for a torch.float64 input: it "
                                           "changes the dtype"):
        wi.gain(fn, mode=mode)


def test_a_staircase_activation_is_not_called_random():
    # float64 in, float64 out, but rounded to a grid: the quadrature cannot converge, and the
    # message names the staircase as a possible cause, not only randomness.
    with pytest.raises(wi.InitError, match="staircase"):
        wi.gain(lambda x: torch.round(x * 64) / 64)


class Uncopyable(nn.Module):
    def forward(self, x):
        return torch.tanh(x)

    def __deepcopy__(self, memo):
        raise RuntimeError("holds a process handle")


def test_a_module_that_cannot_be_copied_is_refused_and_untouched():
    module = Uncopyable()
    with pytest.raises(wi.InitError, match=r"cannot be copied to float64.*process handle"):
        wi.gain(module)
    assert module.training


def test_q_of_second_moment_is_checked():
    from weightinit.theory import second_moment
    with pytest.raises(wi.InitError, match="`q` must be >= 0"):
        second_moment("tanh", q=-1.0)
    with pytest.raises(wi.InitError, match="`q` must be finite"):
        second_moment("tanh", q=10**400)


def test_ordinary_modules_still_work_after_the_checks():
    lrelu = nn.LeakyReLU(0.2)
    assert wi.gain(lrelu) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)
    seq = nn.Sequential(nn.Tanh())
    assert wi.gain(seq) == pytest.approx(wi.gain("tanh"), rel=1e-12)
    assert copy.deepcopy(seq)  # untouched and still copyable


def test_a_derivative_autograd_cannot_compute_is_an_init_error():
    # celu's backward converts alpha to a float32 scalar: 3.5e38 overflows it inside torch.
    with pytest.raises(wi.InitError, match="no derivative autograd can compute"):
        wi.gain("celu", mode="backward", params={"alpha": 3.5e38})
    assert wi.gain("celu", params={"alpha": 3.5e38}) == pytest.approx(1.0, rel=1e-12)


def test_numpy_groups_give_fans_of_python_ints():
    fans = wi.compute_fans((6, 2, 3), "conv", groups=np.int64(3))
    assert fans == wi.Fans(6, 6, 3) and all(type(v) is int for v in fans)
