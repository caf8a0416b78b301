"""Finite-horizon MFG on the unit 2-torus with a manufactured travelling-wave solution.

    -u_t - nu Lap u + |grad u|^2 / 2 + b . grad u + V(t, x, y) - ln m = 0,
    m_t - nu Lap m - div(m (grad u + b)) = 0,   t in [0, 1/2],  nu = 0.2,  b = (1/2, -1/4).

With u = -nu ln m the FP flux nu grad m + m grad u vanishes and the FP equation is m_t = b . grad m,
solved by m*(t, x, y) = phi(x + b1 t, y + b2 t), phi = (1 + sin(2 pi x)/2)(1 + cos(2 pi y)/2).
Then u* = -nu ln m* and V = u*_t + nu Lap u* - |grad u*|^2/2 - b . grad u* + ln m* make (u*, m*)
exact (coupling F(m) = ln m).
"""

import sympy as sp

from mfgsolve import MFG, Torus

t, x, y, p, q = sp.symbols("t x y p q")
u, m = sp.Function("u")(t, x, y), sp.Function("m")(t, x, y)

nu = sp.Rational(1, 5)
b1, b2 = sp.Rational(1, 2), -sp.Rational(1, 4)
X, Y = x + b1 * t, y + b2 * t
m_star = (1 + sp.sin(2 * sp.pi * X) / 2) * (1 + sp.cos(2 * sp.pi * Y) / 2)
u_star = -nu * sp.log(m_star)
ux, uy = u_star.diff(x), u_star.diff(y)
V = (
    u_star.diff(t)
    + nu * (u_star.diff(x, 2) + u_star.diff(y, 2))
    - (ux**2 + uy**2) / 2
    - b1 * ux
    - b2 * uy
    + sp.log(m_star)
)

problem = MFG.from_hamiltonian(
    Torus([x, y]),
    (t, 0, sp.Rational(1, 2)),
    u,
    m,
    hamiltonian=(p**2 + q**2) / 2 + b1 * p + b2 * q + V,
    momenta=[p, q],
    coupling=sp.log(m),
    viscosity=nu,
    terminal={u: u_star.subs(t, sp.Rational(1, 2))},
    initial={m: m_star.subs(t, 0)},
    exact={u: u_star, m: m_star},
    name="fh-torus-2d",
)
