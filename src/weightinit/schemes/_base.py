"""The one primitive every scheme goes through: validate, find the fans, draw, write."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from .._errors import InitError, InitWarning, did_you_mean
from ..random import (
    FLOAT_DTYPES,
    Backend,
    Kind,
    Region,
    check_key,
    check_seed,
    fill_keyed_,
    truncated_inverse_cdf_params,
)
from ..theory import Fans, infer_fans

Draw = Callable[[Kind, Sequence[float], int], torch.Tensor]
"""draw(kind, params, substream) -> float64 tensor of the whole logical shape."""

_REGISTRY: dict[str, type[Spec]] = {}


def _draw_with_generator(shape: tuple[int, ...], device: torch.device,
                         generator: torch.Generator | None) -> Draw:
    def draw(kind: Kind, params: Sequence[float], substream: int = 0) -> torch.Tensor:
        out = torch.empty(shape, dtype=torch.float64, device=device)
        return _sample_with_generator(out, kind, params, generator)
    return draw


def _sample_with_generator(out: torch.Tensor, kind: Kind, params: Sequence[float],
                           generator: torch.Generator | None) -> torch.Tensor:
    if out.dtype in (torch.float16, torch.bfloat16):
        # torch's reduced-precision samplers are not the rounded distribution (bfloat16
        # uniform_ returns [bf16(low), bf16(high))): sample in float32, round once.
        wide = torch.empty(out.shape, dtype=torch.float32, device=out.device)
        return out.copy_(_sample_with_generator(wide, kind, params, generator))
    if kind == "uniform":
        return out.uniform_(params[0], params[1], generator=generator)
    if kind == "normal":
        return out.normal_(params[0], params[1], generator=generator)
    # Inverse CDF of a uniform on [Phi(lo), Phi(hi)] in float64, mirrored into the lower tail
    # when the interval lies mostly above 0 (float64 keeps the lower tail's precision).
    p_lo, width, lo, hi, mean, scale = truncated_inverse_cdf_params(params)
    work = torch.empty(out.shape, dtype=torch.float64, device=out.device)
    work.uniform_(p_lo, p_lo + width, generator=generator)
    work = torch.special.ndtri(work).clamp_(lo, hi).mul_(scale).add_(mean)
    return out.copy_(work)


def _draw_keyed(shape: tuple[int, ...], device: torch.device, seed: int, key: str) -> Draw:
    def draw(kind: Kind, params: Sequence[float], substream: int = 0) -> torch.Tensor:
        out = torch.empty(shape, dtype=torch.float64, device=device)
        return fill_keyed_(out, kind, params, seed=seed, key=key, substream=substream)
    return draw


def normalize(spec: Spec, name: str, value: object) -> None:
    """Set a field of a frozen spec to its validated, normalized value (``1`` -> ``1.0``)."""
    object.__setattr__(spec, name, value)


def need_ndim(spec: Spec, shape: tuple[int, ...], low: int, form: str) -> None:
    """InitError unless a tensor of `shape` has at least `low` dims (`form` names them)."""
    if len(shape) < low:
        raise InitError(
            f"{type(spec).__name__} needs a tensor with at least {low} dims ({form}), got "
            f"shape {shape}."
        )


def as_fans(fans: object) -> Fans:
    """A Fans, or a (fan_in, fan_out[, receptive_field]) tuple of non-negative ints."""
    values = tuple(fans) if isinstance(fans, (tuple, list)) else None
    if values is None or not 2 <= len(values) <= 3 or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise InitError(
            f"`fans` must be a wi.Fans or a (fan_in, fan_out[, receptive_field]) tuple of "
            f"non-negative ints, got {fans!r}. wi.compute_fans(shape, layout) builds one."
        )
    return Fans(*values)


@dataclasses.dataclass(frozen=True)
class Spec:
    """Base of every initializer spec: a frozen, validated, serializable value.

    Subclasses implement `std_for(fans)` and one of `_distribution(fans)` (a single distribution
    per element), `_full(shape, fans, draw)` (a joint construction over the whole logical
    tensor) or `_constant()`.
    """

    needs_fans: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY.setdefault(cls.__name__, cls)

    # -- what a scheme defines ------------------------------------------------------------
    def std_for(self, fans: Fans | None = None) -> float:
        """The standard deviation of the values this spec gives for `fans`.

        Joint schemes (Orthogonal, DeltaOrthogonal, Identity, ZerO) are built on the tensor's
        own (out, in, *kernel) shape, whatever layout it has; for them `fans` must be that
        shape's plain fans, ``wi.compute_fans(shape, "conv")`` (or ``"linear"``) without
        groups, and Orthogonal's and DeltaOrthogonal's value is the root mean square (their
        sum of squares is fixed; the mean of their entries is random and near 0).
        """
        raise NotImplementedError

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]] | None:
        return None

    def _constant(self) -> float | None:
        return None

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        raise NotImplementedError

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        """Raise InitError if this scheme cannot fill a logical tensor of `shape`."""

    # -- serialization ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"type": "Normal", "std": 0.02, "mean": 0.0}``; `spec_from_dict` inverts it."""
        return {"type": type(self).__name__, **dataclasses.asdict(self)}

    # -- the primitive ------------------------------------------------------------------------
    def fill_(
        self,
        tensor: torch.Tensor,
        *,
        fans: Fans | tuple[int, ...] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        key: str | None = None,
        global_shape: Sequence[int] | None = None,
        offset: Sequence[int] | None = None,
        backend: Backend = "auto",
    ) -> torch.Tensor:
        """Fill `tensor` in place (under no_grad) and return it.

        With `key` (and `seed`, default 0) values come from the keyed stream: the value at each
        global index depends only on (seed, key, index, spec, logical shape), so a region given
        by `global_shape` and `offset` gets exactly that slice of the whole. Without `key`,
        values come from `generator` (or torch's global generator), like `torch.nn.init`.

        Args:
            tensor: a floating-point tensor (float16, bfloat16, float32, float64), any device.
            fans: override the fans inferred from the logical shape (2-d: (out, in); more dims:
                conv layout): a `wi.Fans` (`wi.compute_fans` for other layouts) or a
                (fan_in, fan_out[, receptive_field]) tuple. With it, fan-based schemes fill a
                tensor of any shape.
            generator: a torch.Generator, for the non-keyed path.
            seed, key: select the keyed stream; `key` is usually the parameter's name.
            global_shape, offset: the logical tensor and where `tensor` sits in it.
            backend: the keyed stream's implementation: ``"auto"`` (numba on the CPU, torch
                ops elsewhere), ``"numba"``, ``"eager"`` (torch ops) or ``"compiled"`` (torch
                ops under torch.compile); the values are the same bits either way.

        Raises:
            InitError: a non-floating tensor, conflicting arguments, a region outside
                `global_shape`, or a shape the scheme cannot fill. The tensor is unchanged.
        """
        if not isinstance(tensor, torch.Tensor):
            raise InitError(f"`tensor` must be a torch.Tensor, got {type(tensor).__name__}.")
        if tensor.dtype not in FLOAT_DTYPES:
            raise InitError(
                f"`tensor` has dtype {tensor.dtype}; {type(self).__name__} fills float16, "
                "bfloat16, float32 and float64 tensors. Cast it first, e.g. `t = t.float()`."
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InitError(f"`generator` must be a torch.Generator, got {generator!r}.")
        if key is None:
            if seed is not None:
                raise InitError(
                    f"`seed` (={seed!r}) selects a keyed stream and needs `key=` (e.g. the "
                    "parameter's name); for torch-style sampling pass `generator=` instead."
                )
            if global_shape is not None or offset is not None:
                raise InitError(
                    "`global_shape`/`offset` fill a region of a keyed stream and need `key=`; "
                    "a generator cannot reproduce a slice of a larger draw."
                )
        else:
            check_key(key)
            if generator is not None:
                raise InitError("Pass either `key=` (keyed stream) or `generator=`, not both.")
            seed = check_seed(0 if seed is None else seed)
        region = Region.of(tensor.shape, global_shape, offset)
        shape = region.global_shape
        given = None if fans is None else as_fans(fans)
        self._check_shape(shape, given is not None)
        resolved = infer_fans(shape) if self.needs_fans and given is None else given
        if tensor.numel() == 0:
            if math.prod(shape) == 0:  # an empty shard of a non-empty tensor is normal
                warnings.warn(
                    f"Initializing an empty tensor (shape {tuple(tensor.shape)}) is a no-op.",
                    InitWarning, stacklevel=2,
                )
            return tensor
        constant = self._constant()
        if constant is not None and abs(constant) > torch.finfo(tensor.dtype).max:
            raise InitError(
                f"`value` {constant!r} of {type(self).__name__} overflows {tensor.dtype} "
                f"(largest {torch.finfo(tensor.dtype).max:g})."
            )
        with torch.no_grad():
            if constant is not None:
                return tensor.fill_(constant)
            dist = self._distribution(resolved)
            if dist is not None:
                kind, params = dist
                if key is None:
                    return _sample_with_generator(tensor, kind, params, generator)
                return fill_keyed_(tensor, kind, params, seed=seed or 0, key=key,
                                   global_shape=region.global_shape, offset=region.offset,
                                   backend=backend)
            draw = (_draw_with_generator(shape, tensor.device, generator) if key is None
                    else _draw_keyed(shape, tensor.device, seed or 0, key))
            full = self._full(shape, resolved, draw)
            index = tuple(slice(o, o + n) for o, n in zip(region.offset, region.shape,
                                                         strict=True))
            return tensor.copy_(full[index])


def spec_from_dict(data: dict[str, Any]) -> Spec:
    """Rebuild a spec from `Spec.to_dict()` output (validated like the constructor)."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InitError(f"`data` must be a dict with a str 'type' key, got {data!r}.")
    fields = dict(data)
    name = fields.pop("type")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise InitError(
            f"`type` {name!r} is not a weightinit scheme.{did_you_mean(str(name), _REGISTRY)}"
        )
    try:
        return cls(**fields)
    except TypeError as exc:
        raise InitError(f"Cannot build {name} from {fields!r}: {exc}.") from None
