"""Offset-parametric POD-Galerkin ROM (issue 15): full-rank ROM = FOM with a 2-D drive, stability
for small r, one projection for every offset, residual identity, greedy selection."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.brownneel import ParticleParameters, TSSettings
from llgfem.brownneel.lissajous import (
    LissajousDrive,
    LissajousModel,
    coefficients,
    offset_field,
    signal_nrmse,
)
from llgfem.brownneel.lissajous_rom import reductor_for, rom_indicator, simulate_reduced
from llgfem.rom import pod
from llgfem.rom.parametric import ParametricReductor, greedy_selection

SOFT = ParticleParameters(d_c=20e-9, K=1e3)
GRADIENT = (-1.0, -1.0, 2.0)
RTOL = 1e-7
SETTINGS = TSSettings(rtol=RTOL, atol=1e-13, max_steps=50_000)
DRIVE = LissajousDrive.from_dividers(2.5e6, (102, 96, 1), (12e-3, 12e-3, 0.0))
T = np.arange(6) / 2.5e6  # 2 µs ≈ 140 τ_N at the scanner's sampling rate


@pytest.fixture(scope="module")
def fom():
    model = LissajousModel(SOFT, 3, 2, b_max=0.04)
    drive = DRIVE.with_offset(offset_field(GRADIENT, (0.005, -0.003, 0.0)))
    return model, drive, model.simulate(drive, T, SETTINGS)


def test_full_rank_rom_equals_fom_2d_drive(fom):
    model, drive, run = fom
    u = np.linalg.qr(np.random.default_rng(3).standard_normal((model.size, model.size)))[0]
    rom = reductor_for(model, residual=False).reduce(u)
    red = simulate_reduced(model, rom, drive, T, SETTINGS)
    # same ODE in rotated coordinates (the shifts differ but the outputs are ratios)
    assert np.abs(red.m - run.m).max() < 1e3 * RTOL
    assert signal_nrmse(red.dm[:, :2], run.dm[:, :2]) < 1e3 * RTOL
    assert np.abs(run.m[:, :2]).max() > 0.1  # a real 2-D response
    assert np.abs(run.dm[:, :2]).max() > 1e3


def test_offset_parametric_projection_equals_projecting_each_offset(fom):
    """Σ c_k(t; b) UᵀA_kU = Uᵀ F(t; b) U for several offsets and times, one projection."""
    model, _, run = fom
    u = pod(run.y, rank=8).modes
    rom = reductor_for(model, residual=False).reduce(u)
    table = (np.array([0.0, 1.0]), np.array([0.3, 0.3]))
    for x in [(0.0, 0.0, 0.0), (0.011, -0.004, 0.0), (-0.009, 0.012, 0.002)]:
        drive = DRIVE.with_offset(offset_field(GRADIENT, x))
        c = model.coefficient_samples(drive, np.array([0.0, 1.3e-6, 3.7e-6]), table)
        for ck in c:
            f = sum(cj * a for cj, a in zip(ck, model.matrices(), strict=True))
            direct = u.T @ (f @ u)
            np.testing.assert_allclose(rom.operator(ck), direct,
                                       atol=1e-12 * np.abs(direct).max())


def test_rom_stable_for_small_rank(fom):
    """sym(UᵀF(ξ)U) ≤ max eig sym(F(ξ)) ≤ 0 for small r and in-plane offsets (ξ̇ = 0); along a
    reduced run at another offset the logarithmic norm μ(t) = λ_max(sym(Σ c_k Â_k)) exceeds
    the shift κ(t) by at most ½|ξ̇| (the only non-dissipative term) and
    log‖a(t)‖ − log‖a(0)‖ ≤ ∫μ."""
    model, _, run = fom
    modes = pod(run.y, rank=10).modes
    xi_t = SOFT.xi_per_tesla
    drive = DRIVE.with_offset(offset_field(GRADIENT, (-0.01, 0.008, 0.0)))
    fine = np.linspace(0, T[-1], 201)
    rate = 0.5 * xi_t * SOFT.tau_n * np.linalg.norm(drive.rates(fine), axis=1)
    for r in (2, 4, 10):
        rom = reductor_for(model, residual=False).reduce(modes[:, :r])
        for b in [(0.0, 0.0, 0.0), (0.02, -0.015, 0.0), (-0.024, 0.024, 0.0)]:
            c = coefficients(model.table, xi_t * np.array([b]), np.zeros((1, 3)), np.zeros(1))
            f = rom.operator(c[0])
            assert np.linalg.eigvalsh(0.5 * (f + f.T))[-1] <= 1e-10
        red = simulate_reduced(model, rom, drive, T, SETTINGS, method="petsc")
        assert np.all(np.isfinite(red.dm))
        table = model.shift_table(drive, T[-1], reduced=rom)
        c = model.coefficient_samples(drive, fine, table)
        mu = np.array([np.linalg.eigvalsh(0.5 * (f + f.T))[-1]
                       for f in (rom.operator(ck) for ck in c)])
        kappa = np.interp(fine / SOFT.tau_n, *table)
        assert np.all(mu <= kappa + rate + 1e-10)
        growth = np.interp(T, fine, np.concatenate(
            [[0.0], np.cumsum(0.5 * (mu[1:] + mu[:-1]) * np.diff(fine / SOFT.tau_n))]))
        norms = np.linalg.norm(red.y, axis=0)
        assert np.all(np.log(norms / norms[0]) <= growth + 1e-4)
        # the unshifted Rosenbrock run (states rescaled at every sample): same energy bound
        # with μ₀(t) = λ_max(sym(F_r(t))), no shift
        ros = simulate_reduced(model, rom, drive, T, SETTINGS)
        mu0 = mu - kappa
        growth0 = np.interp(T, fine, np.concatenate(
            [[0.0], np.cumsum(0.5 * (mu0[1:] + mu0[:-1]) * np.diff(fine / SOFT.tau_n))]))
        log_norm = ros.info["log_scale"] + np.log(np.linalg.norm(ros.y, axis=0))
        assert np.all(log_norm - log_norm[0] <= growth0 + 1e-4)
        assert signal_nrmse(ros.dm[:, :2], red.dm[:, :2]) < 1e3 * RTOL


def test_residual_matches_full_computation(fom):
    model, drive, run = fom
    u = pod(run.y, rank=6).modes
    rom = reductor_for(model).reduce(u)
    table = model.shift_table(drive, T[-1], reduced=rom)
    c = model.coefficient_samples(drive, T, table)
    a = u.T @ run.y
    direct = []
    for ck, ai in zip(c, a.T, strict=True):
        f = sum(cj * m for cj, m in zip(ck, model.matrices(), strict=True))
        fu = f @ (u @ ai)
        direct.append(np.linalg.norm(fu - u @ (u.T @ fu)))
    direct = np.array(direct)
    np.testing.assert_allclose(rom.residual(c, a), direct, rtol=1e-5,
                               atol=1e-7 * direct.max())
    assert rom_indicator(model, rom, drive, T, SETTINGS) > 0


def test_greedy_selection_picks_worst_candidate_and_stops():
    """Synthetic: snapshots of candidate i are a few vectors; the indicator is the projection
    error of candidate i's vectors onto the basis — greedy adds the worst, stops at tol."""
    rng = np.random.default_rng(5)
    n = 30
    candidates = [rng.standard_normal((n, 2)) for _ in range(4)]
    candidates.append(candidates[0] @ rng.standard_normal((2, 2)))  # inside span of 0
    eye = [np.eye(n)]

    def indicator(rom, i):
        y = candidates[i]
        return float(np.linalg.norm(y - rom.basis @ (rom.basis.T @ y)) / np.linalg.norm(y))

    res = greedy_selection(5, lambda i: candidates[i], indicator,
                           ParametricReductor(eye, residual=False), first=0,
                           max_selected=5, tol=1e-8)
    assert res.selected[0] == 0
    assert 4 not in res.selected  # already represented by candidate 0
    assert sorted(res.selected) == [0, 1, 2, 3]
    assert res.history[-1]["max_indicator"] <= 1e-8
    assert res.rom.rank == 8
    with pytest.raises(ValueError, match="first"):
        greedy_selection(5, lambda i: candidates[i], indicator,
                         ParametricReductor(eye, residual=False), first=7)


