"""Keyed counter-based random streams (Philox4x32-10) for any region of a logical tensor.

The names below are this layer's API for the layers above (`schemes`, `model`, `lsuv`); none of
them is re-exported by `weightinit`.
"""

from ._fill import FLOAT_DTYPES as FLOAT_DTYPES
from ._fill import Kind as Kind
from ._fill import check_params as check_params
from ._fill import check_seed as check_seed
from ._fill import check_target as check_target
from ._fill import check_writable as check_writable
from ._fill import fill_keyed_ as fill_keyed_
from ._fill import overflow_problem as overflow_problem
from ._kernels import Backend as Backend
from ._kernels import choose_backend as choose_backend
from ._philox import check_key as check_key
from ._philox import derive_key as derive_key
from ._philox import philox4x32 as philox4x32
from ._philox import philox4x32_reference as philox4x32_reference
from ._region import Region as Region
from ._transforms import NORMAL_REACH as NORMAL_REACH
from ._transforms import kernel_params as kernel_params
from ._transforms import largest_magnitude as largest_magnitude
from ._transforms import truncated_interval_problem as truncated_interval_problem
from ._transforms import truncated_inverse_cdf_params as truncated_inverse_cdf_params

__all__ = [
    "FLOAT_DTYPES", "NORMAL_REACH", "Backend", "Kind", "Region", "check_key", "check_params",
    "check_seed", "check_target", "check_writable", "choose_backend", "derive_key",
    "fill_keyed_", "kernel_params", "largest_magnitude", "overflow_problem", "philox4x32",
    "philox4x32_reference", "truncated_interval_problem", "truncated_inverse_cdf_params",
]
