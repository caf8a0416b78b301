"""HJB equation of a linear-quadratic control problem in d = 100 (Han, Jentzen & E 2018, Sec. 4.3).

    u_t + Lap u - lambda |grad u|^2 = 0,   u(T, x) = g(x) = ln((1 + |x|^2) / 2),   lambda = 1, T = 1.

As an FBSDE with sigma = sqrt(2): X_t = sqrt(2) W_t, Z = sigma grad u, so the driver is
f = -lambda |grad u|^2 = -lambda |z|^2 / 2. The Hopf-Cole transform gives
u(t, x) = -(1/lambda) ln E[exp(-lambda g(x + sqrt(2) W_{T-t}))]; the reference u(0, 0) below is
computed by the project (mfgsolve.fbsde.reference.hjb_lq_reference: Monte Carlo with its error bar,
checked against a one-dimensional chi-square quadrature). Han, Jentzen & E report 4.5901617.
"""

import sympy as sp

from mfgsolve.fbsde import FBSDE, vsum
from mfgsolve.fbsde.reference import hjb_lq_reference

d, lam, T = 100, 1.0, 1.0
t, x, y, z = sp.symbols("t x y z")
g = sp.log((1 + vsum(x**2)) / 2)
y0_ref, y0_err = hjb_lq_reference(d=d, lam=lam, T=T)

problem = FBSDE(
    time=(t, 0, T),
    state=x,
    dim=d,
    x0=0,
    value=y,
    gradient=z,
    drift=0,
    diffusion=sp.sqrt(2),
    driver=-lam * vsum(z**2) / 2,
    terminal=g,
    exact={
        "y0": y0_ref,
        "y0_error": y0_err,
        "source": "Hopf-Cole Monte Carlo (mfgsolve.fbsde.reference)",
    },
    name="fbsde-hjb-lq",
)
