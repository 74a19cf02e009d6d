"""The demo's three figures, drawn without global matplotlib state, and the error without
matplotlib."""

from __future__ import annotations

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
