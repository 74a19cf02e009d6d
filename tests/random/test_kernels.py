"""The fill kernels: the aligned (whole blocks) and general (any element) kernels are one
function of the index, the compiled kernels give the eager bits, and a failing compile falls back
to the eager kernel."""

import pytest
import torch
from random_streams import DISTS, fill

import weightinit as wi


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "params"), DISTS[:3])
def test_compiled_backend_gives_the_same_bits_as_eager(kind, params):
    # Covers the compiled aligned kernel on whole chunks and a partial one, the ragged tail,
    # the compiled general kernel on a region, and 1 and 2 threads. The first call of each
    # kernel compiles (tens of seconds on a 2-core machine; torch caches it on disk).
    shape = ((1 << 20) + 4099,)
    eager = fill(shape, kind, params, backend="eager")
    compiled = fill(shape, kind, params, backend="compiled")
    assert torch.equal(eager, compiled)
    # chunk=64 makes each row its own piece, big enough to use the compiled general kernel.
    region = fill((100, 33), kind, params, backend="compiled", global_shape=(300, 101),
                   offset=(17, 60), chunk=64)
    full = fill((300, 101), kind, params, backend="eager")
    assert torch.equal(region, full[17:117, 60:93])
    torch.set_num_threads(2)
    assert torch.equal(fill(shape, kind, params, backend="compiled"), eager)


@pytest.mark.parametrize(("kind", "params"), DISTS)
def test_aligned_blocks_equal_the_general_per_element_kernel(kind, params):
    """The fast kernel (whole 2048-element blocks, one Philox call and one log per pair) and the
    general one (any element on its own) are the same function of the index."""
    from weightinit.random._kernels import _general_kernel
    from weightinit.random._philox import key_tensor
    from weightinit.random._transforms import kernel_params

    shape = (3, 9000)  # runs long enough for aligned bodies with ragged heads and tails
    full = fill(shape, kind, params, dtype=torch.float64)
    general = torch.empty(1, 27000, dtype=torch.float64)
    _general_kernel(kind)(general, torch.zeros(1, 1, dtype=torch.int64), key_tensor(7, "w"),
                          torch.tensor(0, dtype=torch.int32),
                          torch.tensor(kernel_params(kind, params), dtype=torch.float64))
    assert torch.equal(full.view(-1), general.view(-1))
    for chunk in (1, 2048, 5000):
        assert torch.equal(fill(shape, kind, params, dtype=torch.float64, chunk=chunk), full)
    part = fill((2, 7001), kind, params, dtype=torch.float64, global_shape=shape,
                 offset=(1, 1499))
    assert torch.equal(part, full[1:, 1499:8500])


def test_a_failing_compile_falls_back_to_the_eager_kernel():
    """No C++ compiler, an unsupported device: the compiled kernel raises on its first call;
    the fill continues eagerly (same values) and says so once."""
    from weightinit.random._kernels import _EAGER, _with_eager_fallback

    def broken(*args):
        raise RuntimeError("no compiler")

    run = _with_eager_fallback(broken, "normal", "general")
    out, expected = torch.empty(2, 50), torch.empty(2, 50)
    args = (torch.tensor([[0], [50]]), wi.random._philox.key_tensor(0, "w"),
            torch.tensor(0, dtype=torch.int32), torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.warns(wi.InitWarning, match="eager kernel"):
        run(out, *args)
    _EAGER[("normal", "general")](expected, *args)
    assert torch.equal(out, expected)
