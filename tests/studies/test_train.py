"""train_many: many nets of one architecture trained at once, each exactly as `train` would
(up to the rounding of a batched matmul), each with its own seed; bad input refused with
nothing changed; a diverging net stops without touching the others."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from weightinit._errors import InitError
from weightinit.studies import initialize, load_digits, mlp, train, train_many


@pytest.fixture(scope="module")
def data():
    return load_digits()


def _state(models):
    return [{k: v.clone() for k, v in m.state_dict().items()} for m in models]


def _same(a, b) -> bool:
    return all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
               for x, y in zip(a, b, strict=True))


def test_each_net_trains_as_train_would(data):
    batch = data.x_train[:512]
    models = [initialize(mlp(4, 16), name, batch, seed)
              for name, seed in (("He", 0), ("auto", 1), ("Glorot", 2))]
    alone = [copy.deepcopy(m) for m in models]
    together = train_many(models, data, seeds=[0, 1, 2], epochs=3)
    for model, single, result, seed in zip(models, alone, together, (0, 1, 2), strict=True):
        expected = train(single, data, epochs=3, seed=seed)
        # 3 epochs of a 4-layer net: the batched matmul's rounding (~1e-7) does not grow much;
        # measured: weights within 6e-8, losses within 1e-8 relative.
        assert result.losses == pytest.approx(expected.losses, rel=1e-6)
        assert result.test_loss == pytest.approx(expected.test_loss, rel=1e-5)
        assert result.test_accuracy == expected.test_accuracy
        for p, q in zip(model.parameters(), single.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-5), "the trained weights were not written back"
        assert not model.training  # eval mode afterwards, like train


def test_seeds_are_the_batch_orders(data):
    batch = data.x_train[:512]
    base = initialize(mlp(3, 16), "He", batch, 0)
    a, b, c = (copy.deepcopy(base) for _ in range(3))
    results = train_many([a, b, c], data, seeds=[5, 5, 6], epochs=2)
    assert results[0] == results[1]  # same weights, same seed: the same run
    assert results[0].losses != results[2].losses  # another batch order


def test_a_diverging_net_stops_and_leaves_the_others_alone(data):
    batch = data.x_train[:512]
    healthy = initialize(mlp(4, 16), "He", batch, 0)
    reference = copy.deepcopy(healthy)
    broken = initialize(mlp(4, 16), "He", batch, 1)
    with torch.no_grad():
        for p in broken.parameters():
            p.mul_(1e15)  # logits ~1e60: the loss overflows at once
    bad, good = train_many([broken, healthy], data, seeds=[1, 0], epochs=3)
    [alone] = train_many([reference], data, seeds=[0], epochs=3)
    assert len(bad.losses) == 1 and not math.isfinite(bad.losses[0])
    assert good.losses == pytest.approx(alone.losses, rel=1e-6)
    assert good.test_accuracy == alone.test_accuracy


def _linear_then(module: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 8), module, nn.Linear(8, 10))


@pytest.mark.parametrize(("models", "seeds", "message"), [
    (lambda: [], [], r"`models` is empty"),
    (lambda: [nn.Linear(64, 10)], [0], r"`models\[0\]` is a Linear: train_many trains "
     r"nn.Sequential"),
    (lambda: [mlp(3, 16), mlp(3, 32)], [0, 1], r"`models\[1\]` is not built like"),
    (lambda: [mlp(3, 16), mlp(4, 16)], [0, 1], r"`models\[1\]` is not built like"),
    (lambda: [mlp(3, 16), nn.Linear(64, 10)], [0, 1], r"`models\[1\]` is not built like"),
    (lambda: [nn.Sequential(nn.Linear(64, 10, bias=False))], [0],
     r"`models\[0\]\[0\]` is a Linear without bias"),
    (lambda: [_linear_then(nn.LayerNorm(8))], [0],
     r"`models\[0\]\[1\]` \(LayerNorm\) has parameters or buffers"),
    (lambda: [_linear_then(nn.BatchNorm1d(8, affine=False))], [0],
     r"`models\[0\]\[1\]` \(BatchNorm1d\) has parameters or buffers"),
    (lambda: [nn.Sequential(nn.ReLU())], [0], r"has no Linear layer"),
    (lambda: [mlp(3, 16), mlp(3, 16)], [0], r"`seeds` has 1 entries for 2 models"),
])
def test_bad_input_is_refused_and_nothing_changes(data, models, seeds, message):
    built = models()
    before = _state(built)
    with pytest.raises(InitError, match=message):
        train_many(built, data, seeds=seeds, epochs=1)
    assert _same(before, _state(built))


@pytest.mark.parametrize(("epochs", "batch_size"), [(0, 64), (1, 0)])
def test_bad_epochs_or_batch_size_are_refused(data, epochs, batch_size):
    model = mlp(3, 16)
    before = _state([model])
    with pytest.raises(InitError, match=rf"`epochs` \({epochs}\) and `batch_size` "
                                        rf"\({batch_size}\) must be >= 1"):
        train_many([model], data, seeds=[0], epochs=epochs, batch_size=batch_size)
    assert _same(before, _state([model]))


def test_progress_is_called_once_per_epoch(data):
    seen: list[int] = []
    train_many([mlp(3, 8)], data, seeds=[0], epochs=3, on_epoch=seen.append)
    assert seen == [0, 1, 2]
