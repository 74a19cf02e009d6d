"""Reading the results dict: results.json read back is valid input, and a missing part is a
clear error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_demo_results import results

from weightinit._errors import InitError
from weightinit.report import demo_figures, demo_html

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")


def test_results_read_back_from_json_render_again(saved):
    """results.json (null for NaN and Inf) is itself valid input, also with fewer inits."""
    r = json.loads(Path(saved["paths"]["results"]).read_text(encoding="utf-8"))
    for act in r["depth"]["activations"].values():
        for name in ("torch default", "LSUV"):
            del act[name]
    del r["symmetry"]["runs"]["constant 0.01"]
    figures = demo_figures(r)
    assert len(figures["depth"].legends[0].get_texts()) == 5
    page = demo_html(r, dict.fromkeys(figures, b"\x89PNG"))
    assert "constant 0.01" not in page.split("<h2>1.")[1].split("<h2>2.")[0]


def test_a_broken_results_dict_is_a_clear_error():
    r = results()
    del r["beyond_relu"]["tanh"]
    with pytest.raises(InitError, match=r"results\['beyond_relu'\]\['tanh'\] is missing"):
        demo_figures(r)
    with pytest.raises(InitError, match="'training'"):
        demo_html(results(), {"depth": b"", "beyond_relu": b""})
