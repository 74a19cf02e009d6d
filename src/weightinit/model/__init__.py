"""Whole-model initialization: discover each parameter's role and what feeds it, apply a policy,
return the plan.

Public (re-exported by `weightinit`): `init_model`, `materialize`, `InitPlan`, `PlanRow`,
`Policy`, `Rule`, `ParamInfo`, `Feed`, `ROLES`. The rest is this layer's API for the layers
above (`lsuv`, `diagnose`, `cli`): discovery and plan building, the probe helpers, and the
registries of presets and calibrators.
"""

from ._build import build as build
from ._checkpoint import save_initial as save_initial
from ._dataflow import Feed as Feed
from ._dataflow import is_norm as is_norm
from ._discovery import Discovery as Discovery
from ._discovery import discover as discover
from ._graph import iter_ancestors as iter_ancestors
from ._graph import owns_parameters as owns_parameters
from ._graph import record as record
from ._info import ParamInfo as ParamInfo
from ._init_model import build_plan as build_plan
from ._init_model import init_model as init_model
from ._materialize import materialize as materialize
from ._plan import InitPlan as InitPlan
from ._plan import PlanRow as PlanRow
from ._policy import CALIBRATORS as CALIBRATORS
from ._policy import Policy as Policy
from ._policy import Rule as Rule
from ._policy import register_calibrator as register_calibrator
from ._presets import PRESETS as PRESETS
from ._probe import check_batch as check_batch
from ._probe import eval_mode as eval_mode
from ._probe import synthesize_input as synthesize_input
from ._probe import unwrap as unwrap
from ._roles import ROLES as ROLES

__all__ = [
    "CALIBRATORS", "PRESETS", "ROLES", "Discovery", "Feed", "InitPlan", "ParamInfo", "PlanRow",
    "Policy", "Rule", "build", "build_plan", "check_batch", "discover", "eval_mode", "init_model",
    "is_norm", "iter_ancestors", "materialize", "owns_parameters", "record",
    "register_calibrator", "save_initial", "synthesize_input", "unwrap",
]
