"""The result of :func:`~mfgsolve.reference.reference_solve`: fields on a grid, evaluated by
interpolation, saved and loaded safely."""

from __future__ import annotations

import inspect
import io
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from .._io import CheckpointError, atomic_write_bytes, atomic_write_json, read_json

_FORMAT = "mfgsolve-reference-1"
# scipy >= 1.13 fits the cubic spline by an iterative solver stopped at atol 1e-6: the interpolant
# then misses the nodes by up to ~1e-4 and its digits depend on the scipy version. Solved to a
# relative residual of 1e-14 it meets them to ~1e-14 and stays fast in 3-D (a direct sparse solve
# takes ~10 s for 30^3 nodes); scipy < 1.13 fits the spline directly.
_SPLINE_SOLVER = (
    {"solver_args": {"rtol": 1e-14, "atol": 0.0}}
    if "solver_args" in inspect.signature(RegularGridInterpolator.__init__).parameters
    else {}
)


class ReferenceSolution:
    """Finite-difference solution of an MFG on a tensor grid.

    Attributes:
        problem: the problem solved.
        grid: tuple of 1-D arrays, the space nodes per axis.
        times: 1-D array of time nodes (finite horizon) or None (ergodic).
        u, m: arrays of shape ``(n1, ..., nd)`` (ergodic) or ``(nt, n1, ..., nd)``; with K
            populations ``(K, n1, ..., nd)``.
        constant: the ergodic constant (None for finite horizon; a list of K for K populations).
        error_estimate: the solver's own error estimate (``m_rel_l2``, ``u_l2``, ``constant_abs``,
            ``observed_order`` when Richardson extrapolation ran).
        history: one dict per Newton iteration (all grids and stages, tagged).
        info: scheme, grid sizes, seconds, Newton iterations, mass drift, ...
    """

    kind = "reference"

    def __init__(
        self,
        problem: Any,
        grid: tuple[np.ndarray, ...],
        u: np.ndarray,
        m: np.ndarray,
        *,
        times: np.ndarray | None = None,
        constant: float | list[float] | None = None,
        error_estimate: dict | None = None,
        history: list[dict] | None = None,
        info: dict | None = None,
    ):
        self.problem = problem
        self.grid = tuple(np.asarray(a, dtype=float) for a in grid)
        self.times = None if times is None else np.asarray(times, dtype=float)
        self.u = np.asarray(u, dtype=float)
        self.m = np.asarray(m, dtype=float)
        self.populations = getattr(problem, "populations", 1)
        if constant is None:
            self.constant = None
        elif self.populations > 1:
            self.constant = [float(c) for c in constant]
        else:
            self.constant = float(constant)
        self.error_estimate = dict(error_estimate or {})
        self.history = list(history or [])
        self.info = dict(info or {})
        self._interp: dict[tuple[str, int | None], RegularGridInterpolator] = {}

    # --- evaluation -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.grid)

    def quadrature_weights(self) -> np.ndarray:
        """Weights of the grid's quadrature (rectangle rule on a torus, midpoint rule on a box),
        with the shape of the space part of ``u``."""
        steps = [self._step(k) for k in range(self.dim)]
        return np.full(tuple(len(a) for a in self.grid), float(np.prod(steps)))

    def _step(self, k: int) -> float:
        lo, hi = self.problem.domain.lower[k], self.problem.domain.upper[k]
        return float((hi - lo) / len(self.grid[k]))

    def _interpolator(self, which: str, k: int | None = None) -> RegularGridInterpolator:
        """Tensor-product cubic interpolation (linear where an axis has fewer than 4 nodes), with
        ghost nodes: periodic wrap on a torus, mirror images across the walls on a Neumann box
        (cell-centred nodes, zero normal derivative); ``k``: the population (several)."""
        if (which, k) in self._interp:
            return self._interp[(which, k)]
        values = self.u if which == "u" else self.m
        if k is not None:
            values = values[k]
        domain = self.problem.domain
        lead = 0 if self.times is None else 1
        axes = [] if self.times is None else [self.times]
        pad = 3
        for axis, nodes in enumerate(self.grid):
            ax = lead + axis
            n, h = len(nodes), self._step(axis)
            if domain.periodic_axes[axis]:
                index = np.arange(-pad, n + pad) % n
            else:  # mirror: ghost node lower - (j + 1/2) h carries the value of node j
                index = np.concatenate(
                    [np.arange(pad - 1, -1, -1), np.arange(n), np.arange(n - 1, n - 1 - pad, -1)]
                )
                index = np.clip(index, 0, n - 1)
            values = np.take(values, index, axis=ax)
            coords = [*axes, nodes[0] + h * np.arange(-pad, n + pad), *self.grid[axis + 1 :]]
            for face in domain.exits:
                if face.axis == axis:
                    values = self._exit_ghosts(values, which, face, coords, lead, pad)
            axes.append(coords[ax])
        method = "cubic" if all(len(a) >= 4 for a in axes) else "linear"
        interp = RegularGridInterpolator(
            tuple(axes),
            values,
            method=method,
            bounds_error=False,
            fill_value=None,
            **(_SPLINE_SOLVER if method == "cubic" else {}),
        )
        self._interp[(which, k)] = interp
        return interp

    def _exit_ghosts(self, values, which: str, face, coords, lead: int, pad: int) -> np.ndarray:
        """The ghost layers beyond an exit reflected about the boundary value b (the exit cost
        for u, 0 for m), ``2 b - v``, where the face is in the door: the field then equals b on
        the exit to second order, as in the scheme (see :mod:`._grid`)."""
        ax = lead + face.axis
        layers = (
            np.arange(pad)
            if face.side == 0
            else np.arange(values.shape[ax] - pad, values.shape[ax])
        )
        slab_coords = list(coords)
        slab_coords[ax] = np.full(pad, face.position)  # b and the door at the face's point
        mesh = np.meshgrid(*slab_coords, indexing="ij")
        space = np.stack([g.ravel() for g in mesh[lead:]], axis=1)
        inside = face.condition.door_mask(self.problem.domain.symbols, space).reshape(mesh[0].shape)
        if which == "u":
            args = (
                (self.problem.time, *self.problem.domain.symbols)
                if lead
                else self.problem.domain.symbols
            )
            cols = np.stack([g.ravel() for g in mesh], axis=1)
            expr = self.problem.substitute(face.condition.value)
            b = face.condition.values_at(args, expr, cols).reshape(mesh[0].shape)
        else:
            b = 0.0
        slab = np.take(values, layers, axis=ax)
        mirrored = np.where(inside, 2 * b - slab, slab)
        out = values.copy()
        index = [slice(None)] * values.ndim
        index[ax] = layers
        out[tuple(index)] = mirrored
        return out

    def _points(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=float)
        width = self.dim + (0 if self.times is None else 1)
        if pts.ndim == 1 and width == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[1] != width:
            layout = "(n, d)" if self.times is None else "(n, 1 + d) with time first"
            raise ValueError(
                f"reference solution of '{self.problem.name}': points have shape {pts.shape}, "
                f"expected {layout} with d = {self.dim}; fix: pass an array of that shape"
            )
        pts = pts.copy()
        domain = self.problem.domain
        lead = 0 if self.times is None else 1
        for k, periodic in enumerate(domain.periodic_axes):
            if periodic:
                lo, period = domain.lower[k], domain.upper[k] - domain.lower[k]
                pts[:, lead + k] = lo + np.mod(pts[:, lead + k] - lo, period)
        return pts

    def value(self, points: np.ndarray) -> np.ndarray:
        """u at ``points`` ((n, d), or (n, 1 + d) time first), by cubic interpolation; (n, K)
        with K populations."""
        return self._evaluate("u", points)

    def density(self, points: np.ndarray) -> np.ndarray:
        """m at ``points``, by cubic interpolation; (n, K) with K populations."""
        return self._evaluate("m", points)

    def _evaluate(self, which: str, points: np.ndarray) -> np.ndarray:
        pts = self._points(points)
        if self.populations == 1:
            return self._interpolator(which)(pts)
        return np.stack([self._interpolator(which, k)(pts) for k in range(self.populations)], 1)

    # --- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``reference.npz`` (arrays) and ``reference.json`` (metadata) atomically.

        Returns:
            The directory.
        """
        directory = Path(directory)
        arrays = {"u": self.u, "m": self.m}
        for k, nodes in enumerate(self.grid):
            arrays[f"axis{k}"] = nodes
        if self.times is not None:
            arrays["times"] = self.times
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(directory / "reference.npz", buf.getvalue())
        meta = {
            "format": _FORMAT,
            "problem": self.problem.name,
            "source": getattr(self.problem, "source", None),
            "kind": getattr(self.problem, "kind", None),
            "dim": self.dim,
            "constant": self.constant,
            "error_estimate": self.error_estimate,
            "history": self.history,
            "info": self.info,
        }
        atomic_write_json(directory / "reference.json", meta)
        return directory

    @classmethod
    def load(cls, directory: str | Path, problem: Any = None) -> ReferenceSolution:
        """Read a solution written by :meth:`save`.

        Args:
            directory: the folder holding ``reference.npz`` and ``reference.json``.
            problem: the problem; if None it is re-loaded from the saved source path.

        Raises:
            CheckpointError: missing or damaged files, or no way to recover the problem.
        """
        directory = Path(directory)
        meta = read_json(directory / "reference.json")
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise CheckpointError(
                f"{directory}: not a reference solution written by mfgsolve; fix: point to a folder written by ReferenceSolution.save"
            )
        path = directory / "reference.npz"
        if not path.is_file():
            raise CheckpointError(f"{path}: file not found; fix: re-run the reference solve")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.array(data[k]) for k in data.files}
        except Exception as exc:  # noqa: BLE001 - any failure means a damaged file
            raise CheckpointError(
                f"{path}: damaged ({type(exc).__name__}); fix: delete it and re-run the reference solve"
            ) from None
        if problem is None:
            source = meta.get("source")
            if not source:
                raise CheckpointError(
                    f"{directory}: the problem was not loaded from a file, so it cannot be recovered; fix: pass problem=..."
                )
            from ..problem import load_problem

            problem = load_problem(source)
        dim = meta.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise CheckpointError(
                f"{directory}: damaged reference.json (dim is {dim!r}, not a positive integer); "
                "fix: delete it and re-run the reference solve"
            )
        missing = [k for k in ["u", "m", *(f"axis{k}" for k in range(dim))] if k not in arrays]
        if missing:
            raise CheckpointError(
                f"{path}: arrays {missing} missing; fix: delete it and re-run the reference solve"
            )
        if getattr(problem, "dim", dim) != dim:
            raise CheckpointError(
                f"{directory}: saved in {dim} dimensions but problem '{problem.name}' has {problem.dim}; fix: pass the matching problem"
            )
        _check_saved(directory, path, problem, meta, arrays, dim)
        return cls(
            problem,
            tuple(arrays[f"axis{k}"] for k in range(dim)),
            arrays["u"],
            arrays["m"],
            times=arrays.get("times"),
            constant=meta.get("constant"),
            error_estimate=meta.get("error_estimate"),
            history=meta.get("history"),
            info=meta.get("info"),
        )

    def __repr__(self) -> str:
        shape = "x".join(str(len(a)) for a in self.grid)
        t = "" if self.times is None else f", nt={len(self.times)}"
        return f"ReferenceSolution(problem={self.problem.name!r}, grid={shape}{t})"


def _check_saved(directory: Path, path: Path, problem, meta: dict, arrays: dict, dim: int) -> None:
    """Arrays and metadata that fit together and the problem (one line naming what does not)."""

    def damaged(where: Path, what: str) -> CheckpointError:
        return CheckpointError(
            f"{where}: damaged ({what}); fix: delete it and re-run the reference solve"
        )

    kind = getattr(problem, "kind", None)
    if meta.get("kind") not in (None, kind):
        raise CheckpointError(
            f"{directory}: a reference of a {meta.get('kind')} problem, but problem "
            f"'{problem.name}' is {kind}; fix: pass the problem it was solved for"
        )
    for key, types in (("error_estimate", dict), ("history", list), ("info", dict)):
        if meta.get(key) is not None and not isinstance(meta[key], types):
            raise damaged(directory / "reference.json", f"{key} is not a {types.__name__}")
    constant = meta.get("constant")
    ergodic = kind == "ergodic"
    populations = getattr(problem, "populations", 1)
    has_constant = bool(getattr(problem, "constants", ()))  # not a DiscountedMFG

    def number(c) -> bool:
        return isinstance(c, (int, float)) and not isinstance(c, bool) and bool(np.isfinite(c))

    if populations > 1 and not has_constant:
        if constant is not None:
            raise damaged(
                directory / "reference.json",
                "constant is not null (a reference of a problem without ergodic constants has none)",
            )
    elif populations > 1:
        if not (
            isinstance(constant, list)
            and len(constant) == populations
            and all(map(number, constant))
        ):
            raise damaged(
                directory / "reference.json", f"constant is not a list of {populations} numbers"
            )
    elif (has_constant and not number(constant)) or (not has_constant and constant is not None):
        what = (
            "a finite number"
            if has_constant
            else "null (a reference of a problem without an ergodic constant has none)"
        )
        raise damaged(directory / "reference.json", f"constant is not {what}")
    try:
        values = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    except (TypeError, ValueError):
        raise damaged(path, "arrays that are not numbers") from None
    axes = [values[f"axis{k}"] for k in range(dim)]
    if any(a.ndim != 1 or a.size < 1 or np.any(np.diff(a) <= 0) for a in axes):
        raise damaged(path, "axes that are not increasing 1-D arrays")
    shape = tuple(a.size for a in axes)
    if ergodic == ("times" in values):
        raise damaged(path, "times " + ("present" if ergodic else "missing"))
    if not ergodic:
        times = values["times"]
        if times.ndim != 1 or times.size < 2 or np.any(np.diff(times) <= 0):
            raise damaged(path, "times that are not increasing 1-D arrays")
        shape = (times.size, *shape)
    if populations > 1:
        shape = (populations, *shape)
    for key in ("u", "m"):
        if values[key].shape != shape:
            raise damaged(path, f"{key} has shape {values[key].shape}, not {shape}")
    if not all(np.all(np.isfinite(v)) for v in values.values()):
        raise damaged(path, "non-finite values")
