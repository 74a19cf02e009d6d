"""`weightinit diagnose` in-process: exit codes (0 healthy or warnings only, 1 on an error
finding or refused input, 2 on usage errors), table, JSON and HTML output."""

import importlib.util
import json

import pytest

from weightinit.cli import main

NETS = """
import torch
from torch import nn


def mlp():
    layers = []
    for i in range(8):
        layers += [nn.Linear(64 if i else 32, 64), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 10))


def zeros():
    model = mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


class Pooled(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.norm(x))


def norm_first():
    return Pooled()


def broken():
    raise RuntimeError("out of ideas")
"""

_HAS_REPORT = importlib.util.find_spec("weightinit.diagnose._report") is not None
needs_report = pytest.mark.skipif(not _HAS_REPORT, reason="diagnose._report not there yet")


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return path


@needs_report
def test_healthy_net_under_init_auto_exits_0(nets, capsys):
    assert main(["diagnose", f"{nets}:mlp", "--init", "auto", "--input-shape", "64,32",
                 "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "healthy"
    assert "Linear" in out


@needs_report
def test_zero_init_exits_1_and_names_symmetry(nets, capsys):
    assert main(["diagnose", f"{nets}:zeros", "--input-shape", "64,32", "--width", "200"]) == 1
    captured = capsys.readouterr()
    assert "symmetry" in captured.out
    assert captured.out.strip().splitlines()[-1].endswith("worst: error")
    assert captured.err == ""


def test_json_is_the_diagnosis_only(nets, capsys):
    assert main(["diagnose", f"{nets}:zeros", "--input-shape", "64,32", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["healthy"] is False
    assert "symmetry" in {f["kind"] for f in data["findings"]}
    assert len(data["layers"]) == 9 and data["loss_kind"] == "synthetic"


def test_json_healthy_after_init_and_seed_reproducible(nets, capsys):
    runs = []
    for _ in range(2):
        assert main(["diagnose", f"{nets}:mlp", "--init", "auto", "--seed", "3",
                     "--input-shape", "64,32", "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0]["healthy"] is True
    assert runs[0] == runs[1]


def test_init_lsuv_calibrates_on_the_batch(nets, capsys):
    assert main(["diagnose", f"{nets}:mlp", "--init", "lsuv", "--input-shape", "64,32",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "symmetry" not in {f["kind"] for f in data["findings"]}
    assert data["layers"][0]["out_std"] == pytest.approx(1.0, abs=0.1)


@needs_report
def test_input_shape_inferred_from_the_first_layer(nets, capsys):
    assert main(["diagnose", f"{nets}:mlp", "--init", "auto", "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert "inferred from the first layer" in out and "32,32" in out


def test_no_obvious_input_shape_asks_for_one(nets, one_error_line):
    assert main(["diagnose", f"{nets}:norm_first"]) == 1
    one_error_line("give --input-shape")


def test_html_report(nets, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    if not _HAS_REPORT:
        pytest.skip("diagnose._report not there yet")
    report = tmp_path / "report.html"
    assert main(["diagnose", f"{nets}:zeros", "--input-shape", "64,32", "--html", str(report),
                 "--json"]) == 1
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays pure JSON; the path goes to stderr
    assert str(report) in captured.err
    assert "<html" in report.read_text(encoding="utf-8")


@pytest.mark.parametrize(("target", "extra", "message"), [
    ("{file}:mlpp", [], "Did you mean 'mlp'"),
    ("{file}:broken", [], "RuntimeError: out of ideas"),
    ("{dir}/missing.py:mlp", [], "no such file"),
    ("{file}:mlp", ["--init", "kerass"], "Did you mean 'keras'"),
    ("{file}:mlp", ["--input-shape", "8,5"], "forward pass on `batch` failed"),
    ("{file}:mlp", ["--init", "auto", "--input-shape", "8,5"], "example_inputs"),
])
def test_errors_are_one_line_and_exit_1(nets, one_error_line, target, extra, message):
    target = target.format(file=nets, dir=nets.parent)
    assert main(["diagnose", target, *extra]) == 1
    one_error_line(message)


@pytest.mark.parametrize("argv", [["--input-shape", "a,b"], ["--input-shape", "0,3"],
                                  ["--input-dtype", "complex"], ["--seed", "x"]])
def test_usage_errors_exit_2(nets, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", f"{nets}:mlp", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("weightinit: error:")


def test_missing_model_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["diagnose"])
    assert exc.value.code == 2


def test_help_explains_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage" in out and "exit codes" in out
    for line in ("0  no finding is an error", "1  a finding is an error", "2  usage error"):
        assert line in out
