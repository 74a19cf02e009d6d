"""The one primitive every scheme goes through: validate, find the fans, draw, write."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from .._errors import (
    InitError,
    InitWarning,
    check_finite,
    check_int,
    did_you_mean,
    failure,
    show,
)
from ..random import (
    NORMAL_REACH,
    Backend,
    Kind,
    Region,
    check_key,
    check_params,
    check_seed,
    check_target,
    check_writable,
    fill_keyed_,
    overflow_problem,
    truncated_inverse_cdf_params,
)
from ..theory import Fans, infer_fans

Draw = Callable[[Kind, Sequence[float], int], torch.Tensor]
"""draw(kind, params, substream) -> float64 tensor of the whole logical shape. What `_full`
receives is a `Source`, which also says whether it is `keyed` and can then draw a region."""

_REGISTRY: dict[str, type[Spec]] = {}
_GENERATOR_REACH = 40.0
"""No normal variate of a torch generator exceeds this: Box–Muller on float64 uniforms reaches
sqrt(-2 ln 2**-1074) = 38.6 at most."""
_LARGEST_FAN = 2**62  # a fan counts elements of one tensor, fewer than the stream's 2**62


class Source:
    """The random values of a joint scheme: the keyed stream of (`seed`, `key`), or torch's
    `generator` (None: the global one) when `key` is None, for a logical tensor of `shape`."""

    def __init__(self, shape: tuple[int, ...], device: torch.device,
                 generator: torch.Generator | None = None, seed: int = 0,
                 key: str | None = None) -> None:
        self.shape, self.device, self.generator = shape, device, generator
        self.seed, self.key = seed, key

    @property
    def keyed(self) -> bool:
        """True for the keyed stream, whose regions can be drawn on their own (`region`)."""
        return self.key is not None

    def __call__(self, kind: Kind, params: Sequence[float], substream: int = 0) -> torch.Tensor:
        out = torch.empty(self.shape, dtype=torch.float64, device=self.device)
        if self.key is None:
            return _sample_with_generator(out, kind, params, self.generator)
        return fill_keyed_(out, kind, params, seed=self.seed, key=self.key, substream=substream)

    def region(self, kind: Kind, params: Sequence[float], substream: int,
               offset: Sequence[int], shape: Sequence[int],
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Exactly ``self(kind, params, substream)[region]`` for the region of size `shape` at
        `offset`, without the rest, in `dtype`; keyed sources only."""
        if self.key is None:
            raise InitError("Drawing a region of a logical tensor needs the keyed stream.")
        out = torch.empty(tuple(shape), dtype=dtype, device=self.device)
        return fill_keyed_(out, kind, params, seed=self.seed, key=self.key,
                           global_shape=self.shape, offset=offset, substream=substream)


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
    """A Fans, or a (fan_in, fan_out[, receptive_field]) tuple of ints in [0, 2**62) (NumPy
    integers too, not bools), as a Fans of Python ints."""
    values = tuple(fans) if isinstance(fans, (tuple, list)) else None
    try:
        if values is None or not 2 <= len(values) <= 3:
            raise InitError("")
        return Fans(*(check_int("fans", v, high=_LARGEST_FAN) for v in values))
    except InitError:
        raise InitError(
            f"`fans` must be a wi.Fans or a (fan_in, fan_out[, receptive_field]) tuple of "
            f"non-negative ints below 2**62, got {show(fans)}. wi.compute_fans(shape, layout) "
            "builds one."
        ) from None


