"""Systemic-risk mean field game of Carmona, Fouque & Sun (2015) in its Pontryagin (McKean-Vlasov
FBSDE) form; see mfgsolve/fbsde/systemic_risk.py for the model and the derivation.

    dX = [(a + q)(E X - X) - Y] dt + sigma dW,   dY = [(a + q) Y + (eps - q^2)(E X - X)] dt + Z dW,
    Y_T = c (X_T - E X_T),   X_0 ~ N(m0, s0^2),

with a = 1, q = 0.8, eps = 10, c = 1, sigma = 1, T = 1, m0 = 1, s0 = 0.5. The exact decoupling field is
Y_t = eta_t (X_t - m0) with eta from the Riccati equation eta' = 2 (a + q) eta + eta^2 - (eps - q^2),
eta_T = c, in closed form; the equilibrium control is alpha = -Y + q (E X - X) = (q + eta)(m0 - X).
"""

from mfgsolve.fbsde.systemic_risk import systemic_risk_fbsde

problem = systemic_risk_fbsde(name="fbsde-systemic-risk")
