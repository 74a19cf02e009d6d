"""The severity ladder of `diagnose`'s findings, and the measurements it was calibrated on.

A finding's severity says what happens if it is ignored:

- ``info``: differs from what a variance-preserving init gives, but the measured signal is
  fine, or nets measured like this trained as well (a weight std far from gain/sqrt(fan_in)
  behind a norm, as in transformers' own N(0, 0.02) init; a signal that falls 10-100x).
- ``warning``: measurably slower or worse training is expected.
- ``error``: the network cannot train as it stands (signal lost or blown up, no gradient,
  identical units, NaN).

``Diagnosis.healthy`` is "no warning and no error"; the CLI exits 1 on an error only.

Evidence (2 cores, torch 2.x, one thread). Unless said otherwise: MLPs of width 64 on
scikit-learn's digits, the demo's recipe (``weightinit.studies.train``: 20 epochs = 460 SGD
steps, lr 0.01, momentum 0.9, batch 64), diagnose on 512 training digits, 3 seeds each; "acc"
is the mean test accuracy, "loss" the last epoch's training loss. A variance-preserving init
("auto") reached acc 0.93-0.96 and loss 0.001-0.09 at every depth measured (5, 6, 10, 20).

Signal along a chain (last / first of the signal: the std across the batch of each output,
an RMS over elements; a bias adds to a layer's RMS but carries nothing of the input), then
acc / loss:

- 0.05-0.08: tanh 5 and 6 layers, torch default: 0.945, 0.943 / 0.07 (auto 0.018).
- 0.018-0.020: relu 5 layers (torch default), relu 6 x0.5 and relu 10 x0.7 of auto's
  weights: 0.953, 0.963, 0.947.
- 0.0055-0.0078: tanh 10 (torch default) 0.70 / 0.70; relu 6 (torch default) 0.88 / 0.29;
  tanh 20 x0.5 of auto 0.79 / 0.59.
- 5e-4 to 1e-3: relu 10 x0.5, relu 20 x0.7: 0.14, 0.47.
- 2e-4 and below: relu 10 and tanh 20 (torch default): chance (0.086) / 2.30. A 12-layer
  plain ReLU CNN with torch's default init measures 6e-7 (its RMS falls only 8x: the biases);
  in the shootout (AdamW) it ended at a validation cross-entropy of 1.77 +- 0.31 against
  0.47 +- 0.02 from auto.
- 3.0-4.4: relu 5 and 6 x1.5 of auto: 0.938, 0.929 (auto 0.959, 0.955).
- 9.4-19: relu 5 x2, relu 10 x1.5, relu 6 x2: 0.932, 0.926, 0.927, first-epoch loss 7-13
  (auto 2.0-2.2).
- 253, 978: relu 10 x2, relu 20 x1.5: the loss went NaN.

The gradient at each layer's output (first / last of a chain, from unit noise at the output)
follows the same ladder: 0.012-0.034 trained as auto did (tanh 5, relu 5, relu 6 x0.5);
0.002-0.005 ended at acc 0.70-0.88, and at width 256 (tanh 6-8 layers, torch default:
0.0033-0.0096) at auto's accuracy but with a last-epoch loss of 0.03-0.045 against 0.003;
below 1e-3, acc 0.09-0.47. Growing: 15-36 (relu 10 x1.5, tanh 20 x1.5) acc 0.93, 0.75;
202-878, NaN or acc 0.38.

Dead units (auto, width 64, 6 layers; a fraction of one layer's units switched off by a bias
of -100): 50-80% dead acc 0.951-0.956 (none dead: 0.955), 90% 0.942, 95% 0.912, 100% 0.088.

Saturated tanh inputs (within 1% of +-1; auto x1.5, x2, x3, x4, x6, 5-10 layers): 22-24%
acc 0.93 vs 0.955 at 5 layers, 0.89 vs 0.94 at 10; 40-41% 0.84-0.88; 60% 0.81; 70% 0.77;
81% 0.76 with a last-epoch loss of 0.74 (auto 0.018): it no longer fits the training set.

Transformers with their own N(0, 0.02) init (the zoo shootout: byte-level LMs, 4 layers,
width 64, AdamW, 200 steps, 3 seeds): GPT-2 2.449 +- 0.016 vs auto 2.383 +- 0.009, Llama
2.174 +- 0.016 vs 2.154 +- 0.017 nats/byte: a few percent, so a weight scale that differs
from the variance-preserving std behind a norm is "info".
"""

from __future__ import annotations

from typing import Literal

from ._types import Severity

VANISH = (1e-1, 1e-2, 1e-3)  # info, warning, error: last / first of a chain below these
EXPLODE = (3.0, 1e1, 1e2)  # ... above these
DEAD = (0.6, 0.9, 1.0)  # input units 0 for every sample (1.0: all of them)
SATURATED = (0.2, 0.8)  # warning, error: inputs within 1% of a tanh/sigmoid-like bound


def grade(value: float, levels: tuple[float, ...], *, below: bool) -> Severity | None:
    """The severity of `value` on a ladder of (info, warning, error) thresholds (or (warning,
    error) when two are given): ``below`` when smaller is worse; None under the first step."""
    ladder: tuple[Severity, ...] = ("info", "warning", "error")
    names = ladder[len(ladder) - len(levels):]
    found: Severity | None = None
    for name, level in zip(names, levels, strict=True):
        if (value < level) if below else (value >= level):
            found = name
    return found


Trend = Literal["vanishing", "exploding"]

IF_IGNORED: dict[tuple[Trend, Severity], str] = {
    ("vanishing", "info"):
        "If ignored: training still starts; nets measured with a fall of 10-100x reached the "
        "accuracy of a variance-preserving init, with a slower first epoch.",
    ("vanishing", "warning"):
        "If ignored: expect measurably slower training; nets measured with a fall of "
        "100-1000x ended at 0.70-0.88 test accuracy where a variance-preserving init reached "
        "0.94-0.96 in the same steps.",
    ("vanishing", "error"):
        "If ignored: the network cannot train as it stands; the last layers see next to "
        "nothing of the input and the first get next to no gradient (nets measured with a fall "
        "beyond 1000x stayed at or near chance).",
    ("exploding", "info"):
        "If ignored: training starts with large outputs and losses and ended a few percent "
        "worse in our measurements.",
    ("exploding", "warning"):
        "If ignored: expect unstable, measurably worse training (a first-epoch loss several "
        "times higher; lower final accuracy), or a smaller learning rate to compensate.",
    ("exploding", "error"):
        "If ignored: the network cannot train as it stands; nets measured with growth beyond "
        "100x overflowed to NaN or diverged in the first steps.",
}
"""What happens if a vanishing or exploding finding is ignored, by severity."""
