"""init_model: depth behaviour, keyed determinism, all-or-nothing, policies and rules, the plan."""

from __future__ import annotations

import io
import json
import math

import model_nets as nets
import pytest
import torch
from torch import nn

import weightinit as wi


def _layer_moments(model: nn.Sequential, x: torch.Tensor) -> list[float]:
    """Second moment of every Linear layer's output on the batch."""
    moments = []
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            if isinstance(layer, nn.Linear):
                moments.append(float(x.pow(2).mean()))
    return moments


BATCH = torch.randn(512, 256, generator=torch.Generator().manual_seed(1))


def test_auto_keeps_a_deep_relu_mlp_flat_where_torch_defaults_vanish():
    torch.manual_seed(0)
    default = nets.mlp(30, 256)  # torch's own constructors
    moments = _layer_moments(default, BATCH)
    assert moments[0] / moments[-1] > 100  # measured 0.333 -> 0.0016 (210x)

    preset = nets.mlp(30, 256)
    wi.init_model(preset, "torch", seed=3)
    moments = _layer_moments(preset, BATCH)
    assert moments[0] / moments[-1] > 100

    auto = nets.mlp(30, 256)
    plan = wi.init_model(auto, seed=0)
    assert [row.activation for row in plan if row.role == "linear.weight"] == (
        ["linear"] + ["relu"] * 29)
    moments = _layer_moments(auto, BATCH)
    ratios = [m / moments[0] for m in moments]
    assert min(ratios) >= 0.5 and max(ratios) <= 2.0, ratios


def test_auto_depth_profile_is_unbiased_across_seeds():
    # At width n and depth L, He init's log second moment wanders with std ~ sqrt(5 L / n)
    # (Hanin & Rolnick 2018): ~0.77 here, so single seeds leave [0.5, 2] now and then. Its
    # mean does not drift: the geometric mean of last/first over 8 seeds is within
    # exp(+-3 * 0.77 / sqrt(8)) = [0.44, 2.3] of 1; we assert [0.5, 2].
    logs = []
    for seed in range(8):
        model = nets.mlp(30, 256)
        wi.init_model(model, seed=seed)
        moments = _layer_moments(model, BATCH)
        logs.append(math.log(moments[-1] / moments[0]))
    assert 0.5 <= math.exp(sum(logs) / len(logs)) <= 2.0, logs


def test_values_come_from_the_keyed_stream_of_each_name():
    model = nets.mlp(3, 16)
    plan = wi.init_model(model, seed=7)
    for row in plan:
        expected = torch.empty(row.shape)
        row.spec.fill_(expected, fans=row.fans if row.spec.needs_fans else None, seed=7,
                       key=row.name)
        assert torch.equal(dict(model.named_parameters())[row.name], expected), row.name


def test_same_seed_same_bits_other_seed_other_bits():
    a, b, c = nets.ResNet(), nets.ResNet(), nets.ResNet()
    wi.init_model(a, seed=1)
    wi.init_model(b, seed=1)
    wi.init_model(c, seed=2)
    for (name, x), y, z in zip(a.state_dict().items(), b.state_dict().values(),
                               c.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
        if name.endswith("conv1.weight"):
            assert not torch.equal(x, z), name


class _Tower(nn.Module):
    """Named layers; `order` changes the registration order, `extra` adds a side head."""

    def __init__(self, order: str = "forward", extra: bool = False) -> None:
        super().__init__()
        names = ["inp", "hidden", "out"] if order == "forward" else ["out", "hidden", "inp"]
        sizes = {"inp": (8, 32), "hidden": (32, 32), "out": (32, 4)}
        for name in names:
            setattr(self, name, nn.Linear(*sizes[name]))
        if extra:
            self.aux = nn.Linear(32, 2)
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.hidden(torch.relu(self.inp(x))))
        if self.extra:
            return self.out(h), self.aux(h)
        return self.out(h)


def test_construction_order_and_an_inserted_layer_change_nothing_else():
    inputs = (torch.randn(4, 8),)
    base, reordered, extended = _Tower(), _Tower("reverse"), _Tower(extra=True)
    for model in (base, reordered, extended):
        wi.init_model(model, seed=5, example_inputs=inputs)
    state = base.state_dict()
    for other in (reordered, extended):
        for name, value in state.items():
            assert torch.equal(value, other.state_dict()[name]), name


