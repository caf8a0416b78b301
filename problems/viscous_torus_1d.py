"""Viscous ergodic MFG on the unit circle with a manufactured exact solution.

    -nu u'' + (u')^2 / 2 + V(x) - ln m - Hbar = 0,      -nu m'' - (m u')' = 0,
    int u = 0,  int m = 1,  nu = 0.3.

On the torus with nu > 0 every stationary density of the FP equation is m = exp(-u / nu) / Z, so
picking the value u* below (zero mean) fixes m* = exp(-u* / nu) / Z and, with Hbar* = 0.5, the
potential V = Hbar* + nu u*'' - (u*')^2 / 2 + ln m* makes (u*, m*, Hbar*) the exact solution.
Z is computed at import by the periodic trapezoid rule (spectrally accurate for this integrand).
"""

import numpy as np
import sympy as sp

from mfgsolve import ErgodicMFG, Torus

x = sp.Symbol("x")
p = sp.Symbol("p")
u, m = sp.Function("u")(x), sp.Function("m")(x)
H = sp.Symbol("H")

nu = sp.Rational(3, 10)
hbar = sp.Rational(1, 2)
u_star = sp.cos(2 * sp.pi * x) / 4 + sp.sin(4 * sp.pi * x) / 10
_nodes = np.arange(4096) / 4096
Z = sp.Float(float(np.mean(sp.lambdify(x, sp.exp(-u_star / nu), "numpy")(_nodes))), 17)
m_star = sp.exp(-u_star / nu) / Z
V = hbar + nu * u_star.diff(x, 2) - u_star.diff(x) ** 2 / 2 + sp.log(m_star)

problem = ErgodicMFG.from_hamiltonian(
    Torus([x]),
    u,
    m,
    H,
    hamiltonian=p**2 / 2 + V,
    momenta=[p],
    coupling=sp.log(m),
    viscosity=nu,
    exact={u: u_star, m: m_star, H: hbar},
    name="viscous-torus-1d",
)
