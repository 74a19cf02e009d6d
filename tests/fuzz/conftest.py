"""The fuzz suite's helpers, importable by name: profiles.py (the hypothesis profiles "default"
and "long") as `fuzz_profiles`, strategies.py (numbers, specs, tensors, fill arguments) as
`fuzz_strategies`, models.py (random small models, policies, batches) as `fuzz_models` and
snapshot.py (everything a library call must leave as it was) as `fuzz_snapshot`. pytest runs
with --import-mode=importlib, so test folders are not on sys.path; tests/conftest.py registers
its helpers the same way."""

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


_HERE = Path(__file__).parent
_register("fuzz_profiles", _HERE / "profiles.py")
_register("fuzz_snapshot", _HERE / "snapshot.py")
_register("fuzz_strategies", _HERE / "strategies.py")
_register("fuzz_models", _HERE / "models.py")
