"""Gains for any activation, computed from the activation itself rather than looked up."""

from __future__ import annotations

import math
from typing import Literal

import torch

from .._errors import InitError, check_choice, check_positive_finite
from ._activations import Activation, Params, resolve_activation
from ._quadrature import gaussian_expectation

GainMode = Literal["forward", "backward", "torch"]
_MODES = ("forward", "backward", "torch")


def _values(act: Activation, x: torch.Tensor) -> torch.Tensor:
    try:
        out = act(x)
    except InitError:
        raise
    except Exception as exc:
        raise InitError(
            f"`activation` {act.label} failed on a float64 tensor: {type(exc).__name__}: {exc}. "
            "Pass a function that maps a tensor to a tensor of the same shape."
        ) from exc
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        shape = getattr(out, "shape", type(out).__name__)
        raise InitError(
            f"`activation` {act.label} must return a tensor shaped like its input "
            f"{tuple(x.shape)}, got {shape}."
        )
    if out.dtype != x.dtype:
        # A lower precision turns phi into a staircase (steps of 2**-11 relative for float16)
        # that no quadrature integrates to 1e-15; an integer or bool output is a step function.
        raise InitError(
            f"`activation` {act.label} returned {out.dtype} for a {x.dtype} input: it changes "
            "the dtype, and the gain is computed from phi in float64 (its rounding to a "
            "lower precision is a staircase, not the function). Make it keep its input's "
            "dtype, e.g. drop the cast (`x.half()`) or compute in x's dtype."
        )
    if not torch.isfinite(out).all():
        raise InitError(f"`activation` {act.label} is not finite on the real line (|z| <= 12).")
    return out


def _derivative(act: Activation, x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        z = x.detach().clone().requires_grad_(True)
        y = _values(act, z)
        if not y.requires_grad:
            return torch.zeros_like(x)  # a constant (or detached) function: phi' = 0
        try:
            (grad,) = torch.autograd.grad(y.sum(), z, allow_unused=True)
        except Exception as exc:  # the backward of torch's own functions can fail too
            raise InitError(
                f"`activation` {act.label} has no derivative autograd can compute in float64 "
                f"({type(exc).__name__}: {str(exc)[:200]}): parameters that large (or a "
                "function without a backward) leave mode='backward' undefined."
            ) from None
    if grad is None:
        return torch.zeros_like(x)
    return grad.detach()


def second_moment(activation: object, *, q: float = 1.0, derivative: bool = False,
                  params: Params | None = None) -> float:
    """E[phi(sqrt(q) Z)^2] (or of phi' when `derivative`), Z ~ N(0, 1), by quadrature."""
    act = resolve_activation(activation, params)
    scale = math.sqrt(check_positive_finite("q", q, allow_zero=True))
    fn = _derivative if derivative else _values
    edges = [k / scale for k in act.kinks] if scale > 0 else []
    return gaussian_expectation(lambda z: fn(act, scale * z) ** 2, edges,
                                subject=f"`activation` {act.label}")


def _closed_form(act: Activation) -> float | None:
    """The gain in closed form where phi is piecewise linear through 0 (both modes agree)."""
    if not act.known:
        return None  # a user's function is integrated, whatever it is called
    if act.name == "linear":
        return 1.0
    if act.name == "relu":
        return math.sqrt(2.0)
    if act.name == "leaky_relu":
        slope = dict(act.params)["negative_slope"]
        return math.sqrt(2.0 / (1.0 + slope**2))
    return None


def _torch_gain(act: Activation) -> float:
    supported = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
    if act.name not in supported:
        raise InitError(
            f"`activation` {act.label} has no gain in torch's convention "
            f"(torch.nn.init.calculate_gain knows {', '.join(supported)}). "
            "Use mode='forward' for the gain computed from the activation itself."
        )
    param = dict(act.params).get("negative_slope")
    return float(torch.nn.init.calculate_gain(act.name, param))  # type: ignore[arg-type]


def gain(activation: object = "relu", *, mode: GainMode = "forward",
         params: Params | None = None) -> float:
    r"""The variance-preserving gain of an activation.

    ``forward`` keeps the second moment of pre-activations constant from layer to layer
    (He et al., Delving Deep into Rectifiers, 2015, https://arxiv.org/abs/1502.01852,
    generalized to any activation); ``backward`` does the same for gradients:

    .. math::

        g_{fwd} = \frac{1}{\sqrt{\mathbb{E}[\phi(z)^2]}}, \qquad
        g_{bwd} = \frac{1}{\sqrt{\mathbb{E}[\phi'(z)^2]}}, \qquad z \sim \mathcal{N}(0, 1).

    Closed forms for linear, ReLU and leaky ReLU; adaptive quadrature otherwise (relative
    error ~1e-15, see `weightinit.theory._quadrature`), derivatives by autograd.

    NOTE: this differs from `torch.nn.init.calculate_gain`, a table chosen by other criteria:
    torch gives tanh 5/3 (ours 1.592537), sigmoid 1 (ours 1.846229) and SELU 3/4 (ours 1.0,
    because SELU is built to preserve unit variance). ``mode="torch"`` returns torch's value.

    Args:
        activation: a name (``"relu"``, ``"gelu"``, ``"leaky_relu"``, ...), an ``nn.Module``
            (its parameters are read: LeakyReLU's slope, ELU's alpha, GELU's approximation) or
            any function on tensors.
        mode: ``"forward"``, ``"backward"`` or ``"torch"``.
        params: parameters for a named activation, e.g. ``{"negative_slope": 0.2}``.

    Returns:
        The gain, a float.

    Raises:
        InitError: unknown name or mode, bad parameters, or an activation that is identically
            zero or not finite.

    Example:
        >>> round(wi.gain("gelu"), 6)
        1.53353
    """
    check_choice("mode", mode, _MODES)
    act = resolve_activation(activation, params)
    if mode == "torch" and not act.known:
        raise InitError(
            f"`activation` {act.label} is a user function; torch's calculate_gain only "
            "knows names. Use mode='forward'."
        )
    try:
        closed = _torch_gain(act) if mode == "torch" else _closed_form(act)
    except OverflowError:
        raise InitError(
            f"`activation` {act.label} has parameters too large for a gain: its square "
            "overflows float64. Pass parameters below about 1e150."
        ) from None
    if closed is not None:
        return closed
    moment = second_moment(act, derivative=(mode == "backward"))
    if not moment > 0:
        what = "derivative" if mode == "backward" else "output"
        raise InitError(
            f"`activation` {act.label} has a zero {what} under N(0, 1): no gain can restore "
            "its variance."
        )
    return 1.0 / math.sqrt(moment)