def test_tied_parameters_are_filled_once_and_stay_tied():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.head = nn.Linear(16, 50, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, ids):
            return self.head(self.embed(ids))

    model = Tied()
    plan = wi.init_model(model)
    rows = [row for row in plan if row.name == "embed.weight"]
    assert len(plan) == 1 and rows[0].aliases == ("head.weight",)
    assert model.head.weight is model.embed.weight
    assert rows[0].spec == wi.Normal(std=1 / 4)  # tied to an output: 1/sqrt(dim)
    assert plan["head.weight"] is rows[0]


def test_padding_row_stays_zero():
    model = nn.Sequential(nn.Embedding(10, 4, padding_idx=3), nn.Linear(4, 4))
    wi.init_model(model)
    assert torch.equal(model[0].weight[3], torch.zeros(4))
    assert model[0].weight[2].abs().sum() > 0


# --- all or nothing --------------------------------------------------------------------------
def test_a_rule_failing_on_the_last_parameter_changes_nothing():
    model = nets.mlp(4, 8)
    before = nets.snapshot(model)
    last = list(dict(model.named_parameters()))[-1]

    def explode(info):
        if info.name == last:
            raise wi.InitError("no spec for the last one")
        return wi.Normal(std=0.1)

    with pytest.raises(wi.InitError, match="no spec for the last one"):
        wi.init_model(model, wi.Policy([wi.Rule(explode)]))
    nets.assert_unchanged(model, before)

    def crash(info):  # a plain exception from user code becomes an InitError with context
        return wi.Normal(std=1 / (info.name != last))

    with pytest.raises(wi.InitError, match=rf"raised ZeroDivisionError.*{last!r}"):
        wi.init_model(model, wi.Policy([wi.Rule(crash)]))
    nets.assert_unchanged(model, before)


class _Failing(wi.Normal):
    """A Normal that fails while filling one particular tensor shape."""

    def _distribution(self, fans):
        raise RuntimeError("device out of memory (simulated)")


def test_a_fill_failing_on_the_last_parameter_changes_nothing():
    model = nets.mlp(4, 8, d_out=3)
    before = nets.snapshot(model)
    policy = wi.Policy([wi.Rule(_Failing(0.1), name="6.bias"), wi.Policy.preset("auto")])
    with pytest.raises(wi.InitError, match=r"'6\.bias'.*No parameter was changed"):
        wi.init_model(model, policy)
    nets.assert_unchanged(model, before)


def test_a_spec_that_cannot_fill_its_parameter_is_refused_at_planning():
    model = nets.mlp(2, 8)
    before = nets.snapshot(model)
    with pytest.raises(wi.InitError, match=r"cannot fill '0\.bias'.*shape \(8,\)"):
        wi.init_model(model, wi.Policy([wi.Rule(wi.He())]), dry_run=True)
    nets.assert_unchanged(model, before)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"policy": "kerass"}, "Did you mean 'keras'"),
    ({"policy": 3}, "`policy` must be a preset name"),
    ({"seed": -1}, "`seed`"),
    ({"seed": True}, "`seed`"),
    ({"dry_run": "yes"}, "`dry_run`"),
    ({"example_inputs": [torch.randn(2, 8)]}, "`example_inputs` must be a tuple"),
    ({"example_inputs": (torch.randn(2, 5),)}, "forward pass on `example_inputs` failed"),
])
def test_bad_arguments_are_refused_and_change_nothing(kwargs, message):
    model = nets.mlp(2, 8)
    before = nets.snapshot(model)
    with pytest.raises(wi.InitError, match=message):
        wi.init_model(model, **kwargs)
    nets.assert_unchanged(model, before)


def test_not_a_module_is_refused():
    with pytest.raises(wi.InitError, match=r"torch\.nn\.Module"):
        wi.init_model({"weight": torch.zeros(2, 2)})


