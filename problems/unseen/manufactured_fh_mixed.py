"""Manufactured finite-horizon MFG on T^d (d = 1 or 2) with log coupling, viscosity and travelling waves.

    -u_t - nu Lap u + |grad u|^2 / 2 - log m - f_H(t, x) = 0,
     m_t - nu Lap m - div(m grad u) - f_F(t, x) = 0,          t in [0, T],

with the chosen solution (s = T - t)

    d = 1:  u* = (1 + s) (sin(2 pi x - pi t) + cos(4 pi x + pi t / 2) / 2) / 4,
            m* = (1 + sin(2 pi (x - t / 2)) / 2) (1 + cos(2 pi (2 x + t / 4)) / 3),
    d = 2:  u* = (1 + s) (sin(2 pi (x + y) - pi t) + cos(2 pi (x - 2 y) + pi t / 2) / 2) / 4,
            m* = (1 + sin(2 pi (x + y - t / 2)) / 2) (1 + cos(2 pi (x - y) + pi t / 2) / 3).

m* lies in [1/3, 2] and has mass 1 for every t: expanding the product leaves, besides 1, waves whose
wave vectors (1 and 2 and their sums and differences in 1-D; (1, 1), (1, -1) and theirs in 2-D)
are nonzero. sympy derives the sources f_H, f_F that make (u*, m*) exact; u(T, .) = u*(T, .) and
m(0, .) = m*(0, .). The source f_F has zero mean in x (d/dt int m* = 0), so mass is conserved.

A family: ``load_problem("problems/unseen/manufactured_fh_mixed.py", d=1)`` or
``mfgsolve solve FILE --set d=1 --set T=0.5``; ``problem`` below is d = 2, nu = 0.05, T = 1.
"""

import numbers

import sympy as sp

from mfgsolve import MFG, Torus


def _number(name, value, lo, hi, open_lo=False):
    """A real number in [lo, hi] (or (lo, hi]) as an exact sympy number (a float by its shortest decimal)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not lo <= float(value) <= hi
        or (open_lo and float(value) == lo)
    ):
        interval = (
            f"{'above' if open_lo else 'from'} {lo} {'and at most' if open_lo else 'to'} {hi}"
        )
        raise ValueError(f"{name} must be a number {interval}, got {value!r}")
    if isinstance(value, (float, sp.Float)):
        return sp.Rational(repr(float(value)))
    return sp.nsimplify(value)


def make_problem(d: int = 2, nu: float = 0.05, T: float = 1.0) -> MFG:
    """The manufactured problem in dimension ``d`` (1 or 2), viscosity ``nu``, horizon ``T``."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or d not in (1, 2):
        raise ValueError(f"d must be 1 or 2, got {d!r}")
    nu = _number("nu", nu, 0, 10)
    T = _number("T", T, 0, 10, open_lo=True)
    t = sp.Symbol("t")
    xs = sp.symbols("x y")[:d] if d == 2 else (sp.Symbol("x"),)
    u, m = sp.Function("u")(t, *xs), sp.Function("m")(t, *xs)

    if d == 1:
        (x,) = xs
        u_star = (
            (1 + T - t)
            * (sp.sin(2 * sp.pi * x - sp.pi * t) + sp.cos(4 * sp.pi * x + sp.pi * t / 2) / 2)
            / 4
        )
        m_star = (1 + sp.sin(2 * sp.pi * (x - t / 2)) / 2) * (
            1 + sp.cos(2 * sp.pi * (2 * x + t / 4)) / 3
        )
    else:
        x, y = xs
        u_star = (
            (1 + T - t)
            * (
                sp.sin(2 * sp.pi * (x + y) - sp.pi * t)
                + sp.cos(2 * sp.pi * (x - 2 * y) + sp.pi * t / 2) / 2
            )
            / 4
        )
        m_star = (1 + sp.sin(2 * sp.pi * (x + y - t / 2)) / 2) * (
            1 + sp.cos(2 * sp.pi * (x - y) + sp.pi * t / 2) / 3
        )

    def hjb_operator(uu, mm):
        lap = sum(uu.diff(xi, 2) for xi in xs)
        grad2 = sum(uu.diff(xi) ** 2 for xi in xs)
        return -uu.diff(t) - nu * lap + grad2 / 2 - sp.log(mm)

    def fp_operator(uu, mm):
        lap = sum(mm.diff(xi, 2) for xi in xs)
        div = sum((mm * uu.diff(xi)).diff(xi) for xi in xs)
        return mm.diff(t) - nu * lap - div

    f_H = hjb_operator(u_star, m_star)
    f_F = fp_operator(u_star, m_star)

    return MFG(
        Torus(list(xs)),
        (t, 0, T),
        u,
        m,
        hjb=hjb_operator(u, m) - f_H,
        fp=fp_operator(u, m) - f_F,
        terminal={u: u_star.subs(t, T)},
        initial={m: m_star.subs(t, 0)},
        exact={u: u_star, m: m_star},
        name=f"unseen-manufactured-fh-mixed-d{d}",
    )


problem = make_problem()
