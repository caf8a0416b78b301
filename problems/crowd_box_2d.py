"""Crowd motion with congestion around an obstacle in the unit square (no closed form).

A crowd starts as a Gaussian blob near the corner (0.25, 0.25) on a thin uniform background (a
quarter of the mass; it keeps log m0 bounded, which the exact initial-condition construction
log m = log m0 + t N needs to stay well scaled under diffusion) and moves towards the opposite
corner (1, 1), which the terminal cost rewards, around a smooth obstacle-like potential bump in
the middle of the room, paying for crowding (coupling kappa m):

    -u_t - nu Lap u + |grad u|^2 / 2 - V(x, y) - kappa m = 0,
     m_t - nu Lap m - div(m grad u) = 0,
    u(T) = g = c ((1 + cos pi x) + (1 + cos pi y)) / 2,   m(0) = blob,
    walls: Neumann for u, no flux for m;  t in [0, 1],  nu = 0.1,  kappa = 1.

V = 4 exp(-|x - (0.55, 0.55)|^2 / (2 * 0.12^2)) (a running cost of being near the obstacle). g has
zero normal derivative on the walls, compatible with the Neumann condition at t = T. Validated
against the finite-difference reference (``reference_solve``).
"""

import sympy as sp

from mfgsolve import MFG, Box

t, x, y, p, q = sp.symbols("t x y p q")
u, m = sp.Function("u")(t, x, y), sp.Function("m")(t, x, y)

nu = sp.Rational(1, 10)
kappa = 1
c = 1
V = 4 * sp.exp(
    -((x - sp.Rational(55, 100)) ** 2 + (y - sp.Rational(55, 100)) ** 2)
    / (2 * sp.Rational(12, 100) ** 2)
)
g = c * ((1 + sp.cos(sp.pi * x)) + (1 + sp.cos(sp.pi * y))) / 2
s0 = sp.Rational(3, 25)
blob = sp.exp(-((x - sp.Rational(1, 4)) ** 2 + (y - sp.Rational(1, 4)) ** 2) / (2 * s0**2))

problem = MFG.from_hamiltonian(
    Box([x, y], [(0, 1), (0, 1)]),
    (t, 0, 1),
    u,
    m,
    hamiltonian=(p**2 + q**2) / 2 - V,
    momenta=[p, q],
    coupling=kappa * m,
    viscosity=nu,
    terminal={u: g},
    initial={m: sp.Rational(3, 4) * blob / (2 * sp.pi * s0**2) + sp.Rational(1, 4)},
    name="crowd-box-2d",
)
