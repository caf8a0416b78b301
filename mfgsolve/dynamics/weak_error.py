"""Weak errors of the SDE models against the iterates, and their order in the learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .game import DynamicsError, Objective
from .integrators import simulate


def fit_slope(etas: Sequence[float], errors: Sequence[float]) -> float:
    """Least-squares slope of ``log error`` against ``log eta`` (the observed order)."""
    x, y = np.log(np.asarray(etas, dtype=float)), np.asarray(errors, dtype=float)
    if len(x) < 2 or (y <= 0).any() or not np.isfinite(y).all():
        raise DynamicsError(
            "fit_slope needs at least two positive finite errors; fix: check the error values"
        )
    return float(np.polyfit(x, np.log(y), 1)[0])


def second_moment(x: torch.Tensor) -> torch.Tensor:
    """Test function ``phi(theta, omega) = |theta|^2 + |omega|^2`` on stacked states (n, d)."""
    return (x**2).sum(dim=1)


def coupled_weak_errors(
    objective: Objective,
    theta0: Sequence[float],
    omega0: Sequence[float],
    *,
    etas: Sequence[float],
    horizon: float,
    noise_cov: torch.Tensor | np.ndarray,
    batch_size: int = 1,
    test_fn: Callable[[torch.Tensor], torch.Tensor] = second_moment,
    n_paths: int = 20_000,
    substeps: int = 2,
    scheme: str = "alternating",
    seed: int = 0,
) -> list[dict[str, float]]:
    """Monte-Carlo weak errors ``|E phi(x_N) - E phi(X_T)|`` with coupled noise, for each ``eta``.

    The iterates and both SDEs share their Brownian increments (:func:`simulate`), so the standard
    error of the mean difference is far below the spread of ``phi`` itself.

    Returns:
        One dict per ``eta``: ``eta``, ``sde`` and ``sde-corrected`` (signed mean differences
        ``E phi(x_N) - E phi(X_T)``), ``sde_se`` and ``sde-corrected_se`` (standard errors).
    """
    rows = []
    for eta in etas:
        n_steps = round(horizon / eta)
        if n_steps < 1 or abs(n_steps * eta - horizon) > 1e-9 * horizon:
            raise DynamicsError(
                f"horizon {horizon} is not a whole number of steps of eta={eta}; fix: use T / n"
            )
        states = simulate(
            objective, theta0, omega0, eta=eta, n_steps=n_steps, scheme=scheme,
            noise_cov=torch.as_tensor(noise_cov, dtype=torch.float64), batch_size=batch_size,
            n_paths=n_paths, substeps=substeps, seed=seed,
        )  # fmt: skip
        row = {"eta": float(eta)}
        ref = test_fn(states["sga"])
        for name in ("sde", "sde-corrected"):
            diff = ref - test_fn(states[name])
            row[name] = float(diff.mean())
            row[f"{name}_se"] = float(diff.std() / math.sqrt(n_paths))
        rows.append(row)
    return rows
