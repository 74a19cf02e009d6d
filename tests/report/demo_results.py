"""A fabricated results dict for the report's tests, following docs/demo-results.md, so that
they do not depend on the experiments (weightinit.studies). Importable from the tests as
`report_demo_results` (tests/report/conftest.py registers it)."""

from __future__ import annotations

import math
from typing import Any

HOSTILE = "Markup is text: <b>& [/] $x_1$ stays as written."
"""A finding's text with HTML, rich markup and mathtext in it: every view shows it as written."""
DEPTH_INITS = ("N(0, 0.01)", "N(0, 1)", "Glorot", "He", "torch default", "auto", "LSUV")
TRAIN_INITS = ("zeros", "torch default", "N(0, 0.01)", "Glorot", "He", "orthogonal", "auto",
               "LSUV")


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

