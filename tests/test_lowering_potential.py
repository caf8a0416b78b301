"""Potential MFGs (mfgsolve/lowering/potential.py): the Euler-Lagrange equations of the
Lagrangian are the problem's residuals, the lowered Lagrangian equals the symbolic one, the
structures that are not potential are refused in one line, and the min-max game solves the
seed problem against its closed form."""

from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
from sympy.calculus.euler import euler_equations

from mfgsolve import ErgodicMFG, Torus, compare, load_problem, solve
from mfgsolve.errors import OptionError
from mfgsolve.lowering.potential import (
    NotPotential,
    lagrangian_density,
    lower_lagrangian,
    potential_form,
)

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
x, y, p, q = sp.symbols("x y p q")
U1, M1, H = sp.Function("u")(x), sp.Function("m")(x), sp.Symbol("H")


def _non_quadratic() -> ErgodicMFG:
    """H = sqrt(1 + p^2) - 1 and a power coupling m^2, written as raw residuals (not tuned on)."""
    nu = sp.Rational(1, 5)
    ham = sp.sqrt(1 + U1.diff(x) ** 2) - 1
    return ErgodicMFG(
        Torus([x]),
        U1,
        M1,
        H,
        hjb=2 * (-nu * U1.diff(x, 2) + ham + sp.cos(2 * sp.pi * x) - M1**2 - H),
        fp=-nu * M1.diff(x, 2) - (M1 * U1.diff(x) / sp.sqrt(1 + U1.diff(x) ** 2)).diff(x),
        name="non-quadratic-power",
    )


POTENTIAL = [
    load_problem(ROOT / "problems" / "ergodic_torus_1d.py"),
    load_problem(ROOT / "problems" / "ergodic_torus_1d_double_well.py"),
    load_problem(ROOT / "problems" / "viscous_torus_1d.py"),
    load_problem(ROOT / "problems" / "viscous_torus_2d.py"),
    load_problem(ROOT / "problems" / "nonseparable_torus_2d.py"),
    _non_quadratic(),
]


def _trial_functions(problem):
    """Smooth positive m and a u, as sympy expressions in the coordinates (not solutions)."""
    xs = problem.domain.symbols
    u = sum(sp.sin(2 * sp.pi * (k + 1) * s) / (k + 2) for k, s in enumerate(xs))
    m = sp.exp(sum(sp.cos(2 * sp.pi * s + k) / 2 for k, s in enumerate(xs)))
    return u, m


@pytest.mark.parametrize("problem", POTENTIAL, ids=lambda pb: pb.name)
def test_euler_lagrange_equations_of_the_lagrangian_are_the_residuals(problem):
    """d/dm of L is the HJB residual plus Hbar (up to the residual's factor), d/du of L the FP
    residual (up to its factor): compared at trial functions and random points."""
    form = potential_form(problem)
    density = lagrangian_density(problem, form)
    u, m, c = problem.value, problem.density, problem.constant
    xs = problem.domain.symbols
    el_m, el_u = (eq.lhs for eq in euler_equations(density, [m, u], xs))
    tu, tm = _trial_functions(problem)
    hjb = problem.substitute(problem.hjb)
    fp = problem.substitute(problem.fp)
    factor = sp.diff(hjb, c)  # HJB = factor * (...) with the constant entering as -factor * H

    def at(expr):
        expr = expr.subs({u: tu, m: tm}).doit()
        fn = sp.lambdify([*xs, c], expr, "numpy")
        rng = np.random.default_rng(1)
        pts = rng.random((7, len(xs)))
        return np.array([float(fn(*pt, 0.3)) for pt in pts])

    hjb_scaled = at(hjb) / -float(factor)
    assert np.allclose(at(el_m) - 0.3, hjb_scaled, rtol=1e-9, atol=1e-9)
    ratio = at(fp) / at(el_u)
    assert np.allclose(ratio, ratio[0], rtol=1e-8) and abs(ratio[0]) > 1e-6


