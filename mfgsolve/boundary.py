"""Boundary conditions on the faces of a :class:`~mfgsolve.Box`: walls, periodic axes, exits.

A box face is ``x_i = lo_i`` or ``x_i = hi_i``. Each face carries one condition:

- ``"neumann"`` (a wall, the default): homogeneous Neumann for u, no flux for m;
- ``"periodic"``: given for an axis, both of its faces are identified;
- :class:`Exit` ``(value, where)``: an exit. There ``u = value`` (the exit cost, a formula of the
  face's coordinates and, over a finite horizon, of time) and the density is absorbed (``m = 0``:
  the mass that reaches it leaves). ``where`` (a sympy inequality in the face's coordinates) makes
  the exit a door on part of the face; the rest of that face is a wall.

Nothing here knows about torch or grids; the solvers read :class:`Face` objects
(:meth:`Box.faces <mfgsolve.Box.faces>`) and evaluate an exit's door and value with
:meth:`Exit.door_mask` and :meth:`Exit.values_at`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ._messages import did_you_mean, shown
from .errors import ProblemError

__all__ = ["Exit", "Face", "parse_boundary"]

WALL = "neumann"
PERIODIC = "periodic"
_NAMES = (WALL, PERIODIC, "exit")


# what a door may be: inequalities and their combinations (a Symbol is a Boolean in sympy too)
_CONDITIONS = (
    sp.core.relational.Relational,
    sp.logic.boolalg.BooleanFunction,
    sp.logic.boolalg.BooleanAtom,
)


def _fail(what: str, fix: str) -> ProblemError:
    return ProblemError(f"{what}; fix: {fix}")


class Exit:
    """An exit on a face of a :class:`~mfgsolve.Box` (a Dirichlet condition with absorption).

    Args:
        value: the exit cost: u = value on the exit. A number or a sympy formula of the face's
            coordinates (and, over a finite horizon, of time and the problem's params).
        where: None (the whole face), or a sympy condition in the face's coordinates
            (``abs(y - 0.5) < 0.1``, ``sp.And(y > 0.2, y < 0.4)``): a door on part of the face,
            the rest of the face being a wall.

    The density is absorbed on the exit (m = 0): the mass that reaches it leaves the domain.
    """

    def __init__(self, value: Any = 0, where: Any = None):
        if isinstance(value, str) or isinstance(where, str):
            raise _fail(
                "Exit value and where must be sympy expressions, not strings",
                "write Exit(0, where=sp.Abs(y - 0.5) < 0.1)",
            )
        try:
            self.value = sp.sympify(value)
        except (sp.SympifyError, TypeError, ValueError):
            raise _fail(
                f"Exit value {shown(value)} is not a sympy expression",
                "write Exit(0) or Exit(y**2)",
            ) from None
        if not isinstance(self.value, sp.Expr) or isinstance(self.value, _CONDITIONS):
            raise _fail(
                f"Exit value {shown(value)} is not a formula",
                "give the exit cost as a number or a sympy formula: Exit(0), Exit(y**2)",
            )
        if where is not None and not isinstance(where, _CONDITIONS):
            raise _fail(
                f"Exit where={shown(where)} is not a condition",
                "give a sympy inequality in the face's coordinates, e.g. where=sp.Abs(y - 0.5) < 0.1",
            )
        if where is not None and where.atoms(sp.Eq, sp.Ne):
            raise _fail(
                f"Exit where={shown(where)} has an equality",
                "write the door with inequalities (a door has a width), e.g. sp.Abs(y - 0.5) < 0.1",
            )
        if where is sp.true:
            where = None
        if where is sp.false:
            raise _fail(
                "Exit where=False is an empty door",
                "give a condition that holds on part of the face",
            )
        self.where = where

    def __repr__(self) -> str:
        return f"Exit({self.value}" + (f", where={self.where})" if self.where is not None else ")")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Exit) and (self.value, self.where) == (other.value, other.where)

    def __hash__(self) -> int:
        return hash((self.value, self.where))

    def door_mask(self, symbols: Sequence[sp.Symbol], points: np.ndarray) -> np.ndarray:
        """Whether each of ``points`` ((n, len(symbols)), columns named by ``symbols``: the
        box's coordinates or the face's) lies in the door (all of them for a whole face)."""
        n = len(points)
        if self.where is None:
            return np.ones(n, dtype=bool)
        fn = sp.lambdify(list(symbols), self.where, "numpy")
        return np.broadcast_to(np.asarray(fn(*points.T), dtype=bool), (n,)).copy()

    def door_margin(self) -> sp.Expr | None:
        """A formula positive inside the door and negative outside, zero on its edges (a length
        when the door is written with lengths): ``b - a`` for ``a < b``, the minimum over an
        ``And``, the maximum over an ``Or``; None for a whole face."""
        return None if self.where is None else _margin(self.where)

    def values_at(
        self, symbols: Sequence[sp.Symbol], expr: sp.Expr, points: np.ndarray
    ) -> np.ndarray:
        """``expr`` (the exit value with params substituted) at ``points`` ((n, len(symbols)))."""
        from ._symbolic import evaluate_numeric_constants

        fn = sp.lambdify(list(symbols), evaluate_numeric_constants(expr), "numpy")
        vals = fn(*np.asarray(points, dtype=float).T)
        return np.broadcast_to(np.asarray(vals, dtype=float), (len(points),)).copy()


def _margin(cond) -> sp.Expr:
    """See :meth:`Exit.door_margin`."""
    if isinstance(cond, (sp.StrictLessThan, sp.LessThan)):
        return cond.rhs - cond.lhs
    if isinstance(cond, (sp.StrictGreaterThan, sp.GreaterThan)):
        return cond.lhs - cond.rhs
    if isinstance(cond, sp.And):
        return sp.Min(*(_margin(a) for a in cond.args))
    if isinstance(cond, sp.Or):
        return sp.Max(*(_margin(a) for a in cond.args))
    if isinstance(cond, sp.Not):
        return -_margin(cond.args[0])
    raise _fail(
        f"the door {shown(cond)} is not made of inequalities",
        "write it with <, >, sp.And, sp.Or and sp.Not",
    )


@dataclass(frozen=True)
class Face:
    """One face of a box: ``symbol = position``, its ``axis``, ``side`` (0: lower, 1: upper) and
    ``condition`` ("neumann", "periodic" or an :class:`Exit`)."""

    axis: int
    side: int
    symbol: sp.Symbol
    position: float
    condition: Any

    @property
    def is_exit(self) -> bool:
        return isinstance(self.condition, Exit)

    @property
    def label(self) -> str:
        return f"{self.symbol} = {self.position:g}"


def _condition(value: Any, where: str) -> Any:
    """A face condition from what the user wrote (a name or an :class:`Exit`)."""
    if isinstance(value, Exit):
        return value
    if isinstance(value, str) and value.lower() in _NAMES:
        name = value.lower()
        return Exit() if name == "exit" else name
    raise _fail(
        f"unknown Box boundary {shown(value)} for {where}",
        "use 'neumann', 'periodic' (an axis), 'exit' or Exit(value, where=...)"
        + (f" ({did_you_mean([value], _NAMES)})" if isinstance(value, str) else ""),
    )


def parse_boundary(
    symbols: tuple[sp.Symbol, ...],
    bounds: tuple[tuple[float, float], ...],
    boundary: Any,
) -> tuple[tuple[Any, Any], ...]:
    """Each axis's (lower, upper) face conditions from ``boundary``.

    ``boundary`` is a name for every face ("neumann"), or a dict whose keys are an axis symbol
    (both faces) or a face ``(symbol, bound)``, with a name or an :class:`Exit` as value; faces not
    named are walls. Raises :class:`ProblemError` (one line) for anything else.
    """
    d = len(symbols)
    if isinstance(boundary, str):
        cond = _condition(boundary, "every face")
        if cond == PERIODIC:
            raise _fail(
                "a Box periodic in every axis is a Torus",
                "use Torus([...], lengths=...) (or make some axes walls)",
            )
        return tuple((cond, cond) for _ in range(d))
    if not isinstance(boundary, Mapping):
        raise _fail(
            f"Box boundary {shown(boundary)} is not a name or a dict",
            "write boundary='neumann' or boundary={x: 'periodic', (y, 1): Exit(0)}",
        )
    faces: list[list[Any]] = [[None, None] for _ in range(d)]
    for key, value in boundary.items():
        if isinstance(key, sp.Symbol) and key in symbols:
            axis = symbols.index(key)
            sides = (0, 1)
            where = f"axis {key}"
        elif isinstance(key, tuple) and len(key) == 2 and key[0] in symbols:
            axis = symbols.index(key[0])
            lo, hi = bounds[axis]
            try:
                pos = float(sp.sympify(key[1]))
            except (TypeError, ValueError, sp.SympifyError):
                pos = float("nan")
            if pos not in (lo, hi):
                raise _fail(
                    f"Box boundary key {shown(key)} is not a face: {key[0]} runs over [{lo:g}, {hi:g}]",
                    f"write ({key[0]}, {lo:g}) or ({key[0]}, {hi:g})",
                )
            sides = (0,) if pos == lo else (1,)
            where = f"face {key[0]} = {pos:g}"
        else:
            raise _fail(
                f"Box boundary key {shown(key)} is neither a coordinate of the box nor a face",
                "key the dict by an axis (x) or a face (x, 0): boundary={(x, 1): Exit(0)}",
            )
        cond = _condition(value, where)
        if cond == PERIODIC and len(sides) == 1:
            raise _fail(
                f"'periodic' is given for the {where} alone",
                f"periodicity joins both faces of an axis: write {{{key[0]}: 'periodic'}}",
            )
        for side in sides:
            if faces[axis][side] is not None:
                raise _fail(
                    f"the face {symbols[axis]} = {bounds[axis][side]:g} is given twice in the Box boundary",
                    "name each face once (an axis key covers both of its faces)",
                )
            faces[axis][side] = cond
    out = tuple(
        (lo if lo is not None else WALL, hi if hi is not None else WALL) for lo, hi in faces
    )
    if all(lo == PERIODIC for lo, _hi in out):
        raise _fail(
            "a Box periodic in every axis is a Torus",
            "use Torus([...], lengths=...) (or make some axes walls)",
        )
    for axis, pair in enumerate(out):
        for side, cond in enumerate(pair):
            if isinstance(cond, Exit):
                _check_exit(symbols, bounds, axis, side, cond)
    return out


def _check_exit(symbols, bounds, axis: int, side: int, exit_: Exit) -> None:
    """An exit's value does not depend on the normal coordinate, and its door is a condition on
    the face's coordinates that holds somewhere on the face."""
    normal = symbols[axis]
    face = f"{normal} = {bounds[axis][side]:g}"
    others = [s for s in symbols if s != normal]
    if normal in exit_.value.free_symbols:
        raise _fail(
            f"the exit value {exit_.value} on the face {face} depends on {normal}, the coordinate "
            "normal to the face",
            f"write it as a function of the face ({', '.join(map(str, others)) or 'a constant'})",
        )
    if exit_.where is None:
        return
    if not others:
        raise _fail(
            f"the exit on {face} has a door (where=...), but a face of a 1-D box is a point",
            "drop where (the whole face is the exit)",
        )
    extra = exit_.where.free_symbols - set(others)
    if extra:
        raise _fail(
            f"the door of the exit on {face} has symbols {sorted(map(str, extra))} besides the "
            f"face's coordinates {others}",
            "write where as a condition on the face's coordinates, with numbers",
        )
    exit_.door_margin()  # inequalities only (the networks smooth the door by its margin)
    # the door holds somewhere: a grid of about 4,096 points on the face
    per_axis = max(2, int(round(4096 ** (1 / len(others)))))
    axes = [
        np.linspace(bounds[symbols.index(s)][0], bounds[symbols.index(s)][1], per_axis)
        for s in others
    ]
    mesh = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    try:
        inside = exit_.door_mask(others, mesh)
    except (TypeError, ValueError, NameError):
        raise _fail(
            f"the door of the exit on {face} cannot be evaluated ({shown(exit_.where)})",
            "write where with inequalities, sp.And, sp.Or and sp.Abs",
        ) from None
    if not inside.any():
        raise _fail(
            f"the door of the exit on {face} ({exit_.where}) holds at no point of the face",
            "give a condition that holds on part of the face (check the numbers against the bounds)",
        )
