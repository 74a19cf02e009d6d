"""From words to values: AS 241's quantile against scipy, and the meaning of a truncated normal's
parameters (`std` is the std of the values, as in wi.TruncatedNormal)."""

import math

import pytest
import torch
from random_streams import fill

import weightinit as wi
from weightinit.random import fill_keyed_
from weightinit.theory import truncated_std_factor


def test_float32_log_is_within_an_ulp_of_the_true_log():
    from weightinit.random._transforms import log32

    x = torch.cat([torch.logspace(-37, 0, 20001), torch.rand(100000) + 1e-7]).float()
    ours = log32(x).double()
    exact = torch.log(x.double())
    ulp = torch.finfo(torch.float32).eps * exact.abs().clamp(min=2.0**-24)
    # Cephes' logf is accurate to about one ulp; allow 2 (its constants are rounded to float32).
    assert ((ours - exact).abs() / ulp).max() <= 2.0


def test_float32_inverse_cdf_matches_scipy_to_float32_precision():
    """PPND7 (AS 241 in single precision), the truncated normal's inverse CDF, against scipy's
    float64 ndtri, in both tails through p and q = 1 - p."""
    from scipy.special import ndtri

    from weightinit.random._transforms import ndtri32

    p64 = torch.cat([torch.logspace(-37, -1, 4000, dtype=torch.float64),
                     torch.linspace(0.01, 0.99, 20001, dtype=torch.float64)])
    q64 = 1.0 - p64
    upper = torch.logspace(-37, -1, 4000, dtype=torch.float64)  # q tiny: the upper tail
    p = torch.cat([p64, 1.0 - upper]).float()
    q = torch.cat([q64, upper]).float()
    exact = torch.from_numpy(ndtri(torch.cat([p64, 1.0 - upper]).numpy()))
    exact[len(p64):] = -torch.from_numpy(ndtri(upper.numpy()))  # 1 - q is not representable
    ours = ndtri32(p, q, True).double()
    # PPND7 is accurate to about 1e-7 relative; its inputs are float32 (relative 6e-8, which
    # moves z by 6e-8 p / phi(z) <= 6e-8 / |z| in the tails); 1e-6 bounds both.
    assert ((ours - exact).abs() / exact.abs().clamp(min=0.1)).max() < 1e-6


@pytest.mark.parametrize(("std", "a", "b"), [(0.5, -2.0, 2.0), (1.0, 0.5, 3.0), (0.02, -1.0, 4.0)])
def test_truncated_normal_std_is_the_std_of_the_values(std, a, b):
    # n = 2**20 draws: the sample std's relative error is about sqrt((kurtosis - 1) / (4 n))
    # < 1e-3 for these truncated normals, so 5e-3 is a 5-sigma bound.
    values = fill((1 << 20,), "truncated_normal", (0.0, std, a, b), dtype=torch.float64)
    assert float(values.std()) == pytest.approx(std, rel=5e-3)
    sigma = std / truncated_std_factor(a, b)
    assert float(values.min()) >= a * sigma and float(values.max()) <= b * sigma


def test_truncated_normal_params_fill_what_wi_truncated_normal_fills():
    spec = wi.TruncatedNormal(std=0.3, mean=0.1, a=-1.5, b=2.5)
    direct = fill_keyed_(torch.empty(4096), "truncated_normal", (0.1, 0.3, -1.5, 2.5), seed=2,
                         key="w")
    assert torch.equal(direct, spec.fill_(torch.empty(4096), seed=2, key="w"))


def test_a_truncated_interval_too_narrow_to_sample_is_refused():
    with pytest.raises(wi.InitError, match="too narrow"):
        fill_keyed_(torch.empty(3), "truncated_normal", (0.0, 1.0, 1.0, 1.0 + 1e-9), seed=0,
                    key="w")
    assert math.isfinite(truncated_std_factor(-2.0, 2.0))
