"""The demo's claims, checked on its own numbers (one full run: about 30 s of CPU on one
thread), each for every seed of the run, not only for their mean; the page's verdicts are the
rule (weightinit.report.verdict) applied to those numbers."""

from __future__ import annotations

import pytest
import torch

from weightinit.report import verdict
from weightinit.studies import demo_steps, run_demo

STEPS = 28  # layers 1 to 29 of the 30-layer nets: the span the rates are measured over


@pytest.fixture(scope="module")
def full():
    steps: list[str] = []
    results = run_demo(seed=0, progress=steps.append)
    assert len(steps) == demo_steps(quick=False)
    return results


def test_the_run_says_what_ran(full):
    assert full["seeds"] == [0, 1, 2] and full["quick"] is False
    assert full["depth"]["seeds"] == full["training"]["seeds"] == [0, 1, 2]
    assert full["depth"]["span"] == [1, 29] and full["beyond_relu"]["tanh"]["span"] == [1, 29]
    assert full["platform"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert full["seconds"] > 0 and "findings" in full


def test_q1_zeros_keep_units_identical_and_sit_at_chance(full):
    runs = full["symmetry"]["runs"]
    assert full["symmetry"]["seed"] == 0
    assert runs["zeros"]["max_unit_distance"] == 0.0
    assert runs["zeros"]["test_accuracy"] == pytest.approx(full["training"]["chance"])
    # A constant other than 0 also keeps units identical, up to float32 rounding at most.
    assert runs["constant 0.01"]["max_unit_distance"] < 1e-3
    assert runs["auto"]["max_unit_distance"] > 0.5  # a random init: units differ


def test_q2_too_small_too_large_and_glorot_halving_for_every_seed(full):
    acts = full["depth"]["activations"]
    relu = acts["relu"]
    for act in ("relu", "gelu"):
        assert all(f < 0.05 for f in acts[act]["N(0, 0.01)"]["forward"]), act
        assert all(f > 20 for f in acts[act]["N(0, 1)"]["forward"]), act
    # He et al. 2015: Glorot halves the variance per ReLU layer. 28 layers of width 128 wander
    # by about exp(sqrt(5 * 28 / 128)) ~ 3x in total (Hanin and Nica 2019), i.e. ~4% per
    # layer for one seed: a 10% band.
    assert all(f == pytest.approx(0.5, rel=0.1) for f in relu["Glorot"]["forward"])
    for name in ("He", "auto", "LSUV"):
        for way in ("forward", "backward"):
            assert all(verdict(f, STEPS) == "flat" for f in relu[name][way]), (name, way)
    # torch's default keeps a sixth per ReLU layer: exactly so for the gradient (no bias on
    # the way back), and the forward variance shrinks less (the biases hold a floor). The same
    # finite-width wander (~4% per layer for one seed) gives the 10% band; seeds 0-7 measured
    # 0.157-0.167.
    assert all(f == pytest.approx(1 / 6, rel=0.1) for f in relu["torch default"]["backward"])
    assert all(verdict(f, STEPS) == "shrinks" for f in relu["torch default"]["forward"])
    # tanh: a forward-preserving gain puts tanh in its chaotic phase, gradients grow
    for name in ("auto", "LSUV"):
        assert all(verdict(f, STEPS) == "flat" for f in acts["tanh"][name]["forward"])
        assert all(verdict(f, STEPS) == "grows" for f in acts["tanh"][name]["backward"])
    # tanh N(0, 1) saturates: bounded forward, exploding backward
    assert all(verdict(f, STEPS) == "flat" for f in acts["tanh"]["N(0, 1)"]["forward"])
    assert all(f > 2 for f in acts["tanh"]["N(0, 1)"]["backward"])
    for act in ("relu", "tanh", "gelu"):
        profiles = acts[act]
        assert len(profiles) == 7
        assert all(len(p["std"]) == 3 and all(len(s) == 30 for s in p["std"])
                   for p in profiles.values()), act
        assert all(verdict(f, STEPS) == "flat" for f in profiles["LSUV"]["forward"]), act


def test_q3_initialization_decides_whether_a_deep_net_learns_on_every_seed(full):
    training = full["training"]
    runs, chance = training["runs"], training["chance"]
    assert chance == pytest.approx(0.0864, abs=1e-4)  # class 3, the most frequent in train
    for name in ("zeros", "torch default", "N(0, 0.01)"):
        assert all(a < chance + 0.02 for a in runs[name]["test_accuracy"]), name
    # Claims, not estimates: the thresholds sit between the groups. Measured with this recipe
    # over seeds 0-4 (and under AVX2 and no-SIMD kernels, where single runs move by up to 0.1):
    # the four good inits 0.905-0.958, Glorot 0.21-0.49, the rest 0.0864 in every run.
    good = ("He", "orthogonal", "auto", "LSUV")
    for name in good:
        assert all(a >= 0.85 for a in runs[name]["test_accuracy"]), name
    glorot = runs["Glorot"]["test_accuracy"]
    assert all(chance + 0.1 < a < min(min(runs[n]["test_accuracy"]) for n in good) - 0.2
               for a in glorot), glorot
    for run in runs.values():
        assert len(run["test_accuracy"]) == len(run["losses"]) == 3
        assert all(len(losses) == training["recipe"]["epochs"] == 20
                   for losses in run["losses"])
        spread = run["accuracy"]
        assert spread["min"] <= spread["mean"] <= spread["max"] and spread["sd"] >= 0


def test_q4_computed_gains_and_the_critical_point_on_every_seed(full):
    gains = full["beyond_relu"]["gelu"]["gains"]
    relu_gain, computed = gains.values()
    # Over layers 1-10 of width 128 finite-width noise moves a seed's rate by about 0.05-0.08
    # (seeds 0-7 gave 0.93-1.10 for the computed gain): 0.15 is a 2-3 sigma band.
    assert all(f == pytest.approx(1.0, abs=0.15) for f in computed["first"])
    assert all(f < 0.95 for f in relu_gain["first"])  # 2 x 0.425 = 0.85 in theory
    assert verdict(relu_gain["first_mean"], 9) == "shrinks"
    assert all(f > 1 for f in computed["all"])  # drifts off the unstable q = 1, upwards
    tanh = full["beyond_relu"]["tanh"]["runs"]
    for label, word in (("0.5 x critical", "shrinks"), ("critical", "flat"),
                        ("2 x critical", "grows")):
        assert all(verdict(f, STEPS) == word for f in tanh[label]["backward"]), label
    # At the critical point chi_1 = 1 exactly; at width 128 one seed's rate over 28 layers
    # wanders by ~1-2% (seeds 0-5: 1.006-1.025): 0.05 is over 2 sigma.
    assert all(f == pytest.approx(1.0, abs=0.05) for f in tanh["critical"]["backward"])


def test_findings_are_one_line_each_with_their_number_and_label(full):
    findings = full["findings"]
    assert [f["id"] for f in findings] == [
        "zeros_symmetry", "constant_symmetry", "tiny", "huge", "glorot_halves", "tanh_chaos",
        "training", "gelu_gain", "tanh_critical"]
    assert all(isinstance(f["value"], float) and f["label"] for f in findings)
    assert all("\n" not in f["text"] for f in findings)
    training = next(f["text"] for f in findings if f["id"] == "training")
    assert "seeds 0–2 (mean ± sd)" in training and "at chance (0.086) in every run" in training


def test_a_seed_gives_the_same_results_and_leaves_the_global_rng_alone():
    rng = torch.get_rng_state()
    first, second = run_demo(seed=3, quick=True), run_demo(seed=3, quick=True)
    assert torch.equal(rng, torch.get_rng_state())
    assert first["seeds"] == [3, 4, 5]
    for results in (first, second):
        results.pop("seconds")
    assert first == second
    assert torch.get_num_threads() == 1  # restored to what the test suite set
