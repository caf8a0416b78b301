"""The systemic-risk linear-quadratic mean field game (Carmona, Fouque & Sun 2015) as a McKean-Vlasov FBSDE.

Each bank controls its log-reserve X with rate alpha:

    dX_t = [a (m_t - X_t) + alpha_t] dt + sigma dW_t,      m_t = E[X_t],
    J(alpha) = E[ int_0^T (alpha^2 / 2 - q alpha (m_t - X_t) + eps/2 (m_t - X_t)^2) dt + c/2 (m_T - X_T)^2 ],

with q^2 <= eps (no common noise). The equilibrium is alpha*(t, x) = (q + eta_t)(m_t - x) with
eta' = 2 (a + q) eta + eta^2 - (eps - q^2), eta_T = c, the value u(t, x) = eta_t/2 (m_t - x)^2 + mu_t,
mu_t = sigma^2/2 int_t^T eta, and m_t = E[X_0] for all t.

Pontryagin (Carmona-Delarue) form: Y_t = d_x u(t, X_t) is the adjoint, alpha = -Y + q (m - X), and

    dX = [a (E X - X) - Y + q (E X - X)] dt + sigma dW,
    dY = [(a + q) Y + (eps - q^2)(E X - X)] dt + Z dW,       Y_T = c (X_T - E X_T),

a McKean-Vlasov FBSDE with decoupling field Y_t = eta_t (X_t - m). In the package convention
dY = -f dt + Z dW, so f = -(a + q) y - (eps - q^2)(E(x) - x).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._lower import E, vsum
from .problem import FBSDE
from .reference import systemic_risk_eta, systemic_risk_eta_closed_form

__all__ = [
    "systemic_risk_fbsde",
    "systemic_risk_value",
    "control_error",
    "mfg_control_error",
    "DEFAULT_PARAMS",
]

#: Parameters used by problems/fbsde_systemic_risk.py.
DEFAULT_PARAMS = {
    "a": 1.0,
    "q": 0.8,
    "eps": 10.0,
    "c": 1.0,
    "sigma": 1.0,
    "T": 1.0,
    "m0": 1.0,
    "s0": 0.5,
}


def systemic_risk_fbsde(name: str | None = None, **params: float) -> FBSDE:
    """Build the Pontryagin FBSDE of the systemic-risk MFG with closed-form decoupling field.

    Args:
        name: problem name.
        **params: any of a, q, eps, c, sigma, T, m0 (mean of X_0), s0 (std of X_0); see
            :data:`DEFAULT_PARAMS`.

    Returns:
        An :class:`FBSDE` in d = 1 whose ``exact["u"]`` is eta(t) (x - m0).
    """
    p = {**DEFAULT_PARAMS, **params}
    a, q, eps, c, sigma, T, m0 = (p[k] for k in ("a", "q", "eps", "c", "sigma", "T", "m0"))
    if q**2 > eps:
        raise ValueError(f"systemic risk needs q^2 <= eps, got q={q}, eps={eps}; fix: lower q")
    t, x, y, z = sp.symbols("t x y z")
    mean = E(x)
    eta = systemic_risk_eta_closed_form(t, a=a, q=q, eps=eps, c=c, T=T, lib=sp)
    return FBSDE(
        time=(t, 0, T),
        state=x,
        dim=1,
        x0=m0,
        x0_std=p["s0"],
        value=y,
        gradient=z,
        drift=a * (mean - x) - y + q * (mean - x),
        diffusion=sigma,
        driver=-(a + q) * y - (eps - q**2) * (mean - x),
        terminal=c * (x - mean),
        exact={
            "u": eta * (vsum(x) - m0),
            "source": "Riccati closed form (Carmona, Fouque & Sun 2015)",
        },
        name=name,
    )


def systemic_risk_value(t, x, **params):
    """Closed-form equilibrium value u(t, x) = eta_t / 2 (m0 - x)^2 + sigma^2 / 2 ln w(t) (sympy).

    With eta = -w'/w the Riccati equation becomes w'' - 2 (a + q) w' - (eps - q^2) w = 0,
    w(T) = 1, w'(T) = -c, so mu_t = sigma^2/2 int_t^T eta = sigma^2/2 ln w(t).
    """
    p = {**DEFAULT_PARAMS, **params}
    a, q, eps, c, sigma, T, m0 = (p[k] for k in ("a", "q", "eps", "c", "sigma", "T", "m0"))
    root = sp.sqrt((a + q) ** 2 + (eps - q**2))
    l1, l2 = (a + q) + root, (a + q) - root
    A = (-c - l2) / (l1 - l2)
    w = A * sp.exp(l1 * (t - T)) + (1 - A) * sp.exp(l2 * (t - T))
    eta = -sp.diff(w, t) / w
    return eta / 2 * (m0 - x) ** 2 + sigma**2 / 2 * sp.log(w)


def control_error(sol, params: dict | None = None, n_paths: int = 2048, seed: int = 12345) -> dict:
    """Relative L2 error of the equilibrium control along simulated paths.

    The learned control is alpha = -Y_t + q (mean X_t - X_t); the exact one is
    (q + eta_t)(m0 - X_t) with eta from :func:`~mfgsolve.fbsde.reference.systemic_risk_eta`
    (ODE integration, independent of the closed form used in the problem).

    Returns:
        ``{"control_rel_l2": ..., "control0_rel_l2": ... (at t = 0), "eta0": ...}``.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    paths = sol.paths(n=n_paths, seed=seed)
    t, x, y = paths["t"], paths["x"][..., 0], paths["y"]
    eta = systemic_risk_eta(t, a=p["a"], q=p["q"], eps=p["eps"], c=p["c"], T=p["T"])
    mean = x.mean(axis=0, keepdims=True)
    learned = -y + p["q"] * (mean - x)
    exact = (p["q"] + eta[None, :]) * (p["m0"] - x)
    err = learned - exact
    return {
        "control_rel_l2": float(np.sqrt(np.mean(err**2) / np.mean(exact**2))),
        "control0_rel_l2": float(np.sqrt(np.mean(err[:, 0] ** 2) / np.mean(exact[:, 0] ** 2))),
        "eta0": float(eta[0]),
    }


