"""The schemes: small frozen values, validated when built, filled by `Spec.fill_`."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import ClassVar, Literal

import numpy as np
import torch

from .._errors import InitError, check_choice, check_finite, check_positive_finite
from ..theory import Fans, gain
from ._base import Draw, Kind, Spec, _as_fans

Mode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["normal", "truncated_normal", "uniform"]
_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def _set(spec: Spec, name: str, value: object) -> None:
    object.__setattr__(spec, name, value)  # normalize a field of a frozen dataclass


def _need_ndim(spec: Spec, shape: tuple[int, ...], low: int, form: str) -> None:
    if len(shape) < low:
        raise InitError(
            f"{type(spec).__name__} needs a tensor with at least {low} dims ({form}), got "
            f"shape {shape}."
        )


# --- constants ---------------------------------------------------------------------------------
class _Fixed(Spec):
    """A single value everywhere: std 0 for any fans."""

    def std(self, fans: Fans | None = None) -> float:
        return 0.0


@dataclasses.dataclass(frozen=True)
class Constant(_Fixed):
    """Every element equal to `value`."""

    value: float = 0.0

    def __post_init__(self) -> None:
        _set(self, "value", check_finite("value", self.value))

    def _constant(self) -> float | None:
        return self.value


@dataclasses.dataclass(frozen=True)
class Zeros(_Fixed):
    """All zeros: biases, and residual branches under zero-init (Fixup, ReZero)."""

    def _constant(self) -> float | None:
        return 0.0


@dataclasses.dataclass(frozen=True)
class Ones(_Fixed):
    """All ones: norm scales."""

    def _constant(self) -> float | None:
        return 1.0


# --- one distribution per element --------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Normal(Spec):
    """N(mean, std^2)."""

    std_: float = 1.0
    mean: float = 0.0

    def __init__(self, std: float = 1.0, mean: float = 0.0) -> None:
        _set(self, "std_", check_positive_finite("std", std, allow_zero=True))
        _set(self, "mean", check_finite("mean", mean))

    def __repr__(self) -> str:
        return f"Normal(std={self.std_!r}, mean={self.mean!r})"

    def to_dict(self) -> dict[str, object]:
        return {"type": "Normal", "std": self.std_, "mean": self.mean}

    def std(self, fans: Fans | None = None) -> float:
        return self.std_

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return "normal", (self.mean, self.std_)


@dataclasses.dataclass(frozen=True)
class Uniform(Spec):
    """U(low, high)."""

    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "low", check_finite("low", self.low))
        _set(self, "high", check_finite("high", self.high))
        if not self.low < self.high:
            raise InitError(
                f"`low` (={self.low!r}) must be < `high` (={self.high!r}). For a constant use "
                "Constant(value)."
            )
        if not math.isfinite(self.high - self.low):
            raise InitError(
                f"`high` - `low` (={self.high!r} - {self.low!r}) overflows float64; narrow it."
            )

    def std(self, fans: Fans | None = None) -> float:
        return (self.high - self.low) / math.sqrt(12.0)

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return "uniform", (self.low, self.high)


def truncated_std_factor(a: float, b: float) -> float:
    """c(a, b): the std of a standard normal truncated to [a, b] (c(-2, 2) = 0.8796...).

    The closed form c^2 = 1 + (a phi(a) - b phi(b))/Z - ((phi(a) - phi(b))/Z)^2 cancels
    catastrophically in the tails (Z a difference of numbers near 1) and for narrow intervals
    (c^2 a difference of O(1) terms), so we integrate instead: x = m + h t over the interval
    (m its centre, h its half-width, infinite ends cut 40 sigma past the point nearest 0),
    weight exp(-(x^2 - x0^2)/2) relative to that point x0 so nothing underflows, and
    c = h sqrt(Var(t)), which has no cancellation. 32-point Gauss–Legendre panels at most one
    sigma wide make it exact to rounding.
    """
    nearest = min(max(0.0, a), b)
    lo, hi = max(a, nearest - 40.0), min(b, nearest + 40.0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    panels = max(1, math.ceil(2 * half))
    nodes, weights = np.polynomial.legendre.leggauss(32)
    edges = np.linspace(-1.0, 1.0, panels + 1)
    t = ((edges[:-1] + edges[1:])[:, None] / 2 + (np.diff(edges)[:, None] / 2) * nodes).ravel()
    w = np.broadcast_to(np.diff(edges)[:, None] / 2 * weights, (panels, nodes.size)).ravel()
    x = centre + half * t
    w = w * np.exp(-(x - nearest) * (x + nearest) / 2)
    mass = w.sum()
    mean_t = (w * t).sum() / mass
    return float(half * math.sqrt((w * (t - mean_t) ** 2).sum() / mass))


@dataclasses.dataclass(frozen=True)
class TruncatedNormal(Spec):
    """A normal truncated to [mean + a sigma, mean + b sigma], with `std` the std of the RESULT.

    NOTE: as in Keras and JAX, `a` and `b` are in units of the underlying normal's sigma, and
    sigma = std / c(a, b) (`truncated_std_factor`, 0.8796 for +-2), so the values really have
    std `std`. torch's `trunc_normal_` takes absolute bounds and an untruncated std instead.
    `mean` is the underlying normal's location, the mean of the result when a = -b.
    """

    std_: float = 1.0
    mean: float = 0.0
    a: float = -2.0
    b: float = 2.0

    def __init__(self, std: float = 1.0, mean: float = 0.0, a: float = -2.0,
                 b: float = 2.0) -> None:
        _set(self, "std_", check_positive_finite("std", std, allow_zero=True))
        _set(self, "mean", check_finite("mean", mean))
        _set(self, "a", check_finite("a", a))
        _set(self, "b", check_finite("b", b))
        if not self.a < self.b:
            raise InitError(f"`a` (={self.a!r}) must be < `b` (={self.b!r}).")
        if truncated_std_factor(self.a, self.b) < 1e-6:
            raise InitError(
                f"[`a`, `b`] = [{self.a!r}, {self.b!r}] is too narrow to sample by inverse CDF "
                "(its std factor is below 1e-6); widen it, or use Constant for a fixed value."
            )
        if min(abs(self.a), abs(self.b)) > 37 and self.a * self.b > 0:
            raise InitError(
                f"[`a`, `b`] = [{self.a!r}, {self.b!r}] lies entirely beyond 37 sigma, where "
                "the normal CDF underflows float64; move the interval closer to 0."
            )

    def __repr__(self) -> str:
        return f"TruncatedNormal(std={self.std_!r}, mean={self.mean!r}, a={self.a!r}, b={self.b!r})"

    def to_dict(self) -> dict[str, object]:
        return {"type": "TruncatedNormal", "std": self.std_, "mean": self.mean, "a": self.a,
                "b": self.b}

    @property
    def sigma(self) -> float:
        """The underlying (untruncated) normal's std."""
        return self.std_ / truncated_std_factor(self.a, self.b)

    def std(self, fans: Fans | None = None) -> float:
        return self.std_

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return "truncated_normal", (self.mean, self.sigma, self.a, self.b)


