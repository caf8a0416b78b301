"""Expectation terms: lowering to quadrature against closed-form integrals; the LQ Riccati solution."""

from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
from scipy.special import iv
from scipy.stats import truncnorm

from mfgsolve import MFG, Box, Torus, load_problem
from mfgsolve._lq_exact import LinearQuadraticMeanField
from mfgsolve.lowering.space_time import lower_finite_horizon
from mfgsolve.nn import build_networks
from mfgsolve.nonlocal_terms import Expectation, extract_expectations
from mfgsolve.options import SolverOptions
from mfgsolve.problem import ProblemError

ROOT = Path(__file__).resolve().parent.parent
t, x, y, z, w = sp.symbols("t x y z w")


def _problem(domain, m0, hjb_extra=0, space=(x,)):
    u = sp.Function("u")(t, *space)
    m = sp.Function("m")(t, *space)
    grads = sum(u.diff(s) ** 2 for s in space) / 2
    return MFG(
        domain,
        (t, 0, 1),
        u,
        m,
        hjb=-u.diff(t) + grads - m + hjb_extra(m) if callable(hjb_extra) else -u.diff(t) + grads,
        fp=m.diff(t) - sum((m * u.diff(s)).diff(s) for s in space),
        terminal={u: 0},
        initial={m: m0},
        name="expectation-check",
    )


def _density_at_initial(problem, points: int):
    """The density network with N = 0, so m(t, .) = m0 / int m0 at every t (float64)."""
    opts = SolverOptions.build(problem, {"quadrature_points": points})
    _, density = build_networks(problem, opts, "cpu", torch.float64)
    with torch.no_grad():
        last = [mod for mod in density.body.modules() if isinstance(mod, torch.nn.Linear)][-1]
        last.weight.zero_()
        last.bias.zero_()
    return density


def _evaluate(problem, density, which: int, points: np.ndarray) -> np.ndarray:
    res = lower_finite_horizon(problem)
    pts = torch.as_tensor(points, dtype=torch.float64)
    times, index = density.slices(pts)
    probs = density.probabilities(times)
    e = res.hjb_expectations[which]
    return e(pts, index, times, density.nodes, probs).detach().numpy()


@pytest.mark.parametrize("kappa", [0.5, 2.0])
def test_mean_of_von_mises_density_on_torus_matches_bessel_ratio(kappa):
    # m ~ exp(kappa cos 2 pi x): E[cos 2 pi x] = I1(kappa) / I0(kappa); the convolution
    # int cos(2 pi (x - y)) m(y) dy = cos(2 pi x) I1 / I0 (Bessel functions: independent of the code).
    m0 = sp.exp(kappa * sp.cos(2 * sp.pi * x))

    def extra(m):
        return Expectation(sp.cos(2 * sp.pi * x), m) + Expectation(
            sp.cos(2 * sp.pi * (x - y)), m, y
        )

    problem = _problem(Torus([x]), m0, extra)
    density = _density_at_initial(problem, 64)
    ratio = iv(1, kappa) / iv(0, kappa)
    pts = np.array([[0.3, 0.1], [0.3, 0.7], [0.9, 0.25]])
    names = [str(e.expr) for e in lower_finite_horizon(problem).hjb_expectations]
    mean_idx = next(i for i, n in enumerate(names) if ", y)" not in n)
    conv_idx = 1 - mean_idx
    np.testing.assert_allclose(_evaluate(problem, density, mean_idx, pts), ratio, rtol=1e-12)
    np.testing.assert_allclose(
        _evaluate(problem, density, conv_idx, pts),
        np.cos(2 * np.pi * pts[:, 1]) * ratio,
        rtol=1e-12,
        atol=1e-13,
    )


def test_mean_and_second_moment_of_truncated_gaussian_on_a_box():
    # Gaussian N(0.3, 0.4^2) restricted to [-1, 2]: moments from scipy.stats.truncnorm.
    mu, sd, lo, hi = 0.3, 0.4, -1.0, 2.0
    m0 = sp.exp(-((x - sp.Rational(3, 10)) ** 2) / (2 * sp.Rational(4, 10) ** 2))
    u = sp.Function("u")(t, x)
    m = sp.Function("m")(t, x)
    p = sp.Symbol("p")
    problem = MFG.from_hamiltonian(
        Box([x], [(lo, hi)]),
        (t, 0, 1),
        u,
        m,
        hamiltonian=p**2 / 2,
        momenta=[p],
        coupling=Expectation(x, m) + Expectation(x**2, m),
        terminal={u: 0},
        initial={m: m0},
        name="truncated-gaussian",
    )
    density = _density_at_initial(problem, 64)
    law = truncnorm((lo - mu) / sd, (hi - mu) / sd, loc=mu, scale=sd)
    names = [str(e.expr) for e in lower_finite_horizon(problem).hjb_expectations]
    pts = np.array([[0.5, 0.0]])
    first = _evaluate(problem, density, names.index("Expectation(x, m(t, x))"), pts)
    second = _evaluate(problem, density, names.index("Expectation(x**2, m(t, x))"), pts)
    np.testing.assert_allclose(first, law.mean(), rtol=1e-10)
    np.testing.assert_allclose(second, law.var() + law.mean() ** 2, rtol=1e-10)


