"""From per-layer statistics to findings: each a small rule with its thresholds stated.

Rules report root causes once: a vanishing forward signal is one finding for the model (with
the growth per layer), not one per layer, and a layer whose units are dead is named once.
Severities follow the ladder in `_calibration` (info: differs, but trains; warning: measurably
slower or worse training; error: cannot train as it stands), each threshold with the training
runs behind it, and every message ends with what happens if the finding is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

from ._calibration import DEAD, EXPLODE, IF_IGNORED, SATURATED, VANISH, grade
from ._structure import RESIDUAL_GROWTH, Links, Structure, chains, structure_findings
from ._types import INIT, Finding, FindingKind, LayerStats, Severity

# Deep ReLU nets correlate their inputs with depth, so even a He-initialized 50-layer net has
# up to ~45% of its units off for a whole batch of 512; a killing bias turns off ~90%.
SCALE_LOW, SCALE_HIGH = 0.5, 2.0  # weight std / recommended std
BIAS_KILL = 2.0  # a bias below -2 output stds before a ReLU-like activation
HUGE = 1e6  # |parameter| larger than this at init: not a value anyone chose


def _ok(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _paths(layers: Sequence[LayerStats], links: Links | None,
           direction: Literal["forward", "backward"]) -> list[list[LayerStats]]:
    """The chains of `layers` a trend is read along (each in execution order). Without links
    (no recorded pass), the layers in order form one chain, cut backward where the resolution
    changes: a global average pool divides each position's gradient by the number of
    positions, and max pooling routes it to one position in k, without weakening the signal a
    layer passes on."""
    if links is not None:
        by_name = {x.name: x for x in layers}
        before = links.forward if direction == "forward" else links.backward
        return [[by_name[n] for n in path] for path in chains(list(by_name), before)]
    if direction == "forward":
        return [list(layers)]
    cut: list[list[LayerStats]] = []
    for x in layers:
        if cut and cut[-1][-1].positions == x.positions:
            cut[-1].append(x)
        else:
            cut.append([x])
    return cut


def _value(x: LayerStats, direction: Literal["forward", "backward"], signal: bool
           ) -> float | None:
    if direction == "backward":
        return x.grad_out_rms
    return x.out_signal if signal else x.out_rms


def _segments(path: list[LayerStats], direction: Literal["forward", "backward"]
              ) -> list[tuple[list[tuple[LayerStats, float]], bool]]:
    """A chain split where a layer has no value (no gradient reached it); forward, the signal
    (std across the batch) where every layer of the chain has one, else the RMS."""
    signal = direction == "forward" and all(_ok(x.out_signal) for x in path)
    found: list[list[tuple[LayerStats, float]]] = [[]]
    for x in path:
        value = _value(x, direction, signal)
        if value is None or not math.isfinite(value):
            found.append([])
        else:
            found[-1].append((x, float(value)))
    return [(s, signal) for s in found if len(s) >= 3]


def _propagation(layers: Sequence[LayerStats], links: Links | None,
                 direction: Literal["forward", "backward"]) -> list[Finding]:
    """Vanishing or exploding signal along a chain of weight layers (in the direction the
    signal travels), from its first layer to its last: the most extreme of the chains, graded
    on `VANISH` / `EXPLODE`. Forward, the signal is each output's std across the batch (what
    depends on the input: a bias adds RMS that carries nothing); backward, the gradient RMS.
    The ratio is last / first, so the verdict always agrees with the two numbers shown."""
    worst: tuple[float, list[tuple[LayerStats, float]], bool] | None = None
    checked = 0
    for path in _paths(layers, links, direction):
        for segment, signal in _segments(path, direction):
            pairs = segment[::-1] if direction == "backward" else segment
            first, last = pairs[0][1], pairs[-1][1]
            if first <= 0:
                continue
            checked += 1
            ratio = last / first
            size = math.inf if ratio <= 0 else abs(math.log(ratio))
            if worst is None or size > worst[0]:
                worst = (size, pairs, signal)
    if worst is None:
        return []
    _, pairs, signal = worst
    (first_layer, first), (last_layer, last) = pairs[0], pairs[-1]
    ratio = last / first
    vanishing = ratio < 1.0
    severity = grade(ratio, VANISH, below=True) if vanishing else grade(ratio, EXPLODE,
                                                                         below=False)
    if severity is None:
        return []
    steps = len(pairs) - 1
    per_layer = ratio ** (1.0 / steps) if ratio > 0 else 0.0
    what = ("gradients (RMS)" if direction == "backward" else
            "signal (each output's std across the batch)" if signal else "activations (RMS)")
    numbers = {"first": first, "last": last, "ratio": ratio, "per_layer": per_layer,
               "layers": float(len(pairs)), "chains": float(checked),
               "signal": float(signal)}
    where = (f"from {first_layer.name!r} to {last_layer.name!r} along a chain of {len(pairs)} "
             f"layers (x{ratio:.3g} in all, x{per_layer:.3g} per layer, x{per_layer ** 2:.3g} "
             f"in variance; the most extreme of {checked} chains)")
    kind, verb, fix = _PROPAGATION[(direction, vanishing)]
    if what.startswith("signal"):  # one signal; gradients, activations
        verb += "es" if verb.endswith("sh") else "s"
    return [Finding(
        kind, severity, first_layer.name if direction == "forward" else last_layer.name,
        f"The {what} {verb} {direction}: {first:.3g} -> {last:.3g} {where}. "
        + IF_IGNORED[("vanishing" if vanishing else "exploding", severity)], fix, INIT,
        numbers)]


_VANISH_FIX = ("Initialize every layer for the activation that feeds it (variance-preserving, "
               "gain computed for the activation), or calibrate on data with LSUV.")
_EXPLODE_FIX = ("The weights are too large for the depth: use variance-preserving "
                "initialization (std = gain / sqrt(fan_in)), or calibrate on data with LSUV.")
_PROPAGATION: dict[tuple[Literal["forward", "backward"], bool], tuple[FindingKind, str, str]] = {
    ("forward", True): ("forward_vanishing", "vanish", _VANISH_FIX),
    ("forward", False): ("forward_exploding", "explode", _EXPLODE_FIX),
    ("backward", True): ("backward_vanishing", "vanish", _VANISH_FIX),
    ("backward", False): ("backward_exploding", "explode", _EXPLODE_FIX),
}
"""(direction, vanishing) -> (kind, verb, fix) of a propagation finding."""


def _source_layer(x: LayerStats) -> str:
    """The module named in a feed's source ("Linear fc.3" -> "fc.3"), else the layer itself."""
    parts = x.source.split(" ", 1)
    return parts[1] if len(parts) == 2 and parts[0][:1].isupper() else x.name


