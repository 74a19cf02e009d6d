"""Everything a library call could leave changed, captured so that a test can assert it is all
bit-identical afterwards: every parameter and buffer by (module, name) (object identity and
values, persistent or not), .grad (identity and values), requires_grad, training flags, hook
dicts (module and global), torch/Python/NumPy RNG states and the warnings filters.

Loaded by path (pytest runs with --import-mode=importlib): tests/diagnose and tests/lsuv use
it."""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as torch_module

_HOOKS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
          "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
          "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks")
_GLOBAL = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
           "_global_backward_pre_hooks", "_global_forward_hooks_always_called")


def capture(model: nn.Module) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        state[f"training:{name}"] = m.training
        state[f"nonpersistent:{name}"] = sorted(m._non_persistent_buffers_set)
        for hook in _HOOKS:
            state[f"{hook}:{name}"] = list(getattr(m, hook, {}).keys())
        for key, p in m._parameters.items():
            where = f"{name}.{key}"
            if p is None:
                state[f"param:{where}"] = None
                continue
            state[f"param:{where}"] = (id(p), p.detach().clone(), p.requires_grad, p.dtype)
            grad = p.grad
            state[f"grad:{where}"] = None if grad is None else (id(grad), grad.clone())
        for key, b in m._buffers.items():
            where = f"{name}.{key}"
            state[f"buffer:{where}"] = None if b is None else (id(b), b.detach().clone())
    for hook in _GLOBAL:
        state[f"global:{hook}"] = list(getattr(torch_module, hook, {}).keys())
    state["rng:torch"] = torch.get_rng_state()
    state["rng:python"] = random.getstate()
    state["rng:numpy"] = np.random.get_state()[1].copy()  # noqa: NPY002
    state["warnings"] = list(warnings.filters)
    return state


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and bool(torch.equal(a, b)))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and bool(np.array_equal(a, b))
    if isinstance(a, (tuple, list)):
        return (isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    return bool(a == b)


def assert_same(model: nn.Module, before: dict[str, Any]) -> None:
    after = capture(model)
    assert after.keys() == before.keys(), after.keys() ^ before.keys()
    changed = [key for key in before if not _same(before[key], after[key])]
    assert not changed, changed
