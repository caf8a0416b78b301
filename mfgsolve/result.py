"""The result protocol: what every result type (network :class:`~mfgsolve.solution.Solution`,
finite-difference :class:`~mfgsolve.reference.ReferenceSolution`,
:class:`~mfgsolve.fbsde.FBSDESolution`) offers to ``compare``, the figures and the CLI.

Results are told apart by their ``kind`` attribute, never by which attributes they happen to have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["RESULT_KINDS", "Result", "result_kind"]

# "network": trained networks (residual norms by autograd); "reference": values on a grid (its
# quadrature is the grid's); "fbsde": an FBSDE model (Y_0, paths); "exact": a known solution given
# as an object (value/density methods), e.g. from Riccati ODEs
RESULT_KINDS = ("network", "reference", "fbsde", "exact")


@runtime_checkable
class Result(Protocol):
    """What a result offers.

    Attributes:
        kind: one of :data:`RESULT_KINDS`.
        problem: the problem it solves.
        info: how it was obtained (method or scheme, sizes, seconds).
        history: training or Newton records (a list of dicts; may be empty).
    """

    kind: str
    problem: Any
    info: dict[str, Any]
    history: list[dict[str, Any]]

    def value(self, points: Any) -> np.ndarray:
        """u at ``points`` (n, d), or (n, 1 + d) with time first."""
        ...

    def save(self, directory: str | Path) -> Path:
        """Write the result into ``directory`` (atomically)."""
        ...


def result_kind(obj: Any) -> str:
    """The kind of a result or known solution (an object without ``kind`` is a known solution)."""
    return getattr(obj, "kind", "exact")
