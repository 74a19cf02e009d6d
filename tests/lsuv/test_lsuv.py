"""LSUV: every calibrated layer lands within tol on the batch, reproducibly, or nothing changes."""

from __future__ import annotations

import io
import json

import model_nets as nets
import pytest
import torch
from torch import nn

import weightinit as wi
from weightinit.studies import load_digits, mlp, train

BATCH = torch.randn(256, 128, generator=torch.Generator().manual_seed(1))


def first_call_stds(model: nn.Module, names: list[str], *args, **kwargs) -> dict[str, float]:
    """Measured independently of lsuv: each named module's first output std, eval mode."""
    modules = dict(model.named_modules())
    found: dict[str, float] = {}
    handles = []
    for name in names:
        def hook(module, inputs, output, name=name):
            if name not in found:
                out = output[0] if isinstance(output, tuple) else output
                found[name] = float(out.detach().double().std())
        handles.append(modules[name].register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        model.train(was)
        for handle in handles:
            handle.remove()
    return found


def assert_calibrated(model, report, *args, **kwargs):
    names = [layer.name for layer in report.layers]
    stds = first_call_stds(model, names, *args, **kwargs)
    assert set(stds) == set(names)
    for name, std in stds.items():
        assert abs(std - report.target_std) <= report.tol, (name, std)
    assert report.converged


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh, nn.GELU])
def test_deep_mlps_land_on_the_target_and_a_second_call_is_a_no_op(activation):
    model = nets.mlp(30, 128, activation)
    report = wi.lsuv(model, BATCH)
    assert len(report) == 30
    assert_calibrated(model, report, BATCH)
    # A Sequential chain keeps the activation in front of the next layer: one forward pass,
    # each layer run once to measure it and once to move on (the last only to measure).
    assert report.forwards == 1 and report.layer_calls == 2 * 30 - 1
    state = {k: v.clone() for k, v in model.state_dict().items()}
    again = wi.lsuv(model, BATCH)
    assert_calibrated(model, again, BATCH)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_other_architectures_use_one_forward_per_layer_stopped_at_that_layer():
    class Wrapped(nn.Module):  # not a Sequential: the chain shortcut does not apply
        def __init__(self):
            super().__init__()
            self.body = nets.mlp(10, 128)

        def forward(self, x):
            return self.body(x)

    model = Wrapped()
    report = wi.lsuv(model, BATCH)
    # Layer k's pass stops when it returns: 10 * 11 / 2 layer calls (5.5 full forwards).
    assert report.forwards == 10 and report.layer_calls == 10 * 11 // 2
    assert_calibrated(model, report, BATCH)
    # Both ways give the same bits: the same Sequential through partial forwards (a keyword
    # argument turns the chain shortcut off) and as a chain.
    partial, chained = nets.mlp(10, 128), nets.mlp(10, 128)
    assert wi.lsuv(partial, {"input": BATCH}).forwards == 10
    assert wi.lsuv(chained, BATCH).forwards == 1
    for name, value in partial.state_dict().items():
        assert torch.equal(value, chained.state_dict()[name]), name


def test_cnn_with_batchnorm_and_residuals():
    model = nets.ResNet().train()
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    report = wi.lsuv(model, x)
    assert [layer.name for layer in report.layers][:3] == ["conv1", "layer1.0.conv1",
                                                            "layer1.0.conv2"]
    assert_calibrated(model, report, x)
    assert model.training  # the mode is restored
    for name, value in model.named_buffers():  # eval-mode passes: running stats untouched
        assert torch.equal(value, buffers[name]), name


def test_small_transformers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transformers = pytest.importorskip(
        "transformers", reason="the [hf] extra (pip install 'weightinit[hf]') is not installed")

    ids = torch.randint(0, 100, (4, 32), generator=torch.Generator().manual_seed(0))
    models = [
        transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=64)),
        transformers.BertModel(transformers.BertConfig(
            num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
            vocab_size=100)),
    ]
    for model in models:
        report = wi.lsuv(model, (ids,))
        names = [layer.name for layer in report.layers]
        assert any("c_attn" in n or "query" in n for n in names)  # attention projections
        assert_calibrated(model, report, ids)


