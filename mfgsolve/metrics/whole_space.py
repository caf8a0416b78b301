"""Errors on the whole space R^d by importance sampling, with their standard errors.

On R^d there is no volume: integrals are importance-sampled from a Gaussian proposal q (the
solution's reference measure, :class:`~mfgsolve.sampling.GaussianQuadrature`), and computed from
log-densities (in d = 100 a density is about 1e-60 where its mass is). Definitions:

- ``m_rel_l2 = |m - m_ref| / |m_ref|`` in L2(dx), as on bounded domains;
- ``u_l2``, ``u_rel_l2``: u is not square integrable on R^d (it grows), and an ergodic u is
  defined up to a constant, so its error is measured in L2(m_ref) with the constant removed:
  ``u_l2 = |e - E[e]|``, e = u - u_ref, E and the norm under m_ref; ``u_rel_l2`` divides by
  ``|u_ref - E[u_ref]|``.
- ``constant_abs`` as everywhere.

:func:`compare_whole_space` averages independently scrambled rules and reports ``*_se``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..nn.layers import EnvelopeDensityNetwork
from ..result import result_kind
from ..sampling import gaussian_quadrature

__all__ = [
    "EVALUATION_FACTORS",
    "compare_whole_space",
    "reference_gaussian",
    "replicate_summary",
    "whole_space_errors",
    "whole_space_nodes",
]

# the proposal: an equal mixture of the reference Gaussian and its copy narrowed by sqrt(2)
EVALUATION_FACTORS = (2**-0.5, 1.0)
REPLICATES = 8
MAX_POINTS = 2**16  # per replicate


def _normalised(log_w: np.ndarray) -> np.ndarray:
    w = np.exp(log_w - np.max(log_w))
    return w / w.sum()


def whole_space_errors(
    u: np.ndarray | None,
    log_m: np.ndarray | None,
    u_ref: np.ndarray | None,
    log_m_ref: np.ndarray | None,
    log_w: np.ndarray,
    constant: float | None = None,
    constant_ref: float | None = None,
) -> dict[str, float]:
    """Errors of (u, m, constant) from values at importance-sampling nodes.

    Args:
        u, log_m: the solution's u and log m at the nodes (float64 arrays, (n,)).
        u_ref, log_m_ref: the reference's (or None).
        log_w: log importance weights, ``sum exp(log_w) g ~ int g dx``.
        constant, constant_ref: the ergodic constants (or None).

    Returns:
        ``m_rel_l2``, ``u_l2``, ``u_rel_l2``, ``constant_abs`` where computable.
    """
    out: dict[str, float] = {}
    if log_m is not None and log_m_ref is not None:
        log_p = log_w + 2 * log_m_ref  # m_ref^2 dx
        log_p = log_p - np.logaddexp.reduce(log_p)
        gap = np.clip(log_m - log_m_ref, -700, 700)  # (m / m_ref - 1)^2, in logs: no overflow
        with np.errstate(divide="ignore"):
            log_terms = log_p + 2 * np.log(np.abs(np.expm1(gap)))
        out["m_rel_l2"] = float(np.exp(0.5 * np.logaddexp.reduce(log_terms)))
    if u is not None and u_ref is not None and log_m_ref is not None:
        p = _normalised(log_w + log_m_ref)  # m_ref dx
        e = u - u_ref
        out["u_l2"] = float(np.sqrt(np.sum(p * (e - np.sum(p * e)) ** 2)))
        spread = float(np.sqrt(np.sum(p * (u_ref - np.sum(p * u_ref)) ** 2)))
        if spread > 1e-8:
            out["u_rel_l2"] = out["u_l2"] / spread
    if constant is not None and constant_ref is not None:
        out["constant_abs"] = float(abs(constant - constant_ref))
    return out


def replicate_summary(reps: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """(mean, standard error) of each error over independent replicates; an error missing from a
    replicate (u_rel_l2 where the weights fall on one node, so that u* has no spread there) is
    left out of both rather than averaged over the others.

    Args:
        reps: one dict of errors per replicate (:func:`whole_space_errors`).

    Returns:
        the mean of every error all replicates have, and the standard error of the mean of each
        of m_rel_l2, u_l2, u_rel_l2 among them.
    """
    common = [k for k in reps[0] if all(k in r for r in reps)]
    mean_errors = {k: float(np.mean([r[k] for r in reps])) for k in common}
    se = {
        k: float(np.std([r[k] for r in reps], ddof=1) / np.sqrt(len(reps)))
        for k in ("m_rel_l2", "u_l2", "u_rel_l2")
        if k in common
    }
    return mean_errors, se


def reference_gaussian(solution) -> tuple[torch.Tensor, torch.Tensor]:
    """The proposal's (mean, scale): the solution's envelope, else the domain's own."""
    density_net = solution.fields()[1] if result_kind(solution) == "network" else None
    if isinstance(density_net, EnvelopeDensityNetwork):
        mean, scale = density_net.reference()
        return mean.double().cpu(), scale.double().cpu()
    domain = solution.problem.domain
    return torch.tensor(domain.center, dtype=torch.float64), torch.tensor(
        domain.scale, dtype=torch.float64
    )


