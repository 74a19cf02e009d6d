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

from .._errors import InitError, check_finite, check_positive_finite, check_positive_int, show
from .._sync import held
from ..theory import Fans
from ._base import Draw, Source, Spec, as_fans, need_ndim, normalize

_CHUNK = 1 << 18  # elements per step where a construction works in pieces (memory, not values)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """LAPACK's blocked QR is not bit-reproducible across thread counts; run it on one. The
    thread count is the process's: under `_sync.LOCK`, so that two threads doing this at once do
    not restore each other's count in the wrong order (leaving the process on one thread)."""
    with held():
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
    q.mul_(torch.where(signs == 0, torch.ones_like(signs), signs))  # in place: q is QR's own
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
    if plain.fan_in % rf or plain.fan_out % rf:
        raise InitError(
            f"{type(spec).__name__}.std_for needs the plain fans of an (out, in, *kernel) "
            f"tensor, whose fan_in and fan_out are multiples of receptive_field; got {plain}. "
            "wi.compute_fans(shape, 'conv') gives them."
        )
    return rf, plain.fan_out // rf, plain.fan_in // rf


def _need_parts(argument: str, parts: int, shape: tuple[int, ...], dim: str) -> None:
    """InitError unless dim 0 of `shape` splits into `parts` equal parts."""
    if shape[0] % parts:
        raise InitError(f"`{argument}` (={show(parts)}) must divide {dim} of shape {shape}.")


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
        normalize(self, "blocks", check_positive_int("blocks", self.blocks))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        need_ndim(self, shape, 2, "(rows, cols, ...)")
        _need_parts("blocks", self.blocks, shape, "dim 0")

    def std_for(self, fans: Fans | None = None) -> float:
        rf, rows, inp = _matrix_dims(self, fans)
        return self.gain / math.sqrt(max(rows // self.blocks, inp * rf))

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        # Each block's orthogonal factor overwrites its Gaussian block: besides the tensor
        # only one block's QR is held at a time.
        gaussian = draw("normal", (0.0, 1.0), 0)
        for block in gaussian.view(self.blocks, shape[0] // self.blocks, -1):
            block.copy_(_haar_orthogonal(block))
        return gaussian.mul_(self.gain)


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
        total = out * inp * rf
        energy = self.gain * self.gain * min(out, inp)  # sum of squares of the centre tap
        if math.isfinite(energy):
            return math.sqrt(energy / total)
        return self.gain * math.sqrt(min(out, inp) / total)  # a gain beyond 1e154

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        tap = _centre_tap(shape)
        full = draw("normal", (0.0, 1.0), 0)
        gaussian = full[tap].clone()
        full.zero_()  # the draw's memory becomes the result
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
        normalize(self, "groups", check_positive_int("groups", self.groups))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        need_ndim(self, shape, 2, "(out, in, ...)")
        _need_parts("groups", self.groups, shape, f"out_channels (={shape[0]})")

    def std_for(self, fans: Fans | None = None) -> float:
        rf, out, inp = _matrix_dims(self, fans)
        if out % self.groups:
            raise InitError(f"`groups` (={show(self.groups)}) must divide out_channels (={out}).")
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
            raise InitError(f"`sparsity` must be in [0, 1), got {show(self.sparsity)}.")
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
        # Column j keeps all but its `zeros` rows of smallest u[:, j] (ties by row, as a
        # stable argsort orders them), u from substream 1: selected column block by column
        # block, so no sort of the whole matrix and no index tensor of its size. Keyed, u is
        # drawn one block at a time (in float32, exact for uniform(0, 1)).
        rows, cols = shape
        zeros = math.ceil(self.sparsity * rows)
        width = max(1, _CHUNK // rows)
        if isinstance(draw, Source) and draw.keyed:
            mask = torch.zeros(shape, dtype=torch.bool, device=draw.device)
            if zeros:
                for c in range(0, cols, width):
                    n = min(width, cols - c)
                    u = draw.region("uniform", (0.0, 1.0), 1, (0, c), (rows, n), torch.float32)
                    mask[:, c:c + n] = _smallest_per_column(u, zeros)
            values = draw("normal", (0.0, self.std), 0)
        else:  # a generator: the draws in the order they always had, so the same values
            values = draw("normal", (0.0, self.std), 0)
            u = draw("uniform", (0.0, 1.0), 1)
            mask = torch.zeros(shape, dtype=torch.bool, device=values.device)
            if zeros:
                for c in range(0, cols, width):
                    mask[:, c:c + width] = _smallest_per_column(u[:, c:c + width], zeros)
            del u
        result: torch.Tensor = values.masked_fill_(mask, 0.0)
        return result


def _smallest_per_column(u: torch.Tensor, k: int) -> torch.Tensor:
    """The bool mask of the `k` >= 1 smallest entries of each column of `u` (rows, n), ties
    broken by row index: ``u.argsort(dim=0, stable=True)[:k]`` as a mask, found by selection."""
    columns = u.T.contiguous()  # (n, rows): each column's values contiguous
    kth = torch.kthvalue(columns, k, dim=1, keepdim=True).values
    below = columns < kth
    need = k - below.sum(dim=1, keepdim=True)  # how many of the entries equal to kth go
    tied = columns == kth
    chosen = below | (tied & (tied.cumsum(dim=1) <= need))
    return chosen.T


def _hadamard_rows(first: int, rows: int, cols: int) -> torch.Tensor:
    """Rows [first, first + rows) of the top-left block, `cols` wide, of a Sylvester Hadamard
    matrix: (-1)^popcount(i & j), without the full 2^m x 2^m matrix."""
    bits = (torch.arange(first, first + rows, dtype=torch.int64)[:, None]
            & torch.arange(cols, dtype=torch.int64)[None, :])
    for shift in (32, 16, 8, 4, 2, 1):  # fold the parity of all bits into bit 0
        bits ^= bits >> shift
    return bits.bitwise_and_(1).to(torch.float64).mul_(-2.0).add_(1.0)  # exact: +-1


def _hadamard_sum(rows: int, cols: int) -> int:
    """The sum of the top-left rows x cols block of a Sylvester Hadamard matrix, exactly.

    With k half the order of the smallest Sylvester matrix holding the block, H_2k =
    [[H_k, H_k], [H_k, -H_k]], and any block of H_k that is k wide or k tall sums to k (only
    its first row or column is not balanced): so one smaller block is left at each level."""
    if rows == 0 or cols == 0:
        return 0
    sign, total = 1, 0
    while max(rows, cols) > 1:
        k = 1 << (max(rows, cols) - 1).bit_length() - 1
        if rows > k and cols > k:  # three full quadrants, and -H_k's block
            total += sign * 3 * k
            sign, rows, cols = -sign, rows - k, cols - k
        elif rows > k:
            total, rows = total + sign * k, rows - k
        else:
            total, cols = total + sign * k, cols - k
        if rows == 0 or cols == 0:
            return total
    return total + sign  # the 1 x 1 block H_1 = [1]


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
    def _scale(out: int) -> float:
        """c = 2^(-(m-1)/2), m = ceil(log2 out), for out > in."""
        m = (out - 1).bit_length()  # ceil(log2(out)) for out >= 2, exact for any size
        return float(2.0 ** (-(m - 1) / 2))

    @staticmethod
    def matrix(out: int, inp: int) -> torch.Tensor:
        """The (out, in) matrix of Algorithm 1, float64."""
        result = torch.zeros(out, inp, dtype=torch.float64)
        ZerO._write(result)
        return result

    @staticmethod
    def _write(target: torch.Tensor) -> None:
        """Write the matrix of Algorithm 1 into the zeroed (out, in) float64 `target`, a few
        rows at a time (the working memory stays small, whatever the size)."""
        out, inp = target.shape
        if out <= inp:
            target.diagonal().fill_(1.0)
            return
        scale = ZerO._scale(out)
        step = max(1, _CHUNK // max(inp, 1))
        for first in range(0, out, step):
            rows = min(step, out - first)
            target[first:first + rows] = _hadamard_rows(first, rows, inp).mul_(scale)

    def std_for(self, fans: Fans | None = None) -> float:
        # In closed form: a partial identity has min(out, in) = out ones; c H has out * in
        # entries +-c, each squared c^2 = 2^-(m-1), and sums to c times `_hadamard_sum`.
        rf, out, inp = _matrix_dims(self, fans)
        count = out * inp * rf
        if out <= inp:
            mean = mean_square = out / count
        else:
            scale = self._scale(out)
            mean = scale * (_hadamard_sum(out, inp) / count)
            mean_square = scale * scale / rf
        return math.sqrt(max(mean_square - mean * mean, 0.0))

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        full = torch.zeros(shape, dtype=torch.float64)
        self._write(full[_centre_tap(shape)])
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
            raise InitError(f"`values` must be a non-empty tuple of numbers, got {show(values)}.")
        normalize(self, "values", tuple(check_finite("values", v) for v in values))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        need_ndim(self, shape, 1, "(blocks * size, ...)")
        if shape[0] % len(self.values):
            raise InitError(
                f"BlockConstant with {len(self.values)} values needs dim 0 divisible by "
                f"{len(self.values)}, got shape {shape}."
            )

    def std_for(self, fans: Fans | None = None) -> float:
        # Scaled by a power of two (exact) so that no square overflows float64.
        values = np.asarray(self.values, dtype=np.float64)
        largest = float(np.abs(values).max())
        if largest == 0.0:
            return 0.0
        exponent = math.frexp(largest)[1]
        return math.ldexp(float(np.std(np.ldexp(values, -exponent))), exponent)

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        block = torch.tensor(self.values, dtype=torch.float64)
        per = shape[0] // len(self.values)
        column = block.repeat_interleave(per).reshape(-1, *([1] * (len(shape) - 1)))
        return column.expand(shape).clone()
