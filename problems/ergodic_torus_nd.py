"""The seed problem in d dimensions, scaled so the density stays resolvable as d grows.

    |grad u|^2 / 2 + V(x) = ln m + Hbar,      -div(m grad u) = 0   on the unit torus T^d,
    V(x) = a * sum_i sin(2 pi x_i),  a = amplitude (default 1 / sqrt(d): Var V = 1/2 for every d).

Exact solution: u = 0, m = prod_i exp(a sin 2 pi x_i) / I0(a)^d, Hbar = d ln I0(a).
A family: ``load_problem("problems/ergodic_torus_nd.py", d=16)`` or ``mfgsolve solve FILE --set d=16``;
``problem`` below is d = 4. With amplitude=1, d=1 and d=4 are the seed problems.
"""

import math

import sympy as sp

from mfgsolve import ErgodicMFG, Torus


def make_problem(d: int = 4, amplitude: float | None = None) -> ErgodicMFG:
    """The problem in dimension ``d`` with potential amplitude ``amplitude`` (default 1/sqrt(d))."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 256:
        raise ValueError(f"d must be an integer from 1 to 256, got {d!r}")
    if amplitude is not None and (
        isinstance(amplitude, bool)
        or not isinstance(amplitude, (int, float))
        or not abs(amplitude) < math.inf
    ):
        raise ValueError(f"amplitude must be a finite number, got {amplitude!r}")
    a = 1 / sp.sqrt(d) if amplitude is None else sp.nsimplify(amplitude)
    xs = sp.symbols(f"x1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    V = a * sum(sp.sin(2 * sp.pi * xi) for xi in xs)
    return ErgodicMFG(
        domain=Torus(xs),
        value=u,
        density=m,
        constant=H,
        hjb=sum(u.diff(xi) ** 2 for xi in xs) / 2 + V - sp.log(m) - H,
        fp=-sum((m * u.diff(xi)).diff(xi) for xi in xs),
        exact={u: 0, m: sp.exp(V) / sp.besseli(0, a) ** d, H: d * sp.log(sp.besseli(0, a))},
        name=f"ergodic-torus-nd-d{d}",
    )


problem = make_problem()
