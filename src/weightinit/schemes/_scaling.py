"""Variance scaling, the one fan-based primitive, and its presets He, Glorot and LeCun.

Each preset is a `VarianceScaling` under another name: it declares its own fields (He's
activation, Glorot's gain) and says which `VarianceScaling` it is; validation of the scale,
mode and distribution happens once, in `VarianceScaling`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Literal

from .._errors import InitError, check_choice, check_positive_finite
from ..random import Kind
from ..theory import Fans, gain
from ._base import Spec, as_fans, normalize

Mode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["normal", "truncated_normal", "uniform"]
_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def _check_has_fans(spec: Spec, shape: tuple[int, ...], fans_given: bool) -> None:
    if len(shape) < 2 and not fans_given:
        raise InitError(
            f"{type(spec).__name__} scales by fans, and a tensor of shape {shape} has none "
            "(it needs at least 2 dims: (out, in, ...)). Pass `fans=` explicitly, or use "
            "Zeros/Normal for biases."
        )


@dataclasses.dataclass(frozen=True)
class VarianceScaling(Spec):
    r"""Values with variance `scale / n`, n = fan_in, fan_out or their average.

    .. math:: \mathrm{std} = \sqrt{\mathrm{scale} / n}

    The primitive behind He, Glorot and LeCun (as in JAX and Keras). `distribution` is
    ``"normal"``, ``"truncated_normal"`` (at +-2 sigma, std corrected) or ``"uniform"``
    (bound sqrt(3) std).
    """

    scale: float = 1.0
    mode: Mode = "fan_in"
    distribution: Distribution = "truncated_normal"

    needs_fans: ClassVar[bool] = True

    def __post_init__(self) -> None:
        normalize(self, "scale", check_positive_finite("scale", self.scale))
        check_choice("mode", self.mode, _MODES)
        check_choice("distribution", self.distribution, _DISTRIBUTIONS)

    def std_for(self, fans: Fans | None = None) -> float:
        return self._std_for(self, fans)

    def _std_for(self, shown: Spec, fans: Fans | None) -> float:
        """The std for `fans`, with errors naming `shown` (this spec, or the preset it is)."""
        if fans is None:
            raise InitError(
                f"{type(shown).__name__}.std_for needs `fans` (e.g. "
                "wi.compute_fans(weight.shape))."
            )
        fans = as_fans(fans)
        n = {"fan_in": fans.fan_in, "fan_out": fans.fan_out, "fan_avg": fans.fan_avg}[self.mode]
        if n <= 0:
            raise InitError(f"{type(shown).__name__} needs {self.mode} > 0, got fans {fans}.")
        return math.sqrt(self.scale / n)

    def _draw(self, std: float) -> tuple[Kind, tuple[float, ...]]:
        if self.distribution == "uniform":
            bound = math.sqrt(3.0) * std
            return "uniform", (-bound, bound)
        if self.distribution == "truncated_normal":
            return "truncated_normal", (0.0, std, -2.0, 2.0)
        return "normal", (0.0, std)

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        return self._draw(self.std_for(fans))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        _check_has_fans(self, shape, fans_given)


class _Preset(Spec):
    """A `VarianceScaling` under another name: subclasses say which one (`variance_scaling`)
    and check their own fields; VarianceScaling checks the rest when the preset is built."""

    needs_fans: ClassVar[bool] = True

    def variance_scaling(self) -> VarianceScaling:
        """The `VarianceScaling` this preset is."""
        raise NotImplementedError

    def _check_own_fields(self) -> None:
        """Validate (and normalize) the fields VarianceScaling does not have."""

    def __post_init__(self) -> None:
        self._check_own_fields()
        self.variance_scaling()  # VarianceScaling validates the scale, mode and distribution

    def std_for(self, fans: Fans | None = None) -> float:
        return self.variance_scaling()._std_for(self, fans)

    def _distribution(self, fans: Fans | None) -> tuple[Kind, tuple[float, ...]]:
        scaling = self.variance_scaling()
        return scaling._draw(scaling._std_for(self, fans))

    def _check_shape(self, shape: tuple[int, ...], fans_given: bool = False) -> None:
        _check_has_fans(self, shape, fans_given)


@dataclasses.dataclass(frozen=True)
class He(_Preset):
    """He et al., Delving Deep into Rectifiers, 2015 (https://arxiv.org/abs/1502.01852):
    std = gain(activation) / sqrt(fan_in), with the gain computed for any activation
    (`wi.gain`). VarianceScaling(gain**2, mode, distribution)."""

    activation: str = "relu"
    mode: Mode = "fan_in"
    distribution: Distribution = "normal"

    def _check_own_fields(self) -> None:
        if not isinstance(self.activation, str):
            raise InitError(
                f"`activation` of He must be a name (a spec is a serializable value), got "
                f"{type(self.activation).__name__}. For a module or function use "
                "VarianceScaling(wi.gain(fn) ** 2, 'fan_in', 'normal')."
            )

    def variance_scaling(self) -> VarianceScaling:
        return VarianceScaling(gain(self.activation) ** 2, self.mode, self.distribution)


@dataclasses.dataclass(frozen=True)
class Glorot(_Preset):
    """Glorot & Bengio, Understanding the difficulty of training deep feedforward neural
    networks, 2010: variance gain^2 * 2 / (fan_in + fan_out); uniform bound
    gain * sqrt(6 / (fan_in + fan_out)). VarianceScaling(gain**2, "fan_avg", distribution)."""

    distribution: Distribution = "uniform"
    gain: float = 1.0

    def _check_own_fields(self) -> None:
        normalize(self, "gain", check_positive_finite("gain", self.gain))
        if not 0.0 < self.gain * self.gain < math.inf:
            raise InitError(
                f"`gain` (={self.gain!r}) squared is the variance scale, and it "
                f"{'underflows to 0' if self.gain < 1 else 'overflows'} in float64; pass a "
                "gain between 1e-150 and 1e150."
            )

    def variance_scaling(self) -> VarianceScaling:
        return VarianceScaling(self.gain * self.gain, "fan_avg", self.distribution)


@dataclasses.dataclass(frozen=True)
class LeCun(_Preset):
    """LeCun et al., Efficient BackProp, 1998: std = 1 / sqrt(fan_in); the right scale for
    SELU and linear inputs. VarianceScaling(1, "fan_in", distribution). NOTE: JAX and Flax's
    ``lecun_normal`` is LeCun(distribution="truncated_normal")."""

    distribution: Distribution = "normal"

    def variance_scaling(self) -> VarianceScaling:
        return VarianceScaling(1.0, "fan_in", self.distribution)


Kaiming = He
Xavier = Glorot