MIN_SAMPLES_FOR_DEAD = 16  # below this, a ReLU unit is off for the whole batch by chance


def find(layers: Sequence[LayerStats], weight_layers: set[str], *,
         residual_ends: set[str] | None = None, samples: int = 0, links: Links | None = None,
         structure: Structure | None = None) -> list[Finding]:
    """All findings for one pass, most severe first. `links` are the chains depth trends are
    read along (None: the weight layers in execution order form one chain); `structure` what
    the pass showed about norms, attention, embeddings and residual branches."""
    ends = residual_ends or set()
    weighted = [x for x in layers if x.name in weight_layers]
    zero_ends = [x for x in weighted if x.name in ends and x.weight_std == 0.0]
    # A residual branch that starts at zero (ReZero, Fixup, residual="zero") is a choice:
    # its last layer is all zeros on purpose, and what feeds it gets no gradient yet.
    checked = [x for x in weighted if not any(x is z for z in zero_ends)]
    findings: list[Finding] = []
    for rule in RULES:
        if rule is _dead_units and 0 < samples < MIN_SAMPLES_FOR_DEAD:
            continue
        if rule is _residual_growth and structure is not None:
            continue  # measured along each stream's residual adds instead
        findings.extend(rule(layers, checked, links))
    findings.extend(structure_findings(structure))
    if zero_ends:
        findings = [f for f in findings if f.kind != "dead_gradient"]
        findings.append(Finding(
            "zero_branches", "info", zero_ends[0].name,
            f"{len(zero_ends)} residual branches start at zero (first: {zero_ends[0].name!r}): "
            "the layers inside them get no gradient until their last layer moves, as in "
            "ReZero and Fixup. If ignored: nothing, when it is intended; the first steps move "
            "each branch's last layer, and the rest then learns.",
            "Nothing to fix if this is intended.", "",
            {"branches": float(len(zero_ends))}))
    # Report causes, not their symptoms: garbage weights explain everything downstream;
    # identical units explain their weights' scale; a layer that kills most of its units
    # explains the signal falling after it.
    kinds = {f.kind: f.severity for f in findings}
    if "uninitialized" in kinds:
        findings = [f for f in findings if f.kind in ("uninitialized", "symmetry")]
    if "symmetry" in kinds:
        findings = [f for f in findings if f.kind != "weight_scale"]
    if kinds.get("dead_units") == "error":
        findings = [f for f in findings
                    if f.kind not in ("forward_vanishing", "backward_vanishing")]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: order[f.severity])


