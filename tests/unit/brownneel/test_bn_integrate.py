"""Time integration: PETSc TS against SciPy, exact rates, limits (σ = 0, static field)."""

from __future__ import annotations

import math

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

PARTICLE = ParticleParameters(d_c=20e-9, K=6e3)
RTOL = 1e-7
SETTINGS = TSSettings(rtol=RTOL, atol=1e-12)


@pytest.fixture(scope="module")
def model():
    return BrownNeelModel(PARTICLE, 8, 6, "dynamic")


@pytest.fixture(scope="module")
def runs(model):
    drive = SinusoidalDrive(15e-3, 10e3)
    t, _ = time_grid(drive, 0, 0.5, 400)
    return (drive, t, model.simulate(drive, t, SETTINGS, "petsc"),
            model.simulate(drive, t, SETTINGS, "scipy"))


def test_petsc_and_scipy_agree(runs):
    _, _, ts, sc = runs
    # both are RTOL-accurate approximations of the same ODE; global error ~ (steps)·RTOL
    tol = 100 * RTOL
    assert np.abs(ts.mz - sc.mz).max() < tol
    assert np.sqrt(np.mean((ts.dmz - sc.dmz) ** 2)) / np.sqrt(np.mean(sc.dmz**2)) < 10 * tol


def test_rate_is_derivative_of_moment(runs):
    """d⟨m_z⟩/dt from F(t)y agrees with a central difference of ⟨m_z⟩ to its O(h²) error."""
    _, t, ts, _ = runs
    h = t[1] - t[0]
    fd = (ts.mz[2:] - ts.mz[:-2]) / (2 * h)
    exact = ts.dmz[1:-1]
    third = np.gradient(np.gradient(exact, h), h)  # m''' ≈ d²(dm/dt)/dt²
    bound = h**2 / 6 * np.abs(third).max() + 10 * RTOL / h
    assert np.abs(fd - exact)[5:-5].max() < 2 * bound


def test_sigma_zero_relaxation_is_single_exponential():
    """σ = 0: after switching the field off, ⟨m_z⟩(t) = ⟨m_z⟩(0) e^{−t/τ_N}."""
    free = ParticleParameters(d_c=20e-9, K=0.0)
    model = BrownNeelModel(free, 10, 0, "plain")
    b0 = 10e-3
    off = CallableField(lambda t: np.zeros(3), lambda t: np.zeros(3), 0.0, along_z=True)
    on = CallableField(lambda t: np.array([0, 0, b0]), lambda t: np.zeros(3), b0, along_z=True)
    y0 = model.initial_state(on)
    t = np.linspace(0, 5 * free.tau_n, 51)
    run = model.simulate(off, t, SETTINGS, y0=y0)
    assert abs(run.mz[0] - langevin(free.xi_per_tesla * b0)) < 1e-10
    expected = run.mz[0] * np.exp(-t / free.tau_n)
    assert np.abs(run.mz - expected).max() < 100 * RTOL * run.mz[0]
    assert np.allclose(run.dmz, -run.mz / free.tau_n, rtol=1e-8, atol=1e-12 / free.tau_n)


def test_static_field_equilibrium_approaches_langevin(model):
    """Static field, σ > 0: the stationary state gives L(ξ) with spectral convergence.

    Going from (8,6) to (12,10) must gain more than a decade (exponential convergence).
    """
    xi = 4.0
    errors = []
    for n_m, n_n in ((8, 6), (12, 10)):
        m = BrownNeelModel(PARTICLE, n_m, n_n, "dynamic", shift=0.0)
        f = m.op.matrix(np.array([0.0, 0.0, xi])).tocsc()
        _, v = spla.eigs(f, k=1, sigma=0.0)
        q = np.real(v[:, :1])
        a1, az = m.weights.moments(np.array([xi]), q)
        errors.append(abs(az[0] / a1[0] - langevin(xi)))
    assert errors[1] < errors[0] / 10
    assert errors[1] < 1e-3


def test_transient_from_isotropic_is_mass_normalised(model):
    drive = SinusoidalDrive(15e-3, 10e3)
    t, _ = time_grid(drive, 0, 0.05, 40)
    run = model.simulate(drive, t, SETTINGS)
    assert abs(run.mass[0] - 1) < 1e-12
    assert np.all(np.abs(run.mz) <= 1 + 1e-9)
    assert math.isfinite(run.seconds)


def test_lu_package_choice_and_same_trajectory():
    """``lu_solver``: PETSc's LU for small or dense matrices, MUMPS (when PETSc has it) for
    large sparse ones; both give the same trajectory; unknown names are refused."""
    import scipy.sparse as sp
    from petsc4py import PETSc

    from llgfem.brownneel.integrate import MUMPS_MIN_SIZE, _lu_solver, integrate_petsc

    def aij(n):
        a = sp.random(n, n, density=5 / n, random_state=0, format="csr") - 10 * sp.identity(n)
        a = sp.csr_matrix(a)
        return PETSc.Mat().createAIJ(size=a.shape, csr=(a.indptr, a.indices, a.data),
                                     comm=PETSc.COMM_SELF)

    small, big = aij(50), aij(MUMPS_MIN_SIZE + 1)
    small.assemble(), big.assemble()
    assert _lu_solver(small, "auto") == "petsc"
    want = "mumps" if PETSc.Sys.hasExternalPackage("mumps") else "petsc"
    assert _lu_solver(big, "auto") == want
    with pytest.raises(ValueError, match="lu_solver"):
        _lu_solver(big, "umfpack-ish")
    y0 = np.linspace(1.0, 2.0, big.getSize()[0])
    s = np.linspace(0.0, 0.5, 6)
    runs = [integrate_petsc([big], lambda t: np.ones(1), y0, s,
                            TSSettings(rtol=1e-8, atol=1e-12, lu_solver=name))
            for name in ("petsc", "auto")]
    assert runs[1].info["lu_solver"] == want
    np.testing.assert_allclose(runs[1].y, runs[0].y, rtol=1e-9, atol=1e-12)
