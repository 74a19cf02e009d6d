"""Discovery: which activation feeds each layer, where residual branches end, no side effects."""

from __future__ import annotations

import math

import model_nets as nets
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

import weightinit as wi


def _weights(plan):
    return [row for row in plan if row.role.endswith("weight") and row.role != "norm.weight"]


def _second_moment(fn) -> float:
    """E[phi(z)^2], z ~ N(0, 1), by scipy's adaptive quadrature split at 0 (independent of
    weightinit's Gauss-Legendre)."""
    def integrand(z: float) -> float:
        return fn(z) ** 2 * scipy.stats.norm.pdf(z)

    # |z| > 40 carries less than 1e-300 of the Gaussian mass.
    left = scipy.integrate.quad(integrand, -40.0, 0.0, epsabs=1e-14, epsrel=1e-12)[0]
    right = scipy.integrate.quad(integrand, 0.0, 40.0, epsabs=1e-14, epsrel=1e-12)[0]
    return left + right


def test_mixed_mlp_feeds_and_stds():
    model = nets.Mixed(width=32)
    plan = wi.init_model(model)
    weights = _weights(plan)
    assert [row.activation for row in weights] == list(nets.Mixed.FEEDS)
    # Each weight's std is gain(feed) / sqrt(fan_in), the gain from an independent integral.
    closed = {"linear": 1.0, "relu": 0.5,
              "tanh": _second_moment(math.tanh),
              "gelu": _second_moment(lambda z: z * scipy.stats.norm.cdf(z)),
              "silu": _second_moment(lambda z: z * scipy.special.expit(z))}
    for row in weights:
        expected = 1 / math.sqrt(closed[row.activation] * 32)
        assert row.std == pytest.approx(expected, rel=1e-6), row.name
        assert row.fans == wi.Fans(32, 32)
    assert weights[5].source.startswith("Linear fc.4")  # silu written as x * sigmoid(x)
    assert all(row.spec == wi.Zeros() for row in plan if row.role == "linear.bias")


def test_functional_parameters_and_custom_functions_are_read_from_the_code():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d = (nn.Linear(64, 64) for _ in range(4))

        def forward(self, x):
            x = F.leaky_relu(self.a(x), 0.2)
            x = self.b(x)
            x = torch.sin(x) + 0.5 * x  # no name for this one: integrated as written
            x = self.c(x)
            return self.d(x * torch.tanh(F.softplus(x)))  # mish, written out

    plan = wi.init_model(Net())
    rows = {row.name: row for row in plan}
    assert rows["b.weight"].activation == "leaky_relu(negative_slope=0.2)"
    assert rows["b.weight"].std == pytest.approx(math.sqrt(2 / 1.04 / 64), rel=1e-12)
    custom = rows["c.weight"]
    assert "sin" in custom.activation and custom.activation != "unknown"
    moment = _second_moment(lambda z: math.sin(z) + 0.5 * z)
    assert custom.std == pytest.approx(1 / math.sqrt(moment * 64), rel=1e-6)
    assert rows["d.weight"].activation == "mish"


def test_gated_unit_multiplies_the_two_moments():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate, self.up, self.down = nn.Linear(16, 32), nn.Linear(16, 32), nn.Linear(32, 16)

        def forward(self, x):
            return self.down(F.silu(self.gate(x)) * self.up(x))

    row = wi.init_model(Gated())["down.weight"]
    assert row.activation == "silu*linear"
    moment = _second_moment(lambda z: z * scipy.special.expit(z))
    assert row.std == pytest.approx(1 / math.sqrt(moment * 32), rel=1e-6)


def test_resnet_activation_and_residual_columns():
    model = nets.ResNet()
    plan = wi.init_model(model)
    assert "4 residual branches found." in plan.notes
    for row in plan:
        if row.role == "conv.weight":
            assert row.activation == ("linear" if row.name == "conv1.weight" else "relu"), row
        if row.role in ("norm.weight", "conv.weight", "linear.weight"):
            ends = row.name.endswith("bn2.weight")
            assert row.residual == ends, row.name
    assert plan["fc.weight"].activation == "relu"  # through avgpool and flatten
    assert plan["layer2.0.downsample.0.weight"].residual is False  # the shortcut side
    # auto scales the norm that ends each branch by 1/sqrt(4) and leaves the others at 1.
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            value = 0.5 if name.endswith("bn2") else 1.0
            assert torch.equal(module.weight, torch.full_like(module.weight, value)), name
    zero = wi.init_model(nets.ResNet(), wi.Policy.preset("auto", residual="zero"))
    assert zero["layer1.0.bn2.weight"].spec == wi.Zeros()


