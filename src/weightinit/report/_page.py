"""The demo as one self-contained HTML page: the text is templates/demo.html (a
`string.Template`) with templates/demo.css, filled here with the values and tables of one
results dict, every one of them escaped. Every verdict on the page is `verdict` applied to the
number next to it."""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from .._errors import InitError
from .._render import data_uri, escape, fixed, html_table, number, page, real
from ._figures import FIGURES
from ._values import (
    FLAT,
    accuracy,
    activations,
    as_verb,
    at,
    chance_of,
    check_seeds,
    mean_sd,
    run_line,
    seed_list,
    span_of,
    times,
    total,
    value_range,
    verdict,
)

_TITLE = "weightinit demo: what initialization does"
_MARK = {"flat": "✓", "shrinks": "✗", "grows": "✗", "-": ""}
_STUCK = 0.02  # within 2 points of chance in every run: "at chance"
_LEARNS = 0.85  # at least this in every run: "learns the task"


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


def _total_text(per_layer: object, steps: int) -> str:
    change = total(per_layer, steps)
    return "-" if change is None else "×" + number(change, 2)


def _rate_cell(per_layer: object, by_seed: Any, steps: int) -> tuple[str, str]:
    """Two lines: the rate per layer (mean over seeds) with the range by seed, then the total
    over `steps` layers and its verdict; † when one seed's verdict differs."""
    word = verdict(per_layer, steps)
    seeds = [v for v in by_seed if real(v) is not None] if isinstance(by_seed, Sequence) else []
    split = any(verdict(v, steps) != word for v in seeds)
    spread = f" ({value_range(seeds, 2)})" if len(seeds) > 1 else ""
    verdict_line = ("no verdict: not a number" if word == "-" else
                    f"{_total_text(per_layer, steps)} in all: {word} {_MARK[word]}"
                    f"{' †' if split else ''}")
    text = f"{times(per_layer)}/layer{spread}\n{verdict_line}"
    kind = "n two " + ("ok" if word == "flat" else "bad" if word in ("shrinks", "grows") else "")
    return text, kind.rstrip()


