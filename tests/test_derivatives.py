"""Derivative engines: torch.func and Hutchinson against reverse mode (float64), and the Laplacian
the lowering finds."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import ErgodicMFG, Torus, load_problem, solve
from mfgsolve.derivatives import (
    DerivativeCache,
    FuncDerivativeCache,
    choose_engine,
    make_cache,
)
from mfgsolve.lowering import lower
from mfgsolve.problem import ProblemError

ROOT = Path(__file__).resolve().parent.parent


def _net(d: int) -> torch.nn.Module:
    torch.manual_seed(d)
    return torch.nn.Sequential(
        torch.nn.Linear(d, 24), torch.nn.Tanh(), torch.nn.Linear(24, 24), torch.nn.SiLU(),
        torch.nn.Linear(24, 1),
    ).double()  # fmt: skip


def _terms(cache, d):
    return [cache((i,)) for i in range(d)] + [cache("lap")]


@pytest.mark.parametrize("d", [1, 3, 5])
def test_func_engine_matches_reverse_mode_values_and_parameter_gradients(d):
    net = _net(d)
    fn = lambda p: net(p).squeeze(-1)  # noqa: E731
    x = torch.rand(64, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    ref, new = DerivativeCache(x, fn(x)), FuncDerivativeCache(x, fn)
    for a, b in zip(_terms(ref, d), _terms(new, d)):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    # the Laplacian is the trace of reverse mode's full Hessian
    hess = sum(ref((i, i)) for i in range(d))
    torch.testing.assert_close(new("lap"), hess, rtol=1e-12, atol=1e-12)
    # a loss built on either engine has the same gradient in the network weights
    grads = []
    for cache in (DerivativeCache(x, fn(x)), FuncDerivativeCache(x, fn)):
        loss = (cache("lap") + sum(cache((i,)) ** 2 for i in range(d))).square().mean()
        params = list(net.parameters())[:-1]  # the last bias does not enter derivatives
        grads.append(torch.autograd.grad(loss, params))
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_hutchinson_is_unbiased_exactly_over_all_sign_vectors():
    d = 3
    net = _net(d)
    fn = lambda p: net(p).squeeze(-1)  # noqa: E731
    x = torch.rand(16, d, dtype=torch.float64, requires_grad=True)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)), dtype=torch.float64)
    probes = signs.expand(16, *signs.shape)  # all 2^d Rademacher vectors at every point
    estimate = FuncDerivativeCache(x, fn, probes=probes)("lap")
    exact = FuncDerivativeCache(x, fn)("lap")
    torch.testing.assert_close(estimate, exact, rtol=1e-12, atol=1e-12)
    # one probe is not the trace for a non-separable field, but exact for a separable one
    one = make_cache("hutchinson", x, fn, probes=1, generator=torch.Generator().manual_seed(0))
    assert (one("lap") - exact).abs().max() > 1e-6
    sep = lambda p: torch.sin(p).sum(-1) + p[:, 0] ** 3  # noqa: E731
    torch.testing.assert_close(
        make_cache("hutchinson", x, sep, probes=1)("lap"),
        -torch.sin(x).sum(-1) + 6 * x[:, 0],
        rtol=1e-12,
        atol=1e-12,
    )


def test_engine_choice_by_dimension_and_override():
    assert choose_engine("auto", 1) == "autograd"
    assert choose_engine("auto", 128) == "hutchinson"
    assert choose_engine("func", 1) == "func"
    with pytest.raises(ValueError, match="unknown derivative engine"):
        choose_engine("forward", 3)


def _viscous_3d(scale_y=1):
    xs = sp.symbols("x y z")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    lap_u = u.diff(xs[0], 2) + scale_y * u.diff(xs[1], 2) + u.diff(xs[2], 2)
    lap_m = sum(m.diff(x, 2) for x in xs)
    return ErgodicMFG(
        Torus(xs), u, m, H,
        -lap_u / 5 + sum(u.diff(x) ** 2 for x in xs) / 2 + sp.sin(2 * sp.pi * xs[0]) - sp.log(m) - H,
        -lap_m / 5 - sum((m * u.diff(x)).diff(x) for x in xs),
        name="viscous-3d",
    )  # fmt: skip


def test_lowering_uses_the_laplacian_only_when_the_residual_does():
    res = lower(_viscous_3d())
    assert ("u", "lap") in res.hjb.terms and ("m", "lap") in res.fp.terms
    assert ("u", "lap") in res.fp.terms  # -div(m grad u) = -grad m . grad u - m Lap u
    assert not any(isinstance(i, tuple) and len(i) == 2 for _, i in res.hjb.terms + res.fp.terms)
    aniso = lower(_viscous_3d(scale_y=2))
    assert ("u", "lap") not in aniso.hjb.terms and ("u", (1, 1)) in aniso.hjb.terms
    assert ("m", "lap") in aniso.fp.terms


class _ClosedForm:
    def __init__(self, coords, u, logm):
        self._u = sp.lambdify(coords, u, "torch")
        self._logm = sp.lambdify(coords, logm, "torch")

    def value(self, p):
        return self._u(*p.unbind(-1))

    def log_density(self, p):
        return self._logm(*p.unbind(-1))


@pytest.mark.parametrize("engine", ["autograd", "func"])
def test_lowered_laplacian_residual_equals_sympy(engine):
    problem = _viscous_3d()
    xs = problem.value.args
    u_star = (
        sp.sin(2 * sp.pi * xs[0]) * sp.cos(2 * sp.pi * xs[1]) / 3 + sp.sin(2 * sp.pi * xs[2]) / 7
    )
    logm_star = sp.cos(2 * sp.pi * (xs[0] + xs[2])) / 2
    pts = np.random.default_rng(3).random((32, 3))
    res = lower(problem)
    x = torch.tensor(pts, dtype=torch.float64, requires_grad=True)
    caches = res.caches(x, _ClosedForm(xs, u_star, logm_star), engine=engine)
    H = problem.constant
    sub = {problem.value: u_star, problem.density: sp.exp(logm_star), H: 0}
    for lowered, expr in ((res.hjb, problem.hjb), (res.fp, problem.fp)):
        exact = sp.lambdify(xs, expr.subs(sub).doit(), "numpy")(*pts.T)
        got = lowered(x, caches).detach().numpy()
        np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-9)


def test_training_with_the_func_engine_follows_reverse_mode():
    """Same seed, float64: a few adversarial iterations give the same networks with either engine."""
    problem = load_problem(ROOT / "problems" / "ergodic_torus_nd.py", d=3)
    kw = dict(iterations=4, seed=0, progress=False, eval_every=4, dtype=torch.float64)
    a = solve(problem, derivatives="autograd", **kw)
    b = solve(problem, derivatives="func", **kw)
    pts = np.random.default_rng(0).random((50, 3))
    np.testing.assert_allclose(b.density(pts), a.density(pts), rtol=1e-9)
    np.testing.assert_allclose(b.value(pts), a.value(pts), rtol=1e-9, atol=1e-12)
    h = solve(problem, derivatives="hutchinson", **kw)  # a stochastic trace: a different path
    assert np.all(np.isfinite(h.density(pts)))


def test_hutchinson_product_of_two_estimates_is_an_unbiased_squared_residual():
    """For u = x'Ax/2 the Laplacian is tr A at every point. The square of one Hutchinson estimate
    is biased by Var = 2 |offdiag A|_F^2 / k; the product of the two independent estimates is not."""
    d, k, n = 16, 4, 20_000
    a = torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = (a + a.T) / 2
    fn = lambda p: 0.5 * ((p @ a) * p).sum(-1)  # noqa: E731
    x = torch.rand(n, d, dtype=torch.float64, requires_grad=True)
    cache = make_cache("hutchinson", x, fn, probes=k, generator=torch.Generator().manual_seed(1))
    lap_a, lap_b = cache("lap"), cache.second_estimate()("lap")
    trace = float(torch.trace(a))
    offdiag = float((a**2).sum() - (torch.diagonal(a) ** 2).sum())
    product, square = (lap_a * lap_b).detach(), (lap_a**2).detach()
    se = float(product.std() / n**0.5)
    assert abs(float(product.mean()) - trace**2) < 4 * se  # unbiased
    assert float(square.mean()) == pytest.approx(trace**2 + 2 * offdiag / k, rel=0.05)  # biased
    assert not torch.equal(lap_a, lap_b)  # independent probes


def test_a_trace_engine_on_residuals_without_a_laplacian_is_a_one_line_error():
    """The 1-D seed has u'' but no Laplacian to trace: 'func'/'hutchinson' would only add work
    (without the continuation, whose viscosity terms are Laplacians)."""
    problem = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
    for engine in ("func", "hutchinson"):
        with pytest.raises(ProblemError, match="fix: use derivatives='autograd'"):
            solve(problem, derivatives=engine, iterations=1, continuation=0, progress=False)
    # "auto" would pick the stochastic trace from d = 64; without a Laplacian it stays exact
    assert choose_engine("auto", 128) == "hutchinson"
    assert choose_engine("auto", 128, laplacian=False) == "autograd"
    assert choose_engine("autograd", 128, laplacian=False) == "autograd"