Rule = Callable[[Sequence[LayerStats], Sequence[LayerStats], Links | None], list[Finding]]


def _nonfinite(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
               links: Links | None) -> list[Finding]:
    bad = [x for x in layers if x.out_nonfinite]
    if not bad:
        return []
    x = bad[0]
    return [Finding("nonfinite", "error", x.name,
                    f"{x.out_nonfinite} NaN/Inf values in the output of {x.name!r} (the first "
                    f"of {len(bad)} layers with any). If ignored: the loss and every gradient "
                    "that passes through it are NaN, so the network cannot train as it stands.",
                    "Find what overflows there: uninitialized or huge weights, or inputs "
                    "that are not finite.", INIT, {"count": float(x.out_nonfinite)})]


def _uninitialized(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
                   links: Links | None) -> list[Finding]:
    found = []
    for x in layers:
        if x.param_nonfinite or x.param_max_abs > HUGE or x.param_denormals:
            found.append(Finding(
                "uninitialized", "error", x.name,
                f"{x.name!r} looks uninitialized (values from torch.empty): "
                f"{x.param_nonfinite} NaN/Inf, largest |value| {x.param_max_abs:.3g}, "
                f"{x.param_denormals} denormal values. If ignored: its outputs are NaN, "
                "huge or arbitrary, and training cannot start from them.",
                "Initialize it: torch.empty leaves whatever was in memory.",
                f"wi.init_model(model)  # or wi.He().fill_(model.get_submodule({x.name!r})"
                ".weight)",
                {"nonfinite": float(x.param_nonfinite), "max_abs": x.param_max_abs,
                 "denormals": float(x.param_denormals)}))
    return found


def _symmetry(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
              links: Links | None) -> list[Finding]:
    # Hidden units only: the output layer's units each get their own gradient from the loss,
    # so identical (or zero, as in Fixup) output rows separate at the first step.
    same = [x for x in weighted[:-1] if x.identical_units >= 2]
    if not same:
        return []
    x = same[0]
    return [Finding(
        "symmetry", "error", x.name,
        f"{x.identical_units} units of {x.name!r} have identical weights ({len(same)} layers "
        "like this): they compute the same thing and get the same gradient. If ignored: they "
        "stay identical through training, so the layer learns like a single unit.",
        "Break the symmetry with random weights (a constant or zero init never does).", INIT,
        {"identical_units": float(x.identical_units), "layers": float(len(same))})]


def _dead_gradient(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
                   links: Links | None) -> list[Finding]:
    dead = [x for x in weighted if x.grad_weight_rms is not None and x.grad_weight_rms == 0.0]
    if not dead:
        return []
    return [Finding(
        "dead_gradient", "error", dead[0].name,
        f"{len(dead)} of {len(weighted)} layers get exactly zero weight gradient (first: "
        f"{dead[0].name!r}). If ignored: those layers never change, whatever the training.",
        "Usually zero (or constant) weights downstream block the gradient: initialize with "
        "random weights.", INIT, {"layers": float(len(dead))})]


def _forward(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
             links: Links | None) -> list[Finding]:
    if any(x.identical_units >= 2 for x in weighted):
        return []  # a symmetric net's signal is a symptom, reported as symmetry
    return _propagation(weighted, links, "forward")


def _backward(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
              links: Links | None) -> list[Finding]:
    if any(x.identical_units >= 2 for x in weighted):
        return []
    return _propagation(weighted, links, "backward")


