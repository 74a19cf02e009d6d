"""wi.materialize is all or nothing, like init_model: a fill that fails in the middle, or a
dtype no scheme fills, leaves the model on meta exactly as before (the same parameter and buffer
objects, ties kept, nothing allocated kept alive); and the boxes of a sharded parameter are
exactly what torch's DTensor placements give each rank, _StridedShard and uneven sizes
included."""

from __future__ import annotations

import gc
import itertools
import math
import weakref

import model_nets as nets
import pytest
import torch
from torch import nn

import weightinit as wi
from weightinit.model._distributed import local_boxes
from weightinit.studies import gpt

SIZE = {"vocab": 97, "context": 16, "width": 30, "layers": 2, "heads": 3}
FILLED: list[weakref.ref[torch.Tensor]] = []  # every tensor a _Recording spec filled


class _Recording(wi.Normal):
    """A Normal that remembers (weakly) the memory it filled."""

    def fill_(self, tensor, **kwargs):  # type: ignore[no-untyped-def, override]
        FILLED.append(weakref.ref(tensor if tensor._base is None else tensor._base))
        return super().fill_(tensor, **kwargs)


class _Failing(_Recording):
    """A Normal that fails while filling (a custom spec with a bug, or out of memory)."""

    def _distribution(self, fans):  # type: ignore[no-untyped-def]
        raise RuntimeError("device out of memory (simulated)")


