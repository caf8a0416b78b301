"""Sympy helpers shared by the lowering and the reference."""

import sympy as sp

from mfgsolve._symbolic import evaluate_numeric_constants


def test_closed_subexpressions_become_floats_and_the_rest_stays():
    x = sp.Symbol("x")
    m = sp.Function("m")(x)
    expr = sp.besseli(0, 1) * x + sp.pi**2 * m + sp.Rational(1, 3) + sp.sin(x)
    out = evaluate_numeric_constants(expr)
    floats = {a for a in out.atoms(sp.Float)}
    assert any(abs(f - 1.2660658777520082) < 1e-15 for f in floats)  # I_0(1)
    assert any(abs(f - 9.869604401089358) < 1e-15 for f in floats)  # pi^2
    assert out.has(m) and out.has(sp.sin(x)) and out.has(sp.Rational(1, 3))
    assert not out.has(sp.besseli) and not out.has(sp.pi)
