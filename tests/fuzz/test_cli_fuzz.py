"""Property-based fuzzing of the command line, in-process: `weightinit.cli.main(argv)` with
fuzzed arguments for every command returns an exit code (0, 1 or 2) or, for argparse, raises
SystemExit (2 for bad usage, 0 for --help/--version); never another exception. A refusal is
one `weightinit: error:` line on stderr, never a traceback; `--json` output is one JSON
document on stdout; the process state (sys.path, warning filters and hook, Python/NumPy RNG)
is as it was. Factories live in a .py file written once per module."""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import warnings

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from weightinit.cli import main
from weightinit.model import CALIBRATORS, PRESETS
from weightinit.theory import ACTIVATION_NAMES

FACTORIES = '''
import torch
from torch import nn


def mlp():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def conv():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))


def embed():
    return nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4))


def empty():
    return nn.Sequential()


def zero_width():
    return nn.Sequential(nn.Linear(4, 0), nn.ReLU(), nn.Linear(0, 2))


def broken():
    raise RuntimeError("the factory failed")


def not_a_module():
    return 3


def noisy():
    print("noise from the user's factory")
    return mlp()


NOT_CALLABLE = 5
'''


@pytest.fixture(scope="module")
def factory_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_fuzz")
    path = folder / "nets.py"
    path.write_text(FACTORIES, encoding="utf-8")
    # First uses import rich, torch.jit, ... lazily, and some of those imports add warning
    # filters or advance Python's `random` (rich.console does): done here, once, so that the
    # state checks below see what a command itself does.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for argv in (["gain", "relu"], ["plan", f"{path}:mlp"], ["diagnose", f"{path}:mlp"]):
            main(argv)
    return path, folder


def _number_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["0", "1", "7", "-1", "2", "1e3", "x", "", "nan", "inf",
                                      "0x10", " 3", str(2**64), str(2**63 - 1), "9" * 400]),
                     st.integers(-5, 2**70).map(str))


shapes_text = st.one_of(
    st.sampled_from(["2,4", "8,4", "2,3,5,5", "2x3x4x4", "2,5", "1,4", "0,4", "-1", "a,b", "",
                     "2,,4", ",", "4", "3,4,5,6,7,8", "99999999999,4", "2, 4", "1e2,4"]),
    st.lists(st.integers(-1, 9), min_size=1, max_size=4).map(lambda d: ",".join(map(str, d))),
)
policies_text = st.sampled_from([*PRESETS, *CALIBRATORS, "none", "Auto", "gtp2", "", "x" * 50])
params_text = st.one_of(
    st.sampled_from(["negative_slope=0.2", "negative_slope=-1", "negative_slope=nan",
                     "negative_slope=1e400", "alpha=2", "beta=" + "9" * 400, "bogus=1", "=1",
                     "noequals", "approximate=tanh", "approximate=none", "threshold=inf",
                     "negative_slope=", "a=b=c"]),
    st.builds(lambda n, v: f"{n}={v}", st.sampled_from(["negative_slope", "alpha", "beta"]),
              _number_text()),
)


@st.composite
def argvs(draw, target_base):
    command = draw(st.sampled_from(["gain", "gain", "plan", "plan", "diagnose", "checkpoint",
                                    "top"]))
    if command == "top":
        return draw(st.sampled_from([[], ["--version"], ["--help"], ["bogus"], ["-x"],
                                     ["gain", "--help"], ["plan", "-h"], ["--bogus", "gain"]]))
    junk = st.sampled_from(["--bogus", "-", "--", "--json", "--json", "extra"])
    if command == "gain":
        argv = ["gain", draw(st.one_of(st.sampled_from(ACTIVATION_NAMES), st.sampled_from(
            ["gelx", "RELU", "", "leaky-relu", "torch.relu", "\U0001f642"])))]
        options = {"--mode": st.sampled_from(["forward", "backward", "torch", "fwd", ""]),
                   "--param": params_text}
    else:
        factory = draw(st.sampled_from(["mlp", "mlp", "conv", "embed", "empty", "zero_width",
                                        "broken", "not_a_module", "noisy", "NOT_CALLABLE",
                                        "missing"]))
        where = draw(st.sampled_from([str(target_base / "nets.py"), str(target_base / "nets.py"),
                                      str(target_base / "none.py"), "no.such.module", "json",
                                      ""]))
        argv = [command, draw(st.sampled_from([f"{where}:{factory}", where, f"{where}:",
                                               f":{factory}"]))]
        options = {"--input-shape": shapes_text, "--seed": _number_text(),
                   "--input-dtype": st.sampled_from(["auto", "float", "long", "int"])}
        if command in ("plan", "diagnose"):
            options["--width"] = _number_text()
        if command == "plan":
            options["--policy"] = policies_text
        if command == "diagnose":
            options["--init"] = policies_text
        if command == "checkpoint":
            options["--policy"] = policies_text
            options["--out"] = st.just(str(target_base / "ckpt"))
            if draw(st.booleans()):  # --out is required: mostly given
                argv += ["--out", str(target_base / "ckpt")]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=3)):
        argv += [name, draw(options[name])]
    if draw(st.booleans()):
        argv.append("--json")
    if draw(st.sampled_from([False] * 5 + [True])):
        argv.insert(draw(st.integers(1, len(argv))), draw(junk))
    return argv


def _state():
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global state is the point)
    return (list(sys.path), list(warnings.filters), warnings.showwarning, random.getstate(),
            np_state[1].tobytes())


@given(data=st.data())
def test_main_returns_an_exit_code_and_refuses_in_one_line(factory_file, data):
    _, folder = factory_file
    argv = data.draw(argvs(folder), label="argv")
    out, err = io.StringIO(), io.StringIO()
    before = _state()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        inside = _state()
        try:
            code = main(argv)
        except SystemExit as exc:
            helped = any(a in ("--help", "-h", "--version") for a in argv)
            assert exc.code in ((0, 2) if helped else (2,)), (argv, exc.code, err.getvalue())
            code = None
        assert _state() == inside, f"main({argv!r}) changed the process state"
    assert _state() == before
    stderr = err.getvalue()
    assert "Traceback" not in stderr, stderr
    event(f"exit {code}")
    if code is None:
        return
    assert isinstance(code, int) and code in (0, 1, 2), (argv, code)
    lines = [line for line in stderr.splitlines()
             if line.strip() and not line.startswith("weightinit: warning:")]
    if code == 1 and not (argv[0] == "diagnose" and out.getvalue()):
        assert lines and lines[-1].startswith("weightinit: error:"), (argv, stderr)
        assert len([line for line in lines if line.startswith("weightinit: error:")]) == 1
    if code == 0 and "--json" in argv and argv and argv[0] in ("gain", "plan", "diagnose",
                                                                "checkpoint"):
        json.loads(out.getvalue())
