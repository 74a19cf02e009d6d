"""Presentation of a Diagnosis: rich table, matplotlib figures without global state, and one
self-contained HTML file that a real headless browser opens without errors, figures loaded and
hostile module names shown as text.

The Diagnosis objects are built by hand from the dataclasses, so these tests do not depend on
the measuring code."""

from __future__ import annotations

import base64
import io
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import weightinit_test_browser as browser

from weightinit._errors import InitError
from weightinit._render import number
from weightinit.diagnose import _report
from weightinit.diagnose._types import Diagnosis, Finding, LayerStats

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")
from matplotlib.figure import Figure  # noqa: E402

SCRIPT_NAME = "<script>alert(1)</script>"
ESCAPED_NAME = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _hist(std: float, bins: int = 20) -> tuple[tuple[float, ...], tuple[int, ...]]:
    edges = tuple(-3 * std + 6 * std * i / bins for i in range(bins + 1))
    counts = tuple(round(1000 * math.exp(-(((i + 0.5) / bins * 6 - 3) ** 2) / 2))
                   for i in range(bins))
    return edges, counts


def layer(index: int, name: str, cls: str = "Linear", *, std: float = 1.0,
          grad: float | None = 1e-2, hist: bool = True, **changes: Any) -> LayerStats:
    edges, counts = _hist(std) if hist and math.isfinite(std) and std > 0 else ((), ())
    values: dict[str, Any] = dict(
        name=name, layer=cls, index=index, activation="relu" if index else "linear",
        source="input" if index == 0 else f"{cls} layer{index - 1}", out_mean=0.01,
        out_std=std, out_rms=math.hypot(0.01, std), out_nonfinite=0, in_rms=1.0,
        dead_fraction=0.0 if index else None, saturated_fraction=None, grad_out_rms=grad,
        grad_weight_rms=None if grad is None else grad * 3, weight_std=0.05,
        recommended_std=0.0625, bias_mean=0.0, identical_units=0, param_nonfinite=0,
        param_max_abs=0.2, param_denormals=0, hist_edges=edges, hist_counts=counts)
    values.update(changes)
    return LayerStats(**values)


def diagnosis() -> Diagnosis:
    """Six layers: plausible ones, one dead (std 0), one broken (NaN), one hostile name."""
    nan = math.nan
    layers = (
        layer(0, "stem", "Conv2d", std=0.8, grad=2e-3),
        layer(1, "blocks.0.fc", std=0.31, grad=4e-3, saturated_fraction=0.125),
        layer(2, SCRIPT_NAME, std=0.0, grad=0.0, dead_fraction=0.96),
        layer(3, "blocks.2.fc", std=1.7e-5, grad=None),
        layer(4, "blocks.3.proj", std=nan, grad=nan, out_mean=nan, out_rms=nan,
              out_nonfinite=4096, param_nonfinite=3, weight_std=nan),
        layer(5, "head", std=12.5, grad=0.9, weight_std=None, recommended_std=None),
    )
    findings = (
        Finding(kind="dead_units", severity="warning", layer=SCRIPT_NAME,
                message=f"96% of the units feeding {SCRIPT_NAME} are 0 for every sample.",
                fix="Use He initialization and zero biases.",
                code='wi.init_model(model, policy="auto")  # <fix> & more',
                numbers={"dead_fraction": 0.96}),
        Finding(kind="nonfinite", severity="error", layer="blocks.3.proj",
                message="4096 outputs are NaN or Inf.", fix="Re-initialize the layer.",
                code="wi.init_model(model)", numbers={"nonfinite": 4096.0, "ratio": nan}),
    )
    return Diagnosis(layers=layers, findings=findings, loss=2.302585, loss_kind="synthetic",
                     notes=("BatchNorm in train mode: statistics use the batch.",))


def render(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# --- numbers and the terminal table --------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"), (0.0, "0"),
    (0.000123456, "0.0001235"), (1234567.0, "1.235e+06"), (2.5, "2.5"),
])
def test_numbers_are_compact(value, text):
    assert number(value) == text


def test_table_renders_layers_and_findings():
    from rich.console import Console

    d = diagnosis()
    out = io.StringIO()
    Console(file=out, width=400, color_system=None).print(d.table())
    text = out.getvalue()
    for x in d.layers:
        assert x.name in text, x.name
    for f in d.findings:
        assert f.kind in text and f.message in text and f.fix in text and f.code in text
    assert "error" in text and "warning" in text
    assert "nan (4096 non-finite)" in text
    assert "0.05 / 0.0625" in text and "96" in text  # weight std / recommended, dead %
    assert "not healthy" in text and "worst finding is error" in text


def test_table_does_not_parse_markup_in_names():
    from rich.console import Console

    hostile = "experts[/]"  # as rich markup this would raise MarkupError
    d = Diagnosis(layers=(layer(0, hostile),),
                  findings=(Finding("symmetry", "info", hostile, "[bold]m[/bold]", "f", "c"),),
                  loss=1.0, loss_kind="mse")
    out = io.StringIO()
    Console(file=out, width=300, color_system=None).print(d.table())
    assert hostile in out.getvalue() and "[bold]m[/bold]" in out.getvalue()
    assert "healthy (1 info)" in out.getvalue()


def test_table_does_not_parse_markup_in_notes():
    from rich.console import Console

    d = Diagnosis(layers=(layer(0, "fc"),), findings=(), loss=1.0, loss_kind="mse",
                  notes=("[bold]hooks[/] on experts[/]",))  # as rich markup this would raise
    out = io.StringIO()
    Console(file=out, width=300, color_system=None).print(d.table())
    assert "[bold]hooks[/] on experts[/]" in out.getvalue()


