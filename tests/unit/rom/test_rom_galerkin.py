"""Galerkin reductor: full-rank ROM equals the FOM, inherited stability bound, NRMSE."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.brownneel import (
    BrownNeelModel,
    ParticleParameters,
    SinusoidalDrive,
    TSSettings,
    time_grid,
)
from llgfem.rom import GalerkinReductor, nrmse, pod

PARTICLE = ParticleParameters(d_c=20e-9, K=6e3)
RTOL = 1e-8
SETTINGS = TSSettings(rtol=RTOL, atol=1e-13)


@pytest.fixture(scope="module")
def fom():
    model = BrownNeelModel(PARTICLE, 6, 4, "dynamic")
    drive = SinusoidalDrive(15e-3, 10e3)
    t, _ = time_grid(drive, 0, 0.25, 100)
    return model, drive, t, model.simulate(drive, t, SETTINGS)


def test_full_rank_rom_equals_fom(fom):
    model, drive, t, run = fom
    rng = np.random.default_rng(3)
    u = np.linalg.qr(rng.standard_normal((model.size, model.size)))[0]  # any full basis
    rom = GalerkinReductor(model.petsc_matrices()).reduce(u)
    res = rom.solve(model.coefficient_function(drive), rom.project_state(run.y[:, 0]),
                    t / PARTICLE.tau_n, SETTINGS)
    y = rom.reconstruct(res.y)
    # same ODE in rotated coordinates: differences are integration errors only
    scale = np.abs(run.y).max()
    assert np.abs(y - run.y).max() < 1e3 * RTOL * scale
    mz, _, _ = model.observe(t, y, drive)
    assert np.abs(mz - run.mz).max() < 1e3 * RTOL


def test_projection_matches_dense_formula(fom):
    model = fom[0]
    u = pod(fom[3].y, rank=7).modes
    rom = GalerkinReductor(model.matrices()).reduce(u)
    for a, ar in zip(model.matrices(), rom.matrices, strict=True):
        ref = u.T @ (a @ u)
        assert np.abs(ar - ref).max() < 1e3 * np.finfo(float).eps * max(abs(a).max(), 1)


def test_reduced_symmetric_part_inherits_bound(fom):
    """sym(UᵀFU) = Uᵀ sym(F) U ≤ κ for every r (dynamic formulation, ξ̇ = 0)."""
    model, _, _, run = fom
    xi = PARTICLE.xi_per_tesla * 15e-3
    c = model.op.coefficients(np.array([0, 0, xi]), np.zeros(3))
    basis = pod(run.y).modes
    reductor = GalerkinReductor(model.matrices())
    for r in (2, 5, basis.shape[1]):
        lam = reductor.reduce(basis[:, :r]).max_symmetric_eigenvalue(c)
        assert lam <= model.shift + 1e-10


def test_nrmse_definition():
    ref = np.sin(np.linspace(0, 6, 50))
    assert nrmse(ref, ref) == 0.0
    assert np.isclose(nrmse(2 * ref, ref), 1.0)
    with pytest.raises(ValueError, match="zero"):
        nrmse(ref, 0 * ref)
