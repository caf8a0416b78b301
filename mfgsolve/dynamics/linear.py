"""Exact moments of linear dynamics with additive Gaussian noise (no Monte Carlo).

For a quadratic objective the drift ``b(x) = A x`` and the correction ``c(x) = C x`` are linear, a
gradient descent-ascent step is ``x' = M x + N (eta xi)`` with Gaussian minibatch noise ``xi``, and
the SDEs are Ornstein-Uhlenbeck processes. Means and second moments of both are then computable
exactly: by the recursion ``m' = M m``, ``P' = M P M^T + N Q N^T`` for the iterates, and by a matrix
exponential (Van Loan's block formula) for the SDE.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from .game import DynamicsError, Objective, batched, check_scheme, correction, drift
from .integrators import block_diagonal, sga_step


def _matrix(fn, d: int, dtype: torch.dtype) -> np.ndarray:
    """Matrix of a linear batched map ``(n, d) -> (n, d)`` (columns = images of basis vectors)."""
    eye = torch.eye(d, dtype=dtype)
    with torch.no_grad():
        cols = fn(eye)
        twice = fn(2 * eye)
    if not torch.allclose(twice, 2 * cols, rtol=1e-9, atol=1e-12):
        raise DynamicsError(
            "the drift is not linear in (theta, omega); fix: exact moments need a quadratic objective, "
            "use simulate() (Monte Carlo) otherwise"
        )
    return cols.T.numpy().astype(np.float64)


def linearise(
    objective: Objective, dim_theta: int, dim_omega: int, eta: float, scheme: str = "alternating"
) -> dict[str, np.ndarray]:
    """Matrices of the drift, correction and one SGA step of a quadratic game.

    Computed with the generic :func:`~mfgsolve.dynamics.game.drift`,
    :func:`~mfgsolve.dynamics.game.correction` and :func:`~mfgsolve.dynamics.integrators.sga_step`
    applied to basis vectors (exact because they are linear for a quadratic objective).

    Returns:
        ``{"A": drift, "C": correction, "M": step on the state, "N": step on the noise eta*xi}``.
    """
    check_scheme(scheme)
    p, d = dim_theta, dim_theta + dim_omega
    dtype = torch.float64
    b = batched(lambda t, o: drift(objective, t, o), p)
    c = batched(lambda t, o: correction(objective, t, o, scheme), p)
    zero = torch.zeros(d, d, dtype=dtype)
    eye = torch.eye(d, dtype=dtype)
    A = _matrix(b, d, dtype)
    C = _matrix(c, d, dtype)
    M = _matrix(lambda x: sga_step(b, x, eta, torch.zeros_like(x), p, scheme), d, dtype)
    with torch.no_grad():
        N = sga_step(b, zero, eta, eye, p, scheme).T.numpy()
    return {"A": A, "C": C, "M": M, "N": N}


def sga_moments(
    M: np.ndarray, N: np.ndarray, Q: np.ndarray, x0: np.ndarray, n_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and second moment ``E[x x^T]`` after ``n_steps`` of ``x' = M x + N e``, ``e ~ N(0, Q)``."""
    m = np.asarray(x0, dtype=np.float64).copy()
    P = np.zeros((m.size, m.size))
    NQN = N @ Q @ N.T
    for _ in range(int(n_steps)):
        m = M @ m
        P = M @ P @ M.T + NQN
    return m, P + np.outer(m, m)


def ou_moments(
    A: np.ndarray, S: np.ndarray, x0: np.ndarray, horizon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and second moment at time ``horizon`` of ``dX = A X dt + sigma dW``, ``S = sigma sigma^T``.

    Uses ``P(T) = int_0^T e^{A s} S e^{A^T s} ds = F22^T F12`` with
    ``F = expm([[-A, S], [0, A^T]] T)`` (Van Loan 1978).
    """
    d = A.shape[0]
    block = np.zeros((2 * d, 2 * d))
    block[:d, :d] = -A
    block[:d, d:] = S
    block[d:, d:] = A.T
    F = scipy.linalg.expm(block * horizon)
    P = F[d:, d:].T @ F[:d, d:]
    m = scipy.linalg.expm(A * horizon) @ np.asarray(x0, dtype=np.float64)
    P = 0.5 * (P + P.T)
    return m, P + np.outer(m, m)


def exact_weak_errors(
    objective: Objective,
    dim_theta: int,
    dim_omega: int,
    x0: np.ndarray,
    noise_cov: np.ndarray,
    batch_size: int,
    eta: float,
    horizon: float,
    scheme: str = "alternating",
) -> dict[str, float]:
    """Exact weak errors of the SDE and the corrected SDE against SGA at ``T = horizon``.

    The error is ``|E x_N - E X_T| + ||E x_N x_N^T - E X_T X_T^T||_F`` (first and second moments),
    with ``N = horizon / eta`` iterates.

    Returns:
        ``{"sde": error, "sde-corrected": error}``.
    """
    n_steps = round(horizon / eta)
    if n_steps < 1 or abs(n_steps * eta - horizon) > 1e-9 * horizon:
        raise DynamicsError(
            f"horizon {horizon} is not a whole number of steps of eta={eta}; fix: use eta = T / n"
        )
    mats = linearise(objective, dim_theta, dim_omega, eta, scheme)
    cov = np.asarray(noise_cov, dtype=np.float64)
    if scheme != "simultaneous":
        cov = block_diagonal(torch.as_tensor(cov), dim_theta).numpy()
    Q = cov * eta**2 / batch_size  # covariance of eta * xi
    S = cov * eta / batch_size  # sigma sigma^T = (2 / beta) Sigma
    m_sga, s_sga = sga_moments(mats["M"], mats["N"], Q, x0, n_steps)
    out = {}
    for name, A in (("sde", mats["A"]), ("sde-corrected", mats["A"] + eta * mats["C"])):
        m, s = ou_moments(A, S, x0, n_steps * eta)
        out[name] = float(np.linalg.norm(m - m_sga) + np.linalg.norm(s - s_sga))
    return out