# --- figures ---------------------------------------------------------------------------------


def test_depth_figure(no_global_matplotlib_state):
    d = diagnosis()
    figure = d.figure()
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2
    assert all(ax.get_yscale() == "log" for ax in figure.axes)
    assert [int(t) for t in figure.axes[1].get_xticks()] == [x.index for x in d.layers]
    assert "error" in figure.get_suptitle()
    png = render(figure)  # drawing is where NaN or zero on a log axis would fail
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_histogram_figure(no_global_matplotlib_state):
    d = diagnosis()
    figure = d.histograms()
    assert isinstance(figure, Figure)
    shown = [ax for ax in figure.axes if ax.get_visible()]
    with_hist = [x for x in d.layers if x.hist_counts]
    assert len(with_hist) == 4  # the dead and the NaN layer have none
    assert len(shown) == len(with_hist)
    titles = " ".join(ax.get_title() for ax in shown)
    assert all(x.name in titles for x in with_hist)
    assert render(figure).startswith(b"\x89PNG")


def test_histograms_pick_layers_evenly_through_depth(no_global_matplotlib_state):
    d = Diagnosis(layers=tuple(layer(i, f"layers.{i}", std=1 + i) for i in range(60)),
                  findings=(), loss=0.5, loss_kind="synthetic")
    figure = d.histograms()
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert len(titles) == 12
    assert titles[0] == "#0 layers.0" and titles[-1] == "#59 layers.59"
    depth = d.figure()  # too many layers to label each: integer ticks, fewer of them
    assert depth.get_suptitle() == "weightinit diagnose: healthy"
    render(depth)
    ticks = [t for t in depth.axes[1].get_xticks() if 0 <= t <= 59]
    assert 3 <= len(ticks) <= 21 and all(t == int(t) for t in ticks)


def test_figures_of_an_empty_diagnosis(no_global_matplotlib_state):
    d = Diagnosis(layers=(), findings=(), loss=math.nan, loss_kind="synthetic")
    for figure in (d.figure(), d.histograms()):
        assert isinstance(figure, Figure) and figure.axes
        render(figure)
    assert "data:image/png;base64," in _report.to_html(d)


def test_missing_matplotlib_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    d = diagnosis()
    for call in (d.figure, d.histograms, lambda: d.save_html(str(tmp_path / "d.html"))):
        with pytest.raises(InitError, match=r"pip install matplotlib.*weightinit\[plot\]"):
            call()
    assert list(tmp_path.iterdir()) == []
    d.table()  # needs only rich


# --- HTML ----------------------------------------------------------------------------------


def test_save_html_is_one_self_contained_escaped_file(tmp_path, no_global_matplotlib_state):
    d = diagnosis()
    path = tmp_path / "report.html"
    assert d.save_html(str(path)) == str(path)
    assert list(tmp_path.iterdir()) == [path]
    page = path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2
    assert ESCAPED_NAME in page and SCRIPT_NAME not in page
    assert "&lt;fix&gt; &amp; more" in page  # the finding's code, in a <pre>
    assert "http://" not in page and "https://" not in page
    parsed = browser.Tags.of(page)
    tags = [tag for tag, _ in parsed]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    images = [attrs for tag, attrs in parsed if tag == "img"]
    assert len(images) == 2
    for attrs in images:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    for tag, attrs in parsed:  # nothing else refers outside the file
        for key in ("src", "href", "srcset", "poster", "data"):
            assert attrs.get(key) is None or str(attrs[key]).startswith("data:"), (tag, attrs)
    for text in ("blocks.3.proj", "nonfinite", "dead_units", "Re-initialize the layer.",
                 "BatchNorm in train mode", "worst finding is error", "nan (4096 non-finite)"):
        assert text in page, text


def test_save_html_refuses_a_missing_folder(tmp_path):
    missing = tmp_path / "no" / "such" / "folder" / "report.html"
    with pytest.raises(InitError, match="does not exist"):
        diagnosis().save_html(str(missing))
    with pytest.raises(InitError, match="is a folder"):
        diagnosis().save_html(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# --- a real headless browser (tests/_browser.py) ---------------------------------------------

def test_html_in_a_headless_browser(tmp_path):
    executable = browser.find_browser()
    d = diagnosis()
    report = Path(d.save_html(str(tmp_path / "report.html")))
    state = browser.open_report(executable, tmp_path, report, images=2, min_width=100,
                                min_height=100)
    assert SCRIPT_NAME in state["text"], "the hostile module name is not shown as text"
    assert "blocks.3.proj" in state["text"] and "dead_units" in state["text"]


@pytest.mark.parametrize("width", [80, 100, 120])
def test_table_at_terminal_widths_splits_no_number_and_no_name(width):
    """At 80-120 columns the layer table drops to the columns findings are read from rather
    than break a number ("0.083" / "02") or a layer name mid-word."""
    import torch
    from rich.console import Console

    import weightinit as wi

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(),
                                torch.nn.Linear(64, 64), torch.nn.Tanh(),
                                torch.nn.Linear(64, 10))
    torch.manual_seed(0)  # the constructor's draws: torch's default init is what is measured
    for m in model:
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    d = wi.diagnose(model, torch.randn(128, 64, generator=torch.Generator().manual_seed(1)))
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(d.table())
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    for x in d.layers:
        for value in (x.out_std, x.out_signal, x.grad_out_rms):
            assert number(value) in text, (width, number(value))
    for f in d.findings:  # findings wrap at spaces only: every word is whole
        assert all(word in text for word in f.message.split()), f.kind
