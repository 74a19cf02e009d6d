"""`make bench`: weightinit's keyed fills against torch's own initializers, `wi.lsuv` against
the PyPI `lsuv` package (installed only for the benchmark: benchmarks/requirements-lsuv.txt),
and `wi.diagnose` against a plain forward + backward on the same model and batch, and
`wi.materialize` of a 1.3e9-parameter GPT built on the meta device against torch's default
construction of the same model (time and peak RSS, fresh processes), measured in one run.

Prints medians of --reps runs and ratios against the baseline measured in the same run. The
machines are noisy: quote ratios, and never turn these into test assertions.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import torch
from torch import nn

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


LSUV_TOL = 0.02  # for both libraries: ours `tol`, theirs `std_tol`
LSUV_MAX_ITER = 10  # ours `max_iter`, theirs `max_attempts`
LSUV_REQUIREMENTS = "benchmarks/requirements-lsuv.txt"


def _mlp(depth: int = 30, width: int = 256) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def _cnn(depth: int = 6, channels: int = 32, classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(3 if i == 0 else channels, channels, 3, padding=1),
                   nn.BatchNorm2d(channels), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)


def _max_std_error(model: nn.Module, batch: torch.Tensor, target: float = 1.0) -> float:
    """One eval-mode, no-grad forward; max |std - target| over the outputs of every Linear and
    convolution (first call of each), std in float64."""
    stds: dict[str, float] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
            def hook(module: nn.Module, inputs: Any, output: torch.Tensor,
                     name: str = name) -> None:
                stds.setdefault(name, float(output.detach().double().std()))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(batch)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return max(abs(std - target) for std in stds.values())


def _counting(model: nn.Module) -> tuple[dict[str, int], Callable[[], None]]:
    """Count top-level forward calls and calls of modules that own parameters (the definition
    of `LSUVReport.layer_calls`). Returns the counter and a function removing the hooks."""
    counter = {"forwards": 0, "layer_calls": 0}

    def forward(module: nn.Module, inputs: Any) -> None:
        counter["forwards"] += 1

    def call(module: nn.Module, inputs: Any, output: Any) -> None:
        counter["layer_calls"] += 1

    handles = [model.register_forward_pre_hook(forward)]
    handles += [m.register_forward_hook(call) for m in model.modules()
                if any(True for _ in m.parameters(recurse=False))]

    def remove() -> None:
        for handle in handles:
            handle.remove()

    return counter, remove


def bench_lsuv(reps: int) -> dict[str, object]:
    try:
        from lsuv import lsuv_with_singlebatch
    except ImportError:
        install = f".venv/bin/pip install --no-deps -r {LSUV_REQUIREMENTS}"
        print(f"  skipped: the PyPI `lsuv` package is not installed; `{install}`", flush=True)
        return {"skipped": f"lsuv not installed; {install}"}
    version = metadata.version("lsuv")

    def ours(model: nn.Module, batch: torch.Tensor) -> dict[str, int]:
        report = wi.lsuv(model, batch, target_std=1.0, tol=LSUV_TOL, max_iter=LSUV_MAX_ITER,
                         seed=0)
        return {"forwards": report.forwards, "layer_calls": report.layer_calls}

    def theirs(model: nn.Module, batch: torch.Tensor) -> dict[str, int]:
        torch.manual_seed(0)  # their orthogonal pre-init draws from torch's global generator
        lsuv_with_singlebatch(model, batch, needed_std=1.0, std_tol=LSUV_TOL,
                              max_attempts=LSUV_MAX_ITER, do_orthonorm=True, verbose=False,
                              device=torch.device("cpu"))
        return {}

    cases = (("MLP 30 x Linear(256)+ReLU", "mlp", _mlp, (256, 256)),
             ("CNN 6 x conv3x3(32)-BN-ReLU", "cnn", _cnn, (16, 3, 32, 32)))
    print(f"  lsuv {version}; target std 1, tol {LSUV_TOL} for both (our tol, their std_tol), "
          f"{LSUV_MAX_ITER} iterations at most;\n  a fresh copy of one seeded model per run; "
          "max|std-1| over every Linear/conv output, eval mode", flush=True)
    print(f"  {'model':<28} {'library':<12} {'forwards':>8} {'layer calls':>11} "
          f"{'seconds':>9} {'max|std-1|':>10}", flush=True)
    rows: list[dict[str, object]] = []
    for title, key, build, shape in cases:
        torch.manual_seed(0)
        base = build()
        batch = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        row: dict[str, object] = {"model": key, "description": title, "batch": list(shape)}
        seconds: dict[str, float] = {}
        for library, run in (("weightinit", ours), (f"lsuv {version}", theirs)):
            # First run, untimed: counts (for theirs, by hooks) and the std after calibration.
            model = copy.deepcopy(base)
            counter, remove = _counting(model)
            start = time.perf_counter()
            counts = run(model, batch)
            first = time.perf_counter() - start
            remove()
            counts = counts or dict(counter)
            error = _max_std_error(model, batch)
            times = []
            for _ in range(reps):
                model = copy.deepcopy(base)
                start = time.perf_counter()
                run(model, batch)
                times.append(time.perf_counter() - start)
            result: dict[str, float] = {**counts, "seconds": statistics.median(times),
                                        "first_seconds": first, "max_std_error": error}
            seconds[library] = result["seconds"]
            row["weightinit" if library == "weightinit" else "lsuv"] = result
            print(f"  {title if library == 'weightinit' else '':<28} {library:<12} "
                  f"{result['forwards']:>8} {result['layer_calls']:>11} "
                  f"{result['seconds']:>9.4f} {error:>10.2e}", flush=True)
        ratio = seconds[f"lsuv {version}"] / seconds["weightinit"]
        row["time_ratio_lsuv_over_weightinit"] = ratio
        print(f"  {'':<28} wall time lsuv / weightinit: {ratio:.2f}x", flush=True)
        rows.append(row)
    print("  forwards: weightinit's report.forwards (passes started, may stop early); lsuv's "
          "calls of\n  model.forward, each a whole pass. layer calls: calls of modules that own "
          "parameters", flush=True)
    return {"lsuv_version": version, "target_std": 1.0, "tol": LSUV_TOL,
            "max_iter": LSUV_MAX_ITER, "models": rows}


DIAGNOSE_TARGET = 1.5  # diagnose / plain forward+backward on the same model and batch


def _diagnose_cases() -> list[tuple[str, str, Callable[[], nn.Module], tuple[int, ...]]]:
    return [
        ("MLP 12 x Linear(1024)+ReLU, batch (1024, 1024)", "mlp",
         lambda: _mlp(depth=12, width=1024), (1024, 1024)),
        ("CNN 6 x conv3x3(64)-BN-ReLU + avgpool + Linear(64, 10), batch (64, 3, 32, 32)",
         "cnn", lambda: _cnn(depth=6, channels=64), (64, 3, 32, 32)),
    ]


def bench_diagnose(reps: int) -> dict[str, object]:
    """wi.diagnose against what it must do anyway: one forward and one backward. The baseline
    is the same synthetic loss, sum(output * noise) with the noise drawn once, and
    torch.autograd.grad on the parameters (no .grad written), on the same model and batch in
    train mode. Runs alternate (baseline, diagnose) so drift hits both alike."""
    print(f"  baseline: forward, loss = sum(output * fixed N(0,1) noise), torch.autograd.grad "
          f"on the parameters;\n  same model (He-initialized, train mode) and batch; target "
          f"diagnose / baseline <= {DIAGNOSE_TARGET}x", flush=True)
    print(f"  {'model':<32} {'baseline s':>10} {'diagnose s':>10} {'ratio':>7}   first calls "
          "(s): baseline, diagnose", flush=True)
    rows: list[dict[str, object]] = []
    for title, key, build, shape in _diagnose_cases():
        torch.manual_seed(0)
        model = build()
        wi.init_model(model, "auto", seed=0)
        batch = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        params = [p for p in model.parameters() if p.requires_grad]
        with torch.no_grad():
            out_shape = model(batch).shape
        noise = torch.randn(out_shape, generator=torch.Generator().manual_seed(2))

        def baseline(model: nn.Module = model, batch: torch.Tensor = batch,
                     noise: torch.Tensor = noise, params: list[nn.Parameter] = params) -> object:
            return torch.autograd.grad((model(batch) * noise).sum(), params)

        def diagnose(model: nn.Module = model, batch: torch.Tensor = batch) -> object:
            return wi.diagnose(model, batch)

        # The first calls, timed on their own: the first diagnose in a process pays one-time
        # imports and caches. Then one more untimed call of each before the timed runs.
        first: dict[str, float] = {}
        for name, fn in (("baseline", baseline), ("diagnose", diagnose)):
            start = time.perf_counter()
            fn()
            first[name] = time.perf_counter() - start
            fn()
        times: dict[str, list[float]] = {"baseline": [], "diagnose": []}
        for _ in range(reps):
            for name, fn in (("baseline", baseline), ("diagnose", diagnose)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        base_s = statistics.median(times["baseline"])
        diag_s = statistics.median(times["diagnose"])
        ratio = diag_s / base_s
        verdict = "ok" if ratio <= DIAGNOSE_TARGET else "OVER TARGET"
        print(f"  {title}", flush=True)
        print(f"  {'':<32} {base_s:>10.4f} {diag_s:>10.4f} {ratio:>6.2f}x   "
              f"{first['baseline']:.4f}, {first['diagnose']:.4f}   ({verdict}: target "
              f"<= {DIAGNOSE_TARGET}x)", flush=True)
        rows.append({"model": key, "description": title, "batch": list(shape),
                     "parameters": sum(p.numel() for p in params),
                     "baseline_seconds": base_s, "diagnose_seconds": diag_s,
                     "ratio": ratio, "target_ratio": DIAGNOSE_TARGET,
                     "first_baseline_seconds": first["baseline"],
                     "first_diagnose_seconds": first["diagnose"]})
    print("  first calls: the first call of each on that model (allocator, thread pool, caches); "
          "medians\n  exclude them (each timed run follows an untimed warm-up call)", flush=True)
    cold = _diagnose_cold_start(threads=torch.get_num_threads())
    print(f"  cold process (what a CLI run pays once): import torch {cold['import_torch']:.2f} s,"
          f" import weightinit {cold['import_weightinit']:.2f} s,\n  first diagnose "
          f"{cold['first_diagnose'] * 1e3:.1f} ms, second {cold['second_diagnose'] * 1e3:.1f} ms "
          "(MLP 4 x Linear(256)+ReLU, batch (256, 256))", flush=True)
    return {"target_ratio": DIAGNOSE_TARGET, "models": rows, "cold_start": cold}


_COLD_START = """
import json, time
start = time.perf_counter()
import torch
from torch import nn
imported_torch = time.perf_counter()
import weightinit as wi
imported = time.perf_counter()
torch.set_num_threads({threads})
layers = []
for _ in range(4):
    layers += [nn.Linear(256, 256), nn.ReLU()]
