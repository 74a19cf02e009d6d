"""Initializer specs: which distribution, which std, for which fans.

Adding a scheme: a frozen dataclass subclassing `Spec` in the file of its family
(`_distributions`: one distribution per element; `_scaling`: fan-based; `_structured`: built
over the whole tensor), exported here and in `weightinit/__init__.py`. `spec_from_dict` finds
it by class name.
"""

from ..theory import truncated_std_factor as truncated_std_factor
from ._base import Spec as Spec
from ._base import spec_from_dict as spec_from_dict
from ._distributions import Constant as Constant
from ._distributions import Normal as Normal
from ._distributions import Ones as Ones
from ._distributions import TruncatedNormal as TruncatedNormal
from ._distributions import Uniform as Uniform
from ._distributions import Zeros as Zeros
from ._scaling import Glorot as Glorot
from ._scaling import He as He
from ._scaling import Kaiming as Kaiming
from ._scaling import LeCun as LeCun
from ._scaling import VarianceScaling as VarianceScaling
from ._scaling import Xavier as Xavier
from ._structured import BlockConstant as BlockConstant
from ._structured import DeltaOrthogonal as DeltaOrthogonal
from ._structured import Identity as Identity
from ._structured import Orthogonal as Orthogonal
from ._structured import Sparse as Sparse
from ._structured import ZerO as ZerO

__all__ = [
    "BlockConstant", "Constant", "DeltaOrthogonal", "Glorot", "He", "Identity", "Kaiming",
    "LeCun", "Normal", "Ones", "Orthogonal", "Sparse", "Spec", "TruncatedNormal", "Uniform",
    "VarianceScaling", "Xavier", "ZerO", "Zeros", "spec_from_dict", "truncated_std_factor",
]
