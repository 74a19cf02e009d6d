"""The argument parser. `weightinit --help` and `--version` need nothing but this file: a
command's arguments (whose help lists the registered policies and activations, so imports
torch) are added only for the command being run."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import __version__
from ._factory import parse_shape
from ._output import MAX_WIDTH, MIN_WIDTH

# How long `weightinit demo` takes on a 2-core machine, start-up included, as its help texts say
# (measured 2026-12-02 on 2 cores, seeds 0-2: 25.6-32 s, and 11 s with --quick; the README
# quotes the same).
DEMO_SECONDS = 26
DEMO_QUICK_SECONDS = 11  # with --quick

DIAGNOSE_BATCH = 32  # samples in an inferred batch: "dead for every sample" needs a few dozen

COMMANDS = {  # what `weightinit --help` lists
    "gain": "the variance-preserving gain of an activation",
    "demo": f"show on real data what initialization does (about {DEMO_SECONDS} s)",
    "plan": "print what init_model would do to every parameter of a model",
    "checkpoint": "write a model's initial weights without materializing it",
    "diagnose": "measure signal propagation through a model; exit 1 on an error",
}

_OUTPUTS = ("Output paths (--out, --html): missing folders are created; a file where a folder "
            "must be (or a folder where the file must be) is refused before any work starts.")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"weightinit: error: {message} (see `{self.prog} --help`)\n")


def _param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text[:80]!r}")
    try:
        return name, float(value)
    except ValueError:
        return name, value


def _shape(text: str) -> tuple[int, ...]:
    try:
        return parse_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**63:
        raise argparse.ArgumentTypeError(f"expected an int from 0 to 2**63 - 1, got "
                                         f"{text[:40]!r}")
    return seed


def _width(text: str) -> int:
    try:
        width = int(text)
    except ValueError:
        width = 0
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise argparse.ArgumentTypeError(
            f"expected a number of columns from {MIN_WIDTH} to {MAX_WIDTH}, got {text[:40]!r}")
    return width


def or_list(items: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b, or c'."""
    if len(items) <= 2:
        return " or ".join(items)
    return f"{', '.join(items[:-1])}, or {items[-1]}"


def _policies_text(calibrates_on: str, *, default: str | None = None) -> str:
    """The policy names a command accepts, read from PRESETS and CALIBRATORS (so when the
    parser is built), e.g. 'auto (default), torch, ..., or lsuv (calibrates on <calibrates_on>)'."""
    from ..model import CALIBRATORS, PRESETS

    names = [f"{name} (default)" if name == default else name for name in PRESETS]
    names += [f"{name} (calibrates on {calibrates_on})" for name in CALIBRATORS]
    return or_list(names)


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODULE:FACTORY",
                        help="a module on the Python path (or a .py file) and, in it, a "
                        "function that takes no arguments and returns an nn.Module, or an "
                        "nn.Module instance (used as it is)")


def _add_input(parser: argparse.ArgumentParser, shape_help: str, inputs_help: str) -> None:
    """--input-shape (`shape_help` says what the batch is and its default), --input-dtype and
    --inputs (`inputs_help`: what they are used for)."""
    parser.add_argument("--input-shape", type=_shape, metavar="DIMS", help=shape_help)
    parser.add_argument("--input-dtype", choices=("auto", "float", "long"), default="auto",
                        help="auto: token ids when the first layer is an Embedding, else N(0,1)")
    parser.add_argument(
        "--inputs", metavar="MODULE:FUNCTION",
        help=f"{inputs_help}, for models that take several inputs (or other than one N(0,1) "
        "or token tensor): a function, found like MODULE:FACTORY, that takes no arguments "
        "and returns a tuple (positional arguments), a dict (keyword arguments), a tensor, "
        "or (args, kwargs); instead of --input-shape")


def _add_seed(parser: argparse.ArgumentParser, seeds: str) -> None:
    parser.add_argument("--seed", type=_seed, default=0,
                        help=f"seed for {seeds}, 0 to 2**63 - 1 (default 0)")


def _add_output(parser: argparse.ArgumentParser, json_help: str, *, table: bool = True) -> None:
    """--width (for a command that prints a table) and --json (`json_help` says what it prints;
    main() sends everything else that would go to stdout to stderr)."""
    if table:
        parser.add_argument("--width", type=_width, default=None,
                            help=f"table width in columns, {MIN_WIDTH} to {MAX_WIDTH} "
                            "(default: the terminal's, or $COLUMNS)")
    parser.add_argument("--json", action="store_true", help=json_help)


