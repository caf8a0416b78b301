"""Nonlocal terms in residuals: expectations against the density, lowered to quadrature.

``Expectation(phi, m)`` is ``int phi(x) m(t, x) dx`` (integrated over the space coordinates; a number
for each t), e.g. ``Expectation(x, m)`` is the mean of the population. ``Expectation(K(x, y), m, y)``
integrates over the variable(s) ``y`` with the density evaluated at y, ``int K(x, y) m(t, y) dy``:
a convolution, a function of (t, x). Both can be used inside residuals (not differentiated).

Lowering (:func:`extract_expectations`, :class:`LoweredExpectation`): each ``Expectation`` in a
residual is replaced by a placeholder symbol; its value at a batch of points is a quadrature over a
fixed node set in space, at the time of each point, weighted by the normalised density there:
``E(t, x) = sum_j p_j(t) phi(y_j; t, x)`` with ``p_j(t) = w_j m(t, y_j)`` (so ``sum_j p_j = 1``
exactly). On a torus (d <= 2) the nodes are the periodic trapezoidal grid (spectral accuracy for
smooth integrands), on a box Gauss-Legendre, in d >= 3 scrambled Sobol points (quasi-Monte Carlo).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp
import torch
from sympy.core.function import AppliedUndef

from .problem import ProblemError

__all__ = ["Expectation", "LoweredExpectation", "extract_expectations"]


class Expectation(sp.Function):
    """Expectation of ``integrand`` under the density: ``int integrand m(t, y) dy``.

    Args (as sympy arguments):
        integrand: a sympy expression; in the space coordinates (the default) or in ``variables``.
        density: the problem's density, as written in the problem (e.g. ``m`` = m(t, x)).
        variables: optional integration variable(s) (a Symbol or a tuple, one per space
            dimension): the density is then evaluated at them, and the other coordinates in the
            integrand stay free (a convolution). Default: the space coordinates themselves.

    Example:
        ``Expectation(x, m)`` (the mean), ``Expectation(sp.exp(-(x - y) ** 2), m, y)``.
    """

    nargs = (2, 3)

    @classmethod
    def eval(cls, *args):  # noqa: D102 - stays unevaluated (lowered by the solver)
        return None

    @property
    def integrand(self) -> sp.Expr:
        return self.args[0]

    @property
    def density(self) -> sp.Basic:
        return self.args[1]

    @property
    def variables(self) -> tuple[sp.Symbol, ...] | None:
        if len(self.args) < 3:
            return None
        v = self.args[2]
        return tuple(v) if isinstance(v, (sp.Tuple, tuple)) else (v,)

    @property
    def free_symbols(self) -> set[sp.Basic]:
        free = self.integrand.free_symbols | self.density.free_symbols
        return free - set(self.variables or ())

    def _eval_derivative(self, s):  # differentiating through an expectation is not supported
        raise ProblemError(
            f"{self} cannot be differentiated (with respect to {s}): nonlocal terms are lowered by the network solver only, not by differentiation or the finite-difference reference; fix: use it undifferentiated in a residual, and compare against an exact solution"
        )


@dataclass
class LoweredExpectation:
    """One ``Expectation`` ready for torch.

    Attributes:
        symbol: the placeholder in the rewritten residual.
        expr: the original ``Expectation``.
        fn: torch function ``fn(t, y_1..y_d, x_1..x_d)`` of the integrand (broadcasting).
        local: True when the integrand depends on the point's space coordinates (a convolution).
        population: with several populations, the index of the density integrated against
            (None for a one-population problem).
    """

    symbol: sp.Symbol
    expr: Expectation
    fn: Callable[..., torch.Tensor]
    local: bool
    population: int | None = None

    def __call__(
        self,
        points: torch.Tensor,
        slice_index: torch.Tensor,
        slice_times: torch.Tensor,
        nodes: torch.Tensor,
        probabilities: torch.Tensor,
    ) -> torch.Tensor:
        """Values at ``points`` (n, 1 + d).

        Args:
            points: the evaluation points, time first.
            slice_index: (n,) index of each point's time in ``slice_times``.
            slice_times: (k,) distinct times.
            nodes: (q, d) space quadrature nodes.
            probabilities: (k, q) normalised weights w_j m(t_k, y_j) per time (rows sum to 1).

        Returns:
            (n,) tensor.
        """
        d = nodes.shape[1]
        ys = [nodes[:, i] for i in range(d)]
        if not self.local:  # one number per time slice
            tk = slice_times[:, None]
            ys_b = [y[None, :] for y in ys]
            phi = _broadcast(self.fn(tk, *ys_b, *([tk] * d)), (len(slice_times), len(nodes)))
            per_slice = (probabilities * phi).sum(-1)
            return per_slice[slice_index]
        t = points[:, :1]
        xs = [points[:, 1 + i : 2 + i] for i in range(d)]
        phi = _broadcast(self.fn(t, *[y[None, :] for y in ys], *xs), (points.shape[0], len(nodes)))
        return (probabilities[slice_index] * phi).sum(-1)


def _broadcast(value, shape: tuple[int, int]) -> torch.Tensor:
    if not torch.is_tensor(value):
        value = torch.as_tensor(value, dtype=torch.float64)
    return value.expand(shape)


def extract_expectations(
    expr: sp.Expr, problem, label: str
) -> tuple[sp.Expr, list[LoweredExpectation]]:
    """Replace every ``Expectation`` in ``expr`` by a placeholder and lower each one.

    Args:
        expr: a residual of ``problem`` (params already substituted or not).
        problem: the finite-horizon problem (gives the time symbol and space coordinates).
        label: "HJB" or "FP", for messages.

    Returns:
        The rewritten expression and the lowered expectations (in placeholder order).
    """
    from ._symbolic import evaluate_numeric_constants

    found = sorted(expr.atoms(Expectation), key=sp.default_sort_key)
    if not found:
        return expr, []
    space = tuple(problem.domain.symbols)
    time = getattr(problem, "time", None)
    if time is None:
        raise ProblemError(
            f"problem '{problem.name}': {label} residual uses Expectation, which the ergodic solver does not lower; fix: use a finite-horizon MFG"
        )
    lowered: list[LoweredExpectation] = []
    replacements = {}
    densities = [d.func for d in problem.densities]
    several = len(densities) > 1
    for k, e in enumerate(found):
        density = e.density
        if not (isinstance(density, AppliedUndef) and density.func in densities):
            names = " or ".join(map(str, densities))
            raise ProblemError(
                f"problem '{problem.name}': {label} residual has {e} against {density}, not "
                f"the density {names}; fix: write Expectation(phi, {densities[0]})"
            )
        population = densities.index(density.func) if several else None
        variables = e.variables or space
        if len(variables) != len(space) or not all(isinstance(v, sp.Symbol) for v in variables):
            raise ProblemError(
                f"problem '{problem.name}': {e} needs {len(space)} integration variable(s), got {variables}; fix: pass one symbol per space dimension"
            )
        integrand = evaluate_numeric_constants(problem.substitute(sp.sympify(e.integrand)))
        if integrand.atoms(AppliedUndef) or integrand.has(sp.Derivative, Expectation):
            raise ProblemError(
                f"problem '{problem.name}': the integrand of {e} contains unknown functions; fix: integrate a closed-form function of the coordinates"
            )
        ys = tuple(sp.Dummy(f"y{i}") for i in range(len(space)))
        xs = tuple(sp.Dummy(f"x{i}") for i in range(len(space)))
        if e.variables is None:  # integrand in the space coordinates, all integrated
            body = integrand.xreplace(dict(zip(space, ys)))
        else:  # integration variables -> y, remaining space coordinates -> x (outer point)
            body = integrand.xreplace({**dict(zip(variables, ys)), **dict(zip(space, xs))})
        tsym = sp.Dummy("t")
        body = body.xreplace({time: tsym})
        extra = body.free_symbols - {tsym, *ys, *xs}
        if extra:
            raise ProblemError(
                f"problem '{problem.name}': the integrand of {e} has free symbols {sorted(map(str, extra))}; fix: give them values with params"
            )
        fn = sp.lambdify([tsym, *ys, *xs], body, modules="torch")
        symbol = sp.Dummy(f"E{k}")
        local = bool(body.free_symbols & set(xs))
        lowered.append(LoweredExpectation(symbol, e, fn, local, population))
        replacements[e] = symbol
    return expr.xreplace(replacements), lowered
