"""Did a run converge? A verdict from what every user has, without the exact solution.

The checks, in order (the first that fails gives the reason):

1. **finite**: the last recorded losses and the residuals are finite numbers.
2. **HJB balance**: the RMS of the HJB residual relative to the size of its terms
   (:mod:`mfgsolve.lowering.terms`) is at most ``tol``. An HJB equation whose density learned
   nothing leaves a term (the potential, the coupling) unbalanced: relative residual of order 1.
3. **FP balance**, where it is informative: the same for the Fokker-Planck equation when it has
   diffusion (a second derivative of m). A first-order FP, -div(m grad_p H), has terms that all
   vanish where grad u does (the seed problem: u = 0), so its relative residual is of order 1 at
   the solution too; it is then reported but does not decide.
4. **mass**: the density's mass by the comparison quadrature (independent of the normaliser the
   network learned) is 1 within ``MASS_TOL``, at every time for finite-horizon problems. On a
   domain with exits the mass leaves, so instead the **exit conditions** decide: the RMS of
   u - (the exit cost) and of m on the exits, relative to the RMS of u and of m over the domain,
   are at most ``tol``.
5. **not rising**: the evaluated HJB residual at the end of training is not above twice its
   minimum over the last quarter of the records (a run that has started to diverge).

Also reported, without deciding: the spread of the constant over the last quarter of the records
(ergodic problems) and the last losses of the two players.

``tol`` defaults to 5e-2, the accuracy at which the benchmarks judge a run (m_rel_l2 <= 5e-2).
How often the verdict agrees with the exact error is measured by ``mfgsolve bench verdict``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..problem import ErgodicMFG, Rd
from ..sampling import quadrature, quadrature_size
from .whole_space import whole_space_nodes

__all__ = ["TOL", "MASS_TOL", "Verdict", "assess"]

TOL = 5e-2
MASS_TOL = 1e-2


@dataclass(frozen=True)
class Verdict:
    """Whether a run converged, why, and the numbers behind it.

    Attributes:
        converged: every deciding check passed.
        reason: one line naming the deciding numbers (or the failed check and how to act).
        checks: the numbers (relative residuals, mass error, trend, constant spread, losses).
    """

    converged: bool
    reason: str
    checks: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.reason

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(bool(data["converged"]), str(data["reason"]), dict(data.get("checks") or {}))


def _fp_has_diffusion(problem) -> bool:
    """Whether the FP residual has a second space derivative of m (or log m)."""
    from ..lowering import lower_populations, split_field_name
    from ..lowering.space_time import lower_finite_horizon_populations

    if isinstance(problem, ErgodicMFG):
        terms = [t for r in lower_populations(problem) for t in r.fp.terms]
        first_space = 0
    else:  # index 0 is time
        terms = [t for r in lower_finite_horizon_populations(problem) for t in r.fp.terms]
        first_space = 1
    for name, index in terms:
        if split_field_name(name)[0] not in ("m", "logm"):
            continue
        if index == "lap":
            return True
        if isinstance(index, tuple) and sum(i >= first_space for i in index) >= 2:
            return True
    return False


def _nodes(solution) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Quadrature nodes and weights (sum = |domain|, per time) and the times (None: ergodic).
    On R^d: points of the solution's reference measure, equal weights (the residuals' RMS under
    it: Lebesgue measure has no mass to average over)."""
    problem = solution.problem
    if isinstance(problem.domain, Rd):
        nodes, _log_w = whole_space_nodes(solution)
        return nodes, np.full(len(nodes), 1.0 / len(nodes)), None
    q = quadrature(problem.domain, quadrature_size("compare", problem.dim), seed=12345)
    nodes, weights = q.nodes.numpy(), q.weights.numpy()
    if isinstance(problem, ErgodicMFG):
        return nodes, weights, None
    return nodes, weights, np.linspace(problem.t0, problem.T, 17)


def _mass_error(solution, nodes, weights, times) -> float:
    if isinstance(solution.problem.domain, Rd):  # int m by importance sampling, in logs
        nodes, log_w = whole_space_nodes(solution)
        log_mass = np.logaddexp.reduce(log_w + solution.log_density(nodes))
        return abs(float(np.exp(log_mass)) - 1.0)
    if times is None:
        m = solution.density(nodes)
        if m.ndim == 2:  # several populations: the worst
            return float(np.max(np.abs(weights @ m - 1.0)))
        return abs(float(np.sum(weights * m)) - 1.0)
    worst = 0.0
    for t in times:
        pts = np.concatenate([np.full((len(nodes), 1), t), nodes], axis=1)
        m = solution.density(pts)
        if m.ndim == 2:  # several populations: the worst
            worst = max(worst, float(np.max(np.abs(weights @ m - 1.0))))
        else:
            worst = max(worst, abs(float(np.sum(weights * m)) - 1.0))
    return worst


