"""Argument parsing and printing. Every command is a library call plus output; user mistakes
become one line on stderr and a non-zero exit (2 for usage, 1 for refused input)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .._errors import InitError, did_you_mean, first_line
from ..model import CALIBRATORS, PRESETS, init_model, synthesize_input
from ..theory import ACTIVATION_NAMES, gain
from ._factory import load_model, make_input, parse_shape

# How long `weightinit demo` takes on a 2-core machine, start-up included, as its help texts say
# (measured 2026-12-01: 16-18 s, and 5.5-6.2 s with --quick; the README quotes the same).
_DEMO_SECONDS = 20
_DEMO_QUICK_SECONDS = 6  # with --quick

_DIAGNOSE_BATCH = 32  # samples in an inferred batch: "dead for every sample" needs a few dozen


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"weightinit: error: {message} (see `{self.prog} --help`)\n")


def _param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, float(value)
    except ValueError:
        return name, value


def _cmd_gain(args: argparse.Namespace) -> int:
    params = dict(args.param) if args.param else None
    value = gain(args.activation, mode=args.mode, params=params)
    if args.json:
        print(json.dumps({"activation": args.activation, "mode": args.mode,
                          "params": params or {}, "gain": value}), file=args.stdout)
    else:
        print(f"{value:.6f}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo's experiments, write the report folder, print the summary."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..report import save_demo, summary_table
    from ..studies import demo_steps, run_demo

    if args.seed < 0:
        raise InitError(f"`--seed` must be >= 0, got {args.seed}.")
    out = Path(args.out)
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise InitError(f"--out {str(out)!r}: {str(folder)!r} is a file; give a folder "
                            "for the report.")
    start = time.perf_counter()
    err = Console(stderr=True)
    columns = (TextColumn("{task.description:<44}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=args.json) as progress:
        task = progress.add_task("starting", total=demo_steps(args.quick))

        def advance(name: str) -> None:
            progress.update(task, description=name, completed=min(
                progress.tasks[0].completed + 1, demo_steps(args.quick)))

        results = run_demo(seed=args.seed, quick=args.quick, progress=advance)
    paths = save_demo(results, out)
    seconds = time.perf_counter() - start
    if args.json:
        print(Path(paths["results"]).read_text(encoding="utf-8"), file=args.stdout)
        return 0
    Console(width=args.width).print(summary_table(results))
    print(f"report: {paths['index']} (figures and results.json beside it); "
          f"{seconds:.1f} s in all")
    return 0


def _shape(text: str) -> tuple[int, ...]:
    try:
        return parse_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_plan(args: argparse.Namespace) -> int:
    calibrated = args.policy in CALIBRATORS  # data-driven: it must run (on this throwaway model)
    if calibrated and args.input_shape is None:
        raise InitError(f"--policy {args.policy} calibrates on a batch: give --input-shape.")
    model = load_model(args.model)
    inputs = None
    if args.input_shape is not None:
        inputs = (make_input(model, args.input_shape, args.input_dtype),)
    plan = init_model(model, args.policy, seed=args.seed, example_inputs=inputs,
                      dry_run=not calibrated)
    if args.json:
        print(plan.to_json(), file=args.stdout)
        return 0
    from rich.console import Console

    Console(width=args.width).print(plan.table())
    return 0


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    import torch

    from ..model import save_initial

    if args.policy in CALIBRATORS:
        raise InitError(f"--policy {args.policy} calibrates on data, which needs allocated "
                        "weights; a seed checkpoint takes a data-free policy such as auto.")
    with torch.device("meta"):  # the factory allocates nothing
        model = load_model(args.model)
    inputs = None
    if args.input_shape is not None:
        inputs = (make_input(model, args.input_shape, args.input_dtype),)
    plan = save_initial(model, args.out, seed=args.seed, policy=args.policy,
                        example_inputs=inputs)
    written = sum(math.prod(row.shape) for row in plan.rows)
    summary = {"out": str(args.out), "parameters": len(plan.rows), "elements": written,
               "seed": plan.seed, "policy": plan.policy}
    if args.json:
        print(json.dumps(summary), file=args.stdout)
    else:
        print(f"Wrote {len(plan.rows)} parameters ({written:,} values, seed {plan.seed}, policy "
              f"{plan.policy!r}) to {args.out}/model.safetensors, and the plan to "
              f"{args.out}/plan.json.", file=args.stdout)
    return 0


def _init_choices() -> list[str]:
    return ["none", *PRESETS, *CALIBRATORS]


def _diagnose_input(model: Any, args: argparse.Namespace) -> tuple[Any, str | None]:
    """The batch: --input-shape, else the first layer's shape (as init_model synthesizes it)
    with _DIAGNOSE_BATCH samples. Returns (batch, a note saying what was inferred or None)."""
    if args.input_shape is not None:
        return make_input(model, args.input_shape, args.input_dtype), None
    param = next(model.parameters(), None)
    device = param.device if param is not None and param.device.type != "meta" else "cpu"
    synthesized, why = synthesize_input(model, device)
    if synthesized is None:
        raise InitError(f"Cannot infer the input shape: {why}; give --input-shape, e.g. "
                        "--input-shape 32,3,224,224.")
    shape = (_DIAGNOSE_BATCH, *synthesized[0].shape[1:])
    batch = make_input(model, shape, args.input_dtype)
    kind = "token ids" if not batch.is_floating_point() else "N(0,1)"
    return batch, (f"input: {kind} of shape {','.join(map(str, shape))}, inferred from the "
                   "first layer (give --input-shape for your data's shape)")


def _cmd_diagnose(args: argparse.Namespace) -> int:
    from ..diagnose import diagnose

    if args.init is not None:
        choices = _init_choices()
        if args.init not in choices:
            raise InitError(f"--init {args.init!r} is not a policy."
                            f"{did_you_mean(args.init, choices)} Choose one of: "
                            f"{', '.join(choices)}.")
    model = load_model(args.model)
    batch, inferred = _diagnose_input(model, args)
    try:
        if args.init not in (None, "none"):
            init_model(model, args.init, seed=args.seed, example_inputs=(batch,))
        result = diagnose(model, batch)
    except InitError as exc:
        if inferred is None:
            raise
        raise InitError(f"{exc} (The input shape was inferred from the first layer: give "
                        "--input-shape.)") from None
    if args.html is not None:
        path = result.save_html(args.html)
        print(f"HTML report: {path}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(result.to_json(), file=args.stdout)
    else:
        from rich.console import Console

        if inferred is not None:
            print(inferred)
        Console(width=args.width).print(result.table())
        print(_diagnose_summary(result))
    return 1 if result.worst == "error" else 0


def _diagnose_summary(result: Any) -> str:
    count = len(result.findings)
    findings = f"{count} finding{'s' if count != 1 else ''}, worst: {result.worst}"
    if result.healthy:
        return "healthy" + (f" ({findings})" if count else "")
    return findings


def _or_list(items: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b, or c'."""
    if len(items) <= 2:
        return " or ".join(items)
    return f"{', '.join(items[:-1])}, or {items[-1]}"


