"""Segregation of two populations on the unit torus T^d (d = 1 or 2): an ergodic MFG in the
manner of the two-population models of Achdou, Bardi & Cirant (2017, "Mean field games models of
segregation", M3AS 27) and Cirant & Verzini (2017): quadratic Hamiltonians, and each population
pays for the presence of the other one (Schelling's "xenophobia"), with weight c:

    -nu Lap u_k + |grad u_k|^2 / 2 - c m_j - V_k(x) - H_k = 0,
    -nu Lap m_k - div(m_k grad u_k) = 0,                     int u_k = 0, int m_k = 1, m_k > 0,

(k = 1, 2; j the other one). Without a potential the uniform state m_1 = m_2 = 1 solves the
system for every c, and segregated states branch off it; the opposing potentials V_1 = -V_2 =
delta cos(2 pi x_1) (times cos(2 pi x_2) in 2-D: a checkerboard) pick one of them: population 1
gathers where V_1 is low and population 2 where it is high. How segregated the state is, is the
overlap int m_1 m_2 (1 when both are uniform, 0 when they never meet): with the defaults in 1-D
the cross-aversion c = 0.03 halves the overlap that the potentials alone give (c = 0).

No closed form: checked against the finite-difference reference (``mfgsolve compare``).

A family: ``load_problem("problems/segregation_torus.py", d=2, c=0.03)`` or
``mfgsolve solve FILE --set d=2``; ``problem`` below is d = 1, nu = 0.03, delta = 0.05, c = 0.03.
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


def make_problem(d: int = 1, nu: float = 0.03, delta: float = 0.05, c: float = 0.03) -> ErgodicMFG:
    """The segregation problem in dimension ``d`` with viscosity ``nu``, potential strength
    ``delta`` and cross-aversion ``c``."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or d not in (1, 2):
        raise ValueError(f"d must be 1 or 2, got {d!r}")
    viscosity, strength, aversion = sp.symbols("nu delta c", positive=True)
    xs = sp.symbols(f"x1:{d + 1}") if d > 1 else (sp.Symbol("x"),)
    us = [sp.Function(f"u{k}")(*xs) for k in (1, 2)]
    ms = [sp.Function(f"m{k}")(*xs) for k in (1, 2)]
    constants = sp.symbols("H1 H2")
    shape = sp.Mul(*(sp.cos(2 * sp.pi * x) for x in xs))
    potentials = [strength * shape, -strength * shape]

    def hjb(k):
        grad2 = sum(us[k].diff(x) ** 2 for x in xs)
        lap = sum(us[k].diff(x, 2) for x in xs)
        return -viscosity * lap + grad2 / 2 - aversion * ms[1 - k] - potentials[k] - constants[k]

    def fp(k):
        lap = sum(ms[k].diff(x, 2) for x in xs)
        return -viscosity * lap - sum((ms[k] * us[k].diff(x)).diff(x) for x in xs)

    return ErgodicMFG(
        domain=Torus(list(xs)),
        value=us,
        density=ms,
        constant=list(constants),
        hjb=[hjb(0), hjb(1)],
        fp=[fp(0), fp(1)],
        params={
            viscosity: _number("nu", nu, 1e-3, 10),
            strength: _number("delta", delta, 0, 10),
            aversion: _number("c", c, 0, 10),
        },
        name=f"segregation-torus-{d}d",
    )


problem = make_problem()
