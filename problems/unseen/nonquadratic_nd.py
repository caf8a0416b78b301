"""Manufactured ergodic MFG on T^d with a non-quadratic Hamiltonian and log coupling.

    -nu Lap u + H(grad u) - ln m - Hbar - f(x) = 0,      -nu Lap m - div(m H_p(grad u)) - s(x) = 0,

on the unit torus T^d, int u = 0, int m = 1, with one of two strictly convex Hamiltonians
(``hamiltonian``):

    "relativistic":  H(p) = sqrt(1 + |p|^2) - 1,   H_p = p / sqrt(1 + |p|^2)   (bounded drift),
    "quartic":       H(p) = |p|^2 / 2 + |p|^4 / 4,  H_p = (1 + |p|^2) p.

The chosen solution, in the independent mixed directions k_0 = (1, 1, ..., 1) and
k_1 = (1, -1, 1, -1, ...):

    u* = (sin(2 pi k_0 . x) + cos(2 pi k_1 . x)) / (2 pi sqrt(2 d))      (mean |grad u*|^2 = 1/2),
    m* = (1 + cos(2 pi k_0 . x) / 2) (1 + sin(2 pi k_1 . x) / 2)        (1/4 <= m* <= 9/4),
    Hbar* = 1/4.

int u* = 0, and int m* = 1 exactly: expanding the product leaves, besides 1, plane waves in the
nonzero directions k_0, k_1 and k_0 +- k_1, whose integrals vanish. sympy derives the sources
f = -nu Lap u* + H(grad u*) - ln m* - Hbar* and s = -nu Lap m* - div(m* H_p(grad u*)); s is a
divergence, so int s = 0. With H strictly convex and ln m increasing, the Lasry-Lions argument
(the fixed sources cancel in the difference of two solutions) makes (u*, m*, Hbar*) the unique
solution.

A family: ``load_problem("problems/unseen/nonquadratic_nd.py", d=4, hamiltonian="quartic")`` or
``mfgsolve solve FILE --set d=4 --set hamiltonian=quartic``; ``problem`` below is d = 2, relativistic.
"""

import numbers

import sympy as sp

from mfgsolve import ErgodicMFG, Torus

HAMILTONIANS = ("relativistic", "quartic")


def _integer(name, value, lo, hi):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


def _number(name, value, lo, hi):
    """A real number in [lo, hi] as an exact sympy number (a float by its shortest decimal)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not lo <= float(value) <= hi
    ):
        raise ValueError(f"{name} must be a number from {lo} to {hi}, got {value!r}")
    if isinstance(value, (float, sp.Float)):
        return sp.Rational(repr(float(value)))
    return sp.nsimplify(value)


def make_problem(d: int = 2, hamiltonian: str = "relativistic", nu: float = 0.1) -> ErgodicMFG:
    """The manufactured problem in dimension ``d`` with Hamiltonian ``hamiltonian``, viscosity ``nu``."""
    d = _integer("d", d, 2, 16)
    if hamiltonian not in HAMILTONIANS:
        raise ValueError(f"hamiltonian must be 'relativistic' or 'quartic', got {hamiltonian!r}")
    viscosity = sp.Symbol("nu")
    nu_value = _number("nu", nu, 0, 10)
    xs = sp.symbols(f"x1:{d + 1}")
    ps = sp.symbols(f"p1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")

    p2 = sum(p**2 for p in ps)
    ham = sp.sqrt(1 + p2) - 1 if hamiltonian == "relativistic" else p2 / 2 + p2**2 / 4
    theta0 = 2 * sp.pi * sum(xs)
    theta1 = 2 * sp.pi * sum((-1) ** i * xi for i, xi in enumerate(xs))
    u_star = (sp.sin(theta0) + sp.cos(theta1)) / (2 * sp.pi * sp.sqrt(2 * d))
    m_star = (1 + sp.cos(theta0) / 2) * (1 + sp.sin(theta1) / 2)
    hbar = sp.Rational(1, 4)

    def at_gradient(expr, uu):
        return expr.subs({p: uu.diff(xi) for p, xi in zip(ps, xs)}, simultaneous=True)

    def hjb_operator(uu, mm):
        lap = sum(uu.diff(xi, 2) for xi in xs)
        return -viscosity * lap + at_gradient(ham, uu) - sp.log(mm)

    def fp_operator(uu, mm):
        lap = sum(mm.diff(xi, 2) for xi in xs)
        div = sum((mm * at_gradient(ham.diff(p), uu)).diff(xi) for p, xi in zip(ps, xs))
        return -viscosity * lap - div

    f = hjb_operator(u_star, m_star) - hbar
    s = fp_operator(u_star, m_star)
    return ErgodicMFG(
        domain=Torus(xs),
        value=u,
        density=m,
        constant=H,
        hjb=hjb_operator(u, m) - H - f,
        fp=fp_operator(u, m) - s,
        params={viscosity: nu_value},
        exact={u: u_star, m: m_star, H: hbar},
        name=f"unseen-nonquadratic-{hamiltonian}-d{d}",
    )


problem = make_problem()
