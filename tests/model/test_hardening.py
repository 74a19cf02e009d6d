"""The model layer under hostile inputs (many found by a fuzzer): every failure and every dry run
leaves the model exactly as it was (weights, buffers, grads, requires_grad, train/eval flags,
hooks, module attributes), and every user mistake is an InitError that says what to do."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
import torch
from torch import nn

import weightinit as wi
from weightinit.model import _apply, _probe


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def snapshot(model: nn.Module) -> dict[str, object]:
    """Everything a call must leave as it was: values (cloned) of parameters, buffers and
    grads, requires_grad, every module's training flag, hook counts and attribute objects."""
    state: dict[str, object] = {}
    for name, tensor in [*model.named_parameters(remove_duplicate=False),
                         *model.named_buffers(remove_duplicate=False)]:
        state[name] = (tensor, _dense(tensor), tensor.requires_grad,
                       None if tensor.grad is None else tensor.grad.clone())
    for name, module in model.named_modules(remove_duplicate=False):
        hooks = tuple(len(getattr(module, kind)) for kind in (
            "_forward_hooks", "_forward_pre_hooks", "_backward_hooks"))
        attributes = {k: v for k, v in vars(module).items()
                      if k not in ("_parameters", "_buffers", "_modules")}
        state[f"module:{name}"] = (module.training, hooks, attributes)
    return state


def _dense(tensor: torch.Tensor) -> torch.Tensor:
    values = tensor.detach().clone()
    return values.to_dense() if values.layout != torch.strided else values


def assert_unchanged(model: nn.Module, before: dict[str, object]) -> None:
    after = snapshot(model)
    assert after.keys() == before.keys()
    for key, value in before.items():
        if key.startswith("module:"):
            training, hooks, attributes = value  # type: ignore[misc]
            now_training, now_hooks, now_attributes = after[key]  # type: ignore[misc]
            assert (now_training, now_hooks) == (training, hooks), key
            assert now_attributes.keys() == attributes.keys(), key
            for attr, obj in attributes.items():
                assert now_attributes[attr] is obj or now_attributes[attr] == obj, (key, attr)
            continue
        tensor, values, requires_grad, grad = value  # type: ignore[misc]
        now, _, now_requires_grad, now_grad = after[key]  # type: ignore[misc]
        assert now is tensor, key
        assert now.dtype == values.dtype and now.device == values.device, key
        assert (now.is_meta and values.is_meta) or torch.equal(_dense(now), values), key
        assert now_requires_grad == requires_grad, key
        assert (grad is None) == (now_grad is None), key
        if grad is not None:
            assert torch.equal(grad, now_grad), key


# --- failures and dry runs that changed the model ---------------------------------------------
def _inference() -> nn.Parameter:
    with torch.inference_mode():  # e.g. a layer built inside an inference server's context
        return nn.Parameter(torch.randn(2, 8))


@pytest.mark.parametrize(("make", "message"), [
    (_inference, "inference tensor"),
    (lambda: nn.Parameter(torch.randn(1, 8).expand(2, 8)), "expanded"),
    (lambda: nn.Parameter(torch.randn(2, 8).to_sparse()), "sparse_coo"),
])
def test_a_parameter_that_cannot_be_written_is_refused_before_any_copy(make, message):
    model = mlp()
    model[2].weight = make()  # the last parameter: the others would be copied before it
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = snapshot(model)
    with pytest.raises(wi.InitError, match=f"'2.weight'.*{message}.*No parameter was changed"):
        # (a sparse weight fails every forward: planned without dataflow, with a warning)
        wi.init_model(model, example_inputs=None if message == "sparse_coo" else torch.randn(
            3, 4))
    assert_unchanged(model, before)


class Fragile(torch.Tensor):
    """A tensor subclass whose in-place copy fails for the tensors in `BROKEN` (a device
    lost in the middle of the writes)."""

    BROKEN: ClassVar[list[torch.Tensor]] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is torch.Tensor.copy_ and any(args[0] is b for b in cls.BROKEN):
            raise RuntimeError("device lost (simulated)")
        return super().__torch_function__(func, types, args, kwargs or {})


def _fragile_model() -> tuple[nn.Module, nn.Parameter]:
    model = mlp()
    for layer in (model[0], model[2]):
        layer.weight = nn.Parameter(layer.weight.detach().clone().as_subclass(Fragile))
    return model, model[2].weight


