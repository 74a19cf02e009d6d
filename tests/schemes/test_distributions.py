"""What the schemes put into tensors: exact distributions (KS tests), bounds, structure and std.

One table, as in JAX's initializer tests: every scheme x shape x dtype, filled from the keyed
stream (and, for a subset, from a torch.Generator), then checked by what kind of scheme it is:

- per-element random schemes: a Kolmogorov–Smirnov test against the exact distribution,
  computed independently of the library (scipy), and the support bounds;
- Orthogonal / DeltaOrthogonal: (semi-)orthogonality of the flattened matrix / centre tap;
- Identity, ZerO, Sparse, constants: their exact structure.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy
import pytest
import scipy.linalg
import scipy.stats
import torch

import weightinit as wi
from weightinit.schemes import truncated_std_factor


def _load_stats():
    name = "_weightinit_tests_schemes_stats"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_stats.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


stats = _load_stats()

MILLION = 1 << 20
P_MIN = 1e-4  # KS significance: a correct sampler fails one of these tests with probability 1e-4

# --- the table -----------------------------------------------------------------------------------
SHAPES = {
    "linear": ((256, 512), None),
    "conv": ((64, 32, 3, 3), None),
    "grouped_conv": ((64, 32, 3, 3), wi.compute_fans((64, 32, 3, 3), "conv", groups=4)),
    "conv_transpose": ((32, 16, 3, 3), wi.compute_fans((32, 16, 3, 3), "conv_transpose")),
    "small": ((3, 5), None),
}
CONV_CASES = ("conv", "grouped_conv", "conv_transpose")
TWO_D_CASES = ("linear", "small")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}

# (id, spec, kind). kind selects the checks.
SCHEMES = [
    ("zeros", wi.Zeros(), "constant"),
    ("ones", wi.Ones(), "constant"),
    ("constant", wi.Constant(0.1), "constant"),  # 0.1 is not representable: checks rounding
    ("normal", wi.Normal(std=0.02, mean=0.1), "random"),
    ("uniform", wi.Uniform(-0.3, 0.7), "random"),
    ("truncated_normal", wi.TruncatedNormal(std=0.5), "random"),
    # a + b > 0: the keyed stream samples the mirror image in the lower tail
    ("truncated_normal_mirrored", wi.TruncatedNormal(std=0.5, mean=0.1, a=-1.0, b=3.0), "random"),
    ("truncated_normal_lower", wi.TruncatedNormal(std=2.0, mean=-1.0, a=-4.0, b=-0.5), "random"),
    ("vs_normal_fan_in", wi.VarianceScaling(2.0, "fan_in", "normal"), "random"),
    ("vs_uniform_fan_out", wi.VarianceScaling(1.0, "fan_out", "uniform"), "random"),
    ("vs_truncated_fan_avg", wi.VarianceScaling(0.5, "fan_avg", "truncated_normal"), "random"),
    ("he", wi.He(), "random"),
    ("he_tanh_uniform", wi.He("tanh", distribution="uniform"), "random"),
    ("he_fan_out_truncated", wi.He(mode="fan_out", distribution="truncated_normal"), "random"),
    ("glorot", wi.Glorot(), "random"),
    ("glorot_normal", wi.Glorot("normal", gain=2.0), "random"),
    ("lecun", wi.LeCun(), "random"),
    ("lecun_truncated", wi.LeCun("truncated_normal"), "random"),
    ("orthogonal", wi.Orthogonal(gain=1.5), "orthogonal"),
    ("identity", wi.Identity(gain=1.5), "identity"),
    ("delta_orthogonal", wi.DeltaOrthogonal(gain=1.5), "delta"),
    ("sparse", wi.Sparse(0.3, std=0.05), "sparse"),
    ("zero", wi.ZerO(), "zero"),
]
SCHEME = {sid: (spec, kind) for sid, spec, kind in SCHEMES}


def applies(kind: str, case: str) -> bool:
    if kind == "delta":
        return case in CONV_CASES  # DeltaOrthogonal: conv kernels only
    if kind == "sparse":
        return case in TWO_D_CASES  # Sparse: 2-d only
    return True


def spec_for(sid: str, case: str) -> wi.Spec:
    spec, _ = SCHEME[sid]
    if sid == "identity" and case == "grouped_conv":
        return wi.Identity(gain=spec.gain, groups=4)  # Dirac per group, like dirac_(groups=4)
    return spec


def fans_for(case: str) -> wi.Fans:
    shape, fans = SHAPES[case]
    if fans is not None:
        return fans
    return wi.compute_fans(shape, "linear" if len(shape) == 2 else "conv")


def table(kinds=None, cases=None, dtypes=None, marks=None):
    """pytest params (sid, case, dtype) of the scheme x shape x dtype table, filtered."""
    out = []
    for sid, _, kind in SCHEMES:
        if kinds is not None and kind not in kinds:
            continue
        for case in SHAPES:
            if not applies(kind, case) or (cases is not None and case not in cases):
                continue
            for dname, dtype in DTYPES.items():
                if dtypes is not None and dname not in dtypes:
                    continue
                marks = marks or {}
                extra = marks.get((sid, case, dname), marks.get((sid, case), ()))
                out.append(pytest.param(sid, case, dtype, id=f"{sid}-{case}-{dname}",
                                        marks=extra))
    return out


def fill(sid: str, case: str, dtype: torch.dtype, source: str) -> torch.Tensor:
    shape, fans = SHAPES[case]
    spec = spec_for(sid, case)
    tensor = torch.full(shape, 7.0, dtype=dtype)
    if source == "keyed":
        out = spec.fill_(tensor, fans=fans, key="w", seed=1234)
    else:
        out = spec.fill_(tensor, fans=fans, generator=torch.Generator().manual_seed(1234))
    assert out is tensor, "fill_ must fill in place and return its argument"
    assert out.dtype == dtype and tuple(out.shape) == shape
    return out


# --- the exact distributions, computed without the library's own formulas ------------------------
def scipy_c(a: float, b: float) -> float:
    """std of a standard normal truncated to [a, b], by scipy."""
    return float(scipy.stats.truncnorm(a, b).std())


def expected_distribution(spec: wi.Spec, fans: wi.Fans):
    """The frozen scipy distribution each element of a per-element scheme follows."""
    if isinstance(spec, wi.Normal):
        return scipy.stats.norm(loc=spec.mean, scale=spec.std_for())
    if isinstance(spec, wi.Uniform):
        return scipy.stats.uniform(loc=spec.low, scale=spec.high - spec.low)
    if isinstance(spec, wi.TruncatedNormal):
        sigma = spec.std_for() / scipy_c(spec.a, spec.b)
        return scipy.stats.truncnorm(spec.a, spec.b, loc=spec.mean, scale=sigma)
    std = spec.std_for(fans)  # the presets' formulas have their own tests in test_specs.py
    if spec.distribution == "normal":
        return scipy.stats.norm(scale=std)
    if spec.distribution == "uniform":
        bound = math.sqrt(3.0) * std
        return scipy.stats.uniform(loc=-bound, scale=2 * bound)
    assert spec.distribution == "truncated_normal"
    return scipy.stats.truncnorm(-2.0, 2.0, scale=std / scipy_c(-2.0, 2.0))


def support(dist) -> tuple[float, float]:
    return tuple(float(x) for x in dist.support())


def check_ks(samples: torch.Tensor, dist, what: str) -> None:
    result = stats.ks(samples, dist)
    assert result.pvalue > P_MIN, (
        f"{what}: samples do not follow {stats.describe(dist)}: {result.describe()} "
        f"(need p > {P_MIN})"
    )


def check_bounds(samples: torch.Tensor, dist, what: str) -> None:
    low, high = support(dist)
    # A draw in [low, high] rounds (monotonically) into [round(low), round(high)].
    lo = stats.round_to(low, samples.dtype) if math.isfinite(low) else -math.inf
    hi = stats.round_to(high, samples.dtype) if math.isfinite(high) else math.inf
    smin, smax = float(samples.min()), float(samples.max())
    assert lo <= smin and smax <= hi, (
        f"{what}: samples span [{smin!r}, {smax!r}], outside the support [{low!r}, {high!r}] "
        f"(as {samples.dtype}: [{lo!r}, {hi!r}])"
    )


def unit_roundoff(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps / 2  # 2**-24 for float32, 2**-8 for bfloat16


def check_semi_orthogonal(matrix: torch.Tensor, gain: float, what: str) -> None:
    """W W^T = gain^2 I (rows <= cols) or W^T W = gain^2 I (rows > cols), to rounding."""
    w = matrix.double()
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    err = float((gram - gain**2 * torch.eye(min(rows, cols), dtype=torch.float64)).abs().max())
    u = unit_roundoff(matrix.dtype)
    # float32: the matrix is built by a float64 QR and rounded once to float32, so each entry
    # moves by a relative <= u = 2**-24 ~ 6e-8. A Gram entry is a sum of up to 512 products of
    # such entries, each perturbed by <= 2u relative; since the rows (columns) have norm `gain`,
    # Cauchy–Schwarz bounds the total change by (2u + u^2) gain^2 ~ 1.2e-7 gain^2 (summing 512
    # products of size ~1/512 naively gives ~1e-6), plus ~1e-15 from the float64 QR and matmul.
    # 1e-5 is the acceptance tolerance, with ample margin.
    # bfloat16: the same bound with u = 2**-8, (2u + u^2) gain^2 ~ 7.8e-3 gain^2.
    tol = 1e-5 if matrix.dtype == torch.float32 else (2 * u + u * u) * gain**2 + 1e-12
    assert err <= tol, (
        f"{what}: {rows}x{cols} matrix is not gain^2-orthogonal (gain={gain}): max |error| "
        f"{err:.3g} > {tol:.3g}"
    )


def reference_zero(shape: tuple[int, ...]) -> torch.Tensor:
    """ZerO, Algorithm 1 (Zhao et al. 2021), from scipy's Sylvester Hadamard matrix."""
    out, inp = shape[0], shape[1]
    if out <= inp:
        block = torch.eye(out, inp, dtype=torch.float64)
    else:
        m = math.ceil(math.log2(out))
        c = 2.0 ** (-(m - 1) / 2)
        hadamard = torch.from_numpy(scipy.linalg.hadamard(2**m).astype("float64"))
        block = c * hadamard[:out, :inp]
    full = torch.zeros(shape, dtype=torch.float64)
    full[(slice(None), slice(None), *(k // 2 for k in shape[2:]))] = block
    return full


def check_scheme(sid: str, case: str, tensor: torch.Tensor, source: str) -> None:
    shape, _ = SHAPES[case]
    spec = spec_for(sid, case)
    kind = SCHEME[sid][1]
    fans = fans_for(case)
    what = f"{spec!r} on {case} {shape} ({fans}), {tensor.dtype}, {source}"
    dtype = tensor.dtype
    if kind == "random":
        dist = expected_distribution(spec, fans)
        check_bounds(tensor, dist, what)
        check_ks(tensor, dist, what)
    elif kind == "constant":
        value = {"Zeros": 0.0, "Ones": 1.0}.get(type(spec).__name__, getattr(spec, "value", None))
        assert torch.equal(tensor, torch.full(shape, value, dtype=torch.float64).to(dtype)), what
        assert spec.std_for(fans) == 0.0
    elif kind == "orthogonal":
        check_semi_orthogonal(tensor.reshape(shape[0], -1), spec.gain, what)
    elif kind == "delta":
        centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
        off_centre = tensor.clone()
        off_centre[centre] = 0
        assert not off_centre.any(), f"{what}: non-zero values outside the centre tap"
        check_semi_orthogonal(tensor[centre], spec.gain, what)
    elif kind == "identity":
        ref = torch.empty(shape, dtype=torch.float64)
        if len(shape) == 2:
            torch.nn.init.eye_(ref)
        else:
            torch.nn.init.dirac_(ref, groups=spec.groups)
        assert torch.equal(tensor, (spec.gain * ref).to(dtype)), what
    elif kind == "zero":
        assert torch.equal(tensor, reference_zero(shape).to(dtype)), what
    elif kind == "sparse":
        zeros = (tensor == 0).sum(dim=0)
        want = math.ceil(spec.sparsity * shape[0])
        assert bool((zeros == want).all()), (
            f"{what}: zeros per column {zeros.tolist()[:8]}..., want exactly {want}"
        )
        nonzero = tensor[tensor != 0]
        check_ks(nonzero, scipy.stats.norm(scale=spec.std), f"{what}, non-zero values")
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize(("sid", "case", "dtype"), table())
def test_keyed_fill_has_the_exact_distribution_or_structure(sid, case, dtype):
    tensor = fill(sid, case, dtype, "keyed")
    check_scheme(sid, case, tensor, "keyed")


def generator_subset():
    """The generator path for a subset of the table: every scheme on the 4-d conv and the tiny
    (3, 5) shape (DeltaOrthogonal: conv only), plus the large (256, 512) matrix for the
    per-element random schemes and Sparse, where n = 131072 gives the KS test its power."""
    keep = []
    for p in table():
        sid, case, _ = p.values
        kind = SCHEME[sid][1]
        if case in ("conv", "small") or (case == "linear" and kind in ("random", "sparse")):
            keep.append(p)
    return keep


@pytest.mark.parametrize(("sid", "case", "dtype"), generator_subset())
def test_generator_fill_has_the_exact_distribution_or_structure(sid, case, dtype):
    tensor = fill(sid, case, dtype, "generator")
    check_scheme(sid, case, tensor, "generator")


@pytest.mark.parametrize("dtype", [
    pytest.param(torch.bfloat16, id="bfloat16"),
    pytest.param(torch.float16, id="float16"),
])
def test_generator_uniform_in_reduced_precision_is_exact_on_a_million_samples(dtype):
    spec = wi.Uniform(-0.3, 0.7)
    dist = scipy.stats.uniform(loc=-0.3, scale=1.0)
    tensor = spec.fill_(torch.empty(MILLION, dtype=dtype),
                        generator=torch.Generator().manual_seed(0))
    check_bounds(tensor, dist, f"{spec!r} {dtype} generator")
    check_ks(tensor, dist, f"{spec!r} {dtype} generator")
    keyed = spec.fill_(torch.empty(MILLION, dtype=dtype), key="w")
    check_ks(keyed, dist, f"{spec!r} {dtype} keyed")


@pytest.mark.parametrize("dtype", [
    pytest.param(torch.float16, id="float16"),
    pytest.param(torch.float64, id="float64"),
])
@pytest.mark.parametrize("spec", [
    wi.Normal(std=0.02, mean=0.1), wi.Uniform(-0.3, 0.7), wi.TruncatedNormal(std=0.5),
    wi.TruncatedNormal(std=2.0, mean=-1.0, a=-4.0, b=-0.5),
    wi.TruncatedNormal(std=0.3, a=5.0, b=9.0),  # one-sided, far out: through q
], ids=repr)
def test_keyed_fills_in_the_other_dtypes_are_exact_on_a_million_samples(spec, dtype):
    # The float32 and bfloat16 cases are in the table above; a million samples give KS the
    # power to see a 1e-3 error in the CDF. Truncated normals are scaled by our sigma: scipy's
    # std of a far tail such as [5, 9] is off by ~1e-12, which the float64 bounds would see
    # (our factor is checked against an independent quadrature in
    # test_truncated_std_factor_is_accurate).
    dist = expected_distribution(spec, wi.Fans(1, 1, 1))
    if isinstance(spec, wi.TruncatedNormal):
        dist = scipy.stats.truncnorm(spec.a, spec.b, loc=spec.mean, scale=spec.sigma)
    tensor = spec.fill_(torch.empty(MILLION, dtype=dtype), key="w", seed=11)
    check_bounds(tensor, dist, f"{spec!r} {dtype} keyed")
    check_ks(tensor, dist, f"{spec!r} {dtype} keyed")


def test_orthogonal_tall_and_wide():
    """rows > cols gives orthonormal columns, rows <= cols orthonormal rows; conv kernels are
    flattened over their trailing dims; DeltaOrthogonal's centre tap likewise."""
    for shape in [(40, 8), (8, 40), (64, 4, 3, 3), (7, 7)]:
        for gain in (1.0, 0.5):
            t = wi.Orthogonal(gain).fill_(torch.empty(shape), key="w", seed=3)
            check_semi_orthogonal(t.reshape(shape[0], -1), gain, f"Orthogonal({gain}) {shape}")
    for shape in [(16, 32, 3, 3), (32, 16, 5), (8, 8, 2, 2, 2)]:
        t = wi.DeltaOrthogonal(2.0).fill_(torch.empty(shape), key="w", seed=3)
        centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
        check_semi_orthogonal(t[centre], 2.0, f"DeltaOrthogonal(2.0) {shape}")
        assert int((t != 0).sum()) == int((t[centre] != 0).sum())


def test_orthogonal_is_haar_distributed():
    """Entries of a Haar-random n x n orthogonal matrix times sqrt(n) are close to N(0, 1) (the
    sign fix in the QR makes the distribution Haar; without it entries are biased)."""
    n = 256
    t = wi.Orthogonal().fill_(torch.empty(n, n), key="haar", seed=0).double()
    diag = torch.diagonal(t) * math.sqrt(n)
    # Without the sign correction the diagonal of Q is biased towards positive values.
    assert abs(float(diag.mean())) < 5 / math.sqrt(n), f"diagonal mean {float(diag.mean())}"
    check_ks(t * math.sqrt(n), scipy.stats.norm(), "Orthogonal(256x256) * 16")


# --- exact std formulas on the table's shapes ----------------------------------------------------
def moment_std(spec: wi.Spec, tensor: torch.Tensor) -> float:
    """What `spec.std` claims, measured: the population std for Identity and ZerO; the root mean
    square for the orthogonal schemes, whose formula is their fixed energy gain^2 * min(r, c)
    over numel (the random mean of the entries is not part of it)."""
    x = tensor.double()
    if isinstance(spec, (wi.Orthogonal, wi.DeltaOrthogonal)):
        return float(x.pow(2).mean().sqrt())
    return float(x.std(correction=0))


@pytest.mark.parametrize(
    ("sid", "case", "dtype"),
    table(kinds=("identity", "zero", "delta", "orthogonal")),
)
def test_std_formula_is_exact_for_structured_schemes(sid, case, dtype):
    """Identity and ZerO are deterministic, and the orthogonal schemes have a fixed sum of
    squares: spec.std_for(fans) must equal what fill_ writes, to rounding. float32 rounds each value
    by a relative 2**-24 (so 1e-6); bfloat16 by 2**-8 (e.g. ZerO's c = 2**-2.5), so 2**-8."""
    tensor = fill(sid, case, dtype, "keyed")
    spec = spec_for(sid, case)
    # Joint schemes are built on the tensor's own (out, in, *kernel) shape whatever its layout
    # (grouped, transposed), so their std is stated for the shape's plain fans (see Spec.std).
    fans = fans_of_shape(SHAPES[case][0])
    rtol = 1e-6 if dtype == torch.float32 else 2.0**-8
    measured = moment_std(spec, tensor)
    assert measured == pytest.approx(spec.std_for(fans), rel=rtol), (
        f"{spec!r} on {case} {SHAPES[case][0]} with {fans}: std_for(fans)={spec.std_for(fans)!r}, "
        f"filled tensor {measured!r}"
    )


# --- std on 2**20 elements -----------------------------------------------------------------------
BIG_FANS = wi.Fans(300, 700)  # deliberately not the (1024, 1024) tensor's own fans

# (id, spec, shape, fans, rtol). The relative standard error of the sample std of n normal
# draws is 1/sqrt(2n) ~ 0.07% for n = 2**20 (smaller for the uniform and truncated normal, whose
# kurtosis is lower), so a 1% tolerance is more than 10 sigma: a failure is a wrong std, not bad
# luck. Sparse(0.5) keeps half the entries: 1/sqrt(2 * 2**19) ~ 0.1%, still 10 sigma.
# Deterministic schemes must match to 1e-6 (float32 rounding of each value is 6e-8).
BIG = [
    ("zeros", wi.Zeros(), (1024, 1024), None, 0.0),
    ("ones", wi.Ones(), (1024, 1024), None, 0.0),
    ("constant", wi.Constant(-3.0), (1024, 1024), None, 0.0),
    ("normal", wi.Normal(std=0.02, mean=0.1), (1024, 1024), None, 0.01),
    ("uniform", wi.Uniform(-0.3, 0.7), (1024, 1024), None, 0.01),
    ("truncated_normal", wi.TruncatedNormal(std=0.5), (1024, 1024), None, 0.01),
    ("truncated_normal_mirrored", wi.TruncatedNormal(std=0.5, mean=0.1, a=-1.0, b=3.0),
     (1024, 1024), None, 0.01),
    ("vs_normal", wi.VarianceScaling(2.0, "fan_in", "normal"), (1024, 1024), BIG_FANS, 0.01),
    ("vs_uniform", wi.VarianceScaling(1.0, "fan_out", "uniform"), (1024, 1024), BIG_FANS, 0.01),
    ("vs_truncated", wi.VarianceScaling(0.5, "fan_avg", "truncated_normal"), (1024, 1024),
     BIG_FANS, 0.01),
    ("he", wi.He(), (1024, 1024), BIG_FANS, 0.01),
    ("glorot", wi.Glorot(), (1024, 1024), BIG_FANS, 0.01),
    ("lecun", wi.LeCun("truncated_normal"), (1024, 1024), BIG_FANS, 0.01),
    # Joint schemes: a real shape of 2**20 elements; fans from that shape.
    ("orthogonal", wi.Orthogonal(1.5), (512, 2048), None, 0.01),
    ("sparse", wi.Sparse(0.5, std=0.02), (1024, 1024), None, 0.01),
    ("identity", wi.Identity(1.5), (1024, 1024), None, 1e-6),
    ("zero_hadamard", wi.ZerO(), (2048, 512), None, 1e-6),
    ("zero_identity", wi.ZerO(), (1024, 1024), None, 1e-6),
    ("delta_orthogonal", wi.DeltaOrthogonal(1.5), (256, 256, 4, 4), None, 1e-6),
]


@pytest.mark.parametrize(("sid", "spec", "shape", "fans", "rtol"), BIG,
                         ids=[b[0] for b in BIG])
def test_sample_std_matches_spec_std_on_a_million_elements(sid, spec, shape, fans, rtol):
    assert math.prod(shape) == MILLION
    tensor = spec.fill_(torch.empty(shape), fans=fans, key=sid, seed=5)
    want = spec.std_for(fans if fans is not None else fans_of_shape(shape))
    got = moment_std(spec, tensor)
    if rtol == 0.0:
        assert got == want == 0.0
        return
    assert got == pytest.approx(want, rel=rtol), (
        f"{spec!r}, shape {shape}, fans {fans}: sample std {got!r}, spec.std {want!r} "
        f"(rel. error {got / want - 1:.2e}, tolerance {rtol})"
    )


def fans_of_shape(shape):
    return wi.compute_fans(shape, "linear" if len(shape) == 2 else "conv")


def test_fans_given_explicitly_work_for_any_tensor_shape():
    tensor = wi.He().fill_(torch.empty(MILLION), fans=BIG_FANS, key="w")
    assert float(tensor.std()) == pytest.approx(math.sqrt(2 / 300), rel=0.01)


# --- the truncated normal's std correction -------------------------------------------------------
def reference_c(a: float, b: float) -> float:
    """c(a, b) by quadrature, without cancellation: substitute x = m + h t (m, h the interval's
    centre and half-width) and weight by exp(-x^2/2 + m^2/2) = exp(-m h t - h^2 t^2 / 2), so
    nothing underflows in the tails and the variance h^2 Var(t) is not a difference of O(1)
    numbers for narrow intervals. The weight is an entire function of t with |m h| < 5 here, so
    100-point Gauss–Legendre is exact to rounding. Infinite intervals use scipy's truncnorm."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return scipy_c(a, b)
    m, h = (a + b) / 2, (b - a) / 2
    t, w = numpy.polynomial.legendre.leggauss(100)
    weight = w * numpy.exp(-m * h * t - h * h * t * t / 2)
    z = weight.sum()
    mean = (weight * t).sum() / z
    return float(h * math.sqrt(((weight * (t - mean) ** 2).sum()) / z))


@pytest.mark.parametrize(("a", "b"), [
    (-2.0, 2.0), (-1.0, 3.0), (-3.0, 1.0), (-0.1, 0.1), (0.5, 3.0), (-2.5, -0.5), (2.0, 5.0),
    (-8.0, -5.0), (3.0, 4.0), (-0.01, 0.01), (-9.0, -8.0),
    (0.0, math.inf), (-math.inf, 0.0), (-math.inf, 1.0), (1.5, math.inf), (-math.inf, -6.0),
    (6.0, 7.0),
    (8.0, 9.0),
    (6.0, math.inf),
    (-1e-3, 1e-3),
    (-1e-4, 1e-4),
    (1.0, 1.0001),
])
def test_truncated_std_factor_is_accurate(a, b):
    want = reference_c(a, b)
    got = truncated_std_factor(a, b)
    assert got == pytest.approx(want, rel=1e-8), f"c({a}, {b}) = {got!r}, reference {want!r}"


def test_quadrature_reference_agrees_with_scipy_where_scipy_is_accurate():
    for a, b in [(-2.0, 2.0), (-1.0, 3.0), (0.5, 3.0), (-8.0, -5.0), (2.0, 5.0)]:
        assert reference_c(a, b) == pytest.approx(scipy_c(a, b), rel=1e-10), (a, b)


def test_truncated_std_factor_reference_value():
    assert truncated_std_factor(-2.0, 2.0) == pytest.approx(0.8796256610342398, rel=1e-14)
    assert wi.TruncatedNormal(std=1.0).sigma == pytest.approx(1 / 0.8796256610342398, rel=1e-14)


def test_truncated_normal_far_upper_tail_has_the_requested_std():
    spec = wi.TruncatedNormal(std=0.1, a=8.0, b=9.0)
    tensor = spec.fill_(torch.empty(1 << 16, 1), key="w")
    assert float(tensor.double().std()) == pytest.approx(0.1, rel=0.02)


# --- reproducibility and RNG state ---------------------------------------------------------------
ALL_SPECS = [pytest.param(sid, id=sid) for sid, _, _ in SCHEMES]


def small_shape(kind: str) -> tuple[int, ...]:
    return (24, 16) if kind == "sparse" else (24, 16, 3, 3)


@pytest.mark.parametrize("sid", ALL_SPECS)
def test_generator_and_keyed_fills_reproduce(sid):
    spec, kind = SCHEME[sid]
    shape = small_shape(kind)

    def with_generator(seed):
        return spec.fill_(torch.empty(shape), generator=torch.Generator().manual_seed(seed))

    def keyed(seed, key):
        return spec.fill_(torch.empty(shape), seed=seed, key=key)

    assert torch.equal(with_generator(11), with_generator(11))
    assert torch.equal(keyed(11, "w"), keyed(11, "w"))
    assert torch.equal(keyed(0, "w"), spec.fill_(torch.empty(shape), key="w"))  # seed defaults to 0
    if kind not in ("constant", "identity", "zero"):
        assert not torch.equal(with_generator(11), with_generator(12))
        assert not torch.equal(keyed(11, "w"), keyed(12, "w"))
        assert not torch.equal(keyed(11, "w"), keyed(11, "v"))


@pytest.mark.parametrize("sid", ALL_SPECS)
def test_fills_do_not_touch_the_global_rng(sid):
    spec, kind = SCHEME[sid]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(99)
        before = torch.random.get_rng_state()
        spec.fill_(torch.empty(small_shape(kind)), key="w", seed=3)
        assert torch.equal(torch.random.get_rng_state(), before), "keyed fill changed torch's RNG"
        spec.fill_(torch.empty(small_shape(kind)), generator=torch.Generator().manual_seed(1))
        assert torch.equal(torch.random.get_rng_state(), before), (
            "generator fill changed torch's RNG")


def test_without_key_or_generator_uses_the_global_rng_like_torch_nn_init():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        a = wi.Normal().fill_(torch.empty(100))
        torch.manual_seed(5)
        b = wi.Normal().fill_(torch.empty(100))
    assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64], ids=["float16", "float64"])
@pytest.mark.parametrize("sid", ALL_SPECS)
def test_float16_and_float64_smoke(sid, dtype):
    spec, kind = SCHEME[sid]
    for kwargs in ({"key": "w", "seed": 1}, {"generator": torch.Generator().manual_seed(1)}):
        tensor = spec.fill_(torch.full(small_shape(kind), 7.0, dtype=dtype), **kwargs)
        assert tensor.dtype == dtype
        assert bool(torch.isfinite(tensor).all()), f"{spec!r} {dtype} {kwargs}"
        assert not bool((tensor == 7.0).all())


def test_float64_keyed_values_are_the_float32_values_before_rounding():
    """All arithmetic is float64, rounded once: the float32 fill is the float64 fill, rounded."""
    for spec in (wi.Normal(0.3), wi.Uniform(-1.0, 2.0), wi.TruncatedNormal(0.5, a=-1.0, b=3.0),
                 wi.He(), wi.Orthogonal(), wi.Sparse(0.5)):
        shape = (32, 48)
        f64 = spec.fill_(torch.empty(shape, dtype=torch.float64), key="w", seed=9)
        f32 = spec.fill_(torch.empty(shape, dtype=torch.float32), key="w", seed=9)
        assert torch.equal(f64.float(), f32), repr(spec)


# --- the statistical helpers themselves ----------------------------------------------------------
def test_rounded_ks_accepts_rounded_samples_that_plain_ks_rejects():
    """bfloat16 has 8 significant bits: U(1, 1.0625) rounds onto 9 grid points, so a plain KS
    test against the continuous CDF rejects a perfect sampler; the rounded KS does not."""
    spec = wi.Uniform(1.0, 1.0625)
    tensor = spec.fill_(torch.empty(4096, dtype=torch.bfloat16), key="w")
    dist = scipy.stats.uniform(loc=1.0, scale=0.0625)
    plain = scipy.stats.kstest(tensor.double().numpy(), dist.cdf)
    assert plain.pvalue < 1e-10
    assert stats.ks(tensor, dist).pvalue > P_MIN


def test_rounded_ks_still_detects_a_wrong_std():
    tensor = wi.Normal(1.0).fill_(torch.empty(256, 512, dtype=torch.bfloat16), key="w")
    assert stats.ks(tensor, scipy.stats.norm(scale=1.0)).pvalue > P_MIN
    assert stats.ks(tensor, scipy.stats.norm(scale=1.03)).pvalue < 1e-6
    assert stats.ks(tensor, scipy.stats.norm(loc=0.03)).pvalue < 1e-6
