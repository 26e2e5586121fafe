"""Iterative regularisation: Landweber(-Kaczmarz), accelerated variants, stopping rules.

Pure NumPy: the drivers see only the operator protocol of
:mod:`llgfem.operators.protocols` (paper eqs. (13)-(17), §3, §4.1) and never import dolfinx,
petsc4py or mpi4py.

Example::

    from llgfem.regularisation import (AdaptiveStep, DiscrepancyPrinciple, MaxIterations,
                                       landweber)
    result = landweber(F, y_delta, x0, step=AdaptiveStep(1.0),
                       stop=DiscrepancyPrinciple(tau=2.5, delta=delta) | MaxIterations(5000))
    result.x, result.reason, result.history.residual_norms
"""

from .accelerated import nesterov_landweber, two_point_gradient
from .callbacks import Callback, History, LoggingCallback, ProgressBar
from .checkpoint import Checkpoint
from .core import IterationInfo, Result
from .landweber import landweber, landweber_kaczmarz
from .momentum import NesterovMomentum, NoMomentum, TwoPointMomentum
from .steps import (
    AdaptiveStep,
    ConstantStep,
    MinimalErrorStep,
    SteepestDescentStep,
    StepOutcome,
    StepRule,
    StepTrial,
)
from .stopping import (
    AnyOf,
    DiscrepancyPrinciple,
    MaxIterations,
    RelativeResidual,
    StepSizeFloor,
    StoppingRule,
)

__all__ = [
    "AdaptiveStep",
    "AnyOf",
    "Callback",
    "Checkpoint",
    "ConstantStep",
    "DiscrepancyPrinciple",
    "History",
    "IterationInfo",
    "LoggingCallback",
    "MaxIterations",
    "MinimalErrorStep",
    "NesterovMomentum",
    "NoMomentum",
    "ProgressBar",
    "RelativeResidual",
    "Result",
    "SteepestDescentStep",
    "StepOutcome",
    "StepRule",
    "StepSizeFloor",
    "StepTrial",
    "StoppingRule",
    "TwoPointMomentum",
    "landweber",
    "landweber_kaczmarz",
    "nesterov_landweber",
    "two_point_gradient",
]
