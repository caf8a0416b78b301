"""The mass that leaves through the exits over time, and when it has left (problems with exits).

Every result (network, reference, known solution) is integrated with the same space quadrature at
the same times, so their mass curves and exit times compare like with like
(:mod:`mfgsolve._mass`: the exit time of a fraction q is the first time at which 1 - M(t) = q).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._mass import EXIT_FRACTIONS, exit_summary
from ..sampling import quadrature, quadrature_size
from ._integrals import known_solution

__all__ = ["EXIT_TIMES", "exit_metrics", "mass_over_time"]

EXIT_TIMES = 129  # times in [t0, T] at which the mass is integrated


def mass_over_time(density, problem, times: np.ndarray) -> np.ndarray:
    """``M(t) = int m(t, x) dx`` at ``times`` (the "over-time" quadrature), for ``density`` a
    function of (n, 1 + d) points; (len(times),), or (K, len(times)) for K populations."""
    q = quadrature(problem.domain, quadrature_size("over-time", problem.dim), seed=11)
    nodes, w = q.nodes.numpy(), q.weights.numpy()
    pts = np.concatenate(
        [np.repeat(times, len(nodes))[:, None], np.tile(nodes, (len(times), 1))], axis=1
    )
    m = np.asarray(density(pts))
    if m.ndim == 2:  # several populations
        return np.stack(
            [(w * m[:, k].reshape(len(times), -1)).sum(axis=1) for k in range(m.shape[1])]
        )
    return (w * m.reshape(len(times), -1)).sum(axis=1)


def exit_metrics(a: Any, b: Any, problem) -> dict[str, float]:
    """``mass_left`` (at T) and the exit times ``exit_time_50``, ``exit_time_90`` of ``a``; with
    something to compare against (``b``, or the problem's known solution) the same with the
    suffix ``_ref`` / ``_exact`` and ``exit_time_<q>_rel``, the relative error of the exit time
    (NaN where either never reaches q)."""
    times = np.linspace(problem.t0, problem.T, EXIT_TIMES)
    curves = {"": mass_over_time(a.density, problem, times)}
    if b is not None:
        curves["_ref"] = mass_over_time(b.density, problem, times)
    else:
        _u, m_exact, _c = known_solution(problem)
        if m_exact is not None:
            curves["_exact"] = mass_over_time(m_exact, problem, times)
    out: dict[str, float] = {}
    for suffix, mass in curves.items():  # (several populations: the worst, and each one's)
        summary = exit_summary(times, mass)
        out.update({key + suffix: v for key, v in summary.items() if key != "mass"})
    for suffix in ("_ref", "_exact"):
        for q in EXIT_FRACTIONS:
            key = f"exit_time_{round(100 * q)}"
            if key + suffix in out:
                mine, theirs = out[key], out[key + suffix]
                out[key + "_rel"] = abs(mine - theirs) / abs(theirs - problem.t0)
    return out
