"""diagnose: six planted pathologies each give their finding and nothing else at warning or
above; the same nets under "auto" are healthy; the model is left exactly as it was."""

from __future__ import annotations

import json
import math

import model_nets as nets
import pytest
import torch
from torch import nn

import weightinit as wi

BATCH = torch.randn(512, 256, generator=torch.Generator().manual_seed(1))


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _set_all(model: nn.Module, weight, bias=nn.init.zeros_) -> nn.Module:
    torch.manual_seed(0)
    for layer in _linears(model):
        weight(layer.weight)
        bias(layer.bias)
    return model


def _zeros():
    return _set_all(nets.mlp(8, 256), nn.init.zeros_)


def _tiny():
    return _set_all(nets.mlp(30, 256), lambda w: nn.init.normal_(w, std=0.01))


def _huge():
    return _set_all(nets.mlp(30, 256), lambda w: nn.init.normal_(w, std=1.0))


def _glorot():
    return _set_all(nets.mlp(50, 256), nn.init.xavier_uniform_)


def _killing_bias():
    model = nets.mlp(10, 256)
    wi.init_model(model)
    nn.init.constant_(model[8].bias, -3.0)  # before the ReLU that follows layer 8
    return model


def _uninitialized():
    model = nets.mlp(10, 256)
    wi.init_model(model)
    # What torch.empty can leave: arbitrary bit patterns (huge values, NaN, denormals).
    # Written explicitly, so the test does not depend on what the allocator returns.
    bits = torch.randint(-2**31, 2**31 - 1, (256, 256), dtype=torch.int32,
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model[8].weight.copy_(bits.view(torch.float32))
    return model


PATHOLOGIES = {
    # name: (model factory, the findings it must give, those it may give at warning or above)
    "all-zero init": (_zeros, {"symmetry", "dead_gradient"}, set()),
    "N(0, 0.01), 30 ReLU layers": (_tiny, {"forward_vanishing"},
                                   {"backward_vanishing", "weight_scale"}),
    "N(0, 1), 30 ReLU layers": (_huge, {"forward_exploding"},
                                {"backward_exploding", "weight_scale"}),
    "Glorot, 50 ReLU layers": (_glorot, {"forward_vanishing"}, {"backward_vanishing"}),
    "bias -3 before a ReLU": (_killing_bias, {"dead_units"}, {"killing_bias"}),
    "a layer left as torch.empty": (_uninitialized, {"uninitialized"}, set()),
}


@pytest.mark.parametrize("name", list(PATHOLOGIES))
def test_each_pathology_gives_its_finding_and_nothing_spurious(name):
    factory, required, allowed = PATHOLOGIES[name]
    diagnosis = wi.diagnose(factory(), BATCH)
    found = diagnosis.kinds("warning")
    assert required <= found, (name, found)
    assert found <= required | allowed, (name, found - required - allowed)
    assert not diagnosis.healthy
    for finding in diagnosis.findings:
        assert finding.message and finding.fix and finding.code
        assert "If ignored" in finding.message, finding.message  # what happens to training


@pytest.mark.parametrize("depth", [8, 10, 30, 50])
def test_the_same_nets_under_auto_are_healthy(depth):
    model = nets.mlp(depth, 256)
    wi.init_model(model)
    diagnosis = wi.diagnose(model, BATCH)
    assert diagnosis.healthy, [(f.kind, f.message) for f in diagnosis.findings]


def test_a_resnet_under_auto_is_healthy_and_torch_defaults_are_not():
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    model = nets.ResNet()
    wi.init_model(model)
    assert wi.diagnose(model, x).healthy
    torch.manual_seed(0)
    # torch's constructors: x0.41 per ReLU layer in the signal (the biases hold the RMS up):
    # the signal is lost over 30 layers, an error; the weight scale behind it is "info".
    default = wi.diagnose(nets.mlp(30, 256), BATCH)
    assert {"forward_vanishing", "backward_vanishing"} <= default.kinds("error")
    assert "weight_scale" in default.kinds("info") - default.kinds("warning")


def test_numbers_are_right():
    model = nets.mlp(6, 256)
    wi.init_model(model)
    diagnosis = wi.diagnose(model, BATCH)
    first = diagnosis["0"]
    with torch.no_grad():
        out = model[0](BATCH)
    # Reductions run in float32 (cascaded sums, relative error ~1e-7 at this size).
    assert first.out_rms == pytest.approx(float(out.double().pow(2).mean().sqrt()), rel=1e-6)
    assert first.out_mean == pytest.approx(float(out.double().mean()), abs=1e-6)
    assert first.out_std == pytest.approx(float(out.double().std(unbiased=False)), rel=1e-5)
    assert first.activation == "linear" and diagnosis["2"].activation == "relu"
    assert diagnosis["2"].source == "Linear 0"
    # The synthetic loss sends N(0, 1) noise back from the output: gradient RMS 1 there.
    assert diagnosis["10"].grad_out_rms == pytest.approx(1.0, rel=0.05)  # 5120 values: 5 sigma
    assert first.recommended_std == pytest.approx(1 / 16)  # LeCun on the input, fan_in 256
    assert first.weight_std == pytest.approx(1 / 16, rel=0.02)  # 65536 values: 5 sigma
    assert diagnosis.loss_kind == "synthetic"
    assert sum(first.hist_counts) == 4096 and len(first.hist_edges) == 41


def test_dead_and_saturated_fractions():
    model = nets.mlp(4, 64, nn.Tanh)
    _set_all(model, lambda w: nn.init.normal_(w, std=1.0))
    diagnosis = wi.diagnose(model, BATCH[:, :64])
    assert diagnosis["2"].saturated_fraction > 0.5
    assert "saturation" in diagnosis.kinds()
    relu = nets.mlp(3, 64)
    wi.init_model(relu)
    nn.init.constant_(relu[0].bias, -100.0)  # every unit after layer 0 is dead
    diagnosis = wi.diagnose(relu, BATCH[:, :64])
    assert diagnosis["2"].dead_fraction == 1.0
    finding = next(f for f in diagnosis.findings if f.kind == "dead_units")
    assert finding.layer == "0" and finding.severity == "error"


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_the_model_is_left_exactly_as_it_was(mode):
    model = nets.ResNet()
    getattr(model, mode)()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    model(x).sum().backward()  # grads present; BatchNorm stats moved in train mode
    before = nets.snapshot(model)
    rng = torch.get_rng_state()
    wi.diagnose(model, x)
    nets.assert_unchanged(model, before)
    assert torch.equal(rng, torch.get_rng_state())


def test_targets_and_loss_functions():
    model = nets.mlp(3, 32, d_in=64, d_out=10)
    wi.init_model(model)
    x, y = BATCH[:64, :64], torch.arange(64) % 10
    assert wi.diagnose(model, x, target=y).loss_kind == "cross_entropy"
    assert wi.diagnose(model, x, target=torch.zeros(64, 10)).loss_kind == "mse"
    custom = wi.diagnose(model, x, loss_fn=lambda out: out.pow(2).mean())
    assert custom.loss_kind == "<lambda>" and custom["0"].grad_out_rms > 0


def test_json_is_strict_and_finite():
    diagnosis = wi.diagnose(_uninitialized(), BATCH)
    data = json.loads(diagnosis.to_json())
    assert data["healthy"] is False
    assert data["findings"][0]["kind"] == "uninitialized"
    for layer in data["layers"]:
        for value in layer.values():
            assert not (isinstance(value, float) and not math.isfinite(value))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch": torch.randn(8, 7)}, "forward pass on `batch` failed"),
    ({"batch": torch.full((8, 256), float("inf"))}, "NaN/Inf"),
    ({"batch": torch.empty(0, 256)}, "empty"),
    ({"batch": BATCH, "target": torch.zeros(3)}, "The loss failed"),
    ({"batch": BATCH, "loss_fn": 3}, "`loss_fn` must be callable"),
    ({"batch": BATCH, "loss_fn": lambda out: out}, "scalar"),
])
@pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")  # torch, on the bad target
def test_bad_inputs_are_refused_and_change_nothing(kwargs, message):
    model = nets.mlp(3, 256)
    before = nets.snapshot(model)
    with pytest.raises(wi.InitError, match=message):
        wi.diagnose(model, **kwargs)
    nets.assert_unchanged(model, before)
    with pytest.raises(wi.InitError, match=r"torch\.nn\.Module"):
        wi.diagnose("model", BATCH)