def on_meta(factory, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return factory(*args, **kwargs)


def tensors(model: nn.Module) -> dict[str, tuple[torch.Tensor, tuple[int, ...]]]:
    """Every parameter and buffer site (tied ones under each name): the object and shape."""
    named = [*model.named_parameters(remove_duplicate=False),
             *model.named_buffers(remove_duplicate=False)]
    return {name: (t, tuple(t.shape)) for name, t in named}


def assert_as_before(model: nn.Module, before: dict[str, tuple[torch.Tensor, tuple[int, ...]]]
                     ) -> None:
    after = tensors(model)
    assert after.keys() == before.keys()
    for name, (tensor, shape) in before.items():
        assert after[name][0] is tensor and tensor.is_meta and tuple(tensor.shape) == shape, name


def recording_then(failing: str) -> wi.Policy:
    return wi.Policy([wi.Rule(_Failing(0.1), name=failing), wi.Rule(_Recording(0.02))])


@pytest.mark.parametrize(("factory", "failing"), [(nets.Padded, "bn.weight"),
                                                  (lambda: gpt(**SIZE), "blocks.0.fc.weight")],
                         ids=["buffers", "tied"])
def test_a_fill_failing_in_the_middle_leaves_the_model_on_meta(factory, failing):
    model = on_meta(factory)
    before = tensors(model)
    FILLED.clear()
    with pytest.raises(wi.InitError) as info:
        wi.materialize(model, device="cpu", policy=recording_then(failing))
    message = str(info.value)
    assert f"Filling {failing!r}" in message and "out of memory (simulated)" in message
    assert "Nothing was changed" in message
    assert_as_before(model, before)
    if factory is not nets.Padded:
        assert model.head.weight is model.tokens.weight  # the tie is still a tie
    # The parameters filled before the failing one were allocated; nothing keeps them alive,
    # not even the exception (still held here).
    assert len(FILLED) >= 3
    gc.collect()
    assert all(ref() is None for ref in FILLED)
    FILLED.clear()
    wi.materialize(model, device="cpu", seed=3)  # and the model materializes afterwards
    reference = factory()
    wi.init_model(reference, seed=3)
    for name, param in reference.named_parameters():
        assert torch.equal(dict(model.named_parameters())[name], param), name


def test_a_failing_fill_on_an_allocated_model_changes_no_value():
    model = on_meta(nets.Padded)
    wi.materialize(model, device="cpu", seed=0)
    objects = tensors(model)
    before = nets.snapshot(model)
    with pytest.raises(wi.InitError, match=r"Filling 'conv\.weight'.*Nothing was changed"):
        wi.materialize(model, device="cpu", seed=1, policy=recording_then("conv.weight"))
    nets.assert_unchanged(model, before)
    assert all(tensors(model)[name][0] is t for name, (t, _) in objects.items())


def test_a_complex_model_is_refused_before_anything_is_allocated():
    model = on_meta(lambda: nn.Sequential(nn.Linear(4, 6, dtype=torch.complex64), nn.ReLU(),
                                          nn.BatchNorm1d(6), nn.Linear(6, 2)))
    before = tensors(model)
    FILLED.clear()
    with pytest.raises(wi.InitError) as info:
        wi.materialize(model, device="cpu", policy=wi.Policy([wi.Rule(_Recording(0.02))]))
    message = str(info.value)
    assert "'0.weight' (shape (6, 4), dtype torch.complex64)" in message
    assert "'0.bias' (shape (6,), dtype torch.complex64)" in message and "'3." not in message
    assert "fill float16, bfloat16, float32 and float64" in message
    assert "model.to(torch.complex64)" in message and "Nothing was changed" in message
    assert FILLED == []  # refused before any fill (or allocation)
    assert_as_before(model, before)


# --- the boxes of a sharded parameter -----------------------------------------------------------
def _torch_indices(shape, mesh_shape, coordinate, placements) -> torch.Tensor:
    """The global flat indices a rank holds, by torch's own split of each placement."""
    from torch.distributed.tensor import Replicate

    held = torch.arange(math.prod(shape)).view(shape)
    for mesh_dim, placement in enumerate(placements):
        if not isinstance(placement, Replicate):
            shards, _ = placement._split_tensor(held, mesh_shape[mesh_dim], with_padding=False,
                                                contiguous=True)
            held = shards[coordinate[mesh_dim]]
    return held


def _box_indices(shape, mesh_shape, coordinate, placements) -> tuple[torch.Tensor, int]:
    local, boxes = local_boxes(shape, mesh_shape, coordinate, placements)
    held = torch.full(local, -1, dtype=torch.long)
    flat = torch.arange(math.prod(shape)).view(shape)
    for start, offset, size in boxes:
        held[tuple(slice(a, a + n) for a, n in zip(start, size, strict=True))] = flat[
            tuple(slice(o, o + n) for o, n in zip(offset, size, strict=True))]
    return held, len(boxes)


def test_local_boxes_are_torchs_placement_semantics():
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    choices = [Replicate(), Shard(0), Shard(1), _StridedShard(0, split_factor=2),
               _StridedShard(1, split_factor=2), _StridedShard(0, split_factor=3)]
    most = 0
    for shape, mesh_shape in [((10, 14), (2, 2)), ((5, 3), (2, 2)), ((7, 11), (2, 3)),
                              ((13, 4), (4,)), ((1, 2), (2, 2))]:
        for placements in itertools.product(choices, repeat=len(mesh_shape)):
            for coordinate in itertools.product(*map(range, mesh_shape)):
                expected = _torch_indices(shape, mesh_shape, coordinate, placements)
                held, boxes = _box_indices(shape, mesh_shape, coordinate, placements)
                assert torch.equal(held, expected), (shape, placements, coordinate)
                most = max(most, boxes)
    assert most == 6  # e.g. _StridedShard(0, 3) x _StridedShard(1, 2): 3 x 2 boxes


def test_a_parametrized_meta_model_is_refused_before_allocating():
    from torch.nn.utils.parametrizations import weight_norm

    with torch.device("meta"):
        model = nn.Sequential(weight_norm(nn.Linear(8, 16)), nn.ReLU(), nn.Linear(16, 4))
    with pytest.raises(wi.InitError, match=r"'0\.weight' is computed by a parametrization"):
        wi.materialize(model, device="cpu")
    assert all(p.is_meta for p in model.parameters())