def test_layers_and_order_follow_execution_not_registration():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.last = nn.Linear(8, 2)
            self.first = nn.Linear(4, 8)

        def forward(self, x):
            return self.last(torch.relu(self.first(x)))

    plan = wi.init_model(Backwards(), example_inputs=(torch.randn(3, 4),))
    assert [row.name for row in plan] == ["first.weight", "first.bias", "last.weight",
                                          "last.bias"]
    assert plan["last.weight"].activation == "relu"


def test_unused_and_reused_layers_are_noted():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = nn.Linear(8, 8)
            self.spare = nn.Linear(8, 8)

        def forward(self, x):
            return self.shared(torch.tanh(self.shared(x)))

    plan = wi.init_model(Net(), example_inputs=(torch.randn(2, 8),))
    assert plan["shared.weight"].note.startswith("called 2x")
    assert "tanh" in plan["shared.weight"].note  # the second call is fed by tanh
    assert plan["spare.weight"].activation == "unused"
    assert "not called" in plan["spare.weight"].note


def test_no_forward_falls_back_to_module_order_and_says_so():
    class Odd(nn.Module):  # the first layer (a LayerNorm) does not give the input shape
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(8)
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            return self.fc(torch.relu(self.norm(x)))

    with pytest.warns(wi.InitWarning, match="no forward pass ran"):
        plan = wi.init_model(Odd())
    assert any("No forward pass" in note for note in plan.notes)
    assert [row.activation for row in plan] == ["unknown"] * 4
    assert plan["fc.weight"].spec == wi.LeCun()

    class NeedsDict(nn.Module):  # a synthesized input the forward rejects
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, batch):
            return self.fc(batch["x"])

    with pytest.warns(wi.InitWarning, match="no forward pass ran"):
        plan = wi.init_model(NeedsDict())
    assert any("synthesized input" in note and "failed" in note for note in plan.notes)
    good = wi.init_model(NeedsDict(), example_inputs={"batch": {"x": torch.randn(2, 8)}})
    assert good["fc.weight"].activation == "linear"


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_discovery_has_no_side_effects(mode):
    model = nets.ResNet()
    getattr(model, mode)()
    out = model(torch.randn(2, 3, 16, 16)).sum()
    out.backward()  # grads present, BatchNorm stats moved (in train mode)
    inputs = (torch.randn(2, 3, 16, 16),)
    before = nets.snapshot(model)
    rng = torch.get_rng_state()
    wi.init_model(model, dry_run=True, example_inputs=inputs)
    nets.assert_unchanged(model, before)
    assert torch.equal(rng, torch.get_rng_state())


def test_data_dependent_code_runs_for_real_without_side_effects():
    class Branchy(nn.Module):  # `if` on a value: the meta device cannot run this
        def __init__(self):
            super().__init__()
            self.fc1, self.bn, self.fc2 = nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Linear(6, 6)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            h = self.drop(self.bn(self.fc1(x)))
            h = torch.relu(h) if float(h.sum()) > -1e9 else h
            return self.fc2(h)

    model = Branchy().train()
    inputs = (torch.randn(4, 6),)
    before = nets.snapshot(model)
    rng = torch.get_rng_state()
    plan = wi.init_model(model, dry_run=True, example_inputs=inputs)
    assert any("(real)" in note for note in plan.notes)
    assert plan["fc2.weight"].activation == "relu"
    nets.assert_unchanged(model, before)
    assert torch.equal(rng, torch.get_rng_state())


def test_module_with_tuple_output_and_kwargs_inputs():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(4, 8, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, *, seq):
            out, _ = self.rnn(seq)
            return self.head(torch.tanh(out[:, -1]))

    plan = wi.init_model(Net(), example_inputs={"seq": torch.randn(2, 5, 4)})
    assert plan["head.weight"].activation == "tanh"
    assert plan["rnn.weight_hh_l0"].role == "rnn.weight_hh"
    assert plan["rnn.weight_ih_l0"].fans == wi.Fans(4, 8)  # per gate


def test_small_cpu_models_are_probed_for_real_big_ones_on_meta(monkeypatch):
    from weightinit.model import _probe

    real = wi.init_model(nets.ResNet(), dry_run=True)
    assert real.notes[0].startswith("Dataflow from one forward pass (real)")
    monkeypatch.setattr(_probe, "REAL_FIRST_BELOW", 0)  # as if the model were big
    meta = wi.init_model(nets.ResNet(), dry_run=True)
    assert meta.notes[0].startswith("Dataflow from one forward pass (meta)")
    assert [(r.name, r.activation, r.source, r.residual, r.spec) for r in real] == [
        (r.name, r.activation, r.source, r.residual, r.spec) for r in meta]


