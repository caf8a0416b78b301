"""PDE with quadratically growing derivatives (E, Han & Jentzen 2017, Commun. Math. Stat. 5:349-380,
Sec. 4.6); a family in the dimension d (``make_problem(d=10)``; ``problem`` is d = 100 as published).

    u_t + |grad u|^2 + 1/2 Lap u = psi_t + |grad psi|^2 + 1/2 Lap psi,
    psi(t, x) = sin((T - t + |x|^2 / d)^alpha),   u(T, x) = psi(T, x),   alpha = 0.4, T = 1, x0 = 0.

As an FBSDE: X = x0 + W (sigma = 1), Z = grad u, driver f = |z|^2 - (psi_t + |grad psi|^2 + 1/2 Lap psi)
written in t and x (|grad psi|^2 = 4 s psi_s^2 and Lap psi = 2 d psi_s + 4 s psi_ss with
s = |x|^2, psi as a function of (t, s)). Closed form u = psi; u(0, 0) = sin(1) = 0.8414710.
tests/test_fbsde.py checks symbolically that psi solves the PDE written below, component by
component (d = 2).

Published result: E, Han & Jentzen (2017), Sec. 4.6 (d = 100, N = 30 time steps), deep BSDE with
per-step subnets; the authors' reference code (github.com/frankhan91/DeepBSDE,
configs/quad_grad_d100.json) runs 4,000 iterations, batch 64, width 110, lr 5e-3, float64. The
paper's table value for this example could not be read back here; the deep BSDE results it is
compared with are those of Han, Jentzen & E (2018), PNAS 115(34), in d = 100: 0.17 % (HJB),
0.30 % (Allen-Cahn), 0.46 % (default risk) relative error of u(0, x0).
"""

import sympy as sp

from mfgsolve.fbsde import FBSDE, vsum

ALPHA, T = sp.Rational(2, 5), 1


def make_problem(d: int = 100) -> FBSDE:
    """The problem in dimension ``d``."""
    d = int(d)
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    t, x, y, z, s = sp.symbols("t x y z s")
    psi = sp.sin((T - t + s / d) ** ALPHA)  # psi(t, s) with s = |x|^2
    psi_s, psi_ss = sp.diff(psi, s), sp.diff(psi, s, 2)
    source = sp.diff(psi, t) + 4 * s * psi_s**2 + (2 * d * psi_s + 4 * s * psi_ss) / 2
    r2 = vsum(x**2)
    return FBSDE(
        time=(t, 0, T),
        state=x,
        dim=d,
        x0=0,
        value=y,
        gradient=z,
        drift=0,
        diffusion=1,
        driver=vsum(z**2) - source.subs(s, r2),
        terminal=psi.subs({t: T, s: r2}),
        exact={
            "u": psi.subs(s, r2),
            "source": "closed form; E, Han & Jentzen (2017), Commun. Math. Stat., Sec. 4.6",
        },
        name=f"fbsde-quadratic-gradient-d{d}",
    )


problem = make_problem()
