"""Training many small MLPs of one architecture at once, each with its own seed: the demo's
multi-seed comparison at the cost of a few single runs.

Each network keeps its own weights, its own batch order and its own loss; they are stacked
along a leading dimension only so that one batched matmul (`torch.baddbmm`) does the work of
many small ones. The loss that is differentiated is the sum of the networks' own mean losses,
so each network's gradient is exactly its own (no term of one loss depends on another
network). The update is `train`'s: SGD with momentum, b = m b + g, p -= lr b."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from .._errors import InitError
from ._digits import BATCH_SIZE, EPOCHS, LR, MOMENTUM, Digits, TrainResult


def _structure(models: Sequence[nn.Module]) -> list[nn.Module]:
    """The layers of the first model, after checking that every model is an `nn.Sequential` of
    the same layers: Linear layers with a bias and of the same shapes, and parameter-free
    elementwise modules (the activations) between them."""
    if not models:
        raise InitError("`models` is empty: pass at least one network to train.")
    first = models[0]
    if not isinstance(first, nn.Sequential):
        raise InitError(f"`models[0]` is a {type(first).__name__}: train_many trains "
                        "nn.Sequential MLPs (Linear layers and activations), e.g. from mlp().")
    layers = list(first)
    for index, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            if layer.bias is None:
                raise InitError(f"`models[0][{index}]` is a Linear without bias: train_many "
                                "trains Linear layers with a bias, as mlp() builds them.")
        elif any(True for _ in layer.parameters()) or any(True for _ in layer.buffers()):
            raise InitError(f"`models[0][{index}]` ({type(layer).__name__}) has parameters or "
                            "buffers: between the Linear layers only parameter-free "
                            "activations are supported.")
    for k, model in enumerate(models[1:], 1):
        other = list(model) if isinstance(model, nn.Sequential) else None
        same = other is not None and len(other) == len(layers) and all(
            type(a) is type(b) and (not isinstance(a, nn.Linear)
                                    or a.weight.shape == b.weight.shape)
            for a, b in zip(layers, other, strict=True))
        if not same:
            raise InitError(f"`models[{k}]` is not built like `models[0]`: train_many needs "
                            "networks of one architecture (the same layers and shapes).")
    if not any(isinstance(layer, nn.Linear) for layer in layers):
        raise InitError("`models[0]` has no Linear layer: nothing to train.")
    return layers


def train_many(models: Sequence[nn.Module], data: Digits, *, seeds: Sequence[int],
               epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, lr: float = LR,
               momentum: float = MOMENTUM, on_epoch: Callable[[int], None] | None = None
               ) -> list[TrainResult]:
    """Train each of `models` with `train`'s recipe, network k shuffled by `seeds[k]`, and
    write the trained weights back into it; one `TrainResult` per model, in order.
    `on_epoch(e)` is called as epoch e (0-based) starts.

    The same numbers as `train` up to rounding (the batched matmul sums in another order); a
    network whose loss turns non-finite stops updating at the end of that epoch and reports
    the epochs it completed, as `train` does.

    Raises:
        InitError: the models are not nn.Sequential MLPs of one architecture, or `seeds` does
            not give one seed per model.
    """
    layers = _structure(models)
    if len(seeds) != len(models):
        raise InitError(f"`seeds` has {len(seeds)} entries for {len(models)} models: give one "
                        "seed (its batch order) per model.")
    if epochs < 1 or batch_size < 1:
        raise InitError(f"`epochs` ({epochs}) and `batch_size` ({batch_size}) must be >= 1.")
    count = len(models)
    linear_at = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
    stacked: list[torch.Tensor] = []
    with torch.no_grad():
        for i in linear_at:
            for name in ("weight", "bias"):
                values = [getattr(list(m.children())[i], name).detach() for m in models]
                stacked.append(torch.stack(values).clone().requires_grad_(True))
    weights, biases = stacked[0::2], stacked[1::2]

    def forward(x: torch.Tensor) -> torch.Tensor:
        h, j = x, 0
        for layer in layers:
            if isinstance(layer, nn.Linear):
                h = torch.baddbmm(biases[j].unsqueeze(1), h, weights[j].transpose(1, 2))
                j += 1
            else:
                h = layer(h)
        return h

    generators = {s: torch.Generator().manual_seed(int(s)) for s in dict.fromkeys(seeds)}
    velocity = [torch.zeros_like(p) for p in stacked]
    alive = torch.ones(count, dtype=torch.bool)
    losses: list[list[float]] = [[] for _ in models]
    n = len(data.x_train)
    for epoch in range(epochs):
        if on_epoch is not None:
            on_epoch(epoch)
        orders = {s: torch.randperm(n, generator=g) for s, g in generators.items()}
        order = torch.stack([orders[s] for s in seeds])
        total = torch.zeros(count, dtype=torch.float64)
        for start in range(0, n, batch_size):
            index = order[:, start:start + batch_size]
            logits = forward(data.x_train[index])
            labels = data.y_train[index]
            each = F.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                                   reduction="none").view(count, -1).mean(1)
            grads = torch.autograd.grad(each.sum(), stacked)
            with torch.no_grad():
                for p, v, g in zip(stacked, velocity, grads, strict=True):
                    v.mul_(momentum).add_(g)
                    step = lr * v
                    if not bool(alive.all()):
                        shape = (count,) + (1,) * (p.dim() - 1)
                        step = torch.where(alive.view(shape), step, 0.0)
                    p.sub_(step)
            total += each.detach().double() * index.shape[1]
        for k in range(count):
            if alive[k]:
                losses[k].append(float(total[k]) / n)
                if not torch.isfinite(total[k]):
                    alive[k] = False
        if not bool(alive.any()):
            break
    with torch.no_grad():
        logits = forward(data.x_test.expand(count, *data.x_test.shape))
        labels = data.y_test.expand(count, -1)
        accuracy = (logits.argmax(-1) == labels).float().mean(1)
        test_loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                                    reduction="none").view(count, -1).mean(1)
        for k, model in enumerate(models):
            children = list(model.children())
            for j, i in enumerate(linear_at):
                linear = cast(nn.Linear, children[i])  # checked by _structure
                linear.weight.copy_(weights[j][k])
                linear.bias.copy_(biases[j][k])
            model.eval()
    return [TrainResult(float(accuracy[k]), float(test_loss[k]), tuple(losses[k]))
            for k in range(count)]
