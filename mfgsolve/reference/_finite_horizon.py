"""Finite-horizon MFGs: implicit (backward Euler) structure-preserving scheme, Newton on the whole
space-time system (Achdou & Capuzzo-Dolcetta 2010).

Time nodes ``t_k = t0 + k dt`` (k = 0..Nt); unknowns ``u^0..u^{Nt-1}`` (``u^{Nt} = g``) and
``m^1..m^{Nt}`` (``m^0 = m0`` normalised to discrete mass 1):

    (u^k - u^{k+1}) / dt - nu L u^k + H0(t_k) + sum_j g_j(t_k, D u^k) - F(t_{k+1}, m^{k+1}) = 0,
    (m^{k+1} - m^k) / dt + A_k^T m^{k+1} = 0,   A_k = d/du [-nu L u + sum_j g_j](u^k),

so each FP step is the adjoint of the linearised HJB step: the mass is conserved exactly and
``m >= 0``. The Newton system eliminates m with the HJB rows when ``dF/dm > 0`` (the remaining
block-tridiagonal-in-time matrix is factorised by sparse LU), else the full system is factorised.
When Newton fails, fictitious play (alternate a backward HJB solve and a forward FP solve with
averaging of m) provides a better start. Problems written as raw residuals go to the generic
trapezoidal scheme of :mod:`._generic_finite_horizon` (:func:`finite_horizon_solver` picks it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla
import sympy as sp

from .._symbolic import evaluate_numeric_constants
from ._fields import Fields
from ._grid import Grid
from ._hamiltonian import MonotoneParts
from ._newton import newton
from ._sparse import accept_gmres_step, factorize, lazy_factorize
from .errors import ReferenceSolveError, SchemeNotApplicable


class FiniteHorizonMonotoneSystem:
    """Residual and Newton linearisation of the space-time system (see module docstring)."""

    def __init__(
        self, problem, grid: Grid, nt: int, parts: MonotoneParts, linear_solver: str = "direct"
    ):
        self.grid, self.parts, self.nt = grid, parts, nt
        self.linear_solver = linear_solver
        self.krylov_iterations: list[int] = []
        self.N = grid.size
        self.nu = parts.viscosity
        self.times = np.linspace(problem.t0, problem.T, nt + 1)
        self.dt = (problem.T - problem.t0) / nt
        xs = tuple(grid.points[:, k] for k in range(grid.dim))
        self.xs = xs
        self.w = grid.weights().ravel()
        g = sp.lambdify(problem.space, evaluate_numeric_constants(problem.terminal), "numpy")
        m0 = sp.lambdify(problem.space, evaluate_numeric_constants(problem.initial), "numpy")
        self.g = np.broadcast_to(np.asarray(g(*xs), float), (self.N,)).copy()
        m0v = np.broadcast_to(np.asarray(m0(*xs), float), (self.N,)).copy()
        self.m0 = m0v / (self.w @ m0v)
        self.L = grid.laplacian
        self.Dp, self.Dm = grid.forward, grid.backward
        self.DpT = tuple(sps.csr_matrix(D.T) for D in self.Dp)
        self.DmT = tuple(sps.csr_matrix(D.T) for D in self.Dm)
        self.targs = [tuple(np.full(self.N, t) for _ in [0]) + xs for t in self.times]
        self.h0 = [parts.h0(*a) for a in self.targs]
        # the same operators on all time levels at once (block diagonal in time)
        It = sps.identity(nt, format="csr")
        self.BL = sps.kron(It, self.L, format="csr")
        self.BDp = tuple(sps.kron(It, D, format="csr") for D in self.Dp)
        self.BDm = tuple(sps.kron(It, D, format="csr") for D in self.Dm)
        self.BDpT = tuple(sps.csr_matrix(D.T) for D in self.BDp)
        self.BDmT = tuple(sps.csr_matrix(D.T) for D in self.BDm)
        tt = np.repeat(self.times, self.N)
        xx = tuple(np.tile(x, nt + 1) for x in xs)
        n = nt * self.N
        self.args_u = (tt[:n], *(x[:n] for x in xx))  # levels k = 0..nt-1 (u^k, A_k)
        self.args_m = (tt[self.N :], *(x[self.N :] for x in xx))  # levels k + 1 (m^{k+1}, F)
        self.h0_all = parts.h0(*self.args_u)

    def split(self, z: np.ndarray):
        N, nt = self.N, self.nt
        return z[: N * nt].reshape(nt, N), z[N * nt :].reshape(nt, N)

    def full_fields(self, z: np.ndarray):
        U, M = self.split(z)
        return np.vstack([U, self.g[None]]), np.vstack([self.m0[None], M])

    def initial_guess(self) -> np.ndarray:
        return np.concatenate([np.tile(self.g, self.nt), np.tile(self.m0, self.nt)])

    def _fluxes(self, k: int, u: np.ndarray):
        return [
            ax.flux(self.targs[k], Dp @ u, Dm @ u)
            for ax, Dp, Dm in zip(self.parts.axes, self.Dp, self.Dm)
        ]

    def _all_fluxes(self, u_all: np.ndarray):
        return [
            ax.flux(self.args_u, Dp @ u_all, Dm @ u_all)
            for ax, Dp, Dm in zip(self.parts.axes, self.BDp, self.BDm)
        ]

    def residual(self, z: np.ndarray) -> np.ndarray:
        U, M = self.full_fields(z)
        u, un = U[:-1].ravel(), U[1:].ravel()
        m, mp = M[1:].ravel(), M[:-1].ravel()
        h = (u - un) / self.dt - self.nu * (self.BL @ u) + self.h0_all
        h -= self.parts.coupling(*self.args_m, m)
        f = (m - mp) / self.dt - self.nu * (self.BL @ m)
        for (gk, a, b, _a2, _b2), DpT, DmT in zip(self._all_fluxes(u), self.BDpT, self.BDmT):
            h += gk
            f += DpT @ (a * m) + DmT @ (b * m)
        return np.concatenate([h, f])

    def linearize(self, z: np.ndarray):
        U, M = self.full_fields(z)
        N, nt, dt = self.N, self.nt, self.dt
        n = N * nt
        u, m = U[:-1].ravel(), M[1:].ravel()
        A = sps.identity(n, format="csr") / dt - self.nu * self.BL
        Jmu = sps.csr_matrix((n, n))
        for (_g, a, b, a2, b2), Dp, Dm, DpT, DmT in zip(
            self._all_fluxes(u), self.BDp, self.BDm, self.BDpT, self.BDmT
        ):
            A = A + sps.diags(a) @ Dp + sps.diags(b) @ Dm
            Jmu = Jmu + DpT @ sps.diags(m * a2) @ Dp + DmT @ sps.diags(m * b2) @ Dm
        d = self.parts.coupling_dm(*self.args_m, m)
        shift = sps.kron(sps.eye(nt, k=1), sps.identity(N) / dt, format="csr")
        Juu = sps.csr_matrix(A - shift)
        Jmm = sps.csr_matrix(A.T - shift.T)
        Jmu = sps.csr_matrix(Jmu)
        scale = np.concatenate(
            [
                np.asarray(abs(Juu).sum(axis=1)).ravel() + np.abs(d) + 1.0,
                np.asarray(abs(Jmu).sum(axis=1) + abs(Jmm).sum(axis=1)).ravel() + 1.0,
            ]
        )
        if self.linear_solver == "gmres":
            return self._gmres_solver(Juu, Jmu, Jmm, d), scale
        if np.all(d > 0):
            solve_schur = lazy_factorize(lambda: Jmu + Jmm @ sps.diags(1 / d) @ Juu)

            def solve(rhs: np.ndarray) -> np.ndarray:
                rH, rF = rhs[:n], rhs[n:]
                du = solve_schur(rF + Jmm @ (rH / d))
                dm = (Juu @ du - rH) / d
                return np.concatenate([du, dm])

            return solve, scale

        full = lambda: sps.bmat([[Juu, sps.diags(-d)], [Jmu, Jmm]], format="csc")  # noqa: E731
        return lazy_factorize(full), scale

    def _gmres_solver(self, Juu, Jmu, Jmm, d):
        """GMRES on the space-time Jacobian, preconditioned by one backward HJB sweep (the diagonal
        blocks ``I/dt + A_k``) followed by one forward FP sweep (``I/dt + A_k^T``) that uses the
        new u correction (block Gauss-Seidel that drops the coupling dHJB/dm)."""
        N, nt, dt = self.N, self.nt, self.dt
        n = N * nt
        blocks = [Juu[k * N : (k + 1) * N, k * N : (k + 1) * N] for k in range(nt)]
        lus = [spla.splu(sps.csc_matrix(B)) for B in blocks]
        J = sps.bmat([[Juu, sps.diags(-d)], [Jmu, Jmm]], format="csr")

        def precondition(r: np.ndarray) -> np.ndarray:
            rH, rF = r[:n].reshape(nt, N), r[n:]
            du = np.zeros((nt, N))
            nxt = np.zeros(N)
            for k in range(nt - 1, -1, -1):
                du[k] = lus[k].solve(rH[k] + nxt / dt)
                nxt = du[k]
            rF = (rF - Jmu @ du.ravel()).reshape(nt, N)
            dm = np.zeros((nt, N))
            prev = np.zeros(N)
            for k in range(nt):
                dm[k] = lus[k].solve(rF[k] + prev / dt, trans="T")
                prev = dm[k]
            return np.concatenate([du.ravel(), dm.ravel()])

        op = spla.LinearOperator((2 * n, 2 * n), matvec=lambda v: J @ v, dtype=float)
        pre = spla.LinearOperator((2 * n, 2 * n), matvec=precondition, dtype=float)

        def solve(rhs: np.ndarray) -> np.ndarray:
            count = [0]

            def cb(_):
                count[0] += 1

            x, code = spla.gmres(
                op,
                rhs,
                M=pre,
                rtol=1e-11,
                atol=0.0,
                restart=80,
                maxiter=5,
                callback=cb,
                callback_type="pr_norm",
            )
            self.krylov_iterations.append(count[0])
            return accept_gmres_step(J, rhs, x, code)

        return solve

    def max_step(self, z: np.ndarray, dz: np.ndarray) -> float:
        n = self.N * self.nt
        m, dm = z[n:], dz[n:]
        neg = dm < 0
        if not np.any(neg):
            return 1.0
        return float(min(1.0, 0.9 * np.min(m[neg] / -dm[neg])))

    def normalize(self, z: np.ndarray) -> np.ndarray:
        return z

    # --- fictitious play (fallback) ------------------------------------------------------------
    def fictitious_play(self, z: np.ndarray, sweeps: int = 30) -> np.ndarray:
        """Alternate best responses: u from the HJB given m (backward, Newton per step), m from
        the FP given u (forward, linear), with m averaged over the sweeps (weights 1/(j+1))."""
        U, M = self.full_fields(z)
        M_avg = M.copy()
        N, dt = self.N, self.dt
        eye = sps.identity(N, format="csr")
        for j in range(sweeps):
            for k in range(self.nt - 1, -1, -1):  # backward HJB, Newton on each step
                u = U[k + 1].copy()
                rhs_const = (
                    -U[k + 1] / dt
                    + self.h0[k]
                    - self.parts.coupling(*self.targs[k + 1], M_avg[k + 1])
                )
                for _ in range(30):
                    fl = self._fluxes(k, u)
                    r = u / dt - self.nu * (self.L @ u) + rhs_const
                    A = eye / dt - self.nu * self.L
                    for (gk, a, b, *_), Dp, Dm in zip(fl, self.Dp, self.Dm):
                        r += gk
                        A = A + sps.diags(a) @ Dp + sps.diags(b) @ Dm
                    du = factorize(A)(-r)
                    u += du
                    if np.max(np.abs(du)) < 1e-13 * (1 + np.max(np.abs(u))):
                        break
                U[k] = u
            for k in range(self.nt):  # forward FP, linear
                A = -self.nu * self.L
                for (_g, a, b, *_), Dp, Dm in zip(self._fluxes(k, U[k]), self.Dp, self.Dm):
                    A = A + sps.diags(a) @ Dp + sps.diags(b) @ Dm
                M[k + 1] = factorize(sps.csr_matrix(eye / dt + A.T))(M[k] / dt)
            M_avg = M_avg + (M - M_avg) / (j + 2)
        return np.concatenate([U[:-1].ravel(), M_avg[1:].ravel()])


def finite_horizon_solver(problem, scheme, parts, tol, max_iter, linear_solver) -> Callable:
    """Return ``solve(grid, nt, guess) -> Fields`` for a finite-horizon problem."""
    if linear_solver not in ("auto", "direct", "gmres"):
        raise SchemeNotApplicable(
            f"problem '{problem.name}': unknown linear_solver {linear_solver!r}; fix: use 'auto', 'direct' or 'gmres'"
        )
    label = f"reference solve of problem '{problem.name}'"
    if scheme != "monotone":
        return _generic_solver(problem, tol, max_iter, label, linear_solver)

    def solve(grid: Grid, nt: int, guess) -> Fields:
        kind = linear_solver
        if kind == "auto":  # sparse LU while its fill stays small, else preconditioned GMRES
            kind = "direct" if grid.size * nt <= 20_000 else "gmres"
        system = FiniteHorizonMonotoneSystem(problem, grid, nt, parts, kind)
        if guess is None:
            z0 = system.initial_guess()
        else:
            z0 = np.concatenate([guess.u[:-1].ravel(), np.maximum(guess.m[1:], 1e-300).ravel()])
        history: list[dict] = []
        try:
            r = newton(system, z0, tol=tol, max_iter=max_iter, label=label)
        except ReferenceSolveError:
            z1 = system.fictitious_play(z0)
            history.append({"stage": "fictitious play", "sweeps": 30})
            r = newton(
                system,
                z1,
                tol=tol,
                max_iter=max_iter,
                label=label + " (after fictitious play)",
                fix="try a finer time grid (more time_steps) or a larger viscosity",
            )
        if system.krylov_iterations:
            history.append({"stage": "gmres", "krylov_iterations": system.krylov_iterations})
        U, M = system.full_fields(r.z)
        shape = (nt + 1, *grid.shape)
        return Fields(U.reshape(shape), M.reshape(shape), None, history + r.history, r.iterations)

    return solve


def _generic_solver(problem, tol, max_iter, label, linear_solver) -> Callable:
    """``solve(grid, nt, guess)`` with the generic trapezoidal scheme (raw residuals)."""
    from ._generic_finite_horizon import GenericFiniteHorizonSystem
    from ._newton import solve_by_homotopy

    def solve(grid: Grid, nt: int, guess) -> Fields:
        kind = linear_solver
        if kind == "auto":  # sparse LU while its fill stays small, else preconditioned GMRES
            unknowns = grid.size * nt * problem.populations
            kind = "direct" if grid.dim == 1 and unknowns <= 40_000 else "gmres"
        system = GenericFiniteHorizonSystem(problem, grid, nt, kind)
        z0 = system.initial_guess() if guess is None else system.pack(guess.u, guess.m)
        fix = "try a finer grid or more time_steps"
        try:
            r = newton(system, z0, tol=tol, max_iter=max_iter, label=label)
            z, history, iterations = r.z, r.history, r.iterations
        except ReferenceSolveError:  # too far from the solution: continue from the guess
            z, history = solve_by_homotopy(system, z0, tol, label, fix)
            iterations = sum(h.get("iterations", 0) for h in history)
        U, M = system.full_fields(z)
        shape = (nt + 1, *grid.shape)
        if problem.populations > 1:
            shape = (problem.populations, *shape)
        return Fields(U.reshape(shape), M.reshape(shape), None, history, iterations)

    solve.upwinded = []  # type: ignore[attr-defined]
    return solve
