"""``Fields``: one grid's discrete solution, shared by the driver and the finite-horizon solver.

Its own module so that :mod:`mfgsolve.reference.solve` (which calls the per-kind solvers) and
:mod:`mfgsolve.reference._finite_horizon` (which returns ``Fields``) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Fields:
    """One grid's discrete solution (``u``, ``m`` with time first for finite horizon)."""

    u: np.ndarray
    m: np.ndarray
    constant: float | None
    history: list[dict] = field(default_factory=list)
    iterations: int = 0
