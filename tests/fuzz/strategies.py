"""Hypothesis strategies shared by the fuzz tests: awkward numbers, spec arguments, tensor
recipes (shape with zero-size dims and 0-d, dtype, view, requires_grad, inference mode, meta)
and fill arguments (seed, key, generator, fans, region, backend).

What is drawn is a recipe (a small frozen dataclass whose repr is a reproducer), built into
tensors inside the test: hypothesis then prints a falsifying example that can be pasted.
The models, policies and batches are in `fuzz_models` (models.py)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

import weightinit as wi
from weightinit.theory import ACTIVATION_NAMES

# --- numbers ---------------------------------------------------------------------------------
FLOAT64_MAX = float(np.finfo(np.float64).max)

special_floats = st.sampled_from([
    0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-300, 5e-324, -5e-324, 1e-45, 1e-8, 1e8, 65504.0, 65520.0,
    3.4e38, 3.5e38, 1e300, FLOAT64_MAX, -FLOAT64_MAX, math.inf, -math.inf, math.nan,
])
"""Floats at the edges: subnormals, float16/float32 overflow, float64's largest, inf, nan."""

weird_values = st.one_of(
    special_floats,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**1100), 2**1100),  # beyond float64 both ways
    st.sampled_from([True, False, None, "1.0", "nan", b"1", 1 + 0j, [1.0], (), np.float32(0.25),
                     np.float64(2.0), np.int64(3), np.float16(1.0), np.bool_(True),
                     np.float64("nan")]),
)
"""Anything a user might pass where a number is expected."""


def number(low: float, high: float) -> st.SearchStrategy[Any]:
    """Mostly ordinary floats in [low, high], sometimes something weird."""
    return st.one_of(st.floats(low, high), st.floats(low, high), weird_values)


def positive(low: float = 1e-3, high: float = 10.0) -> st.SearchStrategy[Any]:
    return number(low, high)


