"""LSUV: layer-sequential unit-variance calibration on a real batch (Mishkin & Matas, All you need
is a good init, 2015, https://arxiv.org/abs/1511.06422).

Weights start orthogonal (keyed, so reproducible), biases at zero; then, in execution order,
each layer's weight is rescaled until its output std on the batch is `target_std`. The result is
an `InitPlan` whose calibrated rows are ``Orthogonal(gain=g)``: applying it again gives the
same bits, without the batch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

from .._errors import InitError, check_positive_finite, check_positive_int, failure
from .._render import Column, number, rich_table
from .._state import preserved
from ..model import (
    InitPlan,
    PlanRow,
    Policy,
    Rule,
    build_plan,
    check_batch,
    discover,
    eval_mode,
    owns_parameters,
    unwrap,
)
from ..random import check_seed
from ..schemes import Orthogonal
from ..theory import infer_fans

# Layers whose output is exactly proportional to their weight's scale when the bias is 0, so
# one measurement gives the exact factor and the next layer can start at once.
_LINEAR_IN_WEIGHT: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)
_CALIBRATED_ROLES = ("linear.weight", "qkv.weight", "conv.weight", "conv_transpose.weight")


@dataclasses.dataclass(frozen=True)
class LSUVLayer:
    """What calibration did to one layer."""

    name: str  # the module's qualified name
    weight: str  # the calibrated parameter
    iterations: int
    std_before: float  # output std after the orthogonal pre-init
    std_after: float
    gain: float  # the final Orthogonal gain
    converged: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LSUVReport:
    """Per layer, in execution order: iterations, std before and after, convergence; plus the
    plan that reproduces the result, the forward passes started and the layer calls they
    made (a pass stops at the layer being calibrated)."""

    layers: tuple[LSUVLayer, ...]
    plan: InitPlan
    target_std: float
    tol: float
    forwards: int
    layer_calls: int
    seconds: float

    @property
    def converged(self) -> bool:
        """Whether every calibrated layer ended within `tol` of `target_std`."""
        return all(layer.converged for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, name: str) -> LSUVLayer:
        for layer in self.layers:
            if layer.name == name or layer.weight == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict, with the final plan under "plan"."""
        return {"target_std": self.target_std, "tol": self.tol, "forwards": self.forwards,
                "layer_calls": self.layer_calls, "seconds": self.seconds,
                "converged": self.converged, "layers": [x.to_dict() for x in self.layers],
                "plan": self.plan.to_dict()}

    def table(self) -> Any:
        """The report as a `rich.table.Table`."""
        columns = [Column("layer"), *(Column(header, "right") for header in (
            "iterations", "std before", "std after", "gain", "ok"))]
        # rich_table makes names Text (never markup), surrogates and control codes escaped.
        rows = [[x.name + (f" ({x.note})" if x.note else ""), str(x.iterations),
                 number(x.std_before), number(x.std_after), number(x.gain),
                 "yes" if x.converged else "NO"] for x in self.layers]
        return rich_table(f"LSUV: target std {self.target_std:g} +- {self.tol:g}, "
                          f"{self.forwards} partial forwards, {self.seconds:.2f} s",
                          columns, rows)


class _Stop(Exception):
    """Raised from a forward hook: the rest of the forward pass is not needed."""