def test_two_dimensional_product_density_expectation():
    # m ~ exp(a cos 2 pi x + b sin 2 pi y) on the 2-torus: E[cos 2 pi x * sin 2 pi y] = r(a) r(b).
    a, b = 1.0, 0.7
    m0 = sp.exp(a * sp.cos(2 * sp.pi * x) + b * sp.sin(2 * sp.pi * y))
    problem = _problem(
        Torus([x, y]),
        m0,
        lambda m: Expectation(sp.cos(2 * sp.pi * x) * sp.sin(2 * sp.pi * y), m),
        space=(x, y),
    )
    density = _density_at_initial(problem, 32 * 32)
    value = _evaluate(problem, density, 0, np.array([[0.2, 0.5, 0.5]]))
    expected = iv(1, a) / iv(0, a) * iv(1, b) / iv(0, b)
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_expectation_placeholders_and_errors():
    u = sp.Function("u")(t, x)
    m = sp.Function("m")(t, x)
    e = Expectation(sp.exp(-((x - y) ** 2)), m, y)
    assert e.free_symbols == {t, x}  # y is bound
    with pytest.raises(ProblemError, match="free symbols without a value: w"):
        _problem(Torus([x]), 1 + 0 * x, lambda mm: Expectation(x * w, mm))
    problem = _problem(Torus([x]), 1 + 0 * x, lambda mm: Expectation(x, mm))
    with pytest.raises(ProblemError, match="not the density"):
        extract_expectations(Expectation(x, u), problem, "HJB")
    with pytest.raises(ProblemError, match="cannot be differentiated"):
        sp.diff(Expectation(x, m), t)


def _lq_residuals(ex, c, tt, zbar, xq, h=1e-4, k=1e-3):
    """HJB and FP residuals written out by hand, derivatives by central differences."""
    nu = c["sigma"] ** 2 / 2

    def pts(dt=0.0, dx=0.0):
        return np.c_[np.full_like(xq, tt + dt), xq + dx]

    def mm(dt=0.0, dx=0.0):
        return ex.density(pts(dt, dx))

    def drift(dx=0.0):
        p_x = ex.P(tt) * (xq + dx) + ex.r(tt)  # u_x
        return c["A"] * (xq + dx) + c["Abar"] * zbar - c["B"] ** 2 * p_x / c["R"]

    u_t = (ex.value(pts(h)) - ex.value(pts(-h))) / (2 * h)
    u_x = (ex.value(pts(dx=k)) - ex.value(pts(dx=-k))) / (2 * k)
    u_xx = (ex.value(pts(dx=k)) - 2 * ex.value(pts()) + ex.value(pts(dx=-k))) / k**2
    hjb = (
        -u_t
        - nu * u_xx
        + c["B"] ** 2 * u_x**2 / (2 * c["R"])
        - (c["A"] * xq + c["Abar"] * zbar) * u_x
        - (c["Q"] * xq**2 + c["Qbar"] * (xq - c["S"] * zbar) ** 2) / 2
    )
    m_t = (mm(h) - mm(-h)) / (2 * h)
    m_xx = (mm(dx=k) - 2 * mm() + mm(dx=-k)) / k**2
    flux_x = (drift(k) * mm(dx=k) - drift(-k) * mm(dx=-k)) / (2 * k)
    return hjb, m_t - nu * m_xx + flux_x, float(np.max(mm()))


def test_lq_riccati_solution_solves_the_pde_and_conditions():
    # Independent check of the Riccati derivation: plug u = P x^2/2 + r x + s and the Gaussian m
    # into the HJB and FP equations written out here, with finite differences in t and x and the
    # mean computed by quadrature of m (not from the ODE). General coefficients (Abar, Qbar_T != 0).
    c = dict(
        A=0.3, Abar=0.4, B=0.8, R=1.5, Q=0.5, Qbar=1.2, S=0.6, Q_T=0.7, Qbar_T=0.9, S_T=0.4,
        sigma=0.5, z0=0.8, Sigma0=0.2, t0=0.0, T=1.0,
    )  # fmt: skip
    ex = LinearQuadraticMeanField(**c)
    xs = np.linspace(-6, 7, 20001)

    def mean_by_quadrature(tt):
        dens = ex.density(np.c_[np.full_like(xs, tt), xs])
        return np.trapezoid(xs * dens, xs), np.trapezoid(dens, xs)

    for tt in (0.2, 0.55, 0.9):
        zbar, mass = mean_by_quadrature(tt)
        assert abs(mass - 1) < 1e-9
        assert abs(ex.mean(tt) - zbar) < 1e-9
        hjb, fp, m_max = _lq_residuals(ex, c, tt, zbar, np.array([-0.7, 0.1, 0.9, 1.6]))
        assert np.max(np.abs(hjb)) < 1e-5
        assert np.max(np.abs(fp)) < 1e-5 * m_max
    zT, _ = mean_by_quadrature(c["T"])
    xq = np.array([-1.0, 0.5, 2.0])
    terminal = (c["Q_T"] * xq**2 + c["Qbar_T"] * (xq - c["S_T"] * zT) ** 2) / 2
    np.testing.assert_allclose(ex.value(np.c_[np.full(3, c["T"]), xq]), terminal, atol=1e-9)
    np.testing.assert_allclose(
        ex.density(np.c_[np.zeros(3), xq]),
        np.exp(-((xq - c["z0"]) ** 2) / (2 * c["Sigma0"])) / np.sqrt(2 * np.pi * c["Sigma0"]),
        rtol=1e-9,
    )


def test_lq_problem_file_carries_its_exact_solution_and_truncation_is_negligible():
    problem = load_problem(ROOT / "problems" / "lq_mean_1d.py")
    ex = problem.exact_solution
    lo, hi = problem.domain.bounds[0]
    assert ex.mass_outside(lo, hi) < 1e-5
    assert abs(ex.mean(problem.T) - ex.mean(problem.t0)) > 0.3  # S != 1: the mean moves
    res = lower_finite_horizon(problem)
    assert len(res.hjb_expectations) == 1 and not res.hjb_expectations[0].local
