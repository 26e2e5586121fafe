"""Field-frame preconditioner of the Lissajous FOM: real Wigner rotations, rotation
equivariance of the operator, exactness of the block solve, and FOM = FOM with LU."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.spatial.transform import Rotation

from llgfem.brownneel import ParticleParameters, TSSettings
from llgfem.brownneel.fieldframe import FieldFramePC, ReuseRule, real_rotation, rotation_to
from llgfem.brownneel.lissajous import (
    LissajousDrive,
    LissajousModel,
    _real_harmonics,
    coefficients,
    offset_field,
    signal_nrmse,
)

SOFT = ParticleParameters(d_c=20e-9, K=1e3)
HARD = ParticleParameters(d_c=20e-9, K=6e3)  # the particle of issue 15 (σ ≈ 6)
GRADIENT = (-1.0, -1.0, 2.0)


def _harmonics_at(lmax, x):
    return _real_harmonics(lmax, np.arccos(np.clip(x[:, 2], -1, 1)), np.arctan2(x[:, 1], x[:, 0]))


def test_real_rotation_rotates_harmonics():
    rng = np.random.default_rng(0)
    rot = Rotation.random(random_state=1).as_matrix()
    d = real_rotation(5, rot)
    np.testing.assert_allclose(d @ d.T, np.eye(d.shape[0]), atol=1e-12)
    x = rng.standard_normal((40, 3))
    x /= np.linalg.norm(x, axis=1)[:, None]
    r = rng.standard_normal(d.shape[0])
    # f(Rᵀx) with coefficients r equals f(x) with coefficients D r
    np.testing.assert_allclose(_harmonics_at(5, x @ rot) @ r, _harmonics_at(5, x) @ (d @ r),
                               atol=1e-11)
    np.testing.assert_allclose(rotation_to([1.0, -2.0, 0.5]) @ [0, 0, 1],
                               np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5]))


def _operator(model, xi, dxi, kappa=0.0):
    c = coefficients(model.table, xi, dxi, np.array([kappa]))[0]
    return c, sum(ck * a for ck, a in zip(c, model.matrices(), strict=True))


@pytest.mark.parametrize("particle", [SOFT, HARD])
def test_operator_is_rotation_equivariant(particle):
    """F(Rξ, Rξ̇) = D F(ξ, ξ̇) Dᵀ, D = D_m(R) ⊗ D_n(R) on the even-L basis."""
    model = LissajousModel(particle, 4, 2, b_max=0.04)
    rot = Rotation.random(random_state=7).as_matrix()
    xi, dxi = np.array([2.0, -1.0, 3.0]), np.array([0.3, 0.2, -0.1])
    d = real_rotation(4, rot)
    d = np.kron(d, d[:9, :9][np.ix_(model.basis.even, model.basis.even)])
    _, f = _operator(model, xi, dxi)
    _, f_rot = _operator(model, rot @ xi, rot @ dxi)
    np.testing.assert_allclose(f_rot.toarray(), d @ f.toarray() @ d.T,
                               atol=1e-10 * abs(f).max())


def test_preconditioner_is_exact_for_a_rate_along_the_field():
    model = LissajousModel(HARD, 6, 4, b_max=0.04)
    pc = FieldFramePC(model, ReuseRule(shift=0.0), single=False)
    assert len(pc.blocks) == 6 + 4 + 1  # K = 0 … N_m + N_n
    rng = np.random.default_rng(2)
    xi = np.array([4.0, -5.0, 1.0])
    x = rng.standard_normal(model.size)
    for dxi, tol in [(0.02 * xi, 1e-11), (np.array([0.3, 0.3, 0.0]), 0.05)]:
        c, f = _operator(model, xi, dxi, kappa=0.4)
        a = 7.0
        pc.update(0.0, c, a)
        pc.prepare(a)
        ref = spla.spsolve(sp.csc_matrix(a * sp.identity(model.size) - f), x)
        err = np.linalg.norm(pc.solve(x) - ref) / np.linalg.norm(ref)
        assert err < tol
    assert err > 1e-6  # the perpendicular rate is left to GMRES


def test_field_frame_fom_equals_lu_fom():
    """Same BDF run with GMRES + field-frame PC as with the lagged LU (2-D drive, offset)."""
    model = LissajousModel(SOFT, 4, 2, b_max=0.04)
    drive = LissajousDrive.from_dividers(2.5e6, (102, 96, 1), (12e-3, 12e-3, 0.0))
    drive = drive.with_offset(offset_field(GRADIENT, (0.005, -0.003, 0.0)))
    t = np.arange(6) / 2.5e6
    runs = [model.simulate(drive, t, TSSettings(rtol=1e-7, atol=1e-13, preconditioner=p))
            for p in ("lu", "field_frame")]
    assert signal_nrmse(runs[1].dm[:, :2], runs[0].dm[:, :2]) < 1e-6
    np.testing.assert_allclose(runs[1].m, runs[0].m, atol=1e-7)
    info = runs[1].info
    assert info["lu_solver"] == "python"
    assert info["pc_applies"] < 6 * info["jacobians"]  # a few GMRES iterations per step
    with pytest.raises(ValueError, match="preconditioner"):
        model.simulate(drive, t, TSSettings(preconditioner="ilu"))


def test_auto_picks_the_field_frame_and_the_sector_model_refuses_it():
    from llgfem.brownneel.integrate import integrate_petsc

    model = LissajousModel(SOFT, 4, 2, b_max=0.04)
    assert model.preconditioner(TSSettings()) is not None  # auto: field frame (N_n <= N_m)
    assert model.preconditioner(TSSettings(preconditioner="lu")) is None
    assert LissajousModel(SOFT, 2, 4, b_max=0.04).preconditioner(TSSettings()) is None
    mats = model.petsc_matrices()
    with pytest.raises(ValueError, match="field_frame"):
        integrate_petsc(mats, lambda s: np.zeros(len(mats)), np.ones(model.size),
                        np.array([0.0, 1.0]), TSSettings(preconditioner="field_frame"))
    for mat in mats:
        mat.destroy()
