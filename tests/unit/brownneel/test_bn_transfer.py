"""Boltzmann-weight transfer of snapshots between particles (``brownneel.transfer``)."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.brownneel import BrownNeelModel, ParticleParameters, SinusoidalDrive
from llgfem.brownneel.transfer import boltzmann_transfer, transfer_snapshots

P20_6 = ParticleParameters(d_c=20e-9, K=6e3)
P25_10 = ParticleParameters(d_c=25e-9, K=10e3)


def _mismatch(a: np.ndarray, b: np.ndarray) -> float:
    """Relative distance of a from the line through b."""
    c = (a @ b) / (b @ b)
    return float(np.linalg.norm(a - c * b) / np.linalg.norm(c * b))


@pytest.mark.parametrize("phase", [0.0, np.pi / 2])
def test_equilibrium_maps_to_equilibrium(phase):
    """w_A(ξ_A) ↦ w_B(ξ_B): the map takes A's Boltzmann state to B's, up to truncation,
    and the mismatch falls with the truncation (σ 6.2 → 20.2, ξ 7.4 → 14.4)."""
    drive = SinusoidalDrive(15e-3, 5e3, phase=phase)
    errors = []
    for trunc in [(6, 4), (10, 8)]:
        a, b = BrownNeelModel(P20_6, *trunc), BrownNeelModel(P25_10, *trunc)
        qa, qb = a.initial_state(drive), b.initial_state(drive)
        b0 = drive.field(0.0)[2]
        mapped = boltzmann_transfer(a, b, qa[:, None], [a.params.xi_per_tesla * b0],
                                    [b.params.xi_per_tesla * b0])[:, 0]
        errors.append(_mismatch(mapped, qb))
        # the unmapped state is far from B's equilibrium
        assert _mismatch(qa, qb) > 0.3
    assert errors[1] < 2e-3
    assert errors[1] < errors[0] / 5


def test_identity_and_linearity():
    """Same particle and field: identity; the map acts column by column and linearly."""
    a, b = BrownNeelModel(P20_6, 8, 6), BrownNeelModel(P25_10, 8, 6)
    rng = np.random.default_rng(0)
    y = rng.standard_normal((a.size, 3))
    xi = np.array([1.0, 0.0, -2.0])
    np.testing.assert_allclose(boltzmann_transfer(a, a, y, xi, xi), y, atol=1e-12)
    xb = 2.0 * xi
    whole = boltzmann_transfer(a, b, y, xi, xb)
    for k in range(3):
        col = boltzmann_transfer(a, b, y[:, k:k + 1], xi[k:k + 1], xb[k:k + 1])[:, 0]
        np.testing.assert_allclose(whole[:, k], col, rtol=1e-10, atol=1e-12)
    combo = boltzmann_transfer(a, b, (y[:, :1] - 3 * y[:, 1:2]), xi[:1], xb[:1])
    np.testing.assert_allclose(combo[:, 0], whole[:, 0] - 3 * boltzmann_transfer(
        a, b, y[:, 1:2], xi[:1], xb[:1])[:, 0], rtol=1e-8, atol=1e-10)


def test_transfer_errors():
    a = BrownNeelModel(P20_6, 6, 4)
    with pytest.raises(ValueError, match="truncation"):
        boltzmann_transfer(a, BrownNeelModel(P25_10, 8, 6), np.zeros((a.size, 1)), [0], [0])
    with pytest.raises(ValueError, match="dynamic"):
        boltzmann_transfer(BrownNeelModel(P20_6, 6, 4, "static"), a, np.zeros((a.size, 1)),
                           [0], [0])
    with pytest.raises(ValueError, match="shape"):
        boltzmann_transfer(a, a, np.zeros((a.size, 2)), [0], [0])
    with pytest.raises(ValueError, match="transfer must be"):
        transfer_snapshots(None, a, None, kind="magic")
