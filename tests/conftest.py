"""Tests run torch on one thread (two torch processes with two threads each on a 2-core machine
slow each other 10-100x); tests about threads set their own count and restore it.

tests/model/nets.py (small networks with a known architecture) is importable as `model_nets`,
tests/random/streams.py (the keyed-stream cases) as `random_streams`, tests/random/reference.py
(stream v2 in plain Python) as `stream_reference`, tests/report/demo_results.py
(a fabricated demo results dict) as `report_demo_results`, tests/_browser.py (a headless
Chromium and a tag parser for the HTML reports) as `weightinit_test_browser`,
tests/diagnose/structure_nets.py (transformer-shaped nets initialized by hand) as
`diagnose_structure_nets`, and tests/zoo/models.py (the architectures) and tests/zoo/measure.py
(RMS and finiteness on one forward) as `zoo_models` and `zoo_measure`, tests/report/screenshot.py
as `report_screenshot`, and the fuzz suite's tests/fuzz/{profiles,snapshot,strategies,models}.py
as `fuzz_profiles` (the hypothesis profiles "default", "ci" and "long"), `fuzz_snapshot`,
`fuzz_strategies` and `fuzz_models`: pytest runs with --import-mode=importlib, so test folders
are not on sys.path."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def _register(name: str, path: Path) -> None:
    """Import the file at `path` as the module `name` (once)."""
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register("model_nets", Path(__file__).parent / "model" / "nets.py")
_register("weightinit_test_browser", Path(__file__).parent / "_browser.py")
_register("random_streams", Path(__file__).parent / "random" / "streams.py")
_register("stream_reference", Path(__file__).parent / "random" / "reference.py")
_register("report_demo_results", Path(__file__).parent / "report" / "demo_results.py")
_register("diagnose_structure_nets", Path(__file__).parent / "diagnose" / "structure_nets.py")
_register("zoo_models", Path(__file__).parent / "zoo" / "models.py")
_register("zoo_measure", Path(__file__).parent / "zoo" / "measure.py")
_register("report_screenshot", Path(__file__).parent / "report" / "screenshot.py")
# The fuzz suite's helpers; its hypothesis profiles registered here, before pytest reads
# --hypothesis-profile for the whole suite.
_register("fuzz_profiles", Path(__file__).parent / "fuzz" / "profiles.py")
_register("fuzz_snapshot", Path(__file__).parent / "fuzz" / "snapshot.py")
_register("fuzz_strategies", Path(__file__).parent / "fuzz" / "strategies.py")
_register("fuzz_models", Path(__file__).parent / "fuzz" / "models.py")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_global_matplotlib_state():
    """The code under test must not import pyplot or change rcParams.

    rcParams is read with dict.items: its own __getitem__('backend') imports pyplot."""
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")
    pyplot_before = "matplotlib.pyplot" in sys.modules
    before = dict(dict.items(matplotlib.rcParams))
    yield
    assert dict(dict.items(matplotlib.rcParams)) == before, "rcParams changed"
    if not pyplot_before:
        assert "matplotlib.pyplot" not in sys.modules, "the report imported pyplot"
