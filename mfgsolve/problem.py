"""Domains and mean field game problems written as sympy residuals, validated at construction.

A problem holds sympy expressions only; nothing here knows about torch. Every validation failure
raises :class:`ProblemError` with a one-line message that names the problem and the fix.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ._messages import did_you_mean, shown
from .boundary import PERIODIC, WALL, Exit, Face, parse_boundary
from .errors import ProblemError

__all__ = [
    "ProblemError",
    "Problem",
    "Torus",
    "Box",
    "Rd",
    "Exit",
    "ErgodicMFG",
    "DiscountedMFG",
    "MFG",
    "HamiltonianForm",
    "load_problem",
]


def _fail(name: str | None, what: str, fix: str) -> ProblemError:
    prefix = f"problem '{name}': " if name else ""
    return ProblemError(f"{prefix}{what}; fix: {fix}")


def _as_float(value: Any, what: str, name: str | None, fix: str) -> float:
    try:
        number = (
            float(sp.sympify(value).evalf())
            if not isinstance(value, (int, float))
            else float(value)
        )
    except (TypeError, ValueError, sp.SympifyError, AttributeError):
        raise _fail(name, f"{what} is not a number ({value!r})", fix) from None
    if not math.isfinite(number):
        raise _fail(name, f"{what} is not finite ({value!r})", fix)
    return number


def check_time_interval(
    time: Any, params: Mapping, name: str | None
) -> tuple[sp.Symbol, float, float]:
    """Validate ``time=(t, t0, T)`` (numbers or expressions in ``params``) and return it with floats."""
    try:
        t, t0, T = time
    except (TypeError, ValueError):
        raise _fail(name, f"time={time!r} is not (t, t0, T)", "write time=(t, 0, 1)") from None
    if not isinstance(t, sp.Symbol):
        raise _fail(
            name, f"time symbol {t!r} is not a sympy Symbol", "write time=(sp.Symbol('t'), 0, 1)"
        )
    t0 = _as_float(sp.sympify(t0).subs(params), "initial time", name, "write time=(t, 0, T)")
    T = _as_float(
        sp.sympify(T).subs(params), "horizon T", name, "write time=(t, 0, T) with a number T"
    )
    if t0 >= T:
        raise _fail(
            name,
            f"horizon T={T} is not after the initial time {t0}",
            "use T > t0, e.g. time=(t, 0, 1)",
        )
    return t, t0, T


def _check_symbols(symbols: Any, kind: str) -> tuple[sp.Symbol, ...]:
    if isinstance(symbols, sp.Symbol):
        symbols = [symbols]
    try:
        symbols = tuple(symbols)
    except TypeError:
        raise _fail(
            None, f"{kind} symbols must be a list of sympy Symbols", f"write {kind}([x, y])"
        ) from None
    if not symbols:
        raise _fail(
            None, f"empty {kind} domain (no symbols)", f"give at least one symbol: {kind}([x])"
        )
    for s in symbols:
        if not isinstance(s, sp.Symbol):
            raise _fail(
                None,
                f"{kind} symbol {s!r} is not a sympy Symbol",
                "use sp.Symbol('x') or sp.symbols('x y')",
            )
    if len(set(symbols)) != len(symbols):
        raise _fail(
            None, f"{kind} has repeated symbols {symbols}", "give each coordinate its own symbol"
        )
    return symbols


class Torus:
    """Periodic box ``prod_i [0, L_i)``; networks are made exactly periodic.

    Args:
        symbols: the space coordinates (sympy Symbols), one per dimension.
        lengths: period in each direction (a number applies to all). Default 1.
    """

    periodic = True
    boundary = "periodic"

    def __init__(
        self, symbols: Sequence[sp.Symbol] | sp.Symbol, lengths: float | Sequence[float] = 1
    ):
        self.symbols = _check_symbols(symbols, "Torus")
        if isinstance(lengths, (int, float, sp.Basic)):
            lengths = [lengths] * len(self.symbols)
        lengths = list(lengths)
        if len(lengths) != len(self.symbols):
            raise _fail(
                None,
                f"Torus has {len(self.symbols)} symbols but {len(lengths)} lengths",
                "give one length per symbol",
            )
        self.lengths = tuple(
            _as_float(v, "Torus length", None, "use positive numbers") for v in lengths
        )
        if any(v <= 0 for v in self.lengths):
            raise _fail(
                None, f"Torus lengths must be > 0, got {self.lengths}", "use positive periods"
            )

    @property
    def dim(self) -> int:
        return len(self.symbols)

    @property
    def lower(self) -> np.ndarray:
        return np.zeros(self.dim)

    @property
    def upper(self) -> np.ndarray:
        return np.asarray(self.lengths, dtype=float)

    @property
    def volume(self) -> float:
        return float(np.prod(self.lengths))

    @property
    def periodic_axes(self) -> tuple[bool, ...]:
        return (True,) * self.dim

    faces: tuple[Face, ...] = ()
    exits: tuple[Face, ...] = ()
    has_walls = False

    def __repr__(self) -> str:
        return f"Torus({list(self.symbols)}, lengths={list(self.lengths)})"


class Box:
    """Rectangular box ``prod_i [lo_i, hi_i]`` with a condition on each face.

    Args:
        symbols: the space coordinates (sympy Symbols).
        bounds: one ``(lo, hi)`` pair per symbol.
        boundary: ``"neumann"`` (every face a wall: homogeneous Neumann for u, no flux for m), or
            a dict keyed by an axis (``x``: both faces) or a face (``(x, 1)``: the face x = 1)
            with values ``"neumann"``, ``"periodic"`` (an axis), ``"exit"`` or
            :class:`~mfgsolve.Exit` ``(value, where=...)`` (u = value, m absorbed; ``where``: a
            door on part of the face). Faces not named are walls. See :mod:`mfgsolve.boundary`.
    """

    periodic = False

    def __init__(
        self,
        symbols: Sequence[sp.Symbol] | sp.Symbol,
        bounds: Sequence[Sequence[float]],
        boundary: str = "neumann",
    ):
        self.symbols = _check_symbols(symbols, "Box")
        try:
            pairs = [tuple(b) for b in bounds]
        except TypeError:
            raise _fail(
                None,
                f"Box bounds {bounds!r} are not a list of (lo, hi) pairs",
                "write bounds=[(0, 1), ...]",
            ) from None
        if len(pairs) != len(self.symbols):
            raise _fail(
                None,
                f"Box has {len(self.symbols)} symbols but {len(pairs)} bounds",
                "give one (lo, hi) pair per symbol",
            )
        parsed = []
        for s, pair in zip(self.symbols, pairs):
            if len(pair) != 2:
                raise _fail(
                    None,
                    f"Box bound for {s} is {pair!r}, not a (lo, hi) pair",
                    "write bounds=[(0, 1), ...]",
                )
            lo = _as_float(pair[0], f"Box lower bound for {s}", None, "use numbers")
            hi = _as_float(pair[1], f"Box upper bound for {s}", None, "use numbers")
            if not lo < hi:
                raise _fail(
                    None,
                    f"Box bounds for {s} need lo < hi, got ({lo}, {hi})",
                    "swap or widen the bounds",
                )
            parsed.append((lo, hi))
        self.bounds = tuple(parsed)
        self.conditions = parse_boundary(self.symbols, self.bounds, boundary)
        self.boundary = boundary

    @property
    def faces(self) -> tuple[Face, ...]:
        """Every face that is not periodic, in axis order (lower face first)."""
        return tuple(
            Face(axis, side, self.symbols[axis], self.bounds[axis][side], cond)
            for axis, pair in enumerate(self.conditions)
            for side, cond in enumerate(pair)
            if cond != PERIODIC
        )

    @property
    def periodic_axes(self) -> tuple[bool, ...]:
        """Whether each axis is periodic."""
        return tuple(lo == PERIODIC for lo, _hi in self.conditions)

    @property
    def exits(self) -> tuple[Face, ...]:
        """The faces that have an exit (on the whole face or a door)."""
        return tuple(f for f in self.faces if f.is_exit)

    @property
    def has_walls(self) -> bool:
        """Whether some face (or part of one, beside a door) is a wall."""
        return any(
            f.condition == WALL or (f.is_exit and f.condition.where is not None) for f in self.faces
        )

    @property
    def dim(self) -> int:
        return len(self.symbols)

    @property
    def lower(self) -> np.ndarray:
        return np.array([b[0] for b in self.bounds])

    @property
    def upper(self) -> np.ndarray:
        return np.array([b[1] for b in self.bounds])

    @property
    def lengths(self) -> tuple[float, ...]:
        return tuple(hi - lo for lo, hi in self.bounds)

    @property
    def volume(self) -> float:
        return float(np.prod(self.lengths))

    def __repr__(self) -> str:
        walls = all(c == WALL for pair in self.conditions for c in pair)
        extra = "" if walls else f", boundary={self.boundary!r}"
        return f"Box({list(self.symbols)}, bounds={list(self.bounds)}{extra})"


class Rd:
    """The whole space R^d, for problems whose density decays at infinity (m -> 0, u may grow).

    Networks on R^d carry the decay: m = exp(f(x) - sum_i (x_i - mu_i)^2 / (2 s_i^2)) / Z with a
    trained Gaussian envelope (mu, s), and u = g(x) + a quadratic with trained coefficients.
    Collocation points, the normaliser Z and the error integrals use that Gaussian as the
    reference measure (importance sampling; docs/high_dimension.md#the-whole-space-rd).

    Args:
        symbols: the space coordinates (sympy Symbols), one per dimension.
        center: where the density's mass is expected (a number for every axis, or one per axis);
            the envelope's initial mean. Default 0.
        scale: its expected spread (standard deviation per axis, > 0); the envelope's initial
            standard deviation. Default 1.
    """

    periodic = False
    boundary = "decay"
    faces: tuple[Face, ...] = ()
    exits: tuple[Face, ...] = ()
    has_walls = False
    # plots and the networks' input scaling use the window center +- WINDOW * scale
    WINDOW = 4.0

    def __init__(
        self,
        symbols: Sequence[sp.Symbol] | sp.Symbol,
        center: float | Sequence[float] = 0,
        scale: float | Sequence[float] = 1,
    ):
        self.symbols = _check_symbols(symbols, "Rd")
        d = len(self.symbols)

        def per_axis(value, what: str) -> tuple[float, ...]:
            values = [value] * d if isinstance(value, (int, float, sp.Basic)) else list(value)
            if len(values) != d:
                raise _fail(
                    None,
                    f"Rd has {d} symbols but {len(values)} values of {what}",
                    f"give one {what} per symbol, or one number for all",
                )
            return tuple(_as_float(v, f"Rd {what}", None, "use finite numbers") for v in values)

        if isinstance(center, str) or isinstance(scale, str):
            raise _fail(
                None, "Rd center and scale must be numbers", "write Rd([x], center=0, scale=1)"
            )
        self.center = per_axis(center, "center")
        self.scale = per_axis(scale, "scale")
        if any(not math.isfinite(c) for c in self.center):
            raise _fail(None, f"Rd center {self.center} is not finite", "use finite numbers")
        if any(not (0 < s < math.inf) for s in self.scale):
            raise _fail(
                None, f"Rd scale must be > 0 and finite, got {self.scale}", "use positive numbers"
            )

    @property
    def dim(self) -> int:
        return len(self.symbols)

    @property
    def lower(self) -> np.ndarray:
        """The lower corner of the window center - 4 scale (plots, input scaling, checks)."""
        return np.asarray(self.center) - self.WINDOW * np.asarray(self.scale)

    @property
    def upper(self) -> np.ndarray:
        """The upper corner of the window center + 4 scale."""
        return np.asarray(self.center) + self.WINDOW * np.asarray(self.scale)

    @property
    def lengths(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.upper - self.lower)

    @property
    def periodic_axes(self) -> tuple[bool, ...]:
        return (False,) * self.dim

    def __repr__(self) -> str:
        return f"Rd({list(self.symbols)}, center={list(self.center)}, scale={list(self.scale)})"


@dataclass(frozen=True)
class HamiltonianForm:
    """The structure a problem was built from by ``from_hamiltonian`` (used by monotone schemes).

    HJB: ``[-u_t] - nu Lap u + H(x, grad u) - F(x, m) [- Hbar] = 0``;
    FP: ``[m_t] - nu Lap m - div(m dH/dp(x, grad u)) = 0``.
    """

    hamiltonian: sp.Expr  # in the space symbols and `momenta`
    momenta: tuple[sp.Symbol, ...]
    coupling: sp.Expr  # in the space symbols and the density (applied function)
    viscosity: sp.Expr


def _applied_unknowns(expr: sp.Basic) -> set[AppliedUndef]:
    return {f for f in expr.atoms(AppliedUndef)}


def _population_list(obj: Any) -> list:
    """The unknowns of each population: ``obj`` itself, or the items of a list or tuple."""
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def _is_unknown_function(obj: Any) -> bool:
    return isinstance(obj, AppliedUndef)


def _check_unknown(
    name: str | None, role: str, fn: Any, arg_symbols: tuple[sp.Symbol, ...]
) -> None:
    """``fn`` (the value or the density) is an unknown function applied to the coordinates."""
    coords = ", ".join(map(str, arg_symbols))
    if not _is_unknown_function(fn):
        if isinstance(fn, sp.core.function.UndefinedFunction):  # sp.Function("u"), not applied
            fix = f"apply it to the coordinates: {role}={fn}({coords})"
        else:
            fix = f"write {role}=sp.Function('{'u' if role == 'value' else 'm'}')({coords})"
        raise _fail(
            name, f"{role} {shown(fn)} is not an unknown function applied to the coordinates", fix
        )
    if tuple(fn.args) != arg_symbols:
        raise _fail(
            name,
            f"{role} {fn} has arguments {tuple(fn.args)} but the coordinates are {arg_symbols}",
            f"write {fn.func}({coords})",
        )


class Problem:
    """Base of every problem kind mfgsolve solves (what :func:`load_problem` accepts).

    Every problem has:

    - ``name``: a short name (``load_problem`` sets it from the file name when it is unset);
    - ``dim``: the space dimension (of the domain, or of the state X for an FBSDE);
    - ``kind``: a string naming the kind: ``"ergodic"`` (:class:`ErgodicMFG`),
      ``"finite_horizon"`` (:class:`MFG`) or ``"fbsde"`` (:class:`mfgsolve.fbsde.FBSDE`).

    Solvers tell the kinds apart by ``kind`` or ``isinstance``. The FBSDE kind is defined in
    :mod:`mfgsolve.fbsde.problem` and subclasses this one, so this module never imports it.
    """

    kind: str = ""
    name: str | None
    dim: int


def field_name(role: str, population: int | None) -> str:
    """The name of an unknown field: ``role`` ("u", "m", "logm") for one population, "u1",
    "m2", "logm2", ... (1-based) for population k (0-based) of several."""
    return role if population is None else f"{role}{population + 1}"


def split_field_name(name: str) -> tuple[str, int | None]:
    """(role, population or None) of a name made by :func:`field_name`."""
    role = name.rstrip("0123456789")
    return role, (int(name[len(role) :]) - 1 if len(role) < len(name) else None)


def _one_population(attribute: str, plural: str) -> property:
    """An attribute of a one-population problem (``value``, ``hjb``, ...); with several
    populations reading it is an error that points to the per-population tuple ``plural``."""

    def get(self):
        if self.__dict__.get("populations", 1) > 1:
            raise ProblemError(
                f"problem '{self.name}' has {self.populations} populations, so no single "
                f"{attribute}; fix: use problem.{plural}[k] (this operation serves one population)"
            )
        return self.__dict__.get("_" + attribute)

    def put(self, item) -> None:
        self.__dict__["_" + attribute] = item

    return property(get, put, doc=f"The {attribute} of a one-population problem.")


class _ProblemBase(Problem):
    """Validation shared by ergodic and finite-horizon problems.

    Every problem has ``populations`` (K >= 1) and per-population tuples ``values``,
    ``densities``, ``hjbs``, ``fps`` (and ``constants`` for ergodic ones); with one population
    ``value``, ``density``, ``hjb``, ``fp`` and ``constant`` are their single items.
    """

    kind: str = ""
    name: str
    domain: Torus | Box | Rd
    populations: int = 1
    params: dict[sp.Symbol, float]
    value = _one_population("value", "values")
    density = _one_population("density", "densities")
    constant = _one_population("constant", "constants")
    hjb = _one_population("hjb", "hjbs")
    fp = _one_population("fp", "fps")

    # --- construction helpers -------------------------------------------------------------
    def _setup_common(
        self,
        domain,
        value,
        density,
        params,
        name,
        arg_symbols: tuple[sp.Symbol, ...],
        several: bool = False,
    ) -> None:
        """Check the domain, the unknowns (one value and one density per population: a list
        each when ``several`` populations are accepted) and ``params``."""
        self.name = str(name) if name is not None else None
        if not isinstance(domain, (Torus, Box, Rd)):
            raise _fail(
                self.name,
                f"domain is {type(domain).__name__}, not a Torus, Box or Rd",
                "write domain=Torus([x]), Box([x], [(0, 1)]) or Rd([x])",
            )
        self.domain = domain
        if domain.exits and self.kind != "finite_horizon":
            raise _fail(
                self.name,
                f"the exit on {domain.exits[0].label} lets mass leave, so a stationary problem "
                "has no density of mass 1",
                "exits are for finite-horizon problems (MFG); use walls or periodic axes here",
            )
        self._coords = tuple(arg_symbols)
        values, densities = _population_list(value), _population_list(density)
        if len(values) != len(densities) or not values:
            raise _fail(
                self.name,
                f"{len(values)} value function(s) but {len(densities)} density function(s)",
                "give one value and one density per population: value=[u1, u2], density=[m1, m2]",
            )
        if len(values) > 1 and not several:
            raise _fail(
                self.name,
                f"{type(self).__name__} takes one population, got {len(values)} values",
                "write several populations with lists (value=[u1, u2], density=[m1, m2], "
                "hjb=[...], fp=[...]) in an ErgodicMFG, DiscountedMFG or MFG",
            )
        for role, fns in (("value", values), ("density", densities)):
            for fn in fns:
                _check_unknown(self.name, role, fn, arg_symbols)
        if len(values) == 1 and values[0].func == densities[0].func:
            raise _fail(
                self.name,
                f"value and density are the same function {values[0].func}",
                "use two different functions, e.g. u and m",
            )
        seen: set = set()
        for fn in (*values, *densities):
            if fn.func in seen:
                raise _fail(
                    self.name,
                    f"the function {fn.func} is given twice among the values and densities",
                    "give each population's value and density its own function (u1, u2, m1, m2)",
                )
            seen.add(fn.func)
        self.populations = len(values)
        self.values, self.densities = tuple(values), tuple(densities)
        self.value = values[0] if self.populations == 1 else None
        self.density = densities[0] if self.populations == 1 else None
        self.params = self._check_params(params)
        if self.name is None:
            self.name = "unnamed"

    def _population_items(self, what: str, given: Any, example: str) -> list:
        """``given`` as one item per population (a list of them when there are several)."""
        items = _population_list(given)
        if self.populations == 1 and isinstance(given, (list, tuple)):
            if len(items) != 1:
                raise _fail(
                    self.name,
                    f"{what} is a list of {len(items)} but there is one population",
                    f"give {what} as one item (or value and density as lists of {len(items)})",
                )
            return items
        if len(items) != self.populations:
            raise _fail(
                self.name,
                f"{self.populations} populations but {len(items)} {what} item(s)",
                f"give one item per population: {example}",
            )
        return items

    def named_unknowns(self) -> list[tuple[str, AppliedUndef]]:
        """(field name, function) of every unknown, the values first: ("u", u), ("m", m) for one
        population; ("u1", u1), ("u2", u2), ..., ("m1", m1), ... for several
        (:func:`field_name`)."""
        several = self.populations > 1
        return [
            *((field_name("u", k if several else None), v) for k, v in enumerate(self.values)),
            *((field_name("m", k if several else None), d) for k, d in enumerate(self.densities)),
        ]

    def label(self, what: str, k: int) -> str:
        """``what`` ("HJB", "FP") as messages name population k's equation: "HJB" for one
        population, "HJB 2" for the second of several."""
        return what if self.populations == 1 else f"{what} {k + 1}"

    def _unknowns_text(self) -> str:
        """'u(x) and m(x)' (every unknown function, for messages)."""
        names = [str(f) for f in (*self.values, *self.densities)]
        return ", ".join(names[:-1]) + " and " + names[-1]

    def _check_params(self, params: Mapping | None) -> dict[sp.Symbol, float]:
        out: dict[sp.Symbol, float] = {}
        if params is not None and not isinstance(params, Mapping):
            raise _fail(
                self.name,
                f"params is a {type(params).__name__}, not a dict",
                "write params={c: 0.1} (symbols, or their names, to numbers)",
            )
        for key, val in (params or {}).items():
            sym = sp.Symbol(key) if isinstance(key, str) else key
            if not isinstance(sym, sp.Symbol):
                raise _fail(
                    self.name,
                    f"params key {key!r} is not a symbol",
                    "use sympy Symbols (or their names) as keys",
                )
            out[sym] = _as_float(
                val,
                f"params[{sym}]",
                self.name,
                f"give {sym} a finite number, e.g. params={{{sym}: 0.1}}",
            )
        return out

    def _check_residual(
        self,
        label: str,
        expr: Any,
        allowed: set[sp.Symbol],
        must_contain: Sequence[tuple[Any, str]],
    ) -> sp.Expr:
        if isinstance(expr, str):
            raise _fail(
                self.name,
                f"{label} residual is a string, not a sympy expression",
                "build it from sympy symbols and functions, not text",
            )
        if isinstance(expr, (int, float)):
            expr = sp.sympify(expr)
        if isinstance(expr, sp.Eq):
            raise _fail(
                self.name,
                f"{label} residual is an equation",
                "write the residual lhs - rhs (equal to zero at the solution)",
            )
        if not isinstance(expr, sp.Expr):
            raise _fail(
                self.name,
                f"{label} residual is {type(expr).__name__}, not a sympy expression",
                "write it with sympy (sp.sin, u.diff(x), ...)",
            )
        coords = set(self._coords)
        for d in expr.atoms(sp.Derivative):  # before doit(): d/dz of u(x) would silently become 0
            for var, _count in d.variable_count:
                if var not in coords:
                    raise _fail(
                        self.name,
                        f"{label} residual differentiates with respect to {var}, which is not a coordinate",
                        f"differentiate only in {self._coords}",
                    )
        expr = expr.doit() if expr.has(sp.Derivative) else expr
        if expr.has(sp.Integral):
            raise _fail(
                self.name,
                f"{label} residual has an unevaluated integral",
                "write a nonlocal term (finite-horizon MFG) with mfgsolve.Expectation, "
                "or give the integral in closed form",
            )
        if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            raise _fail(
                self.name,
                f"{label} residual contains nan/zoo/oo",
                "check divisions by zero and logs of 0 in the expression",
            )
        unknowns = {f.func for f in (*self.values, *self.densities)}
        density = self.densities[0]
        for f in _applied_unknowns(expr):
            if f.func not in unknowns:
                raise _fail(
                    self.name,
                    f"{label} residual uses unknown function {f}",
                    f"use only {self._unknowns_text()} (or give {f.func} a formula)",
                )
            if tuple(f.args) != self._coords:
                raise _fail(
                    self.name,
                    f"{label} residual evaluates {f} at {f.args} instead of the coordinates {self._coords}",
                    f"evaluate {' and '.join(str(g.func) for g in (*self.values, *self.densities))} "
                    "only at the coordinates; write a "
                    "nonlocal term (finite-horizon MFG) with mfgsolve.Expectation: "
                    f"Expectation(phi, {density}) for int phi m dx, "
                    f"Expectation(K, {density}, y) for the convolution int K m(y) dy "
                    "(y: one integration symbol per space coordinate)",
                )
        for d in expr.atoms(sp.Derivative):
            if not isinstance(d.expr, AppliedUndef):
                raise _fail(
                    self.name,
                    f"{label} residual has an unevaluated derivative of {d.expr}",
                    "differentiate the unknown functions directly",
                )
        free = expr.free_symbols - coords - set(self.params) - allowed
        if free:
            names = ", ".join(sorted(map(str, free)))
            raise _fail(
                self.name,
                f"{label} residual has free symbols without a value: {names}",
                f"add params={{{names.split(', ')[0]}: ...}} or make it a coordinate",
            )
        for target, what in must_contain:
            if isinstance(target, sp.Symbol):
                present = target in expr.free_symbols
            else:
                present = any(f.func == target.func for f in _applied_unknowns(expr))
            if not present:
                raise _fail(
                    self.name,
                    f"{label} residual does not contain {what} {target}",
                    f"write the {label} equation in terms of {target}",
                )
        return expr

    def _check_exact(self, exact: Mapping | None, constant: Any) -> dict[str, Any]:
        """``exact`` as ``{"value": u*, "density": m*, "constant": Hbar*}`` (each optional); with
        several populations each entry is a tuple with one item per population (None: not given).
        ``constant``: the ergodic constant (a tuple of them for several populations) or None."""
        constants = tuple(constant) if isinstance(constant, (list, tuple)) else (constant,)
        constants = tuple(c for c in constants if c is not None)
        allowed: dict[Any, tuple[str, int]] = {}
        for k, (v, d) in enumerate(zip(self.values, self.densities)):
            allowed[v.func] = ("value", k)
            allowed[d.func] = ("density", k)
        keys_text = ", ".join(str(f) for f in (*self.values, *self.densities, *constants))
        if exact is not None and not isinstance(exact, Mapping):
            raise _fail(
                self.name,
                f"exact is a {type(exact).__name__}, not a dict",
                f"write exact={{{self.values[0].func}: ..., {self.densities[0].func}: ...}} or leave it out",
            )
        found: dict[tuple[str, int], Any] = {}
        for key, val in (exact or {}).items():
            if isinstance(key, AppliedUndef):
                slot = allowed.get(key.func)
            elif isinstance(key, sp.core.function.UndefinedFunction):
                slot = allowed.get(key)
            elif isinstance(key, sp.Symbol) and key in constants:
                slot = ("constant", constants.index(key))
            else:
                slot = None
            if slot is None:
                raise _fail(
                    self.name,
                    f"exact names {key}, which is not an unknown of the problem",
                    f"use keys among {keys_text}",
                )
            role = slot[0]
            try:
                expr = sp.sympify(val).subs(self.params)
            except (sp.SympifyError, TypeError, ValueError, AttributeError):
                raise _fail(
                    self.name,
                    f"exact {key} is not a formula ({shown(val)})",
                    "give a sympy expression",
                ) from None
            if role == "constant":
                found[slot] = _as_float(
                    expr, f"exact {key}", self.name, "give the constant as a number"
                )
            else:
                if not isinstance(expr, sp.Expr):
                    raise _fail(
                        self.name,
                        f"exact {key} is {type(expr).__name__}, not a formula",
                        "give a sympy expression in the coordinates",
                    )
                extra = expr.free_symbols - set(self._coords)
                if extra:
                    raise _fail(
                        self.name,
                        f"exact {key} has free symbols {sorted(map(str, extra))}",
                        "write it in the coordinates only (or add params)",
                    )
                if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or _applied_unknowns(expr):
                    raise _fail(
                        self.name,
                        f"exact {key} is not a finite closed form",
                        "give a formula of the coordinates without nan, oo or unknown functions",
                    )
                found[slot] = expr
        if self.populations == 1:
            return {role: val for (role, _k), val in found.items()}
        out: dict[str, Any] = {}
        for role in ("value", "density", "constant"):
            items = tuple(found.get((role, k)) for k in range(self.populations))
            if any(item is not None for item in items):
                out[role] = items
        return out

    def substitute(self, expr: sp.Expr) -> sp.Expr:
        """Return ``expr`` with the numeric ``params`` substituted."""
        # sympify: a bare parameter symbol would otherwise come back as a Python float
        return sp.sympify(expr.xreplace(self.params)) if self.params else expr

    @property
    def dim(self) -> int:
        """Space dimension."""
        return self.domain.dim

    @property
    def space(self) -> tuple[sp.Symbol, ...]:
        return self.domain.symbols


class ErgodicMFG(_ProblemBase):
    """Stationary (ergodic) mean field game: unknowns u(x), m(x) and the constant Hbar.

    Args:
        domain: a :class:`Torus` or :class:`Box`.
        value: u as an applied sympy function of the domain symbols.
        density: m likewise.
        constant: the ergodic constant Hbar (a sympy Symbol).
        hjb: residual of the HJB equation (zero at the solution); contains u and Hbar.
        fp: residual of the Fokker-Planck equation; contains m.
        params: numbers for the other free symbols.
        exact: optional closed forms ``{u: ..., m: ..., Hbar: ...}``.
        name: short name used for output folders.

    Built-in constraints: int u = 0, int m = 1, m > 0.
    """

    kind = "ergodic"

    def __init__(
        self, domain, value, density, constant, hjb, fp, params=None, exact=None, name=None
    ):
        self.name = str(name) if name is not None else None
        self._setup_common(
            domain,
            value,
            density,
            params,
            name,
            tuple(getattr(domain, "symbols", ())),
            several=True,
        )
        K = self.populations
        constants = self._population_items("constant", constant, "constant=[H1, H2]")
        hjbs = self._population_items("hjb", hjb, "hjb=[hjb1, hjb2]")
        fps = self._population_items("fp", fp, "fp=[fp1, fp2]")
        for c in constants:
            self._check_constant_symbol(c)
        if len(set(constants)) < K:
            raise _fail(
                self.name,
                f"the populations share the ergodic constant {constants}",
                "give each population its own constant: constant=[H1, H2]",
            )
        self.constants = tuple(constants)
        checked_hjb, checked_fp = [], []
        for k in range(K):
            v, d, c = self.values[k], self.densities[k], constants[k]
            others = set(constants) - {c}
            if isinstance(hjbs[k], sp.Basic) and others & hjbs[k].free_symbols:
                raise _fail(
                    self.name,
                    f"{self.label('HJB', k)} residual contains another population's constant "
                    f"{sorted(map(str, others & hjbs[k].free_symbols))}",
                    f"population {k + 1}'s HJB has its own constant {c} only",
                )
            checked_hjb.append(
                self._check_residual(
                    self.label("HJB", k),
                    hjbs[k],
                    {c},
                    [(v, "the value"), (c, "the ergodic constant")],
                )
            )
            if isinstance(fps[k], sp.Basic) and set(constants) & fps[k].free_symbols:
                raise _fail(
                    self.name,
                    f"{self.label('FP', k)} residual contains the ergodic constant "
                    f"{', '.join(sorted(map(str, set(constants) & fps[k].free_symbols)))}",
                    "the constant belongs in the HJB equation",
                )
            checked_fp.append(
                self._check_residual(self.label("FP", k), fps[k], set(), [(d, "the density")])
            )
        self.hjbs, self.fps = tuple(checked_hjb), tuple(checked_fp)
        self.constant = constants[0] if K == 1 else None
        self.hjb = checked_hjb[0] if K == 1 else None
        self.fp = checked_fp[0] if K == 1 else None
        self.exact = self._check_exact(exact, constants if K > 1 else constants[0])
        self.hamiltonian_form: HamiltonianForm | None = None

    def _check_constant_symbol(self, constant: Any) -> None:
        if not isinstance(constant, sp.Symbol):
            raise _fail(
                self.name,
                f"constant {constant!r} is not a sympy Symbol",
                "write constant=sp.Symbol('H'); a stationary MFG without an ergodic constant "
                "(a discount term rho*u in the HJB) is a DiscountedMFG",
            )
        if constant in self.domain.symbols:
            raise _fail(
                self.name,
                f"constant {constant} is also a coordinate",
                "use a different symbol for the ergodic constant",
            )
        if constant in self.params:
            raise _fail(
                self.name,
                f"constant {constant} is given a value in params",
                "the ergodic constant is an unknown: remove it from params",
            )

    @classmethod
    def from_hamiltonian(
        cls,
        domain,
        value,
        density,
        constant,
        *,
        hamiltonian,
        momenta,
        coupling,
        viscosity=0,
        params=None,
        exact=None,
        name=None,
    ) -> ErgodicMFG:
        """Build ``-nu Lap u + H(x, grad u) - F(x, m) - Hbar = 0``, ``-nu Lap m - div(m H_p) = 0``.

        Args:
            hamiltonian: H(x, p) in the space symbols and ``momenta``.
            momenta: one sympy Symbol per space dimension standing for p = grad u.
            coupling: F(x, m), a local expression in the space symbols and ``density``.
            viscosity: nu >= 0 (a number or a symbol given in ``params``).
        """
        form, hjb, fp = _hamiltonian_residuals(
            domain, value, density, hamiltonian, momenta, coupling, viscosity, time=None, name=name
        )
        problem = cls(
            domain,
            value,
            density,
            constant,
            hjb - constant,
            fp,
            params=params,
            exact=exact,
            name=name,
        )
        problem.hamiltonian_form = form
        return problem

    def __repr__(self) -> str:
        return f"ErgodicMFG(name={self.name!r}, domain={self.domain!r})"


class DiscountedMFG(ErgodicMFG):
    """Stationary mean field game with a discount: unknowns u(x) and m(x), no ergodic constant.

    A typical HJB residual is ``rho u - nu Lap u + H(x, grad u) - F(x, m)`` with a discount rate
    rho > 0: the term ``rho u`` fixes u itself, so there is no constant Hbar and no ``int u = 0``.
    The density solves the FP residual with ``int m = 1`` and m > 0 (for an agent who is
    discounted but never leaves, the stationary distribution is normalised).

    Args:
        domain, value, density, hjb, fp, params, exact, name: as for :class:`ErgodicMFG`
            (``exact`` names u and m only).

    Attributes:
        discount: the coefficient of u in the HJB residual when it is a number (the rate rho),
            else None (the residual is nonlinear in u); with several populations (lists, as for
            :class:`ErgodicMFG`) a tuple with one rate per population.

    Raises:
        ProblemError: besides the checks of :class:`ErgodicMFG`, an HJB residual without u itself
            (u would be determined up to a constant only) or with a negative discount.
    """

    kind = "ergodic"  # the same networks, sampling and reference grids as an ergodic problem

    def __init__(self, domain, value, density, hjb, fp, params=None, exact=None, name=None):
        self.name = str(name) if name is not None else None
        self._setup_common(
            domain,
            value,
            density,
            params,
            name,
            tuple(getattr(domain, "symbols", ())),
            several=True,
        )
        K = self.populations
        hjbs = self._population_items("hjb", hjb, "hjb=[hjb1, hjb2]")
        fps = self._population_items("fp", fp, "fp=[fp1, fp2]")
        self.constant = None
        self.constants = ()
        self.hjbs = tuple(
            self._check_residual(self.label("HJB", k), e, set(), [(self.values[k], "the value")])
            for k, e in enumerate(hjbs)
        )
        self.fps = tuple(
            self._check_residual(
                self.label("FP", k), e, set(), [(self.densities[k], "the density")]
            )
            for k, e in enumerate(fps)
        )
        self.hjb = self.hjbs[0] if K == 1 else None
        self.fp = self.fps[0] if K == 1 else None
        rates = tuple(self._check_discount(k) for k in range(K))
        self.discount = rates[0] if K == 1 else rates
        self.exact = self._check_exact(exact, None)
        self.hamiltonian_form = None

    def _check_discount(self, k: int = 0) -> float | None:
        """The coefficient of u_k in population k's HJB (its derivatives held fixed), checked
        for a sign."""
        value = self.values[k]
        hjb = self.substitute(self.hjbs[k])
        stand_in = sp.Dummy("u")
        derivs = {d: sp.Dummy() for d in hjb.atoms(sp.Derivative) if d.expr == value}
        bare = hjb.xreplace(derivs).xreplace({value: stand_in})
        if stand_in not in bare.free_symbols:
            raise _fail(
                self.name,
                f"HJB residual does not contain {value} itself, only its derivatives, so u is "
                "determined up to a constant",
                f"add the discount term rho*{value} (rho > 0), or use ErgodicMFG with a constant",
            )
        slope = sp.diff(bare, stand_in)
        if not slope.is_number:
            return None
        rate = float(slope)
        if not rate > 0:
            raise _fail(
                self.name,
                f"the discount rate (the coefficient of {value} in the HJB residual) is {rate:g}, not positive",
                f"write rho*{value} with rho > 0 (the sign convention of rho u - nu Lap u + H - F = 0)",
            )
        return rate

    @classmethod
    def from_hamiltonian(
        cls,
        domain,
        value,
        density,
        *,
        discount,
        hamiltonian,
        momenta,
        coupling,
        viscosity=0,
        params=None,
        exact=None,
        name=None,
    ) -> DiscountedMFG:
        """Build ``rho u - nu Lap u + H(x, grad u) - F(x, m) = 0``, ``-nu Lap m - div(m H_p) = 0``.

        Args:
            discount: rho > 0 (a number or a symbol given in ``params``).
            hamiltonian, momenta, coupling, viscosity: as for :meth:`ErgodicMFG.from_hamiltonian`.
        """
        _form, hjb, fp = _hamiltonian_residuals(
            domain, value, density, hamiltonian, momenta, coupling, viscosity, time=None, name=name
        )
        return cls(
            domain,
            value,
            density,
            discount * value + hjb,
            fp,
            params=params,
            exact=exact,
            name=name,
        )

    def __repr__(self) -> str:
        return f"DiscountedMFG(name={self.name!r}, domain={self.domain!r})"


class MFG(_ProblemBase):
    """Finite-horizon mean field game: u(t, x) backward from ``terminal``, m(t, x) forward from ``initial``.

    Args:
        domain: a :class:`Torus` or :class:`Box`.
        time: ``(t, t0, T)`` with T > t0.
        value: u as an applied function of ``(t, *space)``.
        density: m likewise.
        hjb, fp: residuals (zero at the solution).
        terminal: ``{u: g(x)}``.
        initial: ``{m: m0(x)}``, m0 >= 0 (normalised to mass 1 by the solvers).
        params, exact, name: as for :class:`ErgodicMFG` (exact in (t, x)).

    Several populations: ``value``, ``density``, ``hjb`` and ``fp`` are lists with one item per
    population, ``terminal`` and ``initial`` name every population's function
    (``{u1: g1, u2: g2}``); ``terminals`` and ``initials`` are then tuples in population order.
    """

    kind = "finite_horizon"
    terminal = _one_population("terminal", "terminals")
    initial = _one_population("initial", "initials")

    def __init__(
        self,
        domain,
        time,
        value,
        density,
        hjb,
        fp,
        terminal=None,
        initial=None,
        params=None,
        exact=None,
        name=None,
    ):
        self.name = str(name) if name is not None else None
        self.params = self._check_params(params)
        t, t0, T = check_time_interval(time, self.params, self.name)
        if isinstance(domain, (Torus, Box, Rd)) and t in domain.symbols:
            raise _fail(
                self.name,
                f"time symbol {t} is also a space coordinate",
                "use a different symbol for time",
            )
        self.time, self.t0, self.T = t, t0, T
        self._setup_common(
            domain,
            value,
            density,
            params,
            name,
            (t, *tuple(getattr(domain, "symbols", ()))),
            several=True,
        )
        K = self.populations
        hjbs = self._population_items("hjb", hjb, "hjb=[hjb1, hjb2]")
        fps = self._population_items("fp", fp, "fp=[fp1, fp2]")
        self.hjbs = tuple(
            self._check_residual(self.label("HJB", k), hjbs[k], set(), [(v, "the value")])
            for k, v in enumerate(self.values)
        )
        self.fps = tuple(
            self._check_residual(self.label("FP", k), fps[k], set(), [(d, "the density")])
            for k, d in enumerate(self.densities)
        )
        several = K > 1
        self.terminals = self._check_conditions(
            terminal,
            self.values,
            "terminal",
            "t = T",
            "terminal={u1: g1(x), u2: g2(x)}" if several else "terminal={u: g(x)}",
        )
        self.initials = self._check_conditions(
            initial,
            self.densities,
            "initial",
            "t = t0",
            "initial={m1: m01(x), m2: m02(x)}" if several else "initial={m: m0(x)}",
        )
        for k in range(K):
            self._check_initial_density(k)
        self._check_exits()
        self.hjb = self.hjbs[0] if K == 1 else None
        self.fp = self.fps[0] if K == 1 else None
        self.terminal = self.terminals[0] if K == 1 else None
        self.initial = self.initials[0] if K == 1 else None
        self.exact = self._check_exact(exact, None)
        self.hamiltonian_form: HamiltonianForm | None = None

    def _check_conditions(self, cond, fns, label, when, example) -> tuple[sp.Expr, ...]:
        """The ``label`` condition (a dict keyed by the functions ``fns``) as one formula of x
        per function, in the order of ``fns``."""
        first = f"{fns[0].func} at {when}"
        if not cond:
            raise _fail(self.name, f"no {label} condition ({first})", f"add {example}")
        if not isinstance(cond, Mapping):
            raise _fail(self.name, f"{label} condition is not a dict", f"write {example}")
        given: dict = {}
        names = " or ".join(str(f.func) for f in fns)
        for key, val in cond.items():
            func = key.func if isinstance(key, AppliedUndef) else key
            if func not in {f.func for f in fns}:
                raise _fail(
                    self.name, f"{label} condition names {key}, not {names}", f"write {example}"
                )
            expr = sp.sympify(val).subs(self.params)
            extra = expr.free_symbols - set(self.domain.symbols)
            if extra:
                raise _fail(
                    self.name,
                    f"{label} condition has symbols {sorted(map(str, extra))} besides the space coordinates",
                    "write it in the space coordinates (add params for constants)",
                )
            if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or _applied_unknowns(expr):
                raise _fail(
                    self.name,
                    f"{label} condition is not a finite formula of x",
                    "give a closed-form expression",
                )
            given[func] = expr
        for f in fns:
            if f.func not in given:
                raise _fail(
                    self.name, f"no {label} condition for {f.func} at {when}", f"add {example}"
                )
        return tuple(given[f.func] for f in fns)

    def _check_exits(self) -> None:
        """Each exit's value is a finite formula of the face's coordinates and time, and the
        equations diffuse across the exit's face: an absorbed density (m = 0) and an exit cost
        (u = value) are boundary conditions of second-order equations only."""
        for face in self.domain.exits:
            value = self.substitute(face.condition.value)
            allowed = {s for s in self.domain.symbols if s != face.symbol} | {self.time}
            extra = value.free_symbols - allowed
            if extra:
                raise _fail(
                    self.name,
                    f"the exit value on {face.label} has symbols {sorted(map(str, extra))} "
                    "besides the face's coordinates and time",
                    "write it in those (give numbers for constants in params)",
                )
            if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or _applied_unknowns(value):
                raise _fail(
                    self.name,
                    f"the exit value on {face.label} is not a finite formula",
                    "give a closed-form expression",
                )
            for k in range(self.populations):
                for what, residual, fn in (
                    ("HJB", self.hjbs[k], self.values[k]),
                    ("FP", self.fps[k], self.densities[k]),
                ):
                    if not _has_second_derivative(self.substitute(residual), fn, face.symbol):
                        raise _fail(
                            self.name,
                            f"the exit on {face.label} needs diffusion across it, but the "
                            f"{self.label(what, k)} residual has no second derivative of "
                            f"{fn.func} in {face.symbol}",
                            "add viscosity (an exit is a boundary condition of a second-order "
                            "equation), or make the face a wall",
                        )

    def _check_initial_density(self, k: int) -> None:
        """Population k's initial density is finite, >= 0 and not zero (at random points)."""
        m0 = self.initials[k]
        of = f" of {self.densities[k].func}" if self.populations > 1 else ""
        if m0.is_negative:
            raise _fail(self.name, f"initial density{of} {m0} is negative", "give m0 >= 0")
        rng = np.random.default_rng(0)
        if isinstance(self.domain, Rd):  # where the domain says the mass is
            center, scale = np.asarray(self.domain.center), np.asarray(self.domain.scale)
            pts = center + scale * rng.standard_normal((512, self.dim))
        else:
            lo, hi = self.domain.lower, self.domain.upper
            pts = lo + (hi - lo) * rng.random((512, self.dim))
        fn = sp.lambdify(self.domain.symbols, m0, "numpy")
        with np.errstate(all="ignore"):
            vals = np.broadcast_to(np.asarray(fn(*pts.T), dtype=float), (len(pts),))
        if not np.all(np.isfinite(vals)):
            raise _fail(
                self.name,
                f"initial density{of} is not finite on the domain",
                "check divisions and logs in m0",
            )
        if vals.min() < 0:
            raise _fail(
                self.name,
                f"initial density{of} is negative somewhere (min {vals.min():.3g})",
                "give m0 >= 0 on the whole domain",
            )
        if vals.max() <= 0:
            raise _fail(
                self.name,
                f"initial density{of} is zero everywhere",
                "give an m0 with positive mass",
            )

    @classmethod
    def from_hamiltonian(
        cls,
        domain,
        time,
        value,
        density,
        *,
        hamiltonian,
        momenta,
        coupling,
        viscosity=0,
        terminal=None,
        initial=None,
        params=None,
        exact=None,
        name=None,
    ) -> MFG:
        """Build ``-u_t - nu Lap u + H(x, grad u) - F(x, m) = 0``, ``m_t - nu Lap m - div(m H_p) = 0``.

        Arguments as in :meth:`ErgodicMFG.from_hamiltonian`, plus ``time``, ``terminal``, ``initial``.
        """
        t = time[0] if isinstance(time, (tuple, list)) and time else None
        form, hjb, fp = _hamiltonian_residuals(
            domain, value, density, hamiltonian, momenta, coupling, viscosity, time=t, name=name
        )
        problem = cls(
            domain,
            time,
            value,
            density,
            hjb,
            fp,
            terminal=terminal,
            initial=initial,
            params=params,
            exact=exact,
            name=name,
        )
        problem.hamiltonian_form = form
        return problem

    def __repr__(self) -> str:
        return f"MFG(name={self.name!r}, domain={self.domain!r}, T={self.T})"


def _hamiltonian_residuals(
    domain, value, density, hamiltonian, momenta, coupling, viscosity, time, name
):
    name = str(name) if name is not None else None
    if not isinstance(domain, (Torus, Box, Rd)):
        raise _fail(name, "domain is not a Torus, Box or Rd", "write domain=Torus([x])")
    xs = domain.symbols
    if time is not None and not isinstance(time, sp.Symbol):
        raise _fail(
            name, f"time symbol {shown(time)} is not a sympy Symbol", "write time=(t, 0, 1)"
        )
    coords = (time, *xs) if time is not None else tuple(xs)
    # the unknowns first: they are differentiated below
    _check_unknown(name, "value", value, coords)
    _check_unknown(name, "density", density, coords)
    try:
        momenta = tuple(momenta) if isinstance(momenta, Iterable) else (momenta,)
    except TypeError:
        momenta = (momenta,)
    if len(momenta) != len(xs) or not all(isinstance(p, sp.Symbol) for p in momenta):
        raise _fail(
            name,
            f"need one momentum symbol per dimension ({len(xs)}), got {shown(momenta)}",
            "write momenta=sp.symbols('p1:%d' % (d + 1))",
        )
    if len(set(momenta)) != len(momenta) or set(momenta) & set(coords):
        raise _fail(
            name,
            f"momenta {momenta} repeat a symbol or a coordinate",
            "give each dimension its own new symbol, e.g. momenta=sp.symbols('p1:3')",
        )
    parts = {}
    for label, expr in (
        ("hamiltonian", hamiltonian),
        ("coupling", coupling),
        ("viscosity", viscosity),
    ):
        if isinstance(expr, str):
            raise _fail(
                name,
                f"{label} is a string, not a sympy expression",
                "build it from sympy symbols and functions, not text",
            )
        try:
            parts[label] = sp.sympify(expr)
        except (sp.SympifyError, TypeError, ValueError):
            raise _fail(
                name, f"{label} {shown(expr)} is not a sympy expression", "write it with sympy"
            ) from None
        if not isinstance(parts[label], sp.Expr):
            raise _fail(
                name,
                f"{label} is {type(parts[label]).__name__}, not a sympy expression",
                "write it with sympy",
            )
    hamiltonian, coupling, viscosity = parts["hamiltonian"], parts["coupling"], parts["viscosity"]
    if coupling.has(sp.Derivative):
        raise _fail(
            name,
            "coupling F(x, m) contains derivatives",
            "give a local coupling such as log(m) or m**2",
        )
    if hamiltonian.atoms(AppliedUndef) or hamiltonian.has(sp.Derivative):
        raise _fail(
            name,
            "hamiltonian contains unknown functions",
            "write H(x, p) in the coordinates and momenta only",
        )
    if viscosity.atoms(AppliedUndef) or viscosity.free_symbols & {*coords, *momenta}:
        raise _fail(
            name,
            f"viscosity {viscosity} is not a constant",
            "give a number >= 0 or a symbol with a value in params",
        )
    if viscosity.is_negative:
        raise _fail(name, f"viscosity {viscosity} is negative", "give a viscosity nu >= 0")
    grad_u = [value.diff(x) for x in xs]
    H_at = hamiltonian.subs(dict(zip(momenta, grad_u)), simultaneous=True)
    lap_u = sum(value.diff(x, 2) for x in xs)
    lap_m = sum(density.diff(x, 2) for x in xs)
    drift = [
        sp.diff(hamiltonian, p).subs(dict(zip(momenta, grad_u)), simultaneous=True) for p in momenta
    ]
    div = sum(sp.diff(density * b, x) for b, x in zip(drift, xs))
    hjb = -viscosity * lap_u + H_at - coupling
    fp = -viscosity * lap_m - div
    if time is not None:
        hjb = -value.diff(time) + hjb
        fp = density.diff(time) + fp
    form = HamiltonianForm(
        hamiltonian=hamiltonian, momenta=momenta, coupling=coupling, viscosity=viscosity
    )
    return form, hjb, fp


def _has_second_derivative(expr: sp.Expr, fn: AppliedUndef, symbol: sp.Symbol) -> bool:
    """Whether ``expr`` has a derivative of ``fn`` of order two or more in ``symbol``."""
    return any(
        d.expr == fn and dict(d.variable_count).get(symbol, 0) >= 2
        for d in expr.atoms(sp.Derivative)
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _make_with_settings(path: Path, module: Any, settings: dict[str, Any]) -> Any:
    make = getattr(module, "make_problem", None)
    if not callable(make):
        raise ProblemError(
            f"{path}: settings {sorted(settings)} given but the file defines no make_problem(**settings); "
            "fix: drop the settings, or define make_problem in the file"
        )
    try:
        accepted = inspect.signature(make).parameters
    except (TypeError, ValueError):
        accepted = {}
        var_keyword = True
    else:
        var_keyword = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
    names = [n for n, p in accepted.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(settings) - set(names))
    if unknown and not var_keyword:
        listed = "[" + ", ".join(shown(u) for u in unknown) + "]"
        raise ProblemError(
            f"{path}: unknown setting(s) {listed}; fix: {did_you_mean(unknown, names)}"
        )
    try:
        return make(**settings)
    except ProblemError as exc:
        raise ProblemError(f"{path}: {exc}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of the user's function is bad input
        call = ", ".join(f"{k}={shown(v)}" for k, v in settings.items())
        raise ProblemError(
            f"{path}: make_problem({call}) failed: {type(exc).__name__}: {_first_line(exc)}; "
            "fix: check the settings' values"
        ) from None


def load_problem(path: str | Path, **settings: Any) -> Any:
    """Import a problem file and return its validated module-level ``problem``.

    Args:
        path: a Python file defining ``problem`` (an ErgodicMFG, MFG or FBSDE).
        **settings: for a family of problems (a file that also defines ``make_problem(**settings)``,
            e.g. the dimension ``d``): the problem built with these settings instead of ``problem``.

    Returns:
        The problem object.

    Raises:
        ProblemError: with a one-line message naming the file, what is wrong and the fix.
    """
    try:
        path = Path(path)
    except TypeError:
        raise ProblemError(
            f"{shown(path)} is not a path; fix: give the problem file's path as a string"
        ) from None
    try:
        folder, exists = path.is_dir(), path.is_file()
    except (OSError, ValueError):  # e.g. a NUL character, a name too long
        raise ProblemError(
            f"{shown(str(path))} is not a usable path; fix: give the problem file's path"
        ) from None
    if folder:
        raise ProblemError(
            f"{path}: is a folder; fix: give the path of a problem file (a .py file)"
        )
    if not exists:
        raise ProblemError(
            f"{path}: no such problem file; fix: check the path (problem files live in problems/)"
        )
    if path.suffix != ".py":
        raise ProblemError(
            f"{path}: not a Python file; fix: a problem file is a .py module that defines `problem`"
        )
    module_name = f"_mfgsolve_problem_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ProblemError(f"{path}: cannot be imported; fix: check that it is a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        where = f":{exc.lineno}" if exc.lineno else ""
        raise ProblemError(
            f"{path}{where}: syntax error ({exc.msg}); fix: correct the Python syntax"
            + (" on that line" if where else "")
        ) from None
    except ProblemError as exc:
        raise ProblemError(f"{path}: {exc}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - report any import-time failure on one line
        if isinstance(exc, OSError) and exc.filename and Path(exc.filename) == path:
            raise ProblemError(
                f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); "
                "fix: check the file and its permissions"
            ) from None
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if Path(f.filename).resolve() == path.resolve()
        ]
        where = f":{frames[-1].lineno}" if frames else ""
        msg = _first_line(exc)
        hint = (
            "define it (sympy names need the sp. prefix)"
            if isinstance(exc, NameError)
            else "correct that line"
        )
        raise ProblemError(f"{path}{where}: {type(exc).__name__}: {msg}; fix: {hint}") from None
    finally:
        sys.modules.pop(module_name, None)
    if not hasattr(module, "problem"):
        raise ProblemError(
            f"{path}: defines no `problem`; fix: assign `problem = ErgodicMFG(...)` (or MFG / FBSDE) at module level"
        )
    problem = module.problem
    if settings:
        problem = _make_with_settings(path, module, settings)
    if not isinstance(problem, Problem):
        raise ProblemError(
            f"{path}: `problem` is a {type(problem).__name__}, not an ErgodicMFG, MFG or FBSDE; fix: build it with one of those classes"
        )
    if getattr(problem, "name", None) in (None, "unnamed"):
        problem.name = path.stem.replace("_", "-")
    problem.source = str(path.resolve())
    problem.settings = dict(
        settings
    )  # a family's settings: Solution.load rebuilds the same problem
    return problem