def _dead_units(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
                links: Links | None) -> list[Finding]:
    dead = [x for x in layers if x.dead_fraction is not None and x.dead_fraction >= DEAD[0]]
    if not dead or any(y.identical_units >= 2 for y in weighted):
        return []  # symmetric nets: reported as symmetry
    # The worst layer is the cause; the fractions after it follow from it.
    x = max(dead, key=lambda y: y.dead_fraction or 0.0)
    fraction = x.dead_fraction or 0.0
    severity = grade(fraction, DEAD, below=False) or "info"
    source = _source_layer(x)
    ignored = {
        "info": "If ignored: those units learn nothing from data like this batch, the rest "
                "carry the signal (measured: 50-80% of one layer dead trained as well as none).",
        "warning": "If ignored: the layer works with a few of its units; expect measurably "
                   "worse training (measured: 95% dead, test accuracy 0.91 against 0.955).",
        "error": "If ignored: no signal passes this layer and nothing before it gets a "
                 "gradient, so the network cannot train as it stands.",
    }[severity]
    return [Finding(
        "dead_units", severity, source,
        f"{fraction:.0%} of the units after {source!r} ({x.activation}) are 0 for every "
        f"sample of the batch: dead, they pass no signal and get no gradient. {ignored}",
        "Look for large negative biases or weights far too small before the activation; "
        "zero biases and variance-preserving weights keep about half of each ReLU layer "
        "active per sample.", INIT, {"dead_fraction": fraction})]


def _killing_bias(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
                  links: Links | None) -> list[Finding]:
    found = []
    by_name = {x.name: x for x in layers}
    for x in layers:
        if x.dead_fraction is None or x.dead_fraction < DEAD[0]:
            continue
        source = by_name.get(_source_layer(x))
        if source is None or source.bias_mean is None or not _ok(source.out_std):
            continue
        if source.out_std > 0 and source.bias_mean < -BIAS_KILL * source.out_std:
            # As severe as the deadness it causes, at most a warning: dead_units says more.
            severity: Severity = "warning" if x.dead_fraction >= DEAD[1] else "info"
            found.append(Finding(
                "killing_bias", severity, source.name,
                f"The bias of {source.name!r} averages {source.bias_mean:.3g}, "
                f"{-source.bias_mean / source.out_std:.2g} output stds below 0, before "
                f"{x.activation}: it switches {x.dead_fraction:.0%} of the units off. If "
                "ignored: those units stay off (a ReLU below 0 gets no gradient).",
                "Start biases at zero.",
                f"wi.Zeros().fill_(model.get_submodule({source.name!r}).bias)",
                {"bias_mean": source.bias_mean, "out_std": source.out_std}))
    return found


def _saturation(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
                links: Links | None) -> list[Finding]:
    worst = max((x for x in layers if x.saturated_fraction is not None),
                key=lambda x: x.saturated_fraction or 0.0, default=None)
    if worst is None:
        return []
    fraction = worst.saturated_fraction or 0.0
    severity = grade(fraction, SATURATED, below=False)
    if severity is None:
        return []
    ignored = ("If ignored: the net cannot fit its training data; at 81% saturated a tanh "
               "net still had a training loss of 0.74 after 460 steps where a "
               "variance-preserving one had 0.018 (test accuracy 0.76 against 0.955)."
               if severity == "error" else
               "If ignored: expect measurably worse training; tanh nets measured 22-24% "
               "saturated ended 2-5% less accurate, 40% saturated 7-10% less.")
    return [Finding(
        "saturation", severity, _source_layer(worst),
        f"{fraction:.0%} of the inputs of {worst.name!r} sit within 1% of {worst.activation}'s "
        f"bounds: saturated units pass almost no gradient. {ignored}",
        "Scale the weights before it down (gain computed for the activation), or pick the "
        "mean-field critical point (wi.critical_point) for deep tanh nets.", INIT,
        {"saturated_fraction": fraction})]


