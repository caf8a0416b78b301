"""Uniform grids on a torus (vertex nodes) or a box (cell centres) with sparse difference operators.

Periodic axes use nodes ``x_i = i h`` with ``h = L / n``; the other axes of a box use cell centres
``x_i = lo + (i + 1/2) h`` with ``h = (hi - lo) / n`` and a ghost value beyond each face:

- a wall reflects (``u_ghost = u_0``), so the one-sided differences vanish across it
  (homogeneous Neumann for u, no flux for m);
- an exit (:class:`~mfgsolve.Exit`) reflects with the opposite sign about its boundary value b,
  ``u_ghost = 2 b - u_0``, so the field equals b on the face to second order. The operators
  hold the linear part (``-u_0``) for every field; the value's exit cost enters as an offset
  (:meth:`Grid.exit_offsets`); the density's boundary value is 0 (absorbed).

A door (an exit on part of a face) takes the exit's rule at the boundary nodes whose projection on
the face is in the door and the wall's elsewhere. Unknowns are flattened in C order (axis 0
slowest). Quadrature is the rectangle (periodic) or midpoint (cell-centred) rule, weight ``prod h``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sps

from ..errors import ProblemError


def _shift_forward(n: int, periodic: bool) -> sps.csr_matrix:
    """Matrix of ``u -> u_{i+1}`` (wrapped on a torus, reflected ``u_n = u_{n-1}`` on a box)."""
    rows = np.arange(n)
    cols = rows + 1
    if periodic:
        cols = cols % n
    else:
        cols[-1] = n - 1
    return sps.csr_matrix((np.ones(n), (rows, cols)), shape=(n, n))


def _shift_backward(n: int, periodic: bool) -> sps.csr_matrix:
    rows = np.arange(n)
    cols = rows - 1
    if periodic:
        cols = cols % n
    else:
        cols[0] = 0
    return sps.csr_matrix((np.ones(n), (rows, cols)), shape=(n, n))


@dataclass(frozen=True)
class ExitNodes:
    """The boundary nodes of one exit: ``index`` into the grid's nodes (C order), ``face``: their
    projections on the face (the points where the boundary value is taken), and the face."""

    axis: int
    side: int
    index: np.ndarray
    face: np.ndarray
    exit: object


class Grid:
    """Tensor grid for a :class:`~mfgsolve.Torus` or :class:`~mfgsolve.Box`.

    Args:
        domain: the problem's domain.
        sizes: number of nodes per axis.
    """

    def __init__(self, domain, sizes: Sequence[int]):
        self.domain = domain
        self.periodic_axes = tuple(bool(p) for p in domain.periodic_axes)
        self.periodic = all(self.periodic_axes)
        self.sizes = tuple(int(n) for n in sizes)
        self.dim = len(self.sizes)
        lower, upper = np.asarray(domain.lower, float), np.asarray(domain.upper, float)
        self.lower, self.upper = lower, upper
        self.steps = tuple((upper[k] - lower[k]) / n for k, n in enumerate(self.sizes))
        self.axes = tuple(
            lower[k] + self.steps[k] * (np.arange(n) + (0.0 if periodic else 0.5))
            for k, (n, periodic) in enumerate(zip(self.sizes, self.periodic_axes))
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.sizes

    @property
    def size(self) -> int:
        return int(np.prod(self.sizes))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.steps))

    @cached_property
    def points(self) -> np.ndarray:
        """Nodes as an ``(N, d)`` array in C order."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([g.ravel() for g in mesh], axis=1)

    def weights(self) -> np.ndarray:
        """Quadrature weights with the grid's shape (they sum to the domain's volume)."""
        return np.full(self.sizes, self.cell_volume)

    def _embed(self, op: sps.spmatrix, axis: int) -> sps.csr_matrix:
        before = int(np.prod(self.sizes[:axis]))
        after = int(np.prod(self.sizes[axis + 1 :]))
        out = op
        if after > 1:
            out = sps.kron(out, sps.identity(after, format="csr"), format="csr")
        if before > 1:
            out = sps.kron(sps.identity(before, format="csr"), out, format="csr")
        return sps.csr_matrix(out)

    @cached_property
    def exits(self) -> tuple[ExitNodes, ...]:
        """The boundary nodes of every exit (door) of the domain, one item per exit face."""
        out = []
        for face in self.domain.exits:
            k = face.axis
            along = np.unravel_index(np.arange(self.size), self.sizes)[k]
            index = np.flatnonzero(along == (0 if face.side == 0 else self.sizes[k] - 1))
            proj = self.points[index].copy()
            proj[:, k] = face.position
            inside = face.condition.door_mask(self.domain.symbols, proj)
            if not inside.any():
                shape = "x".join(map(str, self.sizes))
                raise ProblemError(
                    f"the door of the exit on {face.label} holds at no boundary node of the "
                    f"{shape} grid; fix: a finer grid, or a wider door"
                )
            out.append(ExitNodes(k, face.side, index[inside], proj[inside], face.condition))
        return tuple(out)

    def _exit_rows(self, axis: int, side: int) -> np.ndarray:
        """An (N,) 0/1 vector marking the boundary nodes of the exits on face (axis, side)."""
        mark = np.zeros(self.size)
        for e in self.exits:
            if (e.axis, e.side) == (axis, side):
                mark[e.index] = 1.0
        return mark

    @cached_property
    def forward(self) -> tuple[sps.csr_matrix, ...]:
        """Forward differences ``(u_{i+1} - u_i) / h`` per axis (zero across a box wall,
        ``-2 u_i / h`` across an exit: the linear part of ``(2 b - 2 u_i) / h``)."""
        out = []
        for k, n in enumerate(self.sizes):
            op = (_shift_forward(n, self.periodic_axes[k]) - sps.identity(n)) / self.steps[k]
            op = self._embed(op, k)
            exits = self._exit_rows(k, 1)
            if exits.any():
                op = sps.csr_matrix(op - sps.diags(2 * exits / self.steps[k]))
            out.append(op)
        return tuple(out)

    @cached_property
    def backward(self) -> tuple[sps.csr_matrix, ...]:
        """Backward differences ``(u_i - u_{i-1}) / h`` per axis (``2 u_i / h`` across an exit)."""
        out = []
        for k, n in enumerate(self.sizes):
            op = (sps.identity(n) - _shift_backward(n, self.periodic_axes[k])) / self.steps[k]
            op = self._embed(op, k)
            exits = self._exit_rows(k, 0)
            if exits.any():
                op = sps.csr_matrix(op + sps.diags(2 * exits / self.steps[k]))
            out.append(op)
        return tuple(out)

    def exit_offsets(self, values: Sequence[np.ndarray]) -> tuple[list, list]:
        """The parts of the forward and backward differences that come from boundary values:
        per axis, (N,) vectors ``2 b / h`` at the upper exits' nodes and ``-2 b / h`` at the lower
        ones (``values``: b at the nodes of each item of :attr:`exits`, in that order)."""
        fwd = [np.zeros(self.size) for _ in range(self.dim)]
        bwd = [np.zeros(self.size) for _ in range(self.dim)]
        for e, b in zip(self.exits, values):
            h = self.steps[e.axis]
            if e.side == 1:
                fwd[e.axis][e.index] += 2 * np.asarray(b) / h
            else:
                bwd[e.axis][e.index] -= 2 * np.asarray(b) / h
        return fwd, bwd

    @cached_property
    def second(self) -> tuple[sps.csr_matrix, ...]:
        """Second differences ``(D+ - D-) / h`` per axis (symmetric)."""
        return tuple(
            sps.csr_matrix((self.forward[k] - self.backward[k]) / self.steps[k])
            for k in range(self.dim)
        )

    @cached_property
    def laplacian(self) -> sps.csr_matrix:
        out = self.second[0]
        for k in range(1, self.dim):
            out = out + self.second[k]
        return sps.csr_matrix(out)

    @cached_property
    def centred(self) -> tuple[sps.csr_matrix, ...]:
        """Centred first differences ``(u_{i+1} - u_{i-1}) / (2 h)`` per axis."""
        return tuple(
            sps.csr_matrix((self.forward[k] + self.backward[k]) / 2) for k in range(self.dim)
        )

    def refined(self, factor: int = 2) -> Grid:
        return Grid(self.domain, [n * factor for n in self.sizes])

    def restrict(self, fine: np.ndarray, factor: int = 2) -> np.ndarray:
        """Values of a field on the grid ``self.refined(factor)`` brought back to this grid's nodes.

        Periodic nodes are shared (injection); cell centres take the mean of the ``factor``
        fine cells they contain along their axis, which is second-order accurate.
        """
        fine = np.asarray(fine)
        lead = fine.ndim - self.dim
        if self.periodic:
            sl = tuple(slice(None, None, factor) for _ in range(self.dim))
            return fine[(...,) + sl]
        if not any(self.periodic_axes):  # the means over all axes at once
            shape = list(fine.shape[:lead])
            for n in self.sizes:
                shape += [n, factor]
            axes = tuple(lead + 2 * k + 1 for k in range(self.dim))
            return fine.reshape(shape).mean(axis=axes)
        out = fine
        for k, (n, periodic) in enumerate(zip(self.sizes, self.periodic_axes)):
            ax = lead + k
            if periodic:
                out = np.take(out, np.arange(0, n * factor, factor), axis=ax)
            else:
                shape = out.shape[:ax] + (n, factor) + out.shape[ax + 1 :]
                out = out.reshape(shape).mean(axis=ax + 1)
        return out
