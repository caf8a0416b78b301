"""Viscous ergodic MFG on the whole space R^d with a non-Gaussian, non-separable stationary law.

    -nu Lap u + |grad u|^2 / 2 + V(x) - ln m - Hbar = 0,      -nu Lap m - div(m grad u) = 0,

on R^d, int m = 1. The chosen value is u*(x) = nu w(x), w(x) = r^2 / 2 + kappa r^4 / (4 d),
r = |x - c|, convex and growing faster than a quadratic. With nu > 0 the FP flux
-nu grad m - m grad u vanishes for m = exp(-u / nu) / Z, so

    m* = exp(-w) / Z,   Hbar* = ln Z,   V = nu Lap u* - |grad u*|^2 / 2 - w

make (u*, m*, Hbar*) exact (ln m* = -w - ln Z turns the HJB into -nu Lap u* + |grad u*|^2 / 2 +
V + w + ln Z - Hbar* = 0). Z = |S^{d-1}| int_0^inf s^{d-1} exp(-s^2/2 - kappa s^4 / (4 d)) ds by
scipy's quad (the law is radial: r^4 couples every pair of axes). The quartic term is of the order
of the quadratic one in every d (r^2 ~ d), so the density is not a Gaussian in any dimension.

A family: ``load_problem("problems/unseen/rd_quartic_nd.py", d=8)``; ``problem`` is d = 2. The
domain only says Rd(center=0, scale=1): the mass sits around c = (1/2, ..., 1/2) / sqrt(d)
(|c| = 1/2), with a radius below sqrt(d).
"""

import math
import numbers

import sympy as sp
from scipy.integrate import quad
from scipy.special import gammaln

from mfgsolve import ErgodicMFG, Rd


def _log_normaliser(d: int, kappa: float) -> float:
    """ln Z for the radial law exp(-s^2/2 - kappa s^4/(4d)) in R^d (scaled integrand: no overflow)."""
    peak = math.sqrt(d - 1) if d > 1 else 0.0  # the maximum of s^(d-1) exp(-s^2/2), roughly

    def log_f(s: float) -> float:
        return (d - 1) * math.log(s) - s * s / 2 - kappa * s**4 / (4 * d) if s > 0 else -math.inf

    shift = log_f(peak) if peak > 0 else 0.0
    value, _ = quad(
        lambda s: math.exp(log_f(s) - shift) if s > 0 else float(d == 1), 0, 60, limit=400
    )
    log_sphere = math.log(2) + (d / 2) * math.log(math.pi) - gammaln(d / 2)
    return log_sphere + shift + math.log(value)


def make_problem(d: int = 2, kappa: float = 1.0, nu: float = 0.5) -> ErgodicMFG:
    """The problem in dimension ``d`` with quartic weight ``kappa`` >= 0 and viscosity ``nu``."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 128:
        raise ValueError(f"d must be an integer from 1 to 128, got {d!r}")
    for name, value, low in (("kappa", kappa, 0.0), ("nu", nu, 1e-9)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= low:
            raise ValueError(f"{name} must be a number >= {low:g}, got {value!r}")
    xs = sp.symbols(f"x1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    c = [sp.Rational(1, 2) / sp.sqrt(d)] * d
    r2 = sum((x - ci) ** 2 for x, ci in zip(xs, c))
    k, n = sp.nsimplify(kappa), sp.nsimplify(nu)
    w = r2 / 2 + k * r2**2 / (4 * d)
    u_star = n * w
    grad = [sp.diff(u_star, x) for x in xs]
    lap = sum(sp.diff(u_star, x, 2) for x in xs)
    V = sp.expand(n * lap - sum(g**2 for g in grad) / 2 - w)
    log_z = _log_normaliser(d, float(kappa))
    return ErgodicMFG(
        domain=Rd(xs),
        value=u,
        density=m,
        constant=H,
        hjb=-n * sum(u.diff(x, 2) for x in xs)
        + sum(u.diff(x) ** 2 for x in xs) / 2
        + V
        - sp.log(m)
        - H,
        fp=-n * sum(m.diff(x, 2) for x in xs) - sum((m * u.diff(x)).diff(x) for x in xs),
        exact={u: u_star, m: sp.exp(-w - log_z), H: log_z},
        name=f"unseen-rd-quartic-nd-d{d}",
    )


problem = make_problem()
