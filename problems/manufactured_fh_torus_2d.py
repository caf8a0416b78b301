"""Manufactured finite-horizon MFG on the unit 2-torus with log coupling and viscosity.

    -u_t - nu Lap u + |grad u|^2 / 2 - log m - f_H(t, x, y) = 0,
     m_t - nu Lap m - div(m grad u) - f_F(t, x, y) = 0,      t in [0, 1/2],  nu = 0.1,

with the chosen solution u* = (2 - t) cos(2 pi x + pi t / 2) sin(2 pi y) / 4 and
m* = (1 + sin(2 pi (x - t / 2)) / 2) (1 + cos(2 pi (y + t / 4)) / 2) (positive, mass 1 for all t);
sympy derives the sources f_H, f_F; u(1/2, .) = u*(1/2, .) and m(0, .) = m*(0, .).
"""

import sympy as sp

from mfgsolve import MFG, Torus

t, x, y = sp.symbols("t x y")
u, m = sp.Function("u")(t, x, y), sp.Function("m")(t, x, y)

nu = sp.Rational(1, 10)
T = sp.Rational(1, 2)
u_star = (2 - t) * sp.cos(2 * sp.pi * x + sp.pi * t / 2) * sp.sin(2 * sp.pi * y) / 4
m_star = (1 + sp.sin(2 * sp.pi * (x - t / 2)) / 2) * (1 + sp.cos(2 * sp.pi * (y + t / 4)) / 2)


def hjb_operator(uu, mm):
    lap = uu.diff(x, 2) + uu.diff(y, 2)
    return -uu.diff(t) - nu * lap + (uu.diff(x) ** 2 + uu.diff(y) ** 2) / 2 - sp.log(mm)


def fp_operator(uu, mm):
    lap = mm.diff(x, 2) + mm.diff(y, 2)
    div = (mm * uu.diff(x)).diff(x) + (mm * uu.diff(y)).diff(y)
    return mm.diff(t) - nu * lap - div


f_H = hjb_operator(u_star, m_star)
f_F = fp_operator(u_star, m_star)

problem = MFG(
    Torus([x, y]),
    (t, 0, T),
    u,
    m,
    hjb=hjb_operator(u, m) - f_H,
    fp=fp_operator(u, m) - f_F,
    terminal={u: u_star.subs(t, T)},
    initial={m: m_star.subs(t, 0)},
    exact={u: u_star, m: m_star},
    name="manufactured-fh-torus-2d",
)
