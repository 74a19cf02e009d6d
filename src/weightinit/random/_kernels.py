"""The fill kernels and the choice between their eager and compiled forms.

Layout: elements come in pairs that share one Philox4x32-10 call (128 bits), in blocks of
2048 consecutive elements: the first 1024 take the first half of pairs 1024 b .. 1024 b + 1023,
the next 1024 the second half of the same pairs. So element f belongs to pair
p = 1024 (f div 2048) + (f mod 1024), half h = (f mod 2048) div 1024, and pair p is
Philox4x32-10 of the counter (p mod 2**32, p div 2**32, substream, 0) under the key words of
(seed, key). Half 0 reads words (w0, w1), half 1 (w2, w3); a normal pair reads all four.

The aligned kernel computes each Philox call and each logarithm once for two contiguous runs
of outputs; the general kernel computes any single element with the same operations, for the
unaligned edges of a region. Each has a torch.compile'd twin that gives the same bits.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, Literal

import torch

from .._errors import InitWarning, check_choice
from ._philox import philox4x32
from ._transforms import HALVES, normal_pair, pair_values

Backend = Literal["auto", "eager", "compiled"]
KernelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]
AlignedFn = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.dtype],
                     tuple[torch.Tensor, torch.Tensor]]

PAIRS_PER_BLOCK = 1024
BLOCK = 2 * PAIRS_PER_BLOCK  # elements per block: first halves of 1024 pairs, then second halves
# Elements per kernel call. Eager kernels keep dozens of temporaries alive, so they take 2**20
# (a working set of ~100 MB); compiled kernels keep none and amortize their launch over 2**22.
CHUNK = 1 << 20
COMPILED_CHUNK = 1 << 22
# A first compile costs 20-50 s on a 2-core machine (then torch's disk cache cuts it to a few);
# the eager kernels fill a normal at about 7 Melem/s on one thread and 14-20 on two (measured
# 2026-12-01), so compiling pays off from about 2**28 elements of keyed work.
COMPILE_THRESHOLD = 1 << 28
KINDS = ("uniform", "normal", "truncated_normal")
_KERNEL_KINDS = (*KINDS, "truncated_near")


def philox_words(pairs: torch.Tensor, key: torch.Tensor, substream: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four Philox words of each pair index (int64) under `key`, in `substream`."""
    c0 = (pairs & 0xFFFFFFFF).to(torch.int32)
    c1 = (pairs >> 32).to(torch.int32)
    c2 = torch.zeros_like(c0) + substream
    c3 = torch.zeros_like(c0)
    return philox4x32(c0, c1, c2, c3, key[0], key[1])


def _aligned_kernel(kind: str) -> AlignedFn:
    """Whole blocks from pair `start` (shape (1, 1)): the (blocks, 1024) first and second halves,
    in `dtype`. Returning them (rather than writing into strided views of the output) lets
    inductor emit one vectorized loop; the caller copies them into place."""
    def kernel(blocks: int, start: torch.Tensor, key: torch.Tensor, substream: torch.Tensor,
               affine: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        count = blocks * PAIRS_PER_BLOCK
        pairs = (start.view(1) + torch.arange(count, dtype=torch.int64, device=start.device))
        words = philox_words(pairs.view(blocks, PAIRS_PER_BLOCK), key, substream)
        first, second = pair_values(kind, words, affine)
        return first.to(dtype), second.to(dtype)
    return kernel


def _general_kernel(kind: str) -> KernelFn:
    """Any elements: `out` is (rows, L); `starts` (rows, 1) the global index of each row."""
    def kernel(out: torch.Tensor, starts: torch.Tensor, key: torch.Tensor,
               substream: torch.Tensor, affine: torch.Tensor) -> None:
        index = starts + torch.arange(out.shape[-1], dtype=torch.int64, device=out.device)
        pairs = ((index >> 11) << 10) | (index & (PAIRS_PER_BLOCK - 1))
        second = ((index >> 10) & 1) == 1
        w = philox_words(pairs, key, substream)
        if kind == "normal":
            first_value, second_value = normal_pair(w, affine)
            out.copy_(torch.where(second, second_value, first_value))
        else:
            hi = torch.where(second, w[2], w[0])
            lo = torch.where(second, w[3], w[1])
            out.copy_(HALVES[kind](hi, lo, affine))
    return kernel


_EAGER: dict[tuple[str, str], Callable[..., Any]] = {
    **{(kind, "aligned"): _aligned_kernel(kind) for kind in _KERNEL_KINDS},
    **{(kind, "general"): _general_kernel(kind) for kind in _KERNEL_KINDS},
}
_COMPILED: dict[tuple[str, str], Callable[..., Any]] = {}


def kernel(kind: str, layout: str, compiled: bool) -> Callable[..., Any]:
    """The eager kernel, or its torch.compile'd twin (same bits), built on first use: tens of
    seconds on a 2-core machine, then cached by torch on disk."""
    if not compiled:
        return _EAGER[(kind, layout)]
    fn = _COMPILED.get((kind, layout))
    if fn is None:
        fn = _with_eager_fallback(torch.compile(_EAGER[(kind, layout)], dynamic=True,
                                                fullgraph=True), kind, layout)
        _COMPILED[(kind, layout)] = fn
    return fn


def _with_eager_fallback(compiled: Callable[..., Any], kind: str, layout: str) -> Callable[
        ..., Any]:
    """Run the compiled kernel; if compiling fails (no C++ compiler, an unsupported device),
    use the eager kernel from then on. Both give the same bits, so a fill that switches
    midway is still exact."""
    eager = _EAGER[(kind, layout)]
    state = {"failed": False}

    def run(*args: Any) -> Any:
        if not state["failed"]:
            try:
                return compiled(*args)
            except Exception as exc:  # torch raises many types from inductor and its compiler
                state["failed"] = True
                warnings.warn(
                    f"torch.compile of the keyed {kind} kernel failed ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); using the eager kernel (same values, slower).",
                    InitWarning, stacklevel=3,
                )
        return eager(*args)
    return run


WARM_MINIMUM = 1 << 14
"""Under "auto", tensors of at least this many elements use a kernel this process has already
compiled (a compiled call costs microseconds; an eager one milliseconds per 2**14 elements)."""


_WARM: set[tuple[str, torch.dtype, str]] = set()  # (kernel kind, dtype, device type) compiled


def mark_warm(kind: str, dtype: torch.dtype, device: str) -> None:
    """Record that this process has run the compiled `kind` kernel for `dtype` on `device`."""
    _WARM.add((kind, dtype, device))


def choose_backend(backend: Backend, numel: int, kind: str | None = None,
                   dtype: torch.dtype | None = None, device: str = "cpu") -> Literal[
        "eager", "compiled"]:
    """The concrete backend for `numel` elements of `kind` (a kernel kind) in `dtype`."""
    check_choice("backend", backend, ("auto", "eager", "compiled"))
    if backend != "auto":
        return backend
    setting = os.environ.get("WEIGHTINIT_COMPILE", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return "eager"
    if setting in ("1", "true", "yes", "on"):
        return "compiled"
    if numel >= COMPILE_THRESHOLD:
        return "compiled"
    warm = (kind, dtype, device) in _WARM
    return "compiled" if warm and numel >= WARM_MINIMUM else "eager"
