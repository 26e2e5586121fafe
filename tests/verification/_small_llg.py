"""The small 2-D LLG identification problem shared by the derivative tests.

A unit square [-1, 1]^2 with ``cells`` x ``cells`` cells, an FFP drive without bias (h = 0 on a
line sweeping through the domain), exchange 0.05, uniaxial anisotropy along (0, 0.6, 0.8), a
random unit m0 near (0.6, 0, 0.8) (seeded per rank) and two receive coils.
"""

import dolfinx.mesh as dm
import numpy as np
from mpi4py import MPI

from llgfem.operators.observation import Coil, Observation
from llgfem.operators.reduced import ReducedOperator
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.problem import LLGProblem
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space

FIELD = FieldSpec(kind="ffp", gradient=2.0, amplitude=1.0, frequency=1.0,
                  direction=(1.0, 0.0, 0.0))


def small_reduced(form: str, a1: float, a2: float, anisotropy: float, *, cells: int, n_t: int,
                  parameters=None) -> ReducedOperator:
    """The reduced operator of the small problem (``parameters``: the solver's fitted names)."""
    mesh = dm.create_rectangle(MPI.COMM_WORLD, [[-1.0, -1.0], [1.0, 1.0]], [cells, cells])
    V = create_vector_space(mesh)
    grid = TimeGrid(0.3, n_t)
    params = LLGParameters(a1=a1, a2=a2, exchange=0.05, anisotropy=anisotropy,
                           easy_axis=(0.0, 0.6, 0.8))
    extra = {} if parameters is None else {"parameters": parameters}
    solver = LLGSolver(V, grid, params, FIELD, form=form, **extra)
    rng = np.random.default_rng(3 + MPI.COMM_WORLD.rank)
    n = solver.n // 3
    m0 = np.tile([0.6, 0.0, 0.8], n) + 0.2 * rng.standard_normal(3 * n)
    m0 = (m0.reshape(-1, 3) / np.linalg.norm(m0.reshape(-1, 3), axis=1)[:, None]).ravel()
    obs = Observation(V, grid, 1.0, [Coil((1.0, 0.0, 0.0)), Coil((0.0, 1.0, 0.3))], mu0=1.0)
    return ReducedOperator(LLGProblem(solver, m0, obs))
