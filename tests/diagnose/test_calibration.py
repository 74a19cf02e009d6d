"""diagnose on standard practice (issue 16): severities mean what happens to training. Info:
differs from variance-preserving but trains; warning: measurably slower or worse; error: cannot
train as it stands. Transformers with their own N(0, 0.02) init, the gpt2 preset and a tanh MLP
with torch's defaults are healthy; nets that do not train are errors. The training runs here
repeat, on one seed, measurements recorded in weightinit.diagnose._calibration."""

from __future__ import annotations

import pytest
import torch
import zoo_models
from torch import nn

import weightinit as wi
from weightinit.diagnose._calibration import DEAD, EXPLODE, SATURATED, VANISH, grade
from weightinit.studies import load_digits, mlp, train

# Test accuracy on digits' 359 held-out samples: binomial standard error 0.012 at 0.95 and
# 0.025 at 0.65, so each accuracy bound below is 4 or more standard errors from what was
# measured (seed 0, one thread: the run is deterministic; the margin covers other CPUs).


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _default(depth: int, activation: type[nn.Module], seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)  # torch's constructors draw the default init
    return mlp(depth, 64, activation)


def _auto(depth: int, activation: type[nn.Module]) -> nn.Sequential:
    model = _default(depth, activation)
    wi.init_model(model)
    return model


def test_the_ladder():
    assert [grade(r, VANISH, below=True) for r in (0.5, 0.05, 5e-3, 5e-4)] == [
        None, "info", "warning", "error"]
    assert [grade(r, EXPLODE, below=False) for r in (2.0, 5.0, 50.0, 500.0)] == [
        None, "info", "warning", "error"]
    assert [grade(f, DEAD, below=False) for f in (0.5, 0.7, 0.95, 1.0)] == [
        None, "info", "warning", "error"]
    assert [grade(f, SATURATED, below=False) for f in (0.1, 0.3, 0.85)] == [
        None, "warning", "error"]


@pytest.mark.parametrize("name", ["gpt2", "bert", "llama"])
def test_transformers_with_their_own_init_are_healthy(name):
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model, inputs = getattr(zoo_models, name)()
    diagnosis = wi.diagnose(model.eval(), inputs)
    assert diagnosis.healthy, [(f.kind, f.severity, f.message) for f in diagnosis.findings]
    # N(0, 0.02) is far below gain / sqrt(fan_in) at these widths: said, as info.
    scale = [f for f in diagnosis.findings if f.kind == "weight_scale"]
    assert scale and scale[0].severity == "info" and "If ignored" in scale[0].message


def test_the_gpt2_preset_is_healthy():
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model, inputs = zoo_models.gpt2()
    wi.init_model(model, "gpt2", example_inputs=inputs)
    diagnosis = wi.diagnose(model.eval(), inputs)
    assert diagnosis.healthy, [(f.kind, f.severity, f.message) for f in diagnosis.findings]


def test_a_tanh_mlp_with_torch_defaults_is_healthy_and_trains(digits):
    model = _default(5, nn.Tanh)
    diagnosis = wi.diagnose(model, digits.x_train[:512])
    assert diagnosis.healthy and diagnosis.worst == "info", [
        (f.kind, f.severity) for f in diagnosis.findings]
    assert "weight_scale" in diagnosis.kinds("info")  # std 0.35x the tanh-preserving one
    assert train(model, digits).test_accuracy >= 0.9  # measured 0.950 (auto: 0.955)


def test_a_warning_means_measurably_worse_training(digits):
    model = _default(10, nn.Tanh)  # x0.58 per layer: the signal falls 180x over 10 layers
    diagnosis = wi.diagnose(model, digits.x_train[:512])
    assert diagnosis.worst == "warning" and not diagnosis.healthy
    assert {"forward_vanishing", "backward_vanishing"} <= diagnosis.kinds("warning")
    worse, better = train(model, digits), train(_auto(10, nn.Tanh), digits)
    # Measured 0.655 against 0.942: 0.29 apart, the bound 0.1.
    assert better.test_accuracy - worse.test_accuracy >= 0.1


