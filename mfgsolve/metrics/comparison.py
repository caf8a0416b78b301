"""Error metrics of a solution against an exact solution or a reference, and the standard figures.

Quadrature (stated in the result under ``"quadrature"``): the reference's own grid and weights when
a reference with a grid is given; otherwise the periodic trapezoidal grid (torus, d <= 2),
tensor Gauss-Legendre (box, d <= 2), or 2**15 scrambled Sobol points (d >= 3). Finite-horizon errors
are averaged over time (uniform time nodes) and also reported at the initial and final times.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from ..errors import ProblemError
from ..problem import ErgodicMFG, Rd
from ..result import result_kind
from ..sampling import evaluation_chunk, quadrature, quadrature_size, tile_in_time
from ._integrals import field_errors, known_solution, population_errors
from .exits import exit_metrics
from .whole_space import compare_whole_space, whole_space_nodes

__all__ = ["compare", "residual_norms"]


def _quadrature_for(problem, reference, points) -> tuple[np.ndarray, np.ndarray, str]:
    """Space(-time) nodes, weights normalised so that sum(w) = |domain| (time-averaged)."""
    if points is not None:
        pts = np.asarray(points, dtype=float)
        vol = problem.domain.volume
        return pts, np.full(len(pts), vol / len(pts)), f"user points ({len(pts)}, equal weights)"
    if reference is not None and result_kind(reference) == "reference":
        axes = reference.grid
        mesh = np.meshgrid(*axes, indexing="ij")
        nodes = np.stack([a.ravel() for a in mesh], axis=1)
        weights = np.asarray(reference.quadrature_weights(), dtype=float).ravel()
        times = reference.times
        if times is not None:
            return tile_in_time(nodes, weights, np.asarray(times, dtype=float)) + (
                f"reference grid {tuple(len(a) for a in axes)} x {len(times)} times",
            )
        return nodes, weights, f"reference grid {tuple(len(a) for a in axes)}"
    q = quadrature(problem.domain, quadrature_size("compare", problem.dim), seed=12345)
    nodes, weights = q.nodes.numpy(), q.weights.numpy()
    if not isinstance(problem, ErgodicMFG):
        times = np.linspace(problem.t0, problem.T, 33)
        return tile_in_time(nodes, weights, times) + (f"{q.rule} ({len(nodes)} nodes) x 33 times",)
    return nodes, weights, f"{q.rule} ({len(nodes)} nodes)"


def residual_norms(solution, nodes: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """RMS (quadrature-weighted, per unit volume) of the HJB and FP residuals of a network
    solution, and relative to the size of their terms; with several populations over all of them
    (sums of squares over the populations)."""
    from ..lowering import fields_of, lower_populations
    from ..lowering.terms import lower_terms

    if not isinstance(solution.problem, ErgodicMFG):
        from .space_time import residual_norms as space_time_residual_norms

        return space_time_residual_norms(solution, nodes, weights)
    value_net, density_net, log_z = solution.fields()
    problem = solution.problem
    by_population = lower_populations(problem)
    dtype = next(value_net.parameters()).dtype
    device = next(value_net.parameters()).device
    K = len(by_population)
    given = solution.constant if K > 1 else [solution.constant]
    parts = []
    for k, res in enumerate(by_population):
        own = problem.constants[k] if problem.constants else None
        unknown_scalars = (own,) if own is not None else ()
        terms = {
            "hjb": lower_terms("HJB", problem.hjbs[k], problem, unknown_scalars),
            "fp": lower_terms("FP", problem.fps[k], problem),
        }
        parts.append((res, terms, given[k] if given is not None else None))
    log_z_field = log_z if K == 1 else torch.as_tensor(log_z, dtype=dtype, device=device)
    fields = fields_of(problem, value_net, density_net, log_z_field)
    sq = {"hjb": 0.0, "fp": 0.0}
    scale = {"hjb": 0.0, "fp": 0.0}
    pieces = max(1, len(nodes) // evaluation_chunk(problem.dim))
    for chunk, w in zip(np.array_split(nodes, pieces), np.array_split(weights, pieces)):
        w = torch.as_tensor(w)
        pts = torch.as_tensor(chunk, dtype=dtype, device=device).requires_grad_(True)
        caches = by_population[0].caches(pts, fields, create_graph=False)
        for res, terms, value in parts:
            constant = [] if value is None else [torch.tensor(value, dtype=dtype, device=device)]
            consts = constant * len(res.hjb.constants)
            hjb = res.hjb(pts, caches, consts)
            if res.constant_coefficient is not None:
                hjb = hjb + res.constant_coefficient * value
            fp = res.fp(pts, caches)
            for key, r in (("hjb", hjb), ("fp", fp)):
                sq[key] += float((w * r.detach().double().cpu() ** 2).sum())
                consts = constant if key == "hjb" else []
                size = sum(t(pts, caches, consts).detach().double().cpu() ** 2 for t in terms[key])
                scale[key] += float((w * size).sum())
    out = {}
    for key in ("hjb", "fp"):
        out[f"{key}_residual"] = (sq[key] / K / float(np.sum(weights))) ** 0.5
        out[f"{key}_relative"] = (sq[key] / scale[key]) ** 0.5 if scale[key] > 0 else 0.0
    return out


def compare(a: Any, b: Any = None, *, points: Any = None) -> dict[str, Any]:
    """Errors of ``a`` against ``b`` (a reference or another solution) or, if None, ``problem.exact``.

    Args:
        a: a ``Solution`` or ``ReferenceSolution`` (anything with problem, value, density, constant).
        b: the reference; None uses ``a.problem.exact_solution`` when the problem carries one (an
            object with value/density methods), else the closed forms in ``a.problem.exact``.
        points: optional (n, d) evaluation points (equal weights) instead of the default quadrature.

    Returns:
        dict with ``m_rel_l2``, ``u_l2``, ``u_rel_l2`` (when the reference u is not ~0),
        ``constant_abs`` (ergodic), ``hjb_residual`` and ``fp_residual`` (network solutions), and
        ``quadrature`` (how the integrals were taken).
    """
    if result_kind(a) == "fbsde":  # FBSDEs: relative error of u(t0, x0), errors along paths
        from ..fbsde import compare_fbsde

        return compare_fbsde(a)
    problem = a.problem
    if b is None and getattr(problem, "exact_solution", None) is not None:
        b = problem.exact_solution  # a known solution given as an object (e.g. from Riccati ODEs)
    if isinstance(problem.domain, Rd):
        return _compare_on_whole_space(a, b, problem, points)
    if _uses_rqmc(problem, b, points):
        return _compare_rqmc(a, b, problem)
    nodes, weights, rule = _quadrature_for(problem, b, points)
    u_ref_fn, m_ref_fn, c_ref = _reference_functions(problem, b)
    u_ref = u_ref_fn(nodes) if u_ref_fn else None
    m_ref = m_ref_fn(nodes) if m_ref_fn else None
    constant = getattr(a, "constant", None)
    if getattr(problem, "populations", 1) > 1:
        out: dict[str, Any] = population_errors(
            a.value(nodes), a.density(nodes), u_ref, m_ref, weights, constant, c_ref
        )
        for k, c in enumerate(constant or []):
            out[f"constant_{k + 1}"] = float(c)
        for k, c in enumerate(c_ref or []):
            out[f"{_constant_key(b)}_{k + 1}"] = float(c)
    else:
        out = field_errors(a.value(nodes), a.density(nodes), u_ref, m_ref, weights, constant, c_ref)
        if constant is not None:
            out["constant"] = float(constant)
        if c_ref is not None:
            out[_constant_key(b)] = float(c_ref)
    if not isinstance(problem, ErgodicMFG):
        out.update(_endpoint_errors(a, b, problem))
        if problem.domain.exits:
            out.update(exit_metrics(a, b, problem))
    if result_kind(a) == "network":
        out.update(residual_norms(a, nodes, weights))
    out["quadrature"] = rule
    return out


def _compare_on_whole_space(a, b, problem, points) -> dict[str, Any]:
    """:func:`compare` on R^d: importance sampling with standard errors (ergodic problems)."""
    if points is not None:
        raise ProblemError(
            f"problem '{problem.name}' is posed on Rd, where errors are importance-sampled from "
            "the solution's reference measure; fix: call compare without points="
        )
    if not isinstance(problem, ErgodicMFG):
        raise ProblemError(
            f"problem '{problem.name}': compare on Rd covers ergodic problems; fix: evaluate "
            "the solution's value and density at your own points"
        )
    u_ref_fn, m_ref_fn, c_ref = _reference_functions(problem, b)
    out = compare_whole_space(a, u_ref_fn, m_ref_fn, c_ref, problem)
    constant = getattr(a, "constant", None)
    if constant is not None:
        out["constant"] = float(constant)
    if c_ref is not None:
        out[_constant_key(b)] = float(c_ref)
    if result_kind(a) == "network":
        nodes = whole_space_nodes(a)[0]
        out.update(residual_norms(a, nodes, np.full(len(nodes), 1.0 / len(nodes))))
    return out


def _constant_key(b) -> str:
    """``constant_exact`` against the problem's closed forms, ``constant_ref`` against a result."""
    return "constant_exact" if b is None or result_kind(b) == "exact" else "constant_ref"


