"""The buffers of a meta-device model, for `materialize`: allocated on the target device and
recomputed by their module's own code (BatchNorm's ``reset_running_stats()``, transformers'
``_init_weights``, ``reset_parameters()``), or given by the caller; all of them, or every one
put back on meta."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._errors import InitError, did_you_mean, failure
from ._apply import inverse_seed
from ._distributed import is_meta
from ._probe import probe_rng


@dataclass
class MetaBuffer:
    name: str
    module: nn.Module
    attr: str
    original: torch.Tensor
    allocated: torch.Tensor | None = None
    version: int = 0


def meta_buffers(model: nn.Module) -> list[MetaBuffer]:
    found: list[MetaBuffer] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for attr, buffer in module._buffers.items():
            if buffer is None or id(buffer) in seen or not is_meta(buffer):
                continue
            seen.add(id(buffer))
            found.append(MetaBuffer(f"{module_name}.{attr}" if module_name else attr, module,
                                     attr, buffer))
    return found


def _hf_initializer(model: nn.Module, module_name: str) -> Callable[[nn.Module], None] | None:
    """The `_init_weights` of the outermost transformers model above `module_name`: it knows
    how to recompute the buffers of its modules (rotary inv_freq, ...)."""
    parts = module_name.split(".") if module_name else []
    for cut in range(len(parts) + 1):
        owner = model.get_submodule(".".join(parts[:cut]))
        init = getattr(owner, "_init_weights", None)
        if callable(init) and type(owner).__module__.startswith("transformers."):
            return init  # type: ignore[no-any-return]
    return None


def _recipe(model: nn.Module, module_name: str, module: nn.Module) -> tuple[
        str, Callable[[], object]] | None:
    """How `module`'s own code recomputes its buffers, or None."""
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return "reset_running_stats()", module.reset_running_stats
    hf = _hf_initializer(model, module_name)
    if hf is not None:
        return "transformers' _init_weights", lambda: hf(module)
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        return f"{type(module).__name__}.reset_parameters()", reset
    return None


def _written(buffer: MetaBuffer) -> bool:
    current = buffer.module._buffers.get(buffer.attr)
    if current is None or is_meta(current):
        return False
    return current is not buffer.allocated or current._version > buffer.version


def put_back(buffers: list[MetaBuffer]) -> None:
    for buffer in buffers:
        buffer.module._buffers[buffer.attr] = buffer.original


def check_given(given: Mapping[Any, object], buffers: list[MetaBuffer]) -> None:
    """InitError unless every entry of `given` (materialize's `buffers`) names a meta buffer of
    the model and holds a tensor with values of its shape."""
    by_name = {b.name: b for b in buffers}
    for name, value in given.items():
        if not isinstance(name, str):
            raise InitError(
                f"`buffers` must map buffer names (str, e.g. 'bn.running_mean') to tensors, got "
                f"the key {name!r:.60} ({type(name).__name__}). Meta buffers: "
                f"{', '.join(by_name) if by_name else 'none'}. Nothing was changed."
            )
        if name not in by_name:
            raise InitError(
                f"`buffers` names {name!r}, which is not a meta-device buffer of the model."
                f"{did_you_mean(name, by_name)} Meta buffers: "
                f"{', '.join(by_name) if by_name else 'none'}."
            )
        want = by_name[name].original
        if not isinstance(value, torch.Tensor):
            got = f"{type(value).__name__} {value!r:.60}"
        elif tuple(value.shape) != tuple(want.shape):
            got = f"a tensor of shape {tuple(value.shape)}"
        elif value.is_meta:
            got = "a meta tensor (no values)"
        elif value.is_complex() and not want.is_complex():
            got = f"a {value.dtype} tensor (its imaginary part would be dropped)"
        else:
            continue
        raise InitError(
            f"`buffers[{name!r}]` must be a tensor with values of shape {tuple(want.shape)} "
            f"(it is cast to {want.dtype}), got {got}. Nothing was changed."
        )


def materialize_buffers(model: nn.Module, device: torch.device,
                         given: Mapping[str, torch.Tensor], buffers: list[MetaBuffer],
                         seed: int = 0) -> list[str]:
    """Allocate every meta buffer in `buffers` on `device` and have its module recompute it;
    all of them, or InitError with every buffer put back on meta. Returns notes on what was
    done. The module code runs on torch's generators forked and seeded from `seed` and the
    module's name (the same buffers every time, the caller's RNG untouched), and the values
    of its allocated parameters are put back afterwards (a reset_parameters() re-randomizes
    them: the plan decides them, or keeps them)."""
    check_given(given, buffers)
    modules = dict(model.named_modules())
    owners = {id(m): name for name, m in modules.items()}
    how: dict[str, list[str]] = {}
    failed: list[str] = []
    try:
        with torch.no_grad():
            pending: dict[int, list[MetaBuffer]] = {}
            for buffer in buffers:
                if buffer.name in given:
                    value = given[buffer.name].detach().to(device=device,
                                                           dtype=buffer.original.dtype).clone()
                    buffer.module._buffers[buffer.attr] = value
                    buffer.allocated = value
                    how.setdefault("given in `buffers`", []).append(buffer.name)
                    continue
                allocated = torch.empty_like(buffer.original, device=device)
                buffer.module._buffers[buffer.attr] = allocated
                buffer.allocated, buffer.version = allocated, allocated._version
                pending.setdefault(id(buffer.module), []).append(buffer)
            for mine in pending.values():
                module = mine[0].module
                recipe = _recipe(model, owners[id(module)], module)
                why = f"{type(module).__name__} has no reset_parameters()"
                if recipe is not None:
                    label, run = recipe
                    try:
                        _run_isolated(run, module, device, inverse_seed(seed, owners[id(
                            module)]))
                        why = f"{label} did not set it"
                    except Exception as exc:
                        why = f"{label} raised {type(exc).__name__}: {exc}"
                for buffer in mine:
                    if _written(buffer):
                        how.setdefault(recipe[0] if recipe else "", []).append(buffer.name)
                    else:
                        failed.append(f"{buffer.name!r} (shape {tuple(buffer.original.shape)}; "
                                      f"{why})")
        if failed:
            raise failure(
                f"Buffer{'s' if len(failed) > 1 else ''} {', '.join(failed[:5])}"
                f"{f' and {len(failed) - 5} more' if len(failed) > 5 else ''} would stay "
                "uninitialized: built on the meta device, they have no values, and their "
                "module's code does not recompute them",
                fix="Give the module a reset_parameters() that sets them, pass "
                "buffers={name: tensor}, or create them with an explicit device= in __init__")
    except BaseException:
        put_back(buffers)
        raise
    return [f"Buffers recomputed by {label}: {', '.join(names)}." for label, names in how.items()]


def _run_isolated(run: Callable[[], object], module: nn.Module, device: torch.device,
                  seed: int) -> None:
    """`run()` (a module's code recomputing its buffers) on forked generators seeded with
    `seed`, the module's allocated parameters' values put back afterwards."""
    kept = [(p, p.detach().clone(), p._version) for p in module.parameters() if not is_meta(p)]
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with probe_rng(devices, seed=seed):
            run()
    finally:
        with torch.no_grad():
            for param, values, version in kept:
                if param._version != version:
                    param.copy_(values)
