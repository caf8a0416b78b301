"""Finite-horizon MFG on [0, 1] with reflecting walls and a manufactured exact solution.

    -u_t - nu u_xx + (u_x)^2 / 2 + V(t, x) - m = 0,   m_t - nu m_xx - (m u_x)_x = 0,
    u_x = 0 and no flux at x = 0, 1;   t in [0, 1],  nu = 0.2.

m* = 1 + cos(pi x) / 2 has zero slope at the walls and mass 1; u* = -nu ln m* + sin(2 t) / 2
has zero slope there too and makes the FP flux nu m_x + m u_x vanish, so m* is stationary; the
potential V = u*_t + nu u*_xx - (u*_x)^2 / 2 + m* makes (u*, m*) exact.
"""

import sympy as sp

from mfgsolve import MFG, Box

t, x, p = sp.symbols("t x p")
u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)

nu = sp.Rational(1, 5)
m_star = 1 + sp.cos(sp.pi * x) / 2
u_star = -nu * sp.log(m_star) + sp.sin(2 * t) / 2
V = u_star.diff(t) + nu * u_star.diff(x, 2) - u_star.diff(x) ** 2 / 2 + m_star

problem = MFG.from_hamiltonian(
    Box([x], [(0, 1)]),
    (t, 0, 1),
    u,
    m,
    hamiltonian=p**2 / 2 + V,
    momenta=[p],
    coupling=m,
    viscosity=nu,
    terminal={u: u_star.subs(t, 1)},
    initial={m: m_star},
    exact={u: u_star, m: m_star},
    name="fh-box-1d",
)
