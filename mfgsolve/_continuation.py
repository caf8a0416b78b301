"""Vanishing-viscosity continuation for first-order ergodic MFGs (the adversarial solver's default).

With no diffusion (nu = 0) the adversarial game on an ergodic MFG is degenerate: the FP residual
``-div(m grad u)`` vanishes for every m once grad u = 0, so the discriminator learns m only through
a neutral exchange with the generator (``docs/solver.md``). Adding an artificial viscosity eps,

    HJB:  -eps Lap u + H(x, grad u) - F(m) - Hbar,      FP:  -eps Lap m - div(m H_p),

makes the FP equation determine m from u (m = exp(-u / eps) / Z for H = |p|^2 / 2), and the game
contracts. Training lowers eps linearly from ``continuation`` to ``continuation * continuation_final``
at the last iteration (the homotopy idea of the reference solver's Newton continuation, and of
vanishing-viscosity solutions). The signs of the added terms follow the problem's own sign
conventions: the HJB term opposes the curvature of the Hamiltonian in grad u, the FP term has the
sign of the FP residual's ``m Lap u`` coefficient (both are ``-`` for the usual ``+H`` and
``-div(m grad u)`` forms).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ._symbolic import evaluate_numeric_constants
from .problem import ErgodicMFG

__all__ = ["NotApplicable", "continuation_viscosity", "viscosity_signs"]

_SAMPLES = 64


class NotApplicable(ValueError):
    """The continuation does not apply to this problem (the message says why)."""


def _one_sign(expr: sp.Expr, symbols: list[sp.Symbol], ranges: list[tuple[float, float]]) -> int:
    """The sign of ``expr`` on random samples of ``symbols`` in ``ranges`` (0 if not one sign)."""
    expr = evaluate_numeric_constants(expr)
    if expr.is_number:
        value = float(expr)
        return int(np.sign(value)) if np.isfinite(value) else 0
    rng = np.random.default_rng(0)
    values = [rng.uniform(lo, hi, _SAMPLES) for lo, hi in ranges]
    with np.errstate(all="ignore"):
        out = np.broadcast_to(np.asarray(sp.lambdify(symbols, expr, "numpy")(*values)), _SAMPLES)
    if not np.all(np.isfinite(out)):
        return 0
    if np.all(out > 1e-12):
        return 1
    if np.all(out < -1e-12):
        return -1
    return 0


def viscosity_signs(problem: ErgodicMFG) -> tuple[int, int]:
    """Signs (s_hjb, s_fp) such that ``hjb + s_hjb eps Lap u`` and ``fp + s_fp eps Lap m`` are the
    problem's residuals with an added viscosity eps.

    Args:
        problem: an ergodic MFG.

    Returns:
        The two signs (each +1 or -1).

    Raises:
        NotApplicable: the HJB equation already has second derivatives of u, or the curvature of
            the Hamiltonian in grad u or the FP residual's ``m Lap u`` coefficient has no single
            sign on random samples.
    """
    if problem.populations > 1:
        raise NotApplicable("the problem has several populations (the continuation serves one)")
    u, m = problem.value, problem.density
    xs = tuple(u.args)
    hjb = problem.substitute(problem.hjb).doit()
    fp = problem.substitute(problem.fp).doit()
    if any(d.expr == u and d.derivative_count >= 2 for d in hjb.atoms(sp.Derivative)):
        raise NotApplicable("its HJB equation already has second derivatives of u (a viscosity)")
    grads = [sp.Dummy(f"p{i}") for i in range(len(xs))]
    seconds = [sp.Dummy(f"q{i}") for i in range(len(xs))]
    m_sym = sp.Dummy("m", positive=True)

    def to_symbols(expr: sp.Expr) -> tuple[sp.Expr, list[sp.Symbol], list[tuple[float, float]]]:
        repl: dict[sp.Basic, sp.Basic] = {}
        for i, x in enumerate(xs):
            repl[sp.Derivative(u, x)] = grads[i]
            repl[sp.Derivative(u, (x, 2))] = seconds[i]
        others = [d for d in expr.atoms(sp.Derivative) if d not in repl]
        extra = [sp.Dummy(f"d{k}") for k in range(len(others))]
        repl.update(zip(others, extra))
        value = sp.Dummy("u")
        out = expr.xreplace(repl).xreplace({u: value, m: m_sym})
        bounds = [
            (float(lo), float(hi)) for lo, hi in zip(problem.domain.lower, problem.domain.upper)
        ]
        symbols = [*xs, *grads, *seconds, *extra, value, m_sym]
        ranges = [*bounds] + [(-3.0, 3.0)] * (2 * len(xs) + len(extra) + 1) + [(0.1, 3.0)]
        rest = sorted(out.free_symbols - set(symbols), key=sp.default_sort_key)  # the constant
        return out, symbols + rest, ranges + [(-1.0, 1.0)] * len(rest)

    h, h_symbols, h_ranges = to_symbols(hjb)
    curvature = {_one_sign(sp.diff(h, p, 2), h_symbols, h_ranges) for p in grads}
    if len(curvature) != 1 or 0 in curvature:
        raise NotApplicable(
            "the curvature of its Hamiltonian in grad u does not have one sign in every direction"
        )
    f, f_symbols, f_ranges = to_symbols(fp)
    transport = {_one_sign(sp.diff(f, q) / m_sym, f_symbols, f_ranges) for q in seconds}
    if len(transport) != 1 or 0 in transport:
        raise NotApplicable(
            "its FP residual has no m Lap u term of one sign (expected from -div(m grad_p H))"
        )
    return -curvature.pop(), transport.pop()


def continuation_viscosity(start: float, final: float, iteration: int, iterations: int) -> float:
    """The artificial viscosity at ``iteration``: linear from ``start`` down to ``start * final``
    at the last of ``iterations``."""
    progress = min(max(iteration / max(iterations, 1), 0.0), 1.0)
    return start * (final + (1.0 - final) * (1.0 - progress))
