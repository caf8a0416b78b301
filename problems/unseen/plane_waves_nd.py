"""First-order ergodic MFG on T^d whose potential is a sum of plane waves in mixed directions.

    |grad u|^2 / 2 + V(x) - ln m - Hbar = 0,      -div(m grad u) = 0   on the unit torus T^d,
    V(x) = a (w_0(2 pi k_0 . x) + ... + w_{J-1}(2 pi k_{J-1} . x)),   a = amplitude / sqrt(J),

with w_j = sin for even j and cos for odd j, and the J = ``waves`` directions k_j in {-1, 1}^d the
first rows of the Sylvester-Hadamard matrix cut to d columns, k_j[i] = (-1)^popcount(i & j):
k_0 = (1, 1, 1, 1, ...), k_1 = (1, -1, 1, -1, ...), k_2 = (1, 1, -1, -1, ...), k_3 = (1, -1, -1, 1, ...).
For J <= min(d, 4) they are linearly independent, every wave involves all d coordinates, and the
waves are uncorrelated: Var V = amplitude^2 / 2 for every d and J (1/2 by default, as in
ergodic_torus_nd.py).

Exact solution: u = 0, m = exp(V) / Z, Hbar = ln Z, with Z = I0(a)^J exactly. Proof: expand
exp(a w(2 pi s)) = sum_n c_n(a) e^{2 pi i n s} with c_0(a) = I0(a); the integral of
e^{2 pi i (n_0 k_0 + ... + n_{J-1} k_{J-1}) . x} over T^d is 1 when the combination vanishes and
0 otherwise, and for linearly independent k_j only n = 0 remains, so Z = prod_j c_0(a) = I0(a)^J.

A family: ``load_problem("problems/unseen/plane_waves_nd.py", d=16, waves=4)`` or
``mfgsolve solve FILE --set d=16 --set waves=4``; ``problem`` below is d = 4 with two waves.
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


def directions(d: int, count: int) -> list[list[int]]:
    """The first ``count`` rows of the Sylvester-Hadamard matrix, cut to ``d`` columns."""
    return [[(-1) ** bin(i & j).count("1") for i in range(d)] for j in range(count)]


def make_problem(d: int = 4, waves: int = 2, amplitude: float = 1.0) -> ErgodicMFG:
    """``waves`` plane waves in dimension ``d``; Var V = amplitude^2 / 2."""
    d = _integer("d", d, 2, 64)
    waves = _integer("waves", waves, 1, min(d, 4), " (independent directions in {-1, 1}^d)")
    a = _number("amplitude", amplitude, -4, 4) / sp.sqrt(waves)
    xs = sp.symbols(f"x1:{d + 1}")
    ps = sp.symbols(f"p1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    ks = directions(d, waves)
    if sp.Matrix(ks).rank() != waves:  # never for waves <= min(d, 4); Z below relies on it
        raise ValueError(f"the {waves} wave directions are not independent in d={d}")
    V = a * sum(
        (sp.sin if j % 2 == 0 else sp.cos)(2 * sp.pi * sum(ki * xi for ki, xi in zip(k, xs)))
        for j, k in enumerate(ks)
    )
    Z = sp.besseli(0, a) ** waves
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
        name=f"unseen-plane-waves-d{d}" + ("" if waves == 2 else f"-w{waves}"),
    )


problem = make_problem()
