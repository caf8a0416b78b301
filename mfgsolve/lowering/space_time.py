"""Finite-horizon residuals in space-time: HJB and FP with their nonlocal terms, wall conditions.

Unknowns on [t0, T] x domain, time first in every point. The HJB and FP residuals are lowered as
for ergodic problems (:mod:`mfgsolve.lowering.residuals`); their ``Expectation`` terms
(:mod:`mfgsolve.nonlocal_terms`) are evaluated with the density network's per-time quadrature,
weighted by the current normalised density. On a Box the Neumann and no-flux wall residuals are
lowered too (used by ``walls="loss"``):
``d u / d x_i = 0`` and ``J_i = -nu d m / d x_i - m dH/dp_i(x, grad u) = 0`` on the walls
(``d m / d x_i = 0`` for problems written as raw residuals), and each exit's cost (u = b there,
m = 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
import torch
from torch import nn

from .._symbolic import evaluate_numeric_constants
from ..nonlocal_terms import LoweredExpectation, extract_expectations
from ..problem import MFG, Box, ProblemError, split_field_name
from .residuals import LoweredResidual, Residuals, _lower_one

__all__ = [
    "FiniteHorizonResiduals",
    "SpaceTimeFields",
    "evaluate_residuals",
    "lower_finite_horizon",
    "lower_finite_horizon_populations",
    "points_function",
    "residuals_and_caches",
    "RowView",
]


class FiniteHorizonResiduals:
    """Lowered HJB and FP residuals (with their expectations) and, on a box, boundary residuals.

    Attributes:
        hjb, fp: lowered residuals; their ``constants`` are the expectation placeholders.
        hjb_expectations, fp_expectations: the lowered expectations, in placeholder order.
        neumann: per dimension, the lowered du/dx_i (box only, else empty).
        flux: per dimension, the lowered FP flux J_i (box only, else empty).
    """

    def __init__(self, problem: MFG, population: int = 0):
        self.problem, self.population = problem, population
        hjb_label, fp_label = problem.label("HJB", population), problem.label("FP", population)
        hjb_expr, self.hjb_expectations = extract_expectations(
            problem.substitute(problem.hjbs[population]), problem, hjb_label
        )
        fp_expr, self.fp_expectations = extract_expectations(
            problem.substitute(problem.fps[population]), problem, fp_label
        )
        self.hjb_expr, self.fp_expr = hjb_expr, fp_expr  # expectations as placeholder symbols
        self.hjb = _lower_one(
            hjb_label, hjb_expr, problem, tuple(e.symbol for e in self.hjb_expectations)
        )
        self.fp = _lower_one(
            fp_label, fp_expr, problem, tuple(e.symbol for e in self.fp_expectations)
        )
        for res in (self.hjb, self.fp):
            for name, index in res.terms:
                if split_field_name(name)[0] in ("m", "logm") and index.count(0) >= 2:
                    raise ProblemError(
                        f"problem '{problem.name}': {res.label} residual has a second time derivative of m; fix: the finite-horizon solver supports m_t only"
                    )
        # per axis with a wall (on a Box; periodic axes have none): du/dx_i and the FP flux J_i
        self.neumann: dict[int, LoweredResidual] = {}
        self.flux: dict[int, LoweredResidual] = {}
        # per exit face: (face, torch function of (t, x) points giving the exit cost)
        self.exits: list[tuple] = []
        if isinstance(problem.domain, Box):
            if problem.populations > 1:
                raise ProblemError(
                    f"problem '{problem.name}': several populations over a finite horizon are "
                    "solved on a Torus; fix: use a Torus domain (the network solver's wall and "
                    "exit conditions serve one population)"
                )
            self._lower_walls(problem)
            args = (problem.time, *problem.space)
            for face in problem.domain.exits:
                value = problem.substitute(face.condition.value)
                self.exits.append((face, points_function(args, value)))

    def _lower_walls(self, problem: MFG) -> None:
        """The wall residuals of each axis that has a wall: du/dx_i = 0, and no flux
        J_i = -nu dm/dx_i - m dH/dp_i(x, grad u) = 0 for a problem built with
        ``from_hamiltonian``; a problem written as raw residuals has no flux to take, and its
        wall is dm/dx_i = 0 (homogeneous Neumann, no flux where the drift has no normal part:
        the reference's wall too)."""
        form = problem.hamiltonian_form
        u, m = problem.value, problem.density
        grad_u = [u.diff(x) for x in problem.domain.symbols]
        walled = sorted({f.axis for f in problem.domain.faces if _has_wall(f)})
        for i in walled:
            x = problem.domain.symbols[i]
            self.neumann[i] = _lower_one(f"Neumann[{x}]", u.diff(x), problem, ())
            if form is None:
                self.flux[i] = _lower_one(f"Neumann[{m.func}, {x}]", m.diff(x), problem, ())
                continue
            p = form.momenta[i]
            h_p = sp.diff(form.hamiltonian, p).subs(
                dict(zip(form.momenta, grad_u)), simultaneous=True
            )
            flux = -form.viscosity * m.diff(x) - m * h_p
            self.flux[i] = _lower_one(f"no-flux[{x}]", flux, problem, ())

    def caches(self, points, fields, frozen=(), create_graph=True):
        """Derivative caches of u, m, log m (as :meth:`mfgsolve.lowering.Residuals.caches`)."""
        return Residuals.caches(self, points, fields, frozen, create_graph)  # type: ignore[arg-type]


def _has_wall(face) -> bool:
    """Whether a box face is a wall, or has one beside a door."""
    return not face.is_exit or face.condition.where is not None


def points_function(args: tuple, expr: sp.Expr):
    """``expr`` (no unknowns) in ``args`` (time and the space coordinates) as a torch function of
    points (n, 1 + d), time first -> (n,)."""
    fn = sp.lambdify(list(args), evaluate_numeric_constants(expr), modules="torch")

    def evaluate(points: torch.Tensor) -> torch.Tensor:
        out = fn(*(points[:, i] for i in range(points.shape[1])))
        if not torch.is_tensor(out):
            out = torch.as_tensor(out, dtype=points.dtype, device=points.device)
        return out.to(points.dtype).expand(points.shape[0])

    return evaluate


def lower_finite_horizon(problem: MFG, population: int | None = None) -> FiniteHorizonResiduals:
    """Lower a finite-horizon problem's residuals, expectations and boundary conditions.

    Args:
        problem: a validated :class:`~mfgsolve.MFG`.
        population: with several populations, which one's residuals (0-based); their terms
            name the fields "u1", "m2", ... (:func:`mfgsolve.problem.field_name`).
    """
    if not isinstance(problem, MFG):
        raise ProblemError(
            f"problem '{getattr(problem, 'name', '?')}' is not a finite-horizon MFG; fix: pass an MFG"
        )
    if population is None and problem.populations > 1:
        raise ProblemError(
            f"problem '{problem.name}' has {problem.populations} populations; fix: lower one "
            "population at a time (lower_finite_horizon(problem, k))"
        )
    return FiniteHorizonResiduals(problem, population or 0)


def lower_finite_horizon_populations(problem: MFG) -> list[FiniteHorizonResiduals]:
    """The lowered residuals of every population (one item for a one-population problem)."""
    if problem.populations == 1:
        return [lower_finite_horizon(problem)]
    return [lower_finite_horizon(problem, k) for k in range(problem.populations)]


def _expectation_values(
    expectations: list[LoweredExpectation],
    points: torch.Tensor,
    density_net: nn.Module,
    frozen: bool,
) -> list[torch.Tensor]:
    """The value of each expectation at ``points``, against its population's density (the
    density network itself, or item k of a population stack)."""
    out, weights = [], {}
    for e in expectations:
        density = density_net if e.population is None else density_net.nets[e.population]
        if e.population not in weights:  # each population's quadrature weights once
            times, index = density.slices(points)
            probs = density.probabilities(times)
            weights[e.population] = (times, index, probs.detach() if frozen else probs)
        times, index, probs = weights[e.population]
        out.append(e(points, index, times, density.nodes, probs))
    return out


def _needs_time_derivative(lowered: Sequence[LoweredResidual]) -> bool:
    """Whether any of ``lowered`` has a t-derivative of m or log m (time is input column 0)."""
    return any(
        split_field_name(name)[0] in ("m", "logm") and 0 in index
        for res in lowered
        for name, index in res.terms
    )


def evaluate_residuals(
    residuals: FiniteHorizonResiduals | list[FiniteHorizonResiduals],
    value_net: nn.Module,
    density_net: nn.Module,
    points: torch.Tensor,
    frozen: Sequence[str] = (),
    which: Sequence[str] = ("hjb", "fp"),
    create_graph: bool = True,
) -> dict[str, torch.Tensor]:
    """HJB and/or FP residuals at ``points`` (which must require grad): (n,), or (n, K) for the
    residuals of K populations (a list, :func:`lower_finite_horizon_populations`)."""
    values, _ = residuals_and_caches(
        residuals, value_net, density_net, points, frozen, which, create_graph
    )
    return values


def residuals_and_caches(
    residuals: FiniteHorizonResiduals | list[FiniteHorizonResiduals],
    value_net: nn.Module,
    density_net: nn.Module,
    points: torch.Tensor,
    frozen: Sequence[str],
    which: Sequence[str],
    create_graph: bool = True,
) -> tuple[dict[str, torch.Tensor], dict]:
    """The residuals named in ``which`` at ``points`` and the derivative caches they were
    computed from (the trainer reuses those for the wall losses). ``residuals``: one
    population's, or a list of every population's (then each residual is (n, K), from one
    shared set of caches and the population stacks ``value_net``, ``density_net``)."""
    several = isinstance(residuals, list) and len(residuals) > 1
    by_population = residuals if isinstance(residuals, list) else [residuals]
    lowered = [getattr(res, name) for res in by_population for name in which]
    fields = SpaceTimeFields(value_net, density_net, _needs_time_derivative(lowered))
    caches = by_population[0].caches(points, fields, frozen=frozen, create_graph=create_graph)
    out = {}
    for name in ("hjb", "fp"):
        if name not in which:
            continue
        columns = []
        for res in by_population:
            expectations = getattr(res, f"{name}_expectations")
            ex = _expectation_values(expectations, points, density_net, "m" in frozen)
            columns.append(getattr(res, name)(points, caches, ex))
        out[name] = torch.stack(columns, dim=-1) if several else columns[0]
    return out, caches


class RowView(dict):
    """The derivative caches restricted to some rows: ``view[name](index)`` is
    ``caches[name](index)[rows]`` (the wall points of a merged batch)."""

    def __init__(self, caches: dict, rows: slice):
        super().__init__()
        self.caches, self.rows = caches, rows

    def __missing__(self, name: str):
        cache, rows = self.caches[name], self.rows

        def derivative(index):
            return cache(index)[rows]

        self[name] = derivative
        return derivative


class SpaceTimeFields:
    """The two networks as fields for the derivative caches; ``time_derivative``: whether the
    density's normaliser carries its t-derivative (needed only for m_t). With several
    populations the networks are population stacks and ``value(points, k)``,
    ``log_density(points, k)`` are population k's."""

    def __init__(self, value_net, density_net, time_derivative: bool = True):
        self.value_net, self.density_net = value_net, density_net
        self.time_derivative = time_derivative

    def value(self, points, k: int | None = None):
        net = self.value_net if k is None else self.value_net.nets[k]
        return net(points)

    def log_density(self, points, k: int | None = None):
        net = self.density_net if k is None else self.density_net.nets[k]
        return net(points, time_derivative=self.time_derivative)
