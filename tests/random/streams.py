"""What the keyed-stream tests share (importable as `random_streams`, see tests/conftest.py):
one case per distribution and code path, and a fill with the tests' default seed and key."""

import torch

from weightinit.random import fill_keyed_

DISTS = [
    ("uniform", (-0.5, 1.5)),
    ("normal", (0.25, 2.0)),
    ("truncated_normal", (0.0, 1.0, -2.0, 2.0)),
    ("truncated_normal", (1.0, 0.5, 0.5, 3.0)),  # one-sided, takes the mirrored path
    ("truncated_normal", (0.0, 1.0, -8.0, -5.0)),  # reaches AS 241's far-tail branch
]


def fill(shape, kind, params, **kw):
    out = torch.empty(shape, dtype=kw.pop("dtype", torch.float32))
    return fill_keyed_(out, kind, params, seed=kw.pop("seed", 7), key=kw.pop("key", "w"), **kw)
