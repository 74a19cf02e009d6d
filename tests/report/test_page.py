"""The demo's HTML page: self-contained, escaped, and opened without errors by a real headless
browser (tests/_browser.py)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import weightinit_test_browser as browser
from report_demo_results import HOSTILE, results

ESCAPED = "Markup is text: &lt;b&gt;&amp; [/] $x_1$ stays as written."


def test_html_is_self_contained_and_escaped(saved):
    paths = saved["paths"]
    page = Path(paths["index"]).read_text(encoding="utf-8")
    assert ESCAPED in page and "<b>&" not in page
    without_images = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]*"', "", page)
    assert without_images.count("data:") == 1  # the CSP's img-src
    assert "//" not in without_images and "url(" not in without_images  # no URL of any kind
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src &#x27;none&#x27;" in page
    parsed = browser.Tags.of(page)
    tags = [tag for tag, _ in parsed]
    for banned in ("script", "link", "iframe", "object", "embed", "base"):
        assert banned not in tags, banned
    images = [attrs for tag, attrs in parsed if tag == "img"]
    assert len(images) == 3 and page.count("data:image/png;base64,") == 3
    for attrs, key in zip(images, ("depth", "training", "beyond_relu"), strict=True):
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,") and attrs["alt"]
        assert base64.b64decode(src.split(",", 1)[1]) == Path(paths[key]).read_bytes()
    for tag, attrs in parsed:  # nothing else refers outside the file
        for key in ("src", "href", "srcset", "poster", "data", "action"):
            assert attrs.get(key) is None or str(attrs[key]).startswith("data:"), (tag, attrs)
    for text in ("weightinit demo: what initialization does", "seed 0", "58.2 s",
                 "Why not zeros", "Too small, too large?", "Does it matter for learning?",
                 "Beyond ReLU", "He et al. 2015", "constant 0.01", "0.972", "1.012",
                 "0.5 (vanishes)", "nan", "σw*"):
        assert text in page, text
    assert page.count("<li>") >= len(results()["findings"])


def test_html_in_a_headless_browser(saved, tmp_path):
    executable = browser.find_browser()
    state = browser.open_report(executable, tmp_path, Path(saved["paths"]["index"]), images=3,
                                min_width=500, min_height=200)
    assert HOSTILE in state["text"], "the markup in a finding is not shown as text"
    assert "Why not zeros" in state["text"] and "Beyond ReLU" in state["text"]
