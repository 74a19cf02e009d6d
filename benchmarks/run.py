"""`make bench`: weightinit against torch's own code and the PyPI `lsuv` package, each timed
against its baseline in the same run. Sections (--only NAME runs one; default: all, in order):

  cli          the command line's start-up: `weightinit --version`, `--help` and `gain gelu`
               as fresh processes vs a bare interpreter and `import torch` (bench_cli.py)
  fills        `Spec.fill_` keyed fills (wi.Normal, wi.Uniform, wi.TruncatedNormal) vs torch's
               `normal_`, `uniform_` and `nn.init.trunc_normal_`, on 1 and --threads threads,
               as a fraction of `fill_`; a fresh process's first fill (bench_fills.py)
  gpt2         `wi.init_model` on transformers' GPT-2 small vs its construction from the
               config, fresh processes (benchmarks/bench_gpt2.py)
  construct    transformers' GPT-2 small and a 1.1B Llama built from their configs as
               transformers does vs `wi.build(cls, config)` (meta, then one `auto` fill),
               time and peak RSS in fresh processes (bench_construct.py)
  lsuv         `wi.lsuv` vs the PyPI `lsuv` package, installed only for the benchmark from
               benchmarks/requirements-lsuv.txt (benchmarks/bench_lsuv.py)
  diagnose     `wi.diagnose` vs a plain forward + backward on the same model and batch, and a
               cold process's import and first-call times (benchmarks/bench_diagnose.py)
  materialize  `wi.materialize` of a GPT built on the meta device vs torch's default
               construction, time and peak RSS in fresh processes (bench_materialize.py)
  shootout     training with each initialization policy (own init, auto,
               auto(residual=zero), lsuv, gpt2) on transformers' GPT-2 and Llama as byte-level
               LMs on the standard library's .py files and a 12-layer plain CNN on digits,
               --shootout-seeds seeds: final validation loss, mean ± std, the auto-vs-own
               check, and a figure of the loss curves (bench_shootout.py; one torch
               thread whatever --threads says; about 10 minutes)

Prints medians of --reps runs and ratios against the baseline measured in the same run. The
machines are noisy: quote ratios, and never turn these into test assertions. (The shootout
measures losses, not times; --reps does not apply to it.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import bench_cli
import bench_construct
import bench_diagnose
import bench_fills
import bench_gpt2
import bench_lsuv
import bench_materialize
import bench_shootout
import torch
from _common import HERE

SECTIONS = ("cli", "fills", "gpt2", "construct", "lsuv", "diagnose", "materialize", "shootout")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numel", type=int, default=1 << 28,
                        help="elements of the fills section's tensor (default 2**28)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per timing (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--gpt", choices=tuple(bench_materialize.GPT_SIZES), default="1.3b",
                        help="the GPT for the materialize section (default 1.3b: 5 GB)")
    parser.add_argument("--shootout-seeds", type=int, default=3, metavar="N",
                        help="seeds per model and policy in the shootout (default 3)")
    parser.add_argument("--shootout-figure", metavar="PATH",
                        default=str(bench_shootout.DEFAULT_FIGURE.relative_to(
                            HERE.parent)),
                        help="where the shootout writes its loss curves (default "
                             "%(default)s, from the repository root; 'none' for no figure)")
    parser.add_argument("--only", choices=SECTIONS, help="run one section (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"weightinit benchmarks: torch {torch.__version__}, {args.threads} threads, "
          f"median of {args.reps}", flush=True)
    results: dict[str, object] = {"threads": args.threads, "reps": args.reps}
    if args.only in (None, "cli"):
        print("CLI start-up (fresh processes; --version and --help import no torch):",
              flush=True)
        results["cli"] = cli = bench_cli.run(max(args.reps, 5))
        for name, seconds in cli.items():
            print(f"  {name:<28} {seconds:6.3f} s", flush=True)
    if args.only in (None, "fills"):
        print(f"keyed fills vs torch's initializers ({args.numel:,} float32 elements):",
              flush=True)
        results["numel"] = args.numel
        results["keyed_fills"] = bench_fills.run(args.numel, args.reps)
    if args.only in (None, "gpt2"):
        print("GPT-2 small: wi.init_model vs transformers' construction (fresh processes):",
              flush=True)
        results["gpt2"] = bench_gpt2.run(args.threads, args.reps)
    if args.only in (None, "construct"):
        print("construct: transformers' own construction vs wi.build (fresh processes):",
              flush=True)
        results["construct"] = bench_construct.run(args.threads, args.reps)
    if args.only in (None, "lsuv"):
        print("LSUV: wi.lsuv vs the PyPI lsuv package (same models, seed and batch):",
              flush=True)
        results["lsuv"] = bench_lsuv.run(args.reps)
    if args.only in (None, "diagnose"):
        print("diagnose: wi.diagnose vs a plain forward + backward (same model and batch):",
              flush=True)
        results["diagnose"] = bench_diagnose.run(args.reps)
    if args.only in (None, "materialize"):
        print(f"materialize: a GPT ({args.gpt}) built on meta and materialized vs torch's "
              "default construction:", flush=True)
        results["materialize"] = bench_materialize.run(bench_materialize.GPT_SIZES[args.gpt],
                                                       args.threads, args.reps)
    if args.only in (None, "shootout"):
        print("shootout: training with each initialization policy, "
              f"{args.shootout_seeds} seed{'s' * (args.shootout_seeds != 1)} each:", flush=True)
        figure = None if args.shootout_figure.lower() == "none" else Path(args.shootout_figure)
        if figure is not None and not figure.is_absolute():
            figure = HERE.parent / figure
        results["shootout"] = bench_shootout.run(args.shootout_seeds, figure)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
