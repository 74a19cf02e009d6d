"""Everything a weightinit call must leave as it was when it refuses its input, as comparable
values: tensors as raw bytes (so NaN payloads, -0.0 and the bits of every dtype count), and the
process state a library call may borrow (torch's, Python's and NumPy's RNG, warning filters,
grad mode, thread count, default dtype).

`Snapshot.take(...)` before a call, `snapshot.assert_same(Snapshot.take(...))` after: the
message lists every difference by name."""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
               "_load_state_dict_post_hooks", "_forward_hooks_with_kwargs",
               "_forward_pre_hooks_with_kwargs")


def tensor_state(t: torch.Tensor | None) -> Any:
    """A tensor as (device, dtype, shape, strides, offset, requires_grad, bytes): two are equal
    exactly when they hold the same bits in the same layout. Meta tensors have no bytes."""
    if t is None:
        return None
    meta = (t.device.type, t.dtype, tuple(t.shape), t.stride(), t.storage_offset(),
            t.requires_grad)
    if t.device.type == "meta":
        return (*meta, None)
    # A fresh dense copy (reading an inference tensor is fine; a size-1 dim may keep any
    # stride through reshape, and view(uint8) needs a unit one).
    flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.detach().reshape(-1))
    if flat.dtype.itemsize > 0 and flat.numel():
        data = flat.view(torch.uint8).cpu().numpy().tobytes()
    else:
        data = b""
    return (*meta, data)


def global_state() -> dict[str, Any]:
    """The process-wide state a library call borrows and must give back."""
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global state is the point)
    return {
        "torch rng": bytes(torch.get_rng_state().numpy().tobytes()),
        "python rng": random.getstate(),
        "numpy rng": (np_state[0], np_state[1].tobytes(), *np_state[2:]),
        "warning filters": list(warnings.filters),
        "grad enabled": torch.is_grad_enabled(),
        "inference mode": torch.is_inference_mode_enabled(),
        "threads": torch.get_num_threads(),
        "default dtype": torch.get_default_dtype(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "global forward hooks": len(nn.modules.module._global_forward_hooks),
        "global forward pre hooks": len(nn.modules.module._global_forward_pre_hooks),
        "global backward hooks": len(nn.modules.module._global_backward_hooks),
    }


def model_state(model: nn.Module) -> dict[str, Any]:
    """Every parameter (the object: "param", its bits and layout: "value", "requires_grad",
    "grad") and buffer, every module's training flag and hook dicts, and the module tree, by
    qualified name (a tied parameter under each of its names)."""
    state: dict[str, Any] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        where = name or "<root>"
        state[f"{where} training"] = module.training
        state[f"{where} children"] = tuple(module._modules)
        for hooks in _HOOK_DICTS:
            state[f"{where} {hooks}"] = tuple(getattr(module, hooks, {}))
        for pname, param in module._parameters.items():
            key = f"{name}.{pname}" if name else pname
            state[f"param {key}"] = (id(param), type(param).__name__)
            state[f"value {key}"] = tensor_state(param)
            state[f"requires_grad {key}"] = None if param is None else param.requires_grad
            state[f"grad {key}"] = None if param is None else tensor_state(param.grad)
        for bname, buf in module._buffers.items():
            key = f"{name}.{bname}" if name else bname
            state[f"buffer {key}"] = (id(buf), tensor_state(buf))
    return state


@dataclass
class Snapshot:
    """The state of a model (or of some tensors) and of the process, at one moment."""

    parts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def take(cls, model: nn.Module | None = None, tensors: dict[str, torch.Tensor] | None = None,
             *, rng: bool = True) -> Snapshot:
        """`rng=False` leaves torch's global generator out (a non-keyed fill draws from it)."""
        parts: dict[str, Any] = dict(global_state())
        if not rng:
            del parts["torch rng"]
        if model is not None:
            parts.update(model_state(model))
        for name, t in (tensors or {}).items():
            parts[f"tensor {name}"] = tensor_state(t)
            parts[f"tensor {name} grad"] = tensor_state(t.grad) if t.is_leaf else None
        return cls(parts)

    def differences(self, other: Snapshot, *, ignore: tuple[str, ...] = ()) -> list[str]:
        """The names of what differs, except names starting with one of `ignore`."""
        names = sorted(set(self.parts) | set(other.parts))
        return [n for n in names if not n.startswith(ignore)
                and _differ(self.parts.get(n, "<absent>"), other.parts.get(n, "<absent>"))]

    def assert_same(self, other: Snapshot, what: str = "", *,
                    ignore: tuple[str, ...] = ()) -> None:
        diff = self.differences(other, ignore=ignore)
        assert not diff, f"{what}: changed {diff[:12]}{' ...' if len(diff) > 12 else ''}"


def _differ(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except Exception:  # e.g. comparing arrays
        return repr(a) != repr(b)


def float_params_finite(model: nn.Module) -> list[str]:
    """Names of floating parameters that hold NaN or Inf."""
    return [n for n, p in model.named_parameters()
            if p.device.type != "meta" and p.is_floating_point() and p.numel()
            and not bool(torch.isfinite(p.detach()).all())]


def same_parameters(a: nn.Module, b: nn.Module) -> list[str]:
    """Names of parameters whose bits differ between two copies of one model."""
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    return [n for n in pa if tensor_state(pa[n])[-1] != tensor_state(pb[n])[-1]]
