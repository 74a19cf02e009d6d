"""`make bench`: weightinit's keyed fills against torch's own initializers, measured in one run.

Prints medians of --reps runs and ratios against the baseline measured in the same run. The
machines are noisy: quote ratios, and never turn these into test assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch

import weightinit as wi
from weightinit.random import fill_keyed_


def _median_seconds(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_keyed_fills(numel: int, reps: int) -> list[dict[str, object]]:
    x = torch.empty(numel, dtype=torch.float32)
    rows: list[dict[str, object]] = []

    def record(name: str, fn: Callable[[], object], baseline: str | None) -> None:
        seconds = _median_seconds(fn, reps)
        row: dict[str, object] = {"name": name, "seconds": seconds, "melem_per_s": numel / seconds
                                  / 1e6}
        if baseline is not None:
            base = next(r for r in rows if r["name"] == baseline)
            row["ratio"] = float(base["seconds"]) / seconds  # type: ignore[arg-type]
            row["baseline"] = baseline
        rows.append(row)
        print(f"  {name:<42} {row['melem_per_s']:>9.1f} Melem/s"
              + (f"   {row['ratio']:.2f}x {baseline}" if baseline else ""), flush=True)

    # Warm up: the first compiled call compiles (tens of seconds), not part of the timing.
    start = time.perf_counter()
    for kind, params in (("normal", (0.0, 1.0)), ("truncated_normal", (0.0, 1.0, -2.0, 2.0))):
        fill_keyed_(torch.empty(1 << 20), kind, params, seed=0, key="warm", backend="compiled")
    print(f"  (compile of the keyed kernels: {time.perf_counter() - start:.1f} s, once per "
          "process; cached on disk by torch)", flush=True)

    record("torch normal_", lambda: x.normal_(), None)
    record("wi keyed normal (compiled)",
           lambda: fill_keyed_(x, "normal", (0.0, 1.0), seed=0, key="w", backend="compiled"),
           "torch normal_")
    record("torch nn.init.trunc_normal_", lambda: torch.nn.init.trunc_normal_(x), None)
    truncated = wi.TruncatedNormal(1.0)
    record("wi keyed truncated normal (compiled)",
           lambda: fill_keyed_(x, "truncated_normal", (0.0, truncated.sigma, -2.0, 2.0), seed=0,
                               key="w", backend="compiled"),
           "torch nn.init.trunc_normal_")
    small = torch.empty(1 << 22)
    record_small = _median_seconds(
        lambda: fill_keyed_(small, "normal", (0.0, 1.0), seed=0, key="w", backend="eager"), reps)
    eager = small.numel() / record_small / 1e6
    print(f"  {'wi keyed normal (eager, 4M elements)':<42} {eager:>9.1f} Melem/s", flush=True)
    rows.append({"name": "wi keyed normal (eager)", "seconds": record_small,
                 "melem_per_s": eager})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--numel", type=int, default=1 << 28, help="elements (default 2**28)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per timing (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"weightinit benchmarks: torch {torch.__version__}, {args.threads} threads, "
          f"{args.numel:,} float32 elements, median of {args.reps}", flush=True)
    print("keyed fills vs torch's initializers:", flush=True)
    results = {"threads": args.threads, "numel": args.numel,
               "keyed_fills": bench_keyed_fills(args.numel, args.reps)}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
