"""tests/diagnose/structure_nets.py (small transformer-shaped nets, initialized by hand) is
importable as `diagnose_structure_nets`: pytest runs with --import-mode=importlib, so test folders
are not on sys.path (the convention of tests/conftest.py)."""

import importlib.util
import sys
from pathlib import Path


def _register(name: str, path: Path) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register("diagnose_structure_nets", Path(__file__).parent / "structure_nets.py")
