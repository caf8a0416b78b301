"""Lowering: sympy residuals -> torch functions of collocation points and the unknown fields.

- :mod:`.residuals`: the HJB and FP residuals of a problem (:func:`lower`), derivative caches;
- :mod:`.space_time`: finite-horizon residuals with their nonlocal terms and wall conditions.
"""

from .residuals import (
    DerivativeCache,
    ErgodicFields,
    Fields,
    LoweredResidual,
    PopulationFields,
    Residuals,
    _lower_one,
    field_name,
    fields_of,
    lower,
    lower_populations,
    second_estimates,
    split_field_name,
    uses_laplacian,
)

__all__ = [
    "DerivativeCache",
    "ErgodicFields",
    "Fields",
    "LoweredResidual",
    "PopulationFields",
    "Residuals",
    "field_name",
    "fields_of",
    "lower",
    "lower_populations",
    "split_field_name",
    "second_estimates",
    "uses_laplacian",
    "_lower_one",
]
