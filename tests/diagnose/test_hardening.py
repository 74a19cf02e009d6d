"""diagnose leaves the model exactly as it was, whatever the model's forward does and whether
the call succeeds or is refused; odd inputs are refused with a message that says what is wrong;
module names are text everywhere (rich tables, figures, HTML), never markup, never a crash."""

from __future__ import annotations

import importlib.util
import io
import random
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import weightinit as wi

_spec = importlib.util.spec_from_file_location("diagnose_full_state",
                                               Path(__file__).parent / "full_state.py")
assert _spec is not None and _spec.loader is not None
full_state = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(full_state)


class Stateful(nn.Module):
    """Everything a forward can write: an EMA that *replaces* its buffer, a non-persistent
    counter updated in place, BatchNorm running stats, a stochastic layer drawing from the
    global RNGs (torch, Python, NumPy), and a `train()` that must never be called."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(16, 32), nn.BatchNorm1d(32), nn.Linear(32, 4)
        self.register_buffer("avg", torch.zeros(32))
        self.register_buffer("calls", torch.zeros(()), persistent=False)
        self.drop = nn.Dropout(0.1)
        self.fail = fail

    def train(self, mode: bool = True) -> Stateful:
        raise AssertionError("an overridden train() was called")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        h = self.bn(self.fc1(x))
        self.avg = 0.9 * self.avg + 0.1 * h.mean(0).detach()  # a new tensor object
        random.random()
        np.random.rand()  # noqa: NPY002 (the global RNG, on purpose)
        h = self.drop(torch.relu(h))
        if self.fail:
            raise RuntimeError("the forward gave up")
        return self.fc2(h)


def _prepared(fail: bool = False) -> Stateful:
    torch.manual_seed(0)
    model = Stateful(fail)  # train mode: BatchNorm's stats would move, dropout would draw
    model.fc2(torch.randn(8, 32)).sum().backward()  # .grad on fc2 only
    model.fc1.bias.requires_grad_(False)
    model.drop.training = False  # a mixed-mode model: one flag differs
    model.fc2.register_forward_hook(lambda m, a, o: None)  # the user's own hook stays
    return model


X = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))


def test_a_successful_call_leaves_everything_bit_identical():
    model = _prepared()
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002
    before = full_state.capture(model)
    avg = model.avg
    diagnosis = wi.diagnose(model, X)
    full_state.assert_same(model, before)
    assert model.avg is avg  # the object the forward replaced is back, by name
    assert diagnosis.layers  # it did measure


@pytest.mark.parametrize(("change", "message"), [
    ({"fail": True}, "forward pass on `batch` failed: RuntimeError: the forward gave up"),
    ({"batch": torch.full((64, 16), float("nan"))}, "NaN/Inf"),
    ({"batch": torch.randn(64, 16, device="meta")}, "meta"),
    ({"target": torch.zeros(3)}, "The loss failed"),
    ({"loss_fn": lambda out: out}, "scalar"),
])
@pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")
def test_a_refused_call_leaves_everything_bit_identical(change, message):
    model = _prepared(fail=change.get("fail", False))
    kwargs = {k: v for k, v in change.items() if k in ("target", "loss_fn")}
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match=message) as raised:
        wi.diagnose(model, change.get("batch", X), **kwargs)
    assert "Traceback" not in str(raised.value)
    full_state.assert_same(model, before)


class _Complex(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.complex(self.fc(x), self.fc(x))


@pytest.mark.parametrize(("model", "message"), [
    (_Complex(), r"output is complex \(torch\.complex64\).*Nothing was changed"),
    (nn.Sequential(nn.Linear(8, 0), nn.ReLU(), nn.Linear(0, 4)),
     r"Parameter '0\.weight' has shape \(0, 8\), no elements.*at least one unit"),
    (nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 0)), r"Parameter '1\.weight' has shape"),
])
def test_complex_outputs_and_empty_layers_are_refused_and_change_nothing(model, message):
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(2))
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match=message):
        wi.diagnose(model, x)
    full_state.assert_same(model, before)


def test_an_expert_called_on_no_tokens_is_not_an_empty_layer():
    class Routed(nn.Module):  # a layer whose weights are fine but whose first call is empty
        def __init__(self) -> None:
            super().__init__()
            self.expert, self.out = nn.Linear(8, 8), nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            picked = x[x[:, 0] > 1e9]  # no row
            return self.out(x) + self.expert(picked).sum()

    diagnosis = wi.diagnose(Routed(), torch.randn(32, 8))
    assert diagnosis["expert"].out_nonfinite == 0


class _Unpicklable(nn.Module):
    """An activation module holding a lock: copy.deepcopy raises TypeError on it."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


