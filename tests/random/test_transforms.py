"""From words to values: AS 241's quantile against scipy, and the meaning of a truncated normal's
parameters (`std` is the std of the values, as in wi.TruncatedNormal)."""

import math

import pytest
import torch
from random_streams import fill

import weightinit as wi
from weightinit.random import fill_keyed_
from weightinit.theory import truncated_std_factor


def test_ndtri_matches_scipy_to_rounding():
    """AS 241 in torch ops (the truncated normal's inverse CDF) against scipy's ndtri."""
    from scipy.special import ndtri as scipy_ndtri

    from weightinit.random._transforms import ndtri

    p = torch.cat([
        torch.logspace(-300, -1, 2000, dtype=torch.float64),
        torch.linspace(0.01, 0.99, 20001, dtype=torch.float64),
        1 - torch.logspace(-16, -1, 2000, dtype=torch.float64),
    ])
    ours, ref = ndtri(p), torch.from_numpy(scipy_ndtri(p.numpy()))
    # AS 241 is accurate to about 1e-16 relative; allow a few ulps of float64 rounding.
    big = ref.abs() > 1e-3
    assert ((ours - ref).abs()[big] / ref.abs()[big]).max() < 1e-14
    assert (ours - ref).abs().max() < 1e-13


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
