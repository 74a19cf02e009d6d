"""Signal-propagation diagnostics: measure a model on a batch, say what is wrong, show it."""

from ._diagnose import diagnose as diagnose
from ._types import Diagnosis as Diagnosis
from ._types import Finding as Finding
from ._types import LayerStats as LayerStats

__all__ = ["Diagnosis", "Finding", "LayerStats", "diagnose"]
