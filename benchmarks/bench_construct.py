"""`--only construct`: building a transformers model from its config, as transformers does
(allocate, then its own `_init_weights` over every weight) against ``wi.build(cls, config)``
(built on the meta device, then allocated and filled once by `auto`): GPT-2 small (124M) and a
TinyLlama-1.1B-shaped Llama, each build in a fresh process (benchmarks/_build_hf.py), --reps
of each, alternating. Prints median seconds, peak RSS over the model's bytes, and the ratio
own / build. Skipped when transformers is not installed.
"""

from __future__ import annotations

import importlib.util
import statistics

from _build_hf import MODELS
from _common import run_script


def run(threads: int, reps: int) -> dict[str, object]:
    if importlib.util.find_spec("transformers") is None:
        print("  skipped: transformers is not installed (pip install weightinit[hf])")
        return {"skipped": "transformers not installed"}
    import torch

    import weightinit as wi

    wi.Normal(1.0).fill_(torch.empty(8), key="warm", seed=0)  # fill numba's cache if empty
    summary: dict[str, object] = {}
    for model in MODELS:
        runs: dict[str, list[dict[str, float]]] = {"own": [], "build": []}
        for _ in range(reps):
            for how in runs:
                runs[how].append(run_script("_build_hf.py", "--model", model, "--how", how,
                                            "--threads", str(threads)))
        seconds = {how: statistics.median(r["seconds"] for r in rs) for how, rs in runs.items()}
        params = runs["own"][0]["n_params"]
        print(f"  {model} ({params / 1e6:.0f}M parameters):", flush=True)
        for how, label in (("own", "transformers' own construction"),
                           ("build", "wi.build(cls, config)")):
            model_bytes = runs[how][0]["model_bytes"]
            peak = statistics.median(r["peak_rss"] for r in runs[how])
            print(f"    {label:<32} {seconds[how]:>6.2f} s   peak RSS "
                  f"{peak / model_bytes:.2f}x the model's bytes", flush=True)
        ratio = seconds["own"] / seconds["build"]
        warm = statistics.median(r["warmup"] for r in runs["build"])
        print(f"    wi.build is {ratio:.2f}x as fast (its one-off warm-up, loading numba and "
              f"the kernel, not timed: {warm:.1f} s)", flush=True)
        summary[model] = {"seconds": seconds, "speedup": ratio, "runs": runs}
    return summary
