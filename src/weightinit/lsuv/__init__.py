"""Data-driven calibration: LSUV.

`lsuv_plan` is this layer's calibrator for ``init_model(model, "lsuv", ...)``; `weightinit`
registers it where the public API is assembled.
"""

from ._lsuv import LSUVLayer as LSUVLayer
from ._lsuv import LSUVReport as LSUVReport
from ._lsuv import lsuv as lsuv
from ._lsuv import lsuv_plan as lsuv_plan

__all__ = ["LSUVLayer", "LSUVReport", "lsuv", "lsuv_plan"]