def test_an_error_means_it_does_not_train(digits):
    model = _default(10, nn.ReLU)
    diagnosis = wi.diagnose(model, digits.x_train[:512])
    assert "forward_vanishing" in diagnosis.kinds("error")
    vanishing = next(f for f in diagnosis.findings if f.kind == "forward_vanishing")
    # The biases keep the RMS up (x0.12 over the chain); the signal is what vanishes.
    assert vanishing.numbers["signal"] == 1.0 and vanishing.numbers["ratio"] < 1e-3
    assert train(model, digits).test_accuracy <= 0.2  # measured 0.086: chance is 0.1


def test_genuinely_broken_nets_are_errors():
    x = torch.randn(512, 256, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    tiny = mlp(30, 256, d_in=256)
    zeros = mlp(8, 256, d_in=256)
    with torch.no_grad():
        for layer in tiny:
            if isinstance(layer, nn.Linear):
                layer.weight.normal_(0.0, 0.01)
                layer.bias.zero_()
        for p in zeros.parameters():
            p.zero_()
    assert wi.diagnose(tiny, x).worst == "error"
    assert {"symmetry", "dead_gradient"} <= wi.diagnose(zeros, x).kinds("error")


def _plain_cnn() -> nn.Sequential:
    """The shootout's CNN: 12 conv3x3 + ReLU (16/32/64 channels at 8x8, 4x4, 2x2), max
    pooling between stages, global average pooling, a Linear head; no norm, no residual."""
    layers: list[nn.Module] = []
    channels_in = 1
    for stage, channels in enumerate((16, 32, 64)):
        if stage:
            layers.append(nn.MaxPool2d(2))
        for _ in range(4):
            layers += [nn.Conv2d(channels_in, channels, 3, padding=1), nn.ReLU()]
            channels_in = channels
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def test_the_plain_cnn_that_failed_the_shootout_is_an_error(digits):
    # With torch's default init it ended at validation cross-entropy 1.77 +- 0.31 (auto:
    # 0.47 +- 0.02). Its RMS falls only ~8x (the biases); its signal 1e6x.
    torch.manual_seed(0)
    model = _plain_cnn()
    diagnosis = wi.diagnose(model, digits.x_train[:512].reshape(-1, 1, 8, 8))
    assert "forward_vanishing" in diagnosis.kinds("error")
    wi.init_model(model)
    assert wi.diagnose(model, digits.x_train[:512].reshape(-1, 1, 8, 8)).healthy


def test_the_signal_is_the_std_across_the_batch():
    model = nn.Sequential(nn.Linear(32, 64))
    x = torch.randn(256, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model[0].bias.fill_(100.0)  # RMS ~100, signal unchanged
        out = model(x).double()
    layer = wi.diagnose(model, x)["0"]
    # The float64 reference; the library's cheap form is exact to float32 rounding here, and
    # switches to the centered float64 form where the bias dominates (as it does here).
    assert layer.out_signal == pytest.approx(float(out.var(0, correction=0).mean().sqrt()),
                                             rel=1e-6)
    assert layer.out_rms > 50 * layer.out_signal


@pytest.mark.parametrize("scale", [3.0, 6.0])
def test_saturation_severity_follows_the_measurements(digits, scale):
    model = _auto(5, nn.Tanh)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(scale)
    found = next(f for f in wi.diagnose(model, digits.x_train[:512]).findings
                 if f.kind == "saturation")
    # Measured: x3 saturates 60% of the inputs (acc 0.81 vs 0.955), x6 81% (training loss
    # 0.74 after 460 steps where auto reaches 0.018).
    assert found.severity == ("warning" if scale == 3.0 else "error")
    assert "If ignored" in found.message