# --- variance scaling: the one fan-based primitive and its presets ------------------------------
def _draw_for(distribution: str, std: float) -> tuple[Kind, tuple[float, ...]]:
    if distribution == "uniform":
        bound = math.sqrt(3.0) * std
        return "uniform", (-bound, bound)
    if distribution == "truncated_normal":
        return "truncated_normal", (0.0, std / truncated_std_factor(-2.0, 2.0), -2.0, 2.0)
    return "normal", (0.0, std)


class _Scaled(Spec):
    """Shared by VarianceScaling and its presets: std = sqrt(scale / n), n chosen by mode."""

    needs_fans: ClassVar[bool] = True

    def _parts(self) -> tuple[float, str, str]:
        raise NotImplementedError

    def std(self, fans: Fans | None = None) -> float:
        if fans is None:
            raise InitError(
                f"{type(self).__name__}.std needs `fans` (e.g. wi.compute_fans(weight.shape))."
            )
        fans = _as_fans(fans)
        scale, mode, _ = self._parts()
        n = {"fan_in": fans.fan_in, "fan_out": fans.fan_out, "fan_avg": fans.fan_avg}[mode]
        if n <= 0:
            raise InitError(f"{type(self).__name__} needs {mode} > 0, got fans {fans}.")
        return math.sqrt(scale / n)

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return _draw_for(self._parts()[2], self.std(fans))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        if len(shape) < 2 and not fans_given:
            raise InitError(
                f"{type(self).__name__} scales by fans, and a tensor of shape {shape} has none "
                "(it needs at least 2 dims: (out, in, ...)). Pass `fans=` explicitly, or use "
                "Zeros/Normal for biases."
            )


