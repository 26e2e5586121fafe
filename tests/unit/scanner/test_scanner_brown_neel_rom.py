"""``brown_neel_rom`` system-matrix model: registry, options, full-rank basis = FOM per position.

A toy scanner (one drive channel along x, divider 4 at 2.5 MHz: a 1.6 µs cycle, 6 mT) keeps the
runs short (the step count grows with the number of drive oscillations); the offset G x has a
y component, so the field history is 2-D (full even-L basis).  A weakly anisotropic tracer;
the physics of the ROM is tested in tests/unit/rom.
"""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.brownneel import TSSettings
from llgfem.brownneel.lissajous import LissajousModel
from llgfem.config import ConfigError
from llgfem.scanner.brown_neel_rom import BrownNeelRomResponse, ScannerDrive
from llgfem.scanner.fields import ScannerConfig, ScannerFields
from llgfem.scanner.models import MODELS, build_model
from llgfem.scanner.tracer import TracerConfig

TRACER = TracerConfig(core_diameter=20e-9, anisotropy=1e3)
SCANNER = ScannerFields(ScannerConfig(dividers=(4,), strengths=(0.006,), num_sampling_points=8))


def test_registry_and_options():
    assert "brown_neel_rom" in MODELS
    model = build_model(TRACER, {"kind": "brown_neel_rom", "n_m": 3, "n_n": 2})
    assert isinstance(model, BrownNeelRomResponse)
    assert model.options()["n_m"] == 3
    assert model.per_position
    with pytest.raises(ConfigError, match="model.rank"):
        build_model(TRACER, {"kind": "brown_neel_rom", "rank": 0})
    bad = build_model(TRACER, {"kind": "brown_neel_rom", "n_m": 3, "n_n": 2,
                               "basis": "/nonexistent/basis.npz"})
    with pytest.raises(ConfigError, match="model.basis"):
        bad.moments(SCANNER, np.zeros((1, 3)))


def test_full_rank_basis_reproduces_the_fom(tmp_path):
    n_m, n_n, warm = 2, 2, 1
    probe = LissajousModel(TRACER.particle_parameters(), n_m, n_n, b_max=0.04)
    path = tmp_path / "basis.npz"
    np.savez(path, modes=np.eye(probe.size))
    model = build_model(TRACER, {"kind": "brown_neel_rom", "n_m": n_m, "n_n": n_n,
                                 "basis": str(path), "warmup_samples": warm, "rtol": 1e-7})
    x = np.array([[0.004, -0.007, 0.0]])  # static field (−4, 7, 0) mT ⊥ drive partly
    m, dm = model.moments(SCANNER, x)
    assert m.shape == dm.shape == (1, SCANNER.num_samples, 3)
    full = model._cache["model"]
    dt = SCANNER.cycle / SCANNER.num_samples
    t = np.arange(-warm, SCANNER.num_samples) * dt
    run = full.simulate(ScannerDrive(SCANNER, SCANNER.static(x[0])), t,
                        TSSettings(rtol=1e-7, atol=1e-11))
    np.testing.assert_allclose(m[0], run.m[warm:], atol=1e-4)
    np.testing.assert_allclose(dm[0], run.dm[warm:], atol=1e-3 * np.abs(run.dm).max())
    assert np.abs(dm[0, :, 1]).max() > 1e-2 * np.abs(dm[0, :, 0]).max()  # 2-D response
    assert model.stats["positions"] == 1
    assert model.stats["rank"] == probe.size


@pytest.mark.parametrize("basis", ["full", "trained"])
def test_frame_option_reproduces_the_fom(tmp_path, basis):
    """``frame = true``: a full-rank field-frame basis from a file reproduces the FOM at an
    oblique static field; the POD of the field-frame snapshots of FOM runs at the training grid
    (on the drive axis: fixed frame) reproduces it at another position on that axis."""
    n_m, n_n, warm = 2, 2, 1
    probe = LissajousModel(TRACER.particle_parameters(), n_m, n_n, b_max=0.04)
    opts = {"kind": "brown_neel_rom", "n_m": n_m, "n_n": n_n, "warmup_samples": warm,
            "rtol": 1e-7, "frame": True, "training_grid": [3, 1, 1]}
    if basis == "full":
        path = tmp_path / "basis.npz"
        np.savez(path, modes=np.eye(probe.size))
        opts["basis"] = str(path)
    model = build_model(TRACER, opts)
    x = np.array([[0.004, -0.007, 0.0]] if basis == "full" else [[0.0013, 0.0, 0.0]])
    m, dm = model.moments(SCANNER, x)
    full = model._cache["model"]
    t = np.arange(-warm, SCANNER.num_samples) * SCANNER.cycle / SCANNER.num_samples
    run = full.simulate(ScannerDrive(SCANNER, SCANNER.static(x[0])), t,
                        TSSettings(rtol=1e-7, atol=1e-11))
    tol = 1e-3 if basis == "full" else 3e-2
    np.testing.assert_allclose(dm[0], run.dm[warm:], atol=tol * np.abs(run.dm).max())
    assert model.stats["training"] == (0 if basis == "full" else 3)
    assert model.stats["rank"] == (probe.size if basis == "full" else model._cache["rom"].rank)
