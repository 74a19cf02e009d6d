"""Whole-model initialization: discover each parameter's role and what feeds it, apply a policy,
return the plan."""

from ._dataflow import Feed as Feed
from ._materialize import materialize as materialize
from ._plan import InitPlan as InitPlan
from ._plan import PlanRow as PlanRow
from ._plan import init_model as init_model
from ._policy import PRESETS as PRESETS
from ._policy import ParamInfo as ParamInfo
from ._policy import Policy as Policy
from ._policy import Rule as Rule
from ._roles import ROLES as ROLES

__all__ = ["PRESETS", "ROLES", "Feed", "InitPlan", "ParamInfo", "PlanRow", "Policy", "Rule",
           "init_model", "materialize"]
