"""Schemes with one fixed distribution per element, whatever the fans: constants, normal, uniform,
truncated normal."""

from __future__ import annotations

import dataclasses
import math

from .._errors import InitError, check_finite, check_positive_finite
from ..random import Kind, truncated_interval_problem
from ..theory import Fans, truncated_std_factor
from ._base import Spec, normalize


# --- constants ---------------------------------------------------------------------------------
class _Fixed(Spec):
    """A single value everywhere: std 0 for any fans."""

    def std_for(self, fans: Fans | None = None) -> float:
        return 0.0


@dataclasses.dataclass(frozen=True)
class Constant(_Fixed):
    """Every element equal to `value`."""

    value: float = 0.0

    def __post_init__(self) -> None:
        normalize(self, "value", check_finite("value", self.value))

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

    std: float = 1.0
    mean: float = 0.0

    def __post_init__(self) -> None:
        normalize(self, "std", check_positive_finite("std", self.std, allow_zero=True))
        normalize(self, "mean", check_finite("mean", self.mean))

    def std_for(self, fans: Fans | None = None) -> float:
        return self.std

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return "normal", (self.mean, self.std)


@dataclasses.dataclass(frozen=True)
class Uniform(Spec):
    """U(low, high)."""

    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        normalize(self, "low", check_finite("low", self.low))
        normalize(self, "high", check_finite("high", self.high))
        if not self.low < self.high:
            raise InitError(
                f"`low` (={self.low!r}) must be < `high` (={self.high!r}). For a constant use "
                "Constant(value)."
            )
        if not math.isfinite(self.high - self.low):
            raise InitError(
                f"`high` - `low` (={self.high!r} - {self.low!r}) overflows float64; narrow it."
            )

    def std_for(self, fans: Fans | None = None) -> float:
        return (self.high - self.low) / math.sqrt(12.0)

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return "uniform", (self.low, self.high)


@dataclasses.dataclass(frozen=True)
class TruncatedNormal(Spec):
    """A normal truncated to [mean + a sigma, mean + b sigma], with `std` the std of the RESULT.

    NOTE: as in Keras and JAX, `a` and `b` are in units of the underlying normal's sigma, and
    sigma = std / c(a, b) (`truncated_std_factor`, 0.8796 for +-2), so the values really have
    std `std`. torch's `trunc_normal_` takes absolute bounds and an untruncated std instead.
    `mean` is the underlying normal's location, the mean of the result when a = -b.
    """

    std: float = 1.0
    mean: float = 0.0
    a: float = -2.0
    b: float = 2.0

    def __post_init__(self) -> None:
        normalize(self, "std", check_positive_finite("std", self.std, allow_zero=True))
        for name in ("mean", "a", "b"):
            normalize(self, name, check_finite(name, getattr(self, name)))
        if not self.a < self.b:
            raise InitError(f"`a` (={self.a!r}) must be < `b` (={self.b!r}).")
        problem = truncated_interval_problem(self.a, self.b)
        if problem is not None:
            raise InitError(f"[`a`, `b`] = [{self.a!r}, {self.b!r}] {problem}.")

    @property
    def sigma(self) -> float:
        """The underlying (untruncated) normal's std."""
        return self.std / truncated_std_factor(self.a, self.b)

    def std_for(self, fans: Fans | None = None) -> float:
        return self.std

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return "truncated_normal", (self.mean, self.std, self.a, self.b)
