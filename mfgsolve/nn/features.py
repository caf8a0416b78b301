"""Input features taken from the problem itself, exactly periodic on a torus.

The per-coordinate Fourier inputs of :class:`~mfgsolve.nn.layers.InputMap` make every network
exactly periodic, but a function of a mixed direction such as sin(2 pi (x1 + ... + x8)) is then an
8-fold product of them for the MLP to build. The residuals name the functions of x the solution
is made of, so the networks also get:

- **plane waves** cos(2 pi k . x) and sin(2 pi k . x) (per unit length) for every integer direction
  k with two or more nonzero entries, or an axis frequency above the harmonics, found as the
  argument of a sin or cos in the residuals (k . x + phase, linear in the coordinates);
- **coefficient functions**: each non-constant factor of a residual's terms that depends on the
  coordinates only (a potential V(x), a source f(t, x), a coefficient c(x) of |grad u|^2), standardised
  to mean 0 and variance 1 over the domain, unless it is a linear combination of the inputs already
  there (a potential sum_i sin(2 pi x_i) is: separable problems keep exactly the per-axis inputs).
  A function enters only if it is periodic (a numerical check at random points), so the networks
  stay exactly periodic.

Both lists are capped (``MAX_DIRECTIONS``, ``MAX_FUNCTIONS``), and none is used on a box (its exact
wall conditions rely on even inputs). Finite-horizon networks get the plane waves only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import sympy as sp
import torch
from sympy.core.function import AppliedUndef
from torch import nn

from .._symbolic import evaluate_numeric_constants
from ..lowering.terms import additive_terms

__all__ = [
    "MAX_DIRECTIONS",
    "MAX_FUNCTIONS",
    "ProblemFeatures",
    "coefficient_functions",
    "plane_wave_directions",
    "problem_features",
]

MAX_DIRECTIONS = 64
MAX_FUNCTIONS = 8
_STANDARDISE_POINTS = 4096


def _space_coords(problem) -> tuple[sp.Symbol, ...]:
    return tuple(problem.domain.symbols)


def _residual_exprs(problem) -> list[sp.Expr]:
    exprs = [problem.substitute(e) for e in (*problem.hjbs, *problem.fps)]
    return [sp.sympify(e) for e in exprs]


def plane_wave_directions(problem, harmonics: int = 1) -> list[tuple[int, ...]]:
    """The integer directions k (one sign each) of the plane waves in the problem's residuals that
    the per-coordinate inputs (frequencies 1..``harmonics`` along each axis) do not already give."""
    coords = _space_coords(problem)
    lengths = [float(v) for v in problem.domain.lengths]
    found: list[tuple[int, ...]] = []
    for expr in _residual_exprs(problem):
        for atom in sorted(expr.atoms(sp.sin, sp.cos), key=sp.default_sort_key):
            arg = atom.args[0]
            slopes = [arg.diff(x) for x in coords]
            if not all(s.is_number for s in slopes) or arg.free_symbols.isdisjoint(coords):
                continue
            k = [float(s) * lg / (2 * math.pi) for s, lg in zip(slopes, lengths)]
            if not all(abs(v - round(v)) < 1e-9 for v in k):
                continue  # not periodic on the torus: not a feature
            k_int = [int(round(v)) for v in k]
            first = next(v for v in k_int if v != 0)
            if first < 0:
                k_int = [-v for v in k_int]
            nonzero = [v for v in k_int if v != 0]
            if len(nonzero) == 1 and abs(nonzero[0]) <= harmonics:
                continue  # an axis frequency the inputs already have
            if tuple(k_int) not in found:
                found.append(tuple(k_int))
    return found[:MAX_DIRECTIONS]


def _is_field(expr: sp.Expr, problem) -> bool:
    return bool(expr.atoms(AppliedUndef) or expr.atoms(sp.Derivative))


def coefficient_functions(problem) -> list[sp.Expr]:
    """The non-constant factors of the residuals' terms that depend on the coordinates (and time)
    only, in order of appearance, without repeats (up to a constant factor)."""
    coords = set(_space_coords(problem))
    unknown_scalars = set(getattr(problem, "constants", ()))
    out: list[sp.Expr] = []
    values: list[np.ndarray | None] = []
    time = getattr(problem, "time", None)
    args = (time, *_space_coords(problem)) if time is not None else _space_coords(problem)
    pts = _sample_points(problem, time is not None, 64, seed=3).numpy()

    def add(candidate: sp.Expr) -> None:
        if candidate.free_symbols.isdisjoint(coords) or candidate.free_symbols & unknown_scalars:
            return
        candidate = sp.expand(candidate)
        # repeats up to a constant factor, judged on random points (sympy's simplify of a ratio
        # of two long manufactured sources can take minutes)
        v = _numeric_values(args, candidate, pts)
        for seen, w in zip(out, values):
            if candidate == seen or (v is not None and w is not None and _proportional(v, w)):
                return
        out.append(candidate)
        values.append(v)

    for expr in _residual_exprs(problem):
        sources = []
        for term in additive_terms(expr):
            if term.free_symbols & unknown_scalars:
                continue  # the ergodic constant is not a function of x
            if not _is_field(term, problem):
                sources.append(term)  # parts of the source (a potential, a forcing)
                continue
            factors = [f for f in sp.Mul.make_args(term) if not _is_field(f, problem)]
            x_only = sp.Mul(*factors)
            if not x_only.is_number:
                add(x_only)
        if sources:
            add(sp.Add(*sources))
    return out[:MAX_FUNCTIONS]


def _numeric_values(args: tuple, expr: sp.Expr, pts: np.ndarray) -> np.ndarray | None:
    """``expr`` at ``pts`` (one row per point), or None where numpy cannot evaluate it."""
    try:
        fn = sp.lambdify(args, evaluate_numeric_constants(expr), modules="numpy")
        with np.errstate(all="ignore"):
            v = np.broadcast_to(np.asarray(fn(*pts.T), dtype=float), (len(pts),))
    except (TypeError, ValueError, NameError, ZeroDivisionError):
        return None
    return v if np.all(np.isfinite(v)) else None


def _proportional(v: np.ndarray, w: np.ndarray) -> bool:
    """Whether v = c w for one constant c (to round-off)."""
    a = float(w @ v) / max(float(w @ w), 1e-300)
    return bool(np.linalg.norm(v - a * w) <= 1e-9 * max(np.linalg.norm(v), 1e-300))


class ProblemFeatures(nn.Module):
    """The problem's plane waves and coefficient functions as network inputs.

    Args:
        problem: an ergodic or finite-horizon MFG on a torus.
        harmonics: the per-coordinate frequencies the input map already has.
        time: whether the points carry time as their first column.
    """

    def __init__(self, problem, harmonics: int = 1, time: bool = False):
        super().__init__()
        self.time = time
        domain = problem.domain
        lengths = torch.as_tensor([float(v) for v in domain.lengths], dtype=torch.float64)
        lower = torch.as_tensor([float(v) for v in domain.lower], dtype=torch.float64)
        directions = plane_wave_directions(problem, harmonics)
        k = torch.as_tensor(directions, dtype=torch.float64).reshape(-1, domain.dim)
        self.register_buffer("wave_numbers", 2 * math.pi * k / lengths)  # (n_dir, d)
        self.register_buffer("lower", lower)
        args = ([problem.time] if time else []) + list(_space_coords(problem))
        functions = []
        # finite horizon: plane waves only (coefficient functions of (t, x) were not measured)
        for expr in coefficient_functions(problem) if not time else []:
            fn = sp.lambdify(args, evaluate_numeric_constants(expr), modules="torch", cse=True)
            if _periodic(fn, problem, time) is False:
                continue
            functions.append((fn, expr))
        functions = _not_in_span(functions, problem, harmonics, k, time)
        self._functions = [fn for fn, _ in functions]
        self.expressions = [str(e) for _, e in functions]
        mean, std = _standardisation(self._functions, problem, time)
        keep = [i for i, s in enumerate(std) if s > 1e-12]
        self._functions = [self._functions[i] for i in keep]
        self.expressions = [self.expressions[i] for i in keep]
        self.register_buffer("mean", torch.as_tensor([mean[i] for i in keep], dtype=torch.float64))
        self.register_buffer("scale", torch.as_tensor([std[i] for i in keep], dtype=torch.float64))
        self.out_features = 2 * len(directions) + len(self._functions)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        feats = []
        x = points[:, 1:] if self.time else points
        if self.wave_numbers.shape[0]:
            phase = (x - self.lower.to(x.dtype)) @ self.wave_numbers.to(x.dtype).T
            feats += [torch.cos(phase), torch.sin(phase)]
        cols = [points[:, i] for i in range(points.shape[1])]
        for i, fn in enumerate(self._functions):
            value = _as_column(fn(*cols), points)
            feats.append(((value - self.mean[i].to(x.dtype)) / self.scale[i].to(x.dtype))[:, None])
        if not feats:
            return points[:, :0]
        return torch.cat(feats, dim=1)


def _as_column(value, points: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(value):
        value = torch.as_tensor(value, dtype=points.dtype, device=points.device)
    return value.expand(points.shape[0]) if value.dim() == 0 else value


def _sample_points(problem, time: bool, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    lower = np.asarray([float(v) for v in problem.domain.lower])
    lengths = np.asarray([float(v) for v in problem.domain.lengths])
    x = lower + lengths * rng.random((n, problem.domain.dim))
    if time:
        t = problem.t0 + (problem.T - problem.t0) * rng.random((n, 1))
        x = np.concatenate([t, x], axis=1)
    return torch.as_tensor(x, dtype=torch.float64)


def _periodic(fn, problem, time: bool) -> bool:
    """Whether ``fn`` takes the same values one period along every axis (random points)."""
    pts = _sample_points(problem, time, 64, seed=0)
    base = _as_column(fn(*pts.T), pts)
    offset = 1 if time else 0
    for i, length in enumerate(problem.domain.lengths):
        shifted = pts.clone()
        shifted[:, offset + i] += float(length)
        moved = _as_column(fn(*shifted.T), pts)
        if not torch.allclose(base, moved, rtol=1e-9, atol=1e-9):
            return False
    return True


def _not_in_span(functions: list, problem, harmonics: int, k: torch.Tensor, time: bool) -> list:
    """The functions that are not linear combinations of the inputs the networks already have
    (a constant, the per-axis modes, the plane waves, and the functions kept before them): a
    potential sum_i sin(2 pi x_i), or a single plane wave, adds nothing."""
    pts = _sample_points(problem, time, 2048, seed=2)
    x = pts[:, 1:] if time else pts
    lower = torch.as_tensor([float(v) for v in problem.domain.lower], dtype=torch.float64)
    lengths = torch.as_tensor([float(v) for v in problem.domain.lengths], dtype=torch.float64)
    phase = 2 * math.pi * (x - lower) / lengths
    columns = [torch.ones(len(pts), dtype=torch.float64)]
    for mode in range(1, harmonics + 1):
        columns += [*torch.cos(mode * phase).T, *torch.sin(mode * phase).T]
    if k.shape[0]:
        waves = (2 * math.pi * (x - lower) / lengths) @ k.T
        columns += [*torch.cos(waves).T, *torch.sin(waves).T]
    if time:  # time enters the networks too: products with it are not in the span, t alone is
        columns.append(pts[:, 0])
    kept = []
    for fn, expr in functions:
        f = _as_column(fn(*pts.T), pts).to(torch.float64)
        basis = torch.stack(columns, dim=1)
        coef = torch.linalg.lstsq(basis, f[:, None]).solution
        rest = torch.linalg.norm(f - (basis @ coef)[:, 0])
        if rest > 1e-6 * torch.linalg.norm(f - f.mean()):
            kept.append((fn, expr))
            columns.append(f)
    return kept


def _standardisation(functions: Sequence, problem, time: bool) -> tuple[list[float], list[float]]:
    pts = _sample_points(problem, time, _STANDARDISE_POINTS, seed=1)
    means, stds = [], []
    for fn in functions:
        v = _as_column(fn(*pts.T), pts)
        means.append(float(v.mean()))
        stds.append(float(v.std()))
    return means, stds


def problem_features(problem, features: str, harmonics: int, time: bool) -> ProblemFeatures | None:
    """The extra inputs of the networks for the ``features`` option ("problem" or "axes"): None
    with "axes", on a box, or when the problem names nothing the per-axis inputs lack."""
    if features != "problem" or not problem.domain.periodic:
        return None
    extra = ProblemFeatures(problem, harmonics, time=time)
    return extra if extra.out_features else None
