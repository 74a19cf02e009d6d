"""Joint constructions: schemes whose values are built over the whole logical tensor at once
(orthogonal, delta-orthogonal, identity, sparse, ZerO, block constants), drawn from the keyed
stream of the whole tensor, so that a shard still gets exactly its slice."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import torch

from .._errors import InitError, check_finite, check_positive_finite, check_positive_int
from ..theory import Fans
from ._base import Draw, Spec, as_fans, need_ndim, normalize


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
            f"{type(spec).__name__}.std_for needs `fans`: wi.compute_fans(shape) of the tensor."
        )
    plain = as_fans(fans)
    rf = plain.receptive_field
    if min(plain.fan_in, plain.fan_out, rf) <= 0:
        raise InitError(f"{type(spec).__name__}.std_for needs positive fans, got {plain}.")
    return rf, plain.fan_out // rf, plain.fan_in // rf


def _need_parts(argument: str, parts: int, shape: tuple[int, ...], dim: str) -> None:
    """InitError unless dim 0 of `shape` splits into `parts` equal parts."""
    if shape[0] % parts:
        raise InitError(f"`{argument}` (={parts}) must divide {dim} of shape {shape}.")


def _check_gain(spec: Spec) -> None:
    normalize(spec, "gain", check_positive_finite("gain", spec.gain))  # type: ignore[attr-defined]


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
        check_positive_int("blocks", self.blocks)

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        need_ndim(self, shape, 2, "(rows, cols, ...)")
        _need_parts("blocks", self.blocks, shape, "dim 0")

    def std_for(self, fans: Fans | None = None) -> float:
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
        need_ndim(self, shape, 3, "(out, in, *kernel)")

    def std_for(self, fans: Fans | None = None) -> float:
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
        check_positive_int("groups", self.groups)

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        need_ndim(self, shape, 2, "(out, in, ...)")
        _need_parts("groups", self.groups, shape, f"out_channels (={shape[0]})")

    def std_for(self, fans: Fans | None = None) -> float:
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
    std: float = 0.01

    def __post_init__(self) -> None:
        value = check_finite("sparsity", self.sparsity)
        if not 0.0 <= value < 1.0:
            raise InitError(f"`sparsity` must be in [0, 1), got {self.sparsity!r}.")
        normalize(self, "sparsity", value)
        normalize(self, "std", check_positive_finite("std", self.std))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        if len(shape) != 2:
            raise InitError(f"Sparse needs a 2-d (rows, cols) tensor, got shape {shape}.")

    def std_for(self, fans: Fans | None = None) -> float:
        _, rows, _ = _matrix_dims(self, fans)
        zeros = math.ceil(self.sparsity * rows)
        return self.std * math.sqrt(1.0 - zeros / rows)

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        values = draw("normal", (0.0, self.std), 0)
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
        need_ndim(self, shape, 2, "(out, in, ...)")

    @staticmethod
    def matrix(out: int, inp: int) -> torch.Tensor:
        """The (out, in) matrix of Algorithm 1, float64."""
        if out <= inp:
            return torch.eye(out, inp, dtype=torch.float64)
        m = math.ceil(math.log2(out))
        scale: float = 2.0 ** (-(m - 1) / 2)
        return scale * _hadamard_block(out, inp)

    def std_for(self, fans: Fans | None = None) -> float:
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
        normalize(self, "values", tuple(check_finite("values", v) for v in values))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        need_ndim(self, shape, 1, "(blocks * size, ...)")
        if shape[0] % len(self.values):
            raise InitError(
                f"BlockConstant with {len(self.values)} values needs dim 0 divisible by "
                f"{len(self.values)}, got shape {shape}."
            )

    def std_for(self, fans: Fans | None = None) -> float:
        return float(np.std(np.asarray(self.values, dtype=np.float64)))

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        block = torch.tensor(self.values, dtype=torch.float64)
        per = shape[0] // len(self.values)
        column = block.repeat_interleave(per).reshape(-1, *([1] * (len(shape) - 1)))
        return column.expand(shape).clone()