def _gain(g: argparse.ArgumentParser) -> None:
    from ..theory import ACTIVATION_NAMES, activation_parameters

    params = [f"{name}: {', '.join(activation_parameters(name))}" for name in ACTIVATION_NAMES
              if activation_parameters(name)]
    g.description = ("Print 1/sqrt(E[phi(z)^2]) (forward) or 1/sqrt(E[phi'(z)^2]) (backward), "
                     "z ~ N(0, 1), for an activation; 'torch' prints "
                     "torch.nn.init.calculate_gain's value.")
    g.epilog = (f"Activations: {', '.join(ACTIVATION_NAMES)}. Their parameters (--param): "
                f"{'; '.join(params)}. An unknown name is a usage error (exit 2).")
    g.add_argument("activation", metavar="ACTIVATION",
                   help="activation name, e.g. gelu, leaky_relu, tanh (listed below)")
    g.add_argument("--mode", choices=("forward", "backward", "torch"), default="forward")
    g.add_argument("--param", action="append", type=_param, metavar="NAME=VALUE",
                   help="activation parameter, e.g. --param negative_slope=0.2 (repeatable)")
    _add_output(g, "print JSON instead of a number", table=False)


def _demo(d: argparse.ArgumentParser) -> None:
    d.description = (
        "Answer the questions people ask about initialization with measurements "
        "on scikit-learn's digits: why not zeros; what too small and too large weights do to "
        "activations and gradients through 30 layers (ReLU, tanh, GELU; N(0,0.01), N(0,1), "
        "Glorot, He, torch's default, auto, LSUV); whether it matters for learning (a 20-layer "
        "ReLU MLP trained with one recipe under each, on three seeds); and beyond ReLU "
        "(GELU's computed gain, tanh at the mean-field critical point). Writes a report "
        "folder: index.html (figures embedded), the figures as PNG, and results.json. One "
        "torch thread; deterministic for a seed (the seeds are SEED, SEED+1 and SEED+2).")
    d.epilog = _OUTPUTS
    d.add_argument("--out", default="weightinit-demo", metavar="DIR",
                   help="the report folder, created with any missing parents (default "
                   "./weightinit-demo)")
    d.add_argument("--quick", action="store_true",
                   help="ReLU only, three initializations trained 12 epochs on 3 seeds (about "
                   f"{DEMO_QUICK_SECONDS} s instead of about {DEMO_SECONDS} s)")
    _add_seed(d, "the data split, the inits and training")
    _add_output(d, "print results.json instead of the table")


