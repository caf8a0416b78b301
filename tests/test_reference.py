"""Reference solver: checked against exact and manufactured solutions (small grids, fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from mfgsolve import ErgodicMFG, ProblemError, Torus, load_problem
from mfgsolve._io import CheckpointError
from mfgsolve._symbolic import evaluate_numeric_constants
from mfgsolve.reference import (
    ReferenceSolution,
    ReferenceSolveError,
    SchemeNotApplicable,
    reference_solve,
)

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"


def _load(name: str):
    return load_problem(PROBLEMS / name)


def _exact_on(problem, ref: ReferenceSolution, role: str) -> np.ndarray:
    expr = evaluate_numeric_constants(sp.sympify(problem.exact[role]))
    if ref.times is None:
        mesh = np.meshgrid(*ref.grid, indexing="ij")
        fn = sp.lambdify(problem.space, expr, "numpy")
    else:
        mesh = np.meshgrid(ref.times, *ref.grid, indexing="ij")
        fn = sp.lambdify((problem.time, *problem.space), expr, "numpy")
    return np.broadcast_to(np.asarray(fn(*mesh), float), mesh[0].shape)


def _errors(problem, ref: ReferenceSolution) -> tuple[float, float]:
    m_ex, u_ex = _exact_on(problem, ref, "density"), _exact_on(problem, ref, "value")
    m_rel = np.linalg.norm(ref.m - m_ex) / np.linalg.norm(m_ex)
    u_err = np.sqrt(np.mean((ref.u - u_ex) ** 2))
    return float(m_rel), float(u_err)


def test_seed_problem_reproduced_to_roundoff():
    problem = _load("ergodic_torus_1d_hamiltonian.py")
    ref = reference_solve(problem, grid=200, richardson=False)
    m_rel, u_err = _errors(problem, ref)
    assert ref.info["scheme"] == "monotone"
    assert m_rel < 1e-12 and u_err < 1e-12
    assert abs(ref.constant - np.log(np.i0(1.0))) < 1e-12
    assert ref.info["mass_drift"] <= 1e-12
    assert ref.info["newton_iterations"] <= 20


def test_monotone_first_order_and_richardson_on_viscous_1d():
    problem = _load("viscous_torus_1d.py")
    errs = []
    for n in (100, 200, 400):
        ref = reference_solve(problem, grid=n, richardson=False)
        errs.append(_errors(problem, ref)[0])
        assert ref.m.min() > 0
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 0.9), orders
    ref = reference_solve(problem, grid=400)  # Richardson over 200, 400, 800
    m_rel, u_err = _errors(problem, ref)
    assert ref.info["richardson"] == "applied"
    assert abs(ref.error_estimate["observed_order"] - 1) < 0.2
    assert m_rel < errs[-1] / 20
    # the solver's own estimate must not understate the true error
    assert ref.error_estimate["m_rel_l2"] >= m_rel
    assert abs(ref.constant - problem.exact["constant"]) < 1e-3


def test_default_1d_meets_accuracy_target():
    problem = _load("viscous_torus_1d.py")
    ref = reference_solve(problem)
    m_rel, u_err = _errors(problem, ref)
    assert m_rel <= 1e-4 and u_err <= 1e-4
    assert ref.info["mass_drift"] <= 1e-12


def test_generic_scheme_second_order_1d():
    problem = _load("viscous_torus_1d.py")
    errs = [
        _errors(problem, reference_solve(problem, grid=n, scheme="generic", richardson=False))[0]
        for n in (50, 100, 200)
    ]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - 2) < 0.2), orders


def test_generic_scheme_on_plain_residual_problem():
    # written with raw residuals (no from_hamiltonian): auto picks the generic scheme
    x = sp.Symbol("x")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    H = sp.Symbol("H")
    nu = sp.Rational(1, 2)
    u_star = sp.sin(2 * sp.pi * x) / 5
    Z = float(sp.Integral(sp.exp(-u_star / nu), (x, 0, 1)).evalf(20))
    m_star = sp.exp(-u_star / nu) / Z
    V = nu * u_star.diff(x, 2) - u_star.diff(x) ** 2 / 2 + m_star
    problem = ErgodicMFG(
        Torus([x]),
        u,
        m,
        H,
        hjb=-nu * u.diff(x, 2) + u.diff(x) ** 2 / 2 + V - m - H,
        fp=-nu * m.diff(x, 2) - (m * u.diff(x)).diff(x),
        exact={u: u_star, m: m_star, H: 0},
        name="plain-viscous",
    )
    ref = reference_solve(problem, grid=128)
    assert ref.info["scheme"] == "generic"
    m_rel, u_err = _errors(problem, ref)
    assert m_rel < 1e-6 and u_err < 1e-6
    assert abs(ref.constant) < 1e-6
    with pytest.raises(SchemeNotApplicable, match="from_hamiltonian"):
        reference_solve(problem, scheme="monotone")


def test_viscous_2d_first_order_and_richardson():
    problem = _load("viscous_torus_2d.py")
    e16 = _errors(problem, reference_solve(problem, grid=16, richardson=False))[0]
    e32 = _errors(problem, reference_solve(problem, grid=32, richardson=False))[0]
    assert 0.8 < np.log2(e16 / e32) < 1.3
    ref = reference_solve(problem, grid=32)
    assert _errors(problem, ref)[0] < e32 / 5


def test_nonseparable_2d_exact():
    problem = _load("nonseparable_torus_2d.py")
    ref = reference_solve(problem, grid=24, richardson=False)
    m_rel, u_err = _errors(problem, ref)
    assert m_rel < 1e-12 and u_err < 1e-12
    # the discrete constant is ln of the trapezoid rule for Z: spectrally close to ln Z
    assert abs(ref.constant - problem.exact["constant"]) < 1e-9


def test_no_coupling_uses_full_newton_system():
    # F = 0 makes dF/dm = 0: the Schur elimination is impossible and the full system is used;
    # u solves -nu u'' + u'^2/2 + V = Hbar for V built from u*, m = exp(-u/nu)/Z
    x, p = sp.symbols("x p")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    H = sp.Symbol("H")
    nu = sp.Rational(1, 2)
    u_star = sp.cos(2 * sp.pi * x) / 5
    Z = float(sp.Integral(sp.exp(-u_star / nu), (x, 0, 1)).evalf(20))
    V = nu * u_star.diff(x, 2) - u_star.diff(x) ** 2 / 2 + sp.Rational(1, 3)
    problem = ErgodicMFG.from_hamiltonian(
        Torus([x]),
        u,
        m,
        H,
        hamiltonian=p**2 / 2 + V,
        momenta=[p],
        coupling=0 * m,
        viscosity=nu,
        exact={u: u_star, m: sp.exp(-u_star / nu) / Z, H: sp.Rational(1, 3)},
        name="no-coupling",
    )
    ref = reference_solve(problem, grid=400)
    m_rel, u_err = _errors(problem, ref)
    assert m_rel < 1e-4 and u_err < 1e-4
    assert abs(ref.constant - 1 / 3) < 1e-4


def test_finite_horizon_torus_1d_order_and_mass():
    problem = _load("fh_torus_1d.py")
    errs = []
    for n in (25, 50, 100):
        ref = reference_solve(problem, grid=n, richardson=False)
        errs.append(_errors(problem, ref)[0])
        assert ref.info["mass_drift"] <= 1e-12
        assert ref.m.shape == (n + 1, n) and ref.times.shape == (n + 1,)
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 0.85), orders


def test_finite_horizon_gmres_matches_direct():
    problem = _load("fh_torus_1d.py")
    a = reference_solve(problem, grid=40, richardson=False, linear_solver="direct")
    b = reference_solve(problem, grid=40, richardson=False, linear_solver="gmres")
    assert np.max(np.abs(a.m - b.m)) < 1e-9 and np.max(np.abs(a.u - b.u)) < 1e-9


def test_finite_horizon_box_richardson():
    problem = _load("fh_box_1d.py")
    ref = reference_solve(problem, grid=40)
    m_rel, u_err = _errors(problem, ref)
    assert ref.info["richardson"] == "applied"
    assert m_rel < 2e-4 and u_err < 2e-4


def test_finite_horizon_2d_small():
    problem = _load("fh_torus_2d.py")
    e8 = _errors(problem, reference_solve(problem, grid=8, time_steps=8, richardson=False))[0]
    e16 = _errors(problem, reference_solve(problem, grid=16, time_steps=16, richardson=False))[0]
    assert 0.7 < np.log2(e8 / e16) < 1.5


def test_interpolation_and_save_load(tmp_path):
    problem = _load("viscous_torus_1d.py")
    ref = reference_solve(problem, grid=200)
    pts = np.array([[0.0], [0.25], [0.999], [1.25], [-0.75]])
    exact_m = sp.lambdify(
        problem.space, evaluate_numeric_constants(problem.exact["density"]), "numpy"
    )
    np.testing.assert_allclose(ref.density(pts), exact_m(np.mod(pts[:, 0], 1)), rtol=1e-3)
    assert ref.density(pts)[1] == pytest.approx(ref.density(pts)[3])  # periodic wrap
    assert ref.quadrature_weights().sum() == pytest.approx(1.0)
    ref.save(tmp_path / "ref")
    back = ReferenceSolution.load(tmp_path / "ref")
    np.testing.assert_array_equal(back.u, ref.u)
    np.testing.assert_array_equal(back.m, ref.m)
    assert back.constant == ref.constant and back.info["scheme"] == ref.info["scheme"]
    np.testing.assert_array_equal(back.value(pts), ref.value(pts))
    (tmp_path / "ref" / "reference.npz").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        ReferenceSolution.load(tmp_path / "ref")
    with pytest.raises(CheckpointError):
        ReferenceSolution.load(tmp_path / "nowhere")


def test_finite_horizon_interpolation_time_first():
    problem = _load("fh_box_1d.py")
    ref = reference_solve(problem, grid=40, richardson=False)
    pts = np.array([[0.0, 0.5], [1.0, 0.0], [0.5, 1.0]])
    fn = sp.lambdify((problem.time, *problem.space), problem.exact["density"], "numpy")
    np.testing.assert_allclose(ref.density(pts), fn(pts[:, 0], pts[:, 1]), rtol=2e-2)
    with pytest.raises(ValueError, match="time first"):
        ref.density(np.zeros((3, 1)))


def test_bad_options_and_newton_failure():
    problem = _load("viscous_torus_1d.py")
    with pytest.raises(ProblemError, match="grid"):
        reference_solve(problem, grid=(10, 10))
    with pytest.raises(ProblemError, match="even"):
        reference_solve(problem, grid=101)
    with pytest.raises(ProblemError, match="scheme"):
        reference_solve(problem, scheme="spectral")
    with pytest.raises(ReferenceSolveError, match="did not converge.*fix:") as info:
        reference_solve(problem, grid=100, richardson=False, max_iter=1, continuation=False)
    assert "\n" not in str(info.value)
    four_d = _load("ergodic_torus_4d.py")
    with pytest.raises(ProblemError, match="d <= 3"):
        reference_solve(four_d)


def test_continuation_in_viscosity_reaches_the_same_solution():
    problem = _load("viscous_torus_1d.py")
    a = reference_solve(problem, grid=100, richardson=False)
    b = reference_solve(problem, grid=100, richardson=False, continuation=True)
    np.testing.assert_allclose(b.m, a.m, atol=1e-10)
    assert any("stage_viscosity" in h for h in b.history)


@pytest.mark.parametrize(
    "name",
    [
        "ergodic_torus_1d_hamiltonian.py",
        "viscous_torus_1d.py",
        "fh_torus_1d.py",
        "fh_box_1d.py",
    ],
)
def test_newton_iterations_bounded(name):
    ref = reference_solve(_load(name), grid=32, richardson=False)
    assert ref.info["newton_iterations"] <= 20
    assert ref.info["mass_drift"] <= 1e-12


def test_viscosity_given_as_a_parameter_symbol():
    """viscosity=nu with params={nu: 0.2} solves like viscosity=0.2 (the parameter is substituted)."""
    x, p, H, nu = sp.symbols("x p H nu")
    u, m = sp.Function("u")(x), sp.Function("m")(x)

    def build(viscosity, params):
        return ErgodicMFG.from_hamiltonian(
            Torus([x]), u, m, H, hamiltonian=p**2 / 2 + sp.sin(2 * sp.pi * x), momenta=[p],
            coupling=sp.log(m), viscosity=viscosity, params=params, name="nu-param",
        )  # fmt: skip

    a = reference_solve(build(nu, {nu: 0.2}), grid=64, richardson=False)
    b = reference_solve(build(sp.Float(0.2), {}), grid=64, richardson=False)
    np.testing.assert_allclose(a.m, b.m, rtol=1e-12)
    assert a.constant == pytest.approx(b.constant, rel=1e-12)


@pytest.mark.parametrize("name", ["viscous_torus_2d.py", "fh_box_1d.py", "fh_torus_2d.py"])
def test_interpolation_between_nodes_is_fourth_order_accurate(name):
    """Exact values on a coarse grid, interpolated by ReferenceSolution to the compare quadrature:
    cubic with periodic / mirrored ghost nodes. Multilinear interpolation would leave ~1e-3 here and
    gain 4x per halving of h; cubic gains more than 6x (16x asymptotically)."""
    from mfgsolve import compare

    problem = _load(name)
    errors = []
    for n in (12, 24):
        lo, hi = problem.domain.lower, problem.domain.upper
        shift = 0.0 if problem.domain.periodic else 0.5
        axes = [lo[k] + (hi[k] - lo[k]) * (np.arange(n) + shift) / n for k in range(problem.dim)]
        times = None if problem.kind == "ergodic" else np.linspace(problem.t0, problem.T, n + 1)
        shell = ReferenceSolution(
            problem, axes, np.zeros([n] * problem.dim), np.zeros([n] * problem.dim), times=times
        )
        u, m = _exact_on(problem, shell, "value"), _exact_on(problem, shell, "density")
        ref = ReferenceSolution(problem, axes, u, m, times=times)
        errors.append(compare(ref)["m_rel_l2"])
    assert errors[1] < 1e-4, errors
    if problem.domain.periodic:
        assert errors[0] / errors[1] > 6, errors


def _advection_problem(b):
    """-nu u'' + b u' + V - ln m - H = 0, -nu m'' - b m' = 0 on the circle, nu = 0.01: an
    advection-dominated linear HJB with the exact solution u* = sin(2 pi x) / (2 pi), m* = 1, H = 0."""
    x, H = sp.symbols("x H")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    nu = sp.Rational(1, 100)
    u_star = sp.sin(2 * sp.pi * x) / (2 * sp.pi)
    V = nu * u_star.diff(x, 2) - b * u_star.diff(x)
    return ErgodicMFG(
        Torus([x]), u, m, H,
        -nu * u.diff(x, 2) + b * u.diff(x) + V - sp.log(m) - H,
        -nu * m.diff(x, 2) - b * m.diff(x),
        exact={u: u_star, m: 1, H: 0}, name="advection",
    )  # fmt: skip


@pytest.mark.parametrize("b", [1, -1])
def test_generic_scheme_upwinds_advection_with_a_known_sign(b):
    from mfgsolve.reference._generic import GenericErgodicSystem
    from mfgsolve.reference._grid import Grid

    problem = _advection_problem(b)
    system = GenericErgodicSystem(problem, Grid(problem.domain, [50]))
    # the HJB stencil is upwind (backward for b > 0) and the FP one its adjoint
    hjb_side, fp_side = ("backward", "forward") if b > 0 else ("forward", "backward")
    assert system.upwinded == [f"HJB: du/dx ({hjb_side})", f"FP: dm/dx ({fp_side})"]
    # monotone: at Peclet number |b| h / nu = 2 the HJB block is an M-matrix (no positive
    # off-diagonal entries), which centred differences would not give
    z = system.initial_guess()
    a, _ = system._eval(z)
    huu, _ = system._row(system.hjbs[0], a)
    off = huu.tocoo()
    assert np.all(off.data[off.row != off.col] <= 1e-12)
    # first order, and Richardson (order 1) recovers accuracy
    xs = lambda r: r.grid[0]  # noqa: E731
    errs = []
    for n in (100, 200):
        r = reference_solve(problem, grid=n, scheme="generic", richardson=False)
        errs.append(np.sqrt(np.mean((r.u - np.sin(2 * np.pi * xs(r)) / (2 * np.pi)) ** 2)))
    assert 0.9 < np.log2(errs[0] / errs[1]) < 1.1
    r = reference_solve(problem, grid=200, scheme="generic")
    assert r.info["richardson"] == "applied" and r.info["upwinded"]
    assert np.sqrt(np.mean((r.u - np.sin(2 * np.pi * xs(r)) / (2 * np.pi)) ** 2)) < 2e-5


def test_generic_scheme_stays_centred_when_the_sign_depends_on_the_solution():
    from mfgsolve.reference._generic import GenericErgodicSystem
    from mfgsolve.reference._grid import Grid

    problem = _load("viscous_torus_1d.py")  # |u'|^2 / 2 and -(m u')': coefficients depend on u
    assert GenericErgodicSystem(problem, Grid(problem.domain, [20])).upwinded == []