def test_torch_attention_is_calibrated_through_out_proj():
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
    x = torch.randn(8, 10, 32, generator=torch.Generator().manual_seed(3))
    report = wi.lsuv(layer, x)
    assert [x.name for x in report.layers] == ["self_attn.out_proj", "linear1", "linear2"]
    # The packed in_proj keeps its orthogonal pre-init (applied functionally, no module call).
    w = layer.self_attn.in_proj_weight.detach().double()
    assert torch.allclose(w.T @ w, torch.eye(32, dtype=torch.float64), atol=1e-5)
    stds = first_call_stds(layer, ["self_attn", "linear1", "linear2"], x)
    assert all(abs(std - 1) <= 0.02 for std in stds.values()), stds


def test_layers_called_twice_are_calibrated_on_their_first_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = nn.Linear(128, 128)
            self.head = nn.Linear(128, 4)

        def forward(self, x):
            return self.head(torch.tanh(self.shared(torch.relu(self.shared(x)))))

    model = Twice()
    report = wi.lsuv(model, BATCH)
    assert [x.name for x in report.layers] == ["shared", "head"]
    assert_calibrated(model, report, BATCH)


def test_layers_not_proportional_to_their_weight_iterate():
    class Bi(nn.Module):  # Bilinear is linear in W, but not on the exact list: it iterates
        def __init__(self):
            super().__init__()
            self.bi = nn.Bilinear(16, 16, 32)

        def forward(self, x):
            return self.bi(x, torch.tanh(x))

    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(4))
    report = wi.lsuv(Bi(), x)
    assert report["bi"].iterations >= 2 and report["bi"].converged and report["bi"].note == ""
    capped = wi.lsuv(Bi(), x, max_iter=1)
    assert capped["bi"].iterations == 1 and not capped.converged


def test_same_seed_same_bits_and_the_plan_reproduces_them():
    a, b, c, d = (nets.mlp(6, 128) for _ in range(4))
    report = wi.lsuv(a, BATCH, seed=3)
    wi.lsuv(b, BATCH, seed=3)
    plan = wi.init_model(c, "lsuv", example_inputs=(BATCH,), seed=3)
    report.plan.apply(d)  # no batch needed: Orthogonal(gain=g) per calibrated weight
    for name, value in a.state_dict().items():
        for other in (b, c, d):
            assert torch.equal(value, other.state_dict()[name]), name
    assert plan.policy == "lsuv"
    assert isinstance(plan["0.weight"].spec, wi.Orthogonal)
    assert plan["0.weight"].spec.gain == report["0"].gain
    other_seed = nets.mlp(6, 128)
    wi.lsuv(other_seed, BATCH, seed=4)
    assert not torch.equal(other_seed[0].weight, a[0].weight)


def test_a_saved_lsuv_plan_reproduces_the_calibration_on_a_fresh_model():
    calibrated, fresh = nets.mlp(6, 128), nets.mlp(6, 128)
    report = wi.lsuv(calibrated, BATCH, seed=3)
    text = report.plan.to_json()
    wi.InitPlan.from_json(text).apply(fresh)  # no batch: the gains are in the plan
    for name, value in calibrated.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[name]), name
    assert wi.InitPlan.from_json(text).rows == report.plan.rows


def test_report_renders_and_serializes():
    report = wi.lsuv(nets.mlp(3, 128), BATCH)
    data = json.loads(json.dumps(report.to_dict()))
    assert [x["name"] for x in data["layers"]] == ["0", "2", "4"]
    assert data["converged"] is True and data["plan"]["policy"] == "lsuv"
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120)
    console.print(report.table())
    assert "LSUV" in console.file.getvalue()
    with pytest.raises(KeyError):
        report["nope"]


