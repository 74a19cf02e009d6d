"""Initializer specs: which distribution, which std, for which fans."""

from ._base import Spec as Spec
from ._base import spec_from_dict as spec_from_dict
from ._specs import BlockConstant as BlockConstant
from ._specs import Constant as Constant
from ._specs import DeltaOrthogonal as DeltaOrthogonal
from ._specs import Glorot as Glorot
from ._specs import He as He
from ._specs import Identity as Identity
from ._specs import Kaiming as Kaiming
from ._specs import LeCun as LeCun
from ._specs import Normal as Normal
from ._specs import Ones as Ones
from ._specs import Orthogonal as Orthogonal
from ._specs import Sparse as Sparse
from ._specs import TruncatedNormal as TruncatedNormal
from ._specs import Uniform as Uniform
from ._specs import VarianceScaling as VarianceScaling
from ._specs import Xavier as Xavier
from ._specs import ZerO as ZerO
from ._specs import Zeros as Zeros
from ._specs import truncated_std_factor as truncated_std_factor

__all__ = [
    "BlockConstant", "Constant", "DeltaOrthogonal", "Glorot", "He", "Identity", "Kaiming",
    "LeCun", "Normal", "Ones", "Orthogonal", "Sparse", "Spec", "TruncatedNormal", "Uniform",
    "VarianceScaling", "Xavier", "ZerO", "Zeros", "spec_from_dict", "truncated_std_factor",
]
