"""The report folder: results.json (null for NaN and Inf), the PNGs and index.html, written
without pyplot or a change to rcParams, and nothing written for a bad folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from report_demo_results import results

from weightinit._errors import InitError
from weightinit.report import save_demo

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")

FILES = {"index.html", "results.json", "depth.png", "training.png", "beyond_relu.png"}


def _nulled(value: Any) -> Any:
    """What JSON keeps of `value`: NaN and Inf as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v) for v in value]
    return value


def test_save_demo_writes_the_folder(saved):
    """The figures are drawn there (where NaN, None or 0 on a log axis would fail), without
    pyplot or a change to rcParams."""
    paths, out, r = saved["paths"], saved["out"], saved["results"]
    assert not saved["rcparams_changed"], "rcParams changed"
    assert not saved["pyplot_imported"], "the report imported pyplot"
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert list(paths) == ["index", "results", "depth", "training", "beyond_relu"]
    assert {Path(p).name for p in paths.values()} == FILES
    assert all(Path(p).parent == out for p in paths.values())
    for key in ("depth", "training", "beyond_relu"):
        png = Path(paths[key]).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    text = Path(paths["results"]).read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text and "\n  " in text  # indent 2
    assert json.loads(text) == _nulled(saved["before"])
    assert json.loads(text)["depth"]["activations"]["relu"]["N(0, 1)"]["std_mean"][-1] is None
    assert json.dumps(r) == json.dumps(saved["before"]), "save_demo changed the results"


def test_save_demo_refuses_a_file(tmp_path):
    target = tmp_path / "report"
    target.write_text("keep me")
    with pytest.raises(InitError, match=r"`out_dir` .* is a file"):
        save_demo(results(), target)
    assert target.read_text() == "keep me"
    with pytest.raises(InitError, match="could not be created"):
        save_demo(results(), target / "below")
    assert list(tmp_path.iterdir()) == [target]
