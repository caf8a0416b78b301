"""First-order ergodic MFG on T^d whose potential couples the coordinates in pairs (an XY model).

    |grad u|^2 / 2 + V(x) - ln m - Hbar = 0,      -div(m grad u) = 0   on the unit torus T^d,

with one of two pair sets (``pairs``), each term a plane wave in a mixed direction e_i - e_j:

    "all":  V = a / sqrt(P) sum_{i<j} cos(2 pi (x_i - x_j)),         P = d (d - 1) / 2,
    "ring": V = a / sqrt(d) sum_{i=1}^{d} cos(2 pi (x_i - x_{i+1})),  x_{d+1} = x_1  (d >= 3).

The directions are distinct, so the terms are uncorrelated and Var V = a^2 / 2 for every d.
Default amplitude a = 1/sqrt(2) for "all" (Var V = 1/4: V peaks at a sqrt(P) on the diagonal
x_1 = ... = x_d, and E[m^2] stays below 2.4 up to d = 16, against 14.8 at a = 1) and a = 1 for
"ring" (Var V = 1/2, E[m^2] from 1.6 to 1.8).

Exact solution: u = 0, m = exp(V) / Z, Hbar = ln Z, with Z computed at import to 1e-30 relative
(30 digits kept; Z >= exp(int V) = 1 by Jensen, so absolute and relative errors agree):

- "all": with S = sum_j e^{2 pi i x_j}, sum_{i<j} cos(2 pi (x_i - x_j)) = (|S|^2 - d) / 2, so with
  c = a / (2 sqrt(P)),  Z = e^{-c d} sum_{k>=0} c^k W_k / k!,  where W_k = E|S|^{2k} =
  sum_{k_1+...+k_d=k} (k! / (k_1! ... k_d!))^2 are the (integer) moments of the planar unit-step
  random walk, computed exactly by W^(d+1)_k = sum_j binom(k, j)^2 W^(d)_j from W^(1)_k = 1. As
  W_k <= d^{2k}, the tail after K terms is below 2 x^{K+1} / (K+1)! with x = |c| d^2 once K >= 2x.
- "ring": Z is the trace of the d-th power of the convolution operator with kernel
  exp(a' cos 2 pi (x - y)), a' = a / sqrt(d), whose eigenvalues are I_n(a'):
  Z = sum_{n in Z} I_n(a')^d, summed until the terms (which at least halve once n > |a'|) are
  below 1e-35.

A family: ``load_problem("problems/unseen/pairwise_nd.py", d=8, pairs="ring")`` or
``mfgsolve solve FILE --set d=8 --set pairs=ring``; ``problem`` below is d = 4 with all pairs.
"""

import math
import numbers

import mpmath
import sympy as sp

from mfgsolve import ErgodicMFG, Torus

PAIRS = ("all", "ring")


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


def walk_moments(d: int, K: int) -> list[int]:
    """W_k = E|e^{2 pi i x_1} + ... + e^{2 pi i x_d}|^{2k} for k = 0..K (exact integers)."""
    w = [1] * (K + 1)
    squares = [[math.comb(k, j) ** 2 for j in range(k + 1)] for k in range(K + 1)]
    for _ in range(d - 1):
        w = [sum(b * wj for b, wj in zip(squares[k], w)) for k in range(K + 1)]
    return w


def partition_all(d: int, a: sp.Expr) -> sp.Float:
    """Z for all pairs: e^{-c d} sum_k c^k W_k / k!, c = a / (2 sqrt(P)), to 1e-30."""
    c = a / (2 * sp.sqrt(sp.Rational(d * (d - 1), 2)))
    x = float(abs(c)) * d**2
    with mpmath.workdps(40 + int(x / math.log(10))):  # c < 0: terms up to e^x cancel
        c_mp = mpmath.mpf(str(sp.N(c, 80)))
        prefactor = mpmath.exp(-c_mp * d)
        K = max(int(2 * x) + 1, 2)
        while 2 * prefactor * mpmath.mpf(x) ** (K + 1) / mpmath.factorial(K + 1) > 1e-31:
            K += 8
        w = walk_moments(d, K)
        total = mpmath.fsum(c_mp**k * w[k] / mpmath.factorial(k) for k in range(K + 1))
        return sp.Float(mpmath.nstr(prefactor * total, 32), 30)


def partition_ring(d: int, a: sp.Expr) -> sp.Float:
    """Z for the ring: sum_{n in Z} I_n(a / sqrt(d))^d, to 1e-30."""
    with mpmath.workdps(40):
        b = mpmath.mpf(str(sp.N(a / sp.sqrt(d), 45)))
        total, n = mpmath.besseli(0, b) ** d, 1
        while True:
            term = 2 * mpmath.besseli(n, b) ** d  # I_{-n} = I_n
            total += term
            if n > abs(b) and abs(term) < 1e-35:
                break
            n += 1
        return sp.Float(mpmath.nstr(total, 32), 30)


def make_problem(d: int = 4, pairs: str = "all", amplitude: float | None = None) -> ErgodicMFG:
    """Pairwise potential in dimension ``d`` on the pair set ``pairs`` ("all" or "ring")."""
    if pairs not in PAIRS:
        raise ValueError(f"pairs must be 'all' or 'ring', got {pairs!r}")
    d = _integer("d", d, 3 if pairs == "ring" else 2, 32)
    if amplitude is None:
        a = 1 / sp.sqrt(2) if pairs == "all" else sp.Integer(1)
    else:
        a = _number("amplitude", amplitude, -4, 4)
    xs = sp.symbols(f"x1:{d + 1}")
    ps = sp.symbols(f"p1:{d + 1}")
    u, m = sp.Function("u")(*xs), sp.Function("m")(*xs)
    H = sp.Symbol("H")
    if pairs == "all":
        links = [(i, j) for i in range(d) for j in range(i + 1, d)]
        Z = partition_all(d, a)
    else:
        links = [(i, (i + 1) % d) for i in range(d)]
        Z = partition_ring(d, a)
    V = a / sp.sqrt(len(links)) * sum(sp.cos(2 * sp.pi * (xs[i] - xs[j])) for i, j in links)
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
        name=f"unseen-pairwise-{pairs}-d{d}",
    )


problem = make_problem()