def _exit_errors(solution, nodes, times) -> dict[str, float]:
    """On each exit (door) at ``times``: the RMS of u - b (b: the exit cost) and of m, relative
    to the RMS of u and of m over the domain's ``nodes`` at the same times."""
    problem = solution.problem
    domain = problem.domain
    symbols = domain.symbols
    gaps_u, gaps_m = [], []
    for face in domain.exits:
        others = [k for k in range(domain.dim) if k != face.axis]
        per_axis = max(2, int(round(256 ** (1 / max(1, len(others))))))
        axes = [np.linspace(domain.lower[k], domain.upper[k], per_axis) for k in others]
        grid = np.meshgrid(*axes, indexing="ij") if others else []
        pts = np.full((per_axis ** len(others), domain.dim), face.position)
        for j, k in enumerate(others):
            pts[:, k] = grid[j].ravel()
        pts = pts[face.condition.door_mask(symbols, pts)]
        expr = problem.substitute(face.condition.value)
        for t in times:
            tp = np.concatenate([np.full((len(pts), 1), t), pts], axis=1)
            b = face.condition.values_at((problem.time, *symbols), expr, tp)
            gaps_u.append(solution.value(tp) - b)
            gaps_m.append(solution.density(tp))
    u_all, m_all = [], []
    for t in times:
        tp = np.concatenate([np.full((len(nodes), 1), t), nodes], axis=1)
        u_all.append(solution.value(tp))
        m_all.append(solution.density(tp))

    def rms(parts):
        values = np.concatenate([np.ravel(p) for p in parts])
        return float(np.sqrt(np.mean(values**2)))

    scale_u, scale_m = rms(u_all), rms(m_all)
    return {
        "exit_u_relative": rms(gaps_u) / scale_u if scale_u > 0 else rms(gaps_u),
        "exit_m_relative": rms(gaps_m) / scale_m if scale_m > 0 else rms(gaps_m),
    }


def _last_quarter(history: list[dict[str, float]], key: str) -> list[float]:
    values = [float(h[key]) for h in history if key in h and h[key] is not None]
    return values[-max(2, len(values) // 4) :] if len(values) >= 2 else values


def _relative_residuals(solution, nodes, weights, times) -> dict[str, float]:
    from ..sampling import tile_in_time
    from .comparison import residual_norms

    if times is not None:
        nodes, weights = tile_in_time(nodes, weights, times)
    return residual_norms(solution, nodes, weights)


def assess(solution, tol: float = TOL) -> Verdict:
    """The convergence verdict of a network solution (ergodic or finite-horizon).

    Args:
        solution: a :class:`mfgsolve.Solution`.
        tol: the largest relative residual (of the equations' terms) that counts as converged.

    Returns:
        :class:`Verdict`.
    """
    problem = solution.problem
    history = solution.history or []
    nodes, weights, times = _nodes(solution)
    checks: dict[str, Any] = dict(_relative_residuals(solution, nodes, weights, times))
    checks["fp_informative"] = _fp_has_diffusion(problem)
    exits = bool(problem.domain.exits)
    if exits:  # the mass leaves: the exit conditions decide instead
        checks.update(_exit_errors(solution, nodes, times))
    else:
        checks["mass_error"] = _mass_error(solution, nodes, weights, times)
    last = history[-1] if history else {}
    for key in ("loss_hjb", "loss_fp"):
        if key in last:
            checks[f"last_{key}"] = float(last[key])
    recent = _last_quarter(history, "hjb_residual")
    checks["hjb_residual_rise"] = (
        recent[-1] / min(recent) if len(recent) >= 2 and min(recent) > 0 else 1.0
    )
    keys = ["constant"] + [f"constant_{k + 1}" for k in range(getattr(problem, "populations", 1))]
    spreads = []
    for key in keys:
        constants = _last_quarter(history, key)
        if len(constants) >= 2:
            spreads.append(float(np.max(constants) - np.min(constants)))
    if spreads:
        checks["constant_spread"] = max(spreads)

    numbers = [v for v in checks.values() if isinstance(v, float)]
    hjb, fp = checks["hjb_relative"], checks["fp_relative"]
    fp_text = (
        f"FP {fp:.2g}" if checks["fp_informative"] else f"FP {fp:.2g} (first order: not deciding)"
    )
    more = "; fix: more iterations (--iterations), or see docs/solver.md"
    if not all(math.isfinite(v) for v in numbers):
        return Verdict(False, "not converged: non-finite losses or residuals" + more, checks)
    if hjb > tol:
        return Verdict(
            False,
            f"not converged: the HJB residual is {hjb:.2g} of the size of its terms (> {tol:g})"
            + more,
            checks,
        )
    if checks["fp_informative"] and fp > tol:
        return Verdict(
            False,
            f"not converged: the FP residual is {fp:.2g} of the size of its terms (> {tol:g})"
            + more,
            checks,
        )
    for key, what in (("exit_u_relative", "u - the exit cost"), ("exit_m_relative", "m")):
        if checks.get(key, 0.0) > tol:
            return Verdict(
                False,
                f"not converged: on the exits the RMS of {what} is {checks[key]:.2g} of its size "
                f"in the domain (> {tol:g})" + more,
                checks,
            )
    if not exits and checks["mass_error"] > MASS_TOL:
        return Verdict(
            False,
            f"not converged: the density's mass is off by {checks['mass_error']:.2g} (> {MASS_TOL:g})"
            + more,
            checks,
        )
    if checks["hjb_residual_rise"] > 2.0:
        return Verdict(
            False,
            f"not converged: the HJB residual rose {checks['hjb_residual_rise']:.2g}x over the "
            "last quarter of training; fix: a smaller learning rate (--lr)",
            checks,
        )
    boundary = (
        f"exit conditions u {checks['exit_u_relative']:.1g}, m {checks['exit_m_relative']:.1g}"
        if exits
        else f"mass error {checks['mass_error']:.1g}"
    )
    return Verdict(
        True,
        f"converged: residuals relative to their terms HJB {hjb:.2g}, {fp_text} (<= {tol:g}); "
        + boundary,
        checks,
    )
