"""Generic finite-difference discretisation of any sympy residual (smooth viscous problems).

Every derivative of u or m in a residual is replaced by a sparse stencil on the grid: centred
first differences, the three-point second difference, and products of centred differences for
mixed derivatives (all second order), except that a first derivative entering a residual linearly,
with a coefficient of one sign that depends on x only, next to a second derivative along the same
axis with a coefficient of one sign, is upwinded (the one-sided difference that keeps the stencil
monotone, as for an advection term b(x) u_x with known b): first order, but free of the
oscillations of centred differences when advection dominates. The residual becomes a pointwise function
``f(x, U, M, dU..., dM..., lambda)`` of the stencil values, and its exact Jacobian is the chain rule
``sum_s diag(df/ds) @ stencil_s`` with ``df/ds`` from sympy. A centred discretisation of the FP
equation need not conserve mass exactly, so the FP rows get one extra unknown ``mu`` (a constant
source, ``O(h^2)`` at the solution) that makes the system with ``int m = 1`` square.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sps
import sympy as sp
from sympy.core.function import AppliedUndef

from .._symbolic import evaluate_numeric_constants
from ._grid import Grid
from ._hamiltonian import _lambdify
from ._sparse import lazy_factorize
from .errors import SchemeNotApplicable


class _Stencils:
    """Symbols standing for u, m and their derivatives, and the grid operator of each."""

    def __init__(self, problem, grid: Grid, exprs: list[sp.Expr]):
        xs = tuple(problem.space)
        self.symbols: list[sp.Symbol] = []
        # per symbol: the unknown it acts on, as an index into ``fields`` (u_1..u_K, m_1..m_K)
        self.owner: list[int] = []
        # per symbol: (field name, derivative axes, side) with side "b"/"f" for one-sided
        # differences; the field names are "u", "m" (one population) or "u1", "m2", ...
        self.keys: list[tuple[str, tuple[int, ...], str | None]] = []
        self.ops: list[sps.spmatrix] = []
        self.repl: dict = {}
        self.upwinded: list[str] = []
        self.fields = problem.named_unknowns()
        index_of = {fn.func: j for j, (_name, fn) in enumerate(self.fields)}
        self._index = {name: j for j, (name, _fn) in enumerate(self.fields)}
        eye = sps.identity(grid.size, format="csr")
        for role, fn in self.fields:
            self.repl[fn] = self._symbol((role, (), None), eye)
        derivs = set()
        for e in exprs:
            derivs |= {d for d in e.atoms(sp.Derivative) if isinstance(d.expr, AppliedUndef)}
        for d in sorted(derivs, key=sp.default_sort_key):
            role = self.fields[index_of[d.expr.func]][0]
            counts = [0] * len(xs)
            for var, c in d.variable_count:
                counts[xs.index(var)] += int(c)
            order = sum(counts)
            if order > 2:
                raise SchemeNotApplicable(
                    f"problem '{problem.name}': the generic scheme handles derivatives up to order 2, found {d}"
                )
            axes = [k for k, c in enumerate(counts) for _ in range(c)]
            if order == 1:
                op = grid.centred[axes[0]]
            elif axes[0] == axes[1]:
                op = grid.second[axes[0]]
            else:
                op = sps.csr_matrix(grid.centred[axes[0]] @ grid.centred[axes[1]])
            self.repl[d] = self._symbol((role, tuple(axes), None), op)

    def _symbol(self, key: tuple[str, tuple[int, ...], str | None], op: sps.spmatrix) -> sp.Symbol:
        """The symbol of stencil ``key`` (created with operator ``op`` on first use)."""
        if key in self.keys:
            return self.symbols[self.keys.index(key)]
        role, axes, side = key
        sym = sp.Symbol(f"_{role}_{''.join(map(str, axes))}{side or ''}".rstrip("_"))
        self.symbols.append(sym)
        self.owner.append(self._index[role])
        self.keys.append(key)
        self.ops.append(op)
        return sym

    def upwind(self, e: sp.Expr, grid: Grid, xs: tuple, label: str) -> sp.Expr:
        """Replace centred first differences by one-sided ones where the sign is known (see the
        module docstring); the replaced terms are listed in ``self.upwinded``."""
        points = [grid.points[:, k] for k in range(grid.dim)]

        def on_grid(expr: sp.Expr) -> np.ndarray | None:
            if not expr.free_symbols <= set(xs):
                return None  # depends on the unknowns (or the constant): sign not known
            vals = _lambdify(xs, evaluate_numeric_constants(expr))(*points)
            return np.broadcast_to(np.asarray(vals, dtype=float), (grid.size,))

        for sym, (role, axes, side) in list(zip(self.symbols, self.keys)):
            if len(axes) != 1 or side is not None or not e.has(sym):
                continue
            (k,) = axes
            second_key = (role, (k, k), None)
            coeff = sp.diff(e, sym)
            if second_key not in self.keys or coeff.has(sym):  # no diffusion along k, or nonlinear
                continue
            second = self.symbols[self.keys.index(second_key)]
            c, a = on_grid(coeff), on_grid(sp.diff(e, second))
            if c is None or a is None or not np.any(c):
                continue
            if not (np.all(a > 0) or np.all(a < 0)) or not (np.all(c >= 0) or np.all(c <= 0)):
                continue
            # monotone: the first-order term's off-diagonal entries get the diffusion's sign
            backward = (c.sum() > 0) == (a[0] < 0)
            op = grid.backward[k] if backward else grid.forward[k]
            new = self._symbol((role, (k,), "b" if backward else "f"), op)
            e = e.xreplace({sym: new})
            side = "backward" if backward else "forward"
            self.upwinded.append(f"{label}: d{role}/d{xs[k]} ({side})")
        return e

    def values(self, fields: list[np.ndarray]) -> list[np.ndarray]:
        """Every stencil applied to the unknown it acts on (``fields``: u_1..u_K, m_1..m_K)."""
        return [op @ fields[o] for op, o in zip(self.ops, self.owner)]


class _Pointwise:
    """A residual as a pointwise function of the stencil values, with its partial derivatives."""

    def __init__(
        self,
        expr: sp.Expr,
        args: tuple,
        stencils: _Stencils,
        extra: list[sp.Symbol],
        grid: Grid | None = None,
        label: str = "",
    ):
        e = expr.xreplace({k: v for k, v in stencils.repl.items() if isinstance(k, sp.Derivative)})
        e = evaluate_numeric_constants(e.xreplace(stencils.repl))
        if grid is not None:
            e = stencils.upwind(e, grid, tuple(args), label)
        self.expr, self.args, self.stencils, self.extra_symbols = e, tuple(args), stencils, extra

    def compile(self) -> _Pointwise:
        """Lambdify (after every residual has added its stencil symbols, which all take as args)."""
        e, st = self.expr, self.stencils
        full = (*self.args, *st.symbols, *self.extra_symbols)
        self.f = _lambdify(full, e)
        self.partials = [
            (i, _lambdify(full, sp.diff(e, s))) for i, s in enumerate(st.symbols) if e.has(s)
        ]
        self.extra = [_lambdify(full, sp.diff(e, s)) for s in self.extra_symbols]
        return self


class GenericErgodicSystem:
    """Unknowns ``(u, m, lambda, mu)``; equations HJB, FP + mu, int m = 1, int u = 0.

    A problem without an ergodic constant (:class:`~mfgsolve.DiscountedMFG`: the discount term
    fixes u) has unknowns ``(u, m, mu)`` and equations HJB, FP + mu, int m = 1. With K
    populations every item comes K times, in the order ``(u_1..u_K, m_1..m_K, lambda_1..lambda_K,
    mu_1..mu_K)``, and the equations likewise (population k's FP gets its own mu_k).
    """

    def __init__(self, problem, grid: Grid):
        self.problem = problem
        self.grid = grid
        self.N = grid.size
        self.K = problem.populations
        self.w = grid.weights().ravel()
        self.volume = float(self.w.sum())
        hjbs = [problem.substitute(e) for e in problem.hjbs]
        fps = [problem.substitute(e) for e in problem.fps]
        self.st = _Stencils(problem, grid, [*hjbs, *fps])
        self.args = tuple(grid.points[:, k] for k in range(grid.dim))
        self.has_constant = bool(problem.constants)
        lam = list(problem.constants)
        self.hjbs = [
            _Pointwise(e, problem.space, self.st, lam, grid, problem.label("HJB", k))
            for k, e in enumerate(hjbs)
        ]
        self.fps = [
            _Pointwise(e, problem.space, self.st, lam, grid, problem.label("FP", k))
            for k, e in enumerate(fps)
        ]
        self.scalars = self.K * (2 if self.has_constant else 1)  # (lambda, mu) or (mu,) each
        for pw in (*self.hjbs, *self.fps):
            pw.compile()
        self.upwinded = self.st.upwinded  # non-empty: first order

    def split(self, z: np.ndarray):
        """(u, m, the ergodic constant or None); with K populations u and m have K rows and the
        constant is a list."""
        N, K = self.N, self.K
        u, m = z[: K * N].reshape(K, N), z[K * N : 2 * K * N].reshape(K, N)
        lam = [float(v) for v in z[2 * K * N : 2 * K * N + K]] if self.has_constant else None
        if K == 1:
            return u[0], m[0], lam[0] if lam is not None else None
        return u, m, lam

    def initial_guess(self) -> np.ndarray:
        m0 = np.full(self.K * self.N, 1 / self.volume)
        return np.concatenate([np.zeros(self.K * self.N), m0, np.zeros(self.scalars)])

    def pack(self, f) -> np.ndarray:
        if self.has_constant:
            lam = [f.constant or 0.0] if self.K == 1 else list(f.constant or [0.0] * self.K)
        else:
            lam = []
        return np.concatenate([f.u.ravel(), f.m.ravel(), lam, np.zeros(self.K)])

    def _eval(self, z):
        N, K = self.N, self.K
        fields = list(z[: 2 * K * N].reshape(2 * K, N))
        lam = list(z[2 * K * N : 2 * K * N + K]) if self.has_constant else []
        vals = self.st.values(fields)
        return (*self.args, *vals, *lam), z[len(z) - K :]

    def residual(self, z: np.ndarray) -> np.ndarray:
        a, mu = self._eval(z)
        N, K = self.N, self.K
        rows = [pw.f(*a) for pw in self.hjbs]
        rows += [pw.f(*a) + mu[k] for k, pw in enumerate(self.fps)]
        rows += [[self.w @ z[(K + k) * N : (K + k + 1) * N] - 1.0] for k in range(K)]
        if self.has_constant:
            rows += [[self.w @ z[k * N : (k + 1) * N] / self.volume] for k in range(K)]
        return np.concatenate(rows)

    def _row(self, pw: _Pointwise, a) -> list[sps.csr_matrix]:
        """The Jacobian of one residual with respect to u_1..u_K, m_1..m_K."""
        blocks = [sps.csr_matrix((self.N, self.N)) for _ in range(2 * self.K)]
        for i, d in pw.partials:
            o = self.st.owner[i]
            blocks[o] = blocks[o] + sps.diags(d(*a)) @ self.st.ops[i]
        return blocks

    def linearize(self, z: np.ndarray):
        a, _ = self._eval(z)
        N, K = self.N, self.K
        equations = [*self.hjbs, *self.fps]
        fields = sps.bmat([self._row(pw, a) for pw in equations])
        zeros = np.zeros(N)

        def column(parts: list[np.ndarray]) -> sps.csr_matrix:
            return sps.csr_matrix(np.concatenate(parts)[:, None])

        def row(parts: list[np.ndarray]) -> sps.csr_matrix:
            return sps.csr_matrix(np.concatenate(parts)[None, :])

        col_mu = [
            column([np.ones(N) if j == K + k else zeros for j in range(2 * K)]) for k in range(K)
        ]
        row_mass = [row([self.w if j == K + k else zeros for j in range(2 * K)]) for k in range(K)]
        if self.has_constant:
            col_lam = [
                column([np.broadcast_to(pw.extra[k](*a), (N,)) for pw in equations])
                for k in range(K)
            ]
            row_mean = [
                row([self.w / self.volume if j == k else zeros for j in range(2 * K)])
                for k in range(K)
            ]
            blocks = [[fields, *col_lam, *col_mu]]
            blocks += [[r, *([None] * 2 * K)] for r in row_mass + row_mean]
        else:
            blocks = [[fields, *col_mu]] + [[r, *([None] * K)] for r in row_mass]
        J = sps.bmat(blocks, format="csr")
        scale = np.asarray(abs(J).sum(axis=1)).ravel() + 1.0
        return lazy_factorize(J), scale

    def max_step(self, z: np.ndarray, dz: np.ndarray) -> float:
        span = slice(self.K * self.N, 2 * self.K * self.N)
        m, dm = z[span], dz[span]
        neg = dm < 0
        if not np.any(neg):
            return 1.0
        return float(min(1.0, 0.9 * np.min(m[neg] / -dm[neg])))

    def normalize(self, z: np.ndarray) -> np.ndarray:
        return z
