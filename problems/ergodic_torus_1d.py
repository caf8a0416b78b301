"""The seed problem (Cao, Guo & Lauriere 2020): ergodic MFG on the unit circle.

    (u')^2 / 2 + sin(2 pi x) = ln m + Hbar,      -(m u')' = 0,      int u = 0, int m = 1.

Exact solution: u = 0, m = exp(sin 2 pi x) / I0(1), Hbar = ln I0(1) = 0.2359143585...
"""

import sympy as sp

from mfgsolve import ErgodicMFG, Torus

x = sp.Symbol("x")
u, m = sp.Function("u")(x), sp.Function("m")(x)
H = sp.Symbol("H")

problem = ErgodicMFG(
    domain=Torus([x]),
    value=u,
    density=m,
    constant=H,
    hjb=u.diff(x) ** 2 / 2 + sp.sin(2 * sp.pi * x) - sp.log(m) - H,
    fp=-(m * u.diff(x)).diff(x),
    exact={u: 0, m: sp.exp(sp.sin(2 * sp.pi * x)) / sp.besseli(0, 1), H: sp.log(sp.besseli(0, 1))},
    name="ergodic-torus-1d",
)
