"""Run by the gpt2 section (`bench_gpt2.py`) in a fresh interpreter: what a user's script pays.
Builds transformers' GPT-2 small from its config (``GPT2LMHeadModel(GPT2Config())``, 124M
parameters: transformers allocates and initializes every weight), then, with ``--init``, runs
``wi.init_model(model)`` on it. Prints the construction's and init_model's wall times as one
JSON object on the last line. numba's disk cache is used as it is (the section fills it
first), so init_model's time includes loading numba and the kernel but not compiling it.

    python benchmarks/_hf_build.py --init --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", action="store_true", help="then run wi.init_model on it")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(args.threads)
    begin = time.perf_counter()
    model = GPT2LMHeadModel(GPT2Config())
    built = time.perf_counter() - begin
    result = {"construct": built, "n_params": sum(p.numel() for p in model.parameters())}
    if args.init:
        import weightinit as wi

        begin = time.perf_counter()
        wi.init_model(model)
        result["init_model"] = time.perf_counter() - begin
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
