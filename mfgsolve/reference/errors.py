"""Errors raised by the reference solver."""

from __future__ import annotations

from ..problem import ProblemError


class ReferenceSolveError(RuntimeError):
    """Newton (and its fallbacks) did not converge. The message is one line: what, residual, fix."""


class SchemeNotApplicable(ProblemError):
    """The requested discretisation cannot be used on this problem (one line: why, and the fix)."""
