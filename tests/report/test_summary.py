"""The demo's terminal summary: one screen, every finding, markup shown as written."""

from __future__ import annotations

import io

from report_demo_results import results

from weightinit.report import summary_table


def test_summary_table_fits_one_screen():
    from rich.console import Console

    r = results()
    r["findings"].append({"id": "lsuv", "text": "LSUV calibrated every layer to unit variance "
                          "in 2 to 3 passes; on digits it matched He within a point, and on "
                          "tanh and GELU it was flat where He was not.", "value": 1.0,
                          "label": "passes"})
    assert len(r["findings"]) == 10
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(summary_table(r))
    text = out.getvalue()
    lines = text.rstrip("\n").split("\n")
    assert len(lines) <= 30, text
    assert max(len(line) for line in lines) <= 100, text
    assert "weightinit demo" in lines[0]
    flat = " ".join(text.split())
    for finding in r["findings"]:  # wrapped, but every word is there, markup as written
        assert " ".join(finding["text"].split()) in flat or all(
            word in text for word in finding["text"].split()), finding["text"]
    assert "<b>&" in text and "[/]" in text
    assert "seeds 0–2" in text and "full run" in text and "58.2 s" in text
    assert "CPU AVX512" in text
    for value in ("0.0128", "inf", "0.501", "1.001", "1.235e+06"):  # 4 significant digits
        assert value in text, value
    # the number column says what each number is: a header, and a label under each number
    assert "key number" in lines[1]
    assert "variance ×/layer" in text and "LSUV accuracy, mean" in text
    assert "<i>[b]x</i>" in text  # a label is text too
    assert "Wall time" not in text  # the run time is in the caption, not a finding


def test_summary_table_of_a_quick_run_without_findings():
    from rich.console import Console

    r = results() | {"quick": True, "findings": [], "seconds": None}
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(summary_table(r))
    assert "no findings" in out.getvalue() and "quick run" in out.getvalue()


def test_summary_table_does_not_parse_markup_in_the_caption():
    from rich.console import Console

    r = results() | {"torch": "2.13[/]", "weightinit": "[bold]0.1",  # markup would raise here
                     "platform": {"cpu_capability": "[red]AVX2"}}
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(summary_table(r))
    assert "weightinit [bold]0.1, torch 2.13[/], CPU [red]AVX2)" in out.getvalue()
