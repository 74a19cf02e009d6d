"""scikit-learn's digits (ships with the package: no download) and the one training recipe the
demo and the tests use to compare initializations."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._errors import InitError


@dataclasses.dataclass(frozen=True)
class Digits:
    """8x8 digit images as 64 standardized features (train statistics), labels 0-9."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(1797 x 64 pixels, labels) from the CSV that ships inside scikit-learn, read without
    importing scikit-learn (about 1.8 s); through sklearn if the file moved."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise InitError(
            "The digits data set comes with scikit-learn: pip install scikit-learn "
            "(or weightinit[demo])."
        )
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if path.is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sklearn_digits

    raw = sklearn_digits()
    return np.asarray(raw.data, dtype=np.float64), np.asarray(raw.target, dtype=np.int64)


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> Digits:
    """The 1797 digits, split by a seeded permutation (a private generator)."""
    pixels, labels = _digits_arrays()
    x = torch.tensor(pixels, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * len(x))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-3)
    x = (x - mean) / std
    return Digits(x[train], y[train], x[test], y[test])


def mlp(depth: int = 20, width: int = 64, activation: Callable[[], nn.Module] = nn.ReLU,
        *, d_in: int = 64, classes: int = 10) -> nn.Sequential:
    """`depth` Linear layers (the last one the classifier), `activation` between them."""
    layers: list[nn.Module] = []
    sizes = [d_in] + [width] * (depth - 1) + [classes]
    for i in range(depth):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(activation())
    return nn.Sequential(*layers)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    test_accuracy: float
    test_loss: float
    losses: tuple[float, ...]  # mean training loss per epoch


EPOCHS, BATCH_SIZE, LR, MOMENTUM = 20, 64, 0.005, 0.9
RECIPE = {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "lr": LR, "momentum": MOMENTUM}
"""SGD with momentum, cross-entropy, no weight decay, no schedule, no normalization: what the
initialization alone does for training. lr 0.005, not 0.01: at 0.01 (an effective step of 0.1
with momentum 0.9) a 20-layer ReLU net now and then diverges (He on seed 1 of 0-4 did), so
single runs said more about the recipe's luck than about the initialization."""


def train(model: nn.Module, data: Digits, *, epochs: int = EPOCHS,
          batch_size: int = BATCH_SIZE, lr: float = LR, momentum: float = MOMENTUM,
          seed: int = 0) -> TrainResult:
    """Train with the demo's recipe; batches shuffled by a private generator (same seed, same
    run). A loss that turns NaN ends training early and is reported as such."""
    generator = torch.Generator().manual_seed(seed)
    # SGD with momentum, written out (torch.optim.SGD's rule with dampening 0: b = m b + g,
    # p -= lr b); torch.optim's first step would import torch._dynamo (about 2 s).
    params = [p for p in model.parameters() if p.requires_grad]
    velocity = [torch.zeros_like(p) for p in params]
    losses: list[float] = []
    model.train()
    n = len(data.x_train)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            loss = F.cross_entropy(model(data.x_train[index]), data.y_train[index])
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, v, g in zip(params, velocity, grads, strict=True):
                    v.mul_(momentum).add_(g)
                    p.sub_(lr * v)
            total += float(loss.detach()) * len(index)
        losses.append(total / n)
        if not torch.isfinite(torch.tensor(losses[-1])):
            break
    model.eval()
    with torch.no_grad():
        logits = model(data.x_test)
        accuracy = float((logits.argmax(1) == data.y_test).float().mean())
        test_loss = float(F.cross_entropy(logits, data.y_test))
    return TrainResult(accuracy, test_loss, tuple(losses))
