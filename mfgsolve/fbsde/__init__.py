"""Forward-backward SDEs written in sympy, solved by deep BSDE or an adversarial (weak-form) method.

See docs/fbsde.md. Public names: :class:`FBSDE`, :func:`solve_fbsde`, :class:`FBSDESolution`,
:func:`compare_fbsde`, and the expression helpers :class:`vsum` (sum over components) and :class:`E`
(mean over the population, for McKean-Vlasov terms).
"""

from ._lower import E, vsum
from .problem import FBSDE
from .solution import FBSDESolution, compare_fbsde
from .solve import FBSDEDivergedError, solve_fbsde

__all__ = [
    "FBSDE",
    "solve_fbsde",
    "FBSDESolution",
    "compare_fbsde",
    "FBSDEDivergedError",
    "vsum",
    "E",
]
