"""Figures (matplotlib, Agg, PNG, no pyplot): the standard panels of a solution
(:func:`figures`), of a reference (:func:`reference_figures`) and of finite-horizon solutions
(:func:`finite_horizon_figures`).

Every axes has a title and axis labels (colour bars a label). Errors are drawn against the
reference when one is given, else against the exact solution, and a panel with nothing to draw (no
reference nor exact solution, a quantity the training did not record) is left out, never drawn
empty."""

from .panels import figures, reference_figures
from .space_time import finite_horizon_figures

__all__ = ["figures", "finite_horizon_figures", "reference_figures"]
