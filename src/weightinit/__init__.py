"""weightinit: initialize neural networks the way the research says, reproducibly at any scale.

``import weightinit as wi``. Everything public is listed in ``__all__`` below; the modules behind
it are private.
"""

from ._errors import InitError as InitError
from ._errors import InitWarning as InitWarning
from .diagnose import Diagnosis as Diagnosis
from .diagnose import Finding as Finding
from .diagnose import LayerStats as LayerStats
from .diagnose import diagnose as diagnose
from .lsuv import LSUVLayer as LSUVLayer
from .lsuv import LSUVReport as LSUVReport
from .lsuv import lsuv as lsuv
from .lsuv import lsuv_plan as _lsuv_plan
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
from .model import register_calibrator as _register_calibrator
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

# Data-driven policies live above `model`; init_model(model, "lsuv", example_inputs=batch) finds
# them in its registry, filled here.
_register_calibrator("lsuv", _lsuv_plan)

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
