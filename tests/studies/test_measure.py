"""The demo's direct measurement of signal propagation: the same numbers as wi.diagnose's
out_std and grad_out_rms (its synthetic loss), the model untouched; growth rates with their
limits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import weightinit as wi
from weightinit.studies import initialize, load_digits, mlp
from weightinit.studies._measure import (
    backward_growth,
    forward_growth,
    geometric_mean,
    growth,
    mean_profile,
    profile,
)


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh, nn.GELU])
def test_profile_is_what_diagnose_measures(activation):
    batch = load_digits().x_train[:256]
    model = initialize(mlp(8, 32, activation), "He", batch, 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    std, rms = profile(model, batch)
    linears = [x for x in wi.diagnose(model, batch).layers if x.layer == "Linear"]
    assert len(std) == len(rms) == len(linears) == 8
    # float64 statistics here, diagnose's float32 reductions (relative error ~1e-7) there
    assert std == pytest.approx([x.out_std for x in linears], rel=1e-5)
    assert rms == pytest.approx([x.grad_out_rms for x in linears], rel=1e-5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_growth_per_layer_and_its_limits():
    assert growth(1.0, 2.0, 2) == pytest.approx(2.0)  # std x2 in 2 steps: variance x2 a step
    assert growth(1.0, 0.0, 5) == 0.0 and growth(1.0, math.inf, 5) == math.inf
    assert growth(1.0, math.nan, 5) == math.inf  # inf - inf on the way: it overflowed
    assert math.isnan(growth(0.0, 1.0, 5)) and math.isnan(growth(math.nan, 1.0, 5))
    assert math.isnan(growth(1.0, 1.0, 0))
    std = [1.0, 2.0, 4.0, 8.0]
    assert forward_growth(std, (1, 3)) == pytest.approx(4.0)  # layers 1 to 3: x2 std a layer
    assert backward_growth(std, (1, 4)) == pytest.approx(0.25)  # going back from layer 4
    assert geometric_mean([0.25, 4.0]) == pytest.approx(1.0)
    assert geometric_mean([0.0, 2.0]) == 0.0 and geometric_mean([math.inf, 2.0]) == math.inf
    assert math.isnan(geometric_mean([0.0, math.inf])) and math.isnan(geometric_mean([]))
    assert mean_profile([[1.0, 4.0], [4.0, 1.0]]) == pytest.approx([2.0, 2.0])
