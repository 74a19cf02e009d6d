"""The demo's three figures, drawn without global matplotlib state: readable bands (clipped,
decade ticks as text), one line for curves that would coincide, the measured chance, legends
that say what each number is over; and the error without matplotlib."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
from report_demo_results import DEPTH_INITS, TRAIN_INITS, results

from weightinit._errors import InitError
from weightinit.report import demo_figures, save_demo, summary_table

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is needed for the figures")


def _colors(ax: Any) -> dict[str, str]:
    return {str(line.get_label()): line.get_color() for line in ax.get_lines()
            if not str(line.get_label()).startswith("_")}


def _edge_markers(ax: Any) -> list[tuple[str, float]]:
    """(marker, x) of the markers drawn on a panel's edge (where a profile left it)."""
    return [(str(line.get_marker()), float(line.get_xdata()[0])) for line in ax.get_lines()
            if str(line.get_label()) == "_nolegend_" and line.get_linestyle() == "None"]


def _tick_labels(ax: Any) -> list[str]:
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_yticklabels()]


def test_depth_figure_is_a_readable_band(no_global_matplotlib_state):
    depth = demo_figures(results())["depth"]
    assert len(depth.axes) == 6 and all(ax.get_yscale() == "log" for ax in depth.axes)
    titles = [ax.get_title() for ax in depth.axes]
    assert titles == [f"{act}: {what}" for act in ("relu", "tanh", "gelu")
                      for what in ("activation variance ÷ its value at layer 1",
                                   "gradient² ÷ its value at layer 29")]
    assert depth.get_suptitle().startswith("Signal through a 30-layer MLP (width 256), "
                                           "layers 1–29")
    assert "seeds 0–2" in depth.get_suptitle()
    # 8 decades, not 60: every panel has the same clipped range and decade labels as text
    for ax in depth.axes:
        assert ax.get_ylim() == pytest.approx((1e-4, 1e4))
        assert _tick_labels(ax) == ["10⁻⁴", "10⁻²", "1", "10²", "10⁴"]
        for line in ax.get_lines():
            ys = [y for y in line.get_ydata() if math.isfinite(y)]
            if str(line.get_label()) != "_nolegend_":
                assert all(1e-4 <= y <= 1e4 for y in ys), line.get_label()
    assert len(depth.legends) == 1 and all(ax.get_legend() is None for ax in depth.axes)
    legend = [t.get_text() for t in depth.legends[0].get_texts()]
    assert legend == [*DEPTH_INITS, "flat: within ×4 either way"]
    colors = [_colors(ax) for ax in depth.axes]
    assert all(list(c) == list(DEPTH_INITS) for c in colors)
    assert all(c == colors[0] for c in colors), "an init changes color between panels"
    assert len(set(colors[0].values())) == len(DEPTH_INITS)
    xs = depth.axes[0].get_lines()[0].get_xdata()
    assert list(xs) == list(range(1, 30))  # the hidden layers, layer 1 first
    # Profiles that leave the band end in a marker on the edge they left by: N(0, 1) goes up
    # (x32 per layer: past 10⁴ at layer 4), N(0, 0.01) down; gradients leave going back.
    relu_std, relu_grad = depth.axes[0], depth.axes[1]
    assert ("^", 4.0) in _edge_markers(relu_std) and ("v", 3.0) in _edge_markers(relu_std)
    assert ("^", 26.0) in _edge_markers(relu_grad)


def test_training_figure_merges_lines_and_shows_the_spread(no_global_matplotlib_state):
    from matplotlib.colors import to_hex

    r = results()
    figures = demo_figures(r)
    depth, training = figures["depth"], figures["training"]
    assert len(training.axes) == 2
    loss, accuracy = training.axes
    assert loss.get_yscale() == "log" and accuracy.get_yscale() == "linear"
    title = training.get_suptitle()
    assert "digits" in title and "lr 0.005" in title and "momentum 0.9" in title
    assert "seeds 0–2" in title
    # zeros, torch default and N(0, 0.01) have one curve: one line, their names joined
    labels = [t.get_text() for t in loss.get_legend().get_texts()]
    assert labels[0] == "zeros = torch default = N(0, 0.01)"
    assert labels[1:] == list(TRAIN_INITS[3:])
    assert len(loss.collections) == len(labels)  # a min-max band per line
    assert len(accuracy.patches) == len(TRAIN_INITS)
    assert [t.get_text() for t in accuracy.get_yticklabels()] == list(TRAIN_INITS)
    printed = {t.get_text() for t in accuracy.texts}
    assert {"0.969 ± 0.006", "0.086 ± 0.000", "0.547 ± 0.010", "chance 0.086"} <= printed
    chance = [line for line in accuracy.get_lines() if line.get_linestyle() == "--"]
    assert len(chance) == 1 and list(chance[0].get_xdata()) == [0.0864, 0.0864]
    dots = [line for line in accuracy.get_lines() if line.get_marker() == "o"]
    assert len(dots) == len(TRAIN_INITS) and all(len(d.get_xdata()) == 3 for d in dots)
    depth_colors = _colors(depth.axes[0])
    shared = set(_colors(loss)) & set(depth_colors)
    assert shared and all(to_hex(_colors(loss)[n]) == to_hex(depth_colors[n]) for n in shared)


def test_beyond_relu_legends_say_which_layers(no_global_matplotlib_state):
    beyond = demo_figures(results())["beyond_relu"]
    assert len(beyond.axes) == 2 and all(ax.get_yscale() == "log" for ax in beyond.axes)
    assert "1.012" in beyond.axes[1].get_title()  # sigma_w*
    gelu = [t.get_text() for t in beyond.axes[0].get_legend().get_texts()]
    assert gelu == ["relu's gain 1.414: ×0.852/layer over layers 1–10, ×0.900 over 1–29",
                    "computed 1.534: ×1.00/layer over layers 1–10, ×1.12 over 1–29"]
    tanh = [t.get_text() for t in beyond.axes[1].get_legend().get_texts()]
    assert len(tanh) == 3 and all("/layer on the way back" in t for t in tanh)


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
