"""mfgsolve: mean field games written in sympy, solved as GANs, checked against finite differences.

Public API (see docs/): problems (:class:`Torus`, :class:`Box`, :class:`ErgodicMFG`, :class:`MFG`,
:func:`load_problem`), solving (:func:`solve`, :class:`Solution`), classical numerics
(:func:`reference_solve`, :class:`ReferenceSolution`) and :func:`compare`.
"""

from .compare import compare
from .fbsde import FBSDE, FBSDESolution, compare_fbsde, solve_fbsde
from .nonlocal_terms import Expectation
from .problem import MFG, Box, ErgodicMFG, ProblemError, Torus, load_problem
from .reference import ReferenceSolution, ReferenceSolveError, reference_solve
from .solution import Solution, solve

__version__ = "0.1.0"

__all__ = [
    "Box",
    "ErgodicMFG",
    "Expectation",
    "FBSDE",
    "FBSDESolution",
    "MFG",
    "ProblemError",
    "ReferenceSolution",
    "ReferenceSolveError",
    "Torus",
    "Solution",
    "compare",
    "compare_fbsde",
    "load_problem",
    "reference_solve",
    "solve",
    "solve_fbsde",
]
