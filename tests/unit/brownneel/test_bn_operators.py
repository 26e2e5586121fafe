"""Structure of the assembled Brown–Néel operators and the stability guard."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.brownneel import (
    BrownNeelModel,
    ParticleParameters,
    ProductBasis,
    UnstableTruncationError,
    assemble_operator,
    langevin,
)

PARTICLE = ParticleParameters(d_c=20e-9, K=6e3)
BASIS = ProductBasis(6, 4)
XI = PARTICLE.xi_per_tesla * 15e-3


def _round_off(a) -> float:
    return 1e3 * np.finfo(float).eps * max(abs(a).max(), 1.0)


@pytest.fixture(scope="module")
def ops():
    return {f: assemble_operator(PARTICLE, BASIS, f) for f in ("plain", "static", "dynamic")}


def test_matrices_are_real_and_share_one_pattern(ops):
    for op in ops.values():
        first = op.matrices[0]
        for a in op.matrices:
            assert a.dtype == np.float64
            assert np.array_equal(a.indptr, first.indptr)
            assert np.array_equal(a.indices, first.indices)


def test_plain_operator_conserves_mass(ops):
    """Row (0,0;0,0) of every plain matrix vanishes: d/dt ∫p = 4π dc_00/dt = 0 exactly.

    (The column does not vanish: the uniform density is not stationary for σ, ξ ≠ 0.)
    """
    i0 = BASIS.position(0, 0, 0, 0)
    for a in ops["plain"].matrices:
        dense = a.toarray()
        assert np.abs(dense[i0]).max() <= _round_off(dense)
    assert np.abs(ops["plain"].matrices[0].toarray()[:, i0]).max() > 1.0


def test_static_projected_operator_conserves_weighted_mass(ops):
    op = ops["static"]
    u, g1 = op.projector
    assert abs(g1 @ u - 1) < 1e-12
    for a in op.matrices:
        assert np.abs(g1 @ a.toarray()).max() <= _round_off(a.toarray()) * np.abs(g1).max()


def test_dynamic_symmetric_part_is_negative_semidefinite(ops):
    op = ops["dynamic"]
    for xi in (-XI, 0.0, 0.5 * XI, XI):
        f = op.matrix(np.array([0.0, 0.0, xi])).toarray()
        lam_max = np.linalg.eigvalsh(0.5 * (f + f.T))[-1]
        assert lam_max <= _round_off(f)


def test_precession_part_is_skew():
    with_p = assemble_operator(PARTICLE, BASIS, "dynamic", precession=True)
    without = assemble_operator(PARTICLE, BASIS, "dynamic", precession=False)
    for a, b in zip(with_p.matrices, without.matrices, strict=True):
        d = (a - b).toarray()
        assert np.abs(d + d.T).max() <= _round_off(d)
    assert abs(with_p.matrices[0] - without.matrices[0]).max() > 1.0  # precession is present


def test_static_symmetric_part_at_zero_field_is_negative_semidefinite():
    """Before projection, F̃0 = (symmetric ≤ 0) + (skew): check on the raw static matrix."""
    from llgfem.brownneel.operators import _Builder, _symmetrised_base

    raw = BASIS.to_real(_symmetrised_base(_Builder(BASIS), PARTICLE, 0.5,
                                          0.5 * PARTICLE.tau_n / PARTICLE.tau_b, True))
    f = raw.toarray()
    assert np.linalg.eigvalsh(0.5 * (f + f.T))[-1] <= _round_off(f)


def test_guard_refuses_plain_truncation_and_accepts_dynamic():
    """BROWN_NEEL §3.1: the plain (5,4) matrix has Re λ τ_N ≈ 1 at B = 0."""
    plain = BrownNeelModel(PARTICLE, 5, 4, "plain")
    with pytest.raises(UnstableTruncationError, match="spurious growing modes"):
        plain.check_stability(15e-3)
    dyn = BrownNeelModel(PARTICLE, 5, 4, "dynamic")
    assert dyn.check_stability(15e-3) <= 1e-8


def test_sigma_zero_plain_operator_has_neel_rate():
    """σ = 0: ⟨m_z⟩ mode decays with rate 1/τ_N (eigenvalue −1 in units of 1/τ_N)."""
    free = ParticleParameters(d_c=20e-9, K=0.0)
    op = assemble_operator(free, ProductBasis(4, 2), "plain")
    basis = op.basis
    i = basis.position(1, 0, 0, 0)
    a0 = op.matrices[0].toarray()
    e = np.zeros(basis.size)
    e[i] = 1.0
    assert np.allclose(a0 @ e, -e, atol=1e-13)


@pytest.mark.parametrize("xi", [1.0, 4.0])
def test_sigma_zero_equilibrium_is_langevin(xi):
    """σ = 0: the null vector of F(ξ) gives L(ξ); the truncation error decays like ξ^N/N!."""
    free = ParticleParameters(d_c=20e-9, K=0.0)
    model = BrownNeelModel(free, 14, 0, "plain")
    f = model.op.matrix(np.array([0.0, 0.0, xi])).toarray()
    w, v = np.linalg.eig(f)
    y = np.real(v[:, np.argmin(np.abs(w))])
    mz = (model.g_z @ y) / (model.g_1 @ y)
    assert abs(mz - langevin(xi)) < 1e-10
