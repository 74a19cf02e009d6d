"""Models the CLI could not take before: several inputs (`--inputs MODULE:FUNCTION`), and a
module attribute that is a model instance rather than a factory."""

import json

import pytest
import torch

from weightinit.cli import main

NETS = """
import torch
from torch import nn


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x, y, scale=1.0):
        return self.out(torch.relu(self.a(x) + self.b(y))) * scale


class StarArgs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, *xs, scale=1.0):
        return self.fc(xs[0]) * scale


def two():
    return Two()


def star():
    return StarArgs()


def _gen():
    return torch.Generator().manual_seed(0)


def as_tuple():
    g = _gen()
    return (torch.randn(32, 8, generator=g), torch.randn(32, 4, generator=g))


def as_dict():
    g = _gen()
    return {"x": torch.randn(32, 8, generator=g), "y": torch.randn(32, 4, generator=g)}


def as_args_kwargs():
    g = _gen()
    return ((torch.randn(32, 8, generator=g),), {"y": torch.randn(32, 4, generator=g)})


def star_both():
    return ((torch.randn(4, 8),), {"scale": 2.0})


def wrong_shape():
    return (torch.randn(4, 5), torch.randn(4, 4))


def a_list():
    return [torch.randn(4, 8)]


def raises():
    raise ValueError("no data here")


def exits():
    raise SystemExit(5)


NOT_CALLABLE = 3
INSTANCE = Two()
"""


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return path


def _plan(capsys, *argv):
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_without_inputs_the_dataflow_is_unknown_and_the_advice_is_the_clis(nets, capsys):
    assert main(["plan", f"{nets}:two", "--width", "120"]) == 0
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert "--inputs MODULE:FUNCTION" in " ".join(text.split())
        assert "example_inputs=" not in text
    assert "unknown" in captured.out


@pytest.mark.parametrize("function", ["as_tuple", "as_dict", "as_args_kwargs"])
def test_inputs_give_a_multi_input_model_its_dataflow(nets, capsys, function):
    data = _plan(capsys, f"{nets}:two", "--inputs", f"{nets}:{function}")
    rows = {row["name"]: row for row in data["rows"]}
    assert rows["out.weight"]["activation"] == "relu"
    assert rows["a.weight"]["activation"] == "linear"
    assert data["notes"][0].endswith("on example_inputs.")


def test_every_form_gives_the_same_plan(nets, capsys):
    plans = [_plan(capsys, f"{nets}:two", "--inputs", f"{nets}:{f}")
             for f in ("as_tuple", "as_dict", "as_args_kwargs")]
    assert plans[0] == plans[1] == plans[2]


def test_inputs_from_an_importable_module(nets, capsys, monkeypatch):
    monkeypatch.chdir(nets.parent)
    data = _plan(capsys, "nets:two", "--inputs", "nets:as_dict")
    assert {row["name"]: row for row in data["rows"]}["out.weight"]["activation"] == "relu"


def test_lsuv_calibrates_on_the_inputs(nets, capsys):
    data = _plan(capsys, f"{nets}:two", "--policy", "lsuv", "--inputs", f"{nets}:as_tuple")
    assert data["policy"] == "lsuv"


def test_diagnose_measures_on_the_inputs(nets, capsys):
    for function in ("as_tuple", "as_args_kwargs"):
        assert main(["diagnose", f"{nets}:two", "--init", "auto", "--inputs",
                     f"{nets}:{function}", "--json"]) in (0, 1)
        data = json.loads(capsys.readouterr().out)
        assert {layer["name"] for layer in data["layers"]} >= {"a", "b", "out"}


def test_checkpoint_discovers_on_the_inputs(nets, capsys, tmp_path):
    out = tmp_path / "ckpt"
    assert main(["checkpoint", f"{nets}:two", "--out", str(out), "--inputs",
                 f"{nets}:as_tuple", "--json"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert {row["name"]: row for row in plan["rows"]}["out.weight"]["activation"] == "relu"


@pytest.mark.parametrize(("target", "message"), [
    ("{f}:raises", "Calling {f}:raises() (--inputs) failed: ValueError: no data here"),
    ("{f}:exits", "The inputs function '{f}:exits' called sys.exit(5)"),
    ("{f}:NOT_CALLABLE", "is an int, not a function"),
    ("{f}:nope", "has no attribute 'nope'"),
    ("{f}:a_list", "returned a list; return a tuple"),
    ("{d}/missing.py:as_tuple", "no such file"),
    ("{f}", "must look like MODULE:FUNCTION"),
])
def test_bad_inputs_are_one_line_and_change_nothing(nets, one_error_line, target, message):
    target = target.format(f=nets, d=nets.parent)
    assert main(["plan", f"{nets}:two", "--inputs", target]) == 1
    one_error_line(message.format(f=nets))


def test_args_and_kwargs_need_names_for_the_positional_ones(nets, one_error_line):
    assert main(["plan", f"{nets}:star", "--inputs", f"{nets}:star_both"]) == 1
    one_error_line("positional-only arguments or *args")


@pytest.mark.parametrize("command", ["plan", "diagnose"])
def test_inputs_the_model_rejects_say_what_to_do_in_cli_terms(nets, capsys, command):
    assert main([command, f"{nets}:two", "--inputs", f"{nets}:wrong_shape"]) == 1
    line = capsys.readouterr().err.strip()
    assert "forward pass on" in line and "--inputs MODULE:FUNCTION" in line, line
    assert "a tuple of positional arguments or a dict" not in line


@pytest.mark.parametrize(("extra", "says"), [
    (["--input-shape", "2,8"], "give --inputs or --input-shape, not both"),
    (["--input-dtype", "long"], "--input-dtype applies to the batch of --input-shape"),
])
@pytest.mark.parametrize("command", ["plan", "diagnose", "checkpoint"])
def test_inputs_with_shape_options_is_a_usage_error(nets, capsys, tmp_path, extra, says,
                                                    command):
    out = ["--out", str(tmp_path / "ckpt")] if command == "checkpoint" else []
    assert main([command, f"{nets}:two", "--inputs", f"{nets}:as_tuple", *extra, *out]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and f"weightinit {command} --help" in lines[0]
    assert not (tmp_path / "ckpt").exists()


def test_help_documents_inputs(capsys):
    for command in ("plan", "diagnose", "checkpoint"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--inputs MODULE:FUNCTION" in text and "(args, kwargs)" in text


def test_an_instance_is_used_as_it_is(nets, capsys):
    data = _plan(capsys, f"{nets}:INSTANCE", "--inputs", f"{nets}:as_tuple")
    assert [row["name"] for row in data["rows"]][:2] == ["a.weight", "a.bias"]


@pytest.mark.parametrize("argv", [["plan", "--json"], ["diagnose", "--init", "auto",
                                               "--input-shape", "4,9"]])
def test_the_instance_the_cli_gets_is_not_changed(nets, capsys, monkeypatch, argv):
    # Imported by name, the CLI gets the very instance this test holds (sys.modules): a plan
    # (a dry run) and a refused --init leave it bit-identical.
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(nets.parent))
    monkeypatch.delitem(sys.modules, "nets", raising=False)
    module = importlib.import_module("nets")
    monkeypatch.setitem(sys.modules, "nets", module)
    before = {k: v.clone() for k, v in module.INSTANCE.state_dict().items()}
    command, *options = argv
    main([command, "nets:INSTANCE", *options])
    capsys.readouterr()
    after = module.INSTANCE.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
