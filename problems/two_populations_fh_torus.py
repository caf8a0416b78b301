"""Manufactured finite-horizon MFG of two populations on the unit torus T^d (d = 1 or 2), t in [0, 1].

Each population k = 1, 2 has its own value u_k(t, x) and density m_k(t, x); population k dislikes
crowds of its own kind (ln m_k) and, with weight c, the other population (m_j):

    -d_t u_k - nu Lap u_k + |grad u_k|^2 / 2 - ln m_k - c m_j - f_k(t, x) = 0,
     d_t m_k - nu Lap m_k - div(m_k grad u_k) - s_k(t, x) = 0,

with u_k(1, .) and m_k(0, .) taken from the chosen solution (theta = 2 pi (x_1 + ... + x_d),
phi = 2 pi x_d, a = 2 pi x_1):

    u_1* = (3 - t) sin(theta + pi t / 2) / (4 pi),    m_1* = 1 + cos(theta - pi t) / 2,
    u_2* = (1 + t) (cos(a - pi t / 2) + sin(phi)) / (8 pi),
    m_2* = 1 + sin(a + pi t / 2) cos(phi + pi t / 2) / 3

(in 1-D a = phi = theta = 2 pi x). sympy derives the sources f_k, s_k; every m_k* has mass 1 at
every time, so each s_k has zero mean in x. The populations sit in different places and travel
in different directions, so a solver that mixed them up would show.

A family: ``load_problem("problems/two_populations_fh_torus.py", d=2, c=0.5)`` or
``mfgsolve solve FILE --set d=2``; ``problem`` below is d = 1, c = 1/2, nu = 1/10.
"""

import numbers

import sympy as sp

from mfgsolve import MFG, Torus


def _number(name, value, lo, hi):
    """A real number in [lo, hi] as an exact sympy number (a float by its shortest decimal)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    if isinstance(value, (float, sp.Float)):
        return sp.Rational(repr(float(value)))
    return sp.nsimplify(value)


def make_problem(d: int = 1, c: float = 0.5, nu: float = 0.1) -> MFG:
    """The manufactured two-population finite-horizon problem in dimension ``d``,
    cross-coupling ``c``, viscosity ``nu``."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or d not in (1, 2):
        raise ValueError(f"d must be 1 or 2, got {d!r}")
    coupling, viscosity = sp.symbols("c nu", positive=True)
    t = sp.Symbol("t")
    xs = sp.symbols(f"x1:{d + 1}") if d > 1 else (sp.Symbol("x"),)
    us = [sp.Function(f"u{k}")(t, *xs) for k in (1, 2)]
    ms = [sp.Function(f"m{k}")(t, *xs) for k in (1, 2)]
    theta, phi, a = 2 * sp.pi * sum(xs), 2 * sp.pi * xs[-1], 2 * sp.pi * xs[0]
    u_star = [
        (3 - t) * sp.sin(theta + sp.pi * t / 2) / (4 * sp.pi),
        (1 + t) * (sp.cos(a - sp.pi * t / 2) + sp.sin(phi)) / (8 * sp.pi),
    ]
    m_star = [
        1 + sp.cos(theta - sp.pi * t) / 2,
        1 + sp.sin(a + sp.pi * t / 2) * sp.cos(phi + sp.pi * t / 2) / 3,
    ]

    def hjb(k, uu, mm):
        grad2 = sum(uu[k].diff(x) ** 2 for x in xs)
        lap = sum(uu[k].diff(x, 2) for x in xs)
        return -uu[k].diff(t) - viscosity * lap + grad2 / 2 - sp.log(mm[k]) - coupling * mm[1 - k]

    def fp(k, uu, mm):
        lap = sum(mm[k].diff(x, 2) for x in xs)
        return mm[k].diff(t) - viscosity * lap - sum((mm[k] * uu[k].diff(x)).diff(x) for x in xs)

    f = [hjb(k, u_star, m_star) for k in (0, 1)]
    s = [fp(k, u_star, m_star) for k in (0, 1)]
    return MFG(
        Torus(list(xs)),
        (t, 0, 1),
        value=us,
        density=ms,
        hjb=[hjb(k, us, ms) - f[k] for k in (0, 1)],
        fp=[fp(k, us, ms) - s[k] for k in (0, 1)],
        terminal={us[k]: u_star[k].subs(t, 1) for k in (0, 1)},
        initial={ms[k]: m_star[k].subs(t, 0) for k in (0, 1)},
        params={coupling: _number("c", c, 0, 10), viscosity: _number("nu", nu, 1e-3, 10)},
        exact={**dict(zip(us, u_star)), **dict(zip(ms, m_star))},
        name=f"two-populations-fh-torus-{d}d",
    )


problem = make_problem()
