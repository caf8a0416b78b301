"""Viscous ergodic MFG on the unit 2-torus with a manufactured exact solution.

    -nu Lap u + |grad u|^2 / 2 + V(x, y) - m - Hbar = 0,      -nu Lap m - div(m grad u) = 0,
    int u = 0,  int m = 1,  nu = 0.3.

Every stationary FP density on the torus is m = exp(-u / nu) / Z, so the zero-mean u* below fixes
m* = exp(-u* / nu) / Z, and V = Hbar* + nu Lap u* - |grad u*|^2 / 2 + m* (with Hbar* = 0) makes
(u*, m*, Hbar*) exact. The coupling F(m) = m (not ln m) exercises a different nonlinearity than the
1-D file. Z is computed at import by the periodic trapezoid rule on a 512^2 grid.
"""

import numpy as np
import sympy as sp

from mfgsolve import ErgodicMFG, Torus

x, y = sp.symbols("x y")
p, q = sp.symbols("p q")
u, m = sp.Function("u")(x, y), sp.Function("m")(x, y)
H = sp.Symbol("H")

nu = sp.Rational(3, 10)
hbar = 0
u_star = sp.cos(2 * sp.pi * x) * sp.sin(2 * sp.pi * y) / 5 + sp.sin(2 * sp.pi * (x + y)) / 10
_g = np.arange(512) / 512
_X, _Y = np.meshgrid(_g, _g, indexing="ij")
Z = sp.Float(float(np.mean(sp.lambdify((x, y), sp.exp(-u_star / nu), "numpy")(_X, _Y))), 17)
m_star = sp.exp(-u_star / nu) / Z
lap = u_star.diff(x, 2) + u_star.diff(y, 2)
grad2 = u_star.diff(x) ** 2 + u_star.diff(y) ** 2
V = hbar + nu * lap - grad2 / 2 + m_star

problem = ErgodicMFG.from_hamiltonian(
    Torus([x, y]),
    u,
    m,
    H,
    hamiltonian=(p**2 + q**2) / 2 + V,
    momenta=[p, q],
    coupling=m,
    viscosity=nu,
    exact={u: u_star, m: m_star, H: hbar},
    name="viscous-torus-2d",
)