model, batch = nn.Sequential(*layers), torch.randn(256, 256)
times = []
for _ in range(2):
    begin = time.perf_counter()
    wi.diagnose(model, batch)
    times.append(time.perf_counter() - begin)
print(json.dumps({{"import_torch": imported_torch - start, "import_weightinit": imported
                  - imported_torch, "first_diagnose": times[0], "second_diagnose": times[1]}}))
"""


def _diagnose_cold_start(threads: int) -> dict[str, float]:
    """A fresh interpreter: import times and the first two diagnose calls on a small MLP."""
    proc = subprocess.run([sys.executable, "-c", _COLD_START.format(threads=threads)],
                          capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


_CONSTRUCT = """
import json, os, resource, sys, time
import torch
import weightinit as wi
from weightinit.studies import GPT, GPTConfig, gpt
torch.set_num_threads({threads})
config = GPTConfig(**{config})
warm = 0.0
if "{how}" == "materialize":
    # Compile the keyed kernels and import the meta-device machinery on a tiny model first:
    # once per process (torch caches the compiled code on disk), not part of the timing.
    begin = time.perf_counter()
    os.environ["WEIGHTINIT_COMPILE"] = "1"
    with torch.device("meta"):
        tiny = gpt(vocab=97, context=16, width=32, layers=1, heads=4)
    wi.materialize(tiny, device="cpu")
    del os.environ["WEIGHTINIT_COMPILE"]
    warm = time.perf_counter() - begin
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
begin = time.perf_counter()
if "{how}" == "materialize":
    with torch.device("meta"):
        model = GPT(config)
    wi.materialize(model, device="cpu", seed=0)
