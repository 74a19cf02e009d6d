"""`init_model`: discover the model, decide a spec per parameter, fill them all or none."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterable

from torch import nn

from .._errors import InitError, InitWarning, did_you_mean, failure
from ..random import check_seed
from ..schemes import Spec
from ._discovery import Discovery, discover
from ._info import ParamInfo
from ._plan import InitPlan, PlanRow
from ._policy import CALIBRATORS, Policy
from ._presets import resolve_policy
from ._probe import check_model
from ._progress import Progress, check_progress, report


def init_model(model: nn.Module, policy: str | Policy = "auto", *, seed: int = 0,
               example_inputs: object = None, dry_run: bool = False,
               only: Iterable[str] | None = None,
               progress: Progress | None = None) -> InitPlan:
    """Initialize every parameter of `model` by `policy`, and return the plan of what was done.

    Discovery runs one forward pass (on the meta device for models of 2**24 parameters or
    more, or off the CPU, when their code allows; for real under no_grad on copies of the
    parameters and buffers for smaller CPU models or code that needs values; eval mode, set
    module by module without calling ``train()``; no side effects: weights, buffers, grads,
    requires_grad, train/eval flags, module attributes and the global RNGs are as before,
    and draws the forward makes from torch's generator come from a fixed seed) on
    `example_inputs`,
    or on an input synthesized from the first layer (Linear, ConvNd, Embedding). From it each
    layer gets the activation that feeds it, and the layers that end residual branches are
    found. When no forward pass can run, rows are in module order with activation
    ``"unknown"``, and the plan's notes say so.

    Args:
        model: any ``torch.nn.Module`` with allocated parameters.
        policy: ``"auto"`` (default), a preset name (see `wi.Policy.preset`), or a
            `wi.Policy`; ``wi.Policy.preset("auto", residual="zero")`` for options.
            ``"lsuv"`` calibrates on `example_inputs` (`wi.lsuv` with its defaults) and
            returns the plan that reproduces the result.
        seed: selects the keyed streams; each parameter's stream is keyed by its qualified name.
        example_inputs: a tuple of positional arguments, a dict of keyword arguments, or a
            tensor. Optional when the first layer makes the input shape obvious; without
            them, when no input can be synthesized, an `InitWarning` says what was lost.
        dry_run: plan only; change nothing.
        only: initialize just these parameters (qualified names or globs; buffer names are
            ignored), e.g. the ``missing_keys`` of a checkpoint that lacks a new head; every
            other parameter is kept. Their layers' inputs are measured on the forward pass
            (the pretrained features' actual scale: pass `example_inputs` from your data), so
            a new head's outputs have unit variance; measuring needs real values, so this
            pass runs for real (under no_grad) whatever the model's size. Without `only`, a
            model transformers loaded (its loaded tensors are marked ``_is_hf_initialized``)
            gets the same: ``"auto"`` keeps what was loaded and measures the inputs of the
            rest.
        progress: optional ``progress(done, total, stage)``: ``(0, 1, "probing")`` and
            ``(1, 1, "probing")`` around discovery, then (unless `dry_run`) ``(0, n,
            "filling")`` and ``(i, n, "filling")`` after each of the n planned parameters is
            computed, all before the model is written. An exception it raises propagates
            and leaves the model unchanged. The library never prints. Data-driven policies
            (``"lsuv"``) report nothing.

    Returns:
        The `InitPlan`, one row per parameter (tied parameters once), in execution order.

    Raises:
        InitError: a bad argument (not an nn.Module, a TorchScript module, a bad policy or
            seed), inputs the model rejects (on the real pass: a model probed on the meta
            device sees shapes, not values), a rule that fails, a spec that cannot fill its
            parameter or whose std overflows, a parameter that cannot be written (an
            inference tensor, an expanded one). The model is unchanged.

    Example:
        >>> plan = wi.init_model(model)
        >>> rich.print(plan.table())
    """
    model = check_model(model)
    progress = check_progress(progress)
    if isinstance(policy, str) and policy in CALIBRATORS:
        seed = check_seed(seed)
        if only is not None:
            raise InitError(
                f"Policy {policy!r} calibrates the whole model on data; `only` is not "
                "supported with it. Initialize the new parameters with policy='auto' and "
                "only=..., then calibrate if you want to."
            )
        if example_inputs is None:
            raise InitError(f"Policy {policy!r} calibrates on data: pass example_inputs=batch.")
        if dry_run:
            raise InitError(
                f"Policy {policy!r} measures the model while it changes it, so it cannot "
                "dry-run; run it on a copy (copy.deepcopy(model)) and read the plan."
            )
        plan: InitPlan = CALIBRATORS[policy](model, example_inputs, seed=seed)
        return plan
    resolved = resolve_policy(policy)
    seed = check_seed(seed)
    if not isinstance(dry_run, bool):
        raise InitError(f"`dry_run` must be a bool, got {dry_run!r}.")
    selected = None if only is None else _select(model, only)
    fresh = selected if selected is not None else _not_loaded(model)
    measure = frozenset(name.rpartition(".")[0] for name in fresh)
    report(progress, 0, 1, "probing")
    found = discover(model, example_inputs, measure=measure)
    if not found.dataflow and found.params:
        warn_no_dataflow(found, "init_model")
    plan = build_plan(found, resolved, seed, only=selected)
    report(progress, 1, 1, "probing")
    if not dry_run:
        plan.apply(model, progress=progress)
    return plan


def _not_loaded(model: nn.Module) -> set[str]:
    """In a model loaded from a checkpoint by transformers (some parameters marked
    ``_is_hf_initialized``), the parameters that were not loaded (a new head): their layers'
    inputs are measured. Empty for a model built from scratch."""
    params = list(model.named_parameters())
    loaded = {n for n, p in params if getattr(p, "_is_hf_initialized", False)}
    return {n for n, _ in params if n not in loaded} if loaded else set()


def _select(model: nn.Module, only: Iterable[str]) -> set[str]:
    """The parameter names `only` selects (names or globs); InitError for a name that is
    neither a parameter nor a buffer."""
    names = None if isinstance(only, (str, bytes)) or not isinstance(only, Iterable) else list(
        only)
    if names is None or not all(isinstance(n, str) for n in names):
        raise InitError(
            f"`only` must be a list of parameter names (or globs), got {only!r:.80}; e.g. the "
            "missing_keys of from_pretrained(..., output_loading_info=True)."
        )
    # A parametrized tensor is selected by its logical name (`fc.weight`, the plan's) or by
    # its originals' (`fc.parametrizations.weight.original0`, what a state_dict lists).
    logical = {n: _logical(n) for n, _ in model.named_parameters(remove_duplicate=False)}
    params = sorted({*logical, *logical.values()})
    buffers = {n for n, _ in model.named_buffers(remove_duplicate=False)}
    selected: set[str] = set()
    for pattern in names:
        matched = [logical.get(n, n) for n in fnmatch.filter(params, pattern)]
        if not matched and pattern not in buffers:
            raise InitError(
                f"`only` names {pattern!r}, which is not a parameter of the model."
                f"{did_you_mean(pattern, params)} Nothing was changed."
            )
        selected.update(matched)
    return selected


def _logical(name: str) -> str:
    """``fc.parametrizations.weight.original0`` -> ``fc.weight``; other names as they are."""
    head, found, tail = name.partition(".parametrizations.")
    if not found and name.startswith("parametrizations."):
        head, tail = "", name.removeprefix("parametrizations.")
    elif not found:
        return name
    attr = tail.split(".")[0]
    return f"{head}.{attr}" if head else attr


def warn_no_dataflow(found: Discovery, caller: str) -> None:
    """An InitWarning that discovery ran no forward pass, with what that costs."""
    warnings.warn(InitWarning(
        f"{caller}: no forward pass ran, so each layer's activation and the residual branches "
        f"are unknown: every weight gets LeCun (gain 1) and no branch is scaled. "
        f"{found.notes[0] if found.notes else ''}"), stacklevel=3)


def build_plan(found: Discovery, policy: Policy, seed: int,
               only: set[str] | None = None) -> InitPlan:
    """The rows `policy` gives the discovered parameters, in execution order (those outside
    `only`, when given, kept); InitError for a spec that cannot fill its parameter."""
    decisions = policy.decide(found.params)
    if only is not None:
        decisions = [(spec, rule) if {info.name, *info.aliases} & only else (
            None, "not in `only`: kept") for info, (spec, rule) in zip(
            found.params, decisions, strict=True)]
    rows = []
    for i in found.order:
        info, (spec, rule) = found.params[i], decisions[i]
        if spec is not None:
            _check_fits(spec, info)
        rows.append(PlanRow.from_info(info, spec, rule))
    return InitPlan(rows, seed=seed, policy=policy.name, notes=(*found.notes, *policy.notes))


def _check_fits(spec: Spec, info: ParamInfo) -> None:
    try:
        spec._check_shape(info.shape, spec.needs_fans and info.fans is not None)
        if spec.needs_fans and info.fans is None and len(info.shape) < 2:
            raise InitError(f"{type(spec).__name__} needs fans, and a {len(info.shape)}-d "
                            "parameter has none")
    except InitError as exc:
        raise failure(
            f"{spec!r} cannot fill {info.name!r} (shape {info.shape}, role {info.role!r}): "
            f"{exc}", fix="Give this parameter a rule with a spec that fits (Zeros, Normal, ...)"
        ) from None
