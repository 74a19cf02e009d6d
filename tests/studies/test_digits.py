"""The digits data and the training recipe the demo and the LSUV tests share."""

import torch
from torch import nn

from weightinit.studies import RECIPE, load_digits, mlp, train


def test_split_is_seeded_and_standardized_on_train():
    a, b, c = load_digits(), load_digits(), load_digits(seed=1)
    assert a.x_train.shape == (1438, 64) and a.x_test.shape == (359, 64)
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, c.x_test)
    assert sorted(a.y_train.unique().tolist()) == list(range(10))
    spread = a.x_train.std(0)
    used = spread > 0.5  # a few border pixels are constant 0 in the training split
    assert torch.allclose(a.x_train.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(spread[used], torch.ones(int(used.sum())), atol=1e-4)


def test_the_bundled_file_is_scikit_learns_digits():
    from sklearn.datasets import load_digits as sklearn_digits

    from weightinit.studies._digits import _digits_arrays

    pixels, labels = _digits_arrays()
    raw = sklearn_digits()
    assert (pixels == raw.data).all() and (labels == raw.target).all()


def test_mlp_shape():
    model = mlp(20, 64)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert len(linears) == 20 and linears[0].in_features == 64 and linears[-1].out_features == 10
    assert sum(isinstance(m, nn.ReLU) for m in model) == 19


def test_training_is_deterministic_for_a_seed():
    data = load_digits()
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        results.append(train(mlp(3, 32), data, epochs=2))
    assert results[0] == results[1]
    assert len(results[0].losses) == 2 and results[0].losses[1] < results[0].losses[0]
    assert RECIPE == {"epochs": 20, "batch_size": 64, "lr": 0.005, "momentum": 0.9}
