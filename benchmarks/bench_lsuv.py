"""`--only lsuv`: `wi.lsuv` against the PyPI `lsuv` package (`lsuv_with_singlebatch`; installed
only for the benchmark, from benchmarks/requirements-lsuv.txt), on fresh copies of the same
seeded models with the same batch, target std 1, tolerance and iteration cap.

For each library: the forwards and layer calls of one untimed run, the median wall time of
--reps runs, and max |std - 1| over every Linear/conv output afterwards; then the ratio
lsuv / weightinit of the median times.
"""

from __future__ import annotations

import copy
import importlib
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any, Protocol

import torch
from _common import cnn, mlp
from torch import nn

import weightinit as wi

LSUV_TOL = 0.02  # for both libraries: ours `tol`, theirs `std_tol`
LSUV_MAX_ITER = 10  # ours `max_iter`, theirs `max_attempts`
LSUV_REQUIREMENTS = "benchmarks/requirements-lsuv.txt"


class _SingleBatch(Protocol):
    """`lsuv.lsuv_with_singlebatch` (lsuv 0.3.0; the package ships no type information)."""

    def __call__(self, model: nn.Module, data: torch.Tensor, *, needed_std: float,
                 std_tol: float, max_attempts: int, do_orthonorm: bool, verbose: bool,
                 device: torch.device) -> object: ...


def _load_lsuv() -> _SingleBatch | None:
    try:
        module = importlib.import_module("lsuv")
    except ImportError:
        return None
    single_batch: _SingleBatch = module.lsuv_with_singlebatch
    return single_batch


def max_std_error(model: nn.Module, batch: torch.Tensor, target: float = 1.0) -> float:
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


def run(reps: int) -> dict[str, object]:
    lsuv_with_singlebatch = _load_lsuv()
    if lsuv_with_singlebatch is None:
        install = f".venv/bin/pip install --no-deps -r {LSUV_REQUIREMENTS}"
        print(f"  skipped: the PyPI `lsuv` package is not installed; `{install}`", flush=True)
        return {"skipped": f"lsuv not installed; {install}"}
    version = metadata.version("lsuv")
    theirs_name = f"lsuv {version}"

    def ours(model: nn.Module, batch: torch.Tensor) -> dict[str, int]:
        report = wi.lsuv(model, batch, target_std=1.0, tol=LSUV_TOL, max_iter=LSUV_MAX_ITER,
                         seed=0)
        return {"forwards": report.forwards, "layer_calls": report.layer_calls}

    def theirs(model: nn.Module, batch: torch.Tensor) -> dict[str, int]:
        torch.manual_seed(0)  # their orthogonal pre-init draws from torch's global generator
        lsuv_with_singlebatch(model, batch, needed_std=1.0, std_tol=LSUV_TOL,
                              max_attempts=LSUV_MAX_ITER, do_orthonorm=True, verbose=False,
                              device=torch.device("cpu"))
        return {}  # counted by hooks

    cases: tuple[tuple[str, str, Callable[[], nn.Module], tuple[int, ...]], ...] = (
        ("MLP 30 x Linear(256)+ReLU", "mlp", mlp, (256, 256)),
        ("CNN 6 x conv3x3(32)-BN-ReLU", "cnn", cnn, (16, 3, 32, 32)))
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
        for library, calibrate in (("weightinit", ours), (theirs_name, theirs)):
            # First run, untimed: counts (for theirs, by hooks) and the std after calibration.
            model = copy.deepcopy(base)
            counter, remove = _counting(model)
            start = time.perf_counter()
            counts = calibrate(model, batch)
            first = time.perf_counter() - start
            remove()
            counts = counts or dict(counter)
            error = max_std_error(model, batch)
            times = []
            for _ in range(reps):
                model = copy.deepcopy(base)
                start = time.perf_counter()
                calibrate(model, batch)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            seconds[library] = median
            row["weightinit" if library == "weightinit" else "lsuv"] = {
                **counts, "seconds": median, "first_seconds": first, "max_std_error": error}
            print(f"  {title if library == 'weightinit' else '':<28} {library:<12} "
                  f"{counts['forwards']:>8} {counts['layer_calls']:>11} "
                  f"{median:>9.4f} {error:>10.2e}", flush=True)
        ratio = seconds[theirs_name] / seconds["weightinit"]
        row["time_ratio_lsuv_over_weightinit"] = ratio
        print(f"  {'':<28} wall time lsuv / weightinit: {ratio:.2f}x", flush=True)
        rows.append(row)
    print("  forwards: weightinit's report.forwards (passes started, may stop early); lsuv's "
          "calls of\n  model.forward, each a whole pass. layer calls: calls of modules that own "
          "parameters", flush=True)
    return {"lsuv_version": version, "target_std": 1.0, "tol": LSUV_TOL,
            "max_iter": LSUV_MAX_ITER, "models": rows}