@dataclasses.dataclass(frozen=True)
class VarianceScaling(_Scaled):
    r"""Values with variance `scale / n`, n = fan_in, fan_out or their average.

    .. math:: \mathrm{std} = \sqrt{\mathrm{scale} / n}

    The primitive behind He, Glorot and LeCun (as in JAX and Keras). `distribution` is
    ``"normal"``, ``"truncated_normal"`` (at +-2 sigma, std corrected) or ``"uniform"``
    (bound sqrt(3) std).
    """

    scale: float = 1.0
    mode: Mode = "fan_in"
    distribution: Distribution = "truncated_normal"

    def __post_init__(self) -> None:
        _set(self, "scale", check_positive_finite("scale", self.scale))
        check_choice("mode", self.mode, _MODES)
        check_choice("distribution", self.distribution, _DISTRIBUTIONS)

    def _parts(self) -> tuple[float, str, str]:
        return self.scale, self.mode, self.distribution


@dataclasses.dataclass(frozen=True)
class He(_Scaled):
    """He et al., Delving Deep into Rectifiers, 2015 (https://arxiv.org/abs/1502.01852):
    std = gain(activation) / sqrt(fan_in), with the gain computed for any activation
    (`wi.gain`). VarianceScaling(gain**2, mode, distribution)."""

    activation: str = "relu"
    mode: Mode = "fan_in"
    distribution: Distribution = "normal"

    def __post_init__(self) -> None:
        if not isinstance(self.activation, str):
            raise InitError(
                f"`activation` of He must be a name (a spec is a serializable value), got "
                f"{type(self.activation).__name__}. For a module or function use "
                "VarianceScaling(wi.gain(fn) ** 2, 'fan_in', 'normal')."
            )
        gain(self.activation)  # validates the name now, not at the first fill
        check_choice("mode", self.mode, _MODES)
        check_choice("distribution", self.distribution, _DISTRIBUTIONS)

    def _parts(self) -> tuple[float, str, str]:
        return gain(self.activation) ** 2, self.mode, self.distribution


@dataclasses.dataclass(frozen=True)
class Glorot(_Scaled):
    """Glorot & Bengio, Understanding the difficulty of training deep feedforward neural
    networks, 2010: variance gain^2 * 2 / (fan_in + fan_out); uniform bound
    gain * sqrt(6 / (fan_in + fan_out)). VarianceScaling(gain**2, "fan_avg", distribution)."""

    distribution: Distribution = "uniform"
    gain: float = 1.0

    def __post_init__(self) -> None:
        check_choice("distribution", self.distribution, _DISTRIBUTIONS)
        _set(self, "gain", check_positive_finite("gain", self.gain))

    def _parts(self) -> tuple[float, str, str]:
        return self.gain**2, "fan_avg", self.distribution


