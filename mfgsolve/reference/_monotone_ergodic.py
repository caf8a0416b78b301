"""Structure-preserving scheme for ergodic MFGs (Achdou & Capuzzo-Dolcetta 2010).

Discrete system on a :class:`~mfgsolve.reference._grid.Grid` with unknowns ``(u, m, lambda)``:

    HJB_i = -nu (L u)_i + H0(x_i) + sum_k g_k(x_i, (D+_k u)_i, (D-_k u)_i) - F(x_i, m_i) - lambda
    FP    = A(u)^T m,       A(u) = d HJB / d u = -nu L + sum_k diag(dg/dp+) D+_k + diag(dg/dp-) D-_k
    mass  = sum_i w_i m_i - 1

The FP operator is the adjoint of the linearised HJB, so its columns sum to zero (mass is
conserved exactly) and ``m >= 0`` is preserved (A is an M-matrix transposed). The FP rows sum to
zero and u enters only through differences: the Newton system replaces one FP row by pinning one
value of u, and eliminates the constant and the mass row by two solves with one sparse LU factor
(no dense border in the factorised matrix).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sps

from ._grid import Grid
from ._hamiltonian import MonotoneParts
from ._sparse import lazy_factorize


class ErgodicMonotoneSystem:
    """Residual and Newton linearisation of the discrete ergodic system (see module docstring)."""

    def __init__(self, grid: Grid, parts: MonotoneParts, viscosity: float | None = None):
        self.grid = grid
        self.parts = parts
        self.nu = parts.viscosity if viscosity is None else float(viscosity)
        self.N = grid.size
        self.args = tuple(grid.points[:, k] for k in range(grid.dim))
        self.h0 = parts.h0(*self.args)
        self.w = grid.weights().ravel()
        self.volume = float(self.w.sum())
        self.pin = 0
        self.L = grid.laplacian
        self.Dp = grid.forward
        self.Dm = grid.backward
        self.DpT = tuple(sps.csr_matrix(D.T) for D in self.Dp)
        self.DmT = tuple(sps.csr_matrix(D.T) for D in self.Dm)

    def split(self, z: np.ndarray):
        N = self.N
        return z[:N], z[N : 2 * N], float(z[2 * N])

    def initial_guess(self) -> np.ndarray:
        return np.concatenate([np.zeros(self.N), np.full(self.N, 1 / self.volume), [0.0]])

    def _fluxes(self, u: np.ndarray):
        return [
            ax.flux(self.args, Dp @ u, Dm @ u)
            for ax, Dp, Dm in zip(self.parts.axes, self.Dp, self.Dm)
        ]

    def _fp(self, m: np.ndarray, fluxes) -> np.ndarray:
        out = -self.nu * (self.L @ m)
        for (_g, a, b, _a2, _b2), DpT, DmT in zip(fluxes, self.DpT, self.DmT):
            out += DpT @ (a * m) + DmT @ (b * m)
        return out

    def residual(self, z: np.ndarray) -> np.ndarray:
        u, m, lam = self.split(z)
        fluxes = self._fluxes(u)
        hjb = -self.nu * (self.L @ u) + self.h0 - self.parts.coupling(*self.args, m) - lam
        for g, *_ in fluxes:
            hjb += g
        fp = self._fp(m, fluxes)
        return np.concatenate([hjb, fp, [self.w @ m - 1.0]])

    def jacobian_blocks(self, z: np.ndarray):
        """``A = dHJB/du``, ``dHJB/dm`` (diagonal), ``dFP/du``; ``dFP/dm = A^T``."""
        u, m, _ = self.split(z)
        A = -self.nu * self.L
        Jmu = sps.csr_matrix((self.N, self.N))
        for (_g, a, b, a2, b2), Dp, Dm, DpT, DmT in zip(
            self._fluxes(u), self.Dp, self.Dm, self.DpT, self.DmT
        ):
            A = A + sps.diags(a) @ Dp + sps.diags(b) @ Dm
            Jmu = Jmu + DpT @ sps.diags(m * a2) @ Dp + DmT @ sps.diags(m * b2) @ Dm
        Jum = sps.diags(-self.parts.coupling_dm(*self.args, m))
        return sps.csr_matrix(A), Jum, sps.csr_matrix(Jmu)

    def linearize(self, z: np.ndarray):
        A, Jum, Jmu = self.jacobian_blocks(z)
        d = -Jum.diagonal()  # dF/dm
        scale = np.concatenate(
            [
                np.asarray(abs(A).sum(axis=1)).ravel() + np.abs(d) + 2.0,
                np.asarray(abs(Jmu).sum(axis=1) + abs(A.T).sum(axis=1)).ravel() + 1.0,
                [1.0 + self.w.sum()],
            ]
        )
        if np.all(d > 0):
            return self._schur_solver(A, d, Jmu), scale
        return self._full_solver(A, Jum, Jmu), scale

    def _schur_solver(self, A, d, Jmu):
        """Eliminate m with the HJB rows (dF/dm > 0): ``S = dFP/du + A^T D^-1 A`` is symmetric
        positive semi-definite with constants in its kernel; pinning u at one node fixes that."""
        N, pin = self.N, self.pin
        AT = sps.csr_matrix(A.T)
        S = sps.csr_matrix(Jmu + AT @ sps.diags(1 / d) @ A)
        keep = np.ones(N, dtype=bool)
        keep[pin] = False
        idx = np.flatnonzero(keep)
        S_red = S[idx][:, idx]
        state: dict = {}
        solve_reduced = lazy_factorize(S_red)

        def solve_S(rhs: np.ndarray) -> np.ndarray:
            out = np.zeros(N)
            out[idx] = solve_reduced(rhs[idx])
            return out

        ones = np.ones(N)

        def solve(rhs: np.ndarray) -> np.ndarray:
            rH, rF, s = rhs[:N], rhs[N : 2 * N], rhs[2 * N]
            if "y2" not in state:
                y2 = solve_S(AT @ (ones / d))
                state["y2"] = y2
                state["wy2"] = self.w @ ((A @ y2 - ones) / d)
            y2 = state["y2"]
            y1 = solve_S(rF + AT @ (rH / d))
            dlam = (s - self.w @ ((A @ y1 - rH) / d)) / state["wy2"]
            du = y1 + dlam * y2
            dm = (A @ du - dlam - rH) / d
            return np.concatenate([du, dm, [dlam]])

        return solve

    def _full_solver(self, A, Jum, Jmu):
        """The bordered system with the constant's column, one FP row replaced by the mass row and
        a pin on u (used when dF/dm > 0 fails somewhere, e.g. without coupling)."""
        N, pin = self.N, self.pin
        mass_row = sps.csr_matrix(self.w[None, :])
        FP = sps.bmat([[Jmu, A.T]], format="lil")
        FP[pin, :] = sps.hstack([sps.csr_matrix((1, N)), mass_row]).tolil()
        pin_row = sps.csr_matrix(([1.0], ([0], [pin])), shape=(1, 2 * N))
        J = sps.bmat(
            [
                [sps.bmat([[A, Jum]]), sps.csr_matrix(-np.ones((N, 1)))],
                [sps.csr_matrix(FP), None],
                [pin_row, sps.csr_matrix((1, 1))],
            ],
            format="csc",
        )
        solve_bordered = lazy_factorize(J)

        def solve(rhs: np.ndarray) -> np.ndarray:
            r = np.concatenate([rhs[:N], rhs[N : 2 * N], [0.0]])
            r[N + pin] = rhs[2 * N]
            return solve_bordered(r)

        return solve

    def max_step(self, z: np.ndarray, dz: np.ndarray) -> float:
        m, dm = z[self.N : 2 * self.N], dz[self.N : 2 * self.N]
        neg = dm < 0
        if not np.any(neg):
            return 1.0
        return float(min(1.0, 0.9 * np.min(m[neg] / -dm[neg])))

    def normalize(self, z: np.ndarray) -> np.ndarray:
        u = z[: self.N]
        z[: self.N] = u - (self.w @ u) / self.volume
        return z
