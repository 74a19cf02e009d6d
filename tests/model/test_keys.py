"""The key contract the README states: a parameter's values depend on (seed, qualified name, flat
index, spec), not on the model around it or its shape beyond the flat index."""

from __future__ import annotations

import torch
from torch import nn

import weightinit as wi


def _linear(out_features: int) -> nn.Sequential:
    torch.manual_seed(123)  # the constructor's own draws, replaced by the init
    return nn.Sequential(nn.Linear(64, out_features))


def test_same_seed_same_name_same_values_in_different_models():
    members = [nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)) for _ in range(3)]
    for member in members:
        wi.init_model(member, seed=0)
    assert all(torch.equal(m[0].weight, members[0][0].weight) for m in members)


def test_one_seed_per_member_decorrelates_an_ensemble():
    members = [nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)) for _ in range(3)]
    for seed, member in enumerate(members):
        wi.init_model(member, seed=seed)
    weights = [m[0].weight.flatten() for m in members]
    for i in range(3):
        for j in range(i + 1, 3):
            # 64 independent normals: |corr| < 0.5 is beyond 4 sigma (sigma = 1/8) of zero.
            assert abs(torch.corrcoef(torch.stack([weights[i], weights[j]]))[0, 1]) < 0.5


def test_a_wider_layer_starts_with_the_narrower_ones_rows():
    narrow, wide = _linear(128), _linear(256)
    policy = wi.Policy([wi.Rule(wi.He(), name="*.weight"), wi.Rule(wi.Zeros(), name="*.bias")])
    wi.init_model(narrow, policy, seed=3)
    wi.init_model(wide, policy, seed=3)
    assert torch.equal(wide[0].weight[:128], narrow[0].weight)
