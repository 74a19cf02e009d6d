"""The demo's report: a terminal summary that fits one screen, three figures drawn without
global matplotlib state, and a folder (results.json, the PNGs, one self-contained escaped HTML
page that a real headless browser opens without errors).

The results dicts are fabricated here, following docs/demo-results.md, so these tests do not
depend on the experiments (weightinit.studies)."""

from __future__ import annotations

import base64
import copy
import html.parser
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import weightinit_test_browser as browser

from weightinit._errors import InitError
from weightinit.report import demo_figures, demo_html, save_demo, summary_table

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")

HOSTILE = "Markup is text: <b>& [/] $x_1$ stays as written."
ESCAPED = "Markup is text: &lt;b&gt;&amp; [/] $x_1$ stays as written."
DEPTH_INITS = ("N(0, 0.01)", "N(0, 1)", "Glorot", "He", "torch default", "auto", "LSUV")
TRAIN_INITS = ("zeros", "torch default", "N(0, 0.01)", "Glorot", "He", "orthogonal", "auto",
               "LSUV")
FILES = {"index.html", "results.json", "depth.png", "training.png", "beyond_relu.png"}


def _geometric(first: float, factor: float, n: int) -> list[float]:
    """first, first * factor, ...: a per-layer profile, overflowing to inf like float32."""
    values = [first * factor ** i for i in range(n)]
    return [v if v < 3.4e38 else math.inf for v in values]


def _depth_block(depth: int) -> dict[str, Any]:
    # variance factor per layer of each init, per activation (std factor = its square root)
    factors = {
        "relu": {"N(0, 0.01)": 0.0032, "N(0, 1)": 32.0, "Glorot": 0.5, "He": 1.0,
                 "torch default": 0.17, "auto": 1.0, "LSUV": 1.0},
        "tanh": {"N(0, 0.01)": 0.0064, "N(0, 1)": 1.0, "Glorot": 0.93, "He": 1.0,
                 "torch default": 0.33, "auto": 1.0, "LSUV": 1.0},
        "gelu": {"N(0, 0.01)": 0.0027, "N(0, 1)": 27.0, "Glorot": 0.42, "He": 0.85,
                 "torch default": 0.14, "auto": 1.0, "LSUV": 1.0},
    }
    block: dict[str, Any] = {}
    for act, by_init in factors.items():
        block[act] = {}
        for name in DEPTH_INITS:
            f = by_init[name]
            std = _geometric(0.8, math.sqrt(f), depth)
            grad = _geometric(1e-3, math.sqrt(f), depth)[::-1]
            block[act][name] = {"std": std, "grad": grad, "variance_per_layer": f,
                                "healthy": 0.7 <= f <= 1.4}
    block["relu"]["N(0, 1)"]["std"][-1] = math.nan  # an exploding profile: NaN in memory
    block["relu"]["N(0, 1)"]["variance_per_layer"] = math.nan
    block["tanh"]["N(0, 1)"]["grad"][3] = None  # as read back from results.json
    block["relu"]["N(0, 0.01)"]["grad"][0] = 0.0  # underflow: exactly zero
    block["relu"]["N(0, 0.01)"]["grad"][1] = 0.0
    return block


