"""Independent reference values for the FBSDE checks.

- :func:`hjb_lq_reference`: u(0, x) for ``u_t + Lap u - lambda |grad u|^2 = 0``, ``u(T) = g``, by the
  Hopf-Cole formula ``u(t, x) = -(1/lambda) ln E[exp(-lambda g(x + sqrt(2) W_{T-t}))]`` and Monte
  Carlo (returns the estimate and its standard error, delta method).
- :func:`hjb_lq_quadrature`: the same number for g = ln((1 + |x|^2)/2) at x = 0 by one-dimensional
  quadrature against the chi-square law of |W_T|^2 (an independent check of the Monte Carlo).
- :func:`systemic_risk_eta`: the Riccati function eta(t) of the systemic-risk mean field game of
  Carmona, Fouque & Sun (2015), by ODE integration and in closed form.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import integrate, stats

__all__ = [
    "hjb_lq_reference",
    "hjb_lq_quadrature",
    "systemic_risk_eta",
    "systemic_risk_eta_closed_form",
]


@lru_cache(maxsize=8)
def hjb_lq_reference(
    d: int = 100,
    lam: float = 1.0,
    T: float = 1.0,
    n: int = 1_000_000,
    seed: int = 2018,
    chunk: int = 50_000,
) -> tuple[float, float]:
    """Hopf-Cole Monte Carlo for u(0, 0) with g(x) = ln((1 + |x|^2) / 2).

    Args:
        d: dimension; lam: lambda in ``- lambda |grad u|^2``; T: horizon.
        n: number of Brownian samples W_T in R^d; seed: numpy seed; chunk: samples per batch.

    Returns:
        ``(u00, stderr)``: the estimate and its one-sigma Monte Carlo error.
    """
    rng = np.random.default_rng(seed)
    total = 0.0
    total_sq = 0.0
    done = 0
    while done < n:
        m = min(chunk, n - done)
        w = math.sqrt(T) * rng.standard_normal((m, d))
        x = math.sqrt(2.0) * w
        g = np.log((1.0 + np.einsum("ij,ij->i", x, x)) / 2.0)
        v = np.exp(-lam * g)
        total += float(v.sum())
        total_sq += float((v * v).sum())
        done += m
    mean = total / n
    var = max(total_sq / n - mean**2, 0.0)
    stderr_mean = math.sqrt(var / n)
    u = -math.log(mean) / lam
    return u, stderr_mean / (lam * mean)


def hjb_lq_quadrature(d: int = 100, lam: float = 1.0, T: float = 1.0) -> float:
    """u(0, 0) for the same problem by quadrature: |sqrt(2) W_T|^2 = 2 T chi2_d."""
    dist = stats.chi2(d)

    def integrand(s: float) -> float:
        return math.exp(-lam * math.log((1.0 + 2.0 * T * s) / 2.0)) * dist.pdf(s)

    value, _ = integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-12, limit=400)
    return -math.log(value) / lam


def systemic_risk_eta(
    t: np.ndarray, *, a: float, q: float, eps: float, c: float, T: float
) -> np.ndarray:
    """eta(t) solving eta' = 2 (a + q) eta + eta^2 - (eps - q^2), eta(T) = c (solve_ivp, rtol 1e-12)."""
    t = np.atleast_1d(np.asarray(t, dtype=float))

    def rhs(_s, e):
        return 2 * (a + q) * e + e**2 - (eps - q**2)

    sol = integrate.solve_ivp(
        rhs, (T, float(t.min())), [c], rtol=1e-12, atol=1e-14, dense_output=True
    )
    return sol.sol(t)[0]


def systemic_risk_eta_closed_form(t, *, a, q, eps, c, T, lib=None):
    """Closed form of eta(t) (Carmona, Fouque & Sun 2015, eq. (2.21)); ``lib`` is numpy or sympy."""
    lib = lib or np
    R = (a + q) ** 2 + (eps - q**2)
    dp = -(a + q) + lib.sqrt(R)
    dm = -(a + q) - lib.sqrt(R)
    e = lib.exp((dp - dm) * (T - t))
    num = -(eps - q**2) * (e - 1) - c * (dp * e - dm)
    den = (dm * e - dp) - c * (e - 1)
    return num / den
