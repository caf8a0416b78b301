"""The additive terms of a residual, lowered one by one: the size against which it is judged.

A residual R = T_1 + ... + T_n is small in absolute terms when its terms are small; how well an
equation holds is the size of R relative to that of its terms,

    relative(R) = RMS(R) / RMS(sqrt(T_1**2 + ... + T_n**2)),

which is 0 for an exact solution and about 1 when the terms do not balance at all (a density that
learned nothing leaves the potential of the HJB equation unbalanced). The terms are those of the
residual as written, expanded once (products distributed, no powers or logarithms expanded).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..problem import Rd
from .residuals import LoweredResidual, _lower_one, relative_fp

__all__ = ["additive_terms", "lower_terms"]

MAX_TERMS = 64  # beyond this, terms are grouped (the scale is a sum of squares either way)


def additive_terms(expr: sp.Expr) -> list[sp.Expr]:
    """The additive terms of ``expr`` after one distributive expansion."""
    expanded = sp.expand(expr, power_base=False, power_exp=False, log=False, multinomial=False)
    terms = list(sp.Add.make_args(expanded))
    if len(terms) > MAX_TERMS:  # keep lowering cheap: group neighbours
        size = -(-len(terms) // MAX_TERMS)
        terms = [sp.Add(*terms[i : i + size]) for i in range(0, len(terms), size)]
    return terms


def lower_terms(
    label: str, expr: sp.Expr, problem, constants: Sequence[sp.Symbol] = ()
) -> list[LoweredResidual]:
    """Each additive term of ``expr`` lowered as a residual (same arguments as the residual)."""
    logs = None
    if label == "FP" and isinstance(problem.domain, Rd):  # the residual solved: FP / m
        expr, logs = relative_fp(expr, problem)
    else:
        expr = problem.substitute(expr)
    return [
        _lower_one(f"{label} term {i}", term, problem, tuple(constants), logs)
        for i, term in enumerate(additive_terms(expr))
    ]
