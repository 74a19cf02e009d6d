"""LSUV changes the weights it calibrates and nothing else; when it is refused, it changes
nothing at all (buffers by module and name, non-persistent ones too, .grad, requires_grad,
train/eval flags, hooks, the global RNGs); its messages say what is really wrong; its table
shows module names as text."""

from __future__ import annotations

import importlib.util
import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import weightinit as wi

_spec = importlib.util.spec_from_file_location(
    "diagnose_full_state", Path(__file__).parents[1] / "diagnose" / "full_state.py")
assert _spec is not None and _spec.loader is not None
full_state = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(full_state)

X = torch.randn(128, 16, generator=torch.Generator().manual_seed(1))


class Stateful(nn.Module):
    """A forward that writes state before the calibrated layers run: an EMA that replaces its
    buffer object, a non-persistent counter updated in place, draws from torch's, Python's and
    NumPy's global RNGs; `fail` raises after the first layer from the third pass on (the
    first is discovery's, the second stops at fc1 once it is measured: fc2's fails)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 4)
        self.register_buffer("avg", torch.zeros(16))
        self.register_buffer("calls", torch.zeros(()), persistent=False)
        self.fail = fail
        self.passes = 0  # a plain attribute: not restored (it counts for the test)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.passes += 1
        self.calls.add_(1)
        self.avg = 0.9 * self.avg + 0.1 * x.mean(0)
        torch.rand(1)
        random.random()
        np.random.rand()  # noqa: NPY002 (the global RNG, on purpose)
        h = torch.relu(self.fc1(x))
        if self.fail and self.passes >= 3:
            raise RuntimeError("the forward gave up")
        return self.fc2(h)


def _prepared(fail: bool = False) -> Stateful:
    torch.manual_seed(0)
    model = Stateful(fail)
    model.fc2(torch.randn(8, 32)).sum().backward()  # .grad on fc2
    model.fc1.bias.requires_grad_(False)
    model.fc2.training = False  # mixed modes
    model.fc1.register_forward_hook(lambda m, a, o: None)  # the user's own hook stays
    return model


def _without_values(state: dict[str, object]) -> dict[str, object]:
    """The capture with each parameter reduced to (object, requires_grad, dtype)."""
    return {k: (v[0], v[2], v[3]) if k.startswith("param:") and isinstance(v, tuple) else v
            for k, v in state.items()}


def test_success_changes_the_calibrated_weights_and_nothing_else():
    model = _prepared()
    before = full_state.capture(model)
    avg = model.avg
    report = wi.lsuv(model, X)
    assert [x.name for x in report.layers] == ["fc1", "fc2"]
    assert model.avg is avg and not torch.equal(model.fc1.weight, before["param:fc1.weight"][1])
    after = full_state.capture(model)
    kept, now = _without_values(before), _without_values(after)
    assert [k for k in kept if not full_state._same(kept[k], now[k])] == []


def test_a_failure_midway_changes_nothing():
    model = _prepared(fail=True)
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match=r"calibrating 'fc2'.*the forward gave up"):
        wi.lsuv(model, X)  # fc1 was calibrated when fc2's pass failed
    full_state.assert_same(model, before)


def test_a_failure_restores_non_persistent_buffers_that_state_dict_omits():
    class Counter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 8)
            self.register_buffer("seen", torch.zeros(16), persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.seen.add_(x.abs().mean(0))  # before the layer: every probe pass adds
            return self.fc(x * 0.0)  # the bias alone, zeroed by LSUV: constant, refused

    model = Counter()
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match="constant output"):
        wi.lsuv(model, X)
    full_state.assert_same(model, before)


def test_eval_mode_is_set_by_flag_not_through_an_overridden_train():
    class Strict(nn.Sequential):
        def train(self, mode: bool = True) -> Strict:
            raise AssertionError("an overridden train() was called")

    model = Strict(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    nn.Module.train(model, True)
    report = wi.lsuv(model, X)
    assert report.converged and model.training and model[2].training


@pytest.mark.parametrize(("target", "message"), [
    (1e300, r"`target_std` \(=1e\+300\) needs '0\.weight' scaled by .*float32 cannot hold "
            r"\(largest 3\.4e\+38\)"),
    (1e-300, r"`target_std` \(=1e-300\).*smallest normal"),
    (10 ** 400, r"`target_std` must be finite"),
])
def test_a_target_std_the_dtype_cannot_hold_is_named_not_the_batch(target, message):
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match=message) as raised:
        wi.lsuv(model, X, target_std=target)
    assert "batch" not in str(raised.value)
    full_state.assert_same(model, before)


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Linear(16, 0), nn.ReLU(), nn.Linear(0, 4)),
    nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 0)),
])
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")
def test_an_empty_layer_is_named_not_the_batch(model):
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match=r"has an empty weight .* no input or no output "
                                           r"units") as raised:
        wi.lsuv(model, X)
    assert "Check the batch" not in str(raised.value)
    full_state.assert_same(model, before)


def test_a_single_output_value_is_refused_with_the_reason():
    model = nn.Sequential(nn.Linear(16, 1))
    with pytest.raises(wi.InitError, match=r"returns 1 value .*a std needs at least two"):
        wi.lsuv(model, X[:1])


@pytest.mark.parametrize("name", ["[/x]", "[link=file:///etc/passwd]click[/link]",
                                  "[bold red]loud"])
def test_the_table_shows_names_as_text(name):
    from rich.console import Console

    model = nn.Sequential()
    model.add_module(name, nn.Linear(16, 16))
    model.add_module("act", nn.ReLU())
    model.add_module("out", nn.Linear(16, 4))
    console = Console(record=True, width=250, file=io.StringIO())
    console.print(wi.lsuv(model, X).table())
    assert f"{name} (exact)" in console.export_text()
    assert "href" not in console.export_html()


def test_a_meta_batch_is_refused_and_changes_nothing():
    model = _prepared()
    before = full_state.capture(model)
    with pytest.raises(wi.InitError, match=r"meta tensor .* pass a batch on a real device"):
        wi.lsuv(model, torch.empty(128, 16, device="meta"))
    full_state.assert_same(model, before)