def mfg_control_error(solution, params: dict | None = None, n: int = 4096, seed: int = 0) -> dict:
    """Control error at t = 0 of a solution of the PDE (MFG) form, for comparison with the FBSDE.

    ``solution`` is anything with ``value(points)`` on (n, 2) points (t, x), e.g. the
    ``ReferenceSolution`` of problems/fbsde_systemic_risk_mfg.py. The control is
    alpha(0, x) = -u_x(0, x) + q (m0 - x) with u_x by central differences (step 0.02), measured
    in relative L2 over X_0 ~ N(m0, s0^2) against the Riccati value (q + eta_0)(m0 - x).

    Returns:
        ``{"control0_rel_l2": ..., "eta0": ...}``.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    rng = np.random.default_rng(seed)
    x = p["m0"] + p["s0"] * rng.standard_normal(n)
    step = 0.02
    zeros = np.zeros(n)
    up = solution.value(np.stack([zeros, x + step], axis=1))
    down = solution.value(np.stack([zeros, x - step], axis=1))
    u_x = (up - down) / (2 * step)
    eta0 = float(
        systemic_risk_eta(np.array([0.0]), a=p["a"], q=p["q"], eps=p["eps"], c=p["c"], T=p["T"])[0]
    )
    learned = -u_x + p["q"] * (p["m0"] - x)
    exact = (p["q"] + eta0) * (p["m0"] - x)
    rel = float(np.sqrt(np.mean((learned - exact) ** 2) / np.mean(exact**2)))
    return {"control0_rel_l2": rel, "eta0": eta0}
