"""Finite-difference reference solvers (scipy.sparse + Newton) that network answers are checked
against: :func:`reference_solve` returns a :class:`ReferenceSolution`."""

from .errors import ReferenceSolveError, SchemeNotApplicable
from .solution import ReferenceSolution
from .solve import reference_solve

__all__ = ["ReferenceSolution", "ReferenceSolveError", "SchemeNotApplicable", "reference_solve"]
