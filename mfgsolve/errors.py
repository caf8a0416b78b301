"""The errors mfgsolve raises, in one hierarchy.

- :class:`BadInput` (exit status 2 in the command line): something the user gave is wrong; the
  message is one line that names it and the fix. :class:`ProblemError` (a problem file or a
  problem object), :class:`OptionError` (a solver option) and :class:`CheckpointError` (a saved
  run or solution) are its kinds.
- :class:`RunFailed` (exit status 1): the input was fine but the computation did not succeed:
  :class:`TrainingDiverged`, :class:`ReferenceSolveError`, :class:`FBSDEDivergedError`.

The command line maps these two families to its exit statuses; nothing else decides them.
"""

from __future__ import annotations

__all__ = [
    "MfgsolveError",
    "BadInput",
    "ProblemError",
    "OptionError",
    "CheckpointError",
    "RunFailed",
    "TrainingDiverged",
    "ReferenceSolveError",
    "FBSDEDivergedError",
]


class MfgsolveError(Exception):
    """Base of every error mfgsolve raises on purpose; ``exit_status`` is the CLI's."""

    exit_status = 1


class BadInput(MfgsolveError, ValueError):
    """Bad input: one line naming what is wrong and the fix (exit status 2)."""

    exit_status = 2


class ProblemError(BadInput):
    """A problem file or problem definition is invalid (the message names the fix)."""


class OptionError(ProblemError):
    """A solver option is unknown, out of range or does not apply to the problem."""


class CheckpointError(BadInput):
    """A checkpoint or saved solution is missing, corrupted or not an mfgsolve file."""


class RunFailed(MfgsolveError, RuntimeError):
    """A run that failed although its input was valid (exit status 1)."""

    exit_status = 1


class TrainingDiverged(RunFailed):
    """Training produced NaN/Inf and could not recover. The message names the iteration and loss."""


class ReferenceSolveError(RunFailed):
    """Newton (and its fallbacks) did not converge. The message is one line: what, residual, fix."""


class FBSDEDivergedError(RunFailed):
    """FBSDE training produced NaN/Inf; the message says when and what to change."""
