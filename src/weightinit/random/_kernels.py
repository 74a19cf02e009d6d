"""The torch-ops implementation of stream v2 (the reference, and the path on GPUs) and the choice
between it, its torch.compile'd twin and the numba kernel.

Element f is word (f mod 4096) div 1024 of Philox call 1024 (f div 4096) + f mod 1024, whose
counter is (call mod 2**32, call div 2**32, substream, 0) under the key words of (seed, key).
`element_values` computes any elements on their own; `block_values` whole blocks at once (each
call once): the same function of the index, tested equal.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from .._errors import InitError, InitWarning, check_choice
from ._philox import BLOCK, CALLS_PER_BLOCK, philox4x32
from ._transforms import (
    NORMAL,
    TRUNCATED_FAR,
    UNIFORM,
    Params,
    normal_variates,
    standard_variates,
    truncated_variate,
    uniform_variate,
)

Backend = Literal["auto", "numba", "eager", "compiled"]
BACKENDS = ("auto", "numba", "eager", "compiled")
# Elements per torch-ops call: each keeps a few dozen temporaries of its size alive.
CHUNK = 1 << 20
KINDS = ("uniform", "normal", "truncated_normal")


def philox_words(calls: torch.Tensor, key: torch.Tensor, substream: int) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four Philox words (int32) of each call index (int64) under `key`, in `substream`."""
    c0 = (calls & 0xFFFFFFFF).to(torch.int32)
    c1 = (calls >> 32).to(torch.int32)
    c2 = torch.full_like(c0, substream)
    c3 = torch.zeros_like(c0)
    return philox4x32(c0, c1, c2, c3, key[0], key[1])


def element_values(index: torch.Tensor, key: torch.Tensor, substream: int,
                   params: Params) -> torch.Tensor:
    """The standard variates (float32) of the elements at global indices `index` (int64)."""
    position = index & (BLOCK - 1)
    calls = ((index >> 12) << 10) | (position & (CALLS_PER_BLOCK - 1))
    words = philox_words(calls, key, substream)
    return standard_variates(params.code, words, position >> 10, params.standard)


def block_values(first: torch.Tensor, blocks: int, key: torch.Tensor, substream: int,
                 params: Params) -> torch.Tensor:
    """The standard variates (float32) of `blocks` whole blocks from block `first` (a 0-d int64
    tensor), flat in element order."""
    calls = first * CALLS_PER_BLOCK + torch.arange(blocks * CALLS_PER_BLOCK, device=first.device)
    w = philox_words(calls.view(blocks, CALLS_PER_BLOCK), key, substream)
    rows: tuple[torch.Tensor, ...]
    if params.code == NORMAL:
        rows = (*normal_variates(w[0], w[1]), *normal_variates(w[2], w[3]))
    elif params.code == UNIFORM:
        rows = tuple(uniform_variate(word) for word in w)
    else:
        far = params.code == TRUNCATED_FAR
        rows = tuple(truncated_variate(word, params.standard, far) for word in w)
    return torch.stack(rows, dim=1).view(-1)


_COMPILED: dict[str, Callable[..., Any]] = {}
_COMPILE_LOCK = threading.Lock()


def torch_kernel(layout: str, compiled: bool) -> Callable[..., Any]:
    """`element_values` or `block_values`, or its torch.compile'd twin (same bits; the first
    call compiles, tens of seconds on a 2-core machine, and needs a C++ compiler on CPU)."""
    eager = element_values if layout == "element" else block_values
    if not compiled:
        return eager
    with _COMPILE_LOCK:
        fn = _COMPILED.get(layout)
        if fn is None:
            fn = _with_eager_fallback(torch.compile(eager, dynamic=True), eager)
            _COMPILED[layout] = fn
    return fn