def results() -> dict[str, Any]:
    """A schema-complete results dict with plausible numbers, one null and one NaN in a profile,
    an exploding (inf) profile and a finding text with markup in it."""
    epochs = 20
    accuracy = {"zeros": 0.1, "torch default": 0.883, "N(0, 0.01)": 0.1, "Glorot": 0.547,
                "He": 0.961, "orthogonal": 0.969, "auto": 0.964, "LSUV": 0.972}
    runs = {}
    for name in TRAIN_INITS:
        a = accuracy[name]
        if a <= 0.11:
            losses = [2.3026 - 0.0001 * i for i in range(epochs)]
        else:
            losses = [2.3 * math.exp(-4.0 * a * i / epochs) + 0.02 for i in range(epochs)]
        runs[name] = {"test_accuracy": a, "test_loss": losses[-1] * 1.4, "losses": losses}
    tanh_runs = {}
    for label, f in (("0.5 x critical", 0.78), ("critical", 0.999), ("2 x critical", 1.21)):
        grad = _geometric(1e-3, f, 50)[::-1]  # layer 1 first: x f per layer back from 50
        tanh_runs[label] = {"std": _geometric(0.6, 0.99, 50), "grad": grad,
                            "grad_per_layer": f}
    findings = [
        {"id": "zeros", "text": "Zeros: after 20 epochs every unit of layer 10 is still "
         "identical (max distance 0); test accuracy 0.100, chance.", "value": 0.0},
        {"id": "constant", "text": "Constant 0.01: units identical too (max distance 0); "
         "test accuracy 0.196.", "value": 0.0},
        {"id": "tiny", "text": "N(0, 0.01) on 30 ReLU layers of width 256: variance x0.0128 "
         "per layer: it vanishes.", "value": 0.0128},
        {"id": "huge", "text": "N(0, 1): variance x128 per layer: it explodes.",
         "value": math.inf},
        {"id": "glorot", "text": "Glorot halves the variance per ReLU layer (x0.501, He et al. "
         "2015); He x1.002, auto x1.001.", "value": 0.501},
        {"id": "training", "text": "Digits, 20 ReLU layers, same recipe: LSUV 0.972, "
         "orthogonal 0.969, auto 0.964, He 0.961, torch default 0.883, Glorot 0.547, "
         "N(0, 0.01) 0.100, zeros 0.100.", "value": 0.972},
        {"id": "gelu", "text": "GELU net: relu's gain 1.414 loses variance (x0.852 per layer); "
         "the computed 1.534 keeps it (x1.001).", "value": 1.001},
        {"id": "tanh", "text": "tanh at sigma_w* = 1.0123 (bias std 0.05): gradient per layer "
         "0.5 x critical x0.780, critical x0.999, 2 x critical x1.210.", "value": 0.999},
        {"id": "hostile", "text": HOSTILE, "value": 1234567.0},
    ]
    return {
        "seed": 0, "quick": False, "seconds": 58.24, "torch": "2.13.0", "weightinit": "0.1.0",
        "findings": findings,
        "symmetry": {"depth": 20, "width": 64, "runs": {
            "zeros": {"max_unit_distance": 0.0, "layer": "10", "test_accuracy": 0.1},
            "constant 0.01": {"max_unit_distance": 0.0, "layer": "10", "test_accuracy": 0.196},
            "auto": {"max_unit_distance": 4.73, "layer": "10", "test_accuracy": 0.964},
        }},
        "depth": {"depth": 30, "width": 256, "batch": 512, "activations": _depth_block(30)},
        "training": {"depth": 20, "width": 64,
                     "recipe": {"epochs": epochs, "batch_size": 64, "lr": 0.01,
                                "momentum": 0.9},
                     "runs": runs},
        "beyond_relu": {
            "gelu": {"depth": 30, "gains": {
                "relu's gain 1.414": {"std": _geometric(0.9, math.sqrt(0.852), 30),
                                      "variance_per_layer": 0.852},
                "computed 1.534": {"std": _geometric(0.9, 1.0, 30),
                                   "variance_per_layer": 1.001}}},
            "tanh": {"depth": 50, "bias_std": 0.05, "sigma_w_star": 1.0123,
                     "runs": tanh_runs},
        },
    }


