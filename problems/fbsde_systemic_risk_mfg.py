"""The systemic-risk mean field game of problems/fbsde_systemic_risk.py written as an MFG (PDE form).

    -u_t - sigma^2/2 u_xx + H(x, u_x) = 0,   m_t - sigma^2/2 m_xx - (m H_p)_x = 0,
    H(x, p) = (p - q (mbar - x))^2 / 2 - a (mbar - x) p - eps/2 (mbar - x)^2,
    u(T, x) = c/2 (mbar - x)^2,   m(0) = N(m0, s0^2),

where mbar = E[X_t] = int x m(t, x) dx. At the equilibrium the mean is conserved
(d/dt E X = E[(a + q + eta)(mbar - X)] = 0), so mbar = m0 for all t and it is written as the number
m0 below. The FBSDE form is the Pontryagin system of the same game: Y_t = u_x(t, X_t). The exact value
u = eta/2 (m0 - x)^2 + sigma^2/2 ln w(t) comes from mfgsolve.fbsde.systemic_risk.systemic_risk_value;
its x-derivative eta (x - m0) is the FBSDE's decoupling field (tests/test_fbsde.py checks both).
The box [m0 - 4, m0 + 4] has reflecting walls; u_x does not vanish there, so solvers see a boundary
layer far from where the density lives (the density is below 1e-13 at the walls).
"""

import sympy as sp

from mfgsolve import MFG, Box
from mfgsolve.fbsde.systemic_risk import DEFAULT_PARAMS, systemic_risk_value

P = DEFAULT_PARAMS
a, q, eps, c, sigma, T, m0, s0 = (P[k] for k in ("a", "q", "eps", "c", "sigma", "T", "m0", "s0"))
t, x, p = sp.symbols("t x p")
u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)
w = m0 - x  # mbar - x with mbar = m0

problem = MFG.from_hamiltonian(
    Box([x], [(m0 - 4, m0 + 4)]),
    (t, 0, T),
    u,
    m,
    hamiltonian=(p - q * w) ** 2 / 2 - a * w * p - eps / 2 * w**2,
    momenta=[p],
    coupling=0,
    viscosity=sigma**2 / 2,
    terminal={u: c / 2 * w**2},
    initial={m: sp.exp(-((x - m0) ** 2) / (2 * s0**2)) / (s0 * sp.sqrt(2 * sp.pi))},
    exact={u: systemic_risk_value(t, x)},
    name="fbsde-systemic-risk-mfg",
)