# --- rules and policies ----------------------------------------------------------------------
def test_rules_match_by_type_name_role_and_activation_first_match_wins():
    model = nets.Mixed(width=16)
    policy = wi.Policy([
        wi.Rule(wi.Constant(0.5), name="fc.5.*", label="five"),
        wi.Rule(wi.Constant(0.25), activation="tanh", role="linear.weight", label="tanh"),
        wi.Rule(wi.Ones(), module=nn.Linear, role="*.bias", label="biases"),
        wi.Rule(wi.Constant(2.0), module="Lin*", label="rest"),
    ])
    plan = wi.init_model(model, policy)
    assert plan["fc.5.weight"].rule == "custom: five"
    assert plan["fc.5.bias"].spec == wi.Constant(0.5)
    assert plan["fc.2.weight"].spec == wi.Constant(0.25)
    assert plan["fc.0.bias"].spec == wi.Ones()
    assert plan["fc.0.weight"].spec == wi.Constant(2.0)
    assert torch.equal(model.fc[2].weight, torch.full((16, 16), 0.25))


def test_strict_policies_refuse_unmatched_parameters_and_unused_rules():
    model = nets.mlp(2, 8)
    before = nets.snapshot(model)
    with pytest.raises(wi.InitError, match=r"No rule .* matches parameter '0\.bias'"):
        wi.init_model(model, wi.Policy([wi.Rule(wi.Zeros(), role="linear.weight")],
                                       strict=True))
    with pytest.raises(wi.InitError, match=r"matched no parameter: Rule\(name='nope\*'\)"):
        wi.init_model(model, wi.Policy([wi.Rule(wi.Zeros(), name="nope*"),
                                        wi.Rule(wi.Zeros())], strict=True))
    nets.assert_unchanged(model, before)
    plan = wi.init_model(model, wi.Policy([wi.Rule(wi.Zeros(), role="linear.weight")]))
    assert plan["0.bias"].kept and "no rule matched" in plan["0.bias"].note
    assert torch.equal(model[0].bias, before["0.bias"])


def test_unknown_parameters_are_kept_and_flagged():
    class WithScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.temperature = nn.Parameter(torch.tensor(3.0))

        def forward(self, x):
            return self.fc(x) / self.temperature

    model = WithScale()
    plan = wi.init_model(model)  # the input comes from fc, the first layer the forward calls
    row = plan["temperature"]
    assert row.role == "unknown" and row.kept and "does not know" in row.note
    assert "used by div" in row.note  # what the forward pass showed of it
    assert model.temperature.item() == 3.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"spec": "normal"}, "`spec` of a Rule must be"),
    ({"spec": wi.Zeros(), "role": "biass"}, "is not a role"),
    ({"spec": wi.Zeros(), "module": 3}, "`module` of a Rule"),
    ({"spec": wi.Zeros(), "name": 3}, "`name` of a Rule"),
])
def test_bad_rules_are_refused(kwargs, message):
    with pytest.raises(wi.InitError, match=message):
        wi.Rule(**kwargs)


def test_bad_policies_are_refused():
    with pytest.raises(wi.InitError, match=r"list of wi\.Rule"):
        wi.Policy(wi.Rule(wi.Zeros()))
    with pytest.raises(wi.InitError, match=r"must be a wi\.Rule"):
        wi.Policy([wi.Zeros()])
    with pytest.raises(wi.InitError, match="Bad options"):
        wi.Policy.preset("auto", residuals="zero")
    with pytest.raises(wi.InitError, match="`residual`"):
        wi.Policy.preset("auto", residual="half")
    with pytest.raises(wi.InitError, match="must return a weightinit Spec"):
        wi.init_model(nets.mlp(2, 4), wi.Policy([wi.Rule(lambda info: 0.1)]))


# --- the plan ----------------------------------------------------------------------------------
def test_plan_serializes_renders_and_reapplies():
    model = nets.ResNet()
    plan = wi.init_model(model, seed=3)
    data = json.loads(plan.to_json())
    assert data["policy"] == "auto" and data["seed"] == 3
    assert len(data["rows"]) == len(plan) == len(list(model.parameters()))
    for row, entry in zip(plan, data["rows"], strict=True):
        assert entry["name"] == row.name
        assert (entry["spec"] is None) == (row.spec is None)
        if row.spec is not None:
            assert wi.spec_from_dict(entry["spec"]) == row.spec
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    console.print(plan.table())
    text = console.file.getvalue()
    line = next(line for line in text.splitlines() if "layer1.0.bn2.weight" in line)
    assert "Constant(value=0.5)" in line and " end " in line
    assert "He(relu)" in text and "relu <- BatchNorm2d layer1.0.bn1" in text
    assert repr(plan).startswith("InitPlan(32 parameters")

    other = nets.ResNet()
    plan.apply(other)
    for name, value in model.state_dict().items():
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(value, other.state_dict()[name]), name
    with pytest.raises(wi.InitError, match="does not"):
        plan.apply(nets.mlp(2, 4))
    with pytest.raises(KeyError):
        plan["nope"]


