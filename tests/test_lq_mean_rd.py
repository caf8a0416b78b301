"""The LQ mean-field MFG on R^d (problems/lq_mean_rd.py) and its closed form (LinearQuadraticMeanFieldNd).

The closed form is checked independently of the Riccati ODEs: the problem's own sympy HJB and FP
residuals are evaluated with every derivative of u and m replaced by a finite difference of the
numpy ``value`` / ``density`` and every ``Expectation(x_i, m)`` by a tensor quadrature of the
density (as tests/test_nonlocal.py does for the 1-D solution with a hand-written residual).
"""

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from mfgsolve import Rd, load_problem
from mfgsolve._lq_exact import LinearQuadraticMeanField, LinearQuadraticMeanFieldNd
from mfgsolve.nonlocal_terms import Expectation
from mfgsolve.problem import ProblemError

ROOT = Path(__file__).resolve().parent.parent
FILE = ROOT / "problems" / "lq_mean_rd.py"
COEFFS = dict(
    A=0.1, Abar=0.0, B=1.0, R=1.0, Q=0.5, Qbar=1.0, S=0.5, Q_T=1.0, Qbar_T=0.0, S_T=0.5,
    sigma=0.6, Sigma0=0.09, t0=0.0, T=1.0,
)  # fmt: skip