def test_a_write_that_fails_after_the_checks_is_rolled_back():
    model, last = _fragile_model()
    assert _apply._risky(last)  # a subclass: backed up, written first
    before = snapshot(model)
    plan = wi.init_model(model, dry_run=True, example_inputs=torch.randn(3, 4))
    Fragile.BROKEN[:] = [last]
    try:
        with pytest.raises(wi.InitError, match=r"device lost.*No parameter was changed"):
            plan.apply(model)
    finally:
        Fragile.BROKEN.clear()
    assert_unchanged(model, before)
    plan.apply(model)  # and it works once the device is back
    assert not torch.equal(model[0].weight.detach(), before["0.weight"][1])  # type: ignore[index]


def test_a_plain_write_that_fails_says_what_was_written(monkeypatch):
    # Writes the checks vouch for are not backed up (no memory cost); one failing anyway would
    # be a bug, and the message must not claim that nothing changed.
    model, last = _fragile_model()
    monkeypatch.setattr(_apply, "_risky", lambda tensor: False)
    Fragile.BROKEN[:] = [last]
    try:
        with pytest.raises(wi.InitError, match="bug in weightinit") as caught:
            wi.init_model(model, example_inputs=torch.randn(3, 4))
    finally:
        Fragile.BROKEN.clear()
    assert "'0.weight'" in str(caught.value) and "No parameter was changed" not in str(
        caught.value)


class Clamped(nn.Module):
    """A forward that edits its weights in place: a clamp and a max-norm constraint."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.fc.weight.data.clamp_(-0.01, 0.01)
        with torch.no_grad():
            self.out.weight.renorm_(2, 0, 1e-3)
        return self.out(torch.relu(self.fc(x)))


@pytest.mark.parametrize("example_inputs", [None, torch.randn(3, 4)])
def test_a_dry_run_does_not_let_the_forward_edit_the_weights(example_inputs):
    model = Clamped()
    before = snapshot(model)
    wi.init_model(model, dry_run=True, example_inputs=example_inputs)
    assert_unchanged(model, before)  # the weights, and `calls` too (an attribute)


def test_a_run_that_fails_after_the_probe_does_not_let_the_forward_edit_the_weights():
    model = Clamped()
    before = snapshot(model)
    failing = wi.Policy([wi.Rule(lambda info: 1 / 0, name="out.weight"),
                         wi.Policy.preset("auto")])
    with pytest.raises(wi.InitError, match="ZeroDivisionError"):
        wi.init_model(model, failing, example_inputs=torch.randn(3, 4))
    assert_unchanged(model, before)


class Freezing(nn.Module):
    """A model whose train() does more than set flags: it freezes its backbone."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.ReLU())
        self.head = nn.Linear(8, 2)
        self.train_calls = 0

    def train(self, mode: bool = True) -> Freezing:
        self.train_calls += 1
        super().train(mode)
        for param in self.backbone.parameters():
            param.requires_grad_(not mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


@pytest.mark.parametrize("mode", [True, False])
def test_eval_mode_never_calls_an_overridden_train(mode):
    model = Freezing()
    model.train(mode)
    model.head.train(not mode)  # a mix of flags, kept module by module
    before = snapshot(model)
    wi.init_model(model, dry_run=True)
    with wi.model.eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert_unchanged(model, before)  # requires_grad, flags, and train_calls
    wi.init_model(model, example_inputs=torch.randn(3, 4))
    assert [p.requires_grad for p in model.parameters()] == [
        before[n][2] for n, _ in model.named_parameters()]  # type: ignore[index]
    assert [m.training for m in model.modules()] == [
        before[f"module:{n}"][0] for n, _ in model.named_modules()]  # type: ignore[index]


def _spectral(kind: str) -> nn.Module:
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    layer = (nn.utils.spectral_norm(layer) if kind == "old"
             else nn.utils.parametrizations.spectral_norm(layer))
    model = nn.Sequential(nn.Linear(4, 4), layer, nn.ReLU(), nn.Linear(4, 2)).train()
    model(torch.randn(2, 4))  # the old style keeps `weight` as a plain attribute from here
    return model


@pytest.mark.parametrize("kind", ["old", "new"])
@pytest.mark.parametrize("probe", ["real", "meta"])
@pytest.mark.parametrize("example_inputs", [None, torch.randn(3, 4)])
def test_spectral_norm_in_train_mode_is_untouched_by_a_dry_run(kind, probe, example_inputs,
                                                               monkeypatch):
    if probe == "meta":  # as for a big model: the meta probe first
        monkeypatch.setattr(_probe, "REAL_FIRST_BELOW", 0)
    model = _spectral(kind)
    before = snapshot(model)  # _u, _v bit for bit; the old style's `weight` the same object
    plan = wi.init_model(model, dry_run=True, example_inputs=example_inputs)
    assert probe in plan.notes[0]
    assert_unchanged(model, before)


def _orthogonal() -> nn.Module:
    torch.manual_seed(0)  # a wide weight: right_inverse completes it with torch.randn
    return nn.Sequential(nn.utils.parametrizations.orthogonal(nn.Linear(8, 4)), nn.ReLU(),
                         nn.Linear(4, 2))


def test_orthogonal_parametrization_state_is_written_only_with_the_parameters():
    model = _orthogonal()
    before = snapshot(model)
    failing = wi.Policy([wi.Rule(wi.Normal(float("1e39")), name="2.weight"),
                         wi.Policy.preset("auto")])
    with pytest.raises(wi.InitError):  # the last fill fails after 0.weight's right_inverse
        wi.init_model(model, failing, example_inputs=torch.randn(3, 8))
    assert_unchanged(model, before)  # base included
    rng = torch.get_rng_state()
    wi.init_model(model)
    assert torch.equal(rng, torch.get_rng_state())  # its randn drew from a forked generator
    weight = model[0].weight.detach()
    assert torch.allclose(weight @ weight.T, torch.eye(4), atol=1e-5)
    again = _orthogonal()
    torch.manual_seed(123)  # another global state: the same bits anyway
    wi.init_model(again)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


# --- materialize: refused before anything is allocated ---------------------------------------
def meta_model(complex_layer: bool = False) -> nn.Module:
    with torch.device("meta"):
        layers = [nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)]
        if complex_layer:
            layers.append(nn.Linear(2, 2, dtype=torch.complex64))
        return nn.Sequential(*layers)