def test_the_probe_puts_python_and_numpy_rng_back():
    import random

    import numpy as np

    class Noisy(nn.Module):  # draws from the global generators in its forward
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) * (random.random() + float(np.random.rand()))  # noqa: NPY002

    python, numpy = random.getstate(), np.random.get_state()  # noqa: NPY002
    wi.init_model(Noisy(), dry_run=True)
    assert random.getstate() == python
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy[0] and (after[1] == numpy[1]).all() and after[2:] == numpy[2:]


# --- what the forward pass shows, read right (review findings) ------------------------------
def test_a_weight_used_through_dot_t_is_a_linear_weight():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 16))
            self.v = nn.Parameter(torch.randn(4, 8))

        def forward(self, x):
            return torch.relu(x @ self.w.T) @ self.v.mT

    plan = wi.init_model(M(), example_inputs=(torch.randn(2, 16),), dry_run=True)
    assert plan["w"].role == "linear.weight" and tuple(plan["w"].fans)[:2] == (16, 8)
    assert plan["v"].role == "linear.weight" and plan["v"].activation == "relu"


def test_norm_offsets_at_real_widths_and_nonlinear_weights():
    from weightinit.model._norms import norm_offset

    class Offset(nn.Module):
        def __init__(self, dim, nonlinear=False):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(dim))
            self.nonlinear = nonlinear

        def forward(self, x):
            x_hat = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
            return x_hat * (torch.exp(self.weight) if self.nonlinear else 1 + self.weight)

    assert norm_offset(Offset(3072), "weight", (8, 512, 3072)) == 1.0  # Gemma-7B's width
    assert norm_offset(Offset(16, nonlinear=True), "weight", (2, 4, 16)) is None
    assert norm_offset(nn.GroupNorm(2, 8), "weight", (16, 8, 64, 64)) == 0.0


def test_a_softmax_classifier_is_not_a_router_and_its_bias_is_not_a_score_bias():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.Softmax(-1))
    plan = wi.init_model(model, dry_run=True)
    assert "router" not in plan["2.weight"].rule and not plan["2.bias"].kept


def test_a_trained_bias_is_not_a_deliberate_offset():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16))
    with torch.no_grad():  # a small drift among values of both signs, as training leaves
        model[0].bias.copy_(torch.linspace(-0.2, 0.5, 16))
    plan = wi.init_model(model, dry_run=True)
    assert not plan["0.bias"].kept


def test_an_embedding_used_as_the_output_weight_is_tied():
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.norm = nn.Embedding(50, 64), nn.LayerNorm(64)

        def forward(self, ids):
            return nn.functional.linear(self.norm(self.emb(ids)), self.emb.weight)

    assert wi.init_model(LM(), dry_run=True)["emb.weight"].std == pytest.approx(1 / 8)


def test_positional_groups_of_a_functional_transposed_conv():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 2, 3, 3))  # (in, out/groups, k, k), groups 4

        def forward(self, x):
            return nn.functional.conv_transpose2d(x, self.w, None, 1, 0, 0, 4)

    plan = wi.init_model(Up(), example_inputs=(torch.randn(1, 8, 5, 5),), dry_run=True)
    row = plan["w"]
    assert row.role == "conv_transpose.weight" and row.fans == wi.compute_fans(
        (8, 2, 3, 3), "conv_transpose", groups=4)


def test_the_input_is_synthesized_for_the_first_layer_called():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc2, self.fc1 = nn.Linear(64, 10), nn.Linear(32, 64)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    plan = wi.init_model(Reversed(), dry_run=True)
    assert "(4, 32)" in plan.notes[0] and plan["fc2.weight"].activation == "relu"


def test_sliced_and_gated_branches_are_residual_branches():
    class Causal(nn.Module):  # a TCN block: x + relu(conv(x))[..., :-pad]
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(8, 8, 3, padding=2)

        def forward(self, x):
            return x + torch.relu(self.conv(x))[..., :-2]

    class Gated(nn.Module):  # x + a * sigmoid(g), a and g halves of one layer's output
        def __init__(self):
            super().__init__()
            self.f = nn.Linear(8, 16)

        def forward(self, x):
            a, g = self.f(x).chunk(2, dim=-1)
            return x + a * torch.sigmoid(g)

    for block, shape in ((Causal, (2, 8, 16)), (Gated, (2, 8))):
        model = nn.Sequential(block(), block(), block())
        plan = wi.init_model(model, example_inputs=(torch.randn(*shape),), dry_run=True)
        assert "3 residual branches found." in plan.notes, (block.__name__, plan.notes)