def _with_eager_fallback(compiled: Callable[..., Any], eager: Callable[..., Any]) -> Callable[
        ..., Any]:
    """Run the compiled kernel; if compiling fails (no C++ compiler, an unsupported device),
    use the eager one from then on. Both give the same bits, so a fill that switches midway is
    still exact."""
    state = {"failed": False}

    def run(*args: Any) -> Any:
        if not state["failed"]:
            try:
                return compiled(*args)
            except Exception as exc:  # torch raises many types from inductor and its compiler
                state["failed"] = True
                warnings.warn(
                    f"torch.compile of the keyed stream failed ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); using the eager torch ops (same values, slower).",
                    InitWarning, stacklevel=3,
                )
        return eager(*args)
    return run


def choose_backend(backend: Backend, device: torch.device) -> Literal["numba", "eager",
                                                                      "compiled"]:
    """The concrete backend: under "auto", numba on the CPU (eager torch ops if numba cannot be
    imported), eager torch ops elsewhere."""
    check_choice("backend", backend, BACKENDS)
    if backend == "numba" and device.type != "cpu":
        raise InitError(
            f"`backend`='numba' fills CPU tensors; this one is on {device}. Use "
            "backend='auto' (torch ops there, the same values)."
        )
    if backend == "numba" and numba_kernel() is None:
        raise InitError(
            "`backend`='numba' needs numba, which is not importable here: `pip install numba`, "
            "or pass backend='auto' (torch ops, the same values)."
        )
    if backend != "auto":
        return backend
    if device.type == "cpu" and numba_kernel() is not None:
        return "numba"
    return "eager"


_NUMBA: dict[str, Any] = {}
_NUMBA_LOCK = threading.Lock()  # loading numba and choosing its threading layer, once
# One numba fill at a time: the workqueue layer (chosen for fork safety, see `numba_kernel`)
# does not run parallel regions from several threads at once.
_NUMBA_RUN_LOCK = threading.Lock()


def run_numba(out: np.ndarray, starts: np.ndarray, length: int, key: tuple[int, int],
              substream: int, params: Params, affine: tuple[float, ...]) -> None:
    """The numba kernel on float32 `out` (see `_numba.fill`), on as many threads as torch
    uses; the calling thread's numba thread count is left as it was."""
    import numba

    fill = numba_kernel()
    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    standard = np.array(params.standard or (0.0, 0.0, 0.0), dtype=np.float32)
    with _NUMBA_RUN_LOCK:
        previous = numba.get_num_threads()
        numba.set_num_threads(max(1, min(torch.get_num_threads(), most)))
        try:
            fill(out, starts, length, np.uint64(key[0]), np.uint64(key[1]), substream,
                 params.code, standard, np.array(affine, dtype=np.float64))
        finally:
            numba.set_num_threads(previous)


def numba_kernel() -> Any:
    """The numba fill kernel, or None (with one InitWarning) when numba cannot be imported.

    Unless the user chose a layer (NUMBA_THREADING_LAYER, or numba.config.THREADING_LAYER set
    before this), numba's parallel regions then run on its "workqueue" layer: GNU OpenMP
    (numba's default where it is installed) terminates a process forked from one that used it,
    which breaks fork-based multiprocessing and DataLoader workers. Measured on 2 cores,
    workqueue fills at most about 10% slower than OpenMP."""
    with _NUMBA_LOCK:
        return _load_numba()


def _load_numba() -> Any:
    if "fill" not in _NUMBA:
        fill: Any
        try:
            import numba

            config: Any = numba.config
            if "NUMBA_THREADING_LAYER" not in os.environ and config.THREADING_LAYER == "default":
                # Read when numba first starts its threads; a no-op if they already run.
                config.THREADING_LAYER = "workqueue"
            from ._numba import fill
        except ImportError as exc:
            warnings.warn(
                f"numba is not importable ({exc}); keyed fills use torch ops on the CPU (same "
                "values, about 50x slower). `pip install numba` restores the fast kernel.",
                InitWarning, stacklevel=4,
            )
            fill = None
        _NUMBA["fill"] = fill
    return _NUMBA["fill"]
