"""Data-driven calibration: LSUV."""

from ._lsuv import LSUVLayer as LSUVLayer
from ._lsuv import LSUVReport as LSUVReport
from ._lsuv import lsuv as lsuv
from ._lsuv import register as _register

_register()

__all__ = ["LSUVLayer", "LSUVReport", "lsuv"]
