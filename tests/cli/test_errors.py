"""Inputs that used to end in a traceback, a silent exit or a silent success: each is now one
`weightinit: error:` line on stderr and a non-zero exit (2 for usage errors, 1 for refused
input), and nothing is written or changed."""

import io
import json

import pytest

from weightinit.cli import main
from weightinit.cli._output import SafeStream

MODELS = """
import sys
import torch
from torch import nn


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def odd_names():
    model = nn.Sequential()
    model.add_module("[/x]", nn.Linear(8, 8))
    model.add_module("[link=file:///etc/passwd]click[/link]", nn.Linear(8, 8))
    model.add_module("bad\\ud800name", nn.Linear(8, 2))
    return model


class Fails(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("x\\ud800[/x]", nn.Linear(8, 8))

    def forward(self, x):
        raise RuntimeError("no [bold]luck[/bold] in x\\ud800")


def fails():
    return Fails()


def exits():
    sys.exit(7)


class ExitsInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        sys.exit(3)


def exits_in_forward():
    return ExitsInForward()


INSTANCE = mlp()
"""


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def _usage_error(capsys, argv, *words):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("weightinit: error:"), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("shape", ["9223372036854775808,8", "9223372036854775807,8",
                                   "4294967296,4294967296"])
def test_an_input_shape_beyond_int64_is_a_usage_error(models, capsys, shape):
    _usage_error(capsys, ["plan", f"{models}:mlp", "--input-shape", shape], "--input-shape",
                 "more than a tensor can hold")


def test_an_input_shape_too_large_to_allocate_is_one_line(models, one_error_line):
    assert main(["plan", f"{models}:mlp", "--input-shape", "100000000000,8"]) == 1
    one_error_line("cannot be allocated")


@pytest.mark.parametrize("command", [["demo", "--quick"], ["plan", "{m}:mlp"],
                                     ["diagnose", "{m}:mlp"],
                                     ["checkpoint", "{m}:mlp", "--out", "{d}/ckpt"]])
@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", "9223372036854775808"])
def test_a_seed_out_of_range_is_a_usage_error_and_writes_nothing(models, capsys, command,
                                                                  seed, tmp_path):
    argv = [word.format(m=models, d=tmp_path) for word in command]
    before = sorted(tmp_path.iterdir())
    _usage_error(capsys, [*argv, "--seed", seed], "--seed", "2**63 - 1")
    assert sorted(tmp_path.iterdir()) == before


