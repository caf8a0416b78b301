"""The lowered residuals agree with sympy's own numeric evaluation (float64, 1e-8)."""

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import MFG, Box, ErgodicMFG, ProblemError, Torus
from mfgsolve.lowering import DerivativeCache, lower


class SympyFields:
    """u and log m given in closed form, evaluated in torch (float64)."""

    def __init__(self, coords, u_expr, logm_expr):
        self._u = sp.lambdify(coords, u_expr, "torch")
        self._logm = sp.lambdify(coords, logm_expr, "torch")

    def _call(self, fn, points):
        out = fn(*[points[:, i] for i in range(points.shape[1])])
        out = torch.as_tensor(out, dtype=points.dtype)
        return out.expand(points.shape[0]) if out.dim() == 0 else out

    def value(self, points):
        return self._call(self._u, points)

    def log_density(self, points):
        return self._call(self._logm, points)


def _check(problem, u_star, logm_star, points, constant=0.0):
    """Compare lowered HJB/FP residuals with sympy substituting u*, m* into the residual."""
    coords = problem.value.args
    res = lower(problem)
    fields = SympyFields(coords, u_star, logm_star)
    pts = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    caches = res.caches(pts, fields)
    consts = [torch.tensor(constant, dtype=torch.float64)] * len(res.hjb.constants)
    hjb = res.hjb(pts, caches, consts)
    if res.constant_coefficient is not None:
        hjb = hjb + res.constant_coefficient * constant
    fp = res.fp(pts, caches)
    subs = {problem.value: u_star, problem.density: sp.exp(logm_star)}
    for label, expr, got in (("hjb", problem.hjb, hjb), ("fp", problem.fp, fp)):
        exact = problem.substitute(expr).subs(subs).doit()
        if isinstance(problem, ErgodicMFG):
            exact = exact.subs(problem.constant, constant)
        want = sp.lambdify(coords, exact, ["scipy", "numpy"])(*points.T)
        want = np.broadcast_to(np.asarray(want, dtype=float), (len(points),))
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-8, atol=1e-8, err_msg=label)


def test_seed_problem_matches_sympy():
    x, H = sp.Symbol("x"), sp.Symbol("H")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    p = ErgodicMFG(
        Torus([x]),
        u,
        m,
        H,
        u.diff(x) ** 2 / 2 + sp.sin(2 * sp.pi * x) - sp.log(m) - H,
        -(m * u.diff(x)).diff(x),
    )
    pts = np.random.default_rng(0).random((64, 1))
    _check(
        p,
        sp.sin(2 * sp.pi * x) / 3 + sp.cos(4 * sp.pi * x) / 5,
        sp.cos(2 * sp.pi * x) - 0.3,
        pts,
        constant=0.7,
    )


def test_mixed_second_derivatives_in_three_dimensions():
    x, y, z = sp.symbols("x y z")
    H, nu, k = sp.symbols("H nu k")
    u, m = sp.Function("u")(x, y, z), sp.Function("m")(x, y, z)
    hjb = (
        -nu * (u.diff(x, 2) + u.diff(y, 2) + u.diff(z, 2))
        + u.diff(x, y) * u.diff(z)
        + u.diff(x, z, y)
        + sp.besseli(0, 1) * u.diff(y) ** 2 / 2
        - sp.log(m**2)
        + k * x * y
        - H
    )
    fp = (
        -nu * (m.diff(x, 2) + m.diff(y, 2) + m.diff(z, 2))
        - (m * u.diff(x)).diff(x)
        - (m * u.diff(y)).diff(y)
        - m.diff(x, z) * sp.exp(u)
    )
    p = ErgodicMFG(Torus([x, y, z]), u, m, H, hjb, fp, params={nu: 0.3, k: 1.5})
    u_star = (
        sp.sin(2 * sp.pi * x) * sp.cos(2 * sp.pi * y)
        + sp.sin(2 * sp.pi * (x + z)) * sp.cos(2 * sp.pi * y) / 2
    )
    logm_star = (
        sp.cos(2 * sp.pi * x) * sp.sin(2 * sp.pi * z) / 2
        + sp.sin(2 * sp.pi * y) * sp.cos(2 * sp.pi * x) / 3
    )
    pts = np.random.default_rng(1).random((50, 3))
    _check(p, u_star, logm_star, pts, constant=-0.2)


