"""The seed problem (Cao, Guo & Lauriere 2020) written through its Hamiltonian.

    H(x, p) = p^2 / 2 + sin(2 pi x),  F(x, m) = ln m,  nu = 0:
    (u')^2 / 2 + sin(2 pi x) - ln m - Hbar = 0,      -(m u')' = 0,      int u = 0, int m = 1.

Same equations as ``ergodic_torus_1d.py``; built with ``from_hamiltonian`` so that the reference
solver can use its structure-preserving (monotone) scheme.
Exact solution: u = 0, m = exp(sin 2 pi x) / I0(1), Hbar = ln I0(1) = 0.2359143585...
"""

import sympy as sp

from mfgsolve import ErgodicMFG, Torus

x = sp.Symbol("x")
p = sp.Symbol("p")
u, m = sp.Function("u")(x), sp.Function("m")(x)
H = sp.Symbol("H")

problem = ErgodicMFG.from_hamiltonian(
    Torus([x]),
    u,
    m,
    H,
    hamiltonian=p**2 / 2 + sp.sin(2 * sp.pi * x),
    momenta=[p],
    coupling=sp.log(m),
    viscosity=0,
    exact={u: 0, m: sp.exp(sp.sin(2 * sp.pi * x)) / sp.besseli(0, 1), H: sp.log(sp.besseli(0, 1))},
    name="ergodic-torus-1d-hamiltonian",
)
