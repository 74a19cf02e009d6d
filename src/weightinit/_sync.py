"""The process-wide state that library calls borrow, behind one lock.

torch's global generator, Python's `random`, NumPy's legacy global RNG and the `warnings`
filter list belong to the whole process. A probe forward may draw from the generators (a
stochastic layer) and raises warnings that are not the user's; the library forks the first and
silences the second for the length of the call, then puts both back. Two threads doing that at
once would restore each other's state in the wrong order (a generator rewound under a running
forward, an ``ignore`` filter left installed for good), so every such section holds `LOCK`, a
re-entrant lock: library calls from several threads run their probes one at a time, and a
library call made inside another on the same thread does not wait on itself. What this cannot
do: other threads that draw from torch's global generator while a probe runs see it forked
(their draws are rolled back with it), and warning filters they add meanwhile are lost.
"""

from __future__ import annotations

import contextlib
import random
import threading
import warnings
from collections.abc import Iterator, Sequence

import torch

from ._errors import InitError

LOCK = threading.RLock()
WAIT = 600.0
"""Seconds a call waits for another thread's section before it gives up with an InitError
(say a model's forward hands work to a thread that calls weightinit and waits for it: that
thread would otherwise wait for ever)."""


class Busy(InitError):
    """`LOCK` stayed held by another thread for `WAIT` seconds. Code that turns a failed
    probe into a fallback re-raises this one: waiting longer is not a different model."""


@contextlib.contextmanager
def held() -> Iterator[None]:
    """`LOCK`, or `Busy` after `WAIT` seconds held by another thread."""
    if not LOCK.acquire(timeout=WAIT):
        raise Busy(
            f"Waited {WAIT:.0f} s for another thread's weightinit call to finish: calls run "
            "their probes one at a time (they borrow the process's RNG state and warning "
            "filters). If a model's forward waits on a thread that calls weightinit, call it "
            "before or after that forward instead. Nothing was changed.")
    try:
        yield
    finally:
        LOCK.release()


@contextlib.contextmanager
def borrowed_rng(devices: Sequence[int] = ()) -> Iterator[None]:
    """Under `LOCK`: torch's CPU generator (and those of the CUDA `devices`), Python's and
    NumPy's global RNG states, all put back afterwards."""
    with held(), torch.random.fork_rng(devices=list(devices)):
        python = random.getstate()
        try:
            import numpy as np
        except ImportError:  # numpy is optional for torch
            np = None  # type: ignore[assignment]
        numpy = None if np is None else np.random.get_state()  # the user's state
        try:
            yield
        finally:
            random.setstate(python)
            if np is not None and numpy is not None:
                np.random.set_state(numpy)


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Under `LOCK`: warnings raised inside are dropped, and the process's filters are exactly
    as they were afterwards."""
    with held(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