@dataclasses.dataclass(frozen=True)
class LeCun(_Scaled):
    """LeCun et al., Efficient BackProp, 1998: std = 1 / sqrt(fan_in); the right scale for
    SELU and linear inputs. VarianceScaling(1, "fan_in", distribution). NOTE: JAX and Flax's
    ``lecun_normal`` is LeCun(distribution="truncated_normal")."""

    distribution: Distribution = "normal"

    def __post_init__(self) -> None:
        check_choice("distribution", self.distribution, _DISTRIBUTIONS)

    def _parts(self) -> tuple[float, str, str]:
        return 1.0, "fan_in", self.distribution


Kaiming = He
Xavier = Glorot


# --- joint constructions -------------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """LAPACK's blocked QR is not bit-reproducible across thread counts; run it on one."""
    threads = torch.get_num_threads()
    try:
        if threads != 1:
            torch.set_num_threads(1)
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def _haar_orthogonal(gaussian: torch.Tensor) -> torch.Tensor:
    """Rows (or columns, whichever are fewer) orthonormal; Haar distributed for Gaussian input
    (Mezzadri, How to generate random matrices from the classical compact groups, 2007)."""
    rows, cols = gaussian.shape
    tall = gaussian if rows >= cols else gaussian.T
    with _one_thread():
        q, r = torch.linalg.qr(tall)
    signs = torch.sign(torch.diagonal(r))
    q = q * torch.where(signs == 0, torch.ones_like(signs), signs)
    result: torch.Tensor = q if rows >= cols else q.T
    return result


