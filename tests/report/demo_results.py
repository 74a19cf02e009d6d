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
SEEDS = [0, 1, 2]


def _geometric(first: float, factor: float, n: int) -> list[float]:
    """first, first * factor, ...: a per-layer profile, overflowing to inf like float32."""
    values = [first * factor ** i for i in range(n)]
    return [v if v < 3.4e38 else math.inf for v in values]


def _geo_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


# variance factor per layer of each init, per activation (std factor = its square root); the
# seeds differ by a few percent; He on GELU straddles the rule's edge (one seed flat).
FACTORS = {
    "relu": {"N(0, 0.01)": 0.0032, "N(0, 1)": 32.0, "Glorot": 0.5, "He": 1.0,
             "torch default": 0.17, "auto": 1.0, "LSUV": 1.0},
    "tanh": {"N(0, 0.01)": 0.0064, "N(0, 1)": 1.0, "Glorot": 0.93, "He": 1.0,
             "torch default": 0.33, "auto": 1.0, "LSUV": 1.0},
    "gelu": {"N(0, 0.01)": 0.0027, "N(0, 1)": 27.0, "Glorot": 0.42, "He": 0.95,
             "torch default": 0.14, "auto": 1.0, "LSUV": 1.0},
}
SPREAD = (0.99, 1.0, 1.01)


def _profiles(f: float, depth: int) -> dict[str, Any]:
    factors = [f * s for s in SPREAD]
    std = [_geometric(0.8, math.sqrt(x), depth) for x in factors]
    grad = [_geometric(1e-3, math.sqrt(x), depth)[::-1] for x in factors]
    mean = _geo_mean(factors)
    return {"std": std, "grad": grad,
            "std_mean": _geometric(0.8, math.sqrt(mean), depth),
            "grad_mean": _geometric(1e-3, math.sqrt(mean), depth)[::-1],
            "forward": factors, "backward": factors, "forward_mean": mean,
            "backward_mean": mean}


def _depth_block(depth: int) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for act, by_init in FACTORS.items():
        block[act] = {name: _profiles(by_init[name], depth) for name in DEPTH_INITS}
    block["relu"]["N(0, 1)"]["std_mean"][-1] = math.nan  # an exploding profile: NaN in memory
    block["relu"]["N(0, 1)"]["forward_mean"] = math.nan
    block["tanh"]["N(0, 1)"]["grad_mean"][3] = None  # as read back from results.json
    block["relu"]["N(0, 0.01)"]["grad_mean"][0] = 0.0  # underflow: exactly zero
    block["relu"]["N(0, 0.01)"]["grad_mean"][1] = 0.0
    return block


def _training(epochs: int) -> dict[str, Any]:
    accuracy = {"zeros": 0.086, "torch default": 0.086, "N(0, 0.01)": 0.086, "Glorot": 0.547,
                "He": 0.961, "orthogonal": 0.969, "auto": 0.964, "LSUV": 0.972}
    runs = {}
    for k, name in enumerate(TRAIN_INITS):
        a = accuracy[name]
        by_seed = [a] * 3 if a < 0.1 else [a - 0.01, a, a + 0.01 if a < 0.97 else a]
        losses = []
        for value in by_seed:
            if value < 0.1:  # the three at chance: one curve, to the 4th digit
                losses.append([2.3026 - 0.0001 * i for i in range(epochs)])
            else:
                losses.append([2.3 * math.exp(-4.0 * value * i / epochs) + 0.02 * k
                               for i in range(epochs)])
        mean = sum(by_seed) / 3
        sd = math.sqrt(sum((v - mean) ** 2 for v in by_seed) / 2)
        runs[name] = {"test_accuracy": by_seed, "test_loss": [x[-1] * 1.4 for x in losses],
                      "losses": losses, "accuracy": {"mean": mean, "sd": sd,
                                                     "min": min(by_seed),
                                                     "max": max(by_seed)}}
    return {"depth": 20, "width": 64, "seeds": SEEDS, "chance": 0.0864,
            "recipe": {"epochs": epochs, "batch_size": 64, "lr": 0.005, "momentum": 0.9},
            "runs": runs}