def test_materialize_refuses_a_complex_layer_before_allocating():
    model = meta_model(complex_layer=True)
    before = snapshot(model)
    with pytest.raises(wi.InitError, match=r"complex64.*Nothing was changed"):
        wi.materialize(model, device="cpu")
    assert_unchanged(model, before)  # the same meta objects, buffers included


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"buffers": {1: torch.zeros(4)}}, "the key 1 \\(int\\)"),
    ({"buffers": {"1.running_maen": torch.zeros(4)}}, "Did you mean '1.running_mean'"),
    ({"buffers": {"1.running_mean": torch.zeros(3)}}, "shape \\(3,\\)"),
    ({"buffers": {"1.running_mean": [0.0] * 4}}, "got list"),
    ({"buffers": {"1.running_mean": torch.zeros(4, device="meta")}}, "meta tensor"),
    ({"buffers": {"1.running_mean": torch.zeros(4, dtype=torch.complex64)}}, "imaginary"),
    ({"buffers": [("1.running_mean", torch.zeros(4))]}, "must be a dict"),
    ({"device": "cuda:0"}, "CUDA is not available"),
    ({"device": "nonsense"}, "`device`"),
    ({"device": "meta"}, "'meta'"),
    ({"progress": 3}, "`progress`"),
    ({"seed": -1}, "`seed`"),
    ({"policy": 42}, "`policy`"),
])
def test_materialize_refuses_bad_arguments_before_allocating(kwargs, message):
    if kwargs.get("device") == "cuda:0" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    model = meta_model()
    before = snapshot(model)
    arguments = {"device": "cpu", **kwargs}
    with pytest.raises(wi.InitError, match=message):
        wi.materialize(model, **arguments)
    assert_unchanged(model, before)


