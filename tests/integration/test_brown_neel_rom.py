"""End-to-end FOM → POD → ROM on a small truncation (basis reused at another frequency)."""

from __future__ import annotations

import numpy as np

from llgfem.brownneel import (
    BrownNeelModel,
    ParticleParameters,
    SinusoidalDrive,
    TSSettings,
    time_grid,
)
from llgfem.rom import GalerkinReductor, nrmse, pod

RTOL = 1e-8
SETTINGS = TSSettings(rtol=RTOL, atol=1e-13)


def test_fom_pod_rom_pipeline():
    particle = ParticleParameters(d_c=20e-9, K=6e3)
    model = BrownNeelModel(particle, 8, 6, "dynamic")
    train = SinusoidalDrive(15e-3, 10e3)
    test = SinusoidalDrive(15e-3, 5e3)
    t_train, _ = time_grid(train, 0, 0.25, 400)
    t_test, _ = time_grid(test, 0, 0.25, 100)
    snap = model.simulate(train, t_train, SETTINGS)
    ref = model.simulate(test, t_test, SETTINGS)
    basis = pod(snap.y)
    reductor = GalerkinReductor(model.petsc_matrices())

    def rom_error(r, drive, t, ref):
        rom = reductor.reduce(basis.modes[:, :r])
        res = rom.solve(model.coefficient_function(drive), rom.project_state(ref.y[:, 0]),
                        t / particle.tau_n, SETTINGS)
        mz, dmz, _ = model.observe(t, rom.reconstruct(res.y), drive)
        assert np.all(np.isfinite(dmz))
        return nrmse(mz, ref.mz)

    # reproduction: ROM error ≲ projection error of the FOM states + integration error
    # (global error of each adaptive run ≲ number of steps × RTOL)
    r = 30
    u = basis.modes[:, :r]
    proj = nrmse(model.observe(t_train, u @ (u.T @ snap.y), train)[0], snap.mz)
    assert rom_error(r, train, t_train, snap) < 100 * proj + 2 * snap.steps * RTOL
    # generalisation to another frequency: the error decreases with r
    errors = [rom_error(r, test, t_test, ref) for r in (4, 12, 30)]
    assert errors[2] < errors[0]
    assert errors[2] < 1e-2
