"""`main`: parse, run a command, and turn whatever goes wrong into one line on stderr and an
exit status: 2 for usage errors, 1 for refused input (the user's code included: an exception,
or a `sys.exit` in it), 130 for Ctrl-C; never a traceback. Everything printed goes through
streams that cannot fail on text their encoding lacks (`SafeStream`)."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .._errors import InitError, first_line
from ._commands import RUN, UsageError, cli_advice
from ._output import safe
from ._parser import build_parser, command_of, join_dashed_values

# What refused input and the machine's limits raise (a path, a size, a model torch refuses);
# anything else is unexpected, and still one line.
_EXPECTED = (InitError, OSError, MemoryError, RuntimeError, ArithmeticError)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: Any = None, line: str | None = None) -> None:
    """The library's warnings as the CLI's own lines on stderr, without a source location."""
    print(f"weightinit: warning: {cli_advice(str(message))}", file=sys.stderr)


def _error(text: str) -> None:
    print(f"weightinit: error: {cli_advice(text)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``weightinit ARGV`` and return its exit status (argparse's own exits, for --help,
    --version and usage errors, raise SystemExit as usual)."""
    words = list(sys.argv[1:] if argv is None else argv)
    with contextlib.redirect_stdout(safe(sys.stdout)), contextlib.redirect_stderr(
            safe(sys.stderr)):
        return _main(words)


def _main(words: list[str]) -> int:
    command = command_of(words)
    try:
        parser, sub = build_parser(command, RUN)
    except InitError as exc:  # the registries could not be read
        _error(first_line(exc))
        return 1
    if sub is not None:
        words = join_dashed_values(sub, words)
    args = parser.parse_args(words)
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
    except UsageError as exc:
        print(f"weightinit: error: {first_line(exc)} (see `weightinit {command} --help`)",
              file=sys.stderr)
        return 2
    except _EXPECTED as exc:
        _error(first_line(exc))
        return 1
    except SystemExit as exc:  # from the user's code where no `user_code` block names it
        _error(f"the model's code called sys.exit({exc.code!r}); the CLI stopped there.")
        return 1
    except KeyboardInterrupt:
        print("weightinit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        _error(f"{first_line(exc)} (unexpected: please report it with the command line)")
        return 1
    return code
