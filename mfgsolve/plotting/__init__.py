"""Figures (matplotlib, Agg, PNG, no pyplot): the standard panels of a solution
(:func:`figures`), of a reference (:func:`reference_figures`) and of finite-horizon solutions
(:func:`finite_horizon_figures`)."""

from .panels import figures, reference_figures
from .space_time import finite_horizon_figures

__all__ = ["figures", "finite_horizon_figures", "reference_figures"]
