"""Ergodic linear-quadratic MFG on the whole space R^d: a stationary Gaussian in closed form.

    -nu Lap u + |grad u|^2 / 2 - sum_i beta_i (x_i - c_i)^2 / 2 - gamma ln m - Hbar = 0,
    -nu Lap m - div(m grad u) = 0,     x in R^d,  int m = 1,

(a player pays beta_i (x_i - c_i)^2 / 2 to be away from c and gamma ln m to be in a crowd, and
controls its drift at the cost |alpha|^2 / 2; the crowd aversion makes the MFG monotone).

Closed form (matching the powers of x; each axis on its own):
    u = sum_i a_i (x_i - c_i)^2 / 2,   a_i = (-(gamma / nu) + sqrt((gamma / nu)^2 + 4 beta_i)) / 2,
    m = prod_i N(c_i, nu / a_i)        (the invariant law of dX = -a (X - c) dt + sqrt(2 nu) dW),
    Hbar = sum_i (gamma / 2 ln(2 pi nu / a_i) - nu a_i).
u is defined up to a constant: on R^d the errors of u are measured with the constant removed.

A family: ``make_problem(d=2)``; ``mfgsolve solve problems/lq_ergodic_rd.py --set d=100``. The
stiffness beta_i runs from 1/2 to 2 over the axes (variances nu / a_i from 1.37 down to 0.5
with nu = gamma = 1/2)
and the centre c_i = 1/sqrt(d) (|c| = 1) is not where the domain's reference measure starts, so a
solver has to find the mean and each axis' spread. Per axis the problem is the same for every d.
"""

import sympy as sp

from mfgsolve import ErgodicMFG, Rd

NU = sp.Rational(1, 2)
GAMMA = sp.Rational(1, 2)


def make_problem(d: int = 2, nu: float | None = None, gamma: float | None = None) -> ErgodicMFG:
    """The problem in dimension ``d`` (viscosity ``nu``, crowd aversion ``gamma``: default 1/2)."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 256:
        raise ValueError(f"d must be an integer from 1 to 256, got {d!r}")
    for name, value in (("nu", nu), ("gamma", gamma)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        ):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    nu = NU if nu is None else sp.nsimplify(nu)
    gamma = GAMMA if gamma is None else sp.nsimplify(gamma)
    xs = sp.symbols(f"x1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    beta = [sp.Integer(2) ** (sp.Rational(2 * i, d - 1) - 1) if d > 1 else 1 for i in range(d)]
    c = [1 / sp.sqrt(d)] * d
    k = gamma / nu
    a = [(-k + sp.sqrt(k**2 + 4 * b)) / 2 for b in beta]
    var = [nu / ai for ai in a]
    u_exact = sum(ai * (xi - ci) ** 2 / 2 for ai, xi, ci in zip(a, xs, c))
    log_m = sum(
        -((xi - ci) ** 2) / (2 * v) - sp.log(2 * sp.pi * v) / 2 for xi, ci, v in zip(xs, c, var)
    )
    hbar = sum(gamma / 2 * sp.log(2 * sp.pi * v) - nu * ai for ai, v in zip(a, var))
    return ErgodicMFG(
        domain=Rd(xs),
        value=u,
        density=m,
        constant=H,
        hjb=-nu * sum(u.diff(xi, 2) for xi in xs)
        + sum(u.diff(xi) ** 2 for xi in xs) / 2
        - sum(b * (xi - ci) ** 2 / 2 for b, xi, ci in zip(beta, xs, c))
        - gamma * sp.log(m)
        - H,
        fp=-nu * sum(m.diff(xi, 2) for xi in xs) - sum((m * u.diff(xi)).diff(xi) for xi in xs),
        exact={u: u_exact, m: sp.exp(log_m), H: hbar},
        name=f"lq-ergodic-rd-d{d}",
    )


problem = make_problem()