def test_a_hostile_module_name_is_escaped_end_to_end(tmp_path):
    pytest.importorskip("matplotlib")
    model = nn.Sequential()
    model.add_module("<script>alert(1)</script>", nn.Linear(16, 16))
    model.add_module("relu", nn.ReLU())
    model.add_module("out", nn.Linear(16, 4))
    diagnosis = wi.diagnose(model, torch.randn(32, 16))
    assert diagnosis.layers[0].name == "<script>alert(1)</script>"
    path = diagnosis.save_html(str(tmp_path / "r.html"))
    with open(path, encoding="utf-8") as handle:
        html = handle.read()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html


class _Residual(nn.Module):
    """16 blocks x + W2 relu(W1 x): the stream doubles its second moment per block when the
    branches are variance-preserving and unscaled."""

    def __init__(self, blocks: int = 16, width: int = 128) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
            for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


def test_a_growing_residual_stream_is_found_and_auto_scales_it_away():
    x = torch.randn(256, 128, generator=torch.Generator().manual_seed(4))
    unscaled = _Residual()
    wi.init_model(unscaled, wi.Policy.preset("auto", residual="none"))
    diagnosis = wi.diagnose(unscaled, x)
    growth = next(f for f in diagnosis.findings if f.kind == "residual_growth")
    assert growth.numbers["ratio"] > 10  # sqrt(2)^15 = 181 expected
    scaled = _Residual()
    plan = wi.init_model(scaled)  # branch ends x 1/sqrt(16)
    assert sum(row.residual for row in plan) == 16
    assert "residual_growth" not in wi.diagnose(scaled, x).kinds()
