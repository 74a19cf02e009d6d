"""`--only fills`: keyed fills through the public `Spec.fill_` (what users call) against torch's
own initializers on the same float32 tensor (--numel elements), in the same run.

Rows: torch's ``x.normal_()``, then ``wi.Normal(1.0).fill_(x, key="w", seed=0, backend=...)``
with ``"compiled"`` and with ``"auto"`` (the default), each with its ratio against
``normal_``; torch's ``nn.init.trunc_normal_(x)`` (N(0, 1) cut at +-2), then
``wi.TruncatedNormal(1.0).fill_`` (std 1 after the cut at +-2 sigma) the same two ways, with
ratios against ``trunc_normal_``; last, ``wi.Normal(1.0).fill_`` with ``"eager"`` on 2**22
elements (what "auto" runs on a tensor under 2**28 elements until this process has compiled
that kernel; no ratio). The compiled kernels are compiled once, before any timing, and that
time is printed on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from _common import median_seconds

import weightinit as wi

EAGER_NUMEL = 1 << 22


def run(numel: int, reps: int) -> list[dict[str, object]]:
    x = torch.empty(numel, dtype=torch.float32)
    rows: list[dict[str, object]] = []
    seconds_of: dict[str, float] = {}

    def record(name: str, fn: Callable[[], object], baseline: str | None,
               elements: int = numel) -> None:
        seconds = median_seconds(fn, reps)
        seconds_of[name] = seconds
        row: dict[str, object] = {"name": name, "numel": elements, "seconds": seconds,
                                  "melem_per_s": elements / seconds / 1e6}
        line = f"  {name:<46} {elements / seconds / 1e6:>9.1f} Melem/s"
        if baseline is not None:
            ratio = seconds_of[baseline] / seconds
            row["ratio"] = ratio
            row["baseline"] = baseline
            line += f"   {ratio:.2f}x {baseline}"
        rows.append(row)
        print(line, flush=True)

    normal = wi.Normal(1.0)
    truncated = wi.TruncatedNormal(1.0)  # std 1 after truncation to +-2 sigma
    # Warm up: the first compiled call of each kernel compiles it (tens of seconds), which is
    # not part of the timing. After it, "auto" uses the compiled kernels too.
    start = time.perf_counter()
    for spec in (normal, truncated):
        spec.fill_(torch.empty(1 << 20), key="warm", seed=0, backend="compiled")
    print(f"  (compile of the keyed kernels: {time.perf_counter() - start:.1f} s, once per "
          "process; torch.compile's caches on disk may shorten it)", flush=True)

    record("torch normal_", lambda: x.normal_(), None)
    record("wi Normal(1).fill_ (compiled)",
           lambda: normal.fill_(x, key="w", seed=0, backend="compiled"), "torch normal_")
    record("wi Normal(1).fill_ (auto)",
           lambda: normal.fill_(x, key="w", seed=0, backend="auto"), "torch normal_")
    record("torch nn.init.trunc_normal_", lambda: torch.nn.init.trunc_normal_(x), None)
    record("wi TruncatedNormal(1).fill_ (compiled)",
           lambda: truncated.fill_(x, key="w", seed=0, backend="compiled"),
           "torch nn.init.trunc_normal_")
    record("wi TruncatedNormal(1).fill_ (auto)",
           lambda: truncated.fill_(x, key="w", seed=0, backend="auto"),
           "torch nn.init.trunc_normal_")
    small = torch.empty(EAGER_NUMEL)
    record(f"wi Normal(1).fill_ (eager, {EAGER_NUMEL:,} el.)",
           lambda: normal.fill_(small, key="w", seed=0, backend="eager"), None,
           elements=EAGER_NUMEL)
    return rows
