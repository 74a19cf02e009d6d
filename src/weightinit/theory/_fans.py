"""Fan-in and fan-out from a parameter's logical layout, not from its raw tensor shape."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from .._errors import InitError, check_choice, check_positive_int, show

Layout = Literal["linear", "conv", "conv_transpose", "embedding", "qkv", "experts"]
LAYOUTS: tuple[str, ...] = ("linear", "conv", "conv_transpose", "embedding", "qkv", "experts")


class Fans(NamedTuple):
    """Connections into (`fan_in`) and out of (`fan_out`) one unit, and the kernel size."""

    fan_in: int
    fan_out: int
    receptive_field: int = 1

    @property
    def fan_avg(self) -> float:
        """(fan_in + fan_out) / 2, the fan of Glorot's mode="fan_avg"."""
        return (self.fan_in + self.fan_out) / 2


def _as_shape(shape: object) -> tuple[int, ...]:
    if hasattr(shape, "shape") and not isinstance(shape, (tuple, list)):
        shape = tuple(shape.shape)
    if not isinstance(shape, Iterable):
        raise InitError(f"`shape` must be a sequence of ints, got {show(shape)}.")
    try:
        dims: tuple[object, ...] = tuple(shape)
    except TypeError:
        raise InitError(f"`shape` must be a sequence of ints, got {show(shape)}.") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) < 0:
            raise InitError(f"`shape` must hold non-negative ints, got {show(shape)}.")
    return tuple(int(d) for d in dims)  # type: ignore[call-overload]  # checked just above


def _need(shape: Sequence[int], low: int, layout: str, form: str) -> None:
    if len(shape) < low:
        raise InitError(
            f"`shape` {tuple(shape)} has {len(shape)} dims, but layout {layout!r} needs at "
            f"least {low}: {form}. Fan-based schemes cannot scale a 0-d or 1-d tensor; pass "
            "`fans=` explicitly or use a scheme without fans (Normal, Uniform, Constant)."
        )


def _divide(total: int, groups: int, what: str) -> int:
    if total % groups:
        raise InitError(f"`{what}` (={total}) must be divisible by `groups` (={show(groups)}).")
    return total // groups


def compute_fans(shape: object, layout: Layout = "linear", *, groups: int = 1) -> Fans:
    """Fans of a weight from its logical layout.

    Layouts (weight shapes as PyTorch stores them):

    - ``"linear"``: ``(out, in)``.
    - ``"conv"``: ``(out, in / groups, *kernel)`` for any number of spatial dims. Each output
      sees ``in / groups * k`` inputs and each input feeds ``out / groups * k`` outputs.
      NOTE: torch's ``_calculate_fan_in_and_fan_out`` does not divide fan_out by groups.
    - ``"conv_transpose"``: ``(in, out / groups, *kernel)``: fan_in is ``in / groups * k``,
      fan_out ``out / groups * k`` (stride ignored). NOTE: torch reads dim 1 as the input here,
      which swaps the fans of transposed convolutions.
    - ``"embedding"``: ``(num_embeddings, dim)``, a linear map from a one-hot vector:
      fan_in = num_embeddings, fan_out = dim.
    - ``"qkv"``: ``(3 * d, in)``, packed query/key/value; fans of one block: (in, d).
    - ``"experts"``: ``(experts, out, in)``, one linear per expert: fans of one expert.

    Args:
        shape: a tuple of ints or a tensor.
        layout: one of the above.
        groups: convolution groups (``"conv"`` and ``"conv_transpose"`` only).

    Raises:
        InitError: an unknown layout, a shape with too few dims, or channels not divisible by
            groups.
    """
    dims = _as_shape(shape)
    check_choice("layout", layout, LAYOUTS)
    groups = check_positive_int("groups", groups)
    if groups != 1 and layout not in ("conv", "conv_transpose"):
        raise InitError(
            f"`groups` (={show(groups)}) only applies to conv layouts, not {layout!r}.")
    if layout == "linear":
        _need(dims, 2, layout, "(out, in)")
        if len(dims) != 2:
            raise InitError(
                f"`shape` {dims} is not (out, in); use layout 'conv' or 'experts' for more dims."
            )
        return Fans(dims[1], dims[0])
    if layout == "conv":
        _need(dims, 3, layout, "(out, in/groups, *kernel)")
        rf = math.prod(dims[2:])
        out_per_group = _divide(dims[0], groups, "out_channels")
        return Fans(dims[1] * rf, out_per_group * rf, rf)
    if layout == "conv_transpose":
        _need(dims, 3, layout, "(in, out/groups, *kernel)")
        rf = math.prod(dims[2:])
        in_per_group = _divide(dims[0], groups, "in_channels")
        return Fans(in_per_group * rf, dims[1] * rf, rf)
    if layout == "embedding":
        _need(dims, 2, layout, "(num_embeddings, dim)")
        return Fans(dims[0], math.prod(dims[1:]))
    if layout == "qkv":
        _need(dims, 2, layout, "(3 * d, in)")
        if dims[0] % 3:
            raise InitError(f"`shape` {dims}: packed q/k/v needs dim 0 divisible by 3.")
        return Fans(math.prod(dims[1:]), dims[0] // 3)
    _need(dims, 3, layout, "(experts, out, in)")
    return Fans(math.prod(dims[2:]), dims[1])


def infer_fans(shape: Sequence[int]) -> Fans:
    """The fans a weight of this shape gets when no layout is known: 2-d linear, else conv."""
    dims = _as_shape(shape)
    return compute_fans(dims, "linear" if len(dims) <= 2 else "conv")
