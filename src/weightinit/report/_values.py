"""Reading the results dict of docs/demo-results.md (what `weightinit.studies.run_demo`
returns, or the `results.json` it was saved as, where NaN and Inf are null): the parts by
path, with a clear error for a missing one, and the few values every view shows the same way.
Nothing here changes the results."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._errors import InitError
from .._render import fixed, number, real

CHANCE = 0.1
"""Test accuracy by chance with ten balanced classes: what the figures fall back on when the
results do not carry the measured one (``results["training"]["chance"]``: the test accuracy of
always predicting the most frequent training class, 0.086 on the default split)."""

FLAT = 4.0
"""The one rule for every verdict on a signal profile: it is "flat" when its second moment
(variance forward, gradient second moment backward) changes by less than this factor, either
way, over the layers measured: per_layer ** steps in [1/4, 4], i.e. the std within 2x. Below
1/4 it "shrinks", above 4 it "grows". Over 28 layers that is a factor per layer in
[0.952, 1.051]."""

_ACTIVATIONS = ("relu", "tanh", "gelu")


def at(results: Any, *path: str) -> Any:
    """results[path[0]][path[1]]..., or an InitError naming the missing part."""
    node = results
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            where = "results" + "".join(f"[{k!r}]" for k in path[:depth + 1])
            raise InitError(f"{where} is missing: `results` must follow the demo results "
                            "schema (docs/demo-results.md), as weightinit.studies.run_demo() "
                            "returns it.")
        node = node[key]
    return node


def check_seeds(results: Any) -> None:
    """InitError unless the per-seed parts hold one value per seed (lists): results written
    before the demo ran every experiment on several seeds hold single numbers there."""
    checks = [("training", "runs", "test_accuracy"), ("depth", "activations", None)]
    for top, middle, key in checks:
        block = at(results, top, middle)
        for name, entry in block.items() if isinstance(block, Mapping) else ():
            entries = entry.items() if key is None and isinstance(entry, Mapping) else [
                (name, entry)]
            for inner, run in entries:
                field = key or "forward"
                value = run.get(field) if isinstance(run, Mapping) else None
                if value is not None and not isinstance(value, Sequence):
                    where = f"results[{top!r}][{middle!r}][{name!r}]" + (
                        "" if key else f"[{inner!r}]") + f"[{field!r}]"
                    raise InitError(
                        f"{where} is {value!r:.40}, one number, where the demo results "
                        "schema (docs/demo-results.md) has one per seed: these results come "
                        "from an older weightinit demo. Run `weightinit demo` again.")


def first(values: Any) -> Any:
    """The first item of a non-empty list, None otherwise."""
    return values[0] if isinstance(values, Sequence) and values else None


def last(values: Any) -> Any:
    """The last item of a non-empty list, None otherwise."""
    return values[-1] if isinstance(values, Sequence) and values else None


def activations(block: Mapping[str, Any]) -> list[str]:
    """relu, tanh, gelu first (when present), then any others, in their order."""
    return ([a for a in _ACTIVATIONS if a in block]
            + [a for a in block if a not in _ACTIVATIONS])


def accuracy(value: Any) -> str:
    """A test accuracy as "0.964"; "-" when missing or not finite."""
    return fixed(value, 3)


def run_line(results: Mapping[str, Any]) -> str:
    """"seeds 0–4, full run, 31.2 s (weightinit 0.1.0, torch 2.13.0, CPU AVX512)": what ran,
    on what, how long."""
    quick = "quick run (--quick)" if results.get("quick") else "full run"
    seconds = fixed(results.get("seconds"), 1)
    took = seconds if seconds == "-" else f"{seconds} s"
    seeds = results.get("seeds")
    which = (f"seeds {seed_list(seeds)}" if isinstance(seeds, Sequence) and len(seeds) > 1
             else f"seed {results.get('seed', '-')}")
    cpu = results.get("platform", {})
    cpu = cpu.get("cpu_capability") if isinstance(cpu, Mapping) else None
    on = f", CPU {cpu}" if cpu else ""
    return (f"{which}, {quick}, {took} (weightinit {results.get('weightinit', '-')}, "
            f"torch {results.get('torch', '-')}{on})")


def total(per_layer: object, steps: int) -> float | None:
    """The change over `steps` layers of a profile that changes `per_layer` per layer (None
    without a number; 0 and inf stay what they are)."""
    x = real(per_layer)
    if x is None or math.isnan(x):
        return None
    if x == 0 or math.isinf(x):
        return x
    try:
        return float(x ** steps)
    except OverflowError:
        return math.inf


def verdict(per_layer: object, steps: int) -> str:
    """"flat", "shrinks" or "grows" by the rule of `FLAT`, applied to per_layer ** steps; "-"
    without a number."""
    change = total(per_layer, steps)
    if change is None:
        return "-"
    if change < 1.0 / FLAT:
        return "shrinks"
    if change > FLAT:
        return "grows"
    return "flat"


def as_verb(word: str) -> str:
    """A verdict as the verb of a sentence: "stays flat", "shrinks", "grows"."""
    return {"flat": "stays flat", "-": "has no number to judge"}.get(word, word)


def steps_of(span: Any, default: int) -> int:
    """The layer-to-layer steps of a [first, last] span (1-based layers), `default` without
    one."""
    if (isinstance(span, Sequence) and len(span) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            and span[1] > span[0]):
        return int(span[1] - span[0])
    return default


def span_of(study: Mapping[str, Any]) -> tuple[int, int]:
    """The (first, last) layers a study's growth rates are measured over: its "span", or the
    hidden layers 1 to depth - 1 of its "depth" (1 to 29 without either)."""
    span = study.get("span")
    if isinstance(span, Sequence) and steps_of(span, 0):
        return int(span[0]), int(span[1])
    depth = study.get("depth")
    return 1, depth - 1 if isinstance(depth, int) and depth > 2 else 29


def chance_of(results: Mapping[str, Any]) -> float:
    """The measured chance accuracy (always the most frequent training class), else 0.1."""
    training = results.get("training")
    value = real(training.get("chance")) if isinstance(training, Mapping) else None
    return value if value is not None and math.isfinite(value) else CHANCE


def times(value: object, digits: int = 3) -> str:
    """A factor as "×0.476", "×1.00", "×64.4" (`digits` significant digits, trailing zeros
    kept); "×0" and "×inf" for the limits; "-" without a number."""
    x = real(value)
    if x is None:
        return "-"
    if math.isnan(x):
        return "×nan"
    if x == 0 or math.isinf(x):
        return f"×{x:g}"
    return "×" + f"{x:#.{digits}g}".rstrip(".")


def seed_list(seeds: Any) -> str:
    """"0-4" for consecutive seeds, "0, 2, 5" otherwise; "-" without any."""
    if not isinstance(seeds, Sequence) or isinstance(seeds, str) or not seeds:
        return "-"
    values = [s for s in seeds if isinstance(s, int) and not isinstance(s, bool)]
    if len(values) != len(seeds):
        return ", ".join(str(s) for s in seeds)
    if len(values) > 2 and values == list(range(values[0], values[0] + len(values))):
        return f"{values[0]}–{values[-1]}"
    return ", ".join(str(v) for v in values)


def mean_sd(spread: Any, decimals: int = 3) -> str:
    """"0.936 ± 0.012" from {"mean", "sd", ...}; "-" when missing."""
    if not isinstance(spread, Mapping):
        return "-"
    mean = fixed(spread.get("mean"), decimals)
    sd = fixed(spread.get("sd"), decimals)
    return mean if mean == "-" or sd == "-" else f"{mean} ± {sd}"


def value_range(values: Iterable[Any], digits: int = 3) -> str:
    """"0.47–0.52": the smallest and largest of the numbers, `digits` significant digits; one
    number when they agree; "-" without any."""
    finite = [x for x in (real(v) for v in values) if x is not None and not math.isnan(x)]
    if not finite:
        return "-"
    low, high = number(min(finite), digits), number(max(finite), digits)
    return low if low == high else f"{low}–{high}"