def _symmetry(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    study = at(results, "symmetry")
    rows = [[(name, "t"), (str(run.get("layer", "-")), "t"),
             (number(run.get("max_unit_distance"), 3), "n"),
             (accuracy(run.get("test_accuracy")), "n")]
            for name, run in at(results, "symmetry", "runs").items()]
    table = html_table(("initialization", "layer measured", "max distance between units",
                        "test accuracy"), rows)
    return ({"symmetry_width": study.get("width", "?"),
             "symmetry_depth": study.get("depth", "?"),
             "symmetry_seed": study.get("seed", "?")}, {"symmetry_table": table})


def _depth(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    study = at(results, "depth")
    block = at(results, "depth", "activations")
    acts = activations(block)
    first, last = span_of(study)
    steps = last - first
    inits = list(dict.fromkeys(name for act in acts for name in block[act]))
    tables = {}
    for way, what in (("forward", "activation variance"), ("backward", "gradient² (back)")):
        rows = [[(name, "t")] + [_rate_cell(block[act][name].get(f"{way}_mean"),
                                            block[act][name].get(way), steps)
                                 if name in block[act] else ("-", "n") for act in acts]
                for name in inits]
        tables[f"depth_{way}_table"] = html_table(
            ["initialization"] + [f"{act}: {what}" for act in acts], rows)
    both = [name for name in inits
            if all(verdict(block[act].get(name, {}).get(f"{way}_mean"), steps) == "flat"
                   for act in acts for way in ("forward", "backward"))]
    sentence = (f"By that rule {', '.join(both)} {'is' if len(both) == 1 else 'are'} flat both "
                "ways for every activation here." if both else
                "By that rule no initialization is flat both ways for every activation here.")
    relu = block.get("relu", {})
    td = relu.get("torch default", {})
    glorot = relu.get("Glorot", {})
    return ({"depth_depth": study.get("depth", "?"), "depth_width": study.get("width", "?"),
             "depth_first": first, "depth_last": last, "depth_steps": steps,
             "depth_seeds": seed_list(study.get("seeds")), "flat_factor": f"{FLAT:g}",
             "flat_low": number(1 / FLAT ** (1 / steps), 3),
             "flat_high": number(FLAT ** (1 / steps), 3),
             "glorot_forward": times(glorot.get("forward_mean")),
             "torch_forward": times(td.get("forward_mean")),
             "torch_forward_total": _total_text(td.get("forward_mean"), steps),
             "torch_backward": times(td.get("backward_mean")),
             "depth_flat_both": sentence}, tables)


def _groups(runs: Mapping[str, Any], chance: float) -> str:
    """Which initializations stayed at chance, which learned, which were in between: in
    every run, with the range."""
    stuck, learned, between = [], [], []
    for name, run in runs.items():
        values = [x for x in (real(v) for v in run.get("test_accuracy") or [])
                  if x is not None and math.isfinite(x)]
        if not values:
            continue
        item = f"{name} ({value_range(values)})"
        if max(values) < chance + _STUCK:
            stuck.append(item)
        elif min(values) >= _LEARNS:
            learned.append(item)
        else:
            between.append(item)
    parts = []
    if stuck:
        parts.append(f"{', '.join(stuck)} stayed at chance in every run")
    if between:
        parts.append(f"{', '.join(between)} learned part of the task")
    if learned:
        parts.append(f"{', '.join(learned)} reached {fixed(_LEARNS, 2)} or more in every run")
    return "; ".join(parts) if parts else "no run finished"


def _training(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    study = at(results, "training")
    runs = at(results, "training", "runs")
    recipe = study.get("recipe", {})
    rows = []
    for name, run in runs.items():
        losses = [x for x in run.get("losses") or [] if isinstance(x, Sequence) and x]
        last = [real(x[-1]) for x in losses]
        mean_last = [x for x in last if x is not None and math.isfinite(x)]
        test_loss = [x for x in (real(v) for v in run.get("test_loss") or [])
                     if x is not None and math.isfinite(x)]
        rows.append([(name, "t"), (mean_sd(run.get("accuracy")), "n"),
                     (", ".join(accuracy(v) for v in run.get("test_accuracy") or []), "n"),
                     (number(sum(test_loss) / len(test_loss), 3) if test_loss else "-", "n"),
                     (number(sum(mean_last) / len(mean_last), 3) if mean_last else "-", "n")])
    table = html_table(("initialization", "test accuracy, mean ± sd", "by seed",
                        "test loss, mean", "last epoch's training loss, mean"), rows)
    chance = chance_of(results)
    return ({"training_depth": study.get("depth", "?"), "training_width": study.get("width", "?"),
             "lr": number(recipe.get("lr"), 3), "momentum": number(recipe.get("momentum"), 3),
             "batch_size": recipe.get("batch_size", "?"), "epochs": recipe.get("epochs", "?"),
             "training_seeds": seed_list(study.get("seeds")), "chance": accuracy(chance),
             "training_outcome": _groups(runs, chance)}, {"training_table": table})


def _beyond_relu(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, str]]:
    gelu = at(results, "beyond_relu", "gelu")
    tanh = at(results, "beyond_relu", "tanh")
    g_first, g_last = span_of(gelu)
    early = gelu.get("first_layers", 10)
    early = early if isinstance(early, int) and early > 1 else 10
    gelu_rows = [[(name, "t"), _rate_cell(run.get("first_mean"), run.get("first"), early - 1),
                  _rate_cell(run.get("all_mean"), run.get("all"), g_last - g_first)]
                 for name, run in at(results, "beyond_relu", "gelu", "gains").items()]
    t_first, t_last = span_of(tanh)
    tanh_rows = [[(name, "t"), _rate_cell(run.get("backward_mean"), run.get("backward"),
                                          t_last - t_first)]
                 for name, run in at(results, "beyond_relu", "tanh", "runs").items()]
    tables = {
        "gelu_table": html_table(("GELU net, gain", f"variance, layers 1–{early}",
                                  f"variance, layers {g_first}–{g_last}"), gelu_rows),
        "tanh_table": html_table(("tanh net, weight std",
                                  f"gradient² on the way back, layers {t_last}–{t_first}"),
                                 tanh_rows)}
    gains = list(at(results, "beyond_relu", "gelu", "gains").values())
    computed = gains[-1] if gains else {}
    critical = at(results, "beyond_relu", "tanh", "runs").get("critical", {})
    return ({"gelu_depth": gelu.get("depth", "?"), "gelu_early": early,
             "gelu_first_verdict": as_verb(verdict(computed.get("first_mean"), early - 1)),
             "gelu_all_verdict": as_verb(verdict(computed.get("all_mean"), g_last - g_first)),
             "gelu_span": f"{g_first}–{g_last}",
             "tanh_critical_verdict": as_verb(verdict(critical.get("backward_mean"),
                                                      t_last - t_first)),
             "tanh_depth": tanh.get("depth", "?"),
             "sigma_w_star": number(tanh.get("sigma_w_star"), 4),
             "q_star": number(tanh.get("q_star"), 3),
             "bias_std": number(tanh.get("bias_std"), 3)}, tables)


def _platform(results: Mapping[str, Any]) -> dict[str, object]:
    where = results.get("platform")
    where = where if isinstance(where, Mapping) else {}
    return {"platform_cpu": where.get("cpu_capability", "-"),
            "platform_machine": where.get("machine", "-"),
            "torch_version": results.get("torch", "-"), "seeds": seed_list(results.get("seeds"))}


def demo_html(results: Mapping[str, Any], pngs: Mapping[str, bytes]) -> str:
    """The demo as one self-contained HTML page (a string): a table of contents, the findings,
    then four questions (why not zeros, too small or too large, does it matter for learning,
    beyond ReLU), each with its figure, its numbers and a short explanation, and what
    reproduces where.

    `pngs` holds the PNG bytes of the figures by name ("depth", "training", "beyond_relu"), as
    drawn by `demo_figures`; they are embedded as base64 ``data:`` URIs and the CSS is inline,
    so the page loads nothing and runs no script (its Content-Security-Policy forbids both).
    Every string and number from `results` is HTML-escaped.

    Raises:
        InitError: a figure is missing from `pngs`, or `results` lacks a part of the schema
            or holds one number where it has one per seed (an older demo's results).
    """
    missing = [key for key in FIGURES if key not in pngs]
    if missing:
        raise InitError(f"`pngs` lacks the figure(s) {', '.join(map(repr, missing))}: pass the "
                        f"PNG bytes of every figure of demo_figures() ({', '.join(FIGURES)}).")
    check_seeds(results)
    text: dict[str, object] = {"title": _TITLE, "run_line": run_line(results)}
    text |= {f"{key}_uri": data_uri(pngs[key]) for key in FIGURES}
    text |= _platform(results)
    findings = "\n".join(f"<li>{escape(f.get('text', ''))}</li>" for f in at(results, "findings"))
    markup = {"findings": findings or "<li>No findings.</li>"}
    for section in (_symmetry, _depth, _training, _beyond_relu):
        values, tables = section(results)
        text |= values
        markup |= tables
    return page(_TITLE, _template("demo.css"), _fill(_template("demo.html"), text, markup))