def test_modules_that_cannot_be_deep_copied_are_measured():
    model = nn.Sequential(nn.Linear(8, 8), _Unpicklable(), nn.Linear(8, 8), _Unpicklable(),
                          nn.Linear(8, 4))
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(3))
    before = full_state.capture(model)
    assert len(wi.diagnose(model, x).layers) == 3
    full_state.assert_same(model, before)
    wi.lsuv(model, x)  # LSUV too (it changes the weights, on purpose)


HOSTILE = ["[/x]", "[link=file:///etc/passwd]click[/link]", "[bold red]loud", "\ud800"]


def _named(name: str) -> nn.Sequential:
    model = nn.Sequential()
    model.add_module(name, nn.Linear(4, 4))
    model.add_module("act", nn.ReLU())
    model.add_module("out", nn.Linear(4, 4))
    with torch.no_grad():
        model.out.weight.mul_(1e3)  # a finding that names layers
    return model


@pytest.mark.parametrize("name", HOSTILE)
def test_module_names_are_text_in_the_table(name):
    from rich.console import Console

    diagnosis = wi.diagnose(_named(name), torch.randn(32, 4))
    console = Console(record=True, width=250, file=io.StringIO())
    console.print(diagnosis.table())
    text = console.export_text()
    shown = name.encode("utf-8", "backslashreplace").decode("utf-8")
    assert shown in text
    assert "href" not in console.export_html()  # no hyperlink hides the real name
    text.encode("utf-8")  # printable to any UTF-8 terminal


@pytest.mark.parametrize("name", HOSTILE)
def test_module_names_never_crash_the_figures_or_the_html(name, tmp_path):
    pytest.importorskip("matplotlib")
    diagnosis = wi.diagnose(_named(name), torch.randn(32, 4))
    path = diagnosis.save_html(tmp_path / "report.html")
    html = Path(path).read_text(encoding="utf-8")
    assert name.encode("utf-8", "backslashreplace").decode("utf-8") in html
    assert "<a " not in html


@pytest.mark.parametrize("path", [None, 3, b"report.html"])
def test_save_html_refuses_what_is_not_a_path(path, tmp_path):
    diagnosis = wi.diagnose(_named("fc"), torch.randn(32, 4))
    with pytest.raises(wi.InitError, match="`path`"):
        diagnosis.save_html(path)


def test_warnings_filters_are_left_alone():
    model = _prepared()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        filters = list(warnings.filters)
        wi.diagnose(model, X)
        assert warnings.filters == filters


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)  # the constructor's draws: a fixed model
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_a_callers_no_grad_does_not_turn_the_backward_pass_off():
    model, x = _mlp(), torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    plain = wi.diagnose(model, x)
    with torch.no_grad():
        quiet = wi.diagnose(model, x)
    assert all(layer.grad_out_rms is not None for layer in quiet.layers)
    assert [layer.grad_out_rms for layer in quiet.layers] == [
        layer.grad_out_rms for layer in plain.layers]


def test_inference_mode_is_refused_and_nothing_changes():
    model, x = _mlp(), torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    before = full_state.capture(model)
    with torch.inference_mode(), pytest.raises(wi.InitError, match="inference_mode"):
        wi.diagnose(model, x)
    full_state.assert_same(model, before)


def test_a_loss_or_gradient_that_is_not_finite_is_an_error():
    model, x = _mlp(), torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    d = wi.diagnose(model, x, loss_fn=lambda out: out.sum() * float("nan"))
    assert not d.healthy and any(f.kind == "nonfinite" and f.severity == "error"
                                 for f in d.findings)


def test_a_backward_pass_that_fails_is_an_init_error_and_nothing_changes():
    model, x = _mlp(), torch.randn(64, 8, generator=torch.Generator().manual_seed(0))

    def broken(*_: object) -> None:
        raise RuntimeError("hook exploded")

    model[2].register_full_backward_hook(broken)
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match="backward pass failed: RuntimeError: hook exploded"):
        wi.diagnose(model, x)
    full_state.assert_same(model, before)


def test_a_loss_that_is_not_a_scalar_is_named_by_its_shape():
    model, x = _mlp(), torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(wi.InitError, match=r"shape \(64, 4\)") as info:
        wi.diagnose(model, x, loss_fn=lambda out: out)
    assert "\n" not in str(info.value)


def test_an_escape_sequence_in_a_module_name_never_reaches_the_terminal():
    """A module named "\\x1b[31mred" printed as its escape in every table (plan, lsuv,
    diagnose): the raw ESC would recolour or move the user's terminal."""
    from rich.console import Console

    model = nn.Sequential()
    model.add_module("\x1b[31mred", nn.Linear(8, 8))
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    for table in (wi.init_model(model, dry_run=True).table(), wi.lsuv(model, x).table(),
                  wi.diagnose(model, x).table()):
        out = io.StringIO()
        Console(file=out, width=120, color_system=None).print(table)
        assert "\x1b" not in out.getvalue() and "\\x1b[31mred" in out.getvalue()
