"""Pure math: activation moments and gains, critical points, fans."""

from ._activations import ACTIVATION_NAMES as ACTIVATION_NAMES
from ._activations import Activation as Activation
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

__all__ = [
    "ACTIVATION_NAMES",
    "LAYOUTS",
    "Activation",
    "CriticalPoint",
    "Fans",
    "compute_fans",
    "critical_point",
    "gain",
    "gaussian_expectation",
    "infer_fans",
    "resolve_activation",
    "second_moment",
]
