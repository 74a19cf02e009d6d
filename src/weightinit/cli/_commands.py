"""The commands: each is library calls plus printing. torch and the library are imported inside
them, so that `weightinit --help` does not wait on torch."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from .._errors import InitError, did_you_mean, first_line
from ._factory import as_model_call, load_inputs, load_model, make_input, user_code
from ._output import check_output, console, make_parents, remove_created
from ._parser import DIAGNOSE_BATCH
from ._progress import progress_bar, with_progress


class UsageError(InitError):
    """A bad argument the parser could not check (exit 2, as argparse's own)."""


_FORWARD = "The model's forward pass"  # what `user_code` names around library calls
_INPUTS_ADVICE = ("give --inputs MODULE:FUNCTION (any inputs, several included) or "
                  "--input-shape (one tensor)")


def cli_advice(text: str) -> str:
    """The library's Python advice about inputs, in a message or a plan note, as the options
    that do the same here (`example_inputs=` is --inputs or --input-shape)."""
    text = re.sub(r"pass example_inputs=(?:batch)?( to fix this)?", _INPUTS_ADVICE, text)
    return re.sub(r"Pass inputs the model accepts( \(a tuple of positional arguments or a dict "
                  r"of keyword arguments\))?", f"Give inputs the model accepts: {_INPUTS_ADVICE}",
                  text)


def _example_inputs(model: Any, args: argparse.Namespace) -> Any:
    """What --inputs returns (as the library takes it), a batch of --input-shape as a
    one-tuple, or None."""
    if args.inputs is not None:
        return as_model_call(model, load_inputs(args.inputs), args.inputs)
    if args.input_shape is not None:
        return (make_input(model, args.input_shape, args.input_dtype),)
    return None


def _check_inputs(args: argparse.Namespace) -> None:
    if args.inputs is not None and args.input_shape is not None:
        raise UsageError("give --inputs or --input-shape, not both (--inputs returns the "
                         "whole input)")
    if args.inputs is not None and args.input_dtype != "auto":
        raise UsageError("--input-dtype applies to the batch of --input-shape; --inputs "
                         "returns tensors of their own dtype")


def _check_policy(option: str, name: str, choices: list[str]) -> None:
    if name not in choices:
        raise InitError(f"{option} {name!r} is not a policy.{did_you_mean(name, choices)} "
                        f"Choose one of: {', '.join(choices)}.")


def cmd_gain(args: argparse.Namespace) -> int:
    from ..theory import ACTIVATION_NAMES, gain, resolve_activation

    params = dict(args.param) if args.param else None
    try:
        resolve_activation(args.activation)  # the name alone: a usage error if unknown
    except InitError:
        raise UsageError(
            f"`ACTIVATION` {args.activation[:80]!r} is not an activation name."
            f"{did_you_mean(args.activation.strip().lower(), ACTIVATION_NAMES)} Choose one "
            f"of: {', '.join(ACTIVATION_NAMES)}.") from None
    try:
        value = gain(args.activation, mode=args.mode, params=params)
    except ArithmeticError as exc:  # e.g. negative_slope=1e200 squared
        given = " ".join(f"--param {k}={v!r}" for k, v in (params or {}).items())
        raise InitError(f"{given or args.activation}: the gain of {args.activation!r} "
                        f"(--mode {args.mode}) cannot be computed ({first_line(exc)}): a "
                        "parameter is out of range; give a smaller one.") from None
    if args.json:
        print(json.dumps({"activation": args.activation, "mode": args.mode,
                          "params": params or {}, "gain": value}), file=args.stdout)
    else:
        print(f"{value:.6f}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo's experiments, write the report folder, print the summary."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..report import save_demo, summary_table
    from ..studies import demo_steps, run_demo

    out = check_output("--out", args.out, "folder")
    start = time.perf_counter()
    columns = (TextColumn("{task.description:<44}", markup=False), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with Progress(*columns, console=console(None, stderr=True), transient=True,
                  disable=args.json) as progress:
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
    console(args.width).print(summary_table(results))
    print(f"report: {paths['index']} (figures and results.json beside it); "
          f"{seconds:.1f} s in all")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from ..model import CALIBRATORS, PRESETS, InitPlan, init_model

    _check_inputs(args)
    _check_policy("--policy", args.policy, [*PRESETS, *CALIBRATORS])
    calibrated = args.policy in CALIBRATORS  # data-driven: it must run (on this throwaway model)
    if calibrated and args.input_shape is None and args.inputs is None:
        raise InitError(f"--policy {args.policy} calibrates on a batch: give --input-shape "
                        "or --inputs.")
    model = load_model(args.model)
    inputs = _example_inputs(model, args)
    with progress_bar(not args.json) as bar, user_code(_FORWARD):
        plan = init_model(model, args.policy, **with_progress(
            init_model, bar, seed=args.seed, example_inputs=inputs, dry_run=not calibrated))
    if args.json:
        print(plan.to_json(), file=args.stdout)
        return 0
    shown = InitPlan(plan.rows, seed=plan.seed, policy=plan.policy,
                     notes=[cli_advice(note) for note in plan.notes])
    console(args.width).print(shown.table(wide=args.wide))
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    import torch

    from ..model import CALIBRATORS, PRESETS, save_initial

    _check_inputs(args)
    if args.policy in CALIBRATORS:
        raise InitError(f"--policy {args.policy} calibrates on data, which needs allocated "
                        "weights; a seed checkpoint takes a data-free policy such as auto.")
    _check_policy("--policy", args.policy, list(PRESETS))
    out = check_output("--out", args.out, "folder")
    with torch.device("meta"):  # the factory allocates nothing
        model = load_model(args.model)
    inputs = _example_inputs(model, args)
    with progress_bar(not args.json) as bar, user_code(_FORWARD):
        plan = save_initial(model, out, **with_progress(
            save_initial, bar, seed=args.seed, policy=args.policy, example_inputs=inputs))
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


def _diagnose_input(model: Any, args: argparse.Namespace) -> tuple[Any, str | None]:
    """The batch: --inputs, --input-shape, else the first layer's shape (as init_model
    synthesizes it) with DIAGNOSE_BATCH samples. Returns (batch, a note saying what was
    inferred or None)."""
    from ..model import synthesize_input

    given = _example_inputs(model, args)
    if given is not None:
        return given, None
    param = next(model.parameters(), None)
    device = param.device if param is not None and param.device.type != "meta" else "cpu"
    synthesized, why = synthesize_input(model, device)
    if synthesized is None:
        raise InitError(f"Cannot infer the input shape: {why}; give --input-shape, e.g. "
                        "--input-shape 32,3,224,224, or --inputs MODULE:FUNCTION for a model "
                        "with several inputs.")
    shape = (DIAGNOSE_BATCH, *synthesized[0].shape[1:])
    batch = make_input(model, shape, args.input_dtype)
    kind = "token ids" if not batch.is_floating_point() else "N(0,1)"
    return (batch,), (f"input: {kind} of shape {','.join(map(str, shape))}, inferred from the "
                      "first layer (give --input-shape for your data's shape)")


def cmd_diagnose(args: argparse.Namespace) -> int:
    from ..diagnose import diagnose
    from ..model import CALIBRATORS, PRESETS, init_model

    _check_inputs(args)
    if args.init is not None:
        _check_policy("--init", args.init, ["none", *PRESETS, *CALIBRATORS])
    html = None if args.html is None else check_output("--html", args.html, "file")
    model = load_model(args.model)
    batch, inferred = _diagnose_input(model, args)
    try:
        with progress_bar(not args.json) as bar, user_code(_FORWARD):
            if args.init not in (None, "none"):
                init_model(model, args.init, **with_progress(
                    init_model, bar, seed=args.seed, example_inputs=batch))
            result = diagnose(model, batch)
    except InitError as exc:
        if inferred is None:
            raise
        raise InitError(f"{exc} (The input shape was inferred from the first layer: give "
                        "--input-shape, or --inputs.)") from None
    if html is not None:
        created = make_parents(html)
        try:
            path = result.save_html(str(html))
        except BaseException:
            remove_created(created)
            raise
        print(f"HTML report: {path}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(result.to_json(), file=args.stdout)
    else:
        if inferred is not None:
            print(inferred)
        console(args.width).print(result.table())
        print(_diagnose_summary(result))
    return 1 if result.worst == "error" else 0


def _diagnose_summary(result: Any) -> str:
    count = len(result.findings)
    findings = f"{count} finding{'s' if count != 1 else ''}, worst: {result.worst}"
    if result.healthy:
        return "healthy" + (f" ({findings})" if count else "")
    return findings


RUN = {"gain": cmd_gain, "demo": cmd_demo, "plan": cmd_plan, "checkpoint": cmd_checkpoint,
       "diagnose": cmd_diagnose}
