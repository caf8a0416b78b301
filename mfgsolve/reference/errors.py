"""Errors raised by the reference solver."""

from __future__ import annotations

from ..errors import ProblemError, ReferenceSolveError

__all__ = ["ReferenceSolveError", "SchemeNotApplicable"]


class SchemeNotApplicable(ProblemError):
    """The requested discretisation cannot be used on this problem (one line: why, and the fix)."""
