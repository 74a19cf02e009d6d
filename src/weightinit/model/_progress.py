"""The optional progress callback of `init_model`, `materialize` and `save_initial`.

``progress(done, total, stage)``: `stage` a short lowercase phrase (``"probing"``,
``"filling"``, ``"materializing"``, ``"writing"``), called first with ``done=0`` once `total`
is known, then after each step (a parameter filled), the last call with ``done == total``.
The library never prints; a caller (the CLI) draws the bar. An exception the callback raises
propagates as it is, and the call is abandoned: every call comes before anything is changed
(or, for `save_initial`, before the file is put in place), so the model is as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from .._errors import InitError

Progress = Callable[[int, int, str], None]


def check_progress(progress: object) -> Progress | None:
    """`progress` if it is None or callable, else InitError."""
    if progress is not None and not callable(progress):
        raise InitError(
            f"`progress` must be None or a function progress(done, total, stage), got "
            f"{type(progress).__name__} {progress!r:.60}."
        )
    return progress


def report(progress: Progress | None, done: int, total: int, stage: str) -> None:
    """Call `progress` (when given) with one step."""
    if progress is not None:
        progress(done, total, stage)


def stages(progress: Progress | None, stage: str, total: int) -> Callable[[int], None]:
    """A function ``step(done)`` reporting `stage` out of `total`; it has reported 0 already."""
    report(progress, 0, total, stage)

    def step(done: int) -> None:
        report(progress, done, total, stage)

    return step