def choice(valid: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """A valid name, or a misspelling, another case, an empty string or a non-str."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid),
                     st.sampled_from([v.upper() for v in valid] + [v[:-1] for v in valid]),
                     st.sampled_from(["", " ", "fanin", None, 0, ("fan_in",)]))


MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

# --- specs -----------------------------------------------------------------------------------
SPEC_ARGS: dict[type[wi.Spec], dict[str, st.SearchStrategy[Any]]] = {
    wi.Zeros: {},
    wi.Ones: {},
    wi.ZerO: {},
    wi.Constant: {"value": number(-10.0, 10.0)},
    wi.Normal: {"std": positive(0.0, 10.0), "mean": number(-5.0, 5.0)},
    wi.Uniform: {"low": number(-5.0, 0.0), "high": number(0.0, 5.0)},
    wi.TruncatedNormal: {"std": positive(0.0, 10.0), "mean": number(-5.0, 5.0),
                         "a": number(-40.0, 1.0), "b": number(-1.0, 40.0)},
    wi.VarianceScaling: {"scale": positive(1e-4, 100.0), "mode": choice(MODES),
                         "distribution": choice(DISTRIBUTIONS)},
    wi.He: {"activation": choice(ACTIVATION_NAMES), "mode": choice(MODES),
            "distribution": choice(DISTRIBUTIONS)},
    wi.Glorot: {"distribution": choice(DISTRIBUTIONS), "gain": positive(1e-3, 10.0)},
    wi.LeCun: {"distribution": choice(DISTRIBUTIONS)},
    wi.Orthogonal: {"gain": positive(1e-3, 10.0),
                    "blocks": st.one_of(st.integers(1, 4), st.integers(-2, 0), weird_values)},
    wi.Identity: {"gain": positive(1e-3, 10.0),
                  "groups": st.one_of(st.integers(1, 4), st.integers(-2, 0), weird_values)},
    wi.DeltaOrthogonal: {"gain": positive(1e-3, 10.0)},
    wi.Sparse: {"sparsity": number(0.0, 0.999), "std": positive(1e-3, 10.0)},
    wi.BlockConstant: {"values": st.one_of(
        st.lists(number(-10.0, 10.0), min_size=1, max_size=4).map(tuple),
        st.lists(st.floats(-10.0, 10.0), min_size=0, max_size=4),
        weird_values)},
}
"""Every public spec class and a strategy for each of its fields."""

SPEC_CLASSES = tuple(SPEC_ARGS)


@st.composite
def spec_arguments(draw: st.DrawFn, classes: tuple[type[wi.Spec], ...] = SPEC_CLASSES
                   ) -> tuple[type[wi.Spec], dict[str, Any]]:
    """(class, kwargs) with each field present or left at its default."""
    cls = draw(st.sampled_from(classes))
    kwargs = {}
    for name, values in SPEC_ARGS[cls].items():
        if draw(st.booleans()):
            kwargs[name] = draw(values)
    return cls, kwargs


def build_spec(cls: type[wi.Spec], kwargs: dict[str, Any]) -> wi.Spec | None:
    """The spec, or None when it refuses its arguments with InitError."""
    try:
        return cls(**kwargs)
    except wi.InitError:
        return None


def specs(classes: tuple[type[wi.Spec], ...] = SPEC_CLASSES) -> st.SearchStrategy[wi.Spec]:
    """Specs that construct (built from the fuzzed arguments; the refused ones are dropped)."""
    return spec_arguments(classes).map(lambda ck: build_spec(*ck)).filter(
        lambda s: s is not None)


# --- tensors ---------------------------------------------------------------------------------
FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
OTHER_DTYPES = (torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64,
                torch.float8_e4m3fn)
VIEWS = ("plain", "transpose", "step_slice", "narrow", "expand", "select", "channels_last",
         "unsqueeze")


@dataclasses.dataclass(frozen=True)
class TensorRecipe:
    """A tensor to fill: `shape` is the tensor's own shape; `view` says how it sits in its
    storage; `inference`: None, "created" (made under inference_mode, filled outside) or
    "inside" (made and filled under inference_mode)."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    view: str = "plain"
    requires_grad: bool = False
    inference: str | None = None
    meta: bool = False
    content_seed: int = 0

    def build(self) -> torch.Tensor:
        """The tensor, holding random (finite, cast) values from `content_seed`."""
        with torch.inference_mode(self.inference is not None):
            base = self._base()
        return self._view(base)

    def _base_shape(self) -> tuple[int, ...]:
        s = self.shape
        if self.view == "transpose" and len(s) >= 2:
            return (*s[:-2], s[-1], s[-2])
        if self.view == "step_slice" and s:
            return (2 * s[0], *s[1:])
        if self.view == "narrow" and s:
            return (s[0] + 2, *s[1:])
        if self.view == "expand" and s:
            return (1, *s[1:])
        if self.view == "select":
            return (2, *s)
        if self.view == "unsqueeze" and s and s[0] == 1:
            return s[1:]
        return s

    def _base(self) -> torch.Tensor:
        shape = self._base_shape()
        if self.meta:
            base = torch.empty(shape, dtype=self.dtype, device="meta")
        else:
            g = torch.Generator().manual_seed(self.content_seed)
            base = (torch.randn(shape, dtype=torch.float64, generator=g) * 3).to(self.dtype)
        if self.requires_grad and (base.is_floating_point() or base.is_complex()):
            base.requires_grad_(True)
        return base

    def _view(self, base: torch.Tensor) -> torch.Tensor:
        s = self.shape
        if self.view == "transpose" and len(s) >= 2:
            return base.transpose(-1, -2)
        if self.view == "step_slice" and s:
            return base[::2]
        if self.view == "narrow" and s:
            return base.narrow(0, 1, s[0])
        if self.view == "expand" and s:
            return base.expand(s)
        if self.view == "select":
            return base.select(0, 1)
        if self.view == "channels_last" and len(s) == 4:
            return base.contiguous(memory_format=torch.channels_last)
        if self.view == "unsqueeze" and s and s[0] == 1:
            return base.unsqueeze(0)
        return base


shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
"""Small shapes, 0-d and zero-size dims included."""

nonempty_2d_plus = st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple)


