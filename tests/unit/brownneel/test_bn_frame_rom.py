"""Field-frame POD ROM (issue 15): exact generators, frame kinematics, the frame equation
Dᵀ F D − DᵀḊ = Σ c_k A_k^f, full-rank frame ROM = lab FOM (2-D and 3-D drives, a zero field),
stability for small r (the rotation terms are skew)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from llgfem.brownneel import ParticleParameters, TSSettings
from llgfem.brownneel import lissajous as lj
from llgfem.brownneel.fieldframe import _SphereQuadrature, real_rotation
from llgfem.brownneel.frame_rom import (
    FRAME_TABLE,
    _cross_matrix,
    field_axis,
    frame_kinematics,
    frame_matrices,
    frame_sampler,
    reduce_frame,
    rotation_generators,
    simulate_frame_reduced,
    to_frame,
)
from llgfem.rom import pod

SOFT, GRADIENT, RTOL = ParticleParameters(d_c=20e-9, K=1e3), (-1.0, -1.0, 2.0), 1e-7
SETTINGS = TSSettings(rtol=RTOL, atol=1e-13, max_steps=50_000)
DRIVE = lj.LissajousDrive.from_dividers(2.5e6, (102, 96, 1), (12e-3, 12e-3, 0.0))
DRIVE_3D = lj.LissajousDrive.from_dividers(2.5e6, (102, 96, 136), (12e-3, 12e-3, 6e-3),
                                           phases=(0.1, 0.2, 0.3))
DRIVE_1D = lj.LissajousDrive.from_dividers(2.5e6, (16, 1, 1), (12e-3, 0.0, 0.0))
T = np.arange(6) / 2.5e6


@pytest.fixture(scope="module")
def model():
    return lj.LissajousModel(SOFT, 3, 2, b_max=0.05)


@pytest.fixture(scope="module")
def frame_terms(model):
    return frame_matrices(model)


def test_generators_exponentiate_to_the_wigner_matrices():
    j = rotation_generators(6)
    np.testing.assert_allclose(j, -j.transpose(0, 2, 1), atol=0)
    for a in range(3):
        for angle in (0.9, -2.5):
            np.testing.assert_allclose(expm(angle * j[a]),
                                       real_rotation(6, expm(angle * _cross_matrix(a))),
                                       atol=1e-12)
    with pytest.raises(ValueError):
        rotation_generators(40, angle=0.1)
    big = rotation_generators(32)  # the default angle stays below π/lmax
    np.testing.assert_allclose(expm(0.3 * big[1]), real_rotation(32, expm(0.3 * _cross_matrix(1))),
                               atol=1e-10)
    nz = np.count_nonzero(j, axis=(1, 2))  # J_z pairs ±μ, J_x/J_y couple μ ± 1: sparse
    assert nz[2] < nz[0]
    assert nz[0] == nz[1] <= 4 * j.shape[1]


def test_frame_kinematics_finite_differences():
    """R ẑ = ξ/|ξ|, Rᵀξ = |ξ|ẑ, Ṙ = R[Ω]_× and d|ξ|/dt by central differences (3-D drive)."""
    drive = DRIVE_3D.with_offset((2e-3, -1e-3, 1e-3))
    t = np.array([0.7e-6, 3.1e-6, 11.3e-6])
    h = 1e-11
    kin = frame_kinematics(drive.fields(t), drive.rates(t))
    plus = frame_kinematics(drive.fields(t + h), drive.rates(t + h))
    minus = frame_kinematics(drive.fields(t - h), drive.rates(t - h))
    b = drive.fields(t)
    np.testing.assert_allclose(kin.rot[:, :, 2], b / np.linalg.norm(b, axis=1)[:, None],
                               atol=1e-14)
    np.testing.assert_allclose(np.einsum("nji,nj->ni", kin.rot, b),
                               np.linalg.norm(b, axis=1)[:, None] * [0, 0, 1], atol=1e-15)
    rdot = (plus.rot - minus.rot) / (2 * h)
    expect = kin.rot @ np.stack([-np.cross(w, np.eye(3)) for w in kin.omega])  # R[Ω]_×
    np.testing.assert_allclose(rdot, expect, rtol=1e-5, atol=1e-5 * np.abs(expect).max())
    np.testing.assert_allclose((plus.rho - minus.rho) / (2 * h), kin.drho, rtol=1e-6)
    assert np.all(np.abs(kin.omega).max(axis=1) > 1e3)  # a rotating field


@pytest.mark.parametrize("position", [(0.004, -0.007, 0.001), (-0.011, 0.002, -0.003)])
def test_frame_equation_is_the_rotated_lab_operator(model, frame_terms, position):
    """Σ_k c_k^f A_k^f = Dᵀ F(ξ, ξ̇) D − DᵀḊ (Ḋ by central differences), 3-D drive, two
    offsets; projected once, Σ_k c_k^f Â_k^f = Uᵀ(Dᵀ F D − DᵀḊ)U for each offset."""
    drive = DRIVE_3D.with_offset(lj.offset_field(GRADIENT, position))
    tau, basis = SOFT.tau_n, model.basis
    u = np.linalg.qr(np.random.default_rng(7).standard_normal((model.size, 9)))[0]
    rom = reduce_frame(model, u)
    quad = _SphereQuadrature(max(basis.n_m, basis.n_n))

    def big_d(t):
        return np.kron(*quad.joint(frame_kinematics(*model.xi(drive, np.array([t]))).rot[0],
                                   basis))

    for t in (0.9e-6, 4.2e-6):
        xi, dxi = model.xi(drive, np.array([t]))
        c = lj.coefficients(model.table, xi, dxi * tau, np.zeros(1))[0]
        f = sum(ck * a for ck, a in zip(c, model.matrices(), strict=True)).toarray()
        h = 1e-6 * tau
        d = big_d(t)
        ddot = (big_d(t + h) - big_d(t - h)) / (2 * h) * tau  # per τ_N
        expect = d.T @ f @ d - d.T @ ddot
        cf = frame_sampler(model, drive)(np.array([t / tau]))[0]
        got = sum(ck * a for ck, a in zip(cf, frame_terms, strict=True)).toarray()
        np.testing.assert_allclose(got, expect, atol=1e-6 * np.abs(expect).max())
        projected = u.T @ expect @ u
        np.testing.assert_allclose(rom.operator(cf), projected,
                                   atol=1e-6 * np.abs(projected).max())


@pytest.mark.parametrize(("drive", "position"), [
    (DRIVE, (0.005, -0.003, 0.0)),
    (DRIVE, (0.0, 0.0, 0.0)),  # ξ(0) = 0: the frame starts along ξ̇(0)
    (DRIVE_3D, (0.003, 0.002, -0.001)),
    (DRIVE_1D, (0.002, 0.0, 0.0)),  # field on the x axis through zero: fixed frame
    (DRIVE, (0.00184, 0.0019, 0.0)),  # a near-zero passage (0.05 mm) inside the run
])
def test_full_rank_frame_rom_equals_lab_fom(model, drive, position):
    d = drive.with_offset(lj.offset_field(GRADIENT, position))
    run = model.simulate(d, T, SETTINGS)
    u = np.linalg.qr(np.random.default_rng(5).standard_normal((model.size, model.size)))[0]
    rom = reduce_frame(model, u)
    red = simulate_frame_reduced(model, rom, d, T, SETTINGS)
    axes = d.driven_axes
    assert red.info["frame"] == ("fixed axis" if drive is DRIVE_1D else "field")
    if position[1] == 0.0019:
        assert red.info["near_zero_landings"] == 1
    assert np.abs(red.m - run.m).max() < 1e3 * RTOL
    assert lj.signal_nrmse(red.dm[:, axes], run.dm[:, axes]) < 1e3 * RTOL
    assert np.abs(run.dm[:, axes]).max() > 1e3  # a real response


def test_frame_snapshots_rotate_back(model):
    """to_frame is the orthogonal map y ↦ D(R)ᵀ y: norms kept, the Boltzmann state of ξ goes to
    the Boltzmann state of |ξ| ẑ."""
    d = DRIVE.with_offset(lj.offset_field(GRADIENT, (0.006, 0.002, 0.0)))
    t = np.array([0.0, 1.7e-6])
    xi, _ = model.xi(d, t)
    w = model.quad.weight_vectors(xi)
    z = to_frame(model, d, t, w)
    np.testing.assert_allclose(np.linalg.norm(z, axis=0), np.linalg.norm(w, axis=0), rtol=1e-12)
    wz = model.quad.weight_vectors(np.linalg.norm(xi, axis=1)[:, None] * [0, 0, 1])
    np.testing.assert_allclose(z, wz, atol=1e-10 * np.abs(wz).max())


def test_frame_rom_stable_for_small_rank(model, frame_terms):
    """Projected rotation terms stay skew, so sym(Σ c_k Â_k) with ξ̇ = 0 is ≤ 0 as in the lab
    frame; small-r reduced runs stay finite and close."""
    d = DRIVE.with_offset(lj.offset_field(GRADIENT, (-0.01, 0.008, 0.0)))
    run = model.simulate(d, T, SETTINGS)
    modes = pod(to_frame(model, d, T, run.y), rank=10).modes
    rot = [k for k, key in enumerate(FRAME_TABLE) if key[0] == "rot"]
    for r in (2, 4, 10):
        rom = reduce_frame(model, modes[:, :r])
        for k in rot:
            np.testing.assert_allclose(rom.matrices[k], -rom.matrices[k].T, atol=1e-13)
        for rho, omega in [(0.0, (0, 0, 0)), (30.0, (5.0, -2.0, 1.0)), (80.0, (0, 40.0, 0))]:
            c = np.array([1.0, rho, rho**2, 0, 0, 0, *(-np.array(omega, float))])
            f = sum(ck * a for ck, a in zip(c, rom.matrices, strict=True))
            assert np.linalg.eigvalsh(0.5 * (f + f.T))[-1] <= 1e-10
        red = simulate_frame_reduced(model, rom, d, T, SETTINGS)
        assert np.all(np.isfinite(red.dm))
    # from the second sample on (at t = 0 the rate of the projected initial state differs)
    assert lj.signal_nrmse(red.dm[1:, :2], run.dm[1:, :2]) < 2e-2


def test_field_axis_detects_collinear_histories():
    line = np.outer(np.linspace(-1.0, 2.0, 7), [0.6, 0.0, -0.8])
    np.testing.assert_allclose(field_axis(line), [0.6, 0.0, -0.8])
    assert field_axis(line + [[0.0, 1e-6, 0.0]]) is None
    np.testing.assert_allclose(field_axis(np.zeros((3, 3))), [0.0, 0.0, 1.0])