def _centre_tap(shape: tuple[int, ...]) -> tuple[slice | int, ...]:
    """Index of the (out, in) matrix at the kernel's centre: [:, :, k1 // 2, k2 // 2, ...]."""
    return (slice(None), slice(None), *(k // 2 for k in shape[2:]))


def _matrix_dims(spec: Spec, fans: Fans | tuple[int, ...] | None) -> tuple[int, int, int]:
    """(receptive field, out, in) of the tensor a joint scheme builds, from its plain fans."""
    if fans is None:
        raise InitError(
            f"{type(spec).__name__}.std needs `fans`: wi.compute_fans(shape) of the tensor."
        )
    plain = _as_fans(fans)
    rf = plain.receptive_field
    if min(plain.fan_in, plain.fan_out, rf) <= 0:
        raise InitError(f"{type(spec).__name__}.std needs positive fans, got {plain}.")
    return rf, plain.fan_out // rf, plain.fan_in // rf


def _check_gain(spec: Spec) -> None:
    _set(spec, "gain", check_positive_finite("gain", spec.gain))  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class Orthogonal(Spec):
    """A (semi-)orthogonal matrix times `gain`, trailing dims flattened: W W^T = gain^2 I when
    rows <= cols, W^T W = gain^2 I otherwise (Saxe et al., Exact solutions to the nonlinear
    dynamics of learning in deep linear neural networks, 2013, https://arxiv.org/abs/1312.6120).
    The Gaussian matrix comes from the keyed stream of the whole logical tensor; QR runs in
    float64 on one thread, so the result is bit for bit the same for any thread count or shard
    on one build (LAPACK's QR may differ in the last bit between builds and devices)."""

    gain: float = 1.0
    blocks: int = 1
    """Split dim 0 into this many equal blocks, each (semi-)orthogonal on its own: the
    stacked gates of a recurrent weight, as Flax's per-gate recurrent kernels."""

    def __post_init__(self) -> None:
        _check_gain(self)
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 1:
            raise InitError(f"`blocks` must be a positive int, got {self.blocks!r}.")

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        _need_ndim(self, shape, 2, "(rows, cols, ...)")
        if shape[0] % self.blocks:
            raise InitError(
                f"`blocks` (={self.blocks}) must divide dim 0 of shape {shape}."
            )

    def std(self, fans: Fans | None = None) -> float:
        rf, rows, inp = _matrix_dims(self, fans)
        return self.gain / math.sqrt(max(rows // self.blocks, inp * rf))

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        gaussian = draw("normal", (0.0, 1.0), 0).reshape(self.blocks, shape[0] // self.blocks, -1)
        parts = [_haar_orthogonal(block) for block in gaussian]
        return (self.gain * torch.cat(parts)).reshape(shape)


@dataclasses.dataclass(frozen=True)
class DeltaOrthogonal(Spec):
    """Convolution kernels that are zero except an orthogonal centre tap times `gain` (Xiao et
    al., Dynamical Isometry and a Mean Field Theory of CNNs, 2018,
    https://arxiv.org/abs/1806.05393). Needs out_channels >= in_channels for isometry."""

    gain: float = 1.0

    def __post_init__(self) -> None:
        _check_gain(self)

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        _need_ndim(self, shape, 3, "(out, in, *kernel)")

    def std(self, fans: Fans | None = None) -> float:
        rf, out, inp = _matrix_dims(self, fans)
        energy = self.gain**2 * min(out, inp)  # sum of squares of the centre tap
        total = out * inp * rf
        return math.sqrt(energy / total)

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        tap = _centre_tap(shape)
        gaussian = draw("normal", (0.0, 1.0), 0)[tap]
        full = torch.zeros(shape, dtype=torch.float64, device=gaussian.device)
        full[tap] = self.gain * _haar_orthogonal(gaussian)
        return full


@dataclasses.dataclass(frozen=True)
class Identity(Spec):
    """`gain` times the identity: eye for 2-d weights, Dirac (centre tap) for convolutions, per
    group (torch's ``eye_`` and ``dirac_``)."""

    gain: float = 1.0
    groups: int = 1

    def __post_init__(self) -> None:
        _check_gain(self)
        if isinstance(self.groups, bool) or not isinstance(self.groups, int) or self.groups < 1:
            raise InitError(f"`groups` must be a positive int, got {self.groups!r}.")

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        _need_ndim(self, shape, 2, "(out, in, ...)")
        if shape[0] % self.groups:
            raise InitError(
                f"`groups` (={self.groups}) must divide out_channels (={shape[0]}) of shape "
                f"{shape}."
            )

    def std(self, fans: Fans | None = None) -> float:
        rf, out, inp = _matrix_dims(self, fans)
        if out % self.groups:
            raise InitError(f"`groups` (={self.groups}) must divide out_channels (={out}).")
        ones = self.groups * min(out // self.groups, inp)
        p = ones / (out * inp * rf)  # fraction of entries equal to gain
        return self.gain * math.sqrt(p * (1.0 - p))

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        full = torch.zeros(shape, dtype=torch.float64)
        rows = torch.arange(shape[0])
        cols = rows % (shape[0] // self.groups)  # output d of each group reads input d
        keep = cols < shape[1]
        full[_centre_tap(shape)][rows[keep], cols[keep]] = self.gain
        return full


@dataclasses.dataclass(frozen=True)
class Sparse(Spec):
    """In each column, a fraction `sparsity` of the rows zero and the rest N(0, std^2) (Martens,
    Deep learning via Hessian-free optimization, 2010; torch's ``sparse_``). 2-d only."""

    sparsity: float = 0.9
    std_: float = 0.01

    def __init__(self, sparsity: float = 0.9, std: float = 0.01) -> None:
        value = check_finite("sparsity", sparsity)
        if not 0.0 <= value < 1.0:
            raise InitError(f"`sparsity` must be in [0, 1), got {sparsity!r}.")
        _set(self, "sparsity", value)
        _set(self, "std_", check_positive_finite("std", std))

    def __repr__(self) -> str:
        return f"Sparse(sparsity={self.sparsity!r}, std={self.std_!r})"

    def to_dict(self) -> dict[str, object]:
        return {"type": "Sparse", "sparsity": self.sparsity, "std": self.std_}

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        if len(shape) != 2:
            raise InitError(f"Sparse needs a 2-d (rows, cols) tensor, got shape {shape}.")

    def std(self, fans: Fans | None = None) -> float:
        _, rows, _ = _matrix_dims(self, fans)
        zeros = math.ceil(self.sparsity * rows)
        return self.std_ * math.sqrt(1.0 - zeros / rows)

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        values = draw("normal", (0.0, self.std_), 0)
        order = draw("uniform", (0.0, 1.0), 1).argsort(dim=0, stable=True)
        zeros = math.ceil(self.sparsity * shape[0])
        mask = torch.zeros(shape, dtype=torch.bool, device=values.device)
        mask.scatter_(0, order[:zeros], True)
        result: torch.Tensor = values.masked_fill_(mask, 0.0)
        return result


def _hadamard_block(rows: int, cols: int) -> torch.Tensor:
    """The top-left rows x cols block of a Sylvester Hadamard matrix: (-1)^popcount(i & j),
    built without the full 2^m x 2^m matrix."""
    bits = (torch.arange(rows, dtype=torch.int64)[:, None]
            & torch.arange(cols, dtype=torch.int64)[None, :])
    parity = torch.zeros_like(bits)
    while bool(bits.any()):
        parity ^= bits & 1
        bits >>= 1
    return 1.0 - 2.0 * parity.to(torch.float64)


@dataclasses.dataclass(frozen=True)
class ZerO(Spec):
    """Deterministic init from zeros and ones (Zhao et al., ZerO Initialization: Initializing
    Neural Networks with only Zeros and Ones, 2021, https://arxiv.org/abs/2110.12661,
    Algorithm 1). For a weight mapping n inputs to p outputs: the partial identity when
    p <= n; when p > n, c H_m[:p, :n] with H_m the 2^m Hadamard matrix, m = ceil(log2 p) and
    c = 2^(-(m-1)/2). Convolutions get that matrix at the centre tap."""

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        _need_ndim(self, shape, 2, "(out, in, ...)")

    @staticmethod
    def matrix(out: int, inp: int) -> torch.Tensor:
        """The (out, in) matrix of Algorithm 1, float64."""
        if out <= inp:
            return torch.eye(out, inp, dtype=torch.float64)
        m = math.ceil(math.log2(out))
        scale: float = 2.0 ** (-(m - 1) / 2)
        return scale * _hadamard_block(out, inp)

    def std(self, fans: Fans | None = None) -> float:
        rf, out, inp = _matrix_dims(self, fans)
        block = self.matrix(out, inp)
        count = block.numel() * rf
        mean = float(block.sum()) / count
        return math.sqrt(max(float((block**2).sum()) / count - mean * mean, 0.0))

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        full = torch.zeros(shape, dtype=torch.float64)
        full[_centre_tap(shape)] = self.matrix(shape[0], shape[1])
        return full


@dataclasses.dataclass(frozen=True)
class BlockConstant(Spec):
    """Dim 0 split into ``len(values)`` equal blocks, block i filled with ``values[i]``: the
    bias of stacked recurrent gates, e.g. an LSTM's (input, forget, cell, output) with the
    forget gate at 1 (Jozefowicz et al., An Empirical Exploration of Recurrent Network
    Architectures, 2015)."""

    values: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        values = self.values
        if isinstance(values, (str, bytes)) or not isinstance(values, (tuple, list)) or not values:
            raise InitError(f"`values` must be a non-empty tuple of numbers, got {values!r}.")
        _set(self, "values", tuple(check_finite("values", v) for v in values))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        _need_ndim(self, shape, 1, "(blocks * size, ...)")
        if shape[0] % len(self.values):
            raise InitError(
                f"BlockConstant with {len(self.values)} values needs dim 0 divisible by "
                f"{len(self.values)}, got shape {shape}."
            )

    def std(self, fans: Fans | None = None) -> float:
        return float(np.std(np.asarray(self.values, dtype=np.float64)))

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        block = torch.tensor(self.values, dtype=torch.float64)
        per = shape[0] // len(self.values)
        column = block.repeat_interleave(per).reshape(-1, *([1] * (len(shape) - 1)))
        return column.expand(shape).clone()
