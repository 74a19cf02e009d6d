"""Reading the results dict of docs/demo-results.md (what `weightinit.studies.run_demo`
returns, or the `results.json` it was saved as, where NaN and Inf are null): the parts by
path, with a clear error for a missing one, and the few values every view shows the same way.
Nothing here changes the results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import InitError
from .._render import fixed

CHANCE = 0.1
"""Test accuracy by chance: ten balanced classes."""

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
    """"seed 0, full run, 58.2 s (weightinit 0.1.0, torch 2.13.0)": what ran, how long."""
    quick = "quick run (--quick)" if results.get("quick") else "full run"
    seconds = fixed(results.get("seconds"), 1)
    took = seconds if seconds == "-" else f"{seconds} s"
    return (f"seed {results.get('seed', '-')}, {quick}, {took} "
            f"(weightinit {results.get('weightinit', '-')}, torch {results.get('torch', '-')})")