def test_the_largest_seed_is_accepted(models, capsys):
    assert main(["plan", f"{models}:mlp", "--json", "--seed", str(2**63 - 1)]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 2**63 - 1


def test_a_parameter_that_overflows_the_gain_is_one_line(one_error_line):
    assert main(["gain", "leaky_relu", "--mode", "torch", "--param",
                 "negative_slope=1e200"]) == 1
    one_error_line("negative_slope=1e+200")


@pytest.mark.parametrize("width", ["0", "-5", "39", "1001", "wide"])
@pytest.mark.parametrize("command", [["plan", "{m}:mlp"], ["diagnose", "{m}:mlp"],
                                     ["demo", "--quick"]])
def test_a_width_out_of_range_is_a_usage_error(models, capsys, width, command):
    argv = [word.format(m=models) for word in command]
    _usage_error(capsys, [*argv, "--width", width], "--width", "from 40 to 1000")


@pytest.mark.parametrize("form", [["--input-shape", "-1,32"], ["--input-shape=-1,32"]])
def test_a_negative_input_shape_is_refused_alike_in_both_forms(models, capsys, form):
    line = _usage_error(capsys, ["plan", f"{models}:mlp", *form], "--input-shape",
                        "expected positive ints", "'-1,32'")
    assert "expected one argument" not in line


@pytest.mark.parametrize("shape", ["4,8,", "4,,8", ","])
def test_an_input_shape_with_an_empty_dimension_is_a_usage_error(models, capsys, shape):
    _usage_error(capsys, ["plan", f"{models}:mlp", "--input-shape", shape], "--input-shape",
                 "expected positive ints", repr(shape))


def test_an_option_after_input_shape_is_still_an_option(models, capsys):
    _usage_error(capsys, ["plan", f"{models}:mlp", "--input-shape", "--json"],
                 "--input-shape", "expected one argument")


def test_names_that_look_like_markup_or_hold_a_lone_surrogate_print_as_written(models,
                                                                               capsys):
    for argv in (["plan", f"{models}:odd_names", "--width", "200"],
                 ["diagnose", f"{models}:odd_names", "--input-shape", "32,8", "--width",
                  "200"]):
        code = main(argv)
        captured = capsys.readouterr()
        assert code in (0, 1) and "Traceback" not in captured.err, captured.err
        assert "[/x].weight" in captured.out or "[/x]" in captured.out
        assert "[link=file:///etc/passwd]click[/link]" in captured.out
        assert "bad\\ud800name" in captured.out  # the escape, never a crash
    assert main(["plan", f"{models}:odd_names", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)["rows"]]
    assert "bad\ud800name.weight" in names and "[/x].weight" in names


@pytest.mark.parametrize("argv", [["plan", "{m}:fails", "--input-shape", "2,8"],
                                  ["diagnose", "{m}:fails", "--input-shape", "2,8"]])
def test_an_error_naming_markup_and_surrogates_is_one_literal_line(models, capsys, argv):
    assert main([word.format(m=models) for word in argv]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("weightinit: error:"), captured.err
    assert "[bold]luck[/bold]" in lines[0] and "x\\ud800" in lines[0]


def test_a_lone_surrogate_reaches_a_strict_utf8_stream_as_an_escape():
    raw = io.BytesIO()
    strict = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    stream = SafeStream(strict)
    stream.write("a\ud800b ━\n")
    stream.flush()
    assert raw.getvalue().decode("utf-8") == "a\\ud800b ━\n"
    ascii_raw = io.BytesIO()
    ascii_stream = SafeStream(io.TextIOWrapper(ascii_raw, encoding="ascii"))
    ascii_stream.write("━ ok\n")
    ascii_stream.flush()
    assert ascii_raw.getvalue() == b"\\u2501 ok\n"


@pytest.mark.parametrize(("target", "says"), [
    ("{m}:exits", "The model factory '{m}:exits' called sys.exit(7)"),
    ("{m}:exits_in_forward", "The model's forward pass called sys.exit(3)"),
])
@pytest.mark.parametrize("command", ["plan", "diagnose"])
def test_sys_exit_in_the_users_code_is_one_line_and_exit_1(models, one_error_line, target,
                                                           says, command):
    extra = ["--input-shape", "4,8"] if command == "diagnose" else []
    assert main([command, target.format(m=models), *extra]) == 1
    one_error_line(says.format(m=models))


def test_sys_exit_when_the_module_is_imported(tmp_path, one_error_line):
    path = tmp_path / "leaves.py"
    path.write_text("import sys\nsys.exit('bye')\n")
    assert main(["plan", f"{path}:build"]) == 1
    one_error_line(f"Running {str(path)!r} called sys.exit('bye')")


class TestOutputPaths:
    """Every output option creates missing folders, and refuses, before any work, a file where
    a folder must be or a folder where the file must be (with nothing written)."""

    def test_diagnose_html_creates_missing_folders(self, models, tmp_path, capsys):
        pytest.importorskip("matplotlib")
        report = tmp_path / "new" / "deeper" / "report.html"
        assert main(["diagnose", f"{models}:mlp", "--input-shape", "32,8", "--html",
                     str(report), "--json"]) == 0
        assert "<html" in report.read_text(encoding="utf-8")
        assert str(report) in capsys.readouterr().err

    def test_checkpoint_out_creates_missing_folders(self, models, tmp_path, capsys):
        out = tmp_path / "a" / "b" / "ckpt"
        assert main(["checkpoint", f"{models}:mlp", "--out", str(out), "--json"]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "plan.json"]

    @pytest.mark.parametrize(("option", "make", "words"), [
        (["diagnose", "{m}:mlp", "--input-shape", "32,8", "--html"], "dir", "is a folder"),
        (["diagnose", "{m}:mlp", "--input-shape", "32,8", "--html"], "under-file",
         "is a file, not a folder"),
        (["checkpoint", "{m}:mlp", "--out"], "file", "is a file"),
        (["checkpoint", "{m}:mlp", "--out"], "under-file", "is a file, not a folder"),
        (["demo", "--quick", "--out"], "file", "is a file"),
        (["demo", "--quick", "--out"], "under-file", "is a file, not a folder"),
    ])
    def test_refused_before_any_work(self, models, tmp_path, one_error_line, option, make,
                                     words):
        taken = tmp_path / "taken"
        if make == "dir":
            taken.mkdir()
            target = taken
        else:
            taken.write_text("x")
            target = taken if make == "file" else taken / "sub" / "out.html"
        before = sorted(p.name for p in tmp_path.rglob("*"))
        assert main([*(w.format(m=models) for w in option), str(target)]) == 1
        one_error_line(words)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
        assert make != "file" or taken.read_text() == "x"

    @pytest.mark.parametrize("command", ["demo", "diagnose", "checkpoint"])
    def test_help_says_so(self, capsys, command):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "missing folders are created" in text or "missing parents" in text
