"""The plan as a value: rows that fill their parameter (or a shard of it) the same way wherever
they are applied, and a JSON form that reads back into the same plan and the same bits."""

from __future__ import annotations

import json

import model_nets as nets
import pytest
import torch
from torch import nn

import weightinit as wi


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16, padding_idx=7)
        self.rnn = nn.LSTM(16, 8, batch_first=True)
        self.head = nn.Linear(8, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.emb(ids))
        return self.head(torch.tanh(out[:, -1]))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


@pytest.mark.parametrize("build", [Tokens, lambda: nets.mlp(4, 32), nets.ResNet],
                         ids=["tokens", "mlp", "resnet"])
def test_a_plan_read_back_from_json_is_the_same_plan_and_fills_the_same_bits(build):
    model, fresh = build(), build()
    plan = wi.init_model(model, seed=9)
    again = wi.InitPlan.from_json(plan.to_json())
    assert again.rows == plan.rows
    assert (again.seed, again.policy, again.notes) == (plan.seed, plan.policy, plan.notes)
    assert again.to_dict() == plan.to_dict()
    again.apply(fresh)
    for name, value in _state(model).items():
        assert torch.equal(value, fresh.state_dict()[name]), name


def test_the_padding_row_is_saved_with_the_plan():
    plan = wi.init_model(Tokens(), dry_run=True)
    row = json.loads(plan.to_json())["rows"][[r.name for r in plan].index("emb.weight")]
    assert row["padding_idx"] == 7
    fresh = Tokens()
    wi.InitPlan.from_json(plan.to_json()).apply(fresh)
    assert torch.count_nonzero(fresh.emb.weight[7]) == 0
    assert torch.count_nonzero(fresh.emb.weight[6]) == 16


@pytest.mark.parametrize("offset", [(0, 0), (5, 0), (7, 0), (20, 0), (0, 8)])
def test_a_row_fills_a_region_with_exactly_that_slice_of_the_whole(offset):
    plan = wi.init_model(Tokens(), dry_run=True, seed=2)
    row = plan["emb.weight"]
    whole = row.fill_(torch.empty(row.shape), seed=2)
    rows, cols = (10, 16) if offset[1] == 0 else (50, 8)
    part = row.fill_(torch.empty(rows, cols), seed=2, offset=offset)
    assert torch.equal(part, whole[offset[0]:offset[0] + rows, offset[1]:offset[1] + cols])
    assert torch.count_nonzero(whole[7]) == 0  # the padding row, also inside a shard


def test_a_kept_row_has_nothing_to_fill():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.scale = nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * self.scale

    row = wi.init_model(Scaled(), dry_run=True)["scale"]
    assert row.kept
    with pytest.raises(wi.InitError, match="keeps 'scale'"):
        row.fill_(torch.empty(4), seed=0)


@pytest.mark.parametrize(("text", "match"), [
    ("not json", "not a plan's JSON"),
    ("[]", "list of 'rows'"),
    ('{"rows": [], "seed": -1}', "`seed`"),
    ('{"rows": [{"name": "w"}], "seed": 0}', "'w' lacks aliases"),
    ('{"rows": [7], "seed": 0}', "must be a dict"),
])
def test_malformed_plans_are_refused(text, match):
    with pytest.raises(wi.InitError, match=match):
        wi.InitPlan.from_json(text)


def test_a_row_with_an_unknown_scheme_is_refused_with_its_name():
    data = wi.init_model(nets.mlp(2, 8), dry_run=True).to_dict()
    data["rows"][0]["spec"] = {"type": "Hee"}
    with pytest.raises(wi.InitError, match=r"plan row '0.weight'.*Did you mean 'He'"):
        wi.InitPlan.from_dict(data)
    model = nets.mlp(2, 8)
    before = _state(model)
    data["rows"][0]["spec"] = {"type": "Normal", "std": -1.0}
    with pytest.raises(wi.InitError, match=r"'0.weight'.*`std`"):
        wi.InitPlan.from_dict(data).apply(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_the_table_shows_names_as_written_never_as_markup():
    from rich.console import Console

    model = nn.Sequential()
    model.add_module("[bold red]x", nn.Linear(4, 4))
    console = Console(width=200, record=True, color_system=None)
    console.print(wi.init_model(model, dry_run=True).table())
    assert "[bold red]x.weight" in console.export_text()
