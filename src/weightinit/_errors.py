"""The one exception family of weightinit, and helpers that make its messages useful."""

from __future__ import annotations

import difflib
import math
import operator
import reprlib
from collections.abc import Iterable


class InitError(ValueError):
    """A bad argument or a state weightinit cannot initialize.

    Every message names the argument and its value, says why it was refused and what to do
    instead. It is a `ValueError`, so code that already catches those keeps working.
    """


class InitWarning(UserWarning):
    """Something was done, but probably not what was meant (for example an empty tensor)."""


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlong = 3, 60, 60, 40
_SHOW.maxdict = _SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxset = 8


def show(value: object) -> str:
    """`value`'s repr for a message, cut short: nested containers to 3 levels and 8 items,
    long strings and ints to about 40-60 characters (``1000000...0000``). It never fails: a
    value whose own repr raises, or recurses too deep, is shown by its type."""
    try:
        return _SHOW.repr(value)
    except Exception:  # RecursionError, a broken __repr__ inside a container, ...
        return f"<{type(value).__name__}>"


def _is_bool(value: object) -> bool:
    """A Python, NumPy or torch bool (a bool is not a count, even where it would index)."""
    return isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


def check_int(argument: str, value: object, *, low: int = 0, high: int | None = None,
              form: str = "") -> int:
    """`value` as an int in [low, high), or InitError naming `argument`.

    Accepts Python ints and anything `operator.index` takes that is not a bool: NumPy
    integers, 0-d integer tensors. `form` describes the valid values in the message (default
    "an int >= low" or "an int in [low, high)")."""
    number: int | None = None
    if not _is_bool(value):
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, RuntimeError):
            number = None
    if number is None or number < low or (high is not None and number >= high):
        want = form or (f"an int >= {low}" if high is None else f"an int in [{low}, {high})")
        raise InitError(f"`{argument}` must be {want}, got {show(value)}.")
    return number


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
            f"`{argument}` must be one of {', '.join(map(repr, options))}, got {show(value)}."
            f"{did_you_mean(str(value), options)}"
        )


def check_positive_finite(argument: str, value: object, *, allow_zero: bool = False) -> float:
    """Return `value` as a float, or raise InitError naming `argument`."""
    number = check_finite(argument, value)
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InitError(f"`{argument}` must be {bound}, got {number!r}.")
    return number


def check_positive_int(argument: str, value: object) -> int:
    """`value` as an int >= 1 (an int or NumPy integer, not a bool), or InitError naming
    `argument`."""
    return check_int(argument, value, low=1, form="a positive int")


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


def check_finite(argument: str, value: object) -> float:
    """Return `value` as a float, or raise InitError when it is not a finite real number."""
    if _is_bool(value):
        raise InitError(f"`{argument}` must be a real number, got the bool {show(value)}.")
    try:
        number = float(value)  # type: ignore[arg-type]  # refused below unless a number
    except OverflowError:  # an int (or Fraction, Decimal) beyond float64
        raise InitError(f"`{argument}` must be finite, got {show(value)} (beyond float64's "
                        "range, about 1.8e308).") from None
    except (TypeError, ValueError, ArithmeticError, RuntimeError):  # RuntimeError: a tensor
        raise InitError(f"`{argument}` must be a real number, got {show(value)}.") from None
    if not math.isfinite(number):
        raise InitError(f"`{argument}` must be finite, got {number!r}.")
    return number