def _plan(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Build a model from a factory, discover its dataflow (which activation "
        "feeds each layer, where the residual branches end) with one forward pass, and print "
        "the plan: role, activation, fans, spec and std of every parameter. Nothing is saved. "
        "The table fits the terminal: narrow terminals get the main columns (parameter, "
        "shape, role, spec, std, rule / note), --wide every column.")
    p.epilog = ("Examples: weightinit plan mypkg.nets:resnet18 --input-shape 8,3,224,224; "
                "weightinit plan ./net.py:build --policy gpt2 --json; "
                "weightinit plan ./net.py:build --inputs ./net.py:example_inputs")
    _add_model(p)
    _add_input(p, "shape of the example batch, e.g. 8,3,32,32 (default: inferred from the "
               "first Linear, ConvNd or Embedding layer)", "the example inputs")
    p.add_argument("--policy", default="auto", help=_policies_text(
        "an N(0,1) batch of --input-shape, or --inputs", default="auto"))
    _add_seed(p, "the keyed streams")
    p.add_argument("--wide", action="store_true",
                   help="every column (layer, activation <- source, residual, fans), "
                   "whatever the width")
    _add_output(p, "print the plan as JSON")


def _checkpoint(c: argparse.ArgumentParser) -> None:
    from ..model import PRESETS

    c.description = (
        "Build a model from a factory on the meta device (nothing allocated), "
        "plan it as init_model would, and write the initial parameters to OUT/model.safetensors "
        "one tensor at a time (memory: the largest tensor), with the plan in OUT/plan.json. "
        "Loading the file into any sharded layout gives what wi.materialize gives there, bit "
        "for bit. Buffers are not written: the model's own code computes them.")
    c.epilog = "Example: weightinit checkpoint mypkg.llm:build --out seed-ckpt --seed 1. " + (
        _OUTPUTS)
    _add_model(c)
    c.add_argument("--out", required=True, metavar="DIR",
                   help="the folder to write to, created with any missing parents")
    _add_input(c, "shape of the example batch (on the meta device) for discovery (default: "
               "inferred from the first Linear, ConvNd or Embedding layer)",
               "the example inputs for discovery")
    c.add_argument("--policy", default="auto", help=or_list(
        [f"{name} (default)" if name == "auto" else name for name in PRESETS]))
    _add_seed(c, "the keyed streams")
    _add_output(c, "print a JSON summary", table=False)


def _diagnose(dg: argparse.ArgumentParser) -> None:
    dg.formatter_class = argparse.RawDescriptionHelpFormatter
    dg.description = (
        "Build a model from a factory, run one forward and one backward pass on a\n"
        "batch (N(0,1) of --input-shape, or --inputs; synthetic loss <output, r>,\n"
        "r ~ N(0,1)), and print per-layer statistics and findings: vanishing or\n"
        "exploding signal, dead units, saturation, symmetry, dead gradients,\n"
        "uninitialized weights, ... each with a fix. The model is diagnosed as the\n"
        "factory built it, or after --init.")
    dg.epilog = (
        "exit codes:\n"
        "  0  no finding is an error (warnings are printed but still exit 0)\n"
        "  1  a finding is an error (so it can gate CI), or the input was refused\n"
        "     (bad factory, a forward pass that fails, ...: one line on stderr)\n"
        "  2  usage error (bad arguments)\n\n"
        "output: --html creates missing folders; a folder given as the file, or a file\n"
        "where a folder must be, is refused before anything runs.\n\n"
        "examples:\n"
        "  weightinit diagnose mypkg.nets:resnet18 --input-shape 32,3,224,224\n"
        "  weightinit diagnose ./net.py:build --init auto --html report.html\n"
        "  weightinit diagnose ./net.py:build --inputs ./net.py:batch\n"
        "  weightinit diagnose ./net.py:build --json > diagnosis.json")
    _add_model(dg)
    _add_input(dg, "shape of the batch, e.g. 32,3,32,32 (default: inferred from the first "
               f"Linear, ConvNd or Embedding layer, with {DIAGNOSE_BATCH} samples)",
               "the batch")
    dg.add_argument("--init", metavar="POLICY", default=None, help="re-initialize with "
                    f"init_model first: {_policies_text('the same batch')}; default none: the "
                    "model as the factory built it")
    _add_seed(dg, "--init's keyed streams")
    dg.add_argument("--html", metavar="PATH",
                    help="also write a self-contained HTML report (needs matplotlib); "
                    "missing folders are created")
    _add_output(dg, "print the diagnosis as JSON only (the exit code is the same)")


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "gain": _gain, "demo": _demo, "plan": _plan, "checkpoint": _checkpoint,
    "diagnose": _diagnose,
}


def command_of(argv: Sequence[str]) -> str | None:
    """The command `argv` runs: its first word that is not an option (the top level takes
    no option with a value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(command: str | None, run: Mapping[str, Callable[[argparse.Namespace], int]]
                 ) -> tuple[Parser, Parser | None]:
    """The parser, with the arguments of `command` only (None: just the list of commands),
    and that command's subparser; `run` maps each command to the function that runs it."""
    parser = Parser(
        prog="weightinit",
        description="Initialize neural networks the way the research says, reproducibly.",
        epilog=f"Errors are one line on stderr: exit 1 for refused input, 2 for usage errors. "
        f"{_OUTPUTS}",
    )
    parser.add_argument("--version", action="version", version=f"weightinit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    chosen = None
    for name, summary in COMMANDS.items():
        sub = commands.add_parser(name, help=summary)
        if name == command:
            _ARGUMENTS[name](sub)
            sub.set_defaults(run=run[name])
            chosen = sub
    return parser, chosen


def join_dashed_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``--input-shape -1,32`` as ``--input-shape=-1,32``: argparse reads a value that starts
    with "-" (and is not a plain negative number) as an option, and says only "expected one
    argument"; joined, the option's own check refuses it with its reason, as it does the
    ``=`` form."""
    takes_value = {option for action in parser._actions if action.option_strings
                   and action.nargs is None for option in action.option_strings}
    known = {option for action in parser._actions for option in action.option_strings}
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            out.extend(argv[i:])
            break
        following = argv[i + 1] if i + 1 < len(argv) else None
        if (word in takes_value and following is not None and following.startswith("-")
                and following != "--" and following.partition("=")[0] not in known):
            out.append(f"{word}={following}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out