class Rescaled(nn.Module):
    """A layer whose reset_parameters() re-randomizes its (allocated) scale from the global
    generator while it recomputes its (meta) buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.linspace(1, 2, 4, device="cpu"))  # allocated
        self.register_buffer("noise", torch.empty(4))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.scale.normal_()
            self.noise.copy_(torch.randn(4, device=self.noise.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale + self.noise


def test_materialize_runs_buffer_code_without_touching_rng_or_allocated_parameters():
    results = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # the caller's state: it must not matter, nor move
        with torch.device("meta"):
            model = Rescaled()
        kept = model.scale.detach().clone()
        state = torch.get_rng_state()
        plan = wi.materialize(model, device="cpu")
        assert torch.equal(torch.get_rng_state(), state)
        assert plan["scale"].kept and torch.equal(model.scale.detach(), kept)
        results.append(model.noise.clone())
    assert torch.equal(results[0], results[1])  # the buffer's draws come from a fixed seed


# --- not an InitError before: crashes and bad messages -----------------------------------------
@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Embedding(0, 4), nn.Linear(4, 2)),
    lambda: nn.Sequential(nn.Linear(8, 0)),
    lambda: nn.Sequential(nn.Linear(8, 0), nn.ReLU(), nn.Linear(0, 2)),
    lambda: nn.Sequential(nn.Conv2d(0, 4, 3)),
])
@pytest.mark.filterwarnings("ignore")  # torch and weightinit warn about empty tensors
def test_zero_size_layers_are_planned_and_filled(make):
    model = make()
    plan = wi.init_model(model, dry_run=True)
    assert {r.name for r in plan.rows} == {n for n, _ in model.named_parameters()}
    wi.init_model(model)


class Holding(nn.Module):
    """State copy.deepcopy cannot copy: a lock and a generator."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.lock = threading.Lock()
        self.generator = torch.Generator().manual_seed(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.lock:
            return self.fc(x + torch.rand(x.shape, generator=self.generator))


def test_modules_that_cannot_be_deep_copied_are_initialized():
    model = Holding()
    generator, lock = model.generator, model.lock
    wi.init_model(model, dry_run=True)
    wi.init_model(model)
    with torch.device("meta"):
        meta = Holding()
    wi.materialize(meta, device="cpu")
    assert not meta.fc.weight.is_meta
    assert model.generator is generator and model.lock is lock
    assert lock.acquire(blocking=False)  # released
    lock.release()


@pytest.mark.parametrize(("model", "inputs", "message"), [
    (nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2)), torch.tensor([[3, 50]]),
     "IndexError: index out of range"),
    (nn.Sequential(nn.Linear(4, 2)), torch.randn(3, 4, dtype=torch.float64), "dtype"),
    (nn.Sequential(nn.Linear(4, 2)), torch.zeros(3, 4, dtype=torch.long), "dtype"),
])
def test_inputs_the_real_pass_rejects_are_refused_not_probed_on_meta(model, inputs, message):
    before = snapshot(model)
    with pytest.raises(wi.InitError, match=f"The forward pass on `example_inputs`.*{message}"):
        wi.init_model(model, example_inputs=inputs)
    assert_unchanged(model, before)


class _Overflowing(wi.Normal):
    """A custom spec whose std computation overflows (a gain squared beyond float64)."""

    def std_for(self, fans=None):  # type: ignore[no-untyped-def]
        return (1e200) ** 2


class _Infinite(wi.Normal):
    def std_for(self, fans=None):  # type: ignore[no-untyped-def]
        return float("inf")


@pytest.mark.parametrize("spec", [_Overflowing(1.0), _Infinite(1.0)])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_std_that_overflows_is_an_init_error_naming_the_parameter(spec, dry_run):
    model = mlp()
    before = snapshot(model)
    policy = wi.Policy([wi.Rule(spec, name="2.weight"), wi.Policy.preset("auto")])
    with pytest.raises(wi.InitError, match=r"'2.weight'.*finite"):
        wi.init_model(model, policy, dry_run=dry_run)
    assert_unchanged(model, before)


def test_a_huge_gain_in_a_policy_is_an_init_error_on_a_dry_run():
    with pytest.raises(wi.InitError, match="gain"):
        wi.init_model(mlp(), wi.Policy([wi.Rule(wi.Glorot(gain=1e200))]), dry_run=True)


@pytest.mark.parametrize(("inputs", "message"), [
    (torch.full((3, 4), float("nan")), "`example_inputs` has 12 NaN/Inf"),
    (torch.empty(0, 4), "`example_inputs` has an empty tensor"),
    (torch.full((3, 4), 1e200, dtype=torch.float64), "second moment .* is inf"),
])
def test_measuring_needs_finite_non_empty_inputs(inputs, message):
    model = mlp().to(inputs.dtype)
    before = snapshot(model)
    with pytest.raises(wi.InitError, match=message):
        wi.init_model(model, only=["2.weight"], example_inputs=inputs)
    assert_unchanged(model, before)


