"""Every command and --help in-process (click's CliRunner habit), plus one real subprocess."""

import json
import subprocess
import sys

import pytest

import weightinit as wi
from weightinit.cli import main


def test_gain_prints_six_decimals(capsys):
    assert main(["gain", "gelu"]) == 0
    assert capsys.readouterr().out.strip() == "1.533530"


def test_gain_json_and_params(capsys):
    assert main(["gain", "leaky_relu", "--param", "negative_slope=0.2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gain"] == pytest.approx((2 / 1.04) ** 0.5, rel=1e-12)
    assert data["params"] == {"negative_slope": 0.2}


def test_gain_backward_and_torch_modes(capsys):
    assert main(["gain", "tanh", "--mode", "torch"]) == 0
    assert capsys.readouterr().out.strip() == "1.666667"
    assert main(["gain", "relu", "--mode", "backward"]) == 0
    assert capsys.readouterr().out.strip() == "1.414214"


def test_unknown_activation_is_a_usage_error_in_one_line(capsys):
    # Exit 2 as the help says of usage errors; the names listed are the help's, and the
    # advice is the CLI's (a module or a function cannot be given here).
    assert main(["gain", "gelx"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "Did you mean 'gelu'?" in lines[0] and "weightinit gain --help" in lines[0]
    assert "nn.Module" not in lines[0] and "function" not in lines[0]
    listed = lines[0].split("Choose one of: ")[1].split(". (see")[0].split(", ")
    with pytest.raises(SystemExit):
        main(["gain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in listed)
    assert help_text.split("Activations: ")[1].split(".")[0].split(", ") == listed


def test_usage_errors_exit_2(capsys):
    for argv in (["gain", "relu", "--mode", "sideways"], ["gain"], ["frobnicate"],
                 ["gain", "relu", "--param", "oops"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("weightinit: error:") or "usage" in err


@pytest.mark.parametrize("argv", [["--help"], ["gain", "--help"], ["demo", "--help"],
                                  ["plan", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"weightinit {wi.__version__}"


def test_demo_quick_writes_the_report_and_a_one_screen_summary(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    assert main(["demo", "--quick", "--out", str(out), "--width", "100"]) == 0
    text = capsys.readouterr().out
    assert "weightinit demo" in text and "Glorot halves the variance" in text
    assert len(text.splitlines()) <= 30  # one screen
    assert sorted(p.name for p in out.iterdir()) == [
        "beyond_relu.png", "depth.png", "index.html", "results.json", "training.png"]
    data = json.loads((out / "results.json").read_text())
    assert data["quick"] is True and data["training"]["runs"]["auto"]["accuracy"]["mean"] >= 0.8
    # The real report in a real browser: renders, no console errors, every figure there.
    import weightinit_test_browser as browser

    executable = browser.find_browser()  # skips with a message when no browser is installed
    [(state, problems)] = browser.open_pages(executable, tmp_path, [out / "index.html"])
    assert problems == [], problems
    assert len(state["images"]) == 3
    assert all(image["complete"] and image["width"] > 500 for image in state["images"])
    assert "Why not zeros" in state["text"]


def test_demo_refuses_a_file_as_the_report_folder(capsys, tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["demo", "--quick", "--out", str(target)]) == 1
    assert "is a file" in capsys.readouterr().err


def test_installed_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "weightinit", "gain", "gelu"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.533530"


def test_no_command_is_a_usage_error_on_stderr(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "a command is required" in captured.err


NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(
            torch.relu(self.conv(x)), 1), 1))


def build():
    return Net()


def broken():
    raise RuntimeError("out of ideas")


def not_a_model():
    return 42


def norm_first():
    return nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 4))


VALUE = 3
"""


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET)
    return path


def test_plan_prints_a_table_from_a_user_file(net_file, capsys):
    assert main(["plan", f"{net_file}:build", "--input-shape", "2,3,16,16", "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert "fc.weight" in out and "relu <- Conv2d conv" in out and "He(relu)" in out


def test_plan_without_a_forward_pass_warns_in_one_line(net_file, capsys):
    assert main(["plan", f"{net_file}:norm_first"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("weightinit: warning: init_model: no forward "
                                               "pass ran"), err


def test_plan_json_and_presets(net_file, capsys):
    assert main(["plan", f"{net_file}:build", "--json", "--policy", "keras", "--seed", "4"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["policy"] == "keras" and data["seed"] == 4
    assert [row["name"] for row in data["rows"]] == ["conv.weight", "conv.bias", "fc.weight",
                                                      "fc.bias"]
    assert data["rows"][2]["activation"] == "relu"


def test_plan_with_lsuv_calibrates_the_throwaway_model(net_file, capsys):
    assert main(["plan", f"{net_file}:build", "--policy", "lsuv", "--input-shape", "8,3,16,16",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["policy"] == "lsuv"
    assert data["rows"][0]["spec"]["type"] == "Orthogonal"
    assert main(["plan", f"{net_file}:build", "--policy", "lsuv"]) == 1
    assert "give --input-shape" in capsys.readouterr().err


def test_plan_from_an_importable_module(net_file, capsys, monkeypatch):
    monkeypatch.chdir(net_file.parent)
    assert main(["plan", "net:build", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 4


@pytest.mark.parametrize(("target", "extra", "message"), [
    ("{file}:buidl", [], "Did you mean 'build'"),
    ("{file}:broken", [], "RuntimeError: out of ideas"),
    ("{file}:not_a_model", [], "not a torch.nn.Module"),
    ("{file}:VALUE", [], "is an int, not a callable"),
    ("{dir}/missing.py:build", [], "no such file"),
    ("no_such_module_xyz:build", [], "cannot be imported"),
    ("{file}", [], "MODULE:FACTORY"),
    ("{file}:build", ["--policy", "kerass"], "Did you mean 'keras'"),
    ("{file}:build", ["--input-shape", "2,5,16,16"], "forward pass on `example_inputs` failed"),
])
def test_plan_errors_are_one_line(net_file, one_error_line, target, extra, message):
    target = target.format(file=net_file, dir=net_file.parent)
    assert main(["plan", target, *extra]) == 1
    one_error_line(message)


@pytest.mark.parametrize("shape", ["a,b", "0,3", "2,-1", ""])
def test_plan_bad_shapes_are_usage_errors(net_file, capsys, shape):
    with pytest.raises(SystemExit) as exc:
        main(["plan", f"{net_file}:build", "--input-shape", shape])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--input-shape" in err[0]


def test_json_stays_pure_when_the_users_module_prints(tmp_path, capsys):
    path = tmp_path / "loud.py"
    path.write_text(NET.replace("def build():", "print('hello from import')\n\n\ndef build():\n"
                                "    print('building')"))
    assert main(["plan", f"{path}:build", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["policy"] == "auto"
    assert "hello from import" in captured.err and "building" in captured.err


def test_demo_refuses_a_report_folder_under_a_file(capsys, tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["demo", "--quick", "--out", str(target / "sub")]) == 1
    assert "is a file" in capsys.readouterr().err
