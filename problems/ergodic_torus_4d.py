"""The seed problem in four dimensions: V(x) = sum_i sin(2 pi x_i) on the unit torus T^4.

    |grad u|^2 / 2 + V(x) = ln m + Hbar,      -div(m grad u) = 0.

Exact solution: u = 0, m = prod_i exp(sin 2 pi x_i) / I0(1)^4, Hbar = 4 ln I0(1).
"""

import sympy as sp

from mfgsolve import ErgodicMFG, Torus

d = 4
xs = sp.symbols(f"x1:{d + 1}")
u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
H = sp.Symbol("H")
V = sum(sp.sin(2 * sp.pi * xi) for xi in xs)

problem = ErgodicMFG(
    domain=Torus(xs),
    value=u,
    density=m,
    constant=H,
    hjb=sum(u.diff(xi) ** 2 for xi in xs) / 2 + V - sp.log(m) - H,
    fp=-sum((m * u.diff(xi)).diff(xi) for xi in xs),
    exact={u: 0, m: sp.exp(V) / sp.besseli(0, 1) ** d, H: d * sp.log(sp.besseli(0, 1))},
    name="ergodic-torus-4d",
)
