"""A progress bar on stderr for the library's long calls (`init_model`, `save_initial`, ...),
drawn from their ``progress(done, total, stage)`` callback.

The bar appears only once a call has run for `DELAY` seconds (quick calls print nothing), is
transient (erased when done), and is off with --json or when stderr is not a terminal."""

from __future__ import annotations

import contextlib
import inspect
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

DELAY = 1.0
"""Seconds a call runs before its bar is drawn."""

Callback = Callable[[int, int, str], None]


class Bar:
    """The callback: `__call__(done, total, stage)` updates a rich `Progress` on `console`,
    started on the first call after `delay` seconds."""

    def __init__(self, console: Any, delay: float = DELAY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._clock = clock
        self._start = clock()
        self._delay = delay
        # markup=False: a stage (or a parameter name in it) is printed as written.
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                 transient=True)
        self._task: Any = None
        self.started = False

    def __call__(self, done: int, total: int, stage: str) -> None:
        if not self.started:
            if self._clock() - self._start < self._delay:
                return
            self.progress.start()
            self.started = True
        if self._task is None:
            self._task = self.progress.add_task(str(stage), total=total)
        self.progress.update(self._task, description=str(stage), completed=done, total=total)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()


def stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty())


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Callback | None]:
    """A callback drawing the bar on stderr, or None when `enabled` is False or stderr is not
    a terminal; the bar is removed when the block ends, however it ends."""
    if not enabled or not stderr_is_terminal():
        yield None
        return
    from rich.console import Console

    bar = Bar(Console(stderr=True), delay=DELAY)
    try:
        yield bar
    finally:
        bar.stop()


def with_progress(function: Callable[..., Any], callback: Callback | None,
                  **kwargs: Any) -> dict[str, Any]:
    """`kwargs` plus ``progress=callback`` when `function` takes a `progress` argument (and
    a callback is given)."""
    if callback is not None and "progress" in inspect.signature(function).parameters:
        return {**kwargs, "progress": callback}
    return kwargs
