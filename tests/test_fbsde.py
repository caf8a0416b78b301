"""Tests of the FBSDE module: problem validation, vectorised lowering, references, solvers, I/O."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve._io import CheckpointError
from mfgsolve.fbsde import FBSDE, E, FBSDESolution, compare_fbsde, solve_fbsde, vsum
from mfgsolve.fbsde._lower import compile_expr
from mfgsolve.fbsde.check import pde_residual, symbolic_residual
from mfgsolve.fbsde.reference import (
    hjb_lq_quadrature,
    hjb_lq_reference,
    systemic_risk_eta,
    systemic_risk_eta_closed_form,
)
from mfgsolve.fbsde.systemic_risk import control_error, systemic_risk_fbsde
from mfgsolve.problem import ProblemError, load_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small networks: one intra-op thread avoids oversubscription on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


t, x, y, z = sp.symbols("t x y z")


def bsb(d: int = 4, **kw) -> FBSDE:
    """Black-Scholes-Barenblatt in small dimension (exact u = exp((r + s^2)(T - t)) |x|^2)."""
    r, s, T = 0.05, 0.4, 1.0
    args = dict(
        time=(t, 0, T),
        state=x,
        dim=d,
        x0=[1.0, 0.5] * (d // 2),
        value=y,
        gradient=z,
        drift=0,
        diffusion=s * x,
        driver=-r * (y - vsum(z) / s),
        terminal=vsum(x**2),
        exact=sp.exp((r + s**2) * (T - t)) * vsum(x**2),
        name="bsb-small",
    )
    args.update(kw)
    return FBSDE(**args)


# ------------------------------------------------------------------------------ problem validation
@pytest.mark.parametrize(
    "change, needle",
    [
        ({"dim": 0}, "dim=0 is not a positive integer"),
        ({"x0": [1.0, 2.0, 3.0]}, "x0 has 3 entries but dim=4"),
        ({"time": (t, 1, 1)}, "horizon T=1.0 is not after"),
        ({"driver": -vsum(z**2) / 2 + sp.Symbol("k")}, "driver uses symbols ['k']"),
        ({"driver": z**2}, "driver is a vector expression"),
        ({"terminal": x + y}, "terminal uses symbols ['y']"),
        ({"diffusion": sp.eye(3)}, "diffusion matrix has shape (3, 3), need (4, 4)"),
        ({"diffusion": sp.eye(4) * x}, "full diffusion matrix depends on ['x']"),
        ({"value": x}, "must differ"),
        ({"terminal": sp.besselj(0, vsum(x))}, "not supported"),
        ({"terminal": sp.log(vsum(x) - 3)}, "terminal is not finite near x0"),
        ({"exact": {"y1": 1}}, "exact has unknown keys"),
        ({"x0_std": -1}, "x0_std=-1.0 is negative"),
    ],
)
def test_problem_errors_are_one_line(change, needle):
    with pytest.raises(ProblemError) as info:
        bsb(**change)
    msg = str(info.value)
    assert needle in msg
    assert msg.startswith("problem 'bsb-small': ") and "; fix: " in msg and "\n" not in msg


def test_problem_files_load_and_exact_forms_solve_their_pde():
    """Each problem file loads; closed forms satisfy the PDE of the FBSDE (autograd residual)."""
    bsb100 = load_problem(ROOT / "problems" / "fbsde_bsb.py")
    assert bsb100.dim == 100 and bsb100.name == "fbsde-bsb"
    assert bsb100.exact["y0"] == pytest.approx(62.5 * math.exp(0.21), rel=1e-12)
    res = pde_residual(bsb100, n=4)
    assert res["pde_max_abs"] < 1e-10 * res["u_max_abs"] and res["terminal_max_abs"] < 1e-9
    risk = load_problem(ROOT / "problems" / "fbsde_systemic_risk.py")
    assert risk.mean_field and risk.x0_std > 0
    res = pde_residual(risk, n=64)
    assert res["pde_max_abs"] < 1e-10 and res["terminal_max_abs"] < 1e-12
    ac = load_problem(ROOT / "problems" / "fbsde_allen_cahn.py")
    assert ac.exact["y0"] == 0.052802 and ac.T == 0.3


#: problem families with a closed form: file, u(0, x0), symbolic-check dimension
FAMILIES = [
    ("fbsde_quadratic_gradient.py", math.sin(1.0), 2),
    ("fbsde_reaction_diffusion.py", 1.6, 3),
    ("fbsde_burgers.py", 0.5, 3),
]


@pytest.mark.parametrize("filename, y0, d_sym", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_closed_form_families_solve_their_pde_symbolically(filename, y0, d_sym):
    """Each published closed form solves the PDE written in its file: exactly (sympy, component by
    component in a small d), and numerically (autograd) in d = 10 and d = 100."""
    path = ROOT / "problems" / filename
    small = load_problem(path, d=d_sym)
    residual, terminal = symbolic_residual(small)
    assert sp.simplify(residual) == 0 and sp.simplify(terminal) == 0
    for d in (10, 100):
        problem = load_problem(path, d=d)
        assert problem.dim == d and problem.name.endswith(f"-d{d}")
        assert problem.exact["y0"] == pytest.approx(y0, rel=1e-12)
        res = pde_residual(problem, n=8)
        assert res["pde_max_abs"] < 1e-10 and res["terminal_max_abs"] < 1e-12


def test_symbolic_residual_detects_a_wrong_closed_form_and_checks_bsb():
    r, s = sp.Rational(1, 20), sp.Rational(2, 5)  # exact constants: floats leave 1e-17 residues
    exact_bsb = bsb(
        d=2,
        diffusion=s * x,
        driver=-r * (y - vsum(z) / s),
        exact=sp.exp((r + s**2) * (1 - t)) * vsum(x**2),
    )
    residual, terminal = symbolic_residual(exact_bsb)
    assert sp.simplify(residual) == 0 and sp.simplify(terminal) == 0
    wrong = bsb(d=2, exact=sp.exp((r + s**2 / 2) * (1 - t)) * vsum(x**2))
    residual, _ = symbolic_residual(wrong)
    assert sp.simplify(residual) != 0
    with pytest.raises(ValueError, match="E\\(...\\) terms have no symbolic expansion"):
        symbolic_residual(systemic_risk_fbsde(name="risk"))


def test_pde_residual_detects_a_wrong_exact_solution():
    wrong = bsb(exact=sp.exp((0.05 + 0.15) * (1 - t)) * vsum(x**2))
    assert pde_residual(wrong, n=8)["pde_max_abs"] > 1e-2


# ------------------------------------------------------------------------------ lowering
def test_lowering_is_vectorised_and_matches_numpy():
    expr = sp.exp(-t) * x * y + sp.sqrt(1 + vsum(x**2)) * z - E(x) + sp.Max(x, 0) * sp.tanh(z)
    fn = compile_expr(expr, {t: "t", x: "x", y: "y", z: "z"})
    rng = np.random.default_rng(0)
    n, d = 7, 5
    tv, xv, yv, zv = (
        rng.random((n, 1)),
        rng.normal(size=(n, d)),
        rng.normal(size=(n, 1)),
        rng.normal(size=(n, d)),
    )
    out = fn({k: torch.tensor(v) for k, v in dict(t=tv, x=xv, y=yv, z=zv).items()}).numpy()
    want = (
        np.exp(-tv) * xv * yv
        + np.sqrt(1 + (xv**2).sum(1, keepdims=True)) * zv
        - xv.mean(0, keepdims=True)
        + np.maximum(xv, 0) * np.tanh(zv)
    )
    assert out.shape == (n, d)
    np.testing.assert_allclose(out, want, rtol=1e-12)


# ------------------------------------------------------------------------------ references
def test_hopf_cole_monte_carlo_matches_quadrature_and_published_value():
    quad = hjb_lq_quadrature(d=100)
    assert quad == pytest.approx(4.5901617, abs=2e-7)  # Han, Jentzen & E (2018)
    value, err = hjb_lq_reference(d=100, n=40_000, seed=3)
    assert 0 < err < 2e-3
    assert abs(value - quad) < 4 * err
    # small d: quadrature and Monte Carlo agree too (independent formulas)
    value, err = hjb_lq_reference(d=3, lam=0.5, T=0.7, n=40_000, seed=4)
    assert abs(value - hjb_lq_quadrature(d=3, lam=0.5, T=0.7)) < 4 * err


def test_riccati_ode_matches_closed_form():
    ts = np.linspace(0, 2, 9)
    kw = dict(a=0.7, q=0.3, eps=2.0, c=0.5, T=2.0)
    np.testing.assert_allclose(
        systemic_risk_eta(ts, **kw), systemic_risk_eta_closed_form(ts, **kw), rtol=1e-9
    )


# ------------------------------------------------------------------------------ solvers
def test_deep_bsde_converges_on_small_bsb():
    problem = bsb(d=4)
    sol = solve_fbsde(
        problem, method="deep_bsde", iterations=400, batch_size=128, progress=False, seed=0
    )
    cmp = compare_fbsde(sol)
    assert cmp["y0_exact"] == pytest.approx(2.5 * math.exp(0.21))
    assert cmp["y0_rel"] < 0.01
    assert cmp["path_rel_l2"] < 0.05
    assert len(sol.history) == 400 and "y0_rel_error" in sol.history[-1]


def test_adversarial_converges_on_small_bsb():
    problem = bsb(d=4)
    sol = solve_fbsde(
        problem, method="adversarial", iterations=600, batch_size=128, progress=False, seed=0
    )
    cmp = compare_fbsde(sol)
    assert cmp["y0_rel"] < 0.02
    assert cmp["path_rel_l2"] < 0.05
    u = sol.value(np.array([[0.5, 1.0, 0.5, 1.0, 0.5]]))
    assert u[0] == pytest.approx(math.exp(0.21 * 0.5) * 2.5, rel=0.05)


def test_y0_from_the_mean_condition_on_fresh_paths(tmp_path):
    """Y_0 is the mean condition at t0 on fresh paths, with its error bar; y0_paths=0 reads the
    network; the estimate survives save / load."""
    problem = load_problem(ROOT / "problems" / "fbsde_reaction_diffusion.py", d=4)
    for method in ("deep_bsde", "adversarial"):
        sol = solve_fbsde(problem, method=method, iterations=200, y0_paths=8192, progress=False)
        est = sol.y0_estimate
        assert set(est) == {"y0", "standard_error", "paths", "network"} and est["paths"] == 8192
        assert sol.y0 == est["y0"] and 0 < est["standard_error"] < 2e-3
        assert abs(sol.y0 - 1.6) < 0.01 and est["network"] != est["y0"]
        back = FBSDESolution.load(sol.save(tmp_path / method), problem)
        assert back.y0 == sol.y0 and back.y0_estimate == est
        plain = solve_fbsde(problem, method=method, iterations=200, y0_paths=0, progress=False)
        assert plain.y0_estimate is None and plain.y0 == est["network"]


def test_adversarial_is_stable_on_a_stiff_driver():
    """Burgers-type driver (y - 0.51) sum_i z_i in d = 50: with the later driver terms detached
    (a semi-gradient) the residual grew to ~10 within 300 iterations and Y_0 left [0, 1]."""
    problem = load_problem(ROOT / "problems" / "fbsde_burgers.py", d=50)
    sol = solve_fbsde(problem, method="adversarial", iterations=300, y0_paths=4096, progress=False)
    assert max(h["loss"] for h in sol.history[-100:]) < 0.5
    assert abs(sol.y0 - 0.5) < 0.02


def test_seed_reproducibility_and_callbacks():
    problem = bsb(d=2)
    seen = []
    a = solve_fbsde(
        problem, method="deep_bsde", iterations=20, progress=False, seed=5, callbacks=[seen.append]
    )
    b = solve_fbsde(problem, method="deep_bsde", iterations=20, progress=False, seed=5)
    c = solve_fbsde(problem, method="deep_bsde", iterations=20, progress=False, seed=6)
    assert [h["y0"] for h in a.history] == [h["y0"] for h in b.history]
    assert a.y0 != c.y0
    assert len(seen) == 20 and set(seen[0]) == {"iteration", "losses", "y0"}
    np.testing.assert_array_equal(a.paths(8, seed=1)["x"], b.paths(8, seed=1)["x"])


def test_mean_field_systemic_risk_small_run():
    problem = systemic_risk_fbsde(name="risk")
    sol = solve_fbsde(problem, method="deep_bsde", iterations=500, batch_size=256, progress=False)
    err = control_error(sol, n_paths=1024)
    # untrained, the control at t = 0 is ~50% off; the Riccati solution is independent of the solver
    assert err["control0_rel_l2"] < 0.03
    assert err["control_rel_l2"] < 0.3
    assert compare_fbsde(sol)["y0_rel"] < 0.03


def test_solver_argument_errors():
    problem = bsb(d=2)
    with pytest.raises(ValueError, match="unknown method 'gan'; fix"):
        solve_fbsde(problem, method="gan")
    with pytest.raises(ValueError, match="iterations=-3 is not a positive integer"):
        solve_fbsde(problem, iterations=-3)
    with pytest.raises(ValueError, match="unknown options \\['stepz'\\]"):
        solve_fbsde(problem, stepz=3)
    with pytest.raises(ValueError, match="network='per_step' is not available for adversarial"):
        solve_fbsde(problem, method="adversarial", network="per_step")
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        solve_fbsde(problem, dtype="float16")
    with pytest.raises(ValueError, match="threads=0 is not a positive integer"):
        solve_fbsde(problem, threads=0)
    with pytest.raises(ValueError, match="resume is not supported"):
        solve_fbsde(problem, resume=True)
    before = torch.get_num_threads()
    sol = solve_fbsde(problem, iterations=3, threads=2, dtype="float64", progress=False)
    assert torch.get_num_threads() == before and sol.info["iterations"] == 3
    assert next(sol.model.parameters()).dtype == torch.float64


def test_save_load_roundtrip_and_errors(tmp_path):
    problem = bsb(d=2)
    for method in ("deep_bsde", "adversarial"):
        sol = solve_fbsde(problem, method=method, iterations=10, progress=False)
        sol.save(tmp_path / method)
        back = FBSDESolution.load(tmp_path / method, problem)
        assert back.y0 == sol.y0 and back.method == method and len(back.history) == 10
        pts = np.array([[0.0, 1.0, 0.5]])
        np.testing.assert_allclose(back.value(pts), sol.value(pts))
    with pytest.raises(CheckpointError, match="dim=2"):
        FBSDESolution.load(tmp_path / "deep_bsde", bsb(d=4))
    (tmp_path / "deep_bsde" / "fbsde_model.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a valid mfgsolve checkpoint"):
        FBSDESolution.load(tmp_path / "deep_bsde", problem)
    with pytest.raises(ValueError, match="defines u only at t = 0.0"):
        sol_deep = solve_fbsde(problem, method="deep_bsde", iterations=2, progress=False)
        sol_deep.value(np.array([[0.5, 1.0, 0.5]]))


def test_figures_are_written(tmp_path):
    sol = solve_fbsde(bsb(d=2), method="deep_bsde", iterations=30, progress=False)
    files = sol.figures(tmp_path)
    assert len(files) == 2 and all(f.suffix == ".png" and f.stat().st_size > 5000 for f in files)


def test_mfg_form_and_fbsde_form_describe_the_same_game():
    """The MFG (PDE) file's exact u solves its HJB; u_x is the FBSDE's decoupling field."""
    mfg = load_problem(ROOT / "problems" / "fbsde_systemic_risk_mfg.py")
    fbsde = load_problem(ROOT / "problems" / "fbsde_systemic_risk.py")
    tt, xx = mfg.time, mfg.domain.symbols[0]
    u = mfg.exact["value"]
    hjb = sp.lambdify((tt, xx), mfg.hjb.subs(mfg.value, u).doit())
    ux = sp.lambdify((tt, xx), sp.diff(u, xx))
    uT = sp.lambdify(xx, u.subs(tt, mfg.T) - mfg.terminal)
    field = fbsde.compiled()["u"]
    ts, xs = np.meshgrid(np.linspace(0, 1, 5), np.linspace(-1, 3, 7))
    ts, xs = ts.ravel(), xs.ravel()
    assert np.max(np.abs(hjb(ts, xs))) < 1e-10
    assert np.max(np.abs(uT(xs))) < 1e-12
    y = field({"t": torch.tensor(ts)[:, None], "x": torch.tensor(xs)[:, None]}).numpy().ravel()
    np.testing.assert_allclose(ux(ts, xs), y, rtol=1e-10, atol=1e-12)


def test_resume_is_refused_for_fbsdes_not_ignored():
    from mfgsolve import solve

    problem = load_problem(ROOT / "problems" / "fbsde_hjb_lq.py")
    with pytest.raises(ValueError, match="resume is not supported for FBSDE training"):
        solve(problem, iterations=2, resume=True, progress=False)
