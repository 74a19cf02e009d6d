"""The report folder of the fabricated results (tests/report/demo_results.py), written once for
the tests that read it (tests/conftest.py registers tests/report/screenshot.py, a full-page
screenshot in headless Chromium, as `report_screenshot`)."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest
import report_demo_results as demo_results  # registered by tests/conftest.py

from weightinit.report import save_demo


@pytest.fixture(scope="session")
def saved(tmp_path_factory) -> dict[str, Any]:
    """The report folder of `results()`, written once (drawing is the slow part) for the tests
    that read it; with the results before the call and the global matplotlib state around it.

    rcParams is read with dict.items: its own __getitem__('backend') imports pyplot."""
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")
    r = demo_results.results()
    before = copy.deepcopy(r)
    pyplot_before = "matplotlib.pyplot" in sys.modules
    params = dict(dict.items(matplotlib.rcParams))
    out = tmp_path_factory.mktemp("demo") / "made" / "by" / "demo"  # parents created too
    paths = save_demo(r, out)
    return {"paths": paths, "out": out, "results": r, "before": before,
            "rcparams_changed": dict(dict.items(matplotlib.rcParams)) != params,
            "pyplot_imported": not pyplot_before and "matplotlib.pyplot" in sys.modules}