def test_the_lowered_lagrangian_equals_the_symbolic_one():
    problem = _non_quadratic()
    form = potential_form(problem)
    lowered = lower_lagrangian(problem, form)
    tu, tm = _trial_functions(problem)
    density = lagrangian_density(problem, form).subs({problem.value: tu, problem.density: tm})
    exact = sp.lambdify([x], density.doit(), "numpy")
    pts = torch.linspace(0.05, 0.95, 9, dtype=torch.float64)[:, None]
    du = sp.lambdify([x], tu.diff(x), "numpy")(pts[:, 0].numpy())
    log_m = sp.lambdify([x], sp.log(tm), "numpy")(pts[:, 0].numpy())
    dlog = sp.lambdify([x], sp.log(tm).diff(x), "numpy")(pts[:, 0].numpy())
    t = lambda a: torch.as_tensor(np.asarray(a, float))  # noqa: E731
    per_mass = lowered.per_mass(pts, t(du)[:, None], t(log_m), t(dlog)[:, None])
    got = (per_mass * torch.exp(t(log_m))).numpy()
    assert np.allclose(got, exact(pts[:, 0].numpy()), rtol=1e-12, atol=1e-12)


def _problem(hjb, fp, name):
    return ErgodicMFG(Torus([x]), U1, M1, H, hjb=hjb, fp=fp, name=name)


_SEED_FP = -(M1 * U1.diff(x)).diff(x)
NOT_POTENTIAL = [
    (
        _problem(U1.diff(x) ** 2 / 2 - sp.log(M1) - H, _SEED_FP + sp.sin(2 * sp.pi * x), "src"),
        "its FP equation is not -nu Lap m - div(m dH/dp) of its HJB equation",
    ),
    (
        _problem(-(U1.diff(x) ** 2) / 2 - sp.log(M1) - H, (M1 * U1.diff(x)).diff(x), "concave"),
        "its Hamiltonian is not convex in grad u",
    ),
    (
        _problem(U1.diff(x) ** 2 / 2 + M1 - H, _SEED_FP, "decreasing"),
        "its coupling decreases in m",
    ),
    (
        _problem(U1.diff(x) ** 2 * M1 / 2 - sp.log(M1) - H, _SEED_FP, "mixed"),
        "its Hamiltonian and coupling do not separate",
    ),
    (
        _problem(U1.diff(x) ** 2 / 2 - sp.log(M1) - H**2, _SEED_FP, "nonlinear-constant"),
        "the constant does not enter its HJB equation as a constant term",
    ),
    (
        _problem(U1.diff(x) ** 2 / 2 + U1 - sp.log(M1) - H, _SEED_FP, "u-itself"),
        "u itself (not only its derivatives) enters its HJB equation",
    ),
    (
        load_problem(ROOT / "problems" / "two_populations_torus.py"),
        "the min-max game serves one population",
    ),
    (
        load_problem(ROOT / "problems" / "discounted_torus.py"),
        "not discounted ones",
    ),
    (
        load_problem(ROOT / "problems" / "fh_torus_1d.py"),
        "this one is finite_horizon",
    ),
]


@pytest.mark.parametrize("problem, reason", NOT_POTENTIAL, ids=lambda v: getattr(v, "name", ""))
def test_structures_that_are_not_potential_are_refused_in_one_line(problem, reason):
    with pytest.raises(NotPotential) as info:
        potential_form(problem)
    message = str(info.value)
    assert reason in message and "\n" not in message
    assert message.startswith(f"problem '{problem.name}' is not a potential MFG: ")


def test_minmax_on_a_problem_that_is_not_potential_is_an_option_error():
    problem = NOT_POTENTIAL[0][0]
    with pytest.raises(
        OptionError, match=r"not a potential MFG: .*; fix: use method='adversarial'"
    ):
        solve(problem, method="minmax", iterations=1, progress=False)


def test_minmax_game_solves_the_seed_problem_against_its_closed_form():
    """300 iterations of the min-max game (first derivatives only) against the exact solution;
    the seed's default game needs about 1,000 to reach 1e-2."""
    seed = POTENTIAL[0]
    sol = solve(seed, method="minmax", iterations=300, seed=0, progress=False)
    errors = compare(sol)
    assert errors["m_rel_l2"] < 3e-3 and errors["u_l2"] < 1e-3 and errors["constant_abs"] < 1e-4
    assert "lagrangian" in sol.history[-1]