def _nulled(value: Any) -> Any:
    """What JSON keeps of `value`: NaN and Inf as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v) for v in value]
    return value


@pytest.fixture
def no_global_matplotlib_state():
    """The code under test must not import pyplot or change rcParams.

    rcParams is read with dict.items: its own __getitem__('backend') imports pyplot."""
    pyplot_before = "matplotlib.pyplot" in sys.modules
    before = dict(dict.items(matplotlib.rcParams))
    yield
    assert dict(dict.items(matplotlib.rcParams)) == before, "rcParams changed"
    if not pyplot_before:
        assert "matplotlib.pyplot" not in sys.modules, "the report imported pyplot"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Any]:
    """The report folder of `results()`, written once (drawing is the slow part) for the tests
    that read it; with the results before the call and the global matplotlib state around it.

    rcParams is read with dict.items: its own __getitem__('backend') imports pyplot."""
    r = results()
    before = copy.deepcopy(r)
    pyplot_before = "matplotlib.pyplot" in sys.modules
    params = dict(dict.items(matplotlib.rcParams))
    out = tmp_path_factory.mktemp("demo") / "made" / "by" / "demo"  # parents created too
    paths = save_demo(r, out)
    return {"paths": paths, "out": out, "results": r, "before": before,
            "rcparams_changed": dict(dict.items(matplotlib.rcParams)) != params,
            "pyplot_imported": not pyplot_before and "matplotlib.pyplot" in sys.modules}


# --- terminal ------------------------------------------------------------------------------


def test_summary_table_fits_one_screen():
    from rich.console import Console

    r = results()
    r["findings"].append({"id": "lsuv", "text": "LSUV calibrated every layer to unit variance "
                          "in 2 to 3 passes; on digits it matched He within a point, and on "
                          "tanh and GELU it was healthy where He was not.", "value": 1.0})
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
    assert "seed 0" in text and "full run" in text and "58.2 s" in text
    for value in ("0.0128", "inf", "0.501", "1.001", "1.235e+06"):  # 4 significant digits
        assert value in text, value


def test_summary_table_of_a_quick_run_without_findings():
    from rich.console import Console

    r = results() | {"quick": True, "findings": [], "seconds": None}
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(summary_table(r))
    assert "no findings" in out.getvalue() and "quick run" in out.getvalue()


# --- figures -------------------------------------------------------------------------------


def _colors(ax: Any) -> dict[str, str]:
    return {str(line.get_label()): line.get_color() for line in ax.get_lines()
            if not str(line.get_label()).startswith("_")}


def test_figures(no_global_matplotlib_state):
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    r = results()
    figures = demo_figures(r)
    assert list(figures) == ["depth", "training", "beyond_relu"]
    assert all(isinstance(f, Figure) for f in figures.values())
    depth, training, beyond = figures["depth"], figures["training"], figures["beyond_relu"]

    assert len(depth.axes) == 6 and all(ax.get_yscale() == "log" for ax in depth.axes)
    titles = [ax.get_title() for ax in depth.axes]
    assert titles == ["relu: activation std", "relu: gradient RMS", "tanh: activation std",
                      "tanh: gradient RMS", "gelu: activation std", "gelu: gradient RMS"]
    assert depth.get_suptitle() == ("Signal through a 30-layer MLP (width 256), "
                                    "by initialization")
    assert len(depth.legends) == 1 and all(ax.get_legend() is None for ax in depth.axes)
    assert [t.get_text() for t in depth.legends[0].get_texts()] == list(DEPTH_INITS)
    colors = [_colors(ax) for ax in depth.axes]
    assert all(list(c) == list(DEPTH_INITS) for c in colors)
    assert all(c == colors[0] for c in colors), "an init changes color between panels"
    assert len(set(colors[0].values())) == len(DEPTH_INITS)
    xs = depth.axes[0].get_lines()[0].get_xdata()
    assert list(xs) == list(range(1, 31))  # layer 1 first

    assert len(training.axes) == 2
    loss, accuracy = training.axes
    assert loss.get_yscale() == "log" and accuracy.get_yscale() == "linear"
    assert "digits" in training.get_suptitle() and "lr 0.01" in training.get_suptitle()
    assert "momentum 0.9" in training.get_suptitle()
    assert len(accuracy.patches) == len(TRAIN_INITS)
    assert [t.get_text() for t in accuracy.get_yticklabels()] == list(TRAIN_INITS)
    printed = {t.get_text() for t in accuracy.texts}
    assert {"0.972", "0.100", "0.547"} <= printed
    chance = [line for line in accuracy.get_lines() if line.get_linestyle() == "--"]
    assert len(chance) == 1 and list(chance[0].get_xdata()) == [0.1, 0.1]
    shared = set(_colors(loss)) & set(colors[0])
    assert shared and all(to_hex(_colors(loss)[n]) == to_hex(colors[0][n]) for n in shared)

    assert len(beyond.axes) == 2 and all(ax.get_yscale() == "log" for ax in beyond.axes)
    assert "1.012" in beyond.axes[1].get_title()  # sigma_w*
    assert len(beyond.axes[0].get_legend().get_texts()) == 2
    assert len(beyond.axes[1].get_legend().get_texts()) == 3


def test_missing_matplotlib_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    r = results()
    with pytest.raises(InitError, match=r"pip install matplotlib"):
        demo_figures(r)
    with pytest.raises(InitError, match=r"pip install matplotlib"):
        save_demo(r, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the folder
    summary_table(r)  # needs only rich


# --- the folder ----------------------------------------------------------------------------


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
    assert json.loads(text)["depth"]["activations"]["relu"]["N(0, 1)"]["std"][-1] is None
    assert json.dumps(r) == json.dumps(saved["before"]), "save_demo changed the results"


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


def test_save_demo_refuses_a_file(tmp_path):
    target = tmp_path / "report"
    target.write_text("keep me")
    with pytest.raises(InitError, match=r"`out_dir` .* is a file"):
        save_demo(results(), target)
    assert target.read_text() == "keep me"
    with pytest.raises(InitError, match="could not be created"):
        save_demo(results(), target / "below")
    assert list(tmp_path.iterdir()) == [target]


def test_a_broken_results_dict_is_a_clear_error():
    r = results()
    del r["beyond_relu"]["tanh"]
    with pytest.raises(InitError, match=r"results\['beyond_relu'\]\['tanh'\] is missing"):
        demo_figures(r)
    with pytest.raises(InitError, match="'training'"):
        demo_html(results(), {"depth": b"", "beyond_relu": b""})


# --- HTML ----------------------------------------------------------------------------------


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_escaped(saved):
    paths = saved["paths"]
    page = Path(paths["index"]).read_text(encoding="utf-8")
    assert ESCAPED in page and "<b>&" not in page
    without_images = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]*"', "", page)
    assert without_images.count("data:") == 1  # the CSP's img-src
    assert "//" not in without_images and "url(" not in without_images  # no URL of any kind
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src &#x27;none&#x27;" in page
    parser = _Tags()
    parser.feed(page)
    tags = [tag for tag, _ in parser.tags]
    for banned in ("script", "link", "iframe", "object", "embed", "base"):
        assert banned not in tags, banned
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 3 and page.count("data:image/png;base64,") == 3
    for attrs, key in zip(images, ("depth", "training", "beyond_relu"), strict=True):
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,") and attrs["alt"]
        assert base64.b64decode(src.split(",", 1)[1]) == Path(paths[key]).read_bytes()
    for tag, attrs in parser.tags:  # nothing else refers outside the file
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
    [(state, problems)] = browser.open_pages(executable, tmp_path, [Path(saved["paths"]["index"])])
    assert problems == [], "console errors or warnings:\n" + "\n".join(problems)
    assert state["scripts"] == 0, "the page has a <script> element"
    assert len(state["images"]) == 3, state["images"]
    for image in state["images"]:
        assert image["complete"] and image["width"] > 500 and image["height"] > 200, image
        assert image["src"] == "data:image/png;base64,", image
    assert HOSTILE in state["text"], "the markup in a finding is not shown as text"
    assert "Why not zeros" in state["text"] and "Beyond ReLU" in state["text"]
