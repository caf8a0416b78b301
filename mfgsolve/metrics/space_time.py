"""Errors and residual norms of finite-horizon solutions over space-time."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..lowering.space_time import (
    _expectation_values,
    lower_finite_horizon_populations,
    residuals_and_caches,
)
from ..lowering.terms import lower_terms
from ..sampling import quadrature, quadrature_size
from ._integrals import field_errors, known_solution, population_errors

__all__ = ["errors_over_time", "residual_norms"]


def residual_norms(solution, nodes: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """RMS (quadrature-weighted) HJB and FP residuals of a finite-horizon network solution, and
    each relative to the size of its terms (``*_relative``, see :mod:`mfgsolve.lowering.terms`);
    with several populations over all of them (sums of squares over the populations)."""
    value_net, density_net, _ = solution.fields()
    problem = solution.problem
    by_population = lower_finite_horizon_populations(problem)
    K = len(by_population)
    terms = [
        {
            "hjb": lower_terms(
                res.hjb.label, res.hjb_expr, problem, tuple(e.symbol for e in res.hjb_expectations)
            ),
            "fp": lower_terms(
                res.fp.label, res.fp_expr, problem, tuple(e.symbol for e in res.fp_expectations)
            ),
        }
        for res in by_population
    ]
    dtype = next(value_net.parameters()).dtype
    device = next(value_net.parameters()).device
    sq = {"hjb": 0.0, "fp": 0.0}
    scale = {"hjb": 0.0, "fp": 0.0}
    order = np.argsort(nodes[:, 0], kind="stable")  # chunks share time slices
    for idx in np.array_split(order, max(1, len(nodes) // 4096)):
        pts = torch.as_tensor(nodes[idx], dtype=dtype, device=device).requires_grad_(True)
        r, caches = residuals_and_caches(
            by_population, value_net, density_net, pts, (), ("hjb", "fp"), create_graph=False
        )
        w = torch.as_tensor(weights[idx])
        for key in sq:
            rk = r[key].detach().double().cpu()
            sq[key] += float((w * (rk**2 if K == 1 else (rk**2).sum(dim=1))).sum())
            for res, own in zip(by_population, terms):
                expectations = getattr(res, f"{key}_expectations")
                ex = [e.detach() for e in _expectation_values(expectations, pts, density_net, True)]
                size = sum(t(pts, caches, ex).detach().double().cpu() ** 2 for t in own[key])
                scale[key] += float((w * size).sum())
    total = float(np.sum(weights))
    out = {}
    for key in ("hjb", "fp"):
        out[f"{key}_residual"] = (sq[key] / K / total) ** 0.5
        out[f"{key}_relative"] = (sq[key] / scale[key]) ** 0.5 if scale[key] > 0 else 0.0
    return out


def errors_over_time(
    solution: Any, reference: Any = None, times: int = 41
) -> dict[str, np.ndarray]:
    """Relative L2 errors of m and u (absolute L2 of u too) at each of ``times`` uniform times.

    Args:
        solution: anything with ``problem``, ``value(points)``, ``density(points)``.
        reference: the same interface, or None for the problem's known solution.
        times: number of time nodes in [t0, T].

    Returns:
        dict with ``t``, ``m_rel_l2``, ``u_l2`` and ``u_rel_l2`` arrays (NaN where unknown);
        with several populations the worst population's at each time, and each population's
        under ``m_rel_l2_1``, ``u_l2_2``, ...
    """
    problem = solution.problem
    u_ref, m_ref = (
        (reference.value, reference.density)
        if reference is not None
        else known_solution(problem)[:2]
    )
    q = quadrature(problem.domain, quadrature_size("over-time", problem.dim), seed=3)
    nodes, w = q.nodes.numpy(), q.weights.numpy()
    ts = np.linspace(problem.t0, problem.T, times)
    K = getattr(problem, "populations", 1)
    keys = ["m_rel_l2", "u_l2", "u_rel_l2"]
    if K > 1:
        keys += [f"{key}_{k + 1}" for k in range(K) for key in ("m_rel_l2", "u_l2", "u_rel_l2")]
    out = {key: np.full(times, np.nan) for key in keys}
    out["t"] = ts
    errors = field_errors if K == 1 else population_errors
    for k, t in enumerate(ts):
        pts = np.concatenate([np.full((len(nodes), 1), t), nodes], axis=1)
        errs = errors(
            solution.value(pts),
            solution.density(pts),
            u_ref(pts) if u_ref else None,
            m_ref(pts) if m_ref else None,
            w,
        )
        for key in keys:
            if key in errs:
                out[key][k] = errs[key]
    return out
