"""The implementations of the stream agree bit for bit: the numba kernel, the torch ops per element
and per block, and the torch ops under torch.compile; on one thread and two; a failing compile
or a missing numba falls back to the torch ops with one warning."""

import shutil
import sys

import pytest
import torch
from random_streams import DISTS, fill

import weightinit as wi
from weightinit.random import _kernels, fill_keyed_

REGIONS = [  # (global shape, region shape, offset)
    ((3, 9000), (3, 9000), (0, 0)),  # long runs with ragged block edges
    ((3, 9000), (2, 7001), (1, 1499)),
    ((300, 101), (100, 33), (17, 60)),  # short runs: a column shard
    ((64, 64), (64, 1), (0, 63)),  # one column
    ((8, 6, 3, 5), (8, 2, 3, 5), (0, 3, 0, 0)),
    ((5,), (3,), (1,)),
    ((1 << 14,), (1 << 14,), (0,)),
]


@pytest.mark.parametrize(("kind", "params"), DISTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_numba_and_torch_ops_give_the_same_bits(kind, params, dtype):
    for global_shape, shape, offset in REGIONS:
        a = fill(shape, kind, params, dtype=dtype, global_shape=global_shape, offset=offset,
                 backend="numba")
        b = fill(shape, kind, params, dtype=dtype, global_shape=global_shape, offset=offset,
                 backend="eager")
        assert torch.equal(a, b), (global_shape, shape, offset)


@pytest.mark.parametrize(("kind", "params"), DISTS)
def test_blocks_and_single_elements_are_one_function_of_the_index(kind, params):
    """The torch ops per block (each Philox call once) and per element (any index on its own)."""
    from weightinit.random._philox import key_tensor
    from weightinit.random._transforms import kernel_params

    p, key = kernel_params(kind, params), key_tensor(7, "w")
    blocks = _kernels.block_values(torch.tensor(2), 3, key, 0, p)
    elements = _kernels.element_values(torch.arange(2 * 4096, 5 * 4096), key, 0, p)
    assert torch.equal(blocks, elements)


@pytest.mark.parametrize(("kind", "params"), DISTS[:3])
def test_numba_thread_count_does_not_change_values(kind, params):
    torch.set_num_threads(1)
    one = fill((1 << 18,), kind, params, backend="numba")
    torch.set_num_threads(2)
    two = fill((1 << 18,), kind, params, backend="numba")
    assert torch.equal(one, two)


def _has_cxx() -> bool:
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


@pytest.mark.slow
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_torch_ops_give_the_same_bits():
    # One distribution per kernel layout keeps the compile (tens of seconds on 2 cores) short;
    # the transforms are shared, and the other kinds are checked eager = numba above.
    shape = ((2 << 12) * 3 + 4099,)
    eager = fill(shape, "truncated_normal", (0.0, 1.0, -2.0, 2.0), backend="eager")
    compiled = fill(shape, "truncated_normal", (0.0, 1.0, -2.0, 2.0), backend="compiled")
    assert torch.equal(eager, compiled)
    region = fill((100, 33), "normal", (0.0, 1.0), backend="compiled", global_shape=(300, 101),
                  offset=(17, 60))
    assert torch.equal(region, fill((300, 101), "normal", (0.0, 1.0))[17:117, 60:93])


def test_a_failing_compile_falls_back_to_the_eager_torch_ops():
    """No C++ compiler, an unsupported device: the compiled kernel raises on its first call;
    the fill continues eagerly (same values) and says so once."""
    def broken(*args):
        raise RuntimeError("no compiler")

    run = _kernels._with_eager_fallback(broken, _kernels.element_values)
    from weightinit.random._philox import key_tensor
    from weightinit.random._transforms import kernel_params

    args = (torch.arange(100), key_tensor(0, "w"), 0, kernel_params("normal", (0.0, 1.0)))
    with pytest.warns(wi.InitWarning, match="eager torch ops"):
        got = run(*args)
    assert torch.equal(got, _kernels.element_values(*args))
    assert torch.equal(run(*args), got)  # no second warning: pytest's default would raise


def test_without_numba_cpu_fills_use_the_torch_ops(monkeypatch):
    expected = fill((50, 3), "normal", (0.0, 1.0))
    monkeypatch.setitem(sys.modules, "weightinit.random._numba", None)  # import fails
    monkeypatch.setattr(_kernels, "_NUMBA", {})
    with pytest.warns(wi.InitWarning, match="numba is not importable"):
        got = fill((50, 3), "normal", (0.0, 1.0))
    assert torch.equal(got, expected)
    assert _kernels.choose_backend("auto", torch.device("cpu")) == "eager"
    with pytest.raises(wi.InitError, match="needs numba"):
        fill((50, 3), "normal", (0.0, 1.0), backend="numba")


def test_auto_is_numba_on_the_cpu_and_torch_ops_elsewhere():
    assert _kernels.choose_backend("auto", torch.device("cpu")) == "numba"
    assert _kernels.choose_backend("auto", torch.device("meta")) == "eager"
    assert _kernels.choose_backend("compiled", torch.device("cpu")) == "compiled"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_same_words_and_floats_within_an_ulp():
    from weightinit.random._philox import key_tensor

    calls = torch.arange(1 << 16, dtype=torch.int64) * 7919
    cpu = _kernels.philox_words(calls, key_tensor(3, "w"), 5)
    gpu = _kernels.philox_words(calls.cuda(), key_tensor(3, "w", "cuda"), 5)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu, strict=True))
    for kind, params in DISTS:
        host = fill((3, 9000), kind, params, backend="numba")
        device = torch.empty(3, 9000, device="cuda")
        fill_keyed_(device, kind, params, seed=7, key="w")
        ulp = torch.finfo(torch.float32).eps * host.abs().clamp(min=torch.finfo().tiny)
        assert ((device.cpu() - host).abs() <= ulp).all(), kind


def test_fills_from_several_python_threads_at_once_give_the_serial_bits():
    import threading

    shapes = [(300, 301), (1 << 16,), (64, 3, 3, 3)] * 3
    expected = [fill(shape, "normal", (0.0, 1.0), key=f"k{i}") for i, shape in enumerate(shapes)]
    got: dict[int, torch.Tensor] = {}

    def work(i: int, shape: tuple[int, ...]) -> None:
        got[i] = fill(shape, "normal", (0.0, 1.0), key=f"k{i}")

    threads = [threading.Thread(target=work, args=(i, shape)) for i, shape in enumerate(shapes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(torch.equal(got[i], expected[i]) for i in range(len(shapes)))
