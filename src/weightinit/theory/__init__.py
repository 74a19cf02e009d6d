"""Pure math: activation moments and gains, critical points, fans.

The names below are this layer's API for the layers above; `weightinit` re-exports the public
ones (`gain`, `critical_point`, `compute_fans`, ...).
"""

from ._activations import ACTIVATION_NAMES as ACTIVATION_NAMES
from ._activations import PREFERRED_NAMES as PREFERRED_NAMES
from ._activations import Activation as Activation
from ._activations import activation_parameters as activation_parameters
from ._activations import resolve_activation as resolve_activation
from ._critical import CriticalPoint as CriticalPoint
from ._critical import critical_point as critical_point
from ._fans import LAYOUTS as LAYOUTS
from ._fans import Fans as Fans
from ._fans import compute_fans as compute_fans
from ._fans import infer_fans as infer_fans
from ._gain import gain as gain
from ._gain import second_moment as second_moment
from ._quadrature import gaussian_expectation as gaussian_expectation
from ._quadrature import truncated_std_factor as truncated_std_factor

__all__ = [
    "ACTIVATION_NAMES",
    "LAYOUTS",
    "PREFERRED_NAMES",
    "Activation",
    "CriticalPoint",
    "Fans",
    "activation_parameters",
    "compute_fans",
    "critical_point",
    "gain",
    "gaussian_expectation",
    "infer_fans",
    "resolve_activation",
    "second_moment",
    "truncated_std_factor",
]
