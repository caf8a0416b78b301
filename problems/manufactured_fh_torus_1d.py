"""Manufactured finite-horizon MFG on the unit circle with log coupling and viscosity.

    -u_t - nu u_xx + (u_x)^2 / 2 - log m - f_H(t, x) = 0,
     m_t - nu m_xx - (m u_x)_x - f_F(t, x) = 0,          t in [0, 1],  nu = 0.1,

with the chosen solution u* = (2 - t) cos(2 pi x + pi t / 2) / 4 and
m* = 1 + sin(2 pi (x - t / 2)) / 2 (positive, mass 1 for every t). sympy derives the sources f_H, f_F
that make (u*, m*) exact; u(1, .) = u*(1, .) and m(0, .) = m*(0, .). The source f_F has zero mean
in x (d/dt int m* = 0), so mass is conserved.
"""

import sympy as sp

from mfgsolve import MFG, Torus

t, x = sp.symbols("t x")
u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)

nu = sp.Rational(1, 10)
u_star = (2 - t) * sp.cos(2 * sp.pi * x + sp.pi * t / 2) / 4
m_star = 1 + sp.sin(2 * sp.pi * (x - t / 2)) / 2


def hjb_operator(uu, mm):
    return -uu.diff(t) - nu * uu.diff(x, 2) + uu.diff(x) ** 2 / 2 - sp.log(mm)


def fp_operator(uu, mm):
    return mm.diff(t) - nu * mm.diff(x, 2) - (mm * uu.diff(x)).diff(x)


f_H = hjb_operator(u_star, m_star)
f_F = fp_operator(u_star, m_star)

problem = MFG(
    Torus([x]),
    (t, 0, 1),
    u,
    m,
    hjb=hjb_operator(u, m) - f_H,
    fp=fp_operator(u, m) - f_F,
    terminal={u: u_star.subs(t, 1)},
    initial={m: m_star.subs(t, 0)},
    exact={u: u_star, m: m_star},
    name="manufactured-fh-torus-1d",
)