def _weight_scale(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
                  links: Links | None) -> list[Finding]:
    off = []
    for x in weighted:
        if (x.weight_std is None or x.recommended_std is None or not x.recommended_std > 0
                or x.param_nonfinite or x.param_max_abs > HUGE):
            continue
        ratio = x.weight_std / x.recommended_std
        if not SCALE_LOW <= ratio <= SCALE_HIGH:
            off.append((x, ratio))
    if not off:
        return []
    # Always "info": a scale is not by itself a problem. Where it compounds, layer after
    # layer, the measured signal says how much (a vanishing or exploding finding, graded on
    # what it does to training); where a norm, an attention or a residual add follows within
    # two layers (transformer branches, conv + BN), it is rescaled there.
    deep = {x.name for path in _paths(weighted, links, "forward") if len(path) >= 3
            for x in path}
    compounding = [pair for pair in off if pair[0].name in deep]
    x, ratio = max(compounding or off,
                   key=lambda pair: abs(math.log(pair[1])) if pair[1] > 0 else math.inf)
    message = (f"{len(off)} of {len(weighted)} layers have weights far from the "
               "variance-preserving std for their fans and activation (worst: "
               f"{x.name!r}, std {x.weight_std:.3g} vs {x.recommended_std:.3g}, x{ratio:.3g})")
    if compounding:
        message += (f"; {len(compounding)} of them sit in chains of three or more layers, "
                    "where the factor compounds with depth. If ignored: what it does to "
                    "training is what the measured signal shows (a vanishing or exploding "
                    "finding, when there is one); a scale alone is not a problem.")
    else:
        message += (": none sits in a chain of three or more weight layers (a norm, an "
                    "attention or a residual add follows within two), so the factor does not "
                    "compound with depth; it sets the size of what those layers add. If "
                    "ignored: little; transformers' own N(0, 0.02) init measures like this and "
                    "trains within a few percent of a variance-preserving one.")
    return [Finding(
        "weight_scale", "info", x.name, message,
        "Initialize each layer for its fans and the activation that feeds it.", INIT,
        {"layers": float(len(off)), "worst_ratio": ratio,
         "compounding": float(len(compounding))})]


def _residual_growth(layers: Sequence[LayerStats], weighted: Sequence[LayerStats],
                     links: Links | None) -> list[Finding]:
    """Without a recorded pass: the stream read at the layers an add feeds."""
    stream = [x for x in layers if x.source == "add" and _ok(x.in_rms) and x.in_rms > 0]
    # The first add is often a merge, not a residual add (token + position embeddings, before
    # a post-norm model's first LayerNorm): measure from the first block's output on.
    stream = stream[1:]
    if len(stream) < 3:
        return []
    first, last = stream[0], stream[-1]
    ratio = last.in_rms / first.in_rms
    if ratio <= RESIDUAL_GROWTH:
        return []
    return [Finding(
        "residual_growth", "warning", last.name,
        f"The residual stream grows with depth: RMS {first.in_rms:.3g} at {first.name!r} -> "
        f"{last.in_rms:.3g} at {last.name!r} (x{ratio:.3g} over {len(stream)} blocks). If "
        "ignored: deeper blocks see ever larger inputs and later branches matter less and less.",
        "Scale each residual branch's last layer by 1/sqrt(number of branches), or start it "
        "at zero.", INIT + "  # or wi.Policy.preset('auto', residual='zero')",
        {"ratio": ratio, "blocks": float(len(stream))})]


def nonfinite_loss(loss: float, bad_grads: Sequence[str]) -> list[Finding]:
    """An error when the loss or a weight's gradient (`bad_grads`: the weights whose gradient
    holds NaN/Inf) is not finite: the first optimizer step would write it into the weights."""
    if math.isfinite(loss) and not bad_grads:
        return []
    what = (f"the loss is {loss}" if not math.isfinite(loss)
            else f"{len(bad_grads)} weight gradients hold NaN/Inf (first: {bad_grads[0]!r})")
    return [Finding(
        "nonfinite", "error", bad_grads[0].rpartition(".")[0] if bad_grads else "",
        f"Not finite: {what}. If ignored: the first optimizer step writes NaN/Inf into the "
        "weights and training cannot recover.",
        "Find the first layer whose output is not finite (the table's out std column), or the "
        "loss term that overflows; initialize so that every output stays finite.", INIT,
        {"nonfinite_grads": float(len(bad_grads))})]


RULES: tuple[Rule, ...] = (_nonfinite, _uninitialized, _symmetry, _dead_gradient, _forward,
                           _backward, _dead_units, _killing_bias, _saturation, _weight_scale,
                           _residual_growth)
