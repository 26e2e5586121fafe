"""Coupled Brown–Néel rotation model: spherical-harmonic FOM on PETSc matrices.

The model is the coupled Brown–Néel Fokker–Planck equation of J. Weizenecker, Phys. Med.
Biol. 63 (2018) 035004 (doi:10.1088/1361-6560/aaa186), discretised in products of spherical
harmonics; the POD-Galerkin ROM follows S. D. Gulsun, A. Alpman, E. U. Saritas, "Reduced-Order
Modeling of Nanoparticle Magnetization Dynamics", Int. J. Magn. Part. Imaging (2026), eq. (1).
The equations are written out in the module docstrings.  Modules:

* ``params``       particle parameters (σ, ξ per tesla, τ_N, τ_B) and applied fields
* ``basis``        spherical-harmonic product basis, exact single-sphere blocks, real basis
* ``operators``    F(t) = Σ_k s_k(t) A_k in the plain and the two stabilised formulations
* ``observables``  ⟨m⟩, d⟨m⟩/dt and initial states from the coefficients
* ``integrate``    PETSc TS (production) and SciPy (cross-check) integration
* ``model``        :class:`BrownNeelModel`: one particle, stability guard, simulation
* ``studies``      truncation convergence, Langevin check, paper experiments
* ``jobs``         ``llgfem run`` entry points
"""

from llgfem.brownneel.basis import ProductBasis
from llgfem.brownneel.integrate import TSSettings
from llgfem.brownneel.model import BrownNeelModel, Trajectory, UnstableTruncationError, time_grid
from llgfem.brownneel.operators import AffineOperator, assemble_operator
from llgfem.brownneel.params import CallableField, ParticleParameters, SinusoidalDrive, langevin

__all__ = [
    "AffineOperator",
    "BrownNeelModel",
    "CallableField",
    "ParticleParameters",
    "ProductBasis",
    "SinusoidalDrive",
    "TSSettings",
    "Trajectory",
    "UnstableTruncationError",
    "assemble_operator",
    "langevin",
    "time_grid",
]