@st.composite
def tensor_recipes(draw: st.DrawFn, shape: st.SearchStrategy[tuple[int, ...]] = shapes,
                   odd: bool = True) -> TensorRecipe:
    """Mostly float tensors; with `odd`, other dtypes, views, inference mode and meta too."""
    dtypes = st.sampled_from(FLOATING)
    if odd:
        dtypes = st.one_of(dtypes, dtypes, st.sampled_from(OTHER_DTYPES))
    return TensorRecipe(
        shape=draw(shape),
        dtype=draw(dtypes),
        view=draw(st.sampled_from(VIEWS)) if odd else "plain",
        requires_grad=draw(st.booleans()),
        inference=draw(st.sampled_from([None, None, None, "created", "inside"])) if odd else None,
        meta=draw(st.sampled_from([False, False, False, True])) if odd else False,
        content_seed=draw(st.integers(0, 3)),
    )


# --- fill arguments --------------------------------------------------------------------------
surrogate_text = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
key_names = st.sampled_from(["weight", "fc.weight", "layers.0.bias", "", "é", "\x00", "🙂"])
keys = st.one_of(
    key_names, key_names, key_names,
    st.text(max_size=12),
    st.tuples(st.text(max_size=4), surrogate_text).map("".join),
    st.sampled_from([b"weight", 3, ("w",), True]),
)
"""Keys: names, unicode (surrogates included: UTF-8 cannot encode them), and non-str."""

seeds = st.one_of(
    st.integers(0, 2**31), st.integers(0, 2**31), st.integers(0, 2**63 - 1),
    st.sampled_from([0, 1, 2**32, 2**63 - 1, 2**63, 2**64, -1, -(2**63), 10**30, True, False,
                     np.int64(7), np.uint64(2**63), 1.0, "3", None]),
    st.integers(-(2**80), 2**80),
)


@dataclasses.dataclass(frozen=True)
class FillArgs:
    """The keyword arguments of one `spec.fill_` call (`generator_seed`: a torch.Generator
    seeded so, or None; `fans`: passed as given)."""

    key: Any = None
    seed: Any = None
    generator_seed: int | None = None
    fans: Any = None
    global_shape: Any = None
    offset: Any = None
    backend: Any = "auto"

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("key", "seed", "fans", "global_shape", "offset"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.generator_seed is not None:
            out["generator"] = torch.Generator().manual_seed(self.generator_seed)
        if self.backend != "auto":
            out["backend"] = self.backend
        return out

    @property
    def keyed(self) -> bool:
        return self.key is not None


fans_values = st.one_of(
    st.tuples(st.integers(0, 64), st.integers(0, 64)),
    st.tuples(st.integers(1, 64), st.integers(1, 64), st.integers(1, 9)),
    st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
    st.sampled_from([(), (1,), (1, 2, 3, 4), (True, 2), (1.5, 2), "12", None, (2**70, 2**70),
                     (2**62, 1), (10**400, 3)]),
)


@st.composite
def fill_args(draw: st.DrawFn, shape: tuple[int, ...]) -> FillArgs:
    """Keyed (mostly) or generator-driven arguments; sometimes fans, a region of a larger
    global shape around `shape`, or a backend."""
    how = draw(st.sampled_from(["keyed", "keyed", "keyed", "generator", "global"]))
    key = draw(keys) if how == "keyed" else None
    seed = draw(st.one_of(st.none(), seeds)) if how == "keyed" or draw(st.booleans()) else None
    if how != "keyed" and draw(st.booleans()):
        seed = None  # most non-keyed calls are well-formed
    region: tuple[Any, Any] = (None, None)
    if how == "keyed" and draw(st.booleans()):
        extra = [draw(st.integers(0, 2)) for _ in shape]
        offset = tuple(draw(st.integers(0, e)) for e in extra)
        glob = tuple(n + e for n, e in zip(shape, extra, strict=True))
        region = draw(st.sampled_from([(glob, offset), (glob, None), (shape, offset),
                                       (glob[:-1], offset), (None, offset),
                                       ((2**31,) * 3, (0, 0, 0)), ([-1] * len(shape), None)]))
    return FillArgs(
        key=key, seed=seed,
        generator_seed=draw(st.integers(0, 5)) if how == "generator" else None,
        fans=draw(st.one_of(st.none(), st.none(), fans_values)),
        global_shape=region[0], offset=region[1],
        backend=draw(st.sampled_from(["auto", "auto", "auto", "eager", "numba", "gpu", None])),
    )