class _NoFastPath(TorchFunctionMode):
    """A do-nothing mode. While one is active, torch's fused inference paths
    (MultiheadAttention, TransformerEncoderLayer) step aside, so every submodule is called
    and its hooks fire, without touching torch's global fast-path switch."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        return func(*args, **(kwargs or {}))


def lsuv(model: nn.Module, batch: object, *, target_std: float = 1.0, tol: float = 0.02,
         max_iter: int = 10, seed: int = 0) -> LSUVReport:
    """Calibrate `model` on `batch`: orthogonal weights, zero biases, then each layer's weight
    rescaled, in execution order, until its output std on the batch is `target_std`.

    What is calibrated: every Linear, ConvNd and ConvTransposeNd called in the forward pass
    (transformers' Conv1D too), including attention projections, on its FIRST call when it is
    called several times; its output std is measured on all elements. Embeddings are not
    rescaled: they start at N(0, 1) (as in ``"auto"``), already unit variance. A layer that
    feeds a BatchNorm or LayerNorm is calibrated to `target_std` before the norm: the pass runs
    in eval mode, where a fresh BatchNorm (running stats 0, 1) is the identity, which is also
    what the first training steps see. MultiheadAttention's packed in_proj is applied
    functionally (no module call), so it keeps its orthogonal init; its output is calibrated
    through out_proj.

    Cost: for an ``nn.Sequential`` whose calibrated layers are its children, the activation
    in front of the next layer is kept, so the whole calibration is one forward pass (each
    layer run once to measure it and once to move on). Any other architecture gets one forward
    pass per measurement that stops as soon as the layer returns (a hook raises), so layer k
    costs the layers up to k, not a full forward. For a layer whose output is proportional to
    its weight (Linear and convolutions, with the bias at 0) one measurement gives the exact
    factor; other layers iterate up to `max_iter` times. Discovery adds one pass (no_grad, or on
    the meta device for big models).

    Args:
        model: the network; its parameters are changed in place.
        batch: the model's input: a tensor, a tuple of positional arguments or a dict of
            keyword arguments.
        target_std: the std each calibrated layer's output should have.
        tol: accept |std - target_std| <= tol.
        max_iter: measurements per layer at most.
        seed: the keyed streams of the orthogonal pre-init.

    Returns:
        An `LSUVReport`; ``report.plan`` (``Orthogonal(gain=g)`` for each calibrated weight)
        reproduces the result with ``plan.apply(model)``.

    Raises:
        InitError: an empty batch, NaN/Inf in it, a batch the model rejects, a layer with an
            empty weight (``nn.Linear(8, 0)``), a `target_std` whose weights the dtype cannot
            hold, or a layer whose output is constant (std 0) or not finite. The model is then
            exactly as before: parameter values, ``requires_grad`` and ``.grad``, every buffer
            (persistent or not, even one the forward replaced), train/eval flags, hooks and the
            global RNG states. After a success only the parameters have changed.
    """
    start = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise InitError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    model = unwrap(model)
    target_std = check_positive_finite("target_std", target_std)
    tol = check_positive_finite("tol", tol)
    max_iter = check_positive_int("max_iter", max_iter)
    seed = check_seed(seed)
    args, kwargs = check_batch(batch)
    policy = Policy([Rule(Orthogonal(), role=list(_CALIBRATED_ROLES),
                          label="orthogonal pre-init"),
                     Policy.preset("auto", residual="none")], name="lsuv")
    # Everything the passes may touch is saved first and put back by module and name; on a
    # failure the weights too. The RNGs are borrowed for the whole call.
    with preserved(model, keep_parameters=True, tensors=tree_flatten((args, kwargs))[0]):
        plan = build_plan(discover(model, kwargs or args, argument="batch"), policy, seed)
        targets = _targets(model, plan)
        _check_not_empty(model, targets)
        chosen = {row.name for _, row in targets}
        # Everything but the calibrated weights now; each of those is filled once, below,
        # as the float64 orthogonal basis its calibrated value is a multiple of.
        InitPlan([row for row in plan if row.name not in chosen], seed=plan.seed,
                 policy=plan.policy).apply(model)
        layers, forwards, calls = _calibrate(model, plan.seed, targets, args, kwargs,
                                             target_std, tol, max_iter)
    gains = {x.weight: x.gain for x in layers}
    rows = [row if row.name not in gains else dataclasses.replace(
        row, spec=Orthogonal(gain=gains[row.name]),
        std=Orthogonal(gain=gains[row.name]).std_for(infer_fans(row.shape)),
        rule="lsuv: calibrated on the batch") for row in plan]
    skipped = [row.name for row in plan if row.role in _CALIBRATED_ROLES
               and row.spec == Orthogonal() and row.activation != "unused"
               and row.name not in gains and row.name not in dict(model.named_parameters())]
    notes = list(plan.notes) + ([
        "Not calibrated, filled by the plan through their parametrization (a computed "
        f"weight has no tensor to rescale): {', '.join(skipped)}."] if skipped else [])
    final = InitPlan(rows, seed=plan.seed, policy="lsuv", notes=notes)
    return LSUVReport(tuple(layers), final, target_std, tol, forwards, calls,
                      time.perf_counter() - start)


def _targets(model: nn.Module, plan: InitPlan) -> list[tuple[str, PlanRow]]:
    """(module, weight row) to calibrate, in execution order, each module once."""
    modules = dict(model.named_modules(remove_duplicate=False))
    params = dict(model.named_parameters(remove_duplicate=False))
    targets: list[tuple[str, PlanRow]] = []
    for row in plan:
        # Not calibrated: MHA's packed in_proj (applied functionally), tied weights
        # (rescaling one changes the other layer's output too), and parametrized weights
        # (weight_norm, spectral_norm: the weight is computed, so there is none to rescale;
        # they are filled through the parametrization like the rest of the plan).
        if (row.role in _CALIBRATED_ROLES and row.spec == Orthogonal()
                and row.activation != "unused" and row.module not in {n for n, _ in targets}
                and not row.aliases and row.name in params
                and not isinstance(modules[row.module], nn.MultiheadAttention)):
            targets.append((row.module, row))
    return targets


def _calibrate(model: nn.Module, seed: int, targets: list[tuple[str, PlanRow]],
               args: tuple[Any, ...], kwargs: dict[str, Any], target: float, tol: float,
               max_iter: int) -> tuple[list[LSUVLayer], int, int]:
    modules = dict(model.named_modules(remove_duplicate=False))
    params = dict(model.named_parameters(remove_duplicate=False))
    probe: _Probe
    if isinstance(model, nn.Sequential) and len(args) == 1 and not kwargs and all(
            name in model._modules for name, _ in targets):
        probe = _Chain(model, args[0])
    else:
        probe = _PartialForwards(model, args, kwargs)
    done: list[LSUVLayer] = []
    with torch.no_grad(), eval_mode(model):  # flags set directly, never through train()
        for module_name, row in targets:
            module = modules[module_name]
            weight = params[row.name]
            basis = torch.empty_like(weight, dtype=torch.float64)
            Orthogonal().fill_(basis, seed=seed, key=row.key)
            weight.copy_(basis)  # the pre-init, exactly as Orthogonal() fills it
            bias = getattr(module, "bias", None)
            exact = (isinstance(module, _LINEAR_IN_WEIGHT) or type(module).__name__ == "Conv1D"
                     ) and (bias is None or not bool(bias.any()))
            gain, std, before, iterations, note = 1.0, math.nan, math.nan, 0, ""
            while iterations < max_iter:
                std = _checked(module_name, probe.output_std(module_name), target, len(done))
                iterations += 1
                if iterations == 1:
                    before = std
                if not exact and (abs(std - target) <= tol or iterations == max_iter):
                    break  # converged, or out of measurements: std stays the weights' own
                gain *= target / std
                weight.copy_(_scaled(row.name, basis, gain, weight.dtype, target))
                if exact:  # output proportional to the weight: one rescale lands on target
                    std, note = target, "exact"
                    break
            done.append(LSUVLayer(module_name, row.name, iterations, before, std, gain,
                                  abs(std - target) <= tol, note))
    return done, probe.forwards, probe.calls


def _check_not_empty(model: nn.Module, targets: list[tuple[str, PlanRow]]) -> None:
    params = dict(model.named_parameters(remove_duplicate=False))
    for module_name, row in targets:
        weight = params[row.name]
        if weight.numel() == 0:
            raise InitError(
                f"Layer {module_name!r} has an empty weight {row.name!r} (shape "
                f"{tuple(weight.shape)}): it has no input or no output units, so its output has "
                "no std to measure or set. Give it at least one unit on each side (or remove "
                "it). Nothing was changed.")


def _scaled(name: str, basis: torch.Tensor, gain: float, dtype: torch.dtype,
            target: float) -> torch.Tensor:
    """`gain * basis` in the weight's dtype, or InitError naming `target_std` when the dtype
    cannot hold it (overflow to inf, or the whole weight below its smallest normal)."""
    scaled = (gain * basis).to(dtype)
    info = torch.finfo(dtype)
    overflow = not (math.isfinite(gain) and bool(torch.isfinite(scaled).all()))
    lost = gain == 0.0 or (scaled.numel() > 0 and float(scaled.abs().amax()) < info.tiny)
    if overflow or lost:
        limit = (f"largest {info.max:.3g}" if overflow else f"smallest normal {info.tiny:.3g}")
        raise InitError(
            f"`target_std` (={target:g}) needs {name!r} scaled by {gain:.3g}, which "
            f"{str(dtype).replace('torch.', '')} cannot hold ({limit}): choose a target_std "
            "nearer 1 (outputs of std 1 are what LSUV is for). Nothing was changed.")
    return scaled


def _checked(name: str, std: float, target: float, calibrated: int) -> float:
    """`std`, or InitError saying why no scale can give this layer the target std."""
    if math.isfinite(std) and std > 0.0:
        return std
    constant = std == 0.0
    what = (f"Layer {name!r} gives a {'constant' if constant else 'non-finite'} output on "
            f"`batch` (std {std})")
    extreme = target < 1e-6 if constant else target > 1e6
    if calibrated and extreme:
        raise failure(
            f"{what} once the {calibrated} layer{'s' if calibrated > 1 else ''} before it "
            f"give std `target_std` (={target:g}): values that "
            f"{'small underflow to 0' if constant else 'large overflow'} in this layer",
            fix="Choose a target_std nearer 1")
    raise failure(
        f"{what}, so no scale can make its std the target",
        fix="Check the batch (all samples equal?) and what comes before the layer (units "
        "that are all 0, a forward that divides by 0)" if constant else
        "The batch is finite, so the model's forward makes the NaN/Inf: check what comes "
        "before the layer (a log or division of 0, an overflow in float16)")


def _std_of(name: str, output: Any) -> float:
    """The std of the first tensor in `output` (NaN when not finite, 0 when constant)."""
    tensors = [x for x in tree_flatten(output)[0] if isinstance(x, torch.Tensor)]
    if not tensors:
        raise InitError(f"Layer {name!r} returns no tensor on `batch`: there is no output "
                        "std to calibrate. Nothing was changed.")
    first = tensors[0].detach()
    if first.numel() < 2:
        raise InitError(
            f"Layer {name!r} returns {first.numel()} value{'s' if first.numel() != 1 else ''} "
            f"on `batch` (shape {tuple(first.shape)}): a std needs at least two. Pass a batch "
            "with more samples. Nothing was changed.")
    return float(first.double().std())


def _forward_failed(name: str, exc: Exception) -> InitError:
    return failure(f"While calibrating {name!r}, the forward pass on `batch`", exc)


class _Probe:
    """Measures a layer's output std on the batch; counts the passes and layer calls."""

    forwards = 0
    calls = 0

    def output_std(self, name: str) -> float:
        raise NotImplementedError


class _Chain(_Probe):
    """An nn.Sequential whose calibrated layers are its children: the activation in front of
    the next layer is kept, so the whole calibration costs one forward pass, plus a re-run of
    one layer per extra iteration."""

    def __init__(self, model: nn.Sequential, x: torch.Tensor) -> None:
        self.children = list(model._modules.items())
        self.position = 0
        self.x = x.clone()  # the layers may work in place; the caller's batch stays as given
        self.forwards = 1

    def _run(self, index: int) -> Any:
        name, child = self.children[index]
        if child is None:
            return self.x
        self.calls += owns_parameters(child)
        try:
            return child(self.x)
        except Exception as exc:
            raise _forward_failed(name, exc) from None

    def output_std(self, name: str) -> float:
        index = next(i for i, (n, _) in enumerate(self.children) if n == name)
        with _NoFastPath():
            while self.position < index:
                self.x = self._run(self.position)
                self.position += 1
            return _std_of(name, self._run(index))


class _PartialForwards(_Probe):
    """Any architecture: a forward pass per measurement that stops (a hook raises) as soon as
    the layer returns for the first time, so layer k costs the layers up to k."""

    def __init__(self, model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.model, self.args, self.kwargs = model, args, kwargs
        self.modules = dict(model.named_modules(remove_duplicate=False))

    def output_std(self, name: str) -> float:
        hooked = self.modules[name]
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if name.endswith("out_proj") and isinstance(self.modules.get(parent),
                                                     nn.MultiheadAttention):
            hooked = self.modules[parent]  # out_proj runs inside MultiheadAttention's forward
        seen: list[Any] = []

        def count(module: nn.Module, inputs: Any, output: Any) -> None:
            self.calls += 1

        def stop(module: nn.Module, inputs: Any, output: Any) -> None:
            seen.append(output)
            raise _Stop

        handles = [m.register_forward_hook(count) for m in self.model.modules()
                   if owns_parameters(m)]
        handles.append(hooked.register_forward_hook(stop))
        self.forwards += 1
        args, kwargs = tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x,
                                (self.args, self.kwargs))  # every pass sees the batch as given
        try:
            with _NoFastPath():
                self.model(*args, **kwargs)
        except _Stop:
            pass
        except InitError:
            raise
        except Exception as exc:
            raise _forward_failed(name, exc) from None
        finally:
            for handle in handles:
                handle.remove()
        if not seen:
            raise InitError(f"Layer {name!r} was not called in the forward pass on `batch`.")
        return _std_of(name, seen[0])


def lsuv_plan(model: nn.Module, batch: object, *, seed: int = 0) -> InitPlan:
    """`lsuv` with its defaults, returning the plan: the calibrator behind
    ``init_model(model, "lsuv", example_inputs=batch)``."""
    return lsuv(model, batch, seed=seed).plan