def _scripted() -> nn.Module:
    return torch.jit.script(mlp())


class _Raising(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("this forward always fails")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": -1}, "`seed`"), ({"seed": 2**64}, "`seed`"), ({"seed": True}, "`seed`"),
    ({"seed": 1.5}, "`seed`"), ({"policy": 42}, "`policy`"),
    ({"policy": "Auto"}, "Did you mean 'auto'"), ({"policy": "nope"}, "not a preset"),
    ({"example_inputs": [torch.randn(3, 4)]}, "`example_inputs` must be a tuple"),
    ({"example_inputs": 3}, "`example_inputs` must be a tuple"),
    ({"example_inputs": "x"}, "`example_inputs` must be a tuple"),
    ({"example_inputs": {"x": torch.randn(3, 4)}}, "unexpected keyword"),
    ({"example_inputs": {1: torch.randn(3, 4)}}, "keywords must be strings"),
    ({"example_inputs": (torch.randn(3, 4), torch.randn(3, 4))}, "positional"),
    ({"dry_run": 1}, "`dry_run`"), ({"progress": "bar"}, "`progress`"),
    ({"only": "0.weight"}, "`only`"), ({"only": ["nope"]}, "not a parameter"),
])
def test_user_mistakes_are_init_errors_and_change_nothing(kwargs, message):
    model = mlp()
    model.train()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    model[2].register_forward_hook(lambda *args: None)
    before = snapshot(model)
    with pytest.raises(wi.InitError, match=message):
        wi.init_model(model, **kwargs)
    assert_unchanged(model, before)


@pytest.mark.parametrize("call", [
    lambda m: wi.init_model(m), lambda m: wi.init_model(m, dry_run=True),
    lambda m: wi.materialize(m, device="cpu"), lambda m: wi.InitPlan([], seed=0,
                                                                     policy="x").apply(m),
])
@pytest.mark.parametrize(("make", "message"), [
    (lambda: 42, "must be a torch.nn.Module, got int 42"),
    (_scripted, "TorchScript"),
    (lambda: nn.Sequential(nn.Linear(4, 4), torch.jit.script(nn.Linear(4, 4))),
     "submodule '1' is a TorchScript"),
])
def test_not_a_module_or_a_scripted_one_is_refused(call, make, message):
    with pytest.raises(wi.InitError, match=message):
        call(make())


def test_save_initial_and_build_refuse_odd_inputs(tmp_path):
    with pytest.raises(wi.InitError, match="TorchScript"):
        wi.save_initial(_scripted(), tmp_path)
    with pytest.raises(wi.InitError, match="`progress`"):
        wi.save_initial(mlp(), tmp_path, progress=1)
    with pytest.raises(wi.InitError, match="`seed`"):
        wi.save_initial(mlp(), tmp_path, seed=2**64)
    with pytest.raises(wi.InitError, match="`path`"):
        wi.save_initial(mlp(), 3)  # type: ignore[arg-type]
    with pytest.raises(wi.InitError, match="returned int"):
        wi.build(lambda: 3)
    with pytest.raises(wi.InitError, match="`seed`"):
        wi.build(mlp, seed=-1)
    if not torch.cuda.is_available():
        with pytest.raises(wi.InitError, match="CUDA is not available"):
            wi.build(mlp, device="cuda")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("make", [
    lambda: nn.ReLU(),  # no parameters
    lambda: nn.BatchNorm1d(4, affine=False),  # buffers only
    lambda: mlp().requires_grad_(False),  # frozen only
])
def test_models_with_nothing_to_fill_give_a_plan_and_change_nothing(make):
    model = make()
    before = snapshot(model)
    plan = wi.init_model(model)
    assert all(row.kept for row in plan.rows)
    assert_unchanged(model, before)


def test_a_model_whose_forward_raises_is_planned_without_dataflow():
    with pytest.warns(wi.InitWarning, match="no forward pass ran"):
        plan = wi.init_model(_Raising())
    assert [row.name for row in plan.rows] == ["fc.weight", "fc.bias"]


