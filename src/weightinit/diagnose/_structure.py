"""Findings about how a model's parts meet, read from the recorded pass: the chains a depth trend
is read along, and four ways a real model starts wrong that no single layer's statistics show:
a norm whose effective scale is not ~1, attention that is already one-hot, summed embeddings of
very different sizes, and a residual branch orders of magnitude below the one next to it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from ._graphs import Branch, LookupSum, Pass
from ._types import INIT, Finding, LayerStats
from ._watch import Attention, Watch

# A norm at init returns its normalized input: RMS 1. Gemma's x_hat * (1 + w) with w = 1
# gives 2; a norm that ends a residual branch may be scaled down on purpose (excluded).
NORM_LOW, NORM_HIGH = 2.0 / 3.0, 1.5
# Mean over query rows of the largest attention probability. Unit-variance logits over 16
# keys give ~0.25; T5 without its 1/sqrt(d_kv) query init gave 0.66-0.87 (d_kv 16 to 64),
# q x 8 on GPT-2 or Llama 0.79-0.82.
ONE_HOT = 0.6
LOOKUP_RATIO = 4.0  # RMS of one summed embedding over the other
BRANCH_RATIO = 100.0  # RMS of a residual branch over the one next to it on its stream
RESIDUAL_GROWTH = 10.0  # stream RMS, last residual add / first, along one stream
LATE_GROWTH = 2.0  # ... and over the later half of its adds (linear growth gives <= sqrt 2)
SCALE_MOMENT = (1e-2, 1e2)  # a feed's second moment beyond these is a scale, not a step


@dataclasses.dataclass(frozen=True)
class Links:
    """The chains depth trends are read along: for each weight layer, the weight layer whose
    output feeds it through elementwise and layout ops only (`forward`), and, of those, the
    ones whose output goes to it alone at the same resolution (`backward`: then the gradient
    at the earlier layer's output is what the later layer passes back). A norm, an attention,
    a residual add, a merge of two tensors, a product with a learned vector (LayerScale) or
    a constant scale far from 1 between two layers ends a chain: the ratio across it is that
    op's doing, not depth's."""

    forward: dict[str, str]
    backward: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Structure:
    """What the rules below read: measured scales of norms, attention peakedness, summed
    embeddings and residual branches."""

    norm_scales: tuple[tuple[str, float], ...] = ()
    attention: tuple[Attention, ...] = ()
    lookup_sums: tuple[LookupSum, ...] = ()
    branches: tuple[Branch, ...] = ()


def source_layer(source: str) -> str | None:
    """The module named in a feed's source (``"Linear fc.3"`` -> ``"fc.3"``), else None."""
    parts = source.split(" ", 1)
    return parts[1] if len(parts) == 2 and parts[0][:1].isupper() else None


def links(flow: Pass, layers: Sequence[LayerStats], weight_layers: set[str],
          moments: dict[str, float | None]) -> Links:
    """`moments`: E[phi(z)^2] of the function between each layer and its source (discovery's
    feed). One far from an activation's (all lie within [0.29, 1]) is a constant scale, such
    as ``x * 1e-6``: a factor of its own, not a step of a trend."""
    by_name = {x.name: x for x in layers}
    forward: dict[str, str] = {}
    backward: dict[str, str] = {}
    for x in layers:
        source = source_layer(x.source)
        if x.name not in weight_layers or source not in weight_layers or source == x.name:
            continue
        moment = moments.get(x.name)
        if moment is not None and not SCALE_MOMENT[0] <= moment <= SCALE_MOMENT[1]:
            continue
        assert source is not None
        forward[x.name] = source
        start, end = flow.first_output(source), flow.first_input(x.name)
        if (start is not None and end is not None and by_name[source].positions == x.positions
                and flow.sole_path(start, end)):
            backward[x.name] = source
    return Links(forward, backward)


def chains(names: Sequence[str], before: dict[str, str]) -> list[list[str]]:
    """Every path from a layer nothing feeds to a layer that feeds nothing, in `names` order."""
    known = set(names)
    after: dict[str, list[str]] = {}
    for name in names:
        parent = before.get(name)
        if parent in known:
            after.setdefault(parent, []).append(name)
    found = []
    for root in (n for n in names if before.get(n) not in known):
        stack = [[root]]
        while stack:
            path = stack.pop()
            children = after.get(path[-1], [])
            if not children:
                found.append(path)
            stack.extend([*path, child] for child in reversed(children))
    return found


def measure(flow: Pass, watch: Watch, norms: set[str], lookups: set[str],
            norm_scales: dict[str, float]) -> Structure:
    adds = watch.add_rms(flow.nodes)
    return Structure(tuple(norm_scales.items()), tuple(watch.attention),
                     tuple(flow.lookup_sums(lookups, adds, watch.lookup_varies)),
                     tuple(flow.residual_adds(norms, adds)))


def _ok(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _where(name: str) -> str:
    return repr(name) if name else "the model"


def _norm_scale(s: Structure) -> list[Finding]:
    off = [(n, v) for n, v in s.norm_scales if not NORM_LOW <= v <= NORM_HIGH]
    if not off:
        return []
    name, scale = max(off, key=lambda pair: abs(math.log(pair[1])))
    return [Finding(
        "norm_scale", "warning", name,
        f"{len(off)} of {len(s.norm_scales)} normalization layers do not start at the identity "
        f"(worst: {name!r}, output RMS {scale:.3g} for an input rescaled to RMS 1, where a norm "
        f"at init gives 1). If ignored: every layer after it sees inputs x{scale:.3g} the size "
        f"it was initialized for, attention logits x{scale * scale:.3g} where queries and keys "
        "both read it, until training has learned the norm's scale back.",
        "Start every norm at the identity: scale 1 and shift 0 for w * x_hat + b, scale 0 for "
        "a norm that computes x_hat * (1 + w) (Gemma's RMSNorm).",
        INIT + "  # or wi.Zeros().fill_(norm.weight) for an x_hat * (1 + w) norm",
        {"norms": float(len(off)), "worst_scale": scale})]


def _attention(s: Structure) -> list[Finding]:
    peaked = [a for a in s.attention if a.mean_max > ONE_HOT]
    if not peaked:
        return []
    worst = max(peaked, key=lambda a: a.mean_max)
    return [Finding(
        "attention_one_hot", "warning", worst.module,
        f"Attention is near one-hot at init in {len(peaked)} of {len(s.attention)} attention "
        f"calls (worst: in {_where(worst.module)}, mean max probability {worst.mean_max:.2f} "
        f"over {worst.keys:.0f} keys, where uniform attention gives {1 / worst.keys:.2g}): "
        "each query already reads one key. If ignored: the softmax passes almost no gradient "
        "to the scores (queries and keys barely learn) and attention starts as a lookup, not "
        "an average.",
        "Shrink the attention logits: scale the scores by 1/sqrt(head_dim), or, where the model "
        "does not (T5), initialize the query projection with std / sqrt(head_dim).",
        INIT, {"calls": float(len(peaked)), "mean_max_probability": worst.mean_max,
               "keys": worst.keys})]


def _names(names: tuple[str, ...]) -> str:
    return " + ".join(repr(n) for n in names)


def _lookups(s: Structure) -> list[Finding]:
    lopsided = []
    for summed in s.lookup_sums:
        a, b = summed.rms
        if not (_ok(a) and _ok(b)):
            continue
        assert a is not None and b is not None
        big = 0 if a >= b else 1
        ratio = max(a, b) / min(a, b)
        if ratio > LOOKUP_RATIO:
            lopsided.append((ratio, big, summed))
    if not lopsided:
        return []
    ratio, big, summed = max(lopsided, key=lambda t: t[0])
    small = 1 - big
    large_names, small_names = summed.names[big], summed.names[small]
    large_rms, small_rms = summed.rms[big] or 0.0, summed.rms[small] or 0.0
    tokens = summed.per_sample[small] and not summed.per_sample[big]
    what = ("the positions swamp the tokens: every sequence starts as nearly the same input "
            "whatever its tokens" if tokens else
            f"the model starts nearly blind to {_names(small_names)}")
    code = (f"wi.Normal({small_rms:.3g}).fill_(model.get_submodule({large_names[0]!r}).weight)"
            if len(large_names) == 1 and large_names[0] != "F.embedding" else INIT)
    return [Finding(
        "embedding_imbalance", "warning", large_names[0],
        f"Summed embeddings differ in scale at init: {_names(large_names)} (RMS "
        f"{large_rms:.3g}) is {ratio:.3g}x {_names(small_names)} (RMS {small_rms:.3g}) where "
        f"they are added, so the sum is mostly the first. If ignored: {what}, until training "
        "evens them out.",
        "Give embeddings that are summed the same scale (for example both N(0, 1/d) when the "
        "token embedding is tied to the output layer).", code,
        {"ratio": ratio, "large_rms": large_rms, "small_rms": small_rms})]


def _branches(s: Structure) -> list[Finding]:
    gaps: list[tuple[float, Branch, Branch]] = []
    for branch in s.branches:
        other = branch.before
        if other is None or not (_ok(branch.rms) and _ok(other.rms)):
            continue  # a branch that is exactly 0 starts at zero on purpose (ReZero, Fixup)
        if max(branch.rms or 0.0, other.rms or 0.0) > 1e3:
            continue  # an additive mask (-1e4 where masked), not a branch
        assert branch.rms is not None and other.rms is not None
        small, large = (branch, other) if branch.rms < other.rms else (other, branch)
        ratio = (large.rms or 0.0) / (small.rms or 1.0)
        if ratio > BRANCH_RATIO:
            gaps.append((ratio, small, large))
    if not gaps:
        return []
    ratio, small, large = max(gaps, key=lambda t: t[0])
    return [Finding(
        "branch_imbalance", "warning", small.end,
        f"The residual branch ending at {small.end!r} adds RMS {small.rms:.3g} to the stream, "
        f"{ratio:.3g}x less than the branch next to it on the same stream ({large.end!r}, RMS "
        f"{large.rms:.3g}; {len(gaps)} such pairs). If ignored: at init it contributes next "
        "to nothing, and the layers before its end get gradients scaled down with it, so it "
        "learns late.",
        "Initialize the branch like its sibling: variance-preserving weights inside it (MoE "
        "experts with the fans of one expert) and the same residual scaling at its end.", INIT,
        {"ratio": ratio, "small_rms": small.rms or 0.0, "large_rms": large.rms or 0.0,
         "pairs": float(len(gaps))})]


def _growth(s: Structure) -> list[Finding]:
    """The stream's RMS where each residual add joins it, from the second add of a stream to
    the last (each stream on its own: two towers are two streams), when it grows by more than
    10x and still doubles over the later half of the adds: it compounds, as when every branch
    returns its input's variance unscaled. Branches of fixed size added to a stream that is
    renormalized before each (pre-norm) make its variance grow linearly, at most x sqrt(2) in
    RMS over the later half; that is how deep pre-norm models start, and no finding."""
    by_id = {b.add.id: b for b in s.branches}
    before = {str(b.add.id): str(b.before.add.id) for b in s.branches if b.before is not None}
    worst: tuple[float, float, Branch, Branch, int] | None = None
    for path in chains([str(i) for i in by_id], before):
        # From the second add on: the first adds a branch to the embeddings alone, which
        # may be much smaller than any branch (N(0, 0.02) tokens) without any growth in depth.
        stream = [by_id[int(i)] for i in path if _ok(by_id[int(i)].stream_rms)][1:]
        if len(stream) < 3:
            continue
        first, middle, last = (x.stream_rms or 1.0 for x in
                               (stream[0], stream[len(stream) // 2], stream[-1]))
        ratio, late = last / first, last / middle
        if late > LATE_GROWTH and (worst is None or ratio > worst[0]):
            worst = (ratio, late, stream[0], stream[-1], len(stream))
    if worst is None or worst[0] <= RESIDUAL_GROWTH:
        return []
    ratio, late, start, end, blocks = worst
    return [Finding(
        "residual_growth", "warning", end.end,
        f"The residual stream grows with depth: RMS {start.stream_rms:.3g} where the branch "
        f"ending at {start.end!r} joins it -> {end.stream_rms:.3g} where {end.end!r} does "
        f"(x{ratio:.3g} over {blocks} residual adds, x{late:.3g} over the later half alone: "
        "it compounds). If ignored: deeper layers see ever larger inputs and later branches "
        "matter less and less.",
        "Scale each residual branch's last layer by 1/sqrt(number of branches), or start it "
        "at zero.", INIT + "  # or wi.Policy.preset('auto', residual='zero')",
        {"ratio": ratio, "late_ratio": late, "blocks": float(blocks)})]


def structure_findings(s: Structure | None) -> list[Finding]:
    if s is None:
        return []
    return [*_norm_scale(s), *_attention(s), *_lookups(s), *_branches(s), *_growth(s)]
