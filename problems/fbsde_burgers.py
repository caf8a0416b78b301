"""Multidimensional Burgers-type PDE with a closed form (E, Han & Jentzen 2017, Commun. Math. Stat.
5:349-380, Sec. 4.5); a family in the dimension d (``make_problem(d=10)``; ``problem`` is d = 50,
T = 0.2 as in the authors' reference code).

    u_t + d^2/2 Lap u + (u - (2 + d) / (2 d)) d sum_i u_{x_i} = 0,
    u(t, x) = exp(t + sum_i x_i / d) / (1 + exp(t + sum_i x_i / d)),   T = 0.2, x0 = 0.

As an FBSDE: X = x0 + d W (sigma = d), Z = d grad u, driver f = (y - (2 + d) / (2 d)) sum_i z_i.
u(0, 0) = 1/2. tests/test_fbsde.py checks the closed form symbolically (d = 3).

Published result: E, Han & Jentzen (2017), Sec. 4.5 (d = 20 and d = 50), deep BSDE with per-step
subnets; the reference code (github.com/frankhan91/DeepBSDE, configs/burgers_type_d50.json) runs
N = 30, 30,000 iterations, batch 64, width 60, lr 1e-2 -> 1e-3 -> 1e-4, float64. The paper's table
value could not be read back here. This family is the held-out check of the FBSDE defaults: they
were chosen on the quadratic-gradient and reaction-diffusion families (docs/fbsde.md, section 6).
"""

import sympy as sp

from mfgsolve.fbsde import FBSDE, vsum

T = sp.Rational(1, 5)


def make_problem(d: int = 50, T: float = T) -> FBSDE:
    """The problem in dimension ``d`` on [0, T]."""
    d = int(d)
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    T = sp.nsimplify(T)
    t, x, y, z = sp.symbols("t x y z")
    s = t + vsum(x) / d
    return FBSDE(
        time=(t, 0, T),
        state=x,
        dim=d,
        x0=0,
        value=y,
        gradient=z,
        drift=0,
        diffusion=d,
        driver=(y - sp.Rational(2 + d, 2 * d)) * vsum(z),
        terminal=1 - 1 / (1 + sp.exp(s.subs(t, T))),
        exact={
            "u": 1 - 1 / (1 + sp.exp(s)),
            "source": "closed form; E, Han & Jentzen (2017), Commun. Math. Stat., Sec. 4.5",
        },
        name=f"fbsde-burgers-d{d}",
    )


problem = make_problem()
