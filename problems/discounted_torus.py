"""Manufactured discounted stationary MFG on the unit torus T^d (d = 1 or 2; no ergodic constant).

    rho u - nu Lap u + |grad u|^2 / 2 - ln m - f(x) = 0,      -nu Lap m - div(m grad u) - s(x) = 0,

with int m = 1 and m > 0; the discount term rho u fixes u itself (no constant Hbar, no int u = 0).
The chosen solution, in the direction k = (1, ..., 1) and the first axis:

    u* = 1/5 + (sin(2 pi k . x) + cos(2 pi x_1) / 2) / (2 pi)     (mean 1/5: u is not normalised),
    m* = 1 + cos(2 pi k . x) / 2                                   (1/2 <= m* <= 3/2, int m* = 1),

and sympy derives the sources f = rho u* - nu Lap u* + |grad u*|^2 / 2 - ln m* and
s = -nu Lap m* - div(m* grad u*) (a divergence: int s = 0). With rho > 0, H convex and ln m
increasing, the Lasry-Lions argument (the sources cancel in the difference of two solutions) makes
(u*, m*) the unique solution.

A family: ``load_problem("problems/discounted_torus.py", d=2, rho=1)`` or
``mfgsolve solve FILE --set d=2 --set rho=1``; ``problem`` below is d = 1, rho = 1/2, nu = 1/10.
"""

import numbers

import sympy as sp

from mfgsolve import DiscountedMFG, Torus


def _number(name, value, lo, hi):
    """A real number in (lo, hi] as an exact sympy number (a float by its shortest decimal)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not lo < float(value) <= hi
    ):
        raise ValueError(f"{name} must be a number in ({lo}, {hi}], got {value!r}")
    if isinstance(value, (float, sp.Float)):
        return sp.Rational(repr(float(value)))
    return sp.nsimplify(value)


def make_problem(d: int = 1, rho: float = 0.5, nu: float = 0.1) -> DiscountedMFG:
    """The manufactured discounted problem in dimension ``d`` with discount ``rho``, viscosity ``nu``."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or d not in (1, 2):
        raise ValueError(f"d must be 1 or 2, got {d!r}")
    discount, viscosity = sp.symbols("rho nu", positive=True)
    xs = sp.symbols(f"x1:{d + 1}") if d > 1 else (sp.Symbol("x"),)
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    theta = 2 * sp.pi * sum(xs)
    u_star = sp.Rational(1, 5) + (sp.sin(theta) + sp.cos(2 * sp.pi * xs[0]) / 2) / (2 * sp.pi)
    m_star = 1 + sp.cos(theta) / 2

    def hjb(uu, mm):
        grad2 = sum(uu.diff(x) ** 2 for x in xs)
        lap = sum(uu.diff(x, 2) for x in xs)
        return discount * uu - viscosity * lap + grad2 / 2 - sp.log(mm)

    def fp(uu, mm):
        lap = sum(mm.diff(x, 2) for x in xs)
        return -viscosity * lap - sum((mm * uu.diff(x)).diff(x) for x in xs)

    f = hjb(u_star, m_star)
    s = fp(u_star, m_star)
    return DiscountedMFG(
        domain=Torus(list(xs)),
        value=u,
        density=m,
        hjb=hjb(u, m) - f,
        fp=fp(u, m) - s,
        params={discount: _number("rho", rho, 0, 100), viscosity: _number("nu", nu, 0, 10)},
        exact={u: u_star, m: m_star},
        name=f"discounted-torus-{d}d",
    )


problem = make_problem()
