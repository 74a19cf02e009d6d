"""A norm's effective scale, measured by probing its forward: ``y = (c + w) * x_hat`` for the
norms people write (``c = 0``: torch's LayerNorm and RMSNorm; ``c = 1``: Gemma's
``x_hat * (1 + w)``), so `auto` can set w = target - c whatever the class is called."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from .._sync import Busy, quiet_warnings
from ._distributed import is_dtensor
from ._probe import eval_mode, kept_attributes, probe_rng

_MAX_PROBE = 1 << 18  # elements of the probe input at most


def _probe_shape(shape: tuple[int, ...], weight: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the dimensions the norm does not normalize over cut to 2, then 1, until it
    is small. Kept: the trailing dimensions the weight matches (LayerNorm's and RMSNorm's
    features), or else dimension 1 when the weight matches it (BatchNorm's and GroupNorm's
    channels)."""
    dims = list(shape)
    if tuple(dims[len(dims) - len(weight):]) == weight:
        keep = set(range(len(dims) - len(weight), len(dims)))
    else:
        keep = {1} if len(dims) > 1 and weight[:1] == (dims[1],) else set()
    for size in (2, 1):
        for i in range(len(dims)):
            if i not in keep and dims[i] > size and math.prod(dims) > _MAX_PROBE:
                dims[i] = size
    return tuple(dims)


def norm_offset(module: nn.Module, attr: str, input_shape: tuple[int, ...]) -> float | None:
    """c in ``y = (c + w) * x_hat``, from the outputs with w = 0 and w = 1 on a random input of
    `input_shape` (the first dimension cut to keep it small); None when the module cannot be
    probed (meta buffers, sharded state, an input too big) or does not act that way."""
    params = dict(module.named_parameters())
    buffers = dict(module.named_buffers())
    state = {**params, **buffers}
    # Parameters are substituted (so a meta-built model can be probed); buffers are read.
    if not input_shape or any(t.is_meta for t in buffers.values()) or any(
            is_dtensor(t) for t in state.values()):
        return None
    shape = _probe_shape(input_shape, tuple(state[attr].shape))
    if math.prod(shape) > _MAX_PROBE or math.prod(shape) == 0:
        return None
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    try:
        with quiet_warnings(), probe_rng(), kept_attributes(module), eval_mode(module):
            outputs = _outputs(module, attr, x, params, buffers)
    except Busy:
        raise
    except Exception:
        return None
    if outputs is None:
        return None
    base, step = outputs[0], outputs[1] - outputs[0]
    energy = float((step * step).sum())
    if not energy > 0 or not math.isfinite(energy):
        return None
    bend = outputs[2] - outputs[1] - step
    if float((bend * bend).sum()) > 1e-6 * energy:
        return None  # not linear in w (x_hat * exp(w)): no offset to subtract
    offset = float((base * step).sum()) / energy
    residual = float(((base - offset * step) ** 2).sum())
    if residual > 1e-6 * energy * max(1.0, offset * offset):
        return None  # not (c + w) * x_hat
    nearest = round(offset)
    return float(nearest) if abs(offset - nearest) < 1e-6 else offset


def _outputs(module: nn.Module, attr: str, x: torch.Tensor,
             params: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor]
             ) -> list[torch.Tensor] | None:
    """The norm's outputs on `x` with `attr` 0, 1 and 2 (biases 0, other scales 1, buffers
    copied, all in float64); None when it does not return a tensor of `x`'s shape."""
    from torch.func import functional_call

    weight = params.get(attr, buffers.get(attr))
    assert weight is not None
    outputs = []
    for value in (0.0, 1.0, 2.0):
        substituted = {name: t.detach().to("cpu", torch.float64) for name, t in
                       buffers.items()}
        for name, t in params.items():  # biases 0, other scales 1
            fill = 0.0 if name.endswith("bias") else 1.0
            substituted[name] = torch.full(t.shape, fill, dtype=torch.float64)
        substituted[attr] = torch.full(weight.shape, value, dtype=torch.float64)
        with torch.no_grad():
            out = functional_call(module, substituted, (x,))
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            return None
        outputs.append(out.to(torch.float64))
    return outputs
