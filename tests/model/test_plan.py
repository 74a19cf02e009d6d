"""The plan as a value: rows that fill their parameter (or a shard of it) the same way wherever
they are applied, and a JSON form that reads back into the same plan and the same bits."""

from __future__ import annotations

import json
import warnings

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
    row = wi.init_model(nets.Scaled(), dry_run=True)["scale"]
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


@pytest.mark.parametrize(("field", "value", "match"), [
    ("shape", [2.7, 16], "`shape` must be a list of non-negative ints"),
    ("shape", [True, 16], "`shape` must be a list of non-negative ints"),
    ("aliases", "ab", "`aliases` must be a list of str"),
    ("fans", [float("inf"), 1], r"`fans` must be null or \[fan_in"),
    ("std", "x", "`std` must be null or a finite number"),
    ("rule", None, "`rule` must be a str"),
    ("residual", "no", "`residual` must be true or false"),
    ("padding_idx", -1, "`padding_idx` must be null or a row index below 50"),
    ("spec", {"type": "Normal", "std": 10**400}, r"`std` must be finite"),
    ("spec", "He", "`spec` must be null or a scheme's to_dict"),
])
def test_every_field_of_a_saved_row_is_checked(field, value, match):
    data = wi.init_model(Tokens(), dry_run=True).to_dict()
    row = next(r for r in data["rows"] if r["name"] == "emb.weight")
    row[field] = value
    with pytest.raises(wi.InitError, match=rf"plan row 'emb.weight'.*{match}"):
        wi.InitPlan.from_dict(data)


@pytest.mark.parametrize(("change", "match"), [
    ({"notes": None}, "`notes` must be a list of str"),
    ({"notes": "abc"}, "`notes` must be a list of str"),
    ({"policy": 3}, "`policy` must be a str"),
    ({"rows": {}}, "whose 'rows' is dict"),
])
def test_the_plans_own_fields_are_checked(change, match):
    data = wi.init_model(nets.mlp(2, 8), dry_run=True).to_dict() | change
    with pytest.raises(wi.InitError, match=match):
        wi.InitPlan.from_dict(data)


def test_deeply_nested_json_is_refused_not_a_recursion_error():
    with pytest.raises(wi.InitError, match="not a plan's JSON"):
        wi.InitPlan.from_json("[" * 100_000 + "]" * 100_000)


def test_rules_see_parameters_in_registration_order_rows_come_in_execution_order():
    class Backwards(nn.Module):  # `late` is registered first, called last
        def __init__(self) -> None:
            super().__init__()
            self.late = nn.Linear(8, 2)
            self.early = nn.Linear(4, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.late(torch.relu(self.early(x)))

    seen: list[str] = []

    def spy(info: wi.ParamInfo) -> wi.Spec:
        seen.append(info.name)
        return wi.Zeros()

    plan = wi.init_model(Backwards(), wi.Policy([wi.Rule(spy)]), dry_run=True,
                         example_inputs=(torch.randn(2, 4),))
    assert seen == ["late.weight", "late.bias", "early.weight", "early.bias"]
    assert [row.name for row in plan] == ["early.weight", "early.bias", "late.weight",
                                          "late.bias"]


def test_an_empty_parameter_is_filled_with_the_same_warning_as_spec_fill():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own "zero-element tensors" warning
        model = nn.Linear(4, 0)
    with pytest.warns(wi.InitWarning, match="empty tensor"):
        wi.init_model(model, example_inputs=(torch.randn(2, 4),))
