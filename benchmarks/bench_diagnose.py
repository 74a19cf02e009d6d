"""`--only diagnose`: `wi.diagnose` against what it must do anyway, one forward and one
backward, on the same model (initialized with ``wi.init_model(model, "auto", seed=0)``, train
mode) and batch. The baseline is a synthetic loss, sum(output * noise) with the noise drawn
once, and torch.autograd.grad on the parameters (no .grad written). Runs alternate (baseline,
diagnose) so that drift hits both alike; the first call of each is timed on its own.

Then a cold process (benchmarks/_cold_start.py): import times and the first two diagnose calls
on a small MLP, what a CLI run pays once.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from _common import cnn, mlp, run_script
from torch import nn

import weightinit as wi

DIAGNOSE_TARGET = 1.5  # diagnose / plain forward+backward on the same model and batch


def _cases() -> list[tuple[str, str, Callable[[], nn.Module], tuple[int, ...]]]:
    return [
        ("MLP 12 x Linear(1024)+ReLU, batch (1024, 1024)", "mlp",
         lambda: mlp(depth=12, width=1024), (1024, 1024)),
        ("CNN 6 x conv3x3(64)-BN-ReLU + avgpool + Linear(64, 10), batch (64, 3, 32, 32)",
         "cnn", lambda: cnn(depth=6, channels=64), (64, 3, 32, 32)),
    ]


def _time_pair(model: nn.Module, batch: torch.Tensor, reps: int
               ) -> tuple[dict[str, float], dict[str, float]]:
    """(first-call seconds, median seconds) of the baseline and of diagnose on one model."""
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        out_shape = model(batch).shape
    noise = torch.randn(out_shape, generator=torch.Generator().manual_seed(2))

    def baseline() -> object:
        return torch.autograd.grad((model(batch) * noise).sum(), params)

    def diagnose() -> object:
        return wi.diagnose(model, batch)

    calls = (("baseline", baseline), ("diagnose", diagnose))
    # The first calls, timed on their own: the first diagnose in a process pays one-time
    # imports and caches. Then one more untimed call of each before the timed runs.
    first: dict[str, float] = {}
    for name, fn in calls:
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
        fn()
    times: dict[str, list[float]] = {"baseline": [], "diagnose": []}
    for _ in range(reps):
        for name, fn in calls:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return first, {name: statistics.median(values) for name, values in times.items()}


def run(reps: int) -> dict[str, object]:
    print(f"  baseline: forward, loss = sum(output * fixed N(0,1) noise), torch.autograd.grad "
          f"on the parameters;\n  same model (wi.init_model 'auto', train mode) and batch; "
          f"target diagnose / baseline <= {DIAGNOSE_TARGET}x", flush=True)
    print(f"  {'model':<32} {'baseline s':>10} {'diagnose s':>10} {'ratio':>7}   first calls "
          "(s): baseline, diagnose", flush=True)
    rows: list[dict[str, object]] = []
    for title, key, build, shape in _cases():
        torch.manual_seed(0)
        model = build()
        wi.init_model(model, "auto", seed=0)
        batch = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        first, median = _time_pair(model, batch, reps)
        ratio = median["diagnose"] / median["baseline"]
        verdict = "ok" if ratio <= DIAGNOSE_TARGET else "OVER TARGET"
        print(f"  {title}", flush=True)
        print(f"  {'':<32} {median['baseline']:>10.4f} {median['diagnose']:>10.4f} "
              f"{ratio:>6.2f}x   {first['baseline']:.4f}, {first['diagnose']:.4f}   "
              f"({verdict}: target <= {DIAGNOSE_TARGET}x)", flush=True)
        rows.append({"model": key, "description": title, "batch": list(shape),
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "baseline_seconds": median["baseline"],
                     "diagnose_seconds": median["diagnose"],
                     "ratio": ratio, "target_ratio": DIAGNOSE_TARGET,
                     "first_baseline_seconds": first["baseline"],
                     "first_diagnose_seconds": first["diagnose"]})
    print("  first calls: the first call of each on that model (allocator, thread pool, caches); "
          "medians\n  exclude them (each timed run follows an untimed warm-up call)", flush=True)
    cold = run_script("_cold_start.py", "--threads", str(torch.get_num_threads()))
    print(f"  cold process (what a CLI run pays once): import torch {cold['import_torch']:.2f} s,"
          f" import weightinit {cold['import_weightinit']:.2f} s,\n  first diagnose "
          f"{cold['first_diagnose'] * 1e3:.1f} ms, second {cold['second_diagnose'] * 1e3:.1f} ms "
          "(MLP 4 x Linear(256)+ReLU, batch (256, 256))", flush=True)
    return {"target_ratio": DIAGNOSE_TARGET, "models": rows, "cold_start": cold}
