"""A discounted stationary MFG on the unit torus with a potential and crowd aversion (no closed form).

    rho u - nu u'' + |u'|^2 / 2 - cos(2 pi x) - ln m = 0,      -nu m'' - (m u')' = 0,

with int m = 1, m > 0. Agents pay the running cost cos(2 pi x) + ln m, discounted at the rate rho;
the potential drives them towards x = 1/2 and the logarithmic coupling spreads them out. With
rho = 1 and nu = 0.1 the density is far from uniform (its maximum is about 3.8 times its minimum),
and the discount makes u itself determined (no ergodic constant). There is no closed form: the
reference (`reference_solve`) is what the networks are checked against (docs/problem_files.md).
"""

import sympy as sp

from mfgsolve import DiscountedMFG, Torus

x = sp.Symbol("x")
u, m = sp.Function("u")(x), sp.Function("m")(x)
rho, nu = sp.symbols("rho nu", positive=True)

problem = DiscountedMFG(
    domain=Torus([x]),
    value=u,
    density=m,
    hjb=rho * u - nu * u.diff(x, 2) + u.diff(x) ** 2 / 2 - sp.cos(2 * sp.pi * x) - sp.log(m),
    fp=-nu * m.diff(x, 2) - (m * u.diff(x)).diff(x),
    params={rho: 1, nu: 0.1},
    name="discounted-potential-1d",
)
