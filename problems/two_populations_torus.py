"""Manufactured ergodic MFG of two populations on the unit torus T^d (d = 1 or 2).

Each population k = 1, 2 has its own value u_k, density m_k and ergodic constant H_k; population k
dislikes crowds of its own kind (ln m_k) and, with weight c, the other population (m_j):

    -nu Lap u_k + |grad u_k|^2 / 2 - ln m_k - c m_j - f_k(x) - H_k = 0,
    -nu Lap m_k - div(m_k grad u_k) - s_k(x) = 0,          int u_k = 0, int m_k = 1, m_k > 0.

The chosen solution (theta = 2 pi (x_1 + ... + x_d), phi = 2 pi x_d):

    u_1* = sin(theta) / (2 pi),                m_1* = 1 + cos(theta) / 2,        H_1* = 1/3,
    u_2* = (cos(2 pi x_1) + sin(phi)) / (4 pi), m_2* = 1 + sin(2 pi x_1) cos(phi) / 3, H_2* = -1/4

(in 1-D phi = theta = 2 pi x), and sympy derives the sources f_k, s_k (each s_k a divergence:
int s_k = 0). The two populations sit in different places and move along different directions,
so a solver that mixed them up would show. For small c the coupling (ln m_1 + c m_2, ln m_2 +
c m_1) is monotone and the solution unique.

A family: ``load_problem("problems/two_populations_torus.py", d=2, c=0.5)`` or
``mfgsolve solve FILE --set d=2``; ``problem`` below is d = 1, c = 1/2, nu = 1/10.
"""

import numbers

import sympy as sp

from mfgsolve import ErgodicMFG, Torus


def _number(name, value, lo, hi):
    """A real number in [lo, hi] as an exact sympy number (a float by its shortest decimal)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    if isinstance(value, (float, sp.Float)):
        return sp.Rational(repr(float(value)))
    return sp.nsimplify(value)


def make_problem(d: int = 1, c: float = 0.5, nu: float = 0.1) -> ErgodicMFG:
    """The manufactured two-population problem in dimension ``d``, cross-coupling ``c``,
    viscosity ``nu``."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or d not in (1, 2):
        raise ValueError(f"d must be 1 or 2, got {d!r}")
    coupling, viscosity = sp.symbols("c nu", positive=True)
    xs = sp.symbols(f"x1:{d + 1}") if d > 1 else (sp.Symbol("x"),)
    us = [sp.Function(f"u{k}")(*xs) for k in (1, 2)]
    ms = [sp.Function(f"m{k}")(*xs) for k in (1, 2)]
    constants = sp.symbols("H1 H2")
    theta, phi = 2 * sp.pi * sum(xs), 2 * sp.pi * xs[-1]
    u_star = [
        sp.sin(theta) / (2 * sp.pi),
        (sp.cos(2 * sp.pi * xs[0]) + sp.sin(phi)) / (4 * sp.pi),
    ]
    m_star = [1 + sp.cos(theta) / 2, 1 + sp.sin(2 * sp.pi * xs[0]) * sp.cos(phi) / 3]
    h_star = [sp.Rational(1, 3), -sp.Rational(1, 4)]

    def hjb(k, uu, mm):
        grad2 = sum(uu[k].diff(x) ** 2 for x in xs)
        lap = sum(uu[k].diff(x, 2) for x in xs)
        return -viscosity * lap + grad2 / 2 - sp.log(mm[k]) - coupling * mm[1 - k]

    def fp(k, uu, mm):
        lap = sum(mm[k].diff(x, 2) for x in xs)
        return -viscosity * lap - sum((mm[k] * uu[k].diff(x)).diff(x) for x in xs)

    f = [hjb(k, u_star, m_star) - h_star[k] for k in (0, 1)]
    s = [fp(k, u_star, m_star) for k in (0, 1)]
    exact = {**dict(zip(us, u_star)), **dict(zip(ms, m_star)), **dict(zip(constants, h_star))}
    return ErgodicMFG(
        domain=Torus(list(xs)),
        value=us,
        density=ms,
        constant=list(constants),
        hjb=[hjb(k, us, ms) - f[k] - constants[k] for k in (0, 1)],
        fp=[fp(k, us, ms) - s[k] for k in (0, 1)],
        params={coupling: _number("c", c, 0, 10), viscosity: _number("nu", nu, 1e-3, 10)},
        exact=exact,
        name=f"two-populations-torus-{d}d",
    )


problem = make_problem()
