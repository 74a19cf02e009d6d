"""Everything a probe pass may change in a model, saved and put back bit for bit.

A forward pass can write more than parameters: BatchNorm updates its running statistics in
place, an EMA written as ``self.avg = 0.9 * self.avg + ...`` replaces the buffer object itself,
a parametrization steps its buffers, a user hook accumulates into ``.grad``. `ModelState`
records, per module and name (``module._parameters`` / ``module._buffers``, persistent or
not): the tensor object, a copy of its values, each parameter's ``requires_grad`` and ``.grad``
(object and values), every module's ``training`` flag (put back by assignment, never through
an overridden ``train()``), the set of non-persistent buffer names, and the keys of every hook
dict (module and global), so that a hook left behind by a failure is removed. Plain Python
attributes (a call counter) are not tracked.

Shared by `lsuv` and `diagnose`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.nn.modules import module as _module

from ._sync import borrowed_rng

_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
               "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks",
               "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_hooks_with_kwargs",
                 "_global_forward_hooks_always_called", "_global_forward_pre_hooks",
                 "_global_backward_hooks", "_global_backward_pre_hooks",
                 "_global_module_registration_hooks", "_global_parameter_registration_hooks",
                 "_global_buffer_registration_hooks")


def _copy(t: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return t.detach().clone()


def _put_back(obj: torch.Tensor, value: torch.Tensor) -> None:
    """`value` into `obj`: in place when the layout still matches, else as its new data (a
    forward that did ``p.data = other``)."""
    with torch.no_grad():
        if obj.shape == value.shape and obj.dtype == value.dtype and obj.device == value.device:
            obj.copy_(value)
        else:
            obj.data = value.clone()


@dataclasses.dataclass
class _Values:
    """One tensor object's saved state (shared by every module that holds it)."""

    value: torch.Tensor | None
    requires_grad: bool = False
    grad: torch.Tensor | None = None  # the .grad object
    grad_value: torch.Tensor | None = None


class ModelState:
    """A snapshot of `model`; `restore()` puts it back.

    Args:
        model: the module tree to save.
        values: copy parameter values too (needed when the caller writes weights, or when it
            must undo anything a user's forward writes); buffers and grads are always copied.
    """

    def __init__(self, model: nn.Module, *, values: bool = True) -> None:
        self.modules: list[nn.Module] = list(model.modules())  # each module once
        self.training = [(m, m.training) for m in self.modules]
        self.params = [(m, n, p) for m in self.modules for n, p in m._parameters.items()]
        self.buffers = [(m, n, b) for m in self.modules for n, b in m._buffers.items()]
        self.persistence = [(m, set(m._non_persistent_buffers_set)) for m in self.modules]
        self.hooks = [(m, name, set(getattr(m, name).keys())) for m in self.modules
                      for name in _HOOK_DICTS if isinstance(getattr(m, name, None), dict)]
        self.global_hooks = [(name, set(getattr(_module, name).keys())) for name in _GLOBAL_HOOKS
                             if isinstance(getattr(_module, name, None), dict)]
        self.saved: dict[int, _Values] = {}
        self.objects: dict[int, torch.Tensor] = {}  # keeps every saved object alive
        for _, _, p in self.params:
            if p is not None and id(p) not in self.saved:
                grad = p.grad
                self.saved[id(p)] = _Values(_copy(p) if values else None, p.requires_grad,
                                            grad, None if grad is None else _copy(grad))
                self.objects[id(p)] = p
        for _, _, b in self.buffers:
            if b is not None and id(b) not in self.saved:
                self.saved[id(b)] = _Values(_copy(b))
                self.objects[id(b)] = b

    def restore(self, *, parameters: bool = True, hooks: bool = True) -> None:
        """Put everything back. `parameters=False` keeps the parameters' current values (what
        the caller meant to write); `hooks=False` leaves the hook dicts alone (after a call
        that succeeded, hooks registered by the model's own forward stay)."""
        for m, flag in self.training:
            m.training = flag  # not m.train(): a module may override it
        for m, names in self.persistence:
            m._non_persistent_buffers_set.clear()
            m._non_persistent_buffers_set.update(names)
        for m, n, b in self.buffers:
            m._buffers[n] = b  # the object the module held, even if forward replaced it
            if b is not None:
                value = self.saved[id(b)].value
                if value is not None:
                    _put_back(b, value)
        for m, n, p in self.params:
            m._parameters[n] = p
        for key, obj in self.objects.items():
            if not isinstance(obj, nn.Parameter):
                continue
            saved = self.saved[key]
            if parameters and saved.value is not None:
                _put_back(obj, saved.value)
            if obj.requires_grad != saved.requires_grad:
                obj.requires_grad_(saved.requires_grad)
            if saved.grad is not None and saved.grad_value is not None:
                _put_back(saved.grad, saved.grad_value)
            obj.grad = saved.grad
        if hooks:  # a hook a failure left behind (the library removes its own in finally)
            for owner, name, keys in [*((m, n, k) for m, n, k in self.hooks),
                                      *((_module, n, k) for n, k in self.global_hooks)]:
                registered = getattr(owner, name)
                for key in [k for k in registered if k not in keys]:
                    del registered[key]


def cuda_devices(model: nn.Module, tensors: Iterable[object] = ()) -> list[int]:
    """The CUDA devices of `model`'s parameters and buffers and of `tensors`: the generators a
    pass may draw from."""
    found = {t.device.index or 0 for t in [*model.parameters(), *model.buffers(), *tensors]
             if isinstance(t, torch.Tensor) and t.device.type == "cuda"}
    return sorted(found)


@contextlib.contextmanager
def preserved(model: nn.Module, *, keep_parameters: bool = False,
              tensors: Iterable[object] = ()) -> Iterator[ModelState]:
    """The block runs under `borrowed_rng` (torch, CUDA, Python and NumPy RNG put back) and
    `model` is put back afterwards: all of it when the block raises; all but the parameters'
    values when it returns and `keep_parameters` (the caller's result), and hooks registered
    by the model's own forward are then kept."""
    state = ModelState(model)
    with borrowed_rng(cuda_devices(model, tensors)):
        try:
            yield state
        except BaseException:
            state.restore()
            raise
        state.restore(parameters=not keep_parameters, hooks=False)
