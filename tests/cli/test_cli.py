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


def test_unknown_activation_is_one_line_on_stderr(capsys):
    assert main(["gain", "gelx"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "Did you mean 'gelu'?" in lines[0]


def test_usage_errors_exit_2(capsys):
    for argv in (["gain", "relu", "--mode", "sideways"], ["gain"], ["frobnicate"],
                 ["gain", "relu", "--param", "oops"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("weightinit: error:") or "usage" in err


@pytest.mark.parametrize("argv", [["--help"], ["gain", "--help"], ["demo", "--help"]])
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


def test_demo_text_and_json(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "gelu" in out and "1.533530" in out
    assert main(["demo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["keyed_shard_equals_slice"] is True
    gains = {row["activation"]: row["forward"] for row in data["gains"]}
    assert gains["relu"] == pytest.approx(2**0.5)


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
