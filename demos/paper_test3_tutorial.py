# %% [markdown]
# # Paper 002, Test 3: forward solve, signals and the all-at-once iteration
#
# This tutorial walks through llgfem's core objects on the paper's Test 3
# (1-D, Omega = [0, 2 pi], a = (1, 0), h = 0, exact solution m = (sin x, cos x, e^t)):
#
# 1. solve the LLG equation with the implicit-midpoint Newton solver and measure the error;
# 2. compute the receive-coil signal of eq. (5) (paper §4.3 observation);
# 3. check that the all-at-once operator's adjoint is exact (dot test);
# 4. run the all-at-once iteration as an LLG solver (Remark 1) from the paper's perturbed guess.
#
# Run it with `python demos/paper_test3_tutorial.py` or `mpiexec -n 2 python ...`;
# `LLGFEM_FAST=1` shrinks the grids (the test suite does that).

# %%
import llgfem  # noqa: F401  (must come first: bootstraps the DOLFINx wheel)

# isort: split
import os

import dolfinx.mesh as dm
import numpy as np
from mpi4py import MPI

from llgfem.operators.all_at_once import AllAtOnceOperator
from llgfem.operators.observation import Coil, Concentration, Observation
from llgfem.paper_cases import paper_case, relative_error
from llgfem.problem import LLGProblem
from llgfem.regularisation import AdaptiveStep, MaxIterations, nesterov_landweber
from llgfem.solvers.heat import HeatSolver
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels
from llgfem.verification import dot_test

FAST = os.environ.get("LLGFEM_FAST") == "1"
comm = MPI.COMM_WORLD
say = print if comm.rank == 0 else (lambda *a, **k: None)

# %% [markdown]
# ## 1. Forward solve
# `LLGSolver` takes the space, the time grid, the coefficients and the applied field; Test 3
# also needs its Neumann datum g = dm/dn.

# %%
case = paper_case(3)
cells, n_t = (30, 11) if FAST else (100, 51)
V = create_vector_space(dm.create_interval(comm, cells, [0.0, 2 * np.pi]))
grid = TimeGrid(0.2, n_t)
solver = LLGSolver(V, grid, case.params, case.field, g=case.g)
m0 = interpolate_levels(V, case.exact_np, [0.0])[0]
m = solver.solve(m0)
say(f"forward solve: relative L2(L2) error {relative_error(V, grid, m, case.exact_ufl):.2e} "
    f"(paper's all-at-once solver: {case.paper['rel_error']})")

# %% [markdown]
# ## 2. The signal of eq. (5)
# With the constant transfer function a~ = 1, c = 1, p = (1, 1, 1) and mu0 = 1 (paper §4.3)
# every sample equals -int (1, 1, 1).(m(T) - m(0)) dx.

# %%
obs = Observation(V, grid, [Concentration(1.0)], [Coil((1.0, 1.0, 1.0), ("constant", 1.0))],
                  mu0=1.0)
y = obs.apply(m)
say(f"signal: {y.shape} samples, first {y[0, 0, 0]:.6f}, "
    f"exact -2 pi (e^0.2 - 1) = {-2 * np.pi * (np.exp(0.2) - 1):.6f}")

# %% [markdown]
# ## 3. The all-at-once operator and its exact adjoint
# `F(m_hat, a) = (F0, K m)` uses the forward solver's own residual F0; its adjoint is computed
# with the W- and U-Riesz maps (heat-type problems (18), (19), (21)).  A dot test checks it.

# %%
F = AllAtOnceOperator(LLGProblem(solver, m0, obs), HeatSolver(V, grid))
rng = np.random.default_rng(comm.rank)
x = F.join(m - m0, [1.0, 0.0])
dx = rng.standard_normal(F.domain_size)
dx[-2:] = comm.bcast(dx[-2:])
r = rng.standard_normal(F.N * F.n + F.n_obs)
r[F.N * F.n:] = comm.bcast(r[F.N * F.n:])
L = F.derivative(x)
res = dot_test(L.apply, L.adjoint, dx, r, F.inner_domain, F.inner_range)
say(f"dot test <F'dx, r> vs <dx, F'* r>: relative difference {res.relative_error:.1e}")

# %% [markdown]
# ## 4. Remark 1: the iteration as an LLG solver
# With a fixed and no data, Landweber on F0 alone converges to the LLG solution; we start from
# the paper's perturbed guess m_hat = -sin(30 t)/5 (1, 1, 1) and use Nesterov's acceleration.

# %%
F_model = AllAtOnceOperator(LLGProblem(solver, m0), F.heat, estimate_parameters=False)
guess = interpolate_levels(V, case.initial_guess_np, grid.times)
guess[0] = 0.0
x0 = F_model.join(guess, [1.0, 0.0])
result = nesterov_landweber(F_model, F_model.data(), x0, step=AdaptiveStep(300.0),
                            stop=MaxIterations(20 if FAST else 100), restart=True)
e0 = relative_error(V, grid, F_model.state(x0), case.exact_ufl)
e1 = relative_error(V, grid, F_model.state(result.x), case.exact_ufl)
say(f"Remark 1: error {e0:.2e} -> {e1:.2e} after {result.iterations} iterations")