def test_rom_system_matrix_gathers_every_position(fom):
    """Positions dealt over the ranks, gathered once: equal to one reduced run per position."""
    from llgfem.brownneel.lissajous_rom import rom_system_matrix

    model, _, run = fom
    rom = reductor_for(model, residual=False).reduce(pod(run.y, rank=6).modes)
    positions = np.array([[0.0, 0.0, 0.0], [0.006, -0.01, 0.0], [-0.012, 0.004, 0.0]])
    res = rom_system_matrix(model, rom, DRIVE, GRADIENT, positions, T, start=1,
                            settings=SETTINGS)
    assert res["signals"].shape == (3, T.size - 1, 2)
    assert [i for i, _ in res["per_position"]] == [0, 1, 2]
    for i in (0, 2):
        drive = DRIVE.with_offset(offset_field(GRADIENT, positions[i]))
        ref = simulate_reduced(model, rom, drive, T, SETTINGS).dm[1:, :2]
        np.testing.assert_allclose(res["signals"][i], ref, rtol=1e-10,
                                   atol=1e-10 * np.abs(ref).max())


def test_select_positions_greedy_over_offsets(fom):
    """Greedy over three positions: starts at the centre, adds the candidate with the largest
    residual indicator, builds the basis from unit-mass snapshots of the selected runs."""
    from llgfem.brownneel.lissajous_rom import mass_normalised, select_positions

    model, drive, run = fom
    positions = np.array([[0.0, 0.0, 0.0], [0.01, -0.01, 0.0], [-0.012, 0.012, 0.0]])
    calls = []

    def states(d, x):
        calls.append(tuple(x))
        return model.simulate(d, T, SETTINGS).y

    res = select_positions(model, DRIVE, GRADIENT, positions, T, SETTINGS, max_selected=2,
                           rank=8, fom_states=states)
    g = res.greedy
    assert g.selected[0] == 0
    assert g.selected[1] == int(np.nanargmax(g.indicators[0]))
    assert len(calls) == 2
    assert res.rom.rank <= 8
    y = mass_normalised(model, drive, T, run.y)
    xi, _ = model.xi(drive, T)
    _, _, a1 = model.quad.moments(xi, model.quad.g @ y)
    np.testing.assert_allclose(a1, 1.0, rtol=1e-12)