def _make(**settings):
    """``make_problem`` of the problem file, called directly (raises its own ValueError)."""
    spec = importlib.util.spec_from_file_location("_lq_mean_rd_under_test", FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_problem(**settings)


def _fd(fn, pts: np.ndarray, col: int, order: int, h: float) -> np.ndarray:
    """Fourth-order central difference of ``fn`` in column ``col`` of the points."""

    def at(k: int) -> np.ndarray:
        q = pts.copy()
        q[:, col] += k * h
        return fn(q)

    if order == 1:
        return (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * h)
    return (-at(2) + 16 * at(1) - 30 * at(0) + 16 * at(-1) - at(-2)) / (12 * h**2)


def _residual_and_scale(problem, expr, exact, pts, means):
    """The residual ``expr`` at ``pts`` with u, m, their derivatives and the expectations
    replaced by numbers, and the sum of the absolute values of its terms (its size)."""
    coords = (problem.time, *problem.domain.symbols)
    fields = {problem.value: exact.value, problem.density: exact.density}
    numbers, replace = {}, {}
    for e in expr.atoms(Expectation):
        assert e.density == problem.density and e.integrand in coords[1:]
        replace[e] = sym = sp.Dummy()
        numbers[sym] = means[:, coords.index(e.integrand) - 1]
    for der in expr.atoms(sp.Derivative):
        ((var, order),) = der.variable_count  # no mixed derivatives in these residuals
        assert order <= 2
        replace[der] = sym = sp.Dummy()
        col = coords.index(var)
        numbers[sym] = _fd(fields[der.expr], pts, col, order, 1e-3 if col == 0 else 5e-3)
    for f, fn in fields.items():
        replace[f] = sym = sp.Dummy()
        numbers[sym] = fn(pts)
    body = expr.xreplace(replace)  # top-down: derivatives and expectations before u and m
    assert not body.has(sp.Derivative, Expectation, problem.value, problem.density)
    args = [*coords, *numbers]
    values = [*pts.T, *numbers.values()]
    terms = [
        np.broadcast_to(sp.lambdify(args, term, "numpy")(*values), len(pts))
        for term in sp.Add.make_args(body)
    ]
    return np.sum(terms, axis=0), np.sum(np.abs(terms), axis=0)


def _grid_moments(exact, tt: float, lo: float = -4.0, hi: float = 4.0, k: int = 81):
    """Mass, mean vector and per-axis variance of m(tt, .) by the tensor trapezoid rule."""
    axis = np.linspace(lo, hi, k)
    w = np.full(k, axis[1] - axis[0])
    w[[0, -1]] /= 2
    mesh = np.stack(np.meshgrid(*[axis] * exact.d, indexing="ij"), -1).reshape(-1, exact.d)
    weights = np.prod(np.stack(np.meshgrid(*[w] * exact.d, indexing="ij"), -1), -1).reshape(-1)
    dens = exact.density(np.c_[np.full(len(mesh), tt), mesh]) * weights
    mass = dens.sum()
    mean = dens @ mesh / mass
    var = dens @ (mesh - mean) ** 2 / mass
    return mass, mean, var


def test_closed_form_solves_the_problem_residuals_in_3d():
    # Distinct initial means per axis (two equal): exercises the per-value 1-D solutions.
    problem = load_problem(FILE, d=3, z0=[1.0, -0.5, 1.0])
    ex = problem.exact_solution
    assert len(ex.axes) == 2
    rng = np.random.default_rng(1)
    for tt in (0.2, 0.55, 0.9):
        mass, zq, var = _grid_moments(ex, tt)
        # the expectation from quadrature of m, not from the ODE; tail beyond +-4 below 1e-12
        assert abs(mass - 1) < 1e-10
        np.testing.assert_allclose(zq, ex.mean(tt), atol=1e-10)
        np.testing.assert_allclose(var, ex.variance(tt), atol=1e-10)
        n = 40
        x = ex.mean(tt) + np.sqrt(ex.variance(tt)) * rng.uniform(-2.5, 2.5, (n, 3))
        pts = np.c_[np.full(n, tt), x]
        means = np.tile(zq, (n, 1))
        for label, expr in (("HJB", problem.hjb), ("FP", problem.fp)):
            res, size = _residual_and_scale(problem, expr, ex, pts, means)
            # 4th-order differences: truncation ~ h^4 m^(6) ~ 1e-8 relative (x, h = 5e-3), and
            # the dense output's 1e-11 noise over h = 1e-3 in t: ~1e-8 relative; 1e-6 has margin
            assert np.max(np.abs(res) / size) < 1e-6, (label, tt, np.max(np.abs(res) / size))
    # conditions: u(T) = Q_T |x|^2 / 2 and m(t0) = N(z0, Sigma0 I), as written in the problem
    x = rng.normal(0.3, 0.5, (20, 3))
    xs = problem.domain.symbols
    g = sp.lambdify(xs, problem.terminal, "numpy")(*x.T)
    np.testing.assert_allclose(ex.value(np.c_[np.full(20, problem.T), x]), g, rtol=1e-9)
    m0 = sp.lambdify(xs, problem.initial, "numpy")(*x.T)
    np.testing.assert_allclose(ex.density(np.c_[np.zeros(20), x]), m0, rtol=1e-9)


def test_one_dimension_is_the_1d_class_and_the_1d_problem():
    one = LinearQuadraticMeanField(**COEFFS, z0=0.8)
    nd = LinearQuadraticMeanFieldNd(d=1, **COEFFS, z0=0.8)
    rng = np.random.default_rng(2)
    pts = np.c_[rng.random(200), rng.normal(0.5, 0.6, 200)]
    np.testing.assert_allclose(nd.value(pts), one.value(pts), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nd.density(pts), one.density(pts), rtol=1e-12, atol=1e-300)
    ts = np.linspace(0, 1, 7)
    np.testing.assert_allclose(nd.mean(ts)[:, 0], one.mean(ts), rtol=1e-12)
    np.testing.assert_allclose(nd.variance(ts), one.variance(ts), rtol=1e-12)
    assert nd.mean(0.3).shape == (1,)
    # d = 1 with the default z0 = 1/sqrt(1) is the model of problems/lq_mean_1d.py
    rd, line = load_problem(FILE, d=1), load_problem(ROOT / "problems" / "lq_mean_1d.py")
    to_line = {rd.domain.symbols[0]: line.domain.symbols[0]}
    for a, b in ((rd.hjb, line.hjb), (rd.fp, line.fp), (rd.initial, line.initial)):
        assert sp.simplify(a.xreplace(to_line) - b) == 0
    np.testing.assert_allclose(
        rd.exact_solution.value(pts), line.exact_solution.value(pts), rtol=1e-12, atol=1e-12
    )


def test_decoupled_sum_and_product_and_log_density():
    rng = np.random.default_rng(3)
    one = LinearQuadraticMeanField(**COEFFS, z0=0.7)
    nd = LinearQuadraticMeanFieldNd(d=4, **COEFFS, z0=0.7)
    assert list(nd.axes) == [0.7]
    n = 300
    pts = np.c_[rng.random(n), rng.normal(0.6, 0.4, (n, 4))]
    per_axis = [np.c_[pts[:, 0], pts[:, 1 + i]] for i in range(4)]
    np.testing.assert_allclose(nd.value(pts), sum(one.value(p) for p in per_axis), rtol=1e-12)
    np.testing.assert_allclose(
        nd.density(pts), np.prod([one.density(p) for p in per_axis], 0), rtol=1e-12
    )
    np.testing.assert_allclose(nd.mean(0.4), np.full(4, one.mean(0.4)), rtol=1e-13)
    # distinct z0: each axis uses its own 1-D solution
    z0 = [0.7, -0.2, 0.7]
    mixed = LinearQuadraticMeanFieldNd(d=3, **COEFFS, z0=z0)
    ones = [LinearQuadraticMeanField(**COEFFS, z0=z) for z in z0]
    p3 = pts[:, :4]
    cols = [np.c_[p3[:, 0], p3[:, 1 + i]] for i in range(3)]
    np.testing.assert_allclose(mixed.value(p3), sum(o.value(c) for o, c in zip(ones, cols)))
    np.testing.assert_allclose(
        mixed.density(p3), np.prod([o.density(c) for o, c in zip(ones, cols)], 0), rtol=1e-12
    )
    dens = mixed.density(p3)
    big = dens > 1e-200
    assert big.all()
    np.testing.assert_allclose(mixed.log_density(p3), np.log(dens), rtol=1e-13, atol=1e-12)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        mixed.value(pts)
    with pytest.raises(ValueError, match="z0 must be one finite number or 3"):
        LinearQuadraticMeanFieldNd(d=3, **COEFFS, z0=[1.0, 2.0])


def test_density_has_mass_one_in_2d():
    ex = load_problem(FILE, d=2).exact_solution
    for tt in (0.0, 0.5, 1.0):
        mass, mean, var = _grid_moments(ex, tt, k=161)
        assert abs(mass - 1) < 1e-10
        np.testing.assert_allclose(mean, ex.mean(tt), atol=1e-10)
        np.testing.assert_allclose(var, ex.variance(tt), atol=1e-10)
    np.testing.assert_allclose(ex.mean(0.0), [2**-0.5] * 2, rtol=1e-12)


def test_high_dimension_log_density_and_speed():
    d, n = 100, 20_000  # 2 blocks of the chunked log density
    ex = LinearQuadraticMeanFieldNd(d=d, **COEFFS, z0=d**-0.5)
    rng = np.random.default_rng(4)
    t = rng.random(n)
    x = ex.mean(t) + np.sqrt(ex.variance(t))[:, None] * rng.standard_normal((n, d))
    x[:10] += 10 * np.sqrt(ex.variance(t[:10]))[:, None]  # 10 sd per axis: m = 0 in float64
    pts = np.c_[t, x]
    start = time.perf_counter()
    log_m, u = ex.log_density(pts), ex.value(pts)
    elapsed = time.perf_counter() - start
    var = ex.variance(t)[:, None]
    direct = (-((x - ex.mean(t)) ** 2) / (2 * var) - np.log(2 * np.pi * var) / 2).sum(1)
    np.testing.assert_allclose(log_m, direct, rtol=1e-12)
    assert np.all(np.isfinite(log_m)) and np.all(ex.density(pts[:10]) == 0)
    # typical value at the mass: e^(-d/2) (2 pi Sigma)^(-d/2), 5e-10 at t = 0, 7e-23 at t = 1
    assert np.median(log_m) < np.log(1e-10)
    axis = ex.axis(0)
    expect = (axis.P(t) * (x**2).sum(1) / 2 + axis.r(t) * x.sum(1) + d * axis.s(t)).ravel()
    np.testing.assert_allclose(u, expect, rtol=1e-12)
    assert elapsed < 2.0, elapsed  # measured about 0.03 s (0.15 s for n = 10^5)


def test_family_validation_and_domain():
    for bad in (0, 257, 2.5, True, "3", None):
        with pytest.raises(ValueError, match=r"^d must be an integer from 1 to 256, got "):
            _make(d=bad)
    with pytest.raises(ProblemError, match="d must be an integer from 1 to 256, got 0"):
        load_problem(FILE, d=0)
    with pytest.raises(ValueError, match="z0 must be one finite number or 2"):
        _make(d=2, z0=[1.0])
    problem = load_problem(FILE, d=16)
    assert problem.name == "lq-mean-rd-d16" and isinstance(problem.domain, Rd)
    np.testing.assert_allclose(problem.domain.center, [0.25] * 16)
    assert problem.domain.scale == (0.4,) * 16
    ex = problem.exact_solution
    assert abs(np.sqrt(ex.variance(np.linspace(0, 1, 101))).max() - 0.4) < 0.01
    assert len(problem.hjb.atoms(Expectation)) == 16
    _initial_matches(problem)


def _initial_matches(problem) -> None:
    """The problem's initial density (sympy) equals the exact density at t0 near the mass."""
    ex, d = problem.exact_solution, problem.dim
    rng = np.random.default_rng(5)
    x = ex.mean(0.0) + 0.3 * rng.standard_normal((20, d))
    m0 = sp.lambdify(problem.domain.symbols, problem.initial, "numpy")(*x.T)
    exact = ex.density(np.c_[np.full(20, problem.t0), x])
    assert np.all(exact > 0)
    np.testing.assert_allclose(m0, exact, rtol=1e-10)


@pytest.mark.slow
def test_d100_builds_and_matches_its_initial_density():
    start = time.perf_counter()
    problem = load_problem(FILE, d=100)
    elapsed = time.perf_counter() - start
    assert problem.dim == 100 and problem.name == "lq-mean-rd-d100"
    _initial_matches(problem)
    assert elapsed < 60, elapsed  # measured 12 s (sympy work in MFG.from_hamiltonian)
