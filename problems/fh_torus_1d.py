"""Finite-horizon MFG on the unit circle with a manufactured travelling-wave solution.

    -u_t - nu u_xx + (u_x)^2 / 2 + b u_x + V(t, x) - m = 0,   m_t - nu m_xx - (m (u_x + b))_x = 0,
    u(T, x) = u*(T, x),  m(0, x) = phi(x),  t in [0, 1],  nu = 0.25,  b = 1/2.

With H(t, x, p) = p^2/2 + b p + V and u = -nu ln m, the FP flux nu m_x + m u_x vanishes and the FP
equation reduces to m_t = b m_x, solved by the travelling density m*(t, x) = phi(x + b t) with
phi = 1 + sin(2 pi x) / 2 (mass 1). Then u* = -nu ln m*, and V = u*_t + nu u*_xx - (u*_x)^2/2
- b u*_x + m* makes (u*, m*) the exact solution of the HJB equation with coupling F(m) = m.
"""

import sympy as sp

from mfgsolve import MFG, Torus

t, x, p = sp.symbols("t x p")
u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)

nu = sp.Rational(1, 4)
b = sp.Rational(1, 2)
m_star = 1 + sp.sin(2 * sp.pi * (x + b * t)) / 2
u_star = -nu * sp.log(m_star)
V = u_star.diff(t) + nu * u_star.diff(x, 2) - u_star.diff(x) ** 2 / 2 - b * u_star.diff(x) + m_star

problem = MFG.from_hamiltonian(
    Torus([x]),
    (t, 0, 1),
    u,
    m,
    hamiltonian=p**2 / 2 + b * p + V,
    momenta=[p],
    coupling=m,
    viscosity=nu,
    terminal={u: u_star.subs(t, 1)},
    initial={m: m_star.subs(t, 0)},
    exact={u: u_star, m: m_star},
    name="fh-torus-1d",
)