def whole_space_nodes(solution, points: int = 2**14) -> tuple[np.ndarray, np.ndarray]:
    """Importance-sampling nodes from the solution's reference measure (the evaluation
    mixture) and their log weights, ``sum exp(log_w) g ~ int g dx``."""
    mean, scale = reference_gaussian(solution)
    q = gaussian_quadrature(solution.problem.dim, points, 12345, EVALUATION_FACTORS)
    q = q.mapped(mean, scale)
    return q.nodes.numpy(), q.log_w.numpy()


def compare_whole_space(a, u_ref_fn, m_ref_fn, c_ref, problem) -> dict[str, Any]:
    """Errors of ``a`` on R^d as the mean over independently scrambled importance-sampling rules,
    grown (x4) until the standard error of each error is below 5e-4 of it (three digits) or
    1e-4, or MAX_POINTS per rule.

    Args:
        a: a solution (``value``, ``log_density``, ``constant``).
        u_ref_fn, m_ref_fn, c_ref: the reference's u and m (functions of points) and constant.
        problem: the problem (on :class:`~mfgsolve.Rd`).
    """
    mean, scale = reference_gaussian(a)
    constant = getattr(a, "constant", None)
    n = 2**12
    while True:
        reps = []
        for r in range(REPLICATES):
            q = gaussian_quadrature(problem.dim, n, 12345 + r, EVALUATION_FACTORS).mapped(
                mean, scale
            )
            nodes, log_w = q.nodes.numpy(), q.log_w.numpy()
            with np.errstate(divide="ignore"):
                log_m_ref = np.log(m_ref_fn(nodes)) if m_ref_fn else None
            reps.append(
                whole_space_errors(
                    a.value(nodes) if u_ref_fn else None,
                    a.log_density(nodes),
                    u_ref_fn(nodes) if u_ref_fn else None,
                    log_m_ref,
                    log_w,
                    constant,
                    c_ref,
                )
            )
        mean_errors, se = replicate_summary(reps)
        precise = all(se[k] <= max(5e-4 * abs(mean_errors[k]), 1e-4) for k in se)
        if precise or n >= MAX_POINTS:
            break
        n *= 4
    out: dict[str, Any] = dict(mean_errors)
    out.update({f"{k}_se": v for k, v in se.items()})
    digits = "standard errors below 5e-4 of each error or 1e-4" if precise else "fewer digits"
    out["quadrature"] = (
        f"importance sampling from N(mean, scale^2) and N(mean, scale^2 / 2), {REPLICATES} x "
        f"{n} Sobol nodes ({digits}; *_se: standard errors)"
    )
    return out
