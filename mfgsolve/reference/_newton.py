"""Damped Newton with a backtracking line search, shared by every reference scheme."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import ReferenceSolveError


class NewtonSystem(Protocol):
    def residual(self, z: np.ndarray) -> np.ndarray: ...

    def linearize(self, z: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]: ...

    def max_step(self, z: np.ndarray, dz: np.ndarray) -> float: ...

    def normalize(self, z: np.ndarray) -> np.ndarray: ...


@dataclass
class NewtonResult:
    z: np.ndarray
    history: list[dict]
    iterations: int
    residual: float


def newton(
    system: NewtonSystem,
    z0: np.ndarray,
    *,
    tol: float = 1e-11,
    max_iter: int = 30,
    label: str = "",
    fix: str = "try continuation=True or a finer grid",
) -> NewtonResult:
    """Solve ``system.residual(z) = 0`` by Newton's method with damping.

    The convergence measure is the infinity norm of the residual with each row divided by
    ``1 + sum_j |J_ij|`` (``scale`` returned by ``linearize``), so that rows of very different size
    (an HJB row, an FP row scaled by ``1/h^2``) are judged alike. Once it is at most ``tol``, one
    more Newton step is taken (and kept unless it increases the residual): the row-scaled
    system is ill-conditioned (about N^2 on N nodes), so an iterate just below ``tol`` can still be
    1e-9 away from the discrete solution, and whether the last step lands just above or just below
    ``tol`` depends on the starting point, the LU ordering and the library versions. After the extra
    step the iterate is at round-off, whatever the path (Newton converges quadratically), which makes
    Richardson extrapolation from several grids repeatable.

    Args:
        system: residual, linearisation (a solver for ``J dz = rhs`` and the row scales),
            the largest admissible step (keeps m > 0), and a normalisation (e.g. mean of u).
        z0: the initial guess.
        tol: tolerance on the scaled residual.
        max_iter: Newton iterations before giving up.
        label: what is being solved, for the error message.
        fix: the advice given when Newton fails.

    Returns:
        The solution, the history (one dict per iteration) and the final scaled residual.

    Raises:
        ReferenceSolveError: no convergence within ``max_iter`` or a stalled line search.
    """
    z = system.normalize(np.array(z0, dtype=float))
    R = system.residual(z)
    history: list[dict] = []
    res = np.inf
    for it in range(max_iter + 1):
        solve, scale = system.linearize(z)
        scaled = R / scale
        res = float(np.max(np.abs(scaled)))
        entry = {"iteration": it, "residual": res, "residual_raw": float(np.max(np.abs(R)))}
        if not np.isfinite(res):
            raise ReferenceSolveError(
                f"{label}: the residual became non-finite at Newton iteration {it}; fix: {fix}"
            )
        if res <= tol:
            return _final_step(system, z, R, scale, solve, entry, history, it)
        if it == max_iter:
            history.append(entry)
            break
        dz = solve(-R)
        if not np.all(np.isfinite(dz)):
            raise ReferenceSolveError(
                f"{label}: singular Newton system at iteration {it} (scaled residual {res:.2e}); fix: {fix}"
            )
        alpha = min(1.0, system.max_step(z, dz))
        merit = float(np.linalg.norm(scaled))
        while True:
            z_new = system.normalize(z + alpha * dz)
            R_new = system.residual(z_new)
            merit_new = float(np.linalg.norm(R_new / scale))
            if np.isfinite(merit_new) and merit_new <= (1 - 1e-4 * alpha) * merit:
                break
            if alpha < 1e-6:
                break
            alpha *= 0.5
        step = float(alpha * np.max(np.abs(dz)))
        entry.update(step=step, damping=float(alpha))
        history.append(entry)
        if not np.isfinite(merit_new) or (alpha < 1e-6 and merit_new > merit):
            raise ReferenceSolveError(
                f"{label}: Newton line search stalled at iteration {it} (scaled residual {res:.2e}); fix: {fix}"
            )
        z, R = z_new, R_new
        if step <= 1e-14 * (1 + float(np.max(np.abs(z)))) and res < 1e-8:
            # the update is at round-off: the residual floor of the discrete system is reached
            solve, scale = system.linearize(z)
            res = float(np.max(np.abs(R / scale)))
            history.append({"iteration": it + 1, "residual": res, "step": 0.0, "damping": 0.0})
            return NewtonResult(z, history, it + 1, res)
    raise ReferenceSolveError(
        f"{label}: Newton did not converge in {max_iter} iterations (scaled residual {res:.2e} > tol {tol:.0e}); fix: {fix}"
    )


def _final_step(system, z, R, scale, solve, entry, history, it) -> NewtonResult:
    """The converged iterate ``z`` (scaled residual <= tol) after one more Newton step, kept
    when it does not increase the residual (at the round-off floor it may not decrease it). The
    step reuses the factorisation at ``z`` and the residual is measured with its row scales."""
    res = entry["residual"]
    dz = solve(-R)
    alpha = min(1.0, system.max_step(z, dz)) if np.all(np.isfinite(dz)) else 0.0
    if alpha > 0.0:
        z_new = system.normalize(z + alpha * dz)
        R_new = system.residual(z_new)
        res_new = float(np.max(np.abs(R_new / scale)))
        if np.isfinite(res_new) and res_new <= res:
            entry.update(step=float(alpha * np.max(np.abs(dz))), damping=float(alpha))
            history.append(entry)
            last = {"iteration": it + 1, "residual": res_new}
            last.update(residual_raw=float(np.max(np.abs(R_new))), step=0.0, damping=0.0)
            history.append(last)
            return NewtonResult(z_new, history, it + 1, res_new)
    entry.update(step=0.0, damping=0.0)
    history.append(entry)
    return NewtonResult(z, history, it, res)


class _Homotopy:
    """``R(z) - (1 - lam) R(z0)``: solved by ``z0`` at lam = 0 and by the discrete solution at
    lam = 1 (the Jacobian is that of the system)."""

    def __init__(self, system: NewtonSystem, r0: np.ndarray, lam: float):
        self.system, self.r0, self.lam = system, r0, lam

    def residual(self, z: np.ndarray) -> np.ndarray:
        return self.system.residual(z) - (1.0 - self.lam) * self.r0

    def linearize(self, z: np.ndarray):
        return self.system.linearize(z)

    def max_step(self, z: np.ndarray, dz: np.ndarray) -> float:
        return 1.0

    def normalize(self, z: np.ndarray) -> np.ndarray:
        return z


def solve_by_homotopy(
    system: NewtonSystem, z0: np.ndarray, tol: float, label: str, fix: str
) -> tuple[np.ndarray, list[dict]]:
    """Newton continuation from ``z0`` along :class:`_Homotopy` (lam from 0 to 1, the step grown
    by 1.5 after a success and halved after a failure); the last stage is solved to ``tol``.

    Raises:
        ReferenceSolveError: the step fell below 1e-3 or the stages took over 400 iterations.
    """
    r0 = system.residual(z0)
    z, lam, step, total = z0, 0.0, 0.5, 0
    history: list[dict] = []
    while lam < 1.0:
        target = min(1.0, lam + step)
        try:
            r = newton(
                _Homotopy(system, r0, target),
                z,
                tol=tol if target == 1.0 else max(tol, 1e-6),
                max_iter=12,
                label=label,
            )
        except ReferenceSolveError:
            step /= 2
            history.append({"stage": "homotopy", "lambda": target, "converged": False})
            if step < 1e-3 or total > 400:
                raise ReferenceSolveError(
                    f"{label}: Newton continuation from the initial guess stalled at "
                    f"lambda = {lam:.3g}; fix: {fix}"
                ) from None
            continue
        z, lam, step = r.z, target, 1.5 * step
        total += r.iterations
        history.append({"stage": "homotopy", "lambda": lam, "iterations": r.iterations})
        history += [{"lambda": lam, **h} for h in r.history] if lam == 1.0 else []
    return z, history
