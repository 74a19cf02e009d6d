"""Statistical helpers shared by the scheme tests: Kolmogorov–Smirnov tests that stay exact for
samples rounded to a low-precision dtype, and rounding of reference numbers to a dtype.

The test modules load this file by path (tests run with --import-mode=importlib, so sibling
modules are not importable by name).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

# Dtypes whose rounding is coarse enough to show up in a KS test of ~1e5 samples.
REDUCED = (torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class KS:
    """Result of a one-sample KS test, with what a failure message needs."""

    statistic: float
    pvalue: float
    n: int
    method: str

    def describe(self) -> str:
        return f"KS[{self.method}] D={self.statistic:.3g}, p={self.pvalue:.3g}, n={self.n}"


def round_to(value: float, dtype: torch.dtype) -> float:
    """`value` as `dtype` stores it (round to nearest), back as a Python float."""
    return float(torch.tensor(value, dtype=torch.float64).to(dtype).double())


def rounding_cells(values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """For distinct finite values `v` of a floating dtype, the interval (lo, hi) of reals that
    round to `v` under round-to-nearest: the midpoints to the neighbouring representable values.
    Computed in float64, where those midpoints are exact for every dtype up to float32."""
    dtype = values.dtype
    up = torch.nextafter(values, torch.full_like(values, float("inf")))
    down = torch.nextafter(values, torch.full_like(values, float("-inf")))
    v = values.double()
    hi = (v + up.double()) / 2
    lo = (v + down.double()) / 2
    # The largest finite value's upper neighbour is inf: everything above rounds to it (or to inf,
    # which a finite sample never is), so its cell is open above. Same below.
    big = torch.finfo(dtype).max
    hi = torch.where(values == big, torch.full_like(hi, float("inf")), hi)
    lo = torch.where(values == -big, torch.full_like(lo, float("-inf")), lo)
    return lo.numpy(), hi.numpy()


def ks_rounded(samples: torch.Tensor, dist) -> KS:
    """KS test of samples that are draws of `dist` rounded (once, to nearest) to samples.dtype.

    A plain KS test compares the empirical CDF with the continuous CDF F at the sample values.
    Rounded samples pile up on a grid (bfloat16 keeps 8 significant bits: ~256 values per
    octave), so the empirical CDF jumps by the whole probability of a rounding cell at each grid
    value v while F(v) sits in the middle of that cell: D is then about half a cell's mass no
    matter how good the sampler is, and for large n the test rejects a perfect sampler.

    Instead, compare with the distribution of the ROUNDED variable: the sample rounds to a value
    <= v exactly when the unrounded draw X is < hi(v), the upper boundary of v's rounding cell,
    and to a value < v exactly when X < lo(v). So at each distinct value v we compare
    the empirical CDF F_n(v) with F(hi(v)) and its left limit F_n(v-) with F(lo(v)). Those are
    exactly the deviations |G_n(t) - F(t)| of the (unseen) unrounded sample's empirical CDF G_n
    at the points t = lo(v), hi(v). Our D is the maximum over a subset of points of the quantity
    whose supremum is the continuous KS statistic D_n of the unrounded sample; hence D <= D_n, and
    the p-value from the continuous Kolmogorov distribution, kstwo.sf(D, n) >= P(D_n >= D) >=
    P(our D >= observed), is conservative: a correct sampler is rejected with probability at most
    the significance level, and any real deviation in the distribution still shows up at the grid
    points.
    """
    flat = samples.detach().reshape(-1).cpu()
    if not torch.isfinite(flat).all():
        raise AssertionError(f"non-finite samples among {flat.numel()}")
    n = flat.numel()
    values, counts = torch.unique(flat, sorted=True, return_counts=True)
    lo, hi = rounding_cells(values)
    cum = np.cumsum(counts.numpy()) / n  # F_n(v)
    left = cum - counts.numpy() / n  # F_n(v-)
    d = max(float(np.max(np.abs(cum - dist.cdf(hi)))),
            float(np.max(np.abs(left - dist.cdf(lo)))))
    return KS(d, float(scipy.stats.kstwo.sf(d, n)), n, "rounded")


def ks(samples: torch.Tensor, dist) -> KS:
    """KS test of samples against the continuous distribution `dist` (a frozen scipy one).

    float32 and float64 samples go through scipy.stats.kstest directly: rounding a float64 draw
    to float32 moves it by a relative 6e-8, which changes the CDF by ~1e-7, far below the KS
    resolution 1/sqrt(n) for any n we use. bfloat16 and float16 use `ks_rounded`.
    """
    if samples.dtype in REDUCED:
        return ks_rounded(samples, dist)
    flat = samples.detach().reshape(-1).cpu().double().numpy()
    if not np.isfinite(flat).all():
        raise AssertionError(f"non-finite samples among {flat.size}")
    result = scipy.stats.kstest(flat, dist.cdf)
    return KS(float(result.statistic), float(result.pvalue), flat.size, "continuous")


def describe(dist) -> str:
    """'norm(loc=0, scale=0.1)' for a frozen scipy distribution."""
    args = ", ".join(f"{a:.6g}" for a in dist.args)
    kwds = ", ".join(f"{k}={v:.6g}" for k, v in dist.kwds.items())
    return f"{dist.dist.name}({', '.join(x for x in (args, kwds) if x)})"
