"""The demo as one self-contained HTML page: the text is templates/demo.html (a
`string.Template`) with templates/demo.css, filled here with the values and tables of one
results dict, every one of them escaped."""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from importlib import resources
from typing import Any

from .._errors import InitError
from .._render import data_uri, escape, html_table, number, page, real
from ._figures import FIGURES
from ._values import CHANCE, accuracy, activations, at, first, last, run_line

_TITLE = "weightinit demo: what initialization does"


def _template(name: str) -> str:
    """The text of templates/`name`, without its final newline."""
    folder = resources.files(__package__).joinpath("templates")
    return folder.joinpath(name).read_text(encoding="utf-8").removesuffix("\n")


def _fill(template: str, text: Mapping[str, object], markup: Mapping[str, str]) -> str:
    """`template` with every $name filled: from `text`, escaped here, or from `markup`, HTML
    that is already safe. A $name in neither is a KeyError."""
    assert not text.keys() & markup.keys(), "a $name given both as text and as markup"
    return string.Template(template).substitute(
        {key: escape(value) for key, value in text.items()} | dict(markup))


def _symmetry(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    study = at(results, "symmetry")
    rows = [[(name, "t"), (str(run.get("layer", "-")), "t"),
             (number(run.get("max_unit_distance"), 3), "n"),
             (accuracy(run.get("test_accuracy")), "n")]
            for name, run in at(results, "symmetry", "runs").items()]
    table = html_table(("initialization", "layer measured", "max distance between units",
                        "test accuracy"), rows)
    return ({"symmetry_width": study.get("width", "?"),
             "symmetry_depth": study.get("depth", "?")}, {"symmetry_table": table})


def _variance_cell(profile: Mapping[str, Any]) -> tuple[str, str]:
    """The variance factor per layer, tagged vanishing / exploding where it is unhealthy."""
    factor = real(profile.get("variance_per_layer"))
    text = number(factor, 4)
    healthy = profile.get("healthy")
    if healthy is True:
        return f"{text} ✓", "n ok"
    if healthy is False:
        if factor is not None and math.isfinite(factor):
            text += " (vanishes)" if factor < 1 else " (explodes)"
        return text, "n bad"
    return text, "n"


def _depth(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    study = at(results, "depth")
    block = at(results, "depth", "activations")
    acts = activations(block)
    inits = list(dict.fromkeys(name for act in acts for name in block[act]))
    rows = [[(name, "t")] + [_variance_cell(block[act][name]) if name in block[act] else ("-", "n")
                             for act in acts] for name in inits]
    table = html_table(["initialization"] + [f"{act}: variance × per layer" for act in acts],
                       rows)
    healthy = [name for name in inits
               if all(block[act].get(name, {}).get("healthy") is True for act in acts)]
    sentence = (f"In this run the profiles of {', '.join(healthy)} are healthy for every "
                "activation." if healthy else "In this run no initialization is healthy for "
                "every activation.")
    return ({"depth_depth": study.get("depth", "?"), "depth_width": study.get("width", "?"),
             "depth_healthy": sentence}, {"depth_table": table})


def _training(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    study = at(results, "training")
    runs = at(results, "training", "runs")
    recipe = study.get("recipe", {})
    rows = [[(name, "t"), (accuracy(run.get("test_accuracy")), "n"),
             (number(run.get("test_loss"), 3), "n"), (number(last(run.get("losses")), 3), "n")]
            for name, run in runs.items()]
    table = html_table(("initialization", "test accuracy", "test loss",
                        "last epoch's training loss"), rows)
    accuracies = {name: real(run.get("test_accuracy")) for name, run in runs.items()}
    good = [n for n, a in accuracies.items() if a is not None and a >= 0.9]
    stuck = [n for n, a in accuracies.items() if a is not None and a < CHANCE + 0.1]
    outcome = [f"{len(good)} of {len(runs)} initializations reached 90% test accuracy or more"
               + (f" ({', '.join(good)})" if good else "")]
    if stuck:
        outcome.append(f"{', '.join(stuck)} stayed within 10 points of chance")
    return ({"training_depth": study.get("depth", "?"), "training_width": study.get("width", "?"),
             "lr": number(recipe.get("lr"), 3), "momentum": number(recipe.get("momentum"), 3),
             "batch_size": recipe.get("batch_size", "?"), "epochs": recipe.get("epochs", "?"),
             "training_outcome": "; ".join(outcome)}, {"training_table": table})


def _beyond_relu(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    gelu = at(results, "beyond_relu", "gelu")
    tanh = at(results, "beyond_relu", "tanh")
    gelu_rows = [[(name, "t"), (number(run.get("variance_per_layer"), 3), "n"),
                  (number(last(run.get("std")), 3), "n")]
                 for name, run in at(results, "beyond_relu", "gelu", "gains").items()]
    tanh_rows = [[(name, "t"), (number(run.get("grad_per_layer"), 3), "n"),
                  (number(last(run.get("grad")), 3), "n"),
                  (number(first(run.get("grad")), 3), "n")]
                 for name, run in at(results, "beyond_relu", "tanh", "runs").items()]
    tables = {
        "gelu_table": html_table(("GELU net, gain", "variance × per layer",
                                  f"activation std at layer {gelu.get('depth', '?')}"),
                                 gelu_rows),
        "tanh_table": html_table(("tanh net, weight std", "gradient × per layer (backward)",
                                  f"gradient RMS at layer {tanh.get('depth', '?')}",
                                  "gradient RMS at layer 1"), tanh_rows)}
    return ({"gelu_depth": gelu.get("depth", "?"), "tanh_depth": tanh.get("depth", "?"),
             "sigma_w_star": number(tanh.get("sigma_w_star"), 4),
             "bias_std": number(tanh.get("bias_std"), 3)}, tables)


def demo_html(results: Mapping[str, Any], pngs: Mapping[str, bytes]) -> str:
    """The demo as one self-contained HTML page (a string): the findings, then four questions
    (why not zeros, too small or too large, does it matter for learning, beyond ReLU), each
    with its figure, its numbers and a short explanation.

    `pngs` holds the PNG bytes of the figures by name ("depth", "training", "beyond_relu"), as
    drawn by `demo_figures`; they are embedded as base64 ``data:`` URIs and the CSS is inline,
    so the page loads nothing and runs no script (its Content-Security-Policy forbids both).
    Every string and number from `results` is HTML-escaped.

    Raises:
        InitError: a figure is missing from `pngs`, or `results` lacks a part of the schema.
    """
    missing = [key for key in FIGURES if key not in pngs]
    if missing:
        raise InitError(f"`pngs` lacks the figure(s) {', '.join(map(repr, missing))}: pass the "
                        f"PNG bytes of every figure of demo_figures() ({', '.join(FIGURES)}).")
    text: dict[str, object] = {"title": _TITLE, "run_line": run_line(results)}
    text |= {f"{key}_uri": data_uri(pngs[key]) for key in FIGURES}
    findings = "\n".join(f"<li>{escape(f.get('text', ''))}</li>" for f in at(results, "findings"))
    markup = {"findings": findings or "<li>No findings.</li>"}
    for section in (_symmetry, _depth, _training, _beyond_relu):
        values, tables = section(results)
        text |= values
        markup |= tables
    return page(_TITLE, _template("demo.css"), _fill(_template("demo.html"), text, markup))
