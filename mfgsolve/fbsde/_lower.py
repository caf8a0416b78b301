"""Lower FBSDE sympy expressions to vectorised torch callables.

Convention (see docs/fbsde.md): the state ``x`` and the gradient ``z`` are *vector symbols*; an
expression is evaluated component-wise on ``(batch, d)`` tensors, scalars (``t``, ``y``) are
``(batch, 1)`` tensors and broadcast. Two reductions turn vectors into scalars or particles into
populations:

- ``vsum(e)``: sum over the d components (``vsum(x**2)`` is ``|x|^2``), shape ``(batch, 1)``;
- ``E(e)``: mean over the batch of particles (the McKean-Vlasov expectation), same shape as ``e``;
  the particle axis is the second to last, so ``(steps, batch, d)`` stacks take one mean per step.

Each expression is compiled once into a tree of small closures (no string code generation); one call
evaluates the whole batch in a handful of torch operations, whatever d is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sympy as sp
import torch


class vsum(sp.Function):  # noqa: N801 - reads like the paper's sum over components
    """Sum over the d components of a vector expression: ``vsum(x**2) = |x|^2``."""

    nargs = 1


class E(sp.Function):  # noqa: N801 - the expectation operator as written on paper
    """Mean over the population (batch of particles) of an expression: McKean-Vlasov terms."""

    nargs = 1


Evaluator = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]

_UNARY: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    sp.exp: torch.exp,
    sp.log: torch.log,
    sp.sin: torch.sin,
    sp.cos: torch.cos,
    sp.tan: torch.tan,
    sp.tanh: torch.tanh,
    sp.sinh: torch.sinh,
    sp.cosh: torch.cosh,
    sp.atan: torch.atan,
    sp.Abs: torch.abs,
    sp.sign: torch.sign,
    sp.erf: torch.erf,
}


class LoweringError(ValueError):
    """An expression uses something the FBSDE lowering does not support."""


def is_vector(expr: sp.Basic, vectors: set[sp.Symbol]) -> bool:
    """Whether ``expr`` is a d-vector (uses a vector symbol outside ``vsum``)."""
    if isinstance(expr, sp.Symbol):
        return expr in vectors
    if isinstance(expr, vsum):
        return False
    return any(is_vector(a, vectors) for a in expr.args)


def compile_expr(expr: sp.Basic, symbols: Mapping[sp.Symbol, str]) -> Evaluator:
    """Compile a sympy expression into a torch evaluator.

    Args:
        expr: the expression (after parameter substitution).
        symbols: maps each allowed sympy Symbol to its key in the evaluation environment.

    Returns:
        ``fn(env) -> Tensor`` where ``env`` maps keys to tensors of shape ``(batch, 1)`` or
        ``(batch, d)``; the result broadcasts accordingly (a constant is returned as a 0-d tensor).

    Raises:
        LoweringError: unknown symbol or unsupported function.
    """
    expr = sp.sympify(expr)
    if isinstance(expr, sp.Symbol):
        if expr not in symbols:
            raise LoweringError(f"unknown symbol {expr}")
        key = symbols[expr]
        return lambda env: env[key]
    if expr.is_number:
        try:
            value = float(expr)
        except TypeError:
            raise LoweringError(f"{expr} is not a real number") from None
        return lambda env: torch.tensor(value, dtype=_dtype(env))
    args = [compile_expr(a, symbols) for a in expr.args]
    if isinstance(expr, sp.Add):

        def add(env):
            out = args[0](env)
            for a in args[1:]:
                out = out + a(env)
            return out

        return add
    if isinstance(expr, sp.Mul):

        def mul(env):
            out = args[0](env)
            for a in args[1:]:
                out = out * a(env)
            return out

        return mul
    if isinstance(expr, sp.Pow):
        base, exponent = args
        power = expr.args[1]
        if power == sp.Rational(1, 2):
            return lambda env: torch.sqrt(base(env))
        if power.is_Integer:
            k = int(power)
            return lambda env: base(env) ** k
        return lambda env: base(env) ** exponent(env)
    if isinstance(expr, vsum):
        (inner,) = args
        return lambda env: inner(env).sum(dim=-1, keepdim=True)
    if isinstance(expr, E):
        (inner,) = args
        return lambda env: inner(env).mean(dim=-2, keepdim=True)
    if isinstance(expr, (sp.Max, sp.Min)):
        op = torch.maximum if isinstance(expr, sp.Max) else torch.minimum

        def extremum(env):
            out = torch.as_tensor(args[0](env))
            for a in args[1:]:
                out = op(out, torch.as_tensor(a(env)))
            return out

        return extremum
    for kind, fn in _UNARY.items():
        if isinstance(expr, kind):
            (inner,) = args
            return lambda env, fn=fn: fn(inner(env))
    raise LoweringError(f"function {expr.func} is not supported in FBSDE expressions")


def _dtype(env: Mapping[str, torch.Tensor]) -> torch.dtype:
    for value in env.values():
        if isinstance(value, torch.Tensor):
            return value.dtype
    return torch.get_default_dtype()
