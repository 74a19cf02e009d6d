"""init_model from several threads at once: each call gives the bits it gives alone, and the
process-wide state it borrows (torch's, Python's and NumPy's global RNGs, the warnings filters)
is exactly as before once the threads are joined.

What is guaranteed, and what is not (see weightinit._sync): library calls take one re-entrant
lock around every section that borrows process state (the probe forward, a norm's probe, a
parametrization's right_inverse, a module's buffer recomputation), so they never restore each
other's state in the wrong order, and a forward's draws from torch's generator come from a
fixed seed on a forked generator: plans and values do not depend on the interleaving of
library calls. The lock cannot make torch's global generator, or the warnings filters, safe
for code that does not take it: a thread of the user's drawing from the global generator while
another thread's probe runs advances the probe's seeded generator (a plan that measures a
forward which itself draws noise can then differ) and has those draws rolled back with the
probe's fork (it may see repeated values); its warnings raised in that window are silenced.
Concurrent user code should draw from its own ``torch.Generator``.
"""

from __future__ import annotations

import copy
import random
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

import weightinit as wi

N_THREADS = 4


class Noisy(nn.Module):
    """A stochastic forward: noise from torch's global generator, in eval mode too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x)) * (1 + torch.rand(x.shape[0], 16))
        return self.fc2(torch.nn.functional.dropout(h, 0.3, self.training))


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 50, width: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.attn = nn.MultiheadAttention(width, 2, dropout=0.1, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 32), nn.GELU(), nn.Dropout(0.1),
                                 nn.Linear(32, width))
        self.head = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        x = x + self.attn(x, x, x, need_weights=False)[0]
        x = x + self.mlp(self.norm(x))
        return self.head(x)


def _models() -> list[tuple[str, nn.Module, object, list[str] | None]]:
    """(name, model, example inputs, `only`): built here, in one thread, from fixed seeds."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 4))
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 2))
    generator = torch.Generator().manual_seed(1)
    return [
        ("mlp", mlp, None, None),
        ("conv", conv, (torch.randn(2, 3, 12, 12, generator=generator),), None),
        ("transformer", TinyTransformer(), (torch.randint(0, 50, (2, 7), generator=generator),),
         None),
        # `only` measures fc2's input: the forward's noise enters the plan's std.
        ("noisy", Noisy(), (torch.randn(5, 8, generator=generator),), ["fc2.weight"]),
    ]


def _run(model: nn.Module, inputs: object, only: list[str] | None, seed: int
         ) -> tuple[dict[str, Any], dict[str, Any], dict[str, torch.Tensor]]:
    dry = wi.init_model(model, seed=seed, example_inputs=inputs, dry_run=True, only=only)
    plan = wi.init_model(model, seed=seed, example_inputs=inputs, only=only)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return dry.to_dict(), plan.to_dict(), state


def _process_state() -> tuple[Any, ...]:
    return (torch.get_rng_state(), random.getstate(), np.random.get_state(),  # noqa: NPY002
            list(warnings.filters))


def _assert_same_process_state(before: tuple[Any, ...]) -> None:
    torch_state, python, numpy, filters = _process_state()
    assert torch.equal(torch_state, before[0])
    assert python == before[1]
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
               for a, b in zip(numpy, before[2], strict=True))
    assert filters == before[3]


def _in_threads(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run `jobs` on one thread each, released together; their results, or raise the first
    exception one of them raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            results[index] = jobs[index]()
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_init_model_gives_the_sequential_bits_and_restores_process_state():
    models = _models()
    assert len(models) == N_THREADS
    alone = [_run(copy.deepcopy(m), inputs, only, seed=7) for _, m, inputs, only in models]
    torch.manual_seed(11)
    random.seed(11)
    np.random.seed(11)  # noqa: NPY002 (the legacy global state is what must be kept)
    warnings.simplefilter("default", DeprecationWarning)  # a filter of the user's own
    try:
        before = _process_state()
        for _ in range(2):  # two rounds: the threads meet in different places
            copies = [(copy.deepcopy(m), inputs, only) for _, m, inputs, only in models]
            together = _in_threads([
                lambda m=m, i=i, o=o: _run(m, i, o, seed=7) for m, i, o in copies])
            for (name, *_), mine, reference in zip(models, together, alone, strict=True):
                assert mine[0] == reference[0], f"{name}: dry-run plan"
                assert mine[1] == reference[1], f"{name}: plan"
                for key, value in reference[2].items():
                    assert torch.equal(mine[2][key], value), f"{name}: {key}"
        _assert_same_process_state(before)
    finally:
        warnings.filters.pop(0)


def test_a_forward_drawing_from_the_global_generator_beside_another_thread_drawing():
    # What is promised: a plan that does not measure (no `only`) is the sequential one bit for
    # bit, a measuring plan is filled exactly as it says, neither thread fails, and nothing is
    # left holding the lock. What is not: the drawing thread's values, and a measured std when
    # the forward itself draws noise: while the probe holds the forked, seeded generator, the
    # other thread's draws advance it too (the noise the probe sees differs), and they are
    # rolled back with the fork afterwards (that thread may see repeats).
    _, model, inputs, only = _models()[3]
    plain = _run(copy.deepcopy(model), inputs, None, seed=3)
    measured = _run(copy.deepcopy(model), inputs, only, seed=3)
    stop = threading.Event()
    drawn: list[float] = []

    def draw() -> None:
        while not stop.is_set():
            drawn.append(float(torch.rand(())))

    def initialize() -> Any:
        try:
            return [(_run(copy.deepcopy(model), inputs, None, seed=3),
                     _run(copy.deepcopy(model), inputs, only, seed=3)) for _ in range(3)]
        finally:
            stop.set()

    runs, _ = _in_threads([initialize, draw])
    for run, run_measured in runs:
        assert run[0] == plain[0] and run[1] == plain[1]
        for key, value in plain[2].items():
            assert torch.equal(run[2][key], value), key
        rows = [(r["name"], r["role"], r["rule"]) for r in run_measured[1]["rows"]]
        assert rows == [(r["name"], r["role"], r["rule"]) for r in measured[1]["rows"]]
        again = copy.deepcopy(model)
        wi.InitPlan.from_dict(run_measured[1]).apply(again)
        for key, value in again.state_dict().items():
            assert torch.equal(run_measured[2][key], value), key
    assert drawn and all(0.0 <= x < 1.0 for x in drawn)
    from weightinit._sync import LOCK

    assert LOCK.acquire(blocking=False)  # nothing left holding the lock
    LOCK.release()


def test_a_call_waiting_on_another_threads_probe_gives_up_with_an_init_error(monkeypatch):
    """A forward that waits on a thread calling weightinit would deadlock on the shared lock:
    the waiting call gives up after `_sync.WAIT` seconds with an InitError, model unchanged."""
    import threading

    from weightinit import _sync

    monkeypatch.setattr(_sync, "WAIT", 0.2)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    before = [p.detach().clone() for p in model.parameters()]
    errors: list[BaseException] = []

    def other() -> None:
        try:
            wi.init_model(model)
        except BaseException as exc:
            errors.append(exc)

    with _sync.LOCK:  # this thread is inside a weightinit section (a probe's forward)
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], wi.InitError)
    assert "one at a time" in str(errors[0]) and "Nothing was changed" in str(errors[0])
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
