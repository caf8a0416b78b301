"""Generic finite-horizon reference (raw residuals): exact Jacobian, second-order consistency and
convergence against manufactured solutions, globalisation, refusals, and coverage of problems/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from mfgsolve import MFG, ProblemError, Torus, compare, load_problem
from mfgsolve._symbolic import evaluate_numeric_constants
from mfgsolve.reference import SchemeNotApplicable, reference_solve
from mfgsolve.reference._generic_finite_horizon import GenericFiniteHorizonSystem
from mfgsolve.reference._grid import Grid
from mfgsolve.reference._newton import newton
from mfgsolve.reference.solve import _choose_scheme

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"


def _exact_levels(problem, system: GenericFiniteHorizonSystem, role: str) -> np.ndarray:
    expr = evaluate_numeric_constants(sp.sympify(problem.exact[role]))
    fn = sp.lambdify((problem.time, *problem.space), expr, "numpy")
    pts = system.grid.points
    return np.array([np.broadcast_to(fn(t, *pts.T), (system.N,)) for t in system.times])


def _dense_jacobian(system: GenericFiniteHorizonSystem, z: np.ndarray) -> np.ndarray:
    blocks = system.jacobian_blocks(z)
    return np.block([[np.asarray(b.todense()) for b in row] for row in blocks])


@pytest.mark.parametrize(
    ("name", "settings", "n", "nt"),
    [
        ("manufactured_fh_torus_1d.py", {}, 8, 4),
        ("unseen/manufactured_fh_mixed.py", {"d": 2}, 5, 3),
    ],
    ids=["1d", "2d-mixed-derivatives-free"],
)
def test_jacobian_is_the_derivative_of_the_residual(name, settings, n, nt):
    problem = load_problem(PROBLEMS / name, **settings)
    system = GenericFiniteHorizonSystem(problem, Grid(problem.domain, [n] * problem.dim), nt)
    rng = np.random.default_rng(0)
    z = system.initial_guess() * (1 + 0.1 * rng.standard_normal(2 * system.N * nt))
    J = _dense_jacobian(system, z)
    numeric = np.empty_like(J)
    eps = 1e-6
    for i in range(len(z)):
        e = np.zeros(len(z))
        e[i] = eps
        numeric[:, i] = (system.residual(z + e) - system.residual(z - e)) / (2 * eps)
    assert np.max(np.abs(J - numeric)) < 1e-6 * (1 + np.max(np.abs(J)))


def test_mixed_space_derivatives_enter_the_jacobian():
    t, x, y = sp.symbols("t x y")
    u, m = sp.Function("u")(t, x, y), sp.Function("m")(t, x, y)
    problem = MFG(
        Torus([x, y]),
        (t, 0, 1),
        u,
        m,
        hjb=-u.diff(t) - u.diff(x, y) / 10 - u.diff(x, 2) - u.diff(y, 2) + u.diff(x) ** 2 / 2 - m,
        fp=m.diff(t) - m.diff(x, 2) - m.diff(y, 2) - (m * u.diff(x)).diff(x),
        terminal={u: sp.cos(2 * sp.pi * x) * sp.sin(2 * sp.pi * y)},
        initial={m: 1 + sp.sin(2 * sp.pi * (x + y)) / 2},
        name="mixed",
    )
    system = GenericFiniteHorizonSystem(problem, Grid(problem.domain, [5, 5]), 2)
    z = system.initial_guess()
    J = _dense_jacobian(system, z)
    e = np.zeros(len(z))
    e[3] = 1e-6
    column = (system.residual(z + e) - system.residual(z - e)) / 2e-6
    assert np.allclose(J[:, 3], column, atol=1e-6)


def test_residual_at_the_exact_solution_is_second_order():
    """The trapezoidal scheme is consistent to O(h^2 + dt^2): halving both quarters the residual
    of the manufactured solution (its sources are sympy's, independent of the scheme)."""
    problem = load_problem(PROBLEMS / "manufactured_fh_torus_1d.py")
    sizes, norms = (20, 40, 80), []
    for n in sizes:
        system = GenericFiniteHorizonSystem(problem, Grid(problem.domain, [n]), n)
        u, m = _exact_levels(problem, system, "value"), _exact_levels(problem, system, "density")
        system.m0 = [m[0]]  # the exact initial density, not its discrete normalisation
        norms.append(np.max(np.abs(system.residual(system.pack(u, m)))))
    orders = np.log2(np.array(norms[:-1]) / np.array(norms[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.15), orders


def test_manufactured_1d_converges_at_second_order_and_extrapolates():
    problem = load_problem(PROBLEMS / "manufactured_fh_torus_1d.py")
    assert _choose_scheme(problem, "auto")[0] == "generic"
    errors = []
    for n in (20, 40):
        ref = reference_solve(problem, grid=n, richardson=False)
        errors.append(_relative_m_error(problem, ref))
    assert 1.7 < np.log2(errors[0] / errors[1]) < 2.3, errors
    ref = reference_solve(problem, grid=40)  # 20, 40, 80 and Richardson
    assert ref.info["richardson"] == "applied"
    assert abs(ref.info["observed_order_m"] - 2.0) < 0.3
    extrapolated = _relative_m_error(problem, ref)
    assert extrapolated < errors[1] / 10
    assert ref.error_estimate["m_rel_l2"] >= extrapolated  # the estimate bounds the error
    assert ref.info["mass_drift"] < 1e-12


def _relative_m_error(problem, ref) -> float:
    expr = evaluate_numeric_constants(sp.sympify(problem.exact["density"]))
    fn = sp.lambdify((problem.time, *problem.space), expr, "numpy")
    mesh = np.meshgrid(ref.times, *ref.grid, indexing="ij")
    exact = np.broadcast_to(fn(*mesh), ref.m.shape)
    return float(np.linalg.norm(ref.m - exact) / np.linalg.norm(exact))


def test_newton_continuation_reaches_what_newton_alone_cannot():
    """From u = g, m = m0 at every time, plain Newton stalls on this under-resolved grid (the
    first assertion shows it); the solver then follows R(z) - (1 - lam) R(z0) from lam = 0."""
    problem = load_problem(PROBLEMS / "unseen" / "manufactured_fh_mixed.py", d=1)
    system = GenericFiniteHorizonSystem(problem, Grid(problem.domain, [50]), 50)
    with pytest.raises(Exception, match="did not converge|stalled"):
        newton(system, system.initial_guess(), tol=1e-11, max_iter=30)
    ref = reference_solve(problem, grid=50, richardson=False)
    assert any(h.get("stage") == "homotopy" for h in ref.history)
    z = system.pack(ref.u.reshape(51, -1), ref.m.reshape(51, -1))
    assert np.max(np.abs(system.residual(z))) < 1e-8


def test_second_time_derivatives_are_refused_in_one_line():
    t, x = sp.symbols("t x")
    u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)
    problem = MFG(
        Torus([x]),
        (t, 0, 1),
        u,
        m,
        hjb=-u.diff(t, 2) - u.diff(x, 2) - m,
        fp=m.diff(t) - m.diff(x, 2),
        terminal={u: sp.cos(2 * sp.pi * x)},
        initial={m: 1},
        name="second-order-in-time",
    )
    with pytest.raises(SchemeNotApplicable, match="first time derivatives only") as info:
        reference_solve(problem, grid=16)
    assert "\n" not in str(info.value)


#: problem files the grid reference does not cover, and why (the coverage table of
#: docs/reference.md lists them too)
NOT_COVERED: dict[str, str] = {}


def _problem_files():
    return sorted(
        p.relative_to(PROBLEMS).as_posix()
        for p in [*PROBLEMS.glob("*.py"), *PROBLEMS.glob("unseen/*.py")]
    )


@pytest.mark.parametrize("name", _problem_files())
def test_every_problem_in_low_dimension_has_a_reference_scheme(name):
    """Every problem file is covered in d <= 2 (finite horizon) and d <= 3 (ergodic); a higher-
    dimensional file is refused with its reason, and a family of files is taken in d = 2."""
    problem = load_problem(PROBLEMS / name)
    if problem.kind == "fbsde":
        return  # no grid: FBSDEs are checked against closed forms and Monte Carlo
    if problem.dim > (3 if problem.kind == "ergodic" else 2):
        with pytest.raises(ProblemError, match="the grid reference covers d <= 3"):
            reference_solve(problem)
        if "make_problem" not in (PROBLEMS / name).read_text():
            return
        problem = load_problem(PROBLEMS / name, d=2)
    if name in NOT_COVERED:
        with pytest.raises(ProblemError, match=NOT_COVERED[name]):
            _choose_scheme(problem, "auto")
        return
    scheme, _ = _choose_scheme(problem, "auto")
    assert scheme in ("monotone", "generic")


# ----- nonlocal terms: a mean-field expectation ----------------------------------------------


def test_a_mean_field_expectation_converges_at_second_order_to_the_riccati_solution():
    """``lq_mean_1d.py`` couples the population through its mean, Expectation(x, m): the
    expectation is an unknown per time level bordering the sparse system. Its m converges at
    order 2 to the closed form of the Riccati ODEs (independent of the scheme)."""
    problem = load_problem(PROBLEMS / "lq_mean_1d.py")
    assert _choose_scheme(problem, "auto")[0] == "generic"
    errors = []
    for n in (32, 64):
        ref = reference_solve(problem, grid=n, time_steps=n, richardson=False)
        errors.append(compare(ref)["m_rel_l2"])
    assert 1.8 < np.log2(errors[0] / errors[1]) < 2.2, errors


def test_the_expectation_rows_agree_between_the_direct_and_gmres_solvers():
    problem = load_problem(PROBLEMS / "lq_mean_1d.py")
    kw = dict(grid=24, time_steps=24, richardson=False)
    direct = reference_solve(problem, linear_solver="direct", **kw)
    gmres = reference_solve(problem, linear_solver="gmres", **kw)
    assert np.allclose(direct.m, gmres.m, atol=1e-10) and np.allclose(direct.u, gmres.u, atol=1e-9)


def test_a_convolution_is_refused_by_the_reference_in_one_line():
    from mfgsolve import Expectation

    t, x, y = sp.symbols("t x y")
    u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)
    smoothed = Expectation(sp.cos(2 * sp.pi * (x - y)), m, y)
    problem = MFG(
        Torus([x]),
        (t, 0, 1),
        u,
        m,
        hjb=-u.diff(t) - u.diff(x, 2) / 10 + u.diff(x) ** 2 / 2 - smoothed,
        fp=m.diff(t) - m.diff(x, 2) / 10 - (m * u.diff(x)).diff(x),
        terminal={u: 0},
        initial={m: 1 + sp.sin(2 * sp.pi * x) / 2},
    )
    with pytest.raises(SchemeNotApplicable, match="is a convolution.*fix: compare") as info:
        reference_solve(problem, grid=16)
    assert "\n" not in str(info.value)
