"""Generic finite-difference scheme for finite-horizon MFGs written as raw sympy residuals.

Space: the stencils of :mod:`._generic` (centred first differences, three-point second differences,
products of centred differences for mixed derivatives; second order). Time: nodes
``t_k = t0 + k dt`` (k = 0..Nt), unknowns ``u^0..u^{Nt-1}`` (``u^{Nt} = g``) and ``m^1..m^{Nt}``
(``m^0 = m0`` normalised to discrete mass 1). Each residual ``R`` (HJB and FP alike) gives one row
per space node and per interval ``[t_k, t_{k+1}]``: the time derivatives become the differences
``(u^{k+1} - u^k) / dt`` and ``(m^{k+1} - m^k) / dt``, and everything else is averaged over the two
ends (the trapezoidal rule, Crank-Nicolson for a linear equation),

    R_k = ( R(t_k, level k, D_k) + R(t_{k+1}, level k + 1, D_k) ) / 2,

which is second order in time and space, so Richardson extrapolation applies with order 2. Newton
runs on the whole forward-backward system at once (sparse LU of the space-time Jacobian with the
COLAMD ordering, or GMRES; the Jacobian is exact: the chain rule of each residual through its stencils, derivatives from sympy). Centred
differences conserve mass only up to ``O(h^2)``; the drift is reported (``mass_drift``).
Time derivatives of order two or mixed in time and space are refused.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla
import sympy as sp
from sympy.core.function import AppliedUndef

from .._symbolic import evaluate_numeric_constants
from ._generic import _Pointwise, _Stencils
from ._grid import Grid
from ._hamiltonian import _lambdify
from ._sparse import accept_gmres_step, factorize, lazy_factorize
from .errors import SchemeNotApplicable

_U_T, _M_T = sp.Symbol("_u_time"), sp.Symbol("_m_time")  # u_t and m_t in the pointwise rows


def _time_derivatives(problem, expr: sp.Expr) -> sp.Expr:
    """Replace u_t and m_t by :data:`_U_T`, :data:`_M_T`; refuse higher or mixed time derivatives."""
    t = problem.time
    repl = {}
    for d in expr.atoms(sp.Derivative):
        if not isinstance(d.expr, AppliedUndef):
            continue
        counts = dict(d.variable_count)
        if t not in counts:
            continue
        if counts[t] != 1 or len(counts) > 1:
            raise SchemeNotApplicable(
                f"problem '{problem.name}': the finite-horizon reference handles first time "
                f"derivatives only, found {d}"
            )
        repl[d] = _U_T if d.expr.func == problem.value.func else _M_T
    return expr.xreplace(repl)


def _values_at(problem, expr: sp.Expr, grid: Grid) -> np.ndarray:
    fn = _lambdify(problem.space, evaluate_numeric_constants(expr))
    vals = fn(*(grid.points[:, k] for k in range(grid.dim)))
    return np.broadcast_to(np.asarray(vals, dtype=float), (grid.size,)).copy()


class GenericFiniteHorizonSystem:
    """Newton system of the trapezoidal space-time scheme (see the module docstring)."""

    def __init__(self, problem, grid: Grid, nt: int, linear_solver: str = "direct"):
        self.problem, self.grid, self.nt = problem, grid, nt
        self.linear_solver = linear_solver
        self.N = N = grid.size
        self.dt = (problem.T - problem.t0) / nt
        self.times = np.linspace(problem.t0, problem.T, nt + 1)
        w = grid.weights().ravel()
        self.g = _values_at(problem, problem.terminal, grid)
        m0 = _values_at(problem, problem.initial, grid)
        self.m0 = m0 / (w @ m0)
        exprs = [
            _time_derivatives(problem, problem.substitute(r)) for r in (problem.hjb, problem.fp)
        ]
        self.st = _Stencils(problem, grid, exprs)
        args = (problem.time, *problem.space)
        self.rows = [_Pointwise(e, args, self.st, [_U_T, _M_T]).compile() for e in exprs]
        x = [np.tile(grid.points[:, k], nt) for k in range(grid.dim)]
        self.args_lo = (np.repeat(self.times[:-1], N), *x)
        self.args_hi = (np.repeat(self.times[1:], N), *x)
        It = sps.identity(nt, format="csr")
        up, down = sps.eye(nt, k=1, format="csr"), sps.eye(nt, k=-1, format="csr")
        # which unknown block feeds level k (lo) and level k + 1 (hi) of interval k
        select = {("u", "lo"): It, ("u", "hi"): up, ("m", "lo"): down, ("m", "hi"): It}
        eye_n = sps.identity(N, format="csr")
        self.time_ops = (
            sps.kron((up - It) / self.dt, eye_n, format="csr"),
            sps.kron((It - down) / self.dt, eye_n, format="csr"),
        )
        self.ops = {
            key: [sps.kron(S, op, format="csr") for op in self.st.ops] for key, S in select.items()
        }

    def split(self, z: np.ndarray):
        n = self.N * self.nt
        return z[:n].reshape(self.nt, self.N), z[n:].reshape(self.nt, self.N)

    def full_fields(self, z: np.ndarray):
        U, M = self.split(z)
        return np.vstack([U, self.g[None]]), np.vstack([self.m0[None], M])

    def initial_guess(self) -> np.ndarray:
        return np.concatenate([np.tile(self.g, self.nt), np.tile(self.m0, self.nt)])

    def pack(self, u: np.ndarray, m: np.ndarray) -> np.ndarray:
        return np.concatenate([u[:-1].ravel(), m[1:].ravel()])

    def _arguments(self, z: np.ndarray):
        """The pointwise rows' arguments at the two ends of every interval: {"lo": ..., "hi": ...}."""
        U, M = self.full_fields(z)
        full = [U, M]  # indexed by a stencil's owner (0: u, 1: m)
        # each stencil on all Nt + 1 levels once; interval k takes levels k (lo) and k + 1 (hi)
        levels = [(op @ full[owner].T).T for op, owner in zip(self.st.ops, self.st.owner)]
        du = (U[1:] - U[:-1]).ravel() / self.dt
        dm = (M[1:] - M[:-1]).ravel() / self.dt
        return {
            "lo": (*self.args_lo, *(v[:-1].ravel() for v in levels), du, dm),
            "hi": (*self.args_hi, *(v[1:].ravel() for v in levels), du, dm),
        }

    def residual(self, z: np.ndarray) -> np.ndarray:
        a = self._arguments(z)
        return np.concatenate(
            [0.5 * (_full(pw.f(*a["lo"]), a) + _full(pw.f(*a["hi"]), a)) for pw in self.rows]
        )

    def jacobian_blocks(self, z: np.ndarray) -> list[list[sps.csr_matrix]]:
        """``[[dHJB/du, dHJB/dm], [dFP/du, dFP/dm]]`` at ``z`` (exact, sparse)."""
        a = self._arguments(z)
        n = self.N * self.nt
        blocks = []
        for pw in self.rows:
            row = [sps.csr_matrix((n, n)), sps.csr_matrix((n, n))]  # d/du, d/dm
            for i, d in pw.partials:
                owner = self.st.owner[i]
                role = ("u", "m")[owner]
                for end in ("lo", "hi"):
                    coeff = 0.5 * _full(d(*a[end]), a)
                    row[owner] = row[owner] + sps.diags(coeff) @ self.ops[(role, end)][i]
            for owner, (d, op) in enumerate(zip(pw.extra, self.time_ops)):
                coeff = 0.5 * (_full(d(*a["lo"]), a) + _full(d(*a["hi"]), a))
                if np.any(coeff):
                    row[owner] = row[owner] + sps.diags(coeff) @ op
            blocks.append(row)
        return blocks

    def linearize(self, z: np.ndarray):
        blocks = self.jacobian_blocks(z)
        J = sps.bmat(blocks, format="csc")
        scale = np.asarray(abs(J).sum(axis=1)).ravel() + 1.0
        if self.linear_solver == "gmres":
            return self._gmres_solver(sps.csr_matrix(J), blocks), scale
        return lazy_factorize(J, "colamd"), scale

    def _gmres_solver(self, J: sps.csr_matrix, blocks) -> Callable[[np.ndarray], np.ndarray]:
        """GMRES on the space-time Jacobian, preconditioned by one backward sweep of the HJB rows
        in u (block upper bidiagonal in time) and one forward sweep of the FP rows in m (block
        lower bidiagonal), the latter with the new u correction: block Gauss-Seidel that drops the
        HJB's dependence on m."""
        N, nt = self.N, self.nt
        n = N * nt
        Juu, Jmu, Jmm = (sps.csr_matrix(b) for b in (blocks[0][0], blocks[1][0], blocks[1][1]))

        def block(A, i, j):
            return A[i * N : (i + 1) * N, j * N : (j + 1) * N]

        lu_u = [factorize(block(Juu, k, k), "colamd") for k in range(nt)]
        lu_m = [factorize(block(Jmm, k, k), "colamd") for k in range(nt)]
        up = [block(Juu, k, k + 1) for k in range(nt - 1)]
        down = [block(Jmm, k, k - 1) for k in range(1, nt)]

        def precondition(r: np.ndarray) -> np.ndarray:
            rH, rF = r[:n].reshape(nt, N), r[n:]
            du = np.zeros((nt, N))
            for k in range(nt - 1, -1, -1):
                rhs = rH[k] - (up[k] @ du[k + 1] if k < nt - 1 else 0.0)
                du[k] = lu_u[k](rhs)
            rF = (rF - Jmu @ du.ravel()).reshape(nt, N)
            dm = np.zeros((nt, N))
            for k in range(nt):
                rhs = rF[k] - (down[k - 1] @ dm[k - 1] if k > 0 else 0.0)
                dm[k] = lu_m[k](rhs)
            return np.concatenate([du.ravel(), dm.ravel()])

        op = spla.LinearOperator((2 * n, 2 * n), matvec=lambda v: J @ v, dtype=float)
        pre = spla.LinearOperator((2 * n, 2 * n), matvec=precondition, dtype=float)

        def solve(rhs: np.ndarray) -> np.ndarray:
            x, code = spla.gmres(op, rhs, M=pre, rtol=1e-11, atol=0.0, restart=100, maxiter=10)
            return accept_gmres_step(J, rhs, x, code)

        return solve

    def max_step(self, z: np.ndarray, dz: np.ndarray) -> float:
        """No cap: centred differences do not keep m >= 0, and a manufactured source can make
        m < 0 on the way; the line search rejects steps where the residual is not finite."""
        return 1.0

    def normalize(self, z: np.ndarray) -> np.ndarray:
        return z


def _full(values, a) -> np.ndarray:
    """A lambdified value broadcast to the length of the rows (constants come back as scalars)."""
    n = len(a["lo"][0])
    return np.broadcast_to(np.asarray(values, dtype=float), (n,))
