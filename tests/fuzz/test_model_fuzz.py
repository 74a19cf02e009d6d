"""Property-based fuzzing of the model layer and the data-driven calls: `init_model` (dry run
or not) with random policies, `lsuv` and `diagnose` on random batches, over random small models.

Each call succeeds or raises `InitError`; refused, it leaves the model (parameter bits and
objects, grads, requires_grad, buffers, training flags, hooks, the module tree) and the process
(torch/Python/NumPy RNG, warning filters, grad mode, threads) exactly as they were. Succeeding,
it changes only what it says: `init_model` the parameters its plan fills (finite, the same bits
for the same seed, reproduced by the plan), `lsuv` weights and biases, `diagnose` nothing."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import fuzz_models as fm
import fuzz_strategies as fs
import torch
from fuzz_snapshot import Snapshot, float_params_finite, same_parameters
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

import weightinit as wi


def _call(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    """`fn(*args, **kwargs)` with warnings recorded; (result, None) or (None, the InitError)."""
    try:
        result = fn(*args, **kwargs)
    except wi.InitError as exc:
        assert str(exc).strip(), "an InitError without a message"
        event(f"{fn.__name__}: refused")  # --hypothesis-show-statistics counts them
        return None, exc
    event(f"{fn.__name__}: succeeded")
    return result, None


def _values(snapshot: Snapshot) -> tuple[str, ...]:
    """The names of parameter values in a snapshot (what a successful init may change)."""
    return tuple(n for n in snapshot.parts if n.startswith("value "))


_PARAMETRIZED = re.compile(r"\.?parametrizations\.([^.]+)\.original\d*$")


def _logical(name: str) -> str:
    """A parametrized weight's stored tensors ('0.parametrizations.weight.original0') by the
    name the plan gives them ('0.weight')."""
    return _PARAMETRIZED.sub(lambda m: f".{m.group(1)}" if m.start() else m.group(1), name)


def _kept_changed(before: Snapshot, after: Snapshot, filled: set[str]) -> list[str]:
    """Parameters the plan keeps whose values changed."""
    return [n for n in _values(before) if _logical(n[len("value "):]) not in filled
            and before.parts[n] != after.parts[n]]


# A parametrization's buffers (orthogonal's `base`) hold its weight's value: filling the weight
# through right_inverse rewrites them.
def _parametrization_buffers(snapshot: Snapshot) -> tuple[str, ...]:
    return tuple(n for n in snapshot.parts if n.startswith("buffer ") and ".parametrizations."
                 in n)


# --- init_model ------------------------------------------------------------------------------
only_values = st.one_of(
    st.none(), st.none(), st.none(),
    st.lists(st.sampled_from(["0.weight", "*.bias", "*", "1.*", "nothing", "extra", ""]),
             max_size=3),
    st.sampled_from(["0.weight", 3, [None], ("*",)]),
)
"""`only=`: mostly absent; names, globs, a buffer's name, none that match, or not names."""


@given(fm.model_recipes(), fm.policy_recipes(), st.one_of(st.none(), fm.batch_recipes),
       st.booleans(), st.one_of(st.integers(0, 3), fs.seeds), only_values)
# StopIteration from discovery's input synthesis: a parametrized layer without a bias owns no
# parameter directly. The orthogonal parametrization's `base` buffer is its weight's value.
@example(recipe=fm.ModelRecipe("mlp", 3, (("linear", (2, False, 1, 1)),),
                               parametrize="weight_norm"),
         policy_recipe=fm.PolicyRecipe("auto"), batch=None, dry_run=False, seed=0, only=None)
@example(recipe=fm.ModelRecipe("mlp", 5, (("residual", "relu"),), parametrize="orthogonal"),
         policy_recipe=fm.PolicyRecipe("torch"), batch=None, dry_run=False, seed=0, only=None)
def test_init_model_fills_what_its_plan_says_or_changes_nothing(recipe, policy_recipe, batch,
                                                                dry_run, seed, only):
    model = recipe.build()
    inputs = None if batch is None else batch.build(recipe)
    extra = {} if only is None else {"only": only}
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        before = Snapshot.take(model)
        try:
            policy = policy_recipe.build()
        except wi.InitError:
            return
        plan, error = _call(wi.init_model, model, policy, seed=seed, example_inputs=inputs,
                            dry_run=dry_run, **extra)
        after = Snapshot.take(model)
    if error is not None or dry_run:
        before.assert_same(after, f"init_model {'refused' if error else 'dry run'}")
        return
    before.assert_same(after, "init_model", ignore=("value ", *_parametrization_buffers(before)))
    filled = {n for row in plan if row.spec is not None for n in (row.name, *row.aliases)}
    assert _kept_changed(before, after, filled) == [], "kept params changed"
    bad = {_logical(n) for n in float_params_finite(model)} & filled
    assert not bad, f"non-finite values in {sorted(bad)}"
    json.loads(plan.to_json())  # the plan serializes
    again = recipe.build()  # the same call on the same model: the same bits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wi.init_model(again, policy_recipe.build(), seed=seed, example_inputs=(
            None if batch is None else batch.build(recipe)), **extra)
    assert same_parameters(model, again) == [], "a second run gave other bits"
    replay = recipe.build()  # the plan, through JSON, reproduces the result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wi.InitPlan.from_json(plan.to_json()).apply(replay)
    assert same_parameters(model, replay) == [], "plan.apply gave other bits"


