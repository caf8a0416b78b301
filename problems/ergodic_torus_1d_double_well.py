"""Ergodic MFG on the unit circle with a double-well potential (a bimodal equilibrium density).

    (u')^2 / 2 + V(x) = ln m + Hbar,      -(m u')' = 0,      V(x) = 0.8 cos(4 pi x) + 0.3 sin(2 pi x).

As for the seed problem, u = 0 and m = exp(V) / Z, Hbar = ln Z is the exact solution; Z is computed at
import by the periodic trapezoid rule on 4096 nodes (spectrally accurate for this smooth integrand).
"""

import numpy as np
import sympy as sp

from mfgsolve import ErgodicMFG, Torus

x = sp.Symbol("x")
u, m = sp.Function("u")(x), sp.Function("m")(x)
H = sp.Symbol("H")
V = sp.Rational(4, 5) * sp.cos(4 * sp.pi * x) + sp.Rational(3, 10) * sp.sin(2 * sp.pi * x)
Z = float(np.mean(sp.lambdify(x, sp.exp(V), "numpy")(np.arange(4096) / 4096)))

problem = ErgodicMFG(
    domain=Torus([x]),
    value=u,
    density=m,
    constant=H,
    hjb=u.diff(x) ** 2 / 2 + V - sp.log(m) - H,
    fp=-(m * u.diff(x)).diff(x),
    exact={u: 0, m: sp.exp(V) / Z, H: np.log(Z)},
    name="ergodic-torus-1d-double-well",
)
