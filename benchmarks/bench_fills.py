"""`--only fills`: keyed fills through the public `Spec.fill_` (what users call) against torch's
own initializers on the same float32 tensor (--numel elements), in the same run, with 1 thread
and with --threads.

Per thread count: torch's ``x.fill_(1.0)`` (the memory bandwidth: a keyed fill's ceiling), then
three pairs, each a torch initializer and the keyed fill of the same distribution with its
ratio against it and its fraction of ``fill_``'s throughput:

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
import tempfile
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


def _at(threads: int, x: torch.Tensor, reps: int) -> list[dict[str, object]]:
    torch.set_num_threads(threads)
    rows: list[dict[str, object]] = []
    numel = x.numel()

    def record(name: str, fn: Callable[[], object], **extra: object) -> float:
        seconds = median_seconds(fn, reps)
        rate = numel / seconds / 1e6
        rows.append({"name": name, "threads": threads, "numel": numel, "seconds": seconds,
                     "melem_per_s": rate, **extra})
        return seconds

    bandwidth = record("torch fill_(1.0)", lambda: x.fill_(1.0))
    print(f"  {threads} thread{'s' if threads > 1 else ' '}  {'torch fill_(1.0)':<30} "
          f"{numel / bandwidth / 1e6:>8.0f} Melem/s  (memory bandwidth)", flush=True)
    for base_name, base_fn, name, spec in _pairs():
        base = record(base_name, lambda: base_fn(x))  # noqa: B023 (called right here)
        keyed = record(name, lambda: spec.fill_(x, key="w", seed=0))  # noqa: B023
        rows[-1].update(ratio=base / keyed, baseline=base_name, of_fill=bandwidth / keyed)
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
    rows = []
    counts = sorted({1, threads})
    try:
        for count in counts:
            rows += _at(count, x, reps)
    finally:
        torch.set_num_threads(threads)
    scaling: dict[str, float] = {}
    if len(counts) == 2:
        for _, _, name, _ in _pairs():
            one, many = (next(r["seconds"] for r in rows
                              if r["name"] == name and r["threads"] == c) for c in counts)
            scaling[name] = float(one) / float(many)  # type: ignore[arg-type]
            print(f"  {name:<30} {threads} threads / 1 thread: {scaling[name]:.2f}x",
                  flush=True)
    small = torch.empty(EAGER_NUMEL)
    eager = median_seconds(lambda: wi.Normal(1.0).fill_(small, key="w", seed=0,
                                                        backend="eager"), reps)
    print(f"  wi Normal(1).fill_ (torch ops, backend='eager', {EAGER_NUMEL:,} el.): "
          f"{EAGER_NUMEL / eager / 1e6:.1f} Melem/s", flush=True)
    return {"rows": rows, "scaling": scaling, "eager_melem_per_s": EAGER_NUMEL / eager / 1e6,
            "cold_start": _cold_start()}
