"""Keyed counter-based random streams (Philox4x32-10) for any region of a logical tensor."""

from ._philox import derive_key as derive_key
from ._philox import philox4x32 as philox4x32
from ._philox import philox4x32_reference as philox4x32_reference
from ._stream import COMPILE_THRESHOLD as COMPILE_THRESHOLD
from ._stream import FLOAT_DTYPES as FLOAT_DTYPES
from ._stream import Backend as Backend
from ._stream import Region as Region
from ._stream import check_seed as check_seed
from ._stream import choose_backend as choose_backend
from ._stream import fill_keyed_ as fill_keyed_
from ._stream import kernel_params as kernel_params

__all__ = [
    "COMPILE_THRESHOLD", "FLOAT_DTYPES", "Backend", "Region", "check_seed", "choose_backend",
    "derive_key", "fill_keyed_", "kernel_params", "philox4x32", "philox4x32_reference",
]
