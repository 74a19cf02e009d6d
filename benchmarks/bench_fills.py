"""`--only fills`: keyed fills through the public `Spec.fill_` (what users call) against torch's
own initializers on the same float32 tensor (--numel elements), in the same run, with 1 thread
and with --threads.

Per thread count (the repetitions of every row and thread count interleaved, so that a noisy
neighbour slows them alike): torch's ``x.fill_(1.0)`` (the memory bandwidth: a keyed fill's
ceiling), then three pairs, each a torch initializer and the keyed fill of the same
distribution with its ratio against it and its fraction of ``fill_``'s throughput:

- ``x.normal_()`` and ``wi.Normal(1.0).fill_(x, key="w", seed=0)``;
- ``x.uniform_()`` and ``wi.Uniform(0.0, 1.0).fill_(...)``;
- ``nn.init.trunc_normal_(x)`` (N(0, 1) cut at +-2) and ``wi.TruncatedNormal(1.0).fill_(...)``
  (std 1 after the cut at +-2 sigma).

Then each keyed fill's speed-up from 1 thread to --threads, and the torch-ops implementation of
the stream (``backend="eager"``, what GPUs run) on 2**22 elements, for scale. Last, the cold
start in fresh processes (benchmarks/_first_fill.py): a first keyed fill with numba's cache on
disk (what every run after the first pays) and with an empty cache (the first run ever, which
compiles the kernel).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from _common import median_seconds, run_script

import weightinit as wi

EAGER_NUMEL = 1 << 22


def _pairs() -> list[tuple[str, Callable[[torch.Tensor], object], str, wi.Spec]]:
    return [
        ("torch normal_", lambda x: x.normal_(), "wi Normal(1).fill_", wi.Normal(1.0)),
        ("torch uniform_", lambda x: x.uniform_(), "wi Uniform(0, 1).fill_",
         wi.Uniform(0.0, 1.0)),
        ("torch nn.init.trunc_normal_", lambda x: torch.nn.init.trunc_normal_(x),
         "wi TruncatedNormal(1).fill_", wi.TruncatedNormal(1.0)),
    ]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _measure(counts: list[int], x: torch.Tensor, reps: int) -> dict[tuple[str, int], float]:
    """Median seconds of every row at every thread count. The repetitions of all rows and
    thread counts are interleaved, so that a noisy neighbour slows them alike and the ratios
    (keyed / torch, N threads / 1) stay meaningful."""
    rows: list[tuple[str, Callable[[], object]]] = [("torch fill_(1.0)", lambda: x.fill_(1.0))]
    for base_name, base_fn, name, spec in _pairs():
        rows.append((base_name, lambda fn=base_fn: fn(x)))  # type: ignore[misc]
        rows.append((name, lambda s=spec: s.fill_(x, key="w", seed=0)))  # type: ignore[misc]
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(reps):
        for count in counts:
            torch.set_num_threads(count)
            for name, fn in rows:
                times.setdefault((name, count), []).append(_timed(fn))
    return {key: statistics.median(values) for key, values in times.items()}


def _report(seconds: dict[tuple[str, int], float], counts: list[int],
            numel: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for count in counts:
        bandwidth = seconds[("torch fill_(1.0)", count)]
        print(f"  {count} thread{'s' if count > 1 else ' '}  {'torch fill_(1.0)':<30} "
              f"{numel / bandwidth / 1e6:>8.0f} Melem/s  (memory bandwidth)", flush=True)
        rows.append({"name": "torch fill_(1.0)", "threads": count, "numel": numel,
                     "seconds": bandwidth, "melem_per_s": numel / bandwidth / 1e6})
        for base_name, _, name, _ in _pairs():
            base, keyed = seconds[(base_name, count)], seconds[(name, count)]
            rows.append({"name": base_name, "threads": count, "numel": numel, "seconds": base,
                         "melem_per_s": numel / base / 1e6})
            rows.append({"name": name, "threads": count, "numel": numel, "seconds": keyed,
                         "melem_per_s": numel / keyed / 1e6, "ratio": base / keyed,
                         "baseline": base_name, "of_fill": bandwidth / keyed})
            print(f"           {base_name:<30} {numel / base / 1e6:>8.1f} Melem/s\n"
                  f"           {name:<30} {numel / keyed / 1e6:>8.1f} Melem/s  "
                  f"{base / keyed:>6.2f}x {base_name}, {bandwidth / keyed:.3f} of fill_",
                  flush=True)
    return rows


def _cold_start() -> dict[str, dict[str, float]]:
    warm = run_script("_first_fill.py")  # numba's own cache, filled by the fills above
    with tempfile.TemporaryDirectory() as empty:
        previous = os.environ.get("NUMBA_CACHE_DIR")
        os.environ["NUMBA_CACHE_DIR"] = empty
        try:
            cold = run_script("_first_fill.py")
        finally:
            if previous is None:
                del os.environ["NUMBA_CACHE_DIR"]
            else:
                os.environ["NUMBA_CACHE_DIR"] = previous
    for label, result in (("numba cache warm", warm), ("numba cache empty (first run ever)",
                                                        cold)):
        print(f"  fresh process, {label}: import weightinit {result['import']:.2f} s, first "
              f"keyed fill {result['first_fill']:.2f} s, second {result['second_fill']:.4f} s",
              flush=True)
    return {"warm": warm, "cold": cold}


def run(numel: int, reps: int) -> dict[str, object]:
    x = torch.empty(numel, dtype=torch.float32)
    threads = torch.get_num_threads()
    wi.Normal(1.0).fill_(x[:4096], key="warm", seed=0)  # load (or compile) the kernel
    counts = sorted({1, threads})
    try:
        seconds = _measure(counts, x, reps)
    finally:
        torch.set_num_threads(threads)
    rows = _report(seconds, counts, numel)
    scaling: dict[str, float] = {}
    if len(counts) == 2:
        for _, _, name, _ in _pairs():
            scaling[name] = seconds[(name, 1)] / seconds[(name, threads)]
            print(f"  {name:<30} {threads} threads / 1 thread: {scaling[name]:.2f}x",
                  flush=True)
    small = torch.empty(EAGER_NUMEL)
    eager = median_seconds(lambda: wi.Normal(1.0).fill_(small, key="w", seed=0,
                                                        backend="eager"), reps)
    print(f"  wi Normal(1).fill_ (torch ops, backend='eager', {EAGER_NUMEL:,} el.): "
          f"{EAGER_NUMEL / eager / 1e6:.1f} Melem/s", flush=True)
    return {"rows": rows, "scaling": scaling, "eager_melem_per_s": EAGER_NUMEL / eager / 1e6,
            "cold_start": _cold_start()}