def test_nonlinear_constant_is_kept_inside_the_residual():
    x, H = sp.Symbol("x"), sp.Symbol("H")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    p = ErgodicMFG(
        Torus([x]), u, m, H, u.diff(x) ** 2 / 2 - sp.log(m) - H**3, -(m * u.diff(x)).diff(x)
    )
    res = lower(p)
    assert res.constant_coefficient is None and res.hjb_constants == (H,)
    _check(
        p,
        sp.sin(2 * sp.pi * x),
        sp.cos(2 * sp.pi * x),
        np.linspace(0, 1, 17)[:, None],
        constant=0.4,
    )


def test_time_dependent_problem_with_time_derivatives():
    t, x, y = sp.symbols("t x y")
    u, m = sp.Function("u")(t, x, y), sp.Function("m")(t, x, y)
    hjb = (
        -u.diff(t) - 0.1 * (u.diff(x, 2) + u.diff(y, 2)) + (u.diff(x) ** 2 + u.diff(y) ** 2) / 2 - m
    )
    fp = (
        m.diff(t)
        - 0.1 * (m.diff(x, 2) + m.diff(y, 2))
        - (m * u.diff(x)).diff(x)
        - (m * u.diff(y)).diff(y)
        + u.diff(t, x) * m
    )
    p = MFG(
        Box([x, y], [(0, 1), (-1, 2)]),
        (t, 0, 1),
        u,
        m,
        hjb,
        fp,
        terminal={u: x**2},
        initial={m: 1 + y**2},
    )
    u_star = sp.exp(-t) * sp.sin(x) * y + t * x**2
    logm_star = -((x - t / 2) ** 2) - y**2 / 3
    pts = np.random.default_rng(2).random((40, 3))
    _check(p, u_star, logm_star, pts)


def test_log_of_density_uses_the_log_density_exactly():
    x, H = sp.Symbol("x"), sp.Symbol("H")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    p = ErgodicMFG(Torus([x]), u, m, H, sp.log(m) - H + u, -(m * u.diff(x)).diff(x))
    res = lower(p)
    assert sorted(t[0] for t in res.hjb.terms) == ["logm", "u"]  # no exp/log round trip
    fields = SympyFields(
        (x,), sp.Integer(0), sp.Integer(-800)
    )  # exp(-800) underflows, log m does not
    pts = torch.rand(5, 1, dtype=torch.float64, requires_grad=True)
    out = res.hjb(pts, res.caches(pts, fields))
    assert torch.allclose(out, torch.full((5,), -800.0, dtype=torch.float64))


def test_derivative_cache_reuses_lower_orders():
    pts = torch.rand(10, 2, dtype=torch.float64, requires_grad=True)
    calls = {"n": 0}
    vals = pts[:, 0] ** 3 * pts[:, 1] ** 2
    cache = DerivativeCache(pts, vals)
    original = torch.autograd.grad

    def counting(*a, **k):
        calls["n"] += 1
        return original(*a, **k)

    torch.autograd.grad, saved = counting, torch.autograd.grad
    try:
        d_xy = cache((0, 1))
        d_yx = cache((1, 0))
        d_xx = cache((0, 0))
    finally:
        torch.autograd.grad = saved
    x, y = pts[:, 0], pts[:, 1]
    assert torch.allclose(d_xy, 6 * x**2 * y) and torch.allclose(d_yx, d_xy)
    assert torch.allclose(d_xx, 6 * x * y**2)
    assert calls["n"] == 2  # one pass for the gradient, one for the row (0, *)


def test_function_without_torch_equivalent_is_a_clear_error():
    x, H = sp.Symbol("x"), sp.Symbol("H")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    p = ErgodicMFG(
        Torus([x]),
        u,
        m,
        H,
        u.diff(x) ** 2 - sp.besselj(0, x) - sp.log(m) - H,
        -(m * u.diff(x)).diff(x),
    )
    with pytest.raises(ProblemError, match="besselj.*no torch equivalent"):
        lower(p)


def test_numeric_subexpressions_are_folded_to_floats():
    """pi**2, log(3)/7 and Bessel values become numbers (torch.pow(float, int) would fail)."""
    x, H = sp.Symbol("x"), sp.Symbol("H")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    hjb = (
        sp.pi**2 * u.diff(x) ** 2
        + sp.log(3) / 7 * sp.cos(2 * sp.pi * x)
        + sp.sqrt(sp.besseli(0, 1)) ** 3
        - sp.log(m)
        - H
    )
    p = ErgodicMFG(Torus([x]), u, m, H, hjb, -(m * u.diff(x)).diff(x))
    _check(
        p,
        sp.sin(2 * sp.pi * x) / 4,
        sp.cos(2 * sp.pi * x) / 2,
        np.linspace(0, 1, 13)[:, None],
        constant=0.3,
    )
