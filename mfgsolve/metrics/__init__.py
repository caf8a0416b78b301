"""Errors of a solution against an exact solution or a reference, with stated quadratures.

- :mod:`.comparison`: :func:`compare` (every result kind) and the residual norms of network
  solutions;
- :mod:`.space_time`: finite-horizon errors over time and space-time residual norms;
- :mod:`._integrals`: the error integrals shared with the training history, and "what is the
  exact solution" (:func:`known_solution`).
"""

from ._integrals import known_solution
from .comparison import compare, residual_norms
from .space_time import errors_over_time

__all__ = ["compare", "errors_over_time", "known_solution", "residual_norms"]
