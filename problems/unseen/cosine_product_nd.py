"""First-order ergodic MFG on T^d whose potential is a product of cosines of all coordinates.

    |grad u|^2 / 2 + V(x) - ln m - Hbar = 0,      -div(m grad u) = 0   on the unit torus T^d,
    V(x) = a cos(2 pi x_1) cos(2 pi x_2) ... cos(2 pi x_d),

a superposition of the 2^(d-1) mixed-direction plane waves cos(2 pi (x_1 +- x_2 +- ... +- x_d)),
each with amplitude a / 2^(d-1).

Exact solution: u = 0, m = exp(V) / Z, Hbar = ln Z, with

    Z = sum_{n even} a^n / n! (binom(n, n/2) / 2^n)^d = _{d-1}F_d(1/2, ..., 1/2; 1, ..., 1; a^2 / 4),

since the integral of cos^n(2 pi s) over [0, 1) is binom(n, n/2) / 2^n for even n and 0 for odd n.
The series is summed at import in 40-digit arithmetic until the tail is below 1e-30 Z: the ratio
of consecutive terms is below a^2 / ((n + 1)(n + 2)), so once that is <= 1/2 the terms at least
halve and the tail is bounded by the last term.

Var V = a^2 / 2^d while sup |V| = |a|. The default amplitude a = min(2^((d-1)/2), 2) keeps
Var V = 1/2 for d <= 3 and caps the peaks of m at e^2 / Z: holding Var V = 1/2 for larger d would
need a = 2^((d-1)/2) and put the mass into needles at the 2^(d-1) corners (x_i in {0, 1/2}) where
the product is 1. For large d the density therefore departs from uniform only near those corners
(Var V = 2^(2-d), Hbar = 3.1e-5 at d = 16).

A family: ``load_problem("problems/unseen/cosine_product_nd.py", d=8)`` or
``mfgsolve solve FILE --set d=8``; ``problem`` below is d = 4.
"""

import numbers
from math import comb

import mpmath
import sympy as sp

from mfgsolve import ErgodicMFG, Torus


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


def partition_function(d: int, a: sp.Expr) -> sp.Float:
    """Z = sum_{n even} a^n / n! (binom(n, n/2) / 2^n)^d, to 1e-30 relative (30 digits kept)."""
    with mpmath.workdps(40):
        a2 = mpmath.mpf(str(sp.N(a**2, 45)))
        total, term, n = mpmath.mpf(0), mpmath.mpf(1), 0
        while True:
            total += term
            ratio = a2 / ((n + 1) * (n + 2))
            if ratio <= 0.5 and term <= mpmath.mpf(10) ** -30 * total:
                break
            # term_{n+2} / term_n = a^2 / ((n+1)(n+2)) * (binom(n+2, n/2+1) / (4 binom(n, n/2)))^d
            term *= ratio * (mpmath.mpf(comb(n + 2, n // 2 + 1)) / (4 * comb(n, n // 2))) ** d
            n += 2
        return sp.Float(mpmath.nstr(total, 32), 30)


def make_problem(d: int = 4, amplitude: float | None = None) -> ErgodicMFG:
    """V = amplitude * prod_i cos(2 pi x_i) in dimension ``d`` (default amplitude min(2^((d-1)/2), 2))."""
    d = _integer("d", d, 2, 64)
    if amplitude is None:
        a = sp.sqrt(2) if d == 2 else sp.Integer(2)
    else:
        a = _number("amplitude", amplitude, -4, 4)
    xs = sp.symbols(f"x1:{d + 1}")
    ps = sp.symbols(f"p1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    V = a * sp.Mul(*(sp.cos(2 * sp.pi * xi) for xi in xs))
    Z = partition_function(d, a)
    return ErgodicMFG.from_hamiltonian(
        Torus(xs),
        u,
        m,
        H,
        hamiltonian=sum(p**2 for p in ps) / 2 + V,
        momenta=ps,
        coupling=sp.log(m),
        viscosity=0,
        exact={u: 0, m: sp.exp(V) / Z, H: sp.log(Z)},
        name=f"unseen-cosine-product-d{d}",
    )


problem = make_problem()
