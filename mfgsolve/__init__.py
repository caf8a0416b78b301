"""mfgsolve: mean field games written in sympy, solved as GANs, checked against finite differences.

Public API (see docs/): problems (:class:`Torus`, :class:`Box`, :class:`ErgodicMFG`, :class:`DiscountedMFG`, :class:`MFG`,
:class:`FBSDE`, :class:`Expectation`, :func:`load_problem`), solving (:func:`solve`,
:class:`SolverOptions`, :class:`Solution`), classical numerics (:func:`reference_solve`,
:class:`ReferenceSolution`), :func:`compare` (every result kind) and the errors users catch
(:mod:`mfgsolve.errors`).

Data flows one way: ``problem`` (sympy) -> ``lowering`` (torch) -> ``nn`` + ``train`` (the solver)
-> ``solution`` -> ``metrics`` / ``plotting``; ``reference`` solves the same problem by finite
differences.

The names are imported on first use (PEP 562, as scipy does): ``import mfgsolve`` and the command
line's ``--help`` stay fast, and torch, scipy and matplotlib load only where they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # what the lazy table below resolves to, for type checkers and editors
    from .boundary import Exit
    from .fbsde import FBSDE, FBSDESolution, compare_fbsde, solve_fbsde
    from .metrics import compare
    from .nonlocal_terms import Expectation
    from .options import SolverOptions
    from .problem import MFG, Box, DiscountedMFG, ErgodicMFG, Rd, Torus, load_problem
    from .reference import ReferenceSolution, reference_solve
    from .solution import Solution
    from .solver import solve

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "FBSDE": ".fbsde",
    "FBSDESolution": ".fbsde",
    "compare_fbsde": ".fbsde",
    "solve_fbsde": ".fbsde",
    "compare": ".metrics",
    "Expectation": ".nonlocal_terms",
    "SolverOptions": ".options",
    "MFG": ".problem",
    "Box": ".problem",
    "DiscountedMFG": ".problem",
    "ErgodicMFG": ".problem",
    "Exit": ".boundary",
    "Torus": ".problem",
    "Rd": ".problem",
    "load_problem": ".problem",
    "ReferenceSolution": ".reference",
    "reference_solve": ".reference",
    "Solution": ".solution",
    "solve": ".solver",
}

__all__ = [
    "BadInput",
    "Box",
    "CheckpointError",
    "DiscountedMFG",
    "ErgodicMFG",
    "Exit",
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
    "Rd",
    "TrainingDiverged",
    "compare",
    "compare_fbsde",
    "load_problem",
    "reference_solve",
    "solve",
    "solve_fbsde",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mfgsolve' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