@pytest.mark.parametrize(("batch", "message"), [
    (torch.full((8, 128), float("nan")), "NaN/Inf"),
    (torch.empty(0, 128), "empty"),
    (torch.randn(8, 7), "forward pass on `batch` failed"),
    (torch.zeros(8, 128), r"Layer '0' gives a constant output"),
    (None, "`batch` is required"),
    ({"y": 3}, "no tensor"),
])
def test_bad_batches_are_refused_and_change_nothing(batch, message):
    model = nets.mlp(3, 128)
    before = nets.snapshot(model)
    with pytest.raises(wi.InitError, match=message):
        wi.lsuv(model, batch)
    nets.assert_unchanged(model, before)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target_std": 0.0}, "`target_std`"),
    ({"tol": -1.0}, "`tol`"),
    ({"max_iter": 0}, "`max_iter`"),
    ({"seed": -2}, "`seed`"),
])
def test_bad_arguments_are_refused(kwargs, message):
    model = nets.mlp(2, 128)
    before = nets.snapshot(model)
    with pytest.raises(wi.InitError, match=message):
        wi.lsuv(model, BATCH, **kwargs)
    nets.assert_unchanged(model, before)
    with pytest.raises(wi.InitError, match=r"torch\.nn\.Module"):
        wi.lsuv("model", BATCH)


def test_lsuv_policy_needs_data_and_cannot_dry_run():
    model = nets.mlp(2, 128)
    with pytest.raises(wi.InitError, match="pass example_inputs"):
        wi.init_model(model, "lsuv")
    with pytest.raises(wi.InitError, match="cannot dry-run"):
        wi.init_model(model, "lsuv", example_inputs=(BATCH,), dry_run=True)
    with pytest.raises(wi.InitError, match="Did you mean 'lsuv'"):
        wi.init_model(model, "lsvu")


def test_digits_deep_relu_mlp_trains_after_lsuv_and_not_after_torch_defaults():
    # The demo's recipe (weightinit.studies.RECIPE). Measured: lsuv 0.944, torch default 0.086.
    data = load_digits()
    torch.manual_seed(0)
    default = mlp(20, 64)
    calibrated = mlp(20, 64)
    wi.lsuv(calibrated, data.x_train[:512])
    assert train(calibrated, data).test_accuracy >= 0.85
    assert train(default, data).test_accuracy <= 0.2


def test_transposed_convolutions_are_calibrated_and_embeddings_are_not():
    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.up = nn.ConvTranspose1d(16, 8, 4, stride=2)
            self.out = nn.Conv1d(8, 4, 3)

        def forward(self, ids):
            return self.out(torch.relu(self.up(self.embed(ids).transpose(1, 2))))

    model = Decoder()
    ids = torch.randint(0, 50, (8, 12), generator=torch.Generator().manual_seed(5))
    report = wi.lsuv(model, ids)
    assert [x.name for x in report.layers] == ["up", "out"]
    assert report["up"].note == "exact"
    assert_calibrated(model, report, ids)
    # Embeddings start at N(0, 1) (as in "auto") and are not rescaled.
    assert report.plan["embed.weight"].spec == wi.Normal(std=1.0)
    # 800 values: the sample std has standard error 1/sqrt(2 * 800) = 0.025; 0.1 is 4 of them.
    assert abs(float(model.embed.weight.detach().std()) - 1) < 0.1


def test_the_table_shows_layer_names_as_written_never_as_markup():
    from rich.console import Console

    model = nn.Sequential()
    model.add_module("[bold]fc", nn.Linear(8, 8))
    console = Console(width=200, record=True, color_system=None)
    console.print(wi.lsuv(model, torch.randn(32, 8)).table())
    assert "[bold]fc" in console.export_text()
