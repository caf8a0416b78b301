"""Numeric pieces of a problem built by ``from_hamiltonian``, for the monotone scheme.

The Hamiltonian must split as ``H(x, p) = H0(x) + sum_k h_k(x, p_k)`` with every ``h_k`` convex in
``p_k``. Each ``h_k`` gets the Engquist-Osher numerical flux

    g_k(p+, p-) = h_k(min(p+, p*_k)) + h_k(max(p-, p*_k)) - h_k(p*_k),   h_k'(p*_k) = 0,

which is monotone (non-increasing in the forward difference p+, non-decreasing in p-), consistent,
and for ``h = p^2/2`` is the usual ``(min(p+, 0)^2 + max(p-, 0)^2) / 2``. The kinks take one-sided
derivatives (``<=`` and ``>=``), which keeps the Newton Jacobian regular when ``grad u = 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .._symbolic import evaluate_numeric_constants
from .errors import SchemeNotApplicable


def _lambdify(args, expr) -> Callable[..., np.ndarray]:
    fn = sp.lambdify(args, expr, modules="numpy")

    def call(*values):
        shape = np.broadcast_shapes(*(np.shape(v) for v in values))
        with np.errstate(all="ignore"):
            out = fn(*values)
        return np.broadcast_to(np.asarray(out, dtype=float), shape).copy()

    return call


@dataclass
class AxisFlux:
    """The convex 1-D piece ``h_k(args, p)`` with its derivatives and minimiser ``p*(args)``."""

    h: Callable[..., np.ndarray]
    dh: Callable[..., np.ndarray]
    d2h: Callable[..., np.ndarray]
    pstar: Callable[..., np.ndarray]

    def flux(self, args: tuple, pp: np.ndarray, pm: np.ndarray):
        """Return ``g, dg/dp+, dg/dp-, d2g/dp+2, d2g/dp-2`` at the grid values ``args``."""
        ps = self.pstar(*args)
        lo = np.minimum(pp, ps)
        hi = np.maximum(pm, ps)
        g = self.h(*args, lo) + self.h(*args, hi) - self.h(*args, ps)
        a = self.dh(*args, lo)
        b = self.dh(*args, hi)
        a2 = self.d2h(*args, lo) * (pp <= ps)
        b2 = self.d2h(*args, hi) * (pm >= ps)
        return g, a, b, a2, b2


@dataclass
class MonotoneParts:
    """Numeric ``H0``, axis fluxes, coupling ``F`` and ``dF/dm``, and the viscosity ``nu``."""

    h0: Callable[..., np.ndarray]
    axes: list[AxisFlux]
    coupling: Callable[..., np.ndarray]
    coupling_dm: Callable[..., np.ndarray]
    viscosity: float


def _pstar(args: tuple[sp.Symbol, ...], h: sp.Expr, p: sp.Symbol, name: str) -> Callable:
    dh = sp.diff(h, p)
    try:
        sols = [s for s in sp.solve(sp.Eq(dh, 0), p) if not s.has(sp.I)]
    except (NotImplementedError, TypeError, ValueError):
        sols = []
    if len(sols) == 1:
        return _lambdify(args, sols[0])
    dh_fn, d2h_fn = _lambdify((*args, p), dh), _lambdify((*args, p), sp.diff(h, p, 2))

    def numeric(*values):  # Newton on h'(p) = 0 per node (h convex)
        shape = np.broadcast_shapes(*(np.shape(v) for v in values))
        q = np.zeros(shape)
        for _ in range(100):
            g, g2 = dh_fn(*values, q), d2h_fn(*values, q)
            if np.any(g2 <= 0):
                raise SchemeNotApplicable(
                    f"problem '{name}': the Hamiltonian is not strictly convex in {p}, "
                    "so the monotone flux has no minimiser"
                )
            step = g / g2
            q = q - step
            if np.max(np.abs(step)) < 1e-14 * (1 + np.max(np.abs(q))):
                return q
        raise SchemeNotApplicable(
            f"problem '{name}': could not locate the minimum of the Hamiltonian in {p}"
        )

    return numeric


def monotone_parts(problem) -> MonotoneParts:
    """Split the problem's ``hamiltonian_form`` into numeric pieces.

    Args:
        problem: an ErgodicMFG or MFG built with ``from_hamiltonian``.

    Returns:
        The numeric pieces; callables take ``(*space)`` or ``(t, *space)`` grid arrays first.

    Raises:
        SchemeNotApplicable: no Hamiltonian form, a non-separable or non-convex Hamiltonian,
            or a viscosity that is not a non-negative number.
    """
    from ..nonlocal_terms import Expectation

    form = problem.hamiltonian_form
    name = problem.name
    if form is None:
        raise SchemeNotApplicable(
            f"problem '{name}' was not built with from_hamiltonian, so it has no Hamiltonian for the monotone scheme"
        )
    if problem.domain.exits:
        raise SchemeNotApplicable(
            f"problem '{name}' has an exit ({problem.domain.exits[0].label}), which the monotone scheme does not take"
        )
    if any(e.has(Expectation) for e in (*problem.hjbs, *problem.fps)):
        raise SchemeNotApplicable(
            f"problem '{name}' has a nonlocal term (Expectation), which the monotone scheme does not take"
        )
    xs = tuple(problem.space)
    time = getattr(problem, "time", None)
    args = (time, *xs) if time is not None else xs
    ps = tuple(form.momenta)
    H = evaluate_numeric_constants(problem.substitute(sp.sympify(form.hamiltonian)))
    nu_expr = problem.substitute(sp.sympify(form.viscosity))
    if nu_expr.free_symbols:
        raise SchemeNotApplicable(
            f"problem '{name}': the viscosity {nu_expr} is not a number (the monotone scheme needs a constant nu)"
        )
    nu = float(nu_expr)
    if nu < 0:
        raise SchemeNotApplicable(f"problem '{name}': negative viscosity {nu}")
    rng = np.random.default_rng(0)
    lo, hi = problem.domain.lower, problem.domain.upper
    sample_x = [lo[k] + (hi[k] - lo[k]) * rng.random(64) for k in range(len(xs))]
    sample_t = [rng.random(64)] if time is not None else []
    sample_p = [rng.uniform(-5, 5, 64) for _ in ps]
    for i in range(len(ps)):
        for j in range(i + 1, len(ps)):
            cross = _lambdify((*args, *ps), sp.diff(H, ps[i], ps[j]))
            if np.max(np.abs(cross(*sample_t, *sample_x, *sample_p))) > 1e-10:
                raise SchemeNotApplicable(
                    f"problem '{name}': the Hamiltonian couples {ps[i]} and {ps[j]} (not separable)"
                )
    zero = dict.fromkeys(ps, 0)
    H0 = H.subs(zero)
    axes = []
    for k, p in enumerate(ps):
        others = {q: 0 for q in ps if q != p}
        h = sp.expand(H.subs(others) - H0)
        d2 = _lambdify((*args, p), sp.diff(h, p, 2))
        if np.min(d2(*sample_t, *sample_x, sample_p[k])) < -1e-12:
            raise SchemeNotApplicable(f"problem '{name}': the Hamiltonian is not convex in {p}")
        axes.append(
            AxisFlux(
                h=_lambdify((*args, p), h),
                dh=_lambdify((*args, p), sp.diff(h, p)),
                d2h=d2,
                pstar=_pstar(args, h, p, name),
            )
        )
    msym = sp.Symbol("_m", positive=True)
    F = problem.substitute(sp.sympify(form.coupling)).xreplace({problem.density: msym})
    F = evaluate_numeric_constants(F)
    return MonotoneParts(
        h0=_lambdify(args, H0),
        axes=axes,
        coupling=_lambdify((*args, msym), F),
        coupling_dm=_lambdify((*args, msym), sp.diff(F, msym)),
        viscosity=nu,
    )
