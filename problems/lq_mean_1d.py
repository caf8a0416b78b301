"""Linear-quadratic MFG in 1-D coupled through the mean of the population (exact: Riccati ODEs).

    dX = (A X + B alpha) dt + sigma dW,  cost E[int (Q X^2 + Qbar (X - S z)^2 + R alpha^2) / 2 dt
    + Q_T X_T^2 / 2],  z(t) = E[X_t] = Expectation(x, m),
    X_0 ~ N(z0, Sigma0).

    HJB: -u_t - nu u_xx + B^2 u_x^2 / (2 R) - A x u_x - (Q x^2 + Qbar (x - S z)^2) / 2 = 0,
    FP:  m_t - nu m_xx - (m (B^2 u_x / R - A x))_x = 0,   nu = sigma^2 / 2.

Qbar_T = 0 (a terminal condition must be a closed form of x to be imposed exactly). S = 1/2 != 1,
so the population is pulled towards half its own mean and the mean moves from 1 to about 0.38. The exact solution u = P x^2/2 + r x + s, m = N(z, Sigma) comes from the Riccati
system solved by ``mfgsolve._lq_exact`` (solve_ivp) and is attached as ``problem.exact_solution``,
which ``compare`` uses.

The line is truncated to the box [-1.5, 3] (reflecting walls: no flux for m, Neumann for u). The
largest mass of the exact Gaussian outside the box over t in [0, 1] is 1.5e-6 (``mass_outside``),
so the truncation changes m by far less than the accuracy target. The exact u does not satisfy the
wall condition (u_x = P x + r != 0); the solver weights the Neumann loss by the density at the wall,
which is negligible here (see docs/finite_horizon.md).
"""

import sympy as sp

from mfgsolve import MFG, Box
from mfgsolve._lq_exact import LinearQuadraticMeanField
from mfgsolve.nonlocal_terms import Expectation

t, x, p = sp.symbols("t x p")
u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)

COEFFICIENTS = {
    "A": 0.1,
    "Abar": 0.0,
    "B": 1.0,
    "R": 1.0,
    "Q": 0.5,
    "Qbar": 1.0,
    "S": 0.5,
    "Q_T": 1.0,
    "Qbar_T": 0.0,
    "S_T": 0.5,
    "sigma": 0.6,
    "z0": 1.0,
    "Sigma0": 0.09,
    "t0": 0.0,
    "T": 1.0,
}
c = {k: sp.nsimplify(v) for k, v in COEFFICIENTS.items()}
mean = Expectation(x, m)

problem = MFG.from_hamiltonian(
    Box([x], [(-1.5, 3.0)]),
    (t, c["t0"], c["T"]),
    u,
    m,
    hamiltonian=c["B"] ** 2 * p**2 / (2 * c["R"]) - c["A"] * x * p,
    momenta=[p],
    coupling=(c["Q"] * x**2 + c["Qbar"] * (x - c["S"] * mean) ** 2) / 2,
    viscosity=c["sigma"] ** 2 / 2,
    terminal={u: c["Q_T"] * x**2 / 2},  # Qbar_T = 0: the terminal condition is local
    initial={
        m: sp.exp(-((x - c["z0"]) ** 2) / (2 * c["Sigma0"])) / sp.sqrt(2 * sp.pi * c["Sigma0"])
    },
    name="lq-mean-1d",
)
problem.exact_solution = LinearQuadraticMeanField(**COEFFICIENTS)
