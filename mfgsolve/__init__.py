"""mfgsolve: mean field games written in sympy, solved as GANs, checked against finite differences.

Public API (see docs/): problems (:class:`Torus`, :class:`Box`, :class:`ErgodicMFG`, :class:`MFG`,
:class:`FBSDE`, :class:`Expectation`, :func:`load_problem`), solving (:func:`solve`,
:class:`SolverOptions`, :class:`Solution`), classical numerics (:func:`reference_solve`,
:class:`ReferenceSolution`), :func:`compare` (every result kind) and the errors users catch
(:mod:`mfgsolve.errors`).

Data flows one way: ``problem`` (sympy) -> ``lowering`` (torch) -> ``nn`` + ``train`` (the solver)
-> ``solution`` -> ``metrics`` / ``plotting``; ``reference`` solves the same problem by finite
differences.
"""

from .errors import (
    BadInput,
    CheckpointError,
    FBSDEDivergedError,
    MfgsolveError,
    OptionError,
    ProblemError,
    ReferenceSolveError,
    RunFailed,
    TrainingDiverged,
)
from .fbsde import FBSDE, FBSDESolution, compare_fbsde, solve_fbsde
from .metrics import compare
from .nonlocal_terms import Expectation
from .options import SolverOptions
from .problem import MFG, Box, ErgodicMFG, Torus, load_problem
from .reference import ReferenceSolution, reference_solve
from .solution import Solution
from .solver import solve

__version__ = "0.1.0"

__all__ = [
    "BadInput",
    "Box",
    "CheckpointError",
    "ErgodicMFG",
    "Expectation",
    "FBSDE",
    "FBSDEDivergedError",
    "FBSDESolution",
    "MFG",
    "MfgsolveError",
    "OptionError",
    "ProblemError",
    "ReferenceSolution",
    "ReferenceSolveError",
    "RunFailed",
    "Solution",
    "SolverOptions",
    "Torus",
    "TrainingDiverged",
    "compare",
    "compare_fbsde",
    "load_problem",
    "reference_solve",
    "solve",
    "solve_fbsde",
]