# --- materialize -----------------------------------------------------------------------------
@given(fm.model_recipes(), fm.policy_recipes(), st.integers(0, 3))
# AssertionError from torch's Module._apply: meta parameters with (meta) grads
@example(recipe=fm.ModelRecipe("mlp", 2, (("linear", (2, True, 1, 1)),), grads=True),
         policy_recipe=fm.PolicyRecipe("auto"), seed=0)
def test_materialize_equals_init_model_or_changes_nothing(recipe, policy_recipe, seed):
    try:
        with torch.device("meta"):
            model = recipe.build()
    except RuntimeError:  # torch's orthogonal parametrization checks its value (.item())
        assume(False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        before = Snapshot.take(model)
        try:
            policy = policy_recipe.build()
        except wi.InitError:
            return
        plan, error = _call(wi.materialize, model, device="cpu", seed=seed, policy=policy)
        after = Snapshot.take(model)
    if error is not None:
        before.assert_same(after, "materialize refused")
        return
    on_meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    assert not on_meta, f"still on meta: {on_meta}"
    filled = {n for row in plan if row.spec is not None for n in (row.name, *row.aliases)}
    bad = {_logical(n) for n in float_params_finite(model)} & filled
    assert not bad, f"non-finite values in {sorted(bad)}"
    reference = recipe.build()  # the same model on the CPU, through init_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wi.init_model(reference, policy_recipe.build(), seed=seed)
        except wi.InitError:
            return
    differ = [n for n in same_parameters(model, reference) if _logical(n) in filled]
    assert differ == [], f"materialize != init_model for {differ}"


# --- lsuv ------------------------------------------------------------------------------------
lsuv_options = st.one_of(
    st.just((1.0, 0.02, 10, 0)),
    st.tuples(st.floats(0.1, 3.0), st.floats(1e-3, 0.2), st.integers(1, 4), st.integers(0, 3)),
    st.tuples(fs.positive(1e-3, 10.0), fs.positive(1e-4, 0.5),
              st.one_of(st.integers(-1, 5), fs.weird_values), fs.seeds),
)
"""(target_std, tol, max_iter, seed): the defaults, ordinary values, or anything."""


@given(fm.model_recipes(), fm.batch_recipes, lsuv_options)
# KeyError: a parametrized weight ('0.weight' is not a parameter's name)
@example(recipe=fm.ModelRecipe("mlp", 3, (("linear", (2, True, 1, 1)),),
                               parametrize="weight_norm"),
         batch=fm.BatchRecipe("good", 4, 0), options=(1.0, 0.02, 10, 0))
@example(recipe=fm.ModelRecipe("mlp", 3, (("linear", (2, True, 1, 1)),),
                               parametrize="spectral_norm"),
         batch=fm.BatchRecipe("good", 4, 0), options=(1.0, 0.02, 10, 0))
def test_lsuv_calibrates_or_changes_nothing(recipe, batch, options):
    target_std, tol, max_iter, seed = options
    model = recipe.build()
    x = batch.build(recipe)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        before = Snapshot.take(model)
        report, error = _call(wi.lsuv, model, x, target_std=target_std, tol=tol,
                              max_iter=max_iter, seed=seed)
        after = Snapshot.take(model)
    if error is not None:
        before.assert_same(after, "lsuv refused")
        return
    before.assert_same(after, "lsuv", ignore=("value ", *_parametrization_buffers(before)))
    bad = float_params_finite(model)
    assert not bad, f"lsuv left non-finite values in {bad} (the poisoned ones were re-drawn?)"
    assert isinstance(report.converged, bool)
    json.dumps(report.to_dict())
    again = recipe.build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wi.lsuv(again, batch.build(recipe), target_std=target_std, tol=tol,
                max_iter=max_iter, seed=seed)
    assert same_parameters(model, again) == [], "a second lsuv gave other bits"


# --- diagnose --------------------------------------------------------------------------------
@given(fm.model_recipes(), fm.batch_recipes,
       st.sampled_from(["none", "none", "none", "ints", "floats", "bad"]),
       st.sampled_from([None, None, None, "mse", "not_callable", "raises", "vector"]))
def test_diagnose_reports_or_refuses_and_never_changes_the_model(recipe, batch, target, loss):
    model = recipe.build()
    x = batch.build(recipe)
    out_dim = _output_dim(recipe)
    targets = {"none": None, "ints": _int_target(batch.size, out_dim),
               "floats": _float_target(batch.size, out_dim), "bad": "labels"}[target]
    loss_fn = {None: None, "not_callable": 3,
               "mse": lambda out, *t: out.float().pow(2).mean(),
               "raises": lambda out, *t: (_ for _ in ()).throw(RuntimeError("loss failed")),
               "vector": lambda out, *t: out.float().reshape(-1)}[loss]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        before = Snapshot.take(model)
        result, error = _call(wi.diagnose, model, x, target=targets, loss_fn=loss_fn)
        after = Snapshot.take(model)
    before.assert_same(after, f"diagnose {'refused' if error else 'succeeded'}")
    if error is None:
        assert isinstance(result.healthy, bool)
        json.loads(result.to_json())
        result.table()


def _output_dim(recipe: fm.ModelRecipe) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = recipe.build().eval()
        try:
            out = model(fm.BatchRecipe().build(recipe))
        except Exception:
            return 1
    return int(out.shape[-1]) if out.dim() else 1


def _int_target(size: int, classes: int) -> Any:
    return torch.arange(size) % max(classes, 1)


def _float_target(size: int, dim: int) -> Any:
    return torch.zeros(size, dim)
