# %% [markdown]
# # Coupled Brown–Néel rotation: FOM on PETSc matrices and a stable POD-Galerkin ROM
#
# The Fokker–Planck equation of a particle whose moment m (Néel) and easy axis n (Brown)
# both rotate is expanded in products of spherical harmonics (Weizenecker 2018; see
# llgfem/brownneel/__init__.py).  This demo
#
# 1. assembles the operator of one particle in the plain form and shows that the stability
#    guard refuses it (spurious growing modes of the truncated plain Galerkin matrix),
# 2. assembles the time-dependently symmetrised ("dynamic") form, whose symmetric part is
#    negative semi-definite for every truncation, and integrates it with PETSc TS,
# 3. builds a POD basis at f_d = 10 kHz and reuses it at 5 kHz for r = 10 … 60 — ROMs of every
#    rank inherit the stability bound, so small r work.
#
# Run: `python demos/brown_neel.py` (set `LLGFEM_FAST=1` for the quick version, as for the other
# demos; the older `LLGFEM_DEMO_FAST=1` still works).  Outputs go to
# `<repository>/outputs/demos/brown_neel/` (or `$LLGFEM_OUTPUT_DIR/demos/brown_neel/`), wherever
# the demo is started from.

# %%
import os
from pathlib import Path

import matplotlib

import llgfem  # noqa: F401  (before petsc4py)

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mpi4py import MPI

from llgfem.brownneel import (
    BrownNeelModel,
    ParticleParameters,
    TSSettings,
    UnstableTruncationError,
)
from llgfem.brownneel.studies import run_fom
from llgfem.rom import GalerkinReductor, nrmse, pod

FAST = "1" in (os.environ.get("LLGFEM_FAST"), os.environ.get("LLGFEM_DEMO_FAST"))
TRUNC = (8, 6) if FAST else (12, 10)
SETTINGS = TSSettings(rtol=1e-6 if FAST else 1e-7, atol=1e-12)
ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("LLGFEM_OUTPUT_DIR") or ROOT / "outputs") / "demos" / "brown_neel"
rank0 = MPI.COMM_WORLD.rank == 0

# %% [markdown]
# ## Particle and the stability guard

# %%
particle = ParticleParameters(d_c=20e-9, K=6e3)
print(f"σ = {particle.sigma:.3f}, ξ(15 mT) = {15e-3 * particle.xi_per_tesla:.3f}, "
      f"τ_N = {particle.tau_n:.3e} s, τ_B = {particle.tau_b:.3e} s")
plain = BrownNeelModel(particle, 5, 4, "plain")
try:
    plain.check_stability(15e-3)
except UnstableTruncationError as err:
    print("plain (5,4):", str(err)[:120], "...")
model = BrownNeelModel(particle, *TRUNC, "dynamic")
print(f"dynamic {TRUNC}: {model.size} unknowns, max Re λ τ_N <=",
      f"{model.check_stability(15e-3):.2e}")

# %% [markdown]
# ## FOM at 10 kHz (training) and 5 kHz (test)

# %%
train = run_fom(model, 10e3, settings=SETTINGS, samples_per_period=200)
test = run_fom(model, 5e3, settings=SETTINGS, samples_per_period=200)
print(f"FOM 10 kHz: {train.traj.seconds:.2f} s, 5 kHz: {test.traj.seconds:.2f} s")

# %% [markdown]
# ## POD basis and ROMs of increasing rank

# %%
basis = pod(train.traj.y)
reductor = GalerkinReductor(model.petsc_matrices())
coef = model.coefficient_function(test.drive)
s = test.traj.t / particle.tau_n
results = {}
for r in (10, 20, 40, 60):
    rom = reductor.reduce(basis.modes[:, :r])
    res = rom.solve(coef, rom.project_state(model.initial_state(test.drive)), s, SETTINGS)
    mz, dmz, _ = model.observe(test.traj.t, rom.reconstruct(res.y), test.drive)
    st = test.start
    results[r] = (mz[st:], dmz[st:])
    print(f"r = {r:3d}: {res.seconds:.3f} s, speed-up {test.traj.seconds / res.seconds:5.1f}, "
          f"NRMSE ⟨m_z⟩ {nrmse(mz[st:], test.recorded.mz):.2e}, "
          f"signal {nrmse(dmz[st:], test.recorded.dmz):.2e}")

# %%
if rank0:
    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.5))
    tt = test.recorded.t * 1e6
    ax[0].semilogy(basis.singular_values / basis.singular_values[0], "k.")
    ax[0].set(xlabel="i", ylabel="σ_i/σ_1", title="POD spectrum (10 kHz)")
    ax[1].plot(tt, test.recorded.mz, "k", label="FOM")
    ax[2].plot(tt, test.recorded.dmz, "k", label="FOM")
    for r, (mz, dmz) in results.items():
        ax[1].plot(tt, mz, "--", label=f"ROM r={r}")
        ax[2].plot(tt, dmz, "--", label=f"ROM r={r}")
    ax[1].set(xlabel="t [µs]", ylabel="⟨m_z⟩", title="5 kHz, basis from 10 kHz")
    ax[2].set(xlabel="t [µs]", ylabel="d⟨m_z⟩/dt [1/s]")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "brown_neel_demo.png", dpi=110)
    plt.close(fig)
    print("wrote", OUT / "brown_neel_demo.png")