def _device_memory(device: torch.device) -> int | None:
    """The device's total memory in bytes, where it can be read (CPU, CUDA), else None."""
    try:
        if device.type == "cpu":
            return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
    except (ValueError, OSError, AttributeError, RuntimeError, AssertionError):
        return None
    return None


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

        Raises:
            InitError: fans the scheme cannot use, or a Spec subclass that does not define it.
        """
        raise InitError(
            f"{type(self).__name__} does not define std_for(fans): a Spec subclass implements "
            "it, returning the std of the values it gives for those fans (e.g. `def "
            "std_for(self, fans=None): return self.std`)."
        )

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]] | None:
        return None

    def _constant(self) -> float | None:
        return None

    def _full(self, shape: tuple[int, ...], fans: Fans | None, draw: Draw) -> torch.Tensor:
        raise InitError(
            f"{type(self).__name__} defines none of _constant(), _distribution(fans) or "
            "_full(shape, fans, draw), so it has no values to fill a tensor with: a Spec "
            "subclass implements one of them."
        )

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
            tensor: a dense floating-point tensor (float16, bfloat16, float32, float64), any
                device, whose elements do not share memory.
            fans: override the fans inferred from the logical shape (2-d: (out, in); more dims:
                conv layout): a `wi.Fans` (`wi.compute_fans` for other layouts) or a
                (fan_in, fan_out[, receptive_field]) tuple. With it, fan-based schemes fill a
                tensor of any shape.
            generator: a torch.Generator of the tensor's device, for the non-keyed path.
            seed, key: select the keyed stream; `key` is usually the parameter's name, a str
                UTF-8 can encode (lone surrogates are refused); `seed` any integer in
                [0, 2**63), NumPy integers included.
            global_shape, offset: the logical tensor and where `tensor` sits in it.
            backend: the keyed stream's implementation: ``"auto"`` (numba on the CPU, torch
                ops elsewhere), ``"numba"``, ``"eager"`` (torch ops) or ``"compiled"`` (torch
                ops under torch.compile); the values are the same bits either way.

        Raises:
            InitError: a tensor that cannot be filled in place (not floating, sparse, nested,
                meta, an expanded view, an inference tensor outside inference mode),
                conflicting arguments, a region outside `global_shape`, a shape the scheme
                cannot fill, or values beyond the dtype's range (they would be inf). The tensor
                is unchanged.
        """
        check_target(tensor, type(self).__name__)
        _check_generator(generator, tensor)
        if key is None:
            if seed is not None:
                raise InitError(
                    f"`seed` (={show(seed)}) selects a keyed stream and needs `key=` (e.g. the "
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
        check_writable(tensor)
        with torch.no_grad():
            constant = self._constant()
            if constant is not None:
                constant = check_finite("value", constant)
                if not abs(constant) <= torch.finfo(tensor.dtype).max:
                    raise InitError(
                        f"`value` {constant!r} of {type(self).__name__} overflows "
                        f"{tensor.dtype} (largest {torch.finfo(tensor.dtype).max:g})."
                    )
                return tensor.fill_(constant)
            dist = self._distribution(resolved)
            if dist is not None:
                if not isinstance(dist, tuple) or len(dist) != 2:
                    raise InitError(f"{type(self).__name__}._distribution must return (kind, "
                                    f"params) or None, got {show(dist)}.")
                kind, params = dist
                check_params(kind, params)
                problem = overflow_problem(kind, params, tensor.dtype)
                if problem is not None:
                    raise InitError(f"{self!r} {problem}. The tensor is unchanged.")
                if key is None:
                    return _fill_with_generator(self, tensor, kind, params, generator)
                return fill_keyed_(tensor, kind, params, seed=seed or 0, key=key,
                                   global_shape=region.global_shape, offset=region.offset,
                                   backend=backend)
            source = Source(shape, tensor.device, generator, seed or 0, key)
            full = self._build(shape, resolved, source)
            index = tuple(slice(o, o + n) for o, n in zip(region.offset, region.shape,
                                                         strict=True))
            _check_range(self, full, tensor.dtype)  # the whole: every shard decides alike
            return tensor.copy_(full[index])

    def _build(self, shape: tuple[int, ...], fans: Fans | None, source: Source) -> torch.Tensor:
        """`_full(shape, fans, source)`, refused with InitError when the whole logical tensor
        cannot fit the device's memory, or when building it fails for lack of memory."""
        name = type(self).__name__
        if type(self)._full is Spec._full:
            self._full(shape, fans, source)  # the InitError saying what a subclass must define
        need = 8 * math.prod(shape)
        have = _device_memory(source.device)
        if have is not None and need > have:
            raise InitError(
                f"{name} builds the whole logical tensor (shape {show(shape)}) in float64 to "
                f"fill any part of it: {need / 2**30:,.1f} GiB, more than the "
                f"{source.device.type} device's {have / 2**30:,.1f} GiB. For a tensor this "
                "large use a per-element scheme (Normal, TruncatedNormal, He, ...), which fills "
                "a shard without the rest. The tensor is unchanged."
            )
        try:
            full = self._full(shape, fans, source)
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            memory = isinstance(exc, MemoryError) or "memory" in str(exc).lower()
            fix = ("A joint scheme needs memory for the whole tensor in float64 (Orthogonal "
                   "also for its QR); use a per-element scheme for tensors this large"
                   if memory else f"Check {name}'s construction for this shape")
            raise failure(f"Building {self!r} over the whole logical tensor (shape "
                          f"{show(shape)})", exc, fix=fix, unchanged="The tensor") from None
        if not isinstance(full, torch.Tensor) or tuple(full.shape) != shape or (
                full.is_complex() or full.layout != torch.strided):
            got = (f"a {full.dtype} {full.layout} tensor of shape {tuple(full.shape)}"
                   if isinstance(full, torch.Tensor) else type(full).__name__)
            raise InitError(f"{name}._full must return a dense real tensor of the logical "
                            f"shape {shape}, got {got}.")
        return full if full.is_floating_point() else full.double()


def _check_generator(generator: object, tensor: torch.Tensor) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise InitError(f"`generator` must be a torch.Generator, got {show(generator)}.")
    if generator.device.type != tensor.device.type and tensor.device.type != "meta":
        raise InitError(
            f"`generator` is a {generator.device} generator and `tensor` is on "
            f"{tensor.device}: torch samples a tensor only with a generator of its device. "
            f"Pass `torch.Generator(device={str(tensor.device)!r})`, or `key=` for the keyed "
            "stream (the same values on every device)."
        )


def _check_range(spec: Spec, values: torch.Tensor, dtype: torch.dtype) -> None:
    """InitError unless every one of `values` (the whole logical tensor, so that a shard is
    refused exactly when the whole is) is finite and within `dtype`'s range."""
    if values.numel() == 0:
        return
    low, high = torch.aminmax(values)
    reach = max(-float(low), float(high))  # NaN when any value is NaN
    largest = torch.finfo(dtype).max
    if not reach <= largest:
        raise InitError(
            f"{spec!r} gives values up to +-{reach:.4g}, beyond {dtype}'s range (largest "
            f"finite {largest:.4g}): they would be written as inf. Use a smaller gain or "
            "scale, or a wider dtype. The tensor is unchanged."
        )


def _fill_with_generator(spec: Spec, tensor: torch.Tensor, kind: Kind,
                         params: Sequence[float], generator: torch.Generator | None
                         ) -> torch.Tensor:
    """Sample in place; a normal whose rarest draws could still overflow the dtype (beyond the
    keyed stream's reach, which `overflow_problem` checked) is drawn aside and checked."""
    if kind == "normal":
        mean, std = float(params[0]), float(params[1])
        if not abs(mean) + _GENERATOR_REACH * std <= torch.finfo(tensor.dtype).max:
            work = torch.empty_like(tensor)
            _sample_with_generator(work, kind, params, generator)
            if not bool(torch.isfinite(work).all()):
                raise InitError(
                    f"{spec!r} drew values beyond {tensor.dtype}'s range from the generator "
                    f"(a variate past {NORMAL_REACH} sigma): they would be written as inf. "
                    "Use a smaller std or a wider dtype. The tensor is unchanged."
                )
            return tensor.copy_(work)
    return _sample_with_generator(tensor, kind, params, generator)


def spec_from_dict(data: dict[str, Any]) -> Spec:
    """Rebuild a spec from `Spec.to_dict()` output (validated like the constructor)."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InitError(f"`data` must be a dict with a str 'type' key, got {show(data)}.")
    fields = dict(data)
    name = fields.pop("type")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise InitError(
            f"`type` {show(name)} is not a weightinit scheme."
            f"{did_you_mean(str(name)[:100], _REGISTRY)}"
        )
    try:
        return cls(**fields)
    except TypeError as exc:
        raise InitError(f"Cannot build {name} from {show(fields)}: {exc}.") from None
    except RecursionError:  # a value nested too deep to even look at
        raise InitError(f"Cannot build {name} from {show(fields)}: its values are nested too "
                        "deeply; a spec's fields are numbers, names and flat tuples.") from None
