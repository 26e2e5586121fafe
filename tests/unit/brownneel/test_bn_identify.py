"""The σ-affine parametric ROM used for identification reproduces the projected operators."""

from __future__ import annotations

import numpy as np

from llgfem.brownneel import ParticleParameters, ProductBasis, assemble_operator
from llgfem.brownneel.identify import ParametricROM


def test_sigma_affine_decomposition_is_exact():
    trunc = (5, 4)
    rng = np.random.default_rng(0)
    n = ProductBasis(*trunc).size
    u = np.linalg.qr(rng.standard_normal((n, 12)))[0]
    prom = ParametricROM(u, trunc, shift=0.0)
    # a particle of another size: in units of τ_N only σ matters (d_h = d_c)
    p = ParticleParameters(d_c=23e-9, K=7.5e3)
    op = assemble_operator(p, ProductBasis(*trunc), "dynamic")
    rom = prom.reduced_model(p.sigma)
    for a, ar in zip(op.matrices, rom.matrices, strict=True):
        ref = u.T @ (a @ u)
        scale = max(np.abs(ref).max(), 1.0)
        assert np.abs(ar - ref).max() < 1e-9 * scale * (1 + p.sigma**2)
