"""What `diagnose` measures (one record per layer) and what it says (findings)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Literal

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")
FindingKind = Literal[
    "forward_vanishing", "forward_exploding", "backward_vanishing", "backward_exploding",
    "dead_units", "saturation", "symmetry", "dead_gradient", "uninitialized", "killing_bias",
    "weight_scale", "residual_growth", "nonfinite", "zero_branches", "norm_scale",
    "attention_one_hot", "embedding_imbalance", "branch_imbalance",
]
"""What a finding is about; adding a finding adds its kind here and its rule in `_findings` (one
layer's statistics) or `_structure` (how the parts of the model meet)."""
INIT = "wi.init_model(model)"  # the fix, as code, when initializing anew fixes it


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """One parameterized layer on the batch, in execution order (its first call).

    Output statistics are over every element of the layer's first tensor output; "units" are
    the channels of a convolution's output (dim 1) and the last dim otherwise.
    """

    name: str  # qualified module name
    layer: str  # class name
    index: int  # execution order
    activation: str  # what feeds the layer (from discovery): "relu", "tanh", "linear", ...
    source: str  # what produced the activation's input: "Linear fc.3", "input", "add", ...
    out_mean: float
    out_std: float
    out_rms: float
    out_nonfinite: int  # NaN/Inf elements in the output
    in_rms: float  # the layer's input
    dead_fraction: float | None  # input units exactly 0 for every sample (dead ReLUs upstream)
    saturated_fraction: float | None  # input elements within 1% of a tanh/sigmoid-like bound
    grad_out_rms: float | None  # d loss / d output
    grad_weight_rms: float | None  # d loss / d weight
    weight_std: float | None
    recommended_std: float | None  # what init_model's "auto" would give this weight
    bias_mean: float | None
    identical_units: int  # output units whose weight row equals unit 0's (0 or 1: none)
    param_nonfinite: int  # NaN/Inf in the layer's own parameters
    param_max_abs: float
    param_denormals: int  # nonzero values below the dtype's smallest normal number
    hist_edges: tuple[float, ...] = ()  # histogram of a sample of the output
    hist_counts: tuple[int, ...] = ()
    positions: int = 1  # output elements per sample and unit (a convolution's H x W)
    # The part of the output that depends on the input: the std across the batch (dim 0) of
    # each output element, as an RMS over elements. A bias adds to out_rms, not to this; NaN
    # for a batch of one or a non-finite output.
    out_signal: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing wrong (or worth knowing), where, the numbers behind it, and the fix."""

    kind: FindingKind
    severity: Severity
    layer: str  # qualified module name, or "" for the whole model
    message: str  # what was measured, in words and numbers
    fix: str  # what to do, in words
    code: str  # the fix as code
    numbers: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """Per-layer statistics and findings for one forward and backward pass on a batch."""

    layers: tuple[LayerStats, ...]
    findings: tuple[Finding, ...]
    loss: float
    loss_kind: str  # "synthetic" (no target), or the loss function's name
    notes: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """True when no finding is a warning or an error: nothing measured predicts training
        slower or worse than from a variance-preserving init. Info findings (a weight scale
        that differs from the variance-preserving std while the measured signal is fine, a
        signal that falls 10-100x along a chain) do not count. Severities are calibrated on
        training runs (see `weightinit.diagnose._findings`): "warning" means measurably slower
        or worse training, "error" that the network cannot train as it stands."""
        return not any(f.severity in ("warning", "error") for f in self.findings)

    @property
    def worst(self) -> Severity | None:
        """The most severe finding's severity ("info" < "warning" < "error"); None without
        findings."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITIES.index)

    def __getitem__(self, name: str) -> LayerStats:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def kinds(self, severity: Severity = "warning") -> set[str]:
        """Kinds of the findings at `severity` or above."""
        low = SEVERITIES.index(severity)
        return {f.kind for f in self.findings if SEVERITIES.index(f.severity) >= low}

    def to_dict(self) -> dict[str, Any]:
        """The diagnosis as a JSON-ready dict: healthy, loss, notes, findings, layers."""
        return {"healthy": self.healthy, "loss": self.loss, "loss_kind": self.loss_kind,
                "notes": list(self.notes), "findings": [f.to_dict() for f in self.findings],
                "layers": [x.to_dict() for x in self.layers]}

    def to_json(self, indent: int | None = 2) -> str:
        """JSON, with NaN and infinities (a broken layer's statistics) written as null."""
        return json.dumps(_finite(self.to_dict()), indent=indent, allow_nan=False)

    # Presentation lives in _report.py (tables, figures, HTML), imported when asked for.
    def table(self) -> Any:
        """Per-layer statistics and the findings as a `rich` renderable."""
        from ._report import table

        return table(self)

    def figure(self) -> Any:
        """Activation std and gradient RMS against depth (log axis): a matplotlib Figure."""
        from ._report import depth_figure

        return depth_figure(self)

    def histograms(self) -> Any:
        """Per-layer output histograms (Glorot & Bengio 2010 style): a matplotlib Figure."""
        from ._report import histogram_figure

        return histogram_figure(self)

    def save_html(self, path: str) -> str:
        """Write one self-contained HTML file (figures embedded, no network); return the path."""
        from ._report import save_html

        return save_html(self, path)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