def _policies_text(calibrates_on: str, *, default: str | None = None) -> str:
    """The policy names a command accepts, read from PRESETS and CALIBRATORS (so when the
    parser is built), e.g. 'auto (default), torch, ..., or lsuv (calibrates on <calibrates_on>)'."""
    names = [f"{name} (default)" if name == default else name for name in PRESETS]
    names += [f"{name} (calibrates on {calibrates_on})" for name in CALIBRATORS]
    return _or_list(names)


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODULE:FACTORY",
                        help="a module on the Python path (or a .py file) and a function in it "
                        "that takes no arguments and returns an nn.Module")


def _add_input(parser: argparse.ArgumentParser, shape_help: str) -> None:
    """--input-shape (`shape_help` says what the batch is and its default) and --input-dtype."""
    parser.add_argument("--input-shape", type=_shape, metavar="DIMS", help=shape_help)
    parser.add_argument("--input-dtype", choices=("auto", "float", "long"), default="auto",
                        help="auto: token ids when the first layer is an Embedding, else N(0,1)")


def _add_seed(parser: argparse.ArgumentParser, seeds: str) -> None:
    parser.add_argument("--seed", type=int, default=0, help=f"seed for {seeds} (default 0)")


def _add_output(parser: argparse.ArgumentParser, json_help: str, *, table: bool = True) -> None:
    """--width (for a command that prints a table) and --json (`json_help` says what it prints;
    main() sends everything else that would go to stdout to stderr)."""
    if table:
        parser.add_argument("--width", type=int, default=None,
                            help="table width (default: terminal)")
    parser.add_argument("--json", action="store_true", help=json_help)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="weightinit",
        description="Initialize neural networks the way the research says, reproducibly.",
    )
    parser.add_argument("--version", action="version", version=f"weightinit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    g = commands.add_parser(
        "gain", help="the variance-preserving gain of an activation",
        description="Print 1/sqrt(E[phi(z)^2]) (forward) or 1/sqrt(E[phi'(z)^2]) (backward), "
        "z ~ N(0, 1), for an activation; 'torch' prints torch.nn.init.calculate_gain's value.",
        epilog=f"Activations: {', '.join(ACTIVATION_NAMES)}.",
    )
    g.add_argument("activation", help="activation name, e.g. gelu, leaky_relu, tanh")
    g.add_argument("--mode", choices=("forward", "backward", "torch"), default="forward")
    g.add_argument("--param", action="append", type=_param, metavar="NAME=VALUE",
                   help="activation parameter, e.g. --param negative_slope=0.2 (repeatable)")
    _add_output(g, "print JSON instead of a number", table=False)
    g.set_defaults(run=_cmd_gain)

    d = commands.add_parser(
        "demo", help=f"show on real data what initialization does (about {_DEMO_SECONDS} s)",
        description="Answer the questions people ask about initialization with measurements "
        "on scikit-learn's digits: why not zeros; what too small and too large weights do to "
        "activations and gradients through 30 layers (ReLU, tanh, GELU; N(0,0.01), N(0,1), "
        "Glorot, He, torch's default, auto, LSUV); whether it matters for learning (a 20-layer "
        "ReLU MLP trained with one recipe under each); and beyond ReLU (GELU's computed gain, "
        "tanh at the mean-field critical point). Writes a report folder: index.html (figures "
        "embedded), the figures as PNG, and results.json. One torch thread; deterministic "
        "for a seed.",
    )
    d.add_argument("--out", default="weightinit-demo",
                   help="the report folder (default ./weightinit-demo)")
    d.add_argument("--quick", action="store_true",
                   help="ReLU only, three initializations trained 12 epochs (about "
                   f"{_DEMO_QUICK_SECONDS} s instead of about {_DEMO_SECONDS} s)")
    _add_seed(d, "the data split, the inits and training")
    _add_output(d, "print results.json instead of the table")
    d.set_defaults(run=_cmd_demo)

    p = commands.add_parser(
        "plan", help="print what init_model would do to every parameter of a model",
        description="Build a model from a factory, discover its dataflow (which activation "
        "feeds each layer, where the residual branches end) with one forward pass, and print "
        "the plan: role, activation, fans, spec and std of every parameter. Nothing is saved.",
        epilog="Examples: weightinit plan mypkg.nets:resnet18 --input-shape 8,3,224,224; "
        "weightinit plan ./net.py:build --policy gpt2 --json",
    )
    _add_model(p)
    _add_input(p, "shape of the example batch, e.g. 8,3,32,32 (default: inferred from the "
               "first Linear, ConvNd or Embedding layer)")
    p.add_argument("--policy", default="auto", help=_policies_text(
        "an N(0,1) batch of --input-shape", default="auto"))
    _add_seed(p, "the keyed streams")
    _add_output(p, "print the plan as JSON")
    p.set_defaults(run=_cmd_plan)

    c = commands.add_parser(
        "checkpoint", help="write a model's initial weights without materializing it",
        description="Build a model from a factory on the meta device (nothing allocated), "
        "plan it as init_model would, and write the initial parameters to OUT/model.safetensors "
        "one tensor at a time (memory: the largest tensor), with the plan in OUT/plan.json. "
        "Loading the file into any sharded layout gives what wi.materialize gives there, bit "
        "for bit. Buffers are not written: the model's own code computes them.",
        epilog="Example: weightinit checkpoint mypkg.llm:build --out seed-ckpt --seed 1",
    )
    _add_model(c)
    c.add_argument("--out", required=True, metavar="DIR", help="the folder to write to")
    _add_input(c, "shape of the example batch (on the meta device) for discovery (default: "
               "inferred from the first Linear, ConvNd or Embedding layer)")
    c.add_argument("--policy", default="auto", help=_or_list(
        [f"{name} (default)" if name == "auto" else name for name in PRESETS]))
    _add_seed(c, "the keyed streams")
    _add_output(c, "print a JSON summary", table=False)
    c.set_defaults(run=_cmd_checkpoint)

    dg = commands.add_parser(
        "diagnose", help="measure signal propagation through a model; exit 1 on an error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a model from a factory, run one forward and one backward pass on a\n"
        "batch (N(0,1) of --input-shape; synthetic loss <output, r>, r ~ N(0,1)), and\n"
        "print per-layer statistics and findings: vanishing or exploding signal, dead\n"
        "units, saturation, symmetry, dead gradients, uninitialized weights, ... each\n"
        "with a fix. The model is diagnosed as the factory built it, or after --init.",
        epilog="exit codes:\n"
        "  0  no finding is an error (warnings are printed but still exit 0)\n"
        "  1  a finding is an error (so it can gate CI), or the input was refused\n"
        "     (bad factory, a forward pass that fails, ...: one line on stderr)\n"
        "  2  usage error (bad arguments)\n\n"
        "examples:\n"
        "  weightinit diagnose mypkg.nets:resnet18 --input-shape 32,3,224,224\n"
        "  weightinit diagnose ./net.py:build --init auto --html report.html\n"
        "  weightinit diagnose ./net.py:build --json > diagnosis.json",
    )
    _add_model(dg)
    _add_input(dg, "shape of the batch, e.g. 32,3,32,32 (default: inferred from the first "
               f"Linear, ConvNd or Embedding layer, with {_DIAGNOSE_BATCH} samples)")
    dg.add_argument("--init", metavar="POLICY", default=None, help="re-initialize with "
                    f"init_model first: {_policies_text('the same batch')}; default none: the "
                    "model as the factory built it")
    _add_seed(dg, "--init's keyed streams")
    dg.add_argument("--html", metavar="PATH",
                    help="also write a self-contained HTML report (needs matplotlib)")
    _add_output(dg, "print the diagnosis as JSON only (the exit code is the same)")
    dg.set_defaults(run=_cmd_diagnose)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: Any = None, line: str | None = None) -> None:
    """The library's warnings as the CLI's own lines on stderr, without a source location."""
    print(f"weightinit: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_usage(sys.stderr)
        print("weightinit: error: a command is required (see `weightinit --help`)",
              file=sys.stderr)
        return 2
    # With --json, stdout carries exactly one JSON document: whatever the user's module prints
    # (at import, in its factory, in forward) goes to stderr instead.
    args.stdout = sys.stdout
    quiet = contextlib.redirect_stdout(sys.stderr) if getattr(args, "json", False) else (
        contextlib.nullcontext())
    try:
        with quiet, warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            code: int = args.run(args)
    except (InitError, OSError, MemoryError, RuntimeError) as exc:
        # Refused input, or a path, a size, a model torch refuses: one line.
        print(f"weightinit: error: {first_line(exc)}", file=sys.stderr)
        return 1
    return code
