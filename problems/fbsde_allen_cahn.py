"""Allen-Cahn equation in d = 100 (Han, Jentzen & E 2018, Sec. 4.2).

    u_t + Lap u + u - u^3 = 0,   u(T, x) = 1 / (2 + 0.4 |x|^2),   T = 0.3,   x0 = 0.

As an FBSDE: X = x0 + sqrt(2) W, f(y) = y - y^3. No closed form is known; the reference value
u(0, 0) = 0.052802 is the published one (Han, Jentzen & E 2018, computed there with the branching
diffusion method); it is not computed in this project.
"""

import sympy as sp

from mfgsolve.fbsde import FBSDE, vsum

d, T = 100, 0.3
t, x, y, z = sp.symbols("t x y z")

problem = FBSDE(
    time=(t, 0, T),
    state=x,
    dim=d,
    x0=0,
    value=y,
    gradient=z,
    drift=0,
    diffusion=sp.sqrt(2),
    driver=y - y**3,
    terminal=1 / (2 + sp.Rational(2, 5) * vsum(x**2)),
    exact={
        "y0": 0.052802,
        "source": "published: Han, Jentzen & E (2018), PNAS 115(34), Table/Sec. 4.2",
    },
    name="fbsde-allen-cahn",
)
