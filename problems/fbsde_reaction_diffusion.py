"""Time-dependent reaction-diffusion PDE with an oscillating closed form (E, Han & Jentzen 2017,
Commun. Math. Stat. 5:349-380, Sec. 4.7; Han, Jentzen & E 2018, PNAS 115(34), Table 1); a family in
the dimension d (``make_problem(d=10)``; ``problem`` is d = 100 as published).

    u_t + 1/2 Lap u + min{1, (u - kappa - 1 - sin(lambda sum_i x_i) exp(lambda^2 d (t - T) / 2))^2} = 0,
    u(T, x) = 1 + kappa + sin(lambda sum_i x_i),   kappa = 0.6, lambda = 1 / sqrt(d), T = 1, x0 = 0.

As an FBSDE: X = x0 + W (sigma = 1), driver f = min{1, (y - kappa - 1 - sin(...) exp(...))^2}.
Closed form u = 1 + kappa + sin(lambda sum_i x_i) exp(lambda^2 d (t - T) / 2), u(0, 0) = 1.6
(tests/test_fbsde.py checks it symbolically against the PDE below, d = 3).

Published result: Han, Jentzen & E (2018), PNAS, Table 1: the relative error of u(0, 0) of the deep
BSDE method (per-step subnets) on this PDE falls from 2.29 % (subnets without hidden layers) to
0.53 % (4 hidden layers). The authors' reference code (github.com/frankhan91/DeepBSDE,
configs/reaction_diffusion_d100.json) runs it in d = 100 with N = 30 time steps, batch 64, width 110,
lr 1e-2, float64.
"""

import sympy as sp

from mfgsolve.fbsde import FBSDE, vsum

KAPPA, T = sp.Rational(3, 5), 1


def make_problem(d: int = 100) -> FBSDE:
    """The problem in dimension ``d``."""
    d = int(d)
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    t, x, y, z = sp.symbols("t x y z")
    lam = 1 / sp.sqrt(d)
    wave = sp.sin(lam * vsum(x)) * sp.exp(lam**2 * d * (t - T) / 2)
    return FBSDE(
        time=(t, 0, T),
        state=x,
        dim=d,
        x0=0,
        value=y,
        gradient=z,
        drift=0,
        diffusion=1,
        driver=sp.Min(1, (y - KAPPA - 1 - wave) ** 2),
        terminal=1 + KAPPA + sp.sin(lam * vsum(x)),
        exact={
            "u": 1 + KAPPA + wave,
            "source": "closed form; E, Han & Jentzen (2017), Sec. 4.7; Han, Jentzen & E (2018)",
        },
        name=f"fbsde-reaction-diffusion-d{d}",
    )


problem = make_problem()
