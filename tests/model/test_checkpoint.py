"""`wi.save_initial` and `weightinit checkpoint`: a seed checkpoint written from a meta-built
model, one tensor at a time, equal bit for bit to what `materialize` gives; the plan beside it
round-trips; refusals leave nothing half-written."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import weightinit as wi
from weightinit.cli import main
from weightinit.studies import gpt

SIZE = {"vocab": 97, "context": 16, "width": 32, "layers": 2, "heads": 4}


def meta_gpt() -> nn.Module:
    with torch.device("meta"):
        return gpt(**SIZE)


def materialized(seed: int) -> dict[str, torch.Tensor]:
    model = meta_gpt()
    wi.materialize(model, device="cpu", seed=seed)
    return model.state_dict()


def test_the_file_equals_materialize_and_the_plan_round_trips(tmp_path):
    plan = wi.save_initial(meta_gpt(), tmp_path, seed=3)
    saved = load_file(tmp_path / "model.safetensors")
    reference = materialized(3)
    # every parameter once (the tied head is the embedding), buffers are the model's to make
    params = {n for n, _ in meta_gpt().named_parameters()}
    assert set(saved) == params
    for name, values in saved.items():
        assert torch.equal(values, reference[name]), name
    text = (tmp_path / "plan.json").read_text()
    assert wi.InitPlan.from_json(text).to_json() == text == plan.to_json()
    # Loading it into a freshly built model gives the materialized model.
    model = gpt(**SIZE)
    missing, unexpected = model.load_state_dict(saved, strict=False)
    assert not unexpected and all(not n.endswith("weight") or "head" in n for n in missing)
    for name, value in model.state_dict().items():
        if name in reference and not name.endswith(("mask", "bias_mask")):
            assert torch.equal(value, reference[name]), name


def test_a_parametrized_weight_is_written_as_its_originals(tmp_path):
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    model = nn.Sequential(weight_norm(nn.Linear(8, 16)), nn.ReLU(), nn.Linear(16, 4))
    wi.save_initial(model, tmp_path, seed=1)
    saved = load_file(tmp_path / "model.safetensors")
    assert set(saved) == set(model.state_dict())
    wi.init_model(model, seed=1)
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value), name


def test_refusals_write_nothing(tmp_path):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.fc(x) * self.scale

    with torch.device("meta"):
        model = Scaled()
    with pytest.raises(wi.InitError, match="'scale' is kept by the policy and has no values"):
        wi.save_initial(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(wi.InitError, match="is a file"):
        wi.save_initial(meta_gpt(), tmp_path / "file")
    with pytest.raises(wi.InitError, match="calibrates on data"):
        wi.save_initial(meta_gpt(), tmp_path / "out", policy="lsuv")
    with pytest.raises(wi.InitError, match="`model` must be"):
        wi.save_initial("model", tmp_path / "out")


FACTORY = """
from weightinit.studies import gpt


def build():
    return gpt(vocab=97, context=16, width=32, layers=2, heads=4)
"""


def test_the_cli_writes_the_checkpoint_of_a_factory(tmp_path, capsys):
    factory = tmp_path / "net.py"
    factory.write_text(FACTORY)
    out = tmp_path / "ckpt"
    assert main(["checkpoint", f"{factory}:build", "--out", str(out), "--seed", "3",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seed"] == 3 and summary["parameters"] == len(load_file(
        out / "model.safetensors"))
    reference = materialized(3)
    for name, value in load_file(out / "model.safetensors").items():
        assert torch.equal(value, reference[name]), name
    assert main(["checkpoint", f"{factory}:build", "--out", str(out), "--policy", "lsuv"]) == 1
    assert "calibrates on data" in capsys.readouterr().err


def test_zero_dim_parameters_and_failures_leave_no_partial_file(tmp_path):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.gain = nn.Parameter(torch.tensor(2.0))  # 0-d, kept with its value

        def forward(self, x):
            return self.fc(x) * self.gain

    wi.save_initial(Scaled(), tmp_path / "a")
    saved = load_file(tmp_path / "a" / "model.safetensors")
    assert saved["gain"].shape == () and float(saved["gain"]) == 2.0
    from torch.nn.utils.parametrizations import spectral_norm

    model = nn.Sequential(spectral_norm(nn.Linear(4, 4)))
    with pytest.raises(wi.InitError, match="spectral_norm's power iteration"):
        wi.save_initial(model, tmp_path / "b")
    assert not (tmp_path / "b" / ".model.safetensors.partial").exists()
    with pytest.raises(wi.InitError, match="`path` must be a folder path"):
        wi.save_initial(model, 123)


def test_a_path_below_a_file_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 4))
    calls: list[tuple[int, int, str]] = []
    with pytest.raises(wi.InitError, match="is a file"):
        wi.save_initial(model, blocker / "ckpt", progress=lambda *a: calls.append(a))
    assert calls == [] and blocker.read_text() == "x"