def _reference_functions(problem, b) -> tuple[Any, Any, float | None]:
    """u and m of what is compared against, as functions of points, and its constant: the
    reference ``b``, or (``b`` None) the problem's closed forms."""
    if b is not None:
        return b.value, b.density, getattr(b, "constant", None)
    u_ex, m_ex, c_ref = known_solution(problem)
    if u_ex is None and m_ex is None:
        raise ProblemError(
            f"problem '{problem.name}': no exact solution to compare with; fix: pass a reference (reference_solve) or add exact= to the problem"
        )
    return u_ex, m_ex, c_ref


RQMC_REPLICATES = 8
RQMC_MAX_POINTS = 2**16  # per replicate


def _uses_rqmc(problem, reference, points) -> bool:
    """Errors by randomized QMC: ergodic problems in d >= 3 against closed forms or a solution."""
    return (
        points is None
        and isinstance(problem, ErgodicMFG)
        and problem.dim >= 3
        and not (reference is not None and result_kind(reference) == "reference")
    )


def _compare_rqmc(a, b, problem) -> dict[str, Any]:
    """Errors as the mean over independently scrambled Sobol sets, with their standard error.

    The sets grow (x4) until the standard error of m_rel_l2 and u_l2 is below 5e-4 of the value
    (three significant digits) or RQMC_MAX_POINTS per set; ``*_se`` report it, ``log_z_se`` that
    of the density's normalising constant (as a relative error of Z); ``mean_u`` is the integral of
    u per unit volume (0 by the constraint) with its standard error ``mean_u_se``.
    """
    u_ref_fn, m_ref_fn, c_ref = _reference_functions(problem, b)
    constant = getattr(a, "constant", None)
    n = 2**12
    while True:
        reps, z_reps, u_reps = [], [], []
        for r in range(RQMC_REPLICATES):
            q = quadrature(problem.domain, n, rule="sobol", seed=12345 + r)
            nodes, weights = q.nodes.numpy(), q.weights.numpy()
            m, u = a.density(nodes), a.value(nodes)
            u_reps.append(float(np.sum(weights * u)) / problem.domain.volume)
            reps.append(
                field_errors(
                    u,
                    m,
                    u_ref_fn(nodes) if u_ref_fn else None,
                    m_ref_fn(nodes) if m_ref_fn else None,
                    weights,
                    constant,
                    c_ref,
                )
            )
            z_reps.append(float(np.sum(weights * m)))  # int m = Z_rqmc / Z_solution
        keys = [k for k in ("m_rel_l2", "u_l2") if k in reps[0]]
        se = {
            k: float(np.std([r[k] for r in reps], ddof=1) / np.sqrt(RQMC_REPLICATES))
            for k in reps[0]
        }
        mean = {k: float(np.mean([r[k] for r in reps])) for k in reps[0]}
        precise = all(se[k] <= 5e-4 * max(abs(mean[k]), 1e-12) for k in keys)
        if precise or n >= RQMC_MAX_POINTS:
            break
        n *= 4
    out: dict[str, Any] = dict(mean)
    for k in keys:
        out[f"{k}_se"] = se[k]
    out["log_z_se"] = float(np.std(z_reps, ddof=1) / np.sqrt(RQMC_REPLICATES) / np.mean(z_reps))
    out["mean_u"] = float(np.mean(u_reps))  # the constraint int u = 0, per unit volume
    out["mean_u_se"] = float(np.std(u_reps, ddof=1) / np.sqrt(RQMC_REPLICATES))
    if constant is not None:
        out["constant"] = float(constant)
    if c_ref is not None:
        out[_constant_key(b)] = float(c_ref)
    if result_kind(a) == "network":
        q = quadrature(problem.domain, 2**15, rule="sobol", seed=12345)
        out.update(residual_norms(a, q.nodes.numpy(), q.weights.numpy()))
    digits = "3 significant digits" if precise else "fewer than 3 significant digits"
    out["quadrature"] = (
        f"randomized Sobol, {RQMC_REPLICATES} x {n} nodes ({digits}; *_se: standard errors)"
    )
    return out


def _endpoint_errors(a, b, problem) -> dict[str, float]:
    q = quadrature(
        problem.domain,
        quadrature_size("compare-endpoints", problem.dim),
        seed=7,
    )
    nodes, w = q.nodes.numpy(), q.weights.numpy()
    u_ex, m_ex, _ = known_solution(problem) if b is None else (b.value, b.density, None)
    errors = population_errors if getattr(problem, "populations", 1) > 1 else field_errors
    out = {}
    for label, t in (("initial", problem.t0), ("final", problem.T)):
        pts = np.concatenate([np.full((len(nodes), 1), t), nodes], axis=1)
        errs = errors(
            a.value(pts),
            a.density(pts),
            u_ex(pts) if u_ex else None,
            m_ex(pts) if m_ex else None,
            w,
        )
        out.update(
            {
                f"{k}_{label}": v
                for k, v in errs.items()
                if re.sub(r"_\d+$", "", k) in ("m_rel_l2", "u_l2", "u_rel_l2")
            }
        )
    return out
