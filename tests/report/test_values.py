"""Reading the results dict: results.json read back is valid input, and a missing part is a
clear error naming it."""

from __future__ import annotations

import json
import math
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
    assert len(figures["depth"].legends[0].get_texts()) == 5 + 1  # + the flat band
    page = demo_html(r, dict.fromkeys(figures, b"\x89PNG"))
    assert "constant 0.01" not in page.split('<h2 id="zeros">')[1].split('<h2 id="depth">')[0]


def test_a_broken_results_dict_is_a_clear_error():
    r = results()
    del r["beyond_relu"]["tanh"]
    with pytest.raises(InitError, match=r"results\['beyond_relu'\]\['tanh'\] is missing"):
        demo_figures(r)
    with pytest.raises(InitError, match="'training'"):
        demo_html(results(), {"depth": b"", "beyond_relu": b""})


def test_one_rule_for_every_verdict():
    """flat when per_layer ** steps is within FLAT (4x) either way; the edges included."""
    from weightinit.report import FLAT, verdict

    assert FLAT == 4.0
    edge = FLAT ** (1 / 28)  # 1.0508: x4 over 28 layers
    assert verdict(1.0, 28) == "flat"
    assert verdict(edge * 0.9999, 28) == "flat" and verdict(edge * 1.001, 28) == "grows"
    assert verdict(1 / edge * 1.0001, 28) == "flat" and verdict(1 / edge * 0.999, 28) == (
        "shrinks")
    # the cases: x0.942 per layer over 28 layers is x0.19, not flat
    assert verdict(0.942, 28) == "shrinks" and verdict(1.057, 28) == "grows"
    assert verdict(1.023, 28) == "flat"  # x1.89 in all
    assert verdict(0.0, 28) == "shrinks" and verdict(math.inf, 28) == "grows"
    assert verdict(1e300, 28) == "grows"  # overflow in the power is still "grows"
    for missing in (None, math.nan, "1.0", True):
        assert verdict(missing, 28) == "-"


def test_formats_shared_by_the_findings_and_the_page():
    from weightinit.report import seed_list, span_of, times, total, value_range
    from weightinit.report._values import as_verb, chance_of, mean_sd

    assert [as_verb(w) for w in ("flat", "shrinks", "grows", "-")] == [
        "stays flat", "shrinks", "grows", "has no number to judge"]

    assert seed_list([0, 1, 2]) == "0–2" and seed_list([3, 4, 5, 6]) == "3–6"
    assert seed_list([0, 2, 5]) == "0, 2, 5" and seed_list([7]) == "7"
    assert seed_list([0, 1]) == "0, 1" and seed_list(None) == "-" and seed_list([]) == "-"
    assert times(0.476) == "×0.476" and times(1.0) == "×1.00" and times(64.41) == "×64.4"
    assert times(0.0) == "×0" and times(math.inf) == "×inf" and times(None) == "-"
    assert total(0.5, 2) == 0.25 and total(None, 3) is None and total(1e300, 28) == math.inf
    assert value_range([0.473, 0.48, 0.476]) == "0.473–0.48" and value_range([1, 1]) == "1"
    assert value_range([None, math.nan]) == "-"
    assert span_of({"span": [1, 29]}) == (1, 29) and span_of({"depth": 50}) == (1, 49)
    assert span_of({"span": [3, 3], "depth": 10}) == (1, 9) and span_of({}) == (1, 29)
    assert chance_of({"training": {"chance": 0.0864}}) == 0.0864
    assert chance_of({"training": {}}) == 0.1 and chance_of({}) == 0.1
    assert mean_sd({"mean": 0.9443, "sd": 0.0071}) == "0.944 ± 0.007"
    assert mean_sd({"mean": math.nan, "sd": 0.0}) == "-" and mean_sd(None) == "-"


@pytest.mark.parametrize("where", ["training", "depth"])
def test_results_of_an_older_single_seed_demo_are_refused(where, tmp_path):
    """Before the seeds, a run's accuracy and a profile's rate were one number each: a clear
    error naming the part, and nothing written."""
    from weightinit.report import save_demo

    r = results()
    if where == "training":
        r["training"]["runs"]["He"]["test_accuracy"] = 0.939
        part = r"results\['training'\]\['runs'\]\['He'\]\['test_accuracy'\] is 0.939"
    else:
        r["depth"]["activations"]["tanh"]["auto"]["forward"] = 1.0
        part = r"results\['depth'\]\['activations'\]\['tanh'\]\['auto'\]\['forward'\] is 1.0"
    before = json.dumps(r)
    for call in (demo_figures, lambda x: demo_html(x, dict.fromkeys(
            ("depth", "training", "beyond_relu"), b""))):
        with pytest.raises(InitError, match=part + r", one number, .*older weightinit demo"):
            call(r)
    with pytest.raises(InitError, match="Run `weightinit demo` again"):
        save_demo(r, tmp_path / "out")
    assert list(tmp_path.iterdir()) == [] and json.dumps(r) == before
