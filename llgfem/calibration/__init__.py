"""Calibration from data: uncertainty at a least-squares solution, data files in.

* :mod:`llgfem.calibration.uncertainty` -- Gauss--Newton / Fisher-information standard errors,
  correlations, 95 % intervals and the identifiability rule.
"""

from llgfem.calibration.uncertainty import (
    NotIdentifiedWarning,
    Uncertainty,
    fisher_uncertainty,
    propagate,
)

__all__ = ["NotIdentifiedWarning", "Uncertainty", "fisher_uncertainty", "propagate"]
