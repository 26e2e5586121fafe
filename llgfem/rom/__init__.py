"""Reduced-order models: ``pod()`` and the Galerkin reductor (paper 000)."""

from llgfem.rom.galerkin import GalerkinReductor, ReducedModel, nrmse
from llgfem.rom.pod import PODResult, pod

__all__ = ["GalerkinReductor", "PODResult", "ReducedModel", "nrmse", "pod"]
