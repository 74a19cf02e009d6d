"""`--only gpt2`: ``wi.init_model`` on transformers' GPT-2 small built from its config, against
transformers' own construction of that model (which allocates and initializes every weight),
each in fresh processes (benchmarks/_hf_build.py), --reps of each, alternating. Prints the
median construction time, the median init_model time (numba's cache warm: loading numba and the
kernel is included, compiling it is not; the fills section reports a cold start on its own) and
the ratio init_model / construction. Skipped when transformers is not installed.
"""

from __future__ import annotations

import importlib.util
import statistics

from _common import run_script


def run(threads: int, reps: int) -> dict[str, object]:
    if importlib.util.find_spec("transformers") is None:
        print("  skipped: transformers is not installed (pip install weightinit[hf])")
        return {"skipped": "transformers not installed"}
    import torch

    import weightinit as wi

    wi.Normal(1.0).fill_(torch.empty(8), key="warm", seed=0)  # fill numba's cache if empty
    built, inits = [], []
    for _ in range(reps):
        built.append(run_script("_hf_build.py", "--threads", str(threads))["construct"])
        inits.append(run_script("_hf_build.py", "--init", "--threads", str(threads))[
            "init_model"])
    construct, init = statistics.median(built), statistics.median(inits)
    print(f"  transformers GPT2LMHeadModel(GPT2Config())  {construct:6.2f} s   (124M "
          "parameters, its own init)", flush=True)
    print(f"  wi.init_model(model)                        {init:6.2f} s   "
          f"{init / construct:.2f}x the construction", flush=True)
    return {"construct_seconds": construct, "init_model_seconds": init,
            "ratio": init / construct, "runs": {"construct": built, "init_model": inits}}
