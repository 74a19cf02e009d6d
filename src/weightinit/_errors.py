"""The one exception family of weightinit, and helpers that make its messages useful."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable


class InitError(ValueError):
    """A bad argument or a state weightinit cannot initialize.

    Every message names the argument and its value, says why it was refused and what to do
    instead. It is a `ValueError`, so code that already catches those keeps working.
    """


class InitWarning(UserWarning):
    """Something was done, but probably not what was meant (for example an empty tensor)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(argument: str, value: object, choices: Iterable[str]) -> None:
    """Raise InitError naming `argument` unless `value` is one of `choices` (with a close match
    suggested, e.g. 'fanin' -> "Did you mean 'fan_in'?")."""
    options = tuple(choices)
    if value not in options:
        raise InitError(
            f"`{argument}` must be one of {', '.join(map(repr, options))}, got {value!r}."
            f"{did_you_mean(str(value), options)}"
        )


def check_positive_finite(argument: str, value: float, *, allow_zero: bool = False) -> float:
    """Return `value` as a float, or raise InitError naming `argument`."""
    number = check_finite(argument, value)
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InitError(f"`{argument}` must be {bound}, got {number!r}.")
    return number


def check_positive_int(argument: str, value: object) -> int:
    """Return `value` if it is an int >= 1 (not a bool), or raise InitError naming `argument`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InitError(f"`{argument}` must be a positive int, got {value!r}.")
    return value


def first_line(exc: BaseException) -> str:
    """What went wrong in one line: an InitError's own message (it stands alone; any line
    breaks in it become spaces), else ``"TypeError: <the first line of its message>"``."""
    text = str(exc).strip()
    if isinstance(exc, InitError):
        return " ".join(line.strip() for line in text.splitlines() if line.strip())
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def failure(what: str, exc: BaseException | None = None, *, fix: str = "",
            unchanged: str = "Nothing") -> InitError:
    """The InitError for a failure that was caught before anything was written: what failed,
    why (`first_line` of `exc`), what to do, and that nothing changed, always in that order:
    ``"Filling 'fc.weight' failed: RuntimeError: boom. <fix> No parameter was changed."``

    Args:
        what: what failed, e.g. ``"The forward pass on `batch`"``; "failed" is added when
            `exc` is given.
        exc: the exception caught, if any.
        fix: what to do instead (a sentence).
        unchanged: the subject of "... was changed.": ``"Nothing"``, ``"No parameter"``.
    """
    parts = [f"{what} failed: {first_line(exc).rstrip('.')}." if exc is not None
             else what.rstrip(".") + "."]
    if fix:
        parts.append(fix.rstrip(".") + ".")
    parts.append(f"{unchanged} was changed.")
    return InitError(" ".join(parts))


def check_finite(argument: str, value: float) -> float:
    """Return `value` as a float, or raise InitError when it is not a finite real number."""
    if isinstance(value, bool):
        raise InitError(f"`{argument}` must be a real number, got the bool {value!r}.")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float64
        raise InitError(f"`{argument}` must be finite, got {str(value)[:40]}... (an int "
                        "beyond float64's range).") from None
    except (TypeError, ValueError):
        raise InitError(f"`{argument}` must be a real number, got {value!r}.") from None
    if not math.isfinite(number):
        raise InitError(f"`{argument}` must be finite, got {number!r}.")
    return number
