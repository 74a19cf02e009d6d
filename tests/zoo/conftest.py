"""tests/zoo/models.py (the architectures) is importable as `zoo_models` and tests/zoo/measure.py
(RMS and finiteness on one forward) as `zoo_measure`: pytest runs with --import-mode=importlib,
so test folders are not on sys.path (the same convention as tests/conftest.py)."""

import importlib.util
import sys
from pathlib import Path


def _register(name: str, path: Path) -> None:
    """Import the file at `path` as the module `name` (once)."""
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register("zoo_models", Path(__file__).parent / "models.py")
_register("zoo_measure", Path(__file__).parent / "measure.py")