else:
    model = GPT(config)
seconds = time.perf_counter() - begin
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
print(json.dumps({{"seconds": seconds, "rss_before": before, "peak_rss": peak,
                  "model_bytes": model_bytes, "warmup": warm}}))
"""


def _construct(how: str, config: dict[str, int], threads: int) -> dict[str, float]:
    """Build the GPT in a fresh interpreter (so that peak RSS is this model's alone): torch's
    default construction, or on the meta device and then wi.materialize."""
    code = _CONSTRUCT.format(how=how, config=config, threads=threads)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench_materialize(config: dict[str, int], threads: int, reps: int) -> dict[str, object]:
    from weightinit.studies import GPTConfig

    n_params = GPTConfig(**config).n_params
    print(f"  model: {n_params / 1e9:.2f}e9 parameters (float32, {n_params * 4 / 2**30:.2f} "
          f"GiB), {reps} fresh processes each", flush=True)
    runs: dict[str, list[dict[str, float]]] = {"default": [], "materialize": []}
    for _ in range(reps):
        for how in runs:
            runs[how].append(_construct(how, config, threads))
    summary: dict[str, object] = {"n_params": n_params, "runs": runs}
    for how, label in (("default", "torch default construction (CPU)"),
                       ("materialize", "meta + wi.materialize(device='cpu')")):
        seconds = statistics.median(r["seconds"] for r in runs[how])
        peak = statistics.median(r["peak_rss"] for r in runs[how])
        grown = statistics.median(r["peak_rss"] - r["rss_before"] for r in runs[how])
        model_bytes = runs[how][0]["model_bytes"]
        summary[how] = {"seconds": seconds, "mparams_per_s": n_params / seconds / 1e6,
                        "peak_rss_over_model": peak / model_bytes,
                        "rss_growth_over_model": grown / model_bytes}
        print(f"  {label:<40} {seconds:>6.2f} s  {n_params / seconds / 1e6:>6.1f} Mparams/s  "
              f"peak RSS {peak / model_bytes:.3f}x model bytes (growth {grown / model_bytes:.3f}x)",
              flush=True)
    ratio = summary["default"]["seconds"] / summary["materialize"]["seconds"]  # type: ignore
    summary["speedup"] = ratio
    warm = statistics.median(r["warmup"] for r in runs["materialize"])
    print(f"  materialize is {ratio:.2f}x as fast as default construction "
          f"(its one-off kernel compile/warm-up, not timed: {warm:.1f} s)", flush=True)
    throughput = {}
    x = torch.empty(1 << 27)
    x.zero_()
    fill_keyed_(x[:1 << 20], "normal", (0.0, 1.0), seed=0, key="warm", backend="compiled")
    previous = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            seconds = _median_seconds(lambda: fill_keyed_(
                x, "normal", (0.0, 0.02), seed=0, key="w", backend="compiled"), reps)
            throughput[count] = x.numel() / seconds / 1e6
            print(f"  keyed normal fill (compiled), {count} thread{'s' if count > 1 else ''}: "
                  f"{throughput[count]:.1f} Melem/s", flush=True)
    finally:
        torch.set_num_threads(previous)
    summary["keyed_fill_melem_per_s"] = throughput
    return summary


GPT_SIZES = {"1.3b": {"vocab": 50257, "context": 1024, "width": 2048, "layers": 24, "heads": 16},
             "124m": {"vocab": 50257, "context": 1024, "width": 768, "layers": 12, "heads": 12}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--numel", type=int, default=1 << 28, help="elements (default 2**28)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per timing (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--gpt", choices=tuple(GPT_SIZES), default="1.3b",
                        help="the GPT for the materialize section (default 1.3b: 5 GB)")
    parser.add_argument("--only", choices=("fills", "lsuv", "diagnose", "materialize"),
                        help="run one section (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"weightinit benchmarks: torch {torch.__version__}, {args.threads} threads, "
          f"median of {args.reps}", flush=True)
    results: dict[str, object] = {"threads": args.threads, "reps": args.reps}
    if args.only in (None, "fills"):
        print(f"keyed fills vs torch's initializers ({args.numel:,} float32 elements):",
              flush=True)
        results["numel"] = args.numel
        results["keyed_fills"] = bench_keyed_fills(args.numel, args.reps)
    if args.only in (None, "lsuv"):
        print("LSUV: wi.lsuv vs the PyPI lsuv package (same models, seed and batch):",
              flush=True)
        results["lsuv"] = bench_lsuv(args.reps)
    if args.only in (None, "diagnose"):
        print("diagnose: wi.diagnose vs a plain forward + backward (same model and batch):",
              flush=True)
        results["diagnose"] = bench_diagnose(args.reps)
    if args.only in (None, "materialize"):
        print(f"materialize: a GPT ({args.gpt}) built on meta and materialized vs torch's "
              "default construction:", flush=True)
        results["materialize"] = bench_materialize(GPT_SIZES[args.gpt], args.threads,
                                                   args.reps)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
