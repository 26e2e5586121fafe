"""Fields of any direction: the dynamic formulation in the full product basis.

A weakly anisotropic particle (K = 1 kJ/m³, σ ≈ 1) keeps the truncations tiny: its mass-leak
rate is small, so the full basis (which also carries the sectors the initial state does not
excite) integrates as cheaply as the z-sector.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from llgfem.brownneel import (
    BrownNeelModel,
    CallableField,
    ParticleParameters,
    SinusoidalDrive,
    TSSettings,
    langevin,
    time_grid,
)

SOFT = ParticleParameters(d_c=20e-9, K=1e3)
SETTINGS = TSSettings(rtol=1e-8, atol=1e-13, max_steps=50_000)


def test_full_basis_matches_sector_for_z_drive():
    drive = SinusoidalDrive(15e-3, 10e3)
    t, _ = time_grid(drive, 0, 0.25, 40)
    sector = BrownNeelModel(SOFT, 4, 2, "dynamic").simulate(drive, t, SETTINGS)
    full = BrownNeelModel(SOFT, 4, 2, "dynamic", kind="full").simulate(drive, t, SETTINGS)
    assert np.abs(full.mz - sector.mz).max() < 1e-5
    assert np.abs(full.m[:, :2]).max() < 1e-10
    assert np.abs(full.dmz - sector.dmz).max() < 1e-3 * np.abs(sector.dmz).max()
    np.testing.assert_allclose(sector.m[:, 2], sector.mz)
    assert np.all(sector.m[:, :2] == 0)


def test_oblique_static_field_equilibrium_is_langevin():
    """Null vector of F(ξ) for ξ off every axis: ⟨m⟩ ∥ ξ and |⟨m⟩| → L(|ξ|)."""
    b = np.array([4e-3, -3e-3, 6e-3])
    xi = SOFT.xi_per_tesla * b
    ref = langevin(np.linalg.norm(xi)) * xi / np.linalg.norm(xi)
    field = CallableField(lambda t: b, lambda t: np.zeros(3), float(np.linalg.norm(b)))
    errors = []
    for trunc in [(4, 2), (6, 4)]:
        model = BrownNeelModel(SOFT, *trunc, "dynamic", kind="full", shift=0.0)
        _, v = spla.eigs(model.op.matrix(xi).tocsc(), k=1, sigma=0.0)
        m, dm, _ = model.observe_vector(np.zeros(1), np.real(v[:, :1]), field)
        assert np.linalg.norm(np.cross(m[0], xi)) < 1e-8 * np.linalg.norm(xi)
        assert np.abs(dm).max() < 1e-3  # stationary (1/s, vs rates ~1e7 under the drive)
        errors.append(np.abs(m[0] - ref).max())
    assert errors[1] < 2e-4
    assert errors[1] < errors[0] / 10


def test_rotating_field_moment_and_exact_rates():
    """B rotating in the xy plane: |⟨m⟩| < 1, ⟨m⟩ lags behind B, the out-of-plane part made by
    precession (−γ' m×B ∥ ẑ) is small, and the exact d⟨m⟩/dt agrees with finite differences."""
    b0, f = 10e-3, 20e3
    w = 2 * np.pi * f
    field = CallableField(lambda t: b0 * np.array([np.cos(w * t), np.sin(w * t), 0.0]),
                          lambda t: b0 * w * np.array([-np.sin(w * t), np.cos(w * t), 0.0]),
                          b0)
    model = BrownNeelModel(SOFT, 4, 2, "dynamic", kind="full")
    t = np.linspace(0, 0.5 / f, 101)
    run = model.simulate(field, t, TSSettings(rtol=1e-8, atol=1e-13, max_steps=50_000))
    assert np.linalg.norm(run.m, axis=1).max() < 1
    assert 0 < np.abs(run.m[:, 2]).max() < 1e-2 * np.abs(run.m[:, :2]).max()
    fd = np.gradient(run.m, t, axis=0)
    inner = slice(5, -5)
    scale = np.abs(run.dm[inner]).max()
    assert np.abs(fd[inner] - run.dm[inner]).max() < 5e-3 * scale
    # the moment lags behind the field: angle(m) < angle(B) once rotating
    k = len(t) // 2
    lag = w * t[k] - np.arctan2(run.m[k, 1], run.m[k, 0])
    assert 0 < lag < np.pi / 2


def test_sector_refuses_nothing_but_full_weights_need_full_basis():
    from llgfem.brownneel.observables import BoltzmannWeights3D

    with pytest.raises(ValueError, match="full product basis"):
        BoltzmannWeights3D(SOFT, BrownNeelModel(SOFT, 4, 2).basis)
