"""Uniform grids on a torus (vertex nodes) or a Neumann box (cell centres) with sparse difference
operators.

Periodic axes use nodes ``x_i = i h`` with ``h = L / n``; box axes use cell centres
``x_i = lo + (i + 1/2) h`` with ``h = (hi - lo) / n`` and reflected ghost values, so that the one-sided
differences vanish across the wall (homogeneous Neumann for u, no flux for m). Unknowns are
flattened in C order (axis 0 slowest). Quadrature is the rectangle (torus) or midpoint (box) rule,
both with weight ``prod h``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import scipy.sparse as sps


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


class Grid:
    """Tensor grid for a :class:`~mfgsolve.Torus` or :class:`~mfgsolve.Box`.

    Args:
        domain: the problem's domain.
        sizes: number of nodes per axis.
    """

    def __init__(self, domain, sizes: Sequence[int]):
        self.domain = domain
        self.periodic = bool(domain.periodic)
        self.sizes = tuple(int(n) for n in sizes)
        self.dim = len(self.sizes)
        lower, upper = np.asarray(domain.lower, float), np.asarray(domain.upper, float)
        self.lower, self.upper = lower, upper
        self.steps = tuple((upper[k] - lower[k]) / n for k, n in enumerate(self.sizes))
        if self.periodic:
            self.axes = tuple(
                lower[k] + self.steps[k] * np.arange(n) for k, n in enumerate(self.sizes)
            )
        else:
            self.axes = tuple(
                lower[k] + self.steps[k] * (np.arange(n) + 0.5) for k, n in enumerate(self.sizes)
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
    def forward(self) -> tuple[sps.csr_matrix, ...]:
        """Forward differences ``(u_{i+1} - u_i) / h`` per axis (zero across a box wall)."""
        out = []
        for k, n in enumerate(self.sizes):
            op = (_shift_forward(n, self.periodic) - sps.identity(n)) / self.steps[k]
            out.append(self._embed(op, k))
        return tuple(out)

    @cached_property
    def backward(self) -> tuple[sps.csr_matrix, ...]:
        """Backward differences ``(u_i - u_{i-1}) / h`` per axis."""
        out = []
        for k, n in enumerate(self.sizes):
            op = (sps.identity(n) - _shift_backward(n, self.periodic)) / self.steps[k]
            out.append(self._embed(op, k))
        return tuple(out)

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

        Torus nodes are shared (injection); box cell centres take the mean of the ``factor**d``
        fine cells they contain, which is second-order accurate.
        """
        fine = np.asarray(fine)
        if self.periodic:
            sl = tuple(slice(None, None, factor) for _ in range(self.dim))
            return fine[(...,) + sl]
        lead = fine.shape[: fine.ndim - self.dim]
        shape = list(lead)
        for n in self.sizes:
            shape += [n, factor]
        blocks = fine.reshape(shape)
        axes = tuple(len(lead) + 2 * k + 1 for k in range(self.dim))
        return blocks.mean(axis=axes)
