"""SP4 through magnum.np (paper 001, §3): reference check and subprocess plumbing.

The plumbing runs the real generator script's file logic with a stand-in simulator
(``fake_sp4_generator.py``) under the current interpreter, so no magnum.np is needed; the last
test runs the real SP4 field-1 check only when the side environment exists (slow).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from llgfem.surrogates.data import read_dataset
from llgfem.surrogates.sp4 import (
    REFERENCE_M_1NS,
    REFERENCE_TOLERANCE,
    SideEnvironmentError,
    SP4DatasetSpec,
    SP4ReferenceError,
    check_reference,
    find_magnumnp_python,
    generate_sp4_dataset,
)

pytestmark = pytest.mark.skip_in_parallel
FAKE = Path(__file__).with_name("fake_sp4_generator.py")
SPEC = SP4DatasetSpec(n_fields=5, s=7, h_range=(30.0, 40.0), angle_range=(180.0, 200.0))
GOOD = ",".join(str(c + 0.5 * REFERENCE_TOLERANCE) for c in REFERENCE_M_1NS)
BAD = ",".join(str(c + 2.0 * REFERENCE_TOLERANCE * (q == 1)) for q, c in
               enumerate(REFERENCE_M_1NS))


def test_check_reference_accepts_inside_and_refuses_outside_the_tolerance():
    ref = np.array(REFERENCE_M_1NS)
    inside = ref + 0.9 * REFERENCE_TOLERANCE * np.array([1.0, -1.0, 1.0])
    result = check_reference(inside)
    assert result["passed"]
    assert result["max_abs_error"] == pytest.approx(0.9 * REFERENCE_TOLERANCE)
    for q in range(3):
        outside = ref.copy()
        outside[q] -= 1.1 * REFERENCE_TOLERANCE
        with pytest.raises(SP4ReferenceError, match="refused"):
            check_reference(outside)
    with pytest.raises(SP4ReferenceError):
        check_reference([np.nan, 0.14, 0.042])


def test_generate_with_a_stand_in_generator_resumes_and_keeps_the_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SP4_M1NS", GOOD)
    path = tmp_path / "sp4.h5"
    part = SP4DatasetSpec(**{**SPEC.__dict__, "max_fields": 2})
    data, check = generate_sp4_dataset(part, path, python=sys.executable, script=FAKE)
    assert check["passed"]
    assert data.D.shape == (2, 7, 2 + 3 * 6)
    data, _ = generate_sp4_dataset(SPEC, path, python=sys.executable, script=FAKE)
    assert data.D.shape == (5, 7, 2 + 3 * 6)
    assert data.tag_names == ("h_abs", "angle_deg")
    tags = data.tags[:, 0]
    assert np.all((tags[:, 0] >= 30) & (tags[:, 0] <= 40))
    assert np.all((tags[:, 1] >= 180) & (tags[:, 1] <= 200))
    assert np.allclose(data.tags, data.tags[:, :1])  # static fields
    # component blocks: the stand-in turns every cell by the wrapped angle times t/T
    wrapped = np.angle(np.exp(1j * np.deg2rad(tags[:, 1])))
    a = wrapped[:, None] * data.times[None] / data.times[-1]
    assert np.allclose(data.mean_magnetisation()[..., 0], np.cos(a))
    assert np.allclose(data.states[..., 6:12], np.sin(a)[..., None])  # the m_y block
    assert np.allclose(data.times, np.linspace(0, SPEC.T, SPEC.s))
    assert len(data.meta["trajectory_seconds"]) == 5
    assert data.meta["reference_check"]["passed"]
    assert read_dataset(path).meta["settings"]["n_fields"] == 5


def test_generate_refuses_a_failed_reference_and_reports_generator_errors(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("FAKE_SP4_M1NS", BAD)
    with pytest.raises(SP4ReferenceError, match="refused"):
        generate_sp4_dataset(SPEC, tmp_path / "bad.h5", python=sys.executable, script=FAKE)
    monkeypatch.setenv("FAKE_SP4_FAIL", "1")
    with pytest.raises(SideEnvironmentError, match="exited with 3"):
        generate_sp4_dataset(SPEC, tmp_path / "fail.h5", python=sys.executable, script=FAKE)


def test_resume_with_other_settings_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SP4_M1NS", GOOD)
    path = tmp_path / "sp4.h5"
    generate_sp4_dataset(SPEC, path, python=sys.executable, script=FAKE)
    other = SP4DatasetSpec(**{**SPEC.__dict__, "seed": 1})
    with pytest.raises(SideEnvironmentError, match="settings"):
        generate_sp4_dataset(other, path, python=sys.executable, script=FAKE)


def test_missing_side_environment_names_the_bootstrap_script(tmp_path, monkeypatch):
    monkeypatch.setenv("LLGFEM_MAGNUMNP_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(SideEnvironmentError, match="tools/bootstrap-sp4.sh"):
        find_magnumnp_python()
    with pytest.raises(SideEnvironmentError, match="tools/bootstrap-sp4.sh"):
        generate_sp4_dataset(SPEC, tmp_path / "x.h5")


def _side_python():
    try:
        return find_magnumnp_python()
    except SideEnvironmentError:
        return None


@pytest.mark.slow
@pytest.mark.skipif(_side_python() is None, reason="no magnum.np side environment "
                    "(tools/bootstrap-sp4.sh)")
def test_real_sp4_field1_passes_the_reference_check(tmp_path):
    spec = SP4DatasetSpec(n_fields=1, max_fields=1)
    data, check = generate_sp4_dataset(spec, tmp_path / "sp4.h5")
    assert check["passed"]
    assert data.D.shape == (1, 100, 2 + 3 * 2500)
    m = data.states.reshape(1, 100, 3, 2500)
    assert np.allclose(np.linalg.norm(m, axis=2), 1.0, atol=1e-6)


def test_surrogate_kernel_job_with_source_magnumnp_uses_the_sp4_generator(tmp_path, monkeypatch):
    import llgfem.surrogates.sp4 as sp4
    from llgfem.cli import load_run_config
    from llgfem.surrogates.jobs import run_job

    monkeypatch.setenv("FAKE_SP4_M1NS", GOOD)
    monkeypatch.setenv("LLGFEM_MAGNUMNP_PYTHON", sys.executable)
    monkeypatch.setattr(sp4, "SCRIPT", FAKE)
    configs = Path(__file__).resolve().parents[3] / "demos" / "configs"
    sets = ('job.kind="surrogate_kernel"', "sp4.n_fields=12", "sp4.s=21", "output.plots=false",
            "kernel.rank_pca=40", "kernel.rank_pre=40", "kernel.rank_int=40",
            "kernel.n_components=4")
    cfg = load_run_config(str(configs / "surrogate_sp4_generate.toml"), sets,
                          output_dir=str(tmp_path))
    summary = run_job(cfg)
    assert summary["source"] == "magnumnp"
    assert (summary["n"], summary["s"], summary["N"]) == (12, 21, 6)
    assert summary["mse_test"] < summary["mse_baseline_constant"]
    monkeypatch.setenv("LLGFEM_MAGNUMNP_PYTHON", str(tmp_path / "missing"))
    with pytest.raises(SideEnvironmentError, match="bootstrap-sp4"):
        run_job(load_run_config(str(configs / "surrogate_sp4_generate.toml"), sets,
                                output_dir=str(tmp_path / "other")))
