"""`--only materialize`: a GPT (`weightinit.studies.GPT`, --gpt 1.3b or 124m) built on the meta
device and filled by ``wi.materialize(model, device="cpu", seed=0)``, against torch's default
construction of the same model on the CPU, and its seed checkpoint written by
``wi.save_initial`` from the meta model (peak RSS against its largest tensor). Each build runs in
a fresh process
(benchmarks/_construct.py), so that its peak RSS is that model's alone; --reps processes each,
alternating. Prints median seconds, Mparams/s, peak RSS and its growth over the model's bytes,
and the ratio default / materialize.
"""

from __future__ import annotations

import statistics

from _common import run_script

from weightinit.studies import GPTConfig

GPT_SIZES = {"1.3b": GPTConfig(vocab=50257, context=1024, width=2048, layers=24, heads=16),
             "124m": GPTConfig(vocab=50257, context=1024, width=768, layers=12, heads=12)}


def _construct(how: str, config: GPTConfig, threads: int) -> dict[str, float]:
    return run_script("_construct.py", "--how", how, "--threads", str(threads),
                      "--vocab", str(config.vocab), "--context", str(config.context),
                      "--width", str(config.width), "--layers", str(config.layers),
                      "--heads", str(config.heads))


def run(config: GPTConfig, threads: int, reps: int) -> dict[str, object]:
    n_params = config.n_params
    print(f"  model: {n_params / 1e9:.2f}e9 parameters (float32, {n_params * 4 / 2**30:.2f} "
          f"GiB), {reps} fresh processes each", flush=True)
    runs: dict[str, list[dict[str, float]]] = {"default": [], "materialize": []}
    for _ in range(reps):
        for how in runs:
            runs[how].append(_construct(how, config, threads))
    summary: dict[str, object] = {"n_params": n_params, "runs": runs}
    seconds: dict[str, float] = {}
    for how, label in (("default", "torch default construction (CPU)"),
                       ("materialize", "meta + wi.materialize(device='cpu')")):
        seconds[how] = statistics.median(r["seconds"] for r in runs[how])
        peak = statistics.median(r["peak_rss"] for r in runs[how])
        grown = statistics.median(r["peak_rss"] - r["rss_before"] for r in runs[how])
        model_bytes = runs[how][0]["model_bytes"]
        rate = n_params / seconds[how] / 1e6
        summary[how] = {"seconds": seconds[how], "mparams_per_s": rate,
                        "peak_rss_over_model": peak / model_bytes,
                        "rss_growth_over_model": grown / model_bytes}
        print(f"  {label:<40} {seconds[how]:>6.2f} s  {rate:>6.1f} Mparams/s  "
              f"peak RSS {peak / model_bytes:.3f}x model bytes (growth {grown / model_bytes:.3f}x)",
              flush=True)
    ratio = seconds["default"] / seconds["materialize"]
    summary["speedup"] = ratio
    warm = statistics.median(r["warmup"] for r in runs["materialize"])
    print(f"  materialize is {ratio:.2f}x as fast as default construction "
          f"(its one-off warm-up, loading numba and the kernel, not timed: {warm:.1f} s)",
          flush=True)
    checkpoints = [_construct("checkpoint", config, threads) for _ in range(reps)]
    largest = checkpoints[0]["largest_tensor_bytes"]
    grown = statistics.median(r["peak_rss"] - r["rss_before"] for r in checkpoints)
    took = statistics.median(r["seconds"] for r in checkpoints)
    summary["checkpoint"] = {"seconds": took, "rss_growth_over_largest_tensor": grown / largest,
                             "largest_tensor_bytes": largest, "runs": checkpoints}
    print(f"  wi.save_initial (seed checkpoint from meta) {took:6.2f} s  peak RSS growth "
          f"{grown / largest:.2f}x its largest tensor ({largest / 2**20:.0f} MiB; the model is "
          f"{checkpoints[0]['model_bytes'] / largest:.0f}x that)", flush=True)
    return summary
