"""Ergodic MFG on the unit 2-torus with a non-separable potential (no viscosity).

    |grad u|^2 / 2 + V(x, y) - ln m - Hbar = 0,      -div(m grad u) = 0,      int u = 0, int m = 1,
    V(x, y) = sin(2 pi x) sin(2 pi y) + cos(2 pi (x + y)) / 2.

Exact solution: u = 0, m = exp(V) / Z, Hbar = ln Z, with Z = int exp(V) computed at import by the
periodic trapezoid rule on a 1024^2 grid (spectrally accurate: the integrand is smooth and periodic).
"""

import numpy as np
import sympy as sp

from mfgsolve import ErgodicMFG, Torus

x, y = sp.symbols("x y")
p, q = sp.symbols("p q")
u, m = sp.Function("u")(x, y), sp.Function("m")(x, y)
H = sp.Symbol("H")

V = sp.sin(2 * sp.pi * x) * sp.sin(2 * sp.pi * y) + sp.cos(2 * sp.pi * (x + y)) / 2
_g = np.arange(1024) / 1024
_X, _Y = np.meshgrid(_g, _g, indexing="ij")
Z = sp.Float(float(np.mean(sp.lambdify((x, y), sp.exp(V), "numpy")(_X, _Y))), 17)

problem = ErgodicMFG.from_hamiltonian(
    Torus([x, y]),
    u,
    m,
    H,
    hamiltonian=(p**2 + q**2) / 2 + V,
    momenta=[p, q],
    coupling=sp.log(m),
    viscosity=0,
    exact={u: 0, m: sp.exp(V) / Z, H: sp.log(Z)},
    name="nonseparable-torus-2d",
)
