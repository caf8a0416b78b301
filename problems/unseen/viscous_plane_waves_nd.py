"""Viscous ergodic MFG on T^d with a manufactured solution made of plane waves in mixed directions.

    -nu Lap u + |grad u|^2 / 2 + V(x) - ln m - Hbar = 0,      -nu Lap m - div(m grad u) = 0,

on the unit torus T^d, int u = 0, int m = 1. The chosen value is

    u*(x) = nu w(x),   w(x) = b (w_0(2 pi k_0 . x) + ... + w_{J-1}(2 pi k_{J-1} . x)),
    b = amplitude / sqrt(J),

with w_j = sin for even j and cos for odd j, and the J = ``waves`` directions k_j in {-1, 1}^d the
first rows of the Sylvester-Hadamard matrix cut to d columns, k_j[i] = (-1)^popcount(i & j)
(k_0 = (1, 1, ...), k_1 = (1, -1, 1, -1, ...), ...; linearly independent for J <= min(d, 4)).

On the torus with nu > 0 the FP flux -nu grad m - m grad u vanishes for m = exp(-u / nu) / Z, so

    m* = exp(-w) / Z,   Hbar* = ln Z,   V = nu Lap u* - |grad u*|^2 / 2 - u* / nu

make (u*, m*, Hbar*) exact: ln m* = -u*/nu - ln Z turns the HJB into
-nu Lap u* + |grad u*|^2 / 2 + V + u*/nu + ln Z - Hbar* = 0. sympy derives V below. Z = I0(b)^J
exactly: the integral over T^d of a product of functions of independent combinations k_j . x
factorises (only the zero Fourier mode of each survives), and the integral of exp(-b w_j(2 pi s))
over [0, 1) is I0(b). Var(ln m*) = amplitude^2 / 2 for every d (1/2 by default).

Along each direction |k_j|^2 = d, so the default viscosity nu = 1 / (2d) gives the same effective
viscosity nu |k_j|^2 = 1/2 in every dimension and keeps every term of the HJB of order one.

A family: ``load_problem("problems/unseen/viscous_plane_waves_nd.py", d=16)`` or
``mfgsolve solve FILE --set d=16 --set nu=0.05``; ``problem`` below is d = 4 with two waves.
"""

import numbers

import sympy as sp

from mfgsolve import ErgodicMFG, Torus


def _integer(name, value, lo, hi, why=""):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}{why}, got {value!r}")
    return int(value)


def _number(name, value, lo, hi, open_lo=False):
    """A real number in [lo, hi] (or (lo, hi]) as an exact sympy number (a float by its shortest decimal)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not lo <= float(value) <= hi
        or (open_lo and float(value) == lo)
    ):
        interval = (
            f"{'above' if open_lo else 'from'} {lo} {'and at most' if open_lo else 'to'} {hi}"
        )
        raise ValueError(f"{name} must be a number {interval}, got {value!r}")
    if isinstance(value, (float, sp.Float)):
        return sp.Rational(repr(float(value)))
    return sp.nsimplify(value)


def directions(d: int, count: int) -> list[list[int]]:
    """The first ``count`` rows of the Sylvester-Hadamard matrix, cut to ``d`` columns."""
    return [[(-1) ** bin(i & j).count("1") for i in range(d)] for j in range(count)]


def make_problem(
    d: int = 4, waves: int = 2, amplitude: float = 1.0, nu: float | None = None
) -> ErgodicMFG:
    """``waves`` plane waves in u* in dimension ``d``; viscosity ``nu`` (default 1 / (2d))."""
    d = _integer("d", d, 2, 64)
    waves = _integer("waves", waves, 1, min(d, 4), " (independent directions in {-1, 1}^d)")
    b = _number("amplitude", amplitude, -4, 4) / sp.sqrt(waves)
    nu_value = sp.Rational(1, 2 * d) if nu is None else _number("nu", nu, 0, 10, open_lo=True)
    xs = sp.symbols(f"x1:{d + 1}")
    ps = sp.symbols(f"p1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    viscosity = sp.Symbol("nu")
    ks = directions(d, waves)
    if sp.Matrix(ks).rank() != waves:  # never for waves <= min(d, 4); Z below relies on it
        raise ValueError(f"the {waves} wave directions are not independent in d={d}")
    w = b * sum(
        (sp.sin if j % 2 == 0 else sp.cos)(2 * sp.pi * sum(ki * xi for ki, xi in zip(k, xs)))
        for j, k in enumerate(ks)
    )
    u_star = viscosity * w
    lap = sum(u_star.diff(xi, 2) for xi in xs)
    grad2 = sum(u_star.diff(xi) ** 2 for xi in xs)
    V = viscosity * lap - grad2 / 2 - u_star / viscosity
    Z = sp.besseli(0, b) ** waves
    return ErgodicMFG.from_hamiltonian(
        Torus(xs),
        u,
        m,
        H,
        hamiltonian=sum(p**2 for p in ps) / 2 + V,
        momenta=ps,
        coupling=sp.log(m),
        viscosity=viscosity,
        params={viscosity: nu_value},
        exact={u: u_star, m: sp.exp(-w) / Z, H: sp.log(Z)},
        name=f"unseen-viscous-plane-waves-d{d}" + ("" if waves == 2 else f"-w{waves}"),
    )


problem = make_problem()
