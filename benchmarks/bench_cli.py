"""The CLI's start-up: ``weightinit --version``, ``weightinit --help`` and ``weightinit gain
gelu`` as fresh processes (``python -m weightinit``, this interpreter and environment), against
a bare interpreter and one that only imports torch. Prints the median seconds of --reps runs.

--version and --help import neither torch nor the library behind `weightinit`'s lazy
``__init__``; ``gain`` computes with torch, so it pays torch's import. The machines are noisy:
quote medians, and never turn these into test assertions.

    PYTHONPATH=src python benchmarks/bench_cli.py [--reps 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

CASES: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import torch'": ["-c", "import torch"],
    "weightinit --version": ["-m", "weightinit", "--version"],
    "weightinit --help": ["-m", "weightinit", "--help"],
    "weightinit gain gelu": ["-m", "weightinit", "gain", "gelu"],
}


def _seconds(args: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} exited with {proc.returncode}: "
                           f"{proc.stderr.strip()[-400:]}")
    return elapsed


def run(reps: int = 5) -> dict[str, float]:
    """The median seconds of each case over `reps` runs, the cases interleaved (so a slow
    moment of the machine is shared among them)."""
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(reps):
        for name, args in CASES.items():
            times[name].append(_seconds(args))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=5, help="runs per case (median; default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the medians as JSON")
    args = parser.parse_args(argv)
    results = run(max(1, args.reps))
    for name, seconds in results.items():
        print(f"{name:<28} {seconds:6.3f} s (median of {args.reps})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