def test_dry_run_plans_without_touching_the_model():
    model = nets.mlp(3, 8)
    before = nets.snapshot(model)
    plan = wi.init_model(model, dry_run=True)
    nets.assert_unchanged(model, before)
    assert all(row.spec is not None for row in plan)
    plan.apply(model)
    assert not torch.equal(model[0].weight, before["0.weight"])


def test_apply_refuses_meta_parameters():
    with torch.device("meta"):
        model = nets.mlp(2, 4)
    plan = wi.init_model(model, dry_run=True)
    assert plan["2.weight"].activation == "relu"  # discovery runs on meta models too
    with pytest.raises(wi.InitError, match="meta device"):
        plan.apply(model)


def test_a_tied_head_registered_first_still_gives_the_embedding_role():
    class HeadFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(16, 50, bias=False)
            self.embed = nn.Embedding(50, 16, padding_idx=0)
            self.head.weight = self.embed.weight

        def forward(self, ids):
            return self.head(torch.relu(self.embed(ids)))

    model = HeadFirst()
    plan = wi.init_model(model)  # token ids from embed, the first layer called
    assert plan.notes[0].startswith("Dataflow from one forward pass")
    assert len(plan) == 1
    row = plan["head.weight"]
    assert row.name == "embed.weight" and row.aliases == ("head.weight",)
    assert row.role == "embedding" and row.spec == wi.Normal(std=1 / 4)
    assert torch.equal(model.embed.weight[0], torch.zeros(16))  # the padding row


def test_attention_key_and_value_projections_get_their_own_feeds():
    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(8, 16), nn.Linear(8, 6), nn.Linear(8, 10)
            self.mha = nn.MultiheadAttention(16, 2, kdim=6, vdim=10, batch_first=True)

        def forward(self, x):
            return self.mha(self.q(x), torch.relu(self.k(x)), torch.tanh(self.v(x)))[0]

    plan = wi.init_model(Cross(), example_inputs=(torch.randn(2, 5, 8),), dry_run=True)
    assert plan["mha.q_proj_weight"].activation == "linear"
    assert plan["mha.k_proj_weight"].activation == "relu"
    assert plan["mha.v_proj_weight"].activation == "tanh"


def test_parameters_that_share_memory_are_refused():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 8), nn.Linear(4, 4)
            self.b.weight = nn.Parameter(self.a.weight.data[:4])  # a view of a's, not a tie

        def forward(self, x):
            return self.a(x).sum(-1, keepdim=True) + self.b(x)

    model = Two()
    before = {n: p.clone() for n, p in model.named_parameters()}
    with pytest.raises(wi.InitError, match=r"'a\.weight' and 'b\.weight' share memory"):
        wi.init_model(model, example_inputs=(torch.randn(2, 4),))
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


@pytest.mark.parametrize(("policy", "dtype"), [
    (wi.Policy.preset("gpt2", std=1e39), torch.float32),
    (wi.Policy([wi.Rule(wi.Uniform(-1e5, 1e5))]), torch.float16),
])
def test_values_that_overflow_the_dtype_are_refused_and_nothing_changes(policy, dtype):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(dtype)
    before = {n: p.clone() for n, p in model.named_parameters()}
    # Refused by the plan (values checked after the fill) or by the stream itself (the bound of
    # its widest variate beyond the dtype's range), whichever comes first.
    with pytest.raises(wi.InitError, match=f"overflow {dtype}|beyond {dtype}'s range"):
        wi.init_model(model, policy, example_inputs=(torch.randn(2, 4, dtype=dtype),))
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name
