"""Black-Scholes-Barenblatt equation in d = 100 (Raissi 2018, "Forward-backward stochastic neural
networks"; also Han, Jentzen & E 2018).

    u_t + 1/2 sigma^2 sum_i x_i^2 u_{x_i x_i} - r (u - x . grad u) = 0,   u(T, x) = |x|^2,

with r = 0.05, sigma = 0.4, T = 1, x0 = (1, 0.5, 1, 0.5, ...). As an FBSDE: dX = sigma diag(X) dW,
Z = sigma diag(X) grad u, so x . grad u = sum_i z_i / sigma and f = -r (y - sum_i z_i / sigma).
Exact solution: u(t, x) = exp((r + sigma^2)(T - t)) |x|^2 (checked by sympy in tests/test_fbsde.py).
"""

import sympy as sp

from mfgsolve.fbsde import FBSDE, vsum

d, r, sigma, T = 100, 0.05, 0.4, 1.0
t, x, y, z = sp.symbols("t x y z")

problem = FBSDE(
    time=(t, 0, T),
    state=x,
    dim=d,
    x0=[1.0, 0.5] * (d // 2),
    value=y,
    gradient=z,
    drift=0,
    diffusion=sigma * x,
    driver=-r * (y - vsum(z) / sigma),
    terminal=vsum(x**2),
    exact=sp.exp((r + sigma**2) * (T - t)) * vsum(x**2),
    name="fbsde-bsb",
)
