"""The demo's HTML page: self-contained, escaped, every verdict the rule applied to the number
beside it, a table of contents whose links all land; and opened by a real headless browser
(tests/_browser.py), screenshot of the whole page included (tests/report/screenshot.py)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest
import report_screenshot
import weightinit_test_browser as browser
from report_demo_results import HOSTILE, results

from weightinit.report import demo_html, verdict

ESCAPED = "Markup is text: &lt;b&gt;&amp; [/] $x_1$ stays as written."
CELL = re.compile(r'<td class="n two (ok|bad)">×([0-9.e+-]+)/layer[^\n<]*\n'
                  r'×([0-9.e+-]+|inf|0) in all: (flat|shrinks|grows) [✓✗]( †)?</td>')


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
    for tag, attrs in parsed:  # nothing else refers outside the file: in-page links only
        for key in ("src", "href", "srcset", "poster", "data", "action"):
            value = attrs.get(key)
            assert value is None or str(value).startswith(("data:", "#")), (tag, attrs)
    for text in ("weightinit demo: what initialization does", "seeds 0–2", "58.2 s",
                 "CPU AVX512", "Why not zeros", "Too small, too large?",
                 "Does it matter for learning?", "Beyond ReLU", "What reproduces, where",
                 "He et al. 2015", "constant 0.01", "0.969 ± 0.006", "0.537, 0.547, 0.557",
                 "1.012", "σw*", "q* = 0.154", "chance", "0.086", "rate 0.005"):
        assert text in page, text
    assert page.count("<li>") >= len(results()["findings"])


def test_table_of_contents_links_have_targets(saved):
    parsed = browser.Tags.of(Path(saved["paths"]["index"]).read_text(encoding="utf-8"))
    ids = [attrs["id"] for _, attrs in parsed if attrs.get("id")]
    links = [str(attrs["href"]) for tag, attrs in parsed if tag == "a"]
    assert len(ids) == len(set(ids)), "an id is used twice"
    assert len(links) == 7 and all(href.startswith("#") for href in links)
    assert {href[1:] for href in links} <= set(ids)


def test_every_verdict_is_the_rule_applied_to_the_number_shown(saved):
    """One rule: the cell's verdict is verdict(its rate per layer, its layers); the change "in
    all" is that rate to the power of the layers; ok / bad shading follows the verdict."""
    page = Path(saved["paths"]["index"]).read_text(encoding="utf-8")
    cells = CELL.findall(page)
    # 2 tables x 7 inits x 3 activations, 2 x 2 GELU cells, 3 tanh cells; one has no number
    # (relu N(0, 1) forward: NaN in the fabricated results) and so no verdict
    assert len(cells) == 2 * 7 * 3 + 4 + 3 - 1, len(cells)
    assert page.count("\nno verdict: not a number</td>") == 1
    for shade, rate, change, word, _ in cells:
        # 28 layers (1-29), or 9 for the GELU rates over layers 1-10
        steps = [n for n in (28, 9)
                 if float(rate) ** n == pytest.approx(float(change), rel=0.05)]
        assert steps, (rate, change)
        assert all(verdict(float(rate), n) == word for n in steps), (rate, change, word)
        assert (shade == "ok") == (word == "flat")
    # GELU He straddles the rule's edge in the fabricated results: one seed flat, two not
    daggers = [c for c in cells if c[4]]
    assert daggers and all(c[3] == "shrinks" for c in daggers)
    assert "† marks a verdict that is not the same for every seed" in " ".join(page.split())


def test_the_prose_states_the_rule_and_the_groups(saved):
    text = html.unescape(re.sub(r"<[^>]+>", "", Path(saved["paths"]["index"]).read_text(
        encoding="utf-8")))
    flat = " ".join(text.split())
    assert "within ×4 either way" in flat and "between 0.952 and 1.05" in flat
    assert ("zeros (0.086), torch default (0.086), N(0, 0.01) (0.086) stayed at chance in "
            "every run") in flat
    assert "Glorot (0.537–0.557) learned part of the task" in flat
    # the verdicts in the prose are the rule's, on the numbers of the tables
    assert "wi.critical_point(\"tanh\", bias_std=0.05) computes, the gradient measured here " \
           "stays flat" in flat
    assert "over layers 1 to 10 the variance it gives stays flat" in flat
    assert "over layers 1–29 the variance grows" in flat
    assert "keeps a sixth per ReLU layer: the gradient, which no bias props up, shrinks " \
           "×0.170 per layer" in flat
    assert "He (0.951–0.971), orthogonal (0.959–0.979), auto (0.954–0.974), LSUV " \
           "(0.962–0.972) reached 0.85 or more in every run" in flat


def test_html_in_a_headless_browser(saved, tmp_path):
    executable = browser.find_browser()
    state = browser.open_report(executable, tmp_path, Path(saved["paths"]["index"]), images=3,
                                min_width=500, min_height=200)
    assert HOSTILE in state["text"], "the markup in a finding is not shown as text"
    assert "Why not zeros" in state["text"] and "Beyond ReLU" in state["text"]


def test_screenshot_of_the_whole_page_at_1280_px(saved, tmp_path):
    """The page rendered at 1280 px: a real PNG of its full height, not blank, each figure
    loaded and drawn where the layout puts it, every table-of-contents link landing on its
    section. The screenshot stays in tmp_path (index.png) for a look by eye."""
    image_module = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot")
    executable = browser.find_browser()
    shot = report_screenshot.capture(executable, tmp_path, Path(saved["paths"]["index"]),
                                     width=1280)
    assert shot["problems"] == [], shot["problems"]
    assert shot["scripts"] == 0
    png_path = tmp_path / "index.png"
    png_path.write_bytes(shot["png"])
    assert shot["png"].startswith(b"\x89PNG\r\n\x1a\n")
    with image_module.open(png_path) as opened:
        picture = opened.convert("RGB")
    assert picture.size == (1280, shot["height"]), (picture.size, shot["height"])
    assert shot["height"] > 3000 and shot["width"] <= 1280, "the page overflows sideways"

    def ink(box: tuple[int, int, int, int]) -> float:
        """The fraction of pixels in `box` that are not the page's light background."""
        counts = picture.crop(box).convert("L").histogram()
        return sum(counts[:200]) / sum(counts)

    colors = picture.reduce(8).getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 200, "the screenshot is (nearly) one color"
    assert ink((0, 0, 1280, 60)) > 0.5  # the blue header
    assert ink((0, shot["height"] - 400, 1280, shot["height"])) > 0.005  # references text
    assert len(shot["images"]) == 3
    for image in shot["images"]:
        assert image["complete"] and image["width"] > 500 and image["height"] > 200, image
        assert 600 < image["shown_width"] <= 1280, image
        top, left = int(image["top"]), int(image["left"])
        box = (left, top, left + int(image["shown_width"]), top + int(image["shown_height"]))
        assert box[3] <= shot["height"], image
        assert ink(box) > 0.02, f"figure {image['alt']!r} is blank in the screenshot"
    assert [link["href"] for link in shot["links"]] == [
        "#findings", "#zeros", "#depth", "#training", "#beyond-relu", "#reproducibility",
        "#references"]
    assert all(link["target"] and link["landed"] for link in shot["links"]), shot["links"]


def test_a_page_without_seeds_or_platform_still_renders():
    """Results from before the seeds (one run, no platform): the page says what it has."""
    r = results()
    for key in ("seeds", "platform"):
        del r[key]
    page = demo_html(r, dict.fromkeys(("depth", "training", "beyond_relu"), b"\x89PNG"))
    assert "seed 0, full run" in page and "CPU" not in page.split("</header>")[0]
