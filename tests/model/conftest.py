"""Make tests/model/nets.py importable as `model_nets` (pytest runs with --import-mode=importlib,
so test folders are not on sys.path)."""

import importlib.util
import sys
from pathlib import Path

if "model_nets" not in sys.modules:
    _path = Path(__file__).with_name("nets.py")
    _spec = importlib.util.spec_from_file_location("model_nets", _path)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["model_nets"] = _module
    _spec.loader.exec_module(_module)
