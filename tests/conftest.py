"""Tests run torch on one thread (two torch processes with two threads each on a 2-core machine
slow each other 10-100x); tests about threads set their own count and restore it.

tests/model/nets.py (small networks with a known architecture) is importable as `model_nets`:
pytest runs with --import-mode=importlib, so test folders are not on sys.path."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

if "model_nets" not in sys.modules:
    _path = Path(__file__).parent / "model" / "nets.py"
    _spec = importlib.util.spec_from_file_location("model_nets", _path)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["model_nets"] = _module
    _spec.loader.exec_module(_module)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
