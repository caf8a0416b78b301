"""Error integrals shared by the solvers' history and :func:`mfgsolve.compare`.

All integrals are taken in float64 with a stated quadrature rule (see :mod:`mfgsolve.sampling`).
Definitions (``|.|`` is the L2 norm on the domain, time-averaged for finite-horizon problems):
- ``m_rel_l2 = |m - m_ref| / |m_ref|``;
- ``u_l2 = |u - u_ref|`` (absolute: the exact u may be 0);
- ``u_rel_l2 = |u - u_ref| / |u_ref|`` when ``|u_ref|`` is not ~0;
- ``constant_abs = |Hbar - Hbar_ref|`` (ergodic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

ArrayFn = Callable[[np.ndarray], np.ndarray]


def _lambdified(coords, expr) -> ArrayFn:
    fn = sp.lambdify(coords, sp.sympify(expr), ["scipy", "numpy"])

    def evaluate(points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=float)
        vals = fn(*[points[:, i] for i in range(points.shape[1])])
        return np.broadcast_to(np.asarray(vals, dtype=float), (points.shape[0],)).copy()

    return evaluate


def exact_functions(problem) -> tuple[ArrayFn | None, ArrayFn | None, Any]:
    """numpy callables of points for the problem's exact u and m (or None), and the exact constant.

    With several populations the callables return (n, K) (None unless every population's closed
    form is given) and the constant is a tuple of K numbers (or None)."""
    coords = tuple(problem.values[0].args)
    several = getattr(problem, "populations", 1) > 1
    out: list[ArrayFn | None] = []
    for role in ("value", "density"):
        expr = problem.exact.get(role) if problem.exact else None
        if expr is None or (several and any(e is None for e in expr)):
            out.append(None)
        elif several:
            fns = [_lambdified(coords, e) for e in expr]
            out.append(lambda points, fns=fns: np.stack([f(points) for f in fns], axis=1))
        else:
            out.append(_lambdified(coords, expr))
    constant = problem.exact.get("constant") if problem.exact else None
    if several and constant is not None and any(c is None for c in constant):
        constant = None
    return out[0], out[1], constant


def population_errors(
    u: np.ndarray,
    m: np.ndarray,
    u_ref: np.ndarray | None,
    m_ref: np.ndarray | None,
    weights: np.ndarray,
    constants: Sequence[float | None] | None = None,
    constants_ref: Sequence[float] | None = None,
) -> dict[str, float]:
    """:func:`field_errors` of each population (columns of the (n, K) arrays), suffixed ``_1``,
    ``_2``, ..., and the worst population's under the plain names (``m_rel_l2`` = max over k)."""
    K = u.shape[1]
    out: dict[str, float] = {}
    per = []
    for k in range(K):
        c = constants[k] if constants is not None else None
        c_ref = constants_ref[k] if constants_ref is not None else None
        errs = field_errors(
            u[:, k],
            m[:, k],
            u_ref[:, k] if u_ref is not None else None,
            m_ref[:, k] if m_ref is not None else None,
            weights,
            c,
            c_ref,
        )
        per.append(errs)
        out.update({f"{key}_{k + 1}": v for key, v in errs.items()})
    for key in per[0]:
        if all(key in errs for errs in per):
            out[key] = max(errs[key] for errs in per)
    return out


def known_solution(problem) -> tuple[ArrayFn | None, ArrayFn | None, float | None]:
    """What the problem says its solution is: ``problem.exact_solution`` when it carries one (an
    object with ``value``/``density`` methods and optionally ``constant``, e.g. Riccati ODEs or a
    reference attached by a benchmark), else the closed forms of ``problem.exact``. Returns
    (u, m, constant), each None when unknown. The one place that answers "what is exact"."""
    obj = getattr(problem, "exact_solution", None)
    if obj is not None:
        return obj.value, obj.density, getattr(obj, "constant", None)
    return exact_functions(problem)


def field_errors(
    u: np.ndarray,
    m: np.ndarray,
    u_ref: np.ndarray | None,
    m_ref: np.ndarray | None,
    weights: np.ndarray,
    constant: float | None = None,
    constant_ref: float | None = None,
) -> dict[str, float]:
    """Errors of (u, m, constant) against reference values at quadrature nodes with ``weights``."""
    out: dict[str, float] = {}
    w = np.asarray(weights, dtype=float)
    if m_ref is not None:
        norm = np.sqrt(np.sum(w * m_ref**2))
        out["m_rel_l2"] = float(np.sqrt(np.sum(w * (m - m_ref) ** 2)) / norm)
        out["m_max_rel"] = float(np.max(np.abs(m - m_ref)) / np.max(np.abs(m_ref)))
    if u_ref is not None:
        err = float(np.sqrt(np.sum(w * (u - u_ref) ** 2)))
        out["u_l2"] = err
        norm = float(np.sqrt(np.sum(w * u_ref**2)))
        if norm > 1e-8 * max(1.0, float(np.sqrt(np.sum(w)))):
            out["u_rel_l2"] = err / norm
    if constant is not None and constant_ref is not None:
        out["constant_abs"] = float(abs(constant - constant_ref))
    return out
