"""Online coefficients of the Lissajous ROM: the vectorised sampler equals the generic path."""

from __future__ import annotations

import numpy as np

from llgfem.brownneel import ParticleParameters
from llgfem.brownneel.lissajous import LissajousDrive, LissajousModel, coefficients
from llgfem.brownneel.lissajous_rom import coefficient_sampler

PARTICLE = ParticleParameters(d_c=20e-9, K=6e3)


def test_lissajous_sampler_equals_generic_coefficients():
    model = LissajousModel(PARTICLE, 2, 2, b_max=0.05)
    drive = LissajousDrive.from_dividers(2.5e6, (102, 96, 136), (12e-3, 12e-3, 6e-3),
                                         phases=(0.1, 0.2, 0.3), offset=(1e-3, -2e-3, 3e-3))
    s = np.linspace(0.0, 3000.0, 7)
    xi, dxi = model.xi(drive, s * PARTICLE.tau_n)
    ref = coefficients(model.table, xi, dxi * PARTICLE.tau_n, np.zeros(s.size))
    got = coefficient_sampler(model, drive)(s)
    assert got.shape == ref.shape == (7, len(model.terms))
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-12 * np.abs(ref).max())
    assert np.all(got[:, model.terms.index("shift")] == 0.0)
    assert np.abs(got[:, model.terms.index("xi_x*xi_y")]).max() > 1.0  # a real 3-D drive
