"""init_model's "auto" policy on a zoo of real architectures (tests/zoo/models.py): Hugging Face
models built from tiny configs, offline, and plain-torch cases.

For each model, built once with its own init under torch.manual_seed(0): `own` is a deepcopy of
it, `auto` the model after ``wi.init_model(model, example_inputs=inputs)``. Then, each its own
test so that a failure names the model and the check:
  - init_model runs, and every parameter has a row (or is an alias of one; a parametrization's
    originals may be planned as the tensor they compute);
  - no row has role "unknown" unless it is kept with a note saying why;
  - every kept row is bit-identical to the own init;
  - the forward pass after auto is finite;
  - the RMS of the last hidden state and of the stream into the final norm is within
    [0.5, 2] x the own init's, or, where the plan says auto keeps an "RMS of order 1" (its
    variance-preserving scale, against e.g. transformers' N(0, 0.02)), within [0.2, 5];
  - ``wi.diagnose`` after auto finds nothing at warning or error.
A torch.compile'd model is measured through its eager `_orig_mod` (its own forward would
compile); init_model and diagnose get the wrapper. A model that init_model must refuse
(nn.LazyLinear) has its own test: an InitError that names the parameter and says to run one
forward pass first.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import zoo_measure as zm
import zoo_models as zoo
from torch import nn

import weightinit as wi

pytest.importorskip("transformers", reason="the [hf] extra is not installed")

RATIO = (0.5, 2.0)
# auto's plans say which scale it keeps (an RMS of order 1 at every depth); where the model's
# own init keeps another (N(0, 0.02): a stream near 0.02-0.1), auto's must then be of order 1.
SCALE_NOTE = re.compile(r"RMS of order 1")
ORDER_ONE = (0.2, 5.0)
RUNS = [name for name, case in zoo.ZOO.items() if case.raises is None]
REFUSED = [name for name, case in zoo.ZOO.items() if case.raises is not None]


@dataclass
class Run:
    name: str
    case: zoo.Case
    own: nn.Module
    auto: nn.Module
    inputs: dict[str, Any]
    plan: wi.InitPlan | None
    error: BaseException | None

    def need_plan(self) -> wi.InitPlan:
        if self.plan is None:
            raise AssertionError(f"{self.name}: init_model failed: "
                                 f"{type(self.error).__name__}: {self.error}") from self.error
        return self.plan


@functools.cache
def run(name: str) -> Run:
    """Build `name` (torch seeded: the model's own init is reproducible), keep a copy, auto it."""
    case = zoo.ZOO[name]
    with torch.random.fork_rng(devices=[]):  # the global RNG is put back afterwards
        torch.manual_seed(0)
        model, inputs = case.build()
    own = copy.deepcopy(model)
    try:
        plan, error = wi.init_model(model, example_inputs=inputs), None
    except Exception as exc:  # reported by every test that needs the plan
        plan, error = None, exc
    return Run(name, case, own, model, inputs, plan, error)


@functools.cache
def measured(name: str, which: str) -> zm.Measurement:
    r = run(name)
    return zm.measure(getattr(r, which), r.inputs, hidden=r.case.hidden,
                      hidden_states_kwarg=r.case.hidden_states_kwarg)


def params(model: nn.Module) -> dict[str, torch.Tensor]:
    found = dict(model.named_parameters(remove_duplicate=False))
    inner = zm.unwrap(model)
    if inner is not model:  # torch.compile: the same parameters, with and without _orig_mod.
        found.update(inner.named_parameters(remove_duplicate=False))
    return found


def tensor_of(model: nn.Module, name: str) -> torch.Tensor | None:
    """The parameter `name`, or the tensor a parametrization computes under that name
    (weight_norm's `net.0.weight`), or None."""
    found = params(model).get(name)
    if found is not None:
        return found
    owner, _, attr = name.rpartition(".")
    try:
        value = getattr(zm.unwrap(model).get_submodule(owner), attr)
    except AttributeError:
        return None
    return value.detach() if isinstance(value, torch.Tensor) else None


def logical_name(name: str) -> str:
    """`a.parametrizations.weight.original0` -> `a.weight`; `_orig_mod.` dropped."""
    name = name.removeprefix("_orig_mod.")
    head, sep, tail = name.partition(".parametrizations.")
    return f"{head}.{tail.split('.')[0]}" if sep else name


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


zoo_names = pytest.mark.parametrize("name", RUNS)


@zoo_names
def test_init_model_runs(name):
    run(name).need_plan()


@zoo_names
def test_no_unknown_role_without_a_reason(name):
    plan = run(name).need_plan()
    bad = [f"{row.name} {tuple(row.shape)} kept={row.kept} note={row.note!r}" for row in plan
           if row.role == "unknown" and not (row.kept and row.note.strip())]
    assert not bad, f"{name}: role 'unknown' and not kept with a reason:\n  " + "\n  ".join(bad)


@zoo_names
def test_every_parameter_has_a_row(name):
    r = run(name)
    plan = r.need_plan()
    covered = {n for row in plan for n in (row.name, *row.aliases)}
    names = set(dict(r.auto.named_parameters(remove_duplicate=False)))
    # torch.compile's wrapper adds "_orig_mod." to every name, and a parametrization's
    # originals may be planned as the tensor they compute (`a.weight`): either form counts
    missing = sorted(n for n in names
                     if n not in covered and n.removeprefix("_orig_mod.") not in covered
                     and logical_name(n) not in covered)
    assert not missing, f"{name}: parameters without a row: {missing}"


@zoo_names
def test_kept_rows_are_bit_identical_to_the_own_init(name):
    r = run(name)
    plan = r.need_plan()
    changed = []
    for row in plan:
        if not row.kept:
            continue
        for n in (row.name, *row.aliases):
            own, auto = tensor_of(r.own, n), tensor_of(r.auto, n)
            if own is None or auto is None:
                changed.append(f"{n}: not a parameter of the model")
            elif not torch.equal(own, auto):
                changed.append(f"{n} {tuple(own.shape)}")
    assert not changed, f"{name}: kept rows changed:\n  " + "\n  ".join(changed)


@zoo_names
def test_forward_is_finite_after_auto(name):
    run(name).need_plan()
    m = measured(name, "auto")
    assert m.finite, f"{name}: non-finite outputs after auto: {list(m.nonfinite)}"


def _scale_notes(plan: wi.InitPlan) -> list[str]:
    return [note for note in plan.notes if SCALE_NOTE.search(note)]


def _check_ratio(name: str, what: str, own: float | None, auto: float | None,
                 plan: wi.InitPlan) -> None:
    assert (own is None) == (auto is None), f"{name}: {what} measured for one copy only"
    if own is None or auto is None:
        return
    ratio = auto / own if own > 0 else float("inf")
    if _scale_notes(plan) and not RATIO[0] <= ratio <= RATIO[1]:
        assert ORDER_ONE[0] <= auto <= ORDER_ONE[1], (
            f"{name}: {what} RMS auto {auto:.4g} (own {own:.4g}): the plan says auto keeps an "
            f"RMS of order 1, and this is outside {list(ORDER_ONE)}")
        return
    assert RATIO[0] <= ratio <= RATIO[1], (
        f"{name}: {what} RMS auto {auto:.4g} vs own {own:.4g} (x{ratio:.3g}), outside "
        f"[{RATIO[0]}, {RATIO[1]}]x; plan notes: {list(plan.notes)}")


@zoo_names
def test_last_hidden_rms_is_near_the_own_init(name):
    plan = run(name).need_plan()
    own, auto = measured(name, "own"), measured(name, "auto")
    assert auto.finite, f"{name}: non-finite outputs after auto: {list(auto.nonfinite)}"
    for key in own.hidden:
        _check_ratio(name, f"last hidden state ({key})", own.hidden[key], auto.hidden[key], plan)


@zoo_names
def test_stream_rms_before_the_final_norm_is_near_the_own_init(name):
    plan = run(name).need_plan()
    own, auto = measured(name, "own"), measured(name, "auto")
    assert auto.finite, f"{name}: non-finite outputs after auto: {list(auto.nonfinite)}"
    _check_ratio(name, f"stream into {own.stream_norm}", own.stream, auto.stream, plan)


@functools.cache
def diagnosis(name: str) -> wi.Diagnosis:
    r = run(name)
    return wi.diagnose(r.auto, r.inputs)  # a torch.compile wrapper is unwrapped by diagnose


@zoo_names
def test_diagnose_is_healthy_after_auto(name):
    run(name).need_plan()
    found = [f for f in diagnosis(name).findings if f.severity in ("warning", "error")]
    assert not found, f"{name}: diagnose after auto:\n  " + "\n  ".join(
        f"{f.severity} {f.kind} at {f.layer or '(model)'}: {f.message}" for f in found)


@pytest.mark.parametrize("name", REFUSED)
def test_refused_with_a_fix(name):
    case = zoo.ZOO[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, inputs = case.build()
    lazy = {n for n, p in model.named_parameters()
            if isinstance(p, nn.parameter.UninitializedParameter)}
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n not in lazy}
    with pytest.raises(wi.InitError, match=case.raises):
        wi.init_model(model, example_inputs=inputs)
    after = dict(model.named_parameters())
    still = {n for n, p in after.items() if isinstance(p, nn.parameter.UninitializedParameter)}
    assert still == lazy, f"{name}: lazy parameters materialized by a failed init_model"
    assert all(torch.equal(before[n], after[n]) for n in before), f"{name}: model changed"
