"""The progress bar the CLI draws from the library's ``progress(done, total, stage)``
callback: only after a delay (quick calls print nothing), never with --json or when stderr is
not a terminal, stages printed as written. No wall clock: the delay runs on a fake clock."""

import io
import json

import pytest
from rich.console import Console

import weightinit as wi
from weightinit.cli import _progress, main

NET = """
from torch import nn


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
"""


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(NET)
    return path


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _console():
    return Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)


def test_the_bar_waits_for_the_delay_then_follows_the_callback():
    clock = Clock()
    bar = _progress.Bar(_console(), delay=1.0, clock=clock)
    bar(0, 4, "filling")
    assert not bar.started and bar.progress.tasks == []
    clock.now = 1.5
    try:
        bar(1, 4, "filling")
        bar(2, 5, "writing")
        assert bar.started
        [task] = bar.progress.tasks
        assert (task.completed, task.total, task.description) == (2, 5, "writing")
    finally:
        bar.stop()


def test_a_stage_that_looks_like_markup_is_printed_as_written():
    console = Console(file=io.StringIO(), width=100, record=True, color_system=None)
    bar = _progress.Bar(console, delay=0.0)
    try:
        bar(1, 2, "[bold]fc[/bold].weight [link=x]y[/link]")
        console.print(bar.progress.get_renderable())
    finally:
        bar.stop()
    assert "[bold]fc[/bold].weight [link=x]y[/link]" in console.export_text()


def test_with_progress_passes_the_callback_only_to_functions_that_take_one():
    def takes(*, progress=None):
        return progress

    def does_not():
        return None

    callback = object()
    assert _progress.with_progress(takes, callback, seed=1) == {"seed": 1, "progress": callback}
    assert _progress.with_progress(does_not, callback, seed=1) == {"seed": 1}
    assert _progress.with_progress(takes, None, seed=1) == {"seed": 1}


class Recorder(_progress.Bar):
    calls: list = []  # noqa: RUF012 (reset by the fixture)

    def __call__(self, done, total, stage):
        Recorder.calls.append((done, total, stage))
        super().__call__(done, total, stage)


@pytest.fixture
def recorder(monkeypatch):
    Recorder.calls = []
    monkeypatch.setattr(_progress, "Bar", Recorder)
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    return Recorder


def test_the_cli_draws_the_bar_on_a_terminal(net, recorder, monkeypatch, capsys):
    import inspect

    if "progress" not in inspect.signature(wi.init_model).parameters:
        pytest.skip("init_model has no progress callback yet")
    monkeypatch.setattr(_progress, "stderr_is_terminal", lambda: True)
    assert main(["diagnose", f"{net}:mlp", "--init", "auto", "--input-shape", "32,8"]) == 0
    capsys.readouterr()
    assert recorder.calls, "no progress reported"
    done, total, _ = recorder.calls[-1]
    assert done == total
    assert {stage for _, _, stage in recorder.calls} >= {"probing"}


@pytest.mark.parametrize(("terminal", "extra"), [(True, ["--json"]), (False, [])])
def test_no_bar_with_json_or_off_a_terminal(net, recorder, monkeypatch, capsys, terminal,
                                           extra):
    monkeypatch.setattr(_progress, "stderr_is_terminal", lambda: terminal)
    assert main(["plan", f"{net}:mlp", *extra]) == 0
    captured = capsys.readouterr()
    assert recorder.calls == []
    if extra:
        json.loads(captured.out)
