"""Vanishing-viscosity continuation: signs from the problem's sympy, the schedule, its resolution."""

from pathlib import Path

import pytest
import sympy as sp
import torch

from mfgsolve import ErgodicMFG, ProblemError, Torus, load_problem, solve
from mfgsolve._continuation import NotApplicable, continuation_viscosity, viscosity_signs
from mfgsolve.lowering import ErgodicFields, lower
from mfgsolve.options import SolverOptions
from mfgsolve.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
SEED = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")

x, y = sp.symbols("x y")
H = sp.Symbol("H")


def _seed_like(sign_hjb=1, sign_fp=1, eps=0, dims=1, hamiltonian=None):
    """The seed problem in ``dims`` dimensions, each residual multiplied by a sign, with an
    explicit viscosity ``eps`` written out in sympy."""
    xs = (x, y)[:dims]
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    p2 = sum(u.diff(c) ** 2 for c in xs) / 2 if hamiltonian is None else hamiltonian(u, xs)
    V = sum(sp.sin(2 * sp.pi * c) for c in xs)
    lap_u = sum(u.diff(c, 2) for c in xs)
    lap_m = sum(m.diff(c, 2) for c in xs)
    return ErgodicMFG(
        domain=Torus(list(xs)),
        value=u,
        density=m,
        constant=H,
        hjb=sign_hjb * (-eps * lap_u + p2 + V - sp.log(m) - H),
        fp=sign_fp * (-eps * lap_m - sum((m * u.diff(c)).diff(c) for c in xs)),
        name="seed-like",
    )


@pytest.mark.parametrize("sign_hjb, sign_fp", [(1, 1), (-1, 1), (1, -1), (-1, -1)])
def test_signs_follow_the_problems_own_conventions(sign_hjb, sign_fp):
    # the usual forms +H(grad u) and -div(m grad u) take -eps Lap u and -eps Lap m
    assert viscosity_signs(_seed_like(sign_hjb, sign_fp, dims=2)) == (-sign_hjb, -sign_fp)


def test_added_terms_equal_the_sympy_residuals_of_the_viscous_problem():
    """hjb + s eps Lap u and fp + s eps Lap m, as the trainer forms them, equal the lowered
    residuals of the same problem written with viscosity eps by hand (2-D, one sign flipped)."""
    eps = 0.03
    plain = _seed_like(sign_hjb=-1, dims=2)
    viscous = lower(_seed_like(sign_hjb=-1, eps=eps, dims=2))
    opts = SolverOptions.build(plain, {"iterations": 1, "continuation": 0.05})
    trainer = Trainer(plain, opts, 0, "cpu", torch.float64)
    form = trainer.formulation
    st = trainer.init_state()
    points = torch.rand(64, 2, dtype=torch.float64, requires_grad=True)
    fields = ErgodicFields(st.value_net, st.density_net, form._log_z(st.density_net))
    caches = form.residuals.caches(points, fields)
    want = viscous.caches(points, fields)
    torch.testing.assert_close(
        form._hjb(points, caches, eps=eps), viscous.hjb(points, want), rtol=1e-10, atol=1e-10
    )
    torch.testing.assert_close(
        form._fp(points, caches, eps=eps), viscous.fp(points, want), rtol=1e-10, atol=1e-10
    )


def test_problems_it_does_not_apply_to():
    with pytest.raises(NotApplicable, match="already has second derivatives of u"):
        viscosity_signs(_seed_like(eps=sp.Rational(1, 10)))
    with pytest.raises(NotApplicable, match="curvature of its Hamiltonian"):
        viscosity_signs(_seed_like(hamiltonian=lambda u, xs: sp.cos(u.diff(xs[0]))))


def test_schedule_is_linear_from_the_start_to_the_final_fraction():
    assert continuation_viscosity(0.05, 0.1, 0, 2000) == pytest.approx(0.05)
    assert continuation_viscosity(0.05, 0.1, 1000, 2000) == pytest.approx(0.0275)
    assert continuation_viscosity(0.05, 0.1, 2000, 2000) == pytest.approx(0.005)
    assert continuation_viscosity(0.05, 0.0, 2000, 2000) == 0.0


def _resolved(problem, method="adversarial", **given):
    opts = SolverOptions.build(problem, given, method=method)
    trainer = Trainer(problem, opts, 0, "cpu", torch.float32)
    o = trainer.opts
    return (
        o.game.continuation,
        trainer.formulation.continuation,
        o.game.disc_steps,
        o.optimiser.iterations,
    )


def test_default_is_on_for_first_order_problems_with_the_adversarial_method_only():
    # with it: one discriminator step and (in 1-D) 1,500 iterations; without: 2 and 2,000
    assert _resolved(SEED) == (0.05, (-1, -1), 1, 1500)
    assert _resolved(_seed_like(dims=2)) == (0.05, (-1, -1), 1, 2000)
    assert _resolved(SEED, method="joint") == (0.0, None, 2, 2000)
    assert _resolved(SEED, continuation=0) == (0.0, None, 2, 2000)
    assert _resolved(SEED, disc_steps=3, iterations=7) == (0.05, (-1, -1), 3, 7)
    viscous = load_problem(ROOT / "problems" / "viscous_torus_1d.py")
    assert _resolved(viscous) == (0.0, None, 2, 2000)


def test_explicit_continuation_where_it_does_not_apply_is_a_one_line_error():
    viscous = load_problem(ROOT / "problems" / "viscous_torus_1d.py")
    with pytest.raises(
        ProblemError, match=r"continuation does not apply: .*fix: drop continuation"
    ):
        solve(viscous, iterations=1, continuation=0.05, progress=False)
    crowd = load_problem(ROOT / "problems" / "fh_torus_1d.py")
    with pytest.raises(ProblemError, match="continuation.*fix: drop it"):
        solve(crowd, iterations=1, continuation=0.05, progress=False)
    with pytest.raises(ProblemError, match="continuation must be a viscosity >= 0"):
        solve(SEED, iterations=1, continuation=-1.0, progress=False)


def test_viscosity_is_recorded_and_reaches_the_final_value():
    sol = solve(SEED, iterations=20, eval_every=10, seed=0, progress=False)
    assert [round(h["viscosity"], 6) for h in sol.history] == [
        round(continuation_viscosity(0.05, 0.1, k, 20), 6) for k in (9, 19)
    ]


@pytest.mark.slow
def test_seed_problem_meets_its_targets_with_and_only_with_the_continuation():
    """Seed 1 of the seed problem, default options, against the exact solution: within the
    targets (m, u <= 1e-2, |H error| <= 1e-3) with the continuation, m off by > 1e-2 without."""
    exact_h = float(sp.log(sp.besseli(0, 1)))
    sol = solve(SEED, seed=1, progress=False)
    last = sol.history[-1]
    assert last["m_rel_l2"] <= 1e-2 and last["u_l2"] <= 1e-2
    assert abs(sol.constant - exact_h) <= 1e-3
    plain = solve(SEED, seed=1, continuation=0, progress=False)
    assert plain.history[-1]["m_rel_l2"] > 1e-2
