"""Linear-quadratic MFG on the whole space R^d coupled through the population mean (exact: Riccati).

    dX = (A X + B alpha) dt + sigma dW  in R^d,  cost E[int (Q |X|^2 + Qbar |X - S z|^2
    + R |alpha|^2) / 2 dt + Q_T |X_T|^2 / 2],  z(t) = E[X_t] = (Expectation(x_i, m))_i,
    X_0 ~ N(z0, Sigma0 I).

    HJB: -u_t - nu Lap u + B^2 |grad u|^2 / (2 R) - A x . grad u
         - (Q |x|^2 + Qbar sum_i (x_i - S z_i)^2) / 2 = 0,
    FP:  m_t - nu Lap m - div(m (B^2 grad u / R - A x)) = 0,   nu = sigma^2 / 2,
    u(T, x) = Q_T |x|^2 / 2,  m(0, x) = N(z0, Sigma0 I).

The same coefficients on every axis as ``problems/lq_mean_1d.py`` (A = 0.1, Q = 0.5, Qbar = 1,
S = 1/2, Q_T = 1, Qbar_T = 0, sigma = 0.6, Sigma0 = 0.09, T = 1), so the problem decouples: the
closed form is u = sum_i (P(t) x_i^2 / 2 + r_i(t) x_i + s_i(t)), m = prod_i N(x_i; z_i(t), Sigma(t))
with the 1-D Riccati solution of each axis started at z0_i (``mfgsolve._lq_exact``,
``LinearQuadraticMeanFieldNd``, attached as ``problem.exact_solution``).

Scaling with d. The initial mean is z0_i = 1/sqrt(d) on every axis (default), so |z0| = 1 for
every d: the mean-field part of the cost (Qbar S^2 |z|^2 / 2, r . x) and the mean's path (|z(T)|
about 0.38) stay O(1) whatever d, and d = 1 is the 1-D file's model. The per-axis spread is the
same for every d (Sigma grows from 0.09 to 0.163 over [0, 1]), so the domain ``Rd(center=z0,
scale=0.4)`` (0.4 = the largest standard deviation, 0.403, rounded) is the same per axis. What
grows with d: u itself, linearly (each axis adds P x_i^2 / 2 + s(t), and E|X|^2 = |z|^2 +
d Sigma), the peak of m ((2 pi Sigma)^(-d/2): 2.6e12 at t = 0 and d = 100) and the
smallness of m away from the center (the typical point of the mass has m about e^(-d/2) times
the peak: use ``exact_solution.log_density``), and the mean-field signal per axis, z_i = |z| /
sqrt(d), which shrinks against the spread 0.3-0.4 while the quadrature error of each E[x_i] does
not: the coupling is resolved on the whole vector, not axis by axis. ``z0=1`` gives every axis
the 1-D problem's mean instead (|z0| = sqrt(d)).

A family: ``load_problem("problems/lq_mean_rd.py", d=10)`` or ``mfgsolve solve FILE --set d=10``;
``problem`` below is d = 2.
"""

import math
from collections.abc import Sequence

import numpy as np
import sympy as sp

from mfgsolve import MFG, Rd
from mfgsolve._lq_exact import LinearQuadraticMeanFieldNd
from mfgsolve.nonlocal_terms import Expectation

COEFFICIENTS = {
    "A": 0.1,
    "Abar": 0.0,
    "B": 1.0,
    "R": 1.0,
    "Q": 0.5,
    "Qbar": 1.0,
    "S": 0.5,
    "Q_T": 1.0,
    "Qbar_T": 0.0,  # the terminal condition must be a closed form of x to be imposed exactly
    "S_T": 0.5,
    "sigma": 0.6,
    "Sigma0": 0.09,
    "t0": 0.0,
    "T": 1.0,
}


def make_problem(d: int = 2, z0: float | Sequence[float] | None = None) -> MFG:
    """The problem in dimension ``d`` with initial mean ``z0`` (one number per axis or one for
    all; default 1/sqrt(d) on every axis, so |z0| = 1)."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 256:
        raise ValueError(f"d must be an integer from 1 to 256, got {d!r}")
    if z0 is None:
        z0_exact = [1 / sp.sqrt(d)] * d
    else:
        values = [z0] * d if isinstance(z0, (int, float)) else list(z0)
        if len(values) != d or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise ValueError(f"z0 must be one finite number or {d} of them, got {z0!r}")
        z0_exact = [sp.nsimplify(v) for v in values]
    z0_float = [float(v) for v in z0_exact]

    c = {k: sp.nsimplify(v) for k, v in COEFFICIENTS.items()}
    t = sp.Symbol("t")
    xs = sp.symbols(f"x1:{d + 1}")
    ps = sp.symbols(f"p1:{d + 1}")
    u, m = sp.Function("u")(t, *xs), sp.Function("m")(t, *xs)

    exact = LinearQuadraticMeanFieldNd(d=d, z0=z0_float, **COEFFICIENTS)
    ts = np.linspace(exact.t0, exact.T, 201)
    scale = round(float(np.sqrt(exact.variance(ts).max())), 1)  # 0.4 (max sd 0.403)

    square = sum(xi**2 for xi in xs)
    mean_gap = sum((xi - c["S"] * Expectation(xi, m)) ** 2 for xi in xs)
    initial = sp.exp(-sum((xi - zi) ** 2 for xi, zi in zip(xs, z0_exact)) / (2 * c["Sigma0"])) / (
        2 * sp.pi * c["Sigma0"]
    ) ** sp.Rational(d, 2)
    problem = MFG.from_hamiltonian(
        Rd(xs, center=z0_float, scale=scale),
        (t, c["t0"], c["T"]),
        u,
        m,
        hamiltonian=c["B"] ** 2 * sum(p**2 for p in ps) / (2 * c["R"])
        - c["A"] * sum(xi * p for xi, p in zip(xs, ps)),
        momenta=ps,
        coupling=(c["Q"] * square + c["Qbar"] * mean_gap) / 2,
        viscosity=c["sigma"] ** 2 / 2,
        terminal={u: c["Q_T"] * square / 2},  # Qbar_T = 0: the terminal condition is local
        initial={m: initial},
        name=f"lq-mean-rd-d{d}",
    )
    problem.exact_solution = exact
    return problem


problem = make_problem()
