"""Keyed counter-based random streams (Philox4x32-10) for any region of a logical tensor."""

from ._philox import derive_key as derive_key
from ._philox import philox4x32 as philox4x32
from ._philox import philox4x32_reference as philox4x32_reference
from ._stream import FLOAT_DTYPES as FLOAT_DTYPES
from ._stream import Region as Region
from ._stream import check_seed as check_seed
from ._stream import fill_keyed_ as fill_keyed_
from ._stream import kernel_params as kernel_params

__all__ = [
    "FLOAT_DTYPES", "Region", "check_seed", "derive_key", "fill_keyed_", "kernel_params",
    "philox4x32", "philox4x32_reference",
]
