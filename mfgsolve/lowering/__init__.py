"""Lowering: sympy residuals -> torch functions of collocation points and the unknown fields.

- :mod:`.residuals`: the HJB and FP residuals of a problem (:func:`lower`), derivative caches;
- :mod:`.space_time`: finite-horizon residuals with their nonlocal terms and wall conditions.
"""

from .residuals import (
    DerivativeCache,
    ErgodicFields,
    Fields,
    LoweredResidual,
    Residuals,
    _lower_one,
    lower,
    second_estimates,
    uses_laplacian,
)

__all__ = [
    "DerivativeCache",
    "ErgodicFields",
    "Fields",
    "LoweredResidual",
    "Residuals",
    "lower",
    "second_estimates",
    "uses_laplacian",
    "_lower_one",
]