def _beyond_relu() -> dict[str, Any]:
    tanh_runs = {}
    for label, f in (("0.5 x critical", 0.31), ("critical", 1.01), ("2 x critical", 1.61)):
        grad = [_geometric(1e-3, math.sqrt(f * s), 30)[::-1] for s in SPREAD]
        tanh_runs[label] = {"grad": grad, "grad_mean": _geometric(1e-3, math.sqrt(f), 30)[::-1],
                            "backward": [f * s for s in SPREAD], "backward_mean": f}
    gains = {}
    for label, first, whole in (("relu's gain 1.414", 0.852, 0.9), ("computed 1.534", 1.001,
                                                                      1.12)):
        std = [_geometric(0.9, math.sqrt(first * s), 30) for s in SPREAD]
        gains[label] = {"std": std, "std_mean": _geometric(0.9, math.sqrt(first), 30),
                        "first": [first * s for s in SPREAD], "first_mean": first,
                        "all": [whole * s for s in SPREAD], "all_mean": whole}
    return {"gelu": {"depth": 30, "first_layers": 10, "span": [1, 29], "gains": gains},
            "tanh": {"depth": 30, "bias_std": 0.05, "sigma_w_star": 1.0123, "q_star": 0.154,
                     "span": [1, 29], "runs": tanh_runs}}


def results() -> dict[str, Any]:
    """A schema-complete results dict with plausible numbers, one null and one NaN in a profile,
    an exploding (inf) profile and a finding text with markup in it."""
    findings = [
        {"id": "zeros", "text": "Zeros: after 20 epochs every unit of layer 10 is still "
         "identical (max distance 0); test accuracy 0.086, chance.", "value": 0.0,
         "label": "max distance"},
        {"id": "constant", "text": "Constant 0.01: units identical too (max distance 0); "
         "test accuracy 0.196.", "value": 0.0, "label": "max distance"},
        {"id": "tiny", "text": "N(0, 0.01) on 30 ReLU layers of width 256: variance x0.0128 "
         "per layer: it shrinks.", "value": 0.0128, "label": "variance ×/layer"},
        {"id": "huge", "text": "N(0, 1): variance x128 per layer: it grows.",
         "value": math.inf, "label": "variance ×/layer"},
        {"id": "glorot", "text": "Glorot halves the variance per ReLU layer (x0.501, He et al. "
         "2015); He x1.002, auto x1.001.", "value": 0.501, "label": "variance ×/layer"},
        {"id": "training", "text": "Digits, 20 ReLU layers, same recipe: LSUV 0.972, "
         "orthogonal 0.969, auto 0.964, He 0.961, torch default 0.086, Glorot 0.547, "
         "N(0, 0.01) 0.086, zeros 0.086.", "value": 0.972, "label": "LSUV accuracy, mean"},
        {"id": "gelu", "text": "GELU net: relu's gain 1.414 loses variance (x0.852 per layer); "
         "the computed 1.534 keeps it (x1.001).", "value": 1.001, "label": "variance ×/layer"},
        {"id": "tanh", "text": "tanh at sigma_w* = 1.0123 (bias std 0.05): gradient per layer "
         "0.5 x critical x0.310, critical x1.01, 2 x critical x1.61.", "value": 1.01,
         "label": "gradient ×/layer"},
        {"id": "hostile", "text": HOSTILE, "value": 1234567.0, "label": "<i>[b]x</i>"},
    ]
    return {
        "seed": 0, "seeds": SEEDS, "quick": False, "seconds": 58.24, "torch": "2.13.0",
        "weightinit": "0.1.0",
        "platform": {"cpu_capability": "AVX512", "machine": "x86_64", "python": "3.11.9"},
        "findings": findings,
        "symmetry": {"depth": 20, "width": 64, "seed": 0, "runs": {
            "zeros": {"max_unit_distance": 0.0, "layer": "10", "test_accuracy": 0.086},
            "constant 0.01": {"max_unit_distance": 0.0, "layer": "10", "test_accuracy": 0.196},
            "auto": {"max_unit_distance": 4.73, "layer": "10", "test_accuracy": 0.964},
        }},
        "depth": {"depth": 30, "width": 256, "batch": 512, "seeds": SEEDS, "span": [1, 29],
                  "activations": _depth_block(30)},
        "training": _training(20),
        "beyond_relu": _beyond_relu(),
    }
