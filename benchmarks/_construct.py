"""Run by the materialize section (`bench_materialize.py`) in a fresh interpreter, so that the
peak RSS is this one model's alone. Builds a GPT (`weightinit.studies.GPT`) either the way torch
does by default (`--how default`: allocated and initialized by each module's
`reset_parameters`, on the CPU) or on the meta device followed by
`wi.materialize(model, device="cpu", seed=0)` (`--how materialize`), or writes its seed
checkpoint with `wi.save_initial` from the meta model to a temporary folder (`--how
checkpoint`), and prints the time, the peak RSS before and after, the model's bytes and its
largest tensor's as one JSON object on the last line.

For `materialize` and `checkpoint`, a tiny GPT is materialized first: that loads numba and the
keyed kernel from numba's disk cache (or compiles it, the first time ever) and imports the
meta-device machinery, and is reported as "warmup", not timed.

    python benchmarks/_construct.py --how materialize --width 768 --layers 12 --heads 12
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence

import torch
from torch import nn

import weightinit as wi
from weightinit.studies import GPT, GPTConfig, gpt


def peak_rss_bytes() -> int:
    """This process's peak RSS. On Linux from /proc/self/status (VmHWM, this program's own
    memory): getrusage's ru_maxrss survives exec, so it would report the parent's peak (the
    benchmark process that started this one) whenever that is higher."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _warm_up() -> float:
    begin = time.perf_counter()
    with torch.device("meta"):
        tiny = gpt(vocab=97, context=16, width=32, layers=1, heads=4)
    wi.materialize(tiny, device="cpu")
    return time.perf_counter() - begin


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--how", choices=("default", "materialize", "checkpoint"),
                        required=True)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    for name, default in (("vocab", 50257), ("context", 1024), ("width", 768), ("layers", 12),
                          ("heads", 12)):
        parser.add_argument(f"--{name}", type=int, default=default,
                            help=f"GPTConfig.{name} (default {default})")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = GPTConfig(vocab=args.vocab, context=args.context, width=args.width,
                       layers=args.layers, heads=args.heads)
    warm = _warm_up() if args.how != "default" else 0.0

    before = peak_rss_bytes()
    begin = time.perf_counter()
    model: nn.Module
    if args.how == "default":
        model = GPT(config)
    else:
        with torch.device("meta"):
            model = GPT(config)
        if args.how == "materialize":
            wi.materialize(model, device="cpu", seed=0)
        else:
            with tempfile.TemporaryDirectory() as folder:
                wi.save_initial(model, folder, seed=0)
    seconds = time.perf_counter() - begin
    peak = peak_rss_bytes()

    sizes = [p.numel() * p.element_size() for p in model.parameters()]
    print(json.dumps({"seconds": seconds, "rss_before": before, "peak_rss": peak,
                      "model_bytes": sum(sizes), "largest_tensor_bytes": max(sizes),
                      "warmup": warm}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
