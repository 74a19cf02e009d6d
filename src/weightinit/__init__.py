"""weightinit: initialize neural networks the way the research says, reproducibly at any scale.

``import weightinit as wi``. Everything public is listed in ``__all__`` below; the modules behind
it are private.

Importing `weightinit` loads only the exceptions and the version: the rest (torch with it) is
imported on first use of any other public name (PEP 562), so ``weightinit --version`` does not
wait on torch. The names, as type checkers see them, are the imports under `TYPE_CHECKING`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._errors import InitError as InitError
from ._errors import InitWarning as InitWarning

if TYPE_CHECKING:
    from .diagnose import Diagnosis as Diagnosis
    from .diagnose import Finding as Finding
    from .diagnose import LayerStats as LayerStats
    from .diagnose import diagnose as diagnose
    from .lsuv import LSUVLayer as LSUVLayer
    from .lsuv import LSUVReport as LSUVReport
    from .lsuv import lsuv as lsuv
    from .model import ROLES as ROLES
    from .model import Feed as Feed
    from .model import InitPlan as InitPlan
    from .model import ParamInfo as ParamInfo
    from .model import PlanRow as PlanRow
    from .model import Policy as Policy
    from .model import Rule as Rule
    from .model import build as build
    from .model import init_model as init_model
    from .model import materialize as materialize
    from .model import save_initial as save_initial
    from .schemes import BlockConstant as BlockConstant
    from .schemes import Constant as Constant
    from .schemes import DeltaOrthogonal as DeltaOrthogonal
    from .schemes import Glorot as Glorot
    from .schemes import He as He
    from .schemes import Identity as Identity
    from .schemes import Kaiming as Kaiming
    from .schemes import LeCun as LeCun
    from .schemes import Normal as Normal
    from .schemes import Ones as Ones
    from .schemes import Orthogonal as Orthogonal
    from .schemes import Sparse as Sparse
    from .schemes import Spec as Spec
    from .schemes import TruncatedNormal as TruncatedNormal
    from .schemes import Uniform as Uniform
    from .schemes import VarianceScaling as VarianceScaling
    from .schemes import Xavier as Xavier
    from .schemes import ZerO as ZerO
    from .schemes import Zeros as Zeros
    from .schemes import spec_from_dict as spec_from_dict
    from .theory import Activation as Activation
    from .theory import CriticalPoint as CriticalPoint
    from .theory import Fans as Fans
    from .theory import compute_fans as compute_fans
    from .theory import critical_point as critical_point
    from .theory import gain as gain

__version__ = "0.1.0"

# The lazy names by the layer that defines them (the same as the imports above).
_LAZY: dict[str, tuple[str, ...]] = {
    "diagnose": ("Diagnosis", "Finding", "LayerStats", "diagnose"),
    "lsuv": ("LSUVLayer", "LSUVReport", "lsuv"),
    "model": ("ROLES", "Feed", "InitPlan", "ParamInfo", "PlanRow", "Policy", "Rule", "build",
              "init_model", "materialize", "save_initial"),
    "schemes": ("BlockConstant", "Constant", "DeltaOrthogonal", "Glorot", "He", "Identity",
                "Kaiming", "LeCun", "Normal", "Ones", "Orthogonal", "Sparse", "Spec",
                "TruncatedNormal", "Uniform", "VarianceScaling", "Xavier", "ZerO", "Zeros",
                "spec_from_dict"),
    "theory": ("Activation", "CriticalPoint", "Fans", "compute_fans", "critical_point", "gain"),
}
_HOME = {name: layer for layer, names in _LAZY.items() for name in names}


def _load() -> None:
    """Import every layer of the public API and bind its names here (idempotent)."""
    for layer, names in _LAZY.items():
        module = importlib.import_module(f"{__name__}.{layer}")
        for name in names:
            globals()[name] = getattr(module, name)


if not TYPE_CHECKING:  # hidden from type checkers, which would accept any `wi.name` otherwise

    def __getattr__(name: str) -> Any:
        if name not in _HOME:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        _load()
        return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _register_lsuv() -> None:
    """Data-driven policies live above `model`; ``init_model(model, "lsuv",
    example_inputs=batch)`` finds them in its registry, filled here as soon as `model` is
    imported (by whatever imports it), as when this package imported everything eagerly."""
    lsuv = sys.modules.get(f"{__name__}.lsuv")
    if lsuv is None:  # `model` just finished; importing lsuv registers it (below)
        importlib.import_module(f"{__name__}.lsuv")
        return
    plan = getattr(lsuv, "lsuv_plan", None)  # None while lsuv itself is still importing
    if plan is not None:
        sys.modules[f"{__name__}.model"].register_calibrator("lsuv", plan)


class _Package(types.ModuleType):
    """The import system binds a subpackage as an attribute of this package once it is
    imported. ``wi.diagnose`` and ``wi.lsuv`` are the functions of those names (the
    subpackages stay in `sys.modules`), and a finished `model` or `lsuv` registers the LSUV
    calibrator."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            if name in ("diagnose", "lsuv"):
                value = getattr(value, name)
            super().__setattr__(name, value)
            if name in ("model", "lsuv"):
                _register_lsuv()
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "ROLES",
    "Activation",
    "BlockConstant",
    "Constant",
    "CriticalPoint",
    "DeltaOrthogonal",
    "Diagnosis",
    "Fans",
    "Feed",
    "Finding",
    "Glorot",
    "He",
    "Identity",
    "InitError",
    "InitPlan",
    "InitWarning",
    "Kaiming",
    "LSUVLayer",
    "LSUVReport",
    "LayerStats",
    "LeCun",
    "Normal",
    "Ones",
    "Orthogonal",
    "ParamInfo",
    "PlanRow",
    "Policy",
    "Rule",
    "Sparse",
    "Spec",
    "TruncatedNormal",
    "Uniform",
    "VarianceScaling",
    "Xavier",
    "ZerO",
    "Zeros",
    "__version__",
    "build",
    "compute_fans",
    "critical_point",
    "diagnose",
    "gain",
    "init_model",
    "lsuv",
    "materialize",
    "save_initial",
    "spec_from_dict",
]
