"""Sparse linear algebra shared by the reference schemes: LU factorisation and the acceptance rule
for an inexact GMRES step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla


def factorize(K: sps.spmatrix, ordering: str = "symmetric") -> Callable[[np.ndarray], np.ndarray]:
    """Sparse LU; a singular matrix gives a solver that returns NaN (reported by Newton as a
    singular system).

    Args:
        K: the matrix.
        ordering: ``"symmetric"`` (MMD on A^T + A with symmetric pivoting: fast for the saddle-like
            systems of one time level or of the ergodic schemes) or ``"colamd"`` (column ordering:
            several times less fill on the space-time systems of the generic finite-horizon
            scheme, whose HJB rows look forward in time and FP rows back).

    Returns:
        ``solve(rhs)``.
    """
    try:
        if ordering == "colamd":
            lu = spla.splu(sps.csc_matrix(K), permc_spec="COLAMD")
        else:
            lu = spla.splu(
                sps.csc_matrix(K),
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.1,
                options={"SymmetricMode": True},
            )
    except RuntimeError:  # "Factor is exactly singular"
        return lambda rhs: np.full(np.shape(rhs), np.nan)
    return lu.solve


def lazy_factorize(
    K: sps.spmatrix | Callable[[], sps.spmatrix], ordering: str = "symmetric"
) -> Callable[[np.ndarray], np.ndarray]:
    """``solve(rhs)`` that factorises ``K`` (or the matrix ``K()`` builds) on its first call only:
    a Newton step whose line search needs no linear solve pays for no factorisation.

    Args:
        K: the matrix, or a function building it.
        ordering: as for :func:`factorize`.
    """
    state: dict[str, Callable[[np.ndarray], np.ndarray]] = {}

    def solve(rhs: np.ndarray) -> np.ndarray:
        if "f" not in state:
            state["f"] = factorize(K() if callable(K) else K, ordering)
        return state["f"](rhs)

    return solve


def accept_gmres_step(J: sps.spmatrix, rhs: np.ndarray, x: np.ndarray, code: int) -> np.ndarray:
    """``x`` when GMRES converged (``code == 0``) or stopped at the round-off floor with a relative
    residual below 1e-6 (a good inexact Newton step), else NaN (Newton reports a singular system)."""
    if code != 0:
        achieved = np.linalg.norm(J @ x - rhs) / max(np.linalg.norm(rhs), 1e-300)
        if not achieved < 1e-6:
            return np.full_like(rhs, np.nan)
    return x
