"""The convergence verdict (mfgsolve.metrics.verdict) and the residuals' term sizes
(mfgsolve.lowering.terms): checked on closed-form fields, and on short and converged runs against
the exact error."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import Solution, compare, load_problem, solve
from mfgsolve.lowering.terms import additive_terms
from mfgsolve.metrics.verdict import TOL, Verdict, assess

ROOT = Path(__file__).resolve().parent.parent

SEED = ROOT / "problems" / "ergodic_torus_1d.py"
VISCOUS = ROOT / "problems" / "viscous_torus_1d.py"


def test_additive_terms_expand_products_once():
    x = sp.Symbol("x")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    assert len(additive_terms(-(m * u.diff(x)).diff(x))) == 2  # m' u' and m u''
    assert len(additive_terms(u.diff(x) ** 2 / 2 + sp.sin(x) - sp.log(m))) == 3
    assert len(additive_terms((u.diff(x) + 1) ** 2)) == 1  # powers are not expanded


class _ClosedForm(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.anchor = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, points):
        return self.fn(points[:, 0]) + 0 * self.anchor


class _Fields:
    """A stand-in solution of the seed problem made of closed forms (u = 0, m = exp(k sin)/Z)."""

    kind = "network"

    def __init__(self, problem, k: float):
        self.problem, self.history, self.info = problem, [], {}
        i0 = float(np.i0(k)) if k else 1.0
        self._u = _ClosedForm(lambda x: 0 * x)
        self._f = _ClosedForm(lambda x: k * torch.sin(2 * math.pi * x))
        self._log_z = math.log(i0)
        self.constant = math.log(i0) if k == 1 else 0.0

    def fields(self):
        return self._u, self._f, self._log_z

    def density(self, x):
        pts = torch.as_tensor(np.asarray(x, dtype=float))
        return (torch.exp(self._f(pts) - self._log_z)).detach().numpy()

    def value(self, x):
        return np.zeros(len(x))


def test_verdict_of_the_exact_solution_and_of_a_uniform_density():
    problem = load_problem(SEED)
    exact = assess(_Fields(problem, k=1.0))
    assert exact.converged and exact.checks["hjb_relative"] < 1e-6, exact
    assert exact.checks["mass_error"] < 1e-9
    uniform = assess(_Fields(problem, k=0.0))  # the density learned nothing
    assert not uniform.converged and "HJB residual" in uniform.reason
    assert uniform.checks["hjb_relative"] > 0.5


def test_first_order_fp_does_not_decide_and_a_viscous_one_does():
    assert not assess(_Fields(load_problem(SEED), k=1.0)).checks["fp_informative"]
    viscous = load_problem(VISCOUS)
    sol = solve(viscous, seed=0, iterations=20, progress=False)
    assert sol.verdict.checks["fp_informative"]


@pytest.mark.parametrize("path, iterations", [(SEED, 40), (VISCOUS, 300)])
def test_verdict_agrees_with_the_exact_error(path, iterations, tmp_path):
    problem = load_problem(path)
    sol = solve(problem, seed=0, iterations=iterations, progress=False)
    exact_ok = compare(sol)["m_rel_l2"] <= TOL
    assert sol.converged == exact_ok, (sol.verdict, compare(sol)["m_rel_l2"])
    assert sol.converged == (iterations == 300)  # the short seed run did not converge
    sol.save(tmp_path / "s")
    again = Solution.load(tmp_path / "s", problem=problem)
    assert isinstance(again.verdict, Verdict) and again.verdict == sol.verdict


def test_finite_horizon_runs_get_a_verdict():
    problem = load_problem(ROOT / "problems" / "lq_mean_1d.py")
    sol = solve(problem, seed=0, iterations=20, progress=False)
    assert not sol.converged and sol.verdict.reason.startswith("not converged")
    assert {"hjb_relative", "fp_relative", "mass_error"} <= set(sol.verdict.checks)