def test_rayleigh_shift_leaves_outputs_unchanged(fom):
    """Large models take κ(ξ) from the Rayleigh quotient of the Boltzmann state (no LU per
    table sample); κ only scales the state, so the mass-normalised outputs agree with the
    inverse-iteration shift to the integration tolerance while the tables differ."""
    model, drive, run = fom
    cheap = LissajousModel(SOFT, 3, 2, b_max=0.04, shift_inverse_max=0)
    inverse = model.shift_table(drive, float(T[-1]))[1]
    rayleigh = cheap.shift_table(drive, float(T[-1]))[1]
    assert np.abs(rayleigh - inverse).max() > 1e-6  # a different shift
    other = cheap.simulate(drive, T, SETTINGS)
    assert np.abs(other.m - run.m).max() < 1e2 * RTOL
    assert signal_nrmse(other.dm[:, :2], run.dm[:, :2]) < 1e2 * RTOL


def test_fom_steps_land_on_the_samples(fom):
    """The Lissajous FOM ends a step at every sample (no interpolated state: d⟨m⟩/dt = F y
    would amplify its error), and the landed run agrees with a tight reference."""
    model, drive, run = fom
    assert run.info["interpolated_outputs"] == 0
    ref = model.simulate(drive, T, TSSettings(rtol=1e-10, atol=1e-16, max_steps=200_000))
    assert signal_nrmse(run.dm[:, :2], ref.dm[:, :2]) < 1e2 * RTOL
