"""Sympy helpers shared by the lowering (torch) and the finite-difference reference (numpy)."""

from __future__ import annotations

import sympy as sp
from sympy.core.function import AppliedUndef


def evaluate_numeric_constants(expr: sp.Expr) -> sp.Expr:
    """Replace function applications and powers without free symbols (besseli(0, 1), pi**2) by
    30-digit floats, so that the torch and numpy printers need no special functions for them.

    Args:
        expr: a sympy expression.

    Returns:
        ``expr`` with those closed subexpressions evaluated.
    """

    def is_constant_call(e: sp.Basic) -> bool:
        if isinstance(e, sp.Pow):  # pi**2, sqrt(2): the torch printer emits pow(float, int)
            return not e.free_symbols and not e.is_Rational
        return isinstance(e, sp.Function) and not isinstance(e, AppliedUndef) and not e.free_symbols

    return expr.replace(is_constant_call, lambda e: sp.Float(e.evalf(30), 30))