def test_a_model_whose_forward_raises_is_refused_with_example_inputs():
    model = _Raising()
    before = snapshot(model)
    with pytest.raises(wi.InitError, match="this forward always fails"):
        wi.init_model(model, example_inputs=torch.randn(3, 4))
    assert_unchanged(model, before)


# --- progress (issue 16) --------------------------------------------------------------------
def _record() -> tuple[list[tuple[int, int, str]], object]:
    calls: list[tuple[int, int, str]] = []
    return calls, lambda done, total, stage: calls.append((done, total, stage))


def _check_stages(calls: list[tuple[int, int, str]], last: str, total: int) -> None:
    assert calls[:2] == [(0, 1, "probing"), (1, 1, "probing")]
    assert calls[2:] == [(i, total, last) for i in range(total + 1)]


def test_init_model_reports_progress_and_fills_the_same_bits():
    plain, reported = mlp(), mlp()
    wi.init_model(plain, seed=3)
    calls, progress = _record()
    wi.init_model(reported, seed=3, progress=progress)
    _check_stages(calls, "filling", 4)
    for a, b in zip(plain.parameters(), reported.parameters(), strict=True):
        assert torch.equal(a, b)
    calls.clear()
    wi.init_model(mlp(), dry_run=True, progress=progress)
    assert calls == [(0, 1, "probing"), (1, 1, "probing")]  # nothing filled on a dry run


def test_materialize_and_save_initial_report_progress(tmp_path):
    calls, progress = _record()
    model = meta_model()
    wi.materialize(model, device="cpu", progress=progress)
    _check_stages(calls, "materializing", 6)
    plain = meta_model()
    wi.materialize(plain, device="cpu")
    for a, b in zip(plain.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    calls.clear()
    wi.save_initial(meta_model(), tmp_path, progress=progress)
    _check_stages(calls, "writing", 6)


class Stop(Exception):
    """What a progress callback raises to cancel (a CLI's Ctrl-C handler, say)."""


def _stop_at(stage: str, done: int):  # type: ignore[no-untyped-def]
    def progress(now: int, total: int, now_stage: str) -> None:
        if now_stage == stage and now == (total if done < 0 else done):
            raise Stop(f"{stage} {now}/{total}")
    return progress


@pytest.mark.parametrize(("stage", "done"), [("probing", 0), ("probing", 1), ("filling", 0),
                                              ("filling", -1)])
def test_an_exception_from_progress_propagates_and_init_model_changes_nothing(stage, done):
    model = mlp()
    before = snapshot(model)
    with pytest.raises(Stop):
        wi.init_model(model, progress=_stop_at(stage, done))
    assert_unchanged(model, before)


@pytest.mark.parametrize("done", [0, 3, -1])
def test_an_exception_from_progress_propagates_and_materialize_changes_nothing(done):
    model = meta_model()
    before = snapshot(model)
    with pytest.raises(Stop):
        wi.materialize(model, device="cpu", progress=_stop_at("materializing", done))
    assert_unchanged(model, before)


def test_an_exception_from_progress_leaves_no_checkpoint_half_written(tmp_path):
    wi.save_initial(meta_model(), tmp_path, seed=1)
    written = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(Stop):
        wi.save_initial(meta_model(), tmp_path, seed=2, progress=_stop_at("writing", -1))
    assert (tmp_path / "model.safetensors").read_bytes() == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "plan.json"]


def test_disjoint_views_of_one_flat_buffer_are_filled_not_refused():
    """FSDP1's use_orig_params layout: parameters that are disjoint views of one flat
    buffer. Only overlapping memory is refused."""
    flat = torch.zeros(192)
    model = nn.Module()
    model.w1 = nn.Parameter(flat[:128].view(16, 8))
    model.w2 = nn.Parameter(flat[128:].view(4, 16))
    policy = wi.Policy([wi.Rule(wi.Normal(1.0), name="*")])
    wi.init_model(model, policy, seed=0)
    alone = nn.Module()
    alone.w1 = nn.Parameter(torch.zeros(16, 8))
    alone.w2 = nn.Parameter(torch.zeros(4, 16))
    wi.init_model(alone, policy, seed=0)
    assert torch.equal(flat[:128].view(16, 8), alone.w1) and torch.equal(
        flat[128:].view(4, 16), alone.w2)
