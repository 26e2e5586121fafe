"""The ``calibrate`` job end to end on tiny problems: every method, outputs, error paths.

Paper 002 Algorithms 3.2-3.4 and the regularising Levenberg-Marquardt iteration, driven by the
reduced operator; serial and on 2 ranks (every quantity compared is global/replicated).
"""

import json
import math

import numpy as np
import pytest
from mpi4py import MPI
from petsc4py import PETSc

from llgfem.config import ConfigError, parse_config
from llgfem.jobs.calibrate import calibrate, parameter_errors, run, setup
from llgfem.regularisation import DiscrepancyPrinciple, MaxIterations, landweber
from llgfem.solvers.linear import SolverError

COILS = [{"name": "p111", "sensitivity": [1.0, 1.0, 1.0], "transfer": "constant"},
         {"name": "px", "sensitivity": [1.0, -0.5, 0.2]}]
CONCS = [{"name": "one", "value": 1.0}, {"name": "half", "value": 0.5}]


def config(tmp, method="landweber", coils=True, **calibrate):
    data = {"job": {"kind": "calibrate", "name": f"cal_{method}"},
            "domain": {"kind": "interval", "lower": [0.0], "upper": [2 * math.pi], "n": [16]},
            "time": {"T": 0.2, "n_t": 11}, "llg": {"initial": "paper3"},
            "output": {"dir": str(tmp), "fields": False},
            "calibrate": {"method": method, "a0": [1.2, 0.2], "delta": 0.02, "tau": 2.1,
                          "max_iter": 60, "segments": 3, **calibrate}}
    if coils:
        data.update({"observation": {"mu0": 1.0}, "coil": COILS, "concentration": CONCS})
    return parse_config(data)


@pytest.mark.parametrize("method", ["landweber", "kaczmarz_time", "kaczmarz_data",
                                    "levenberg_marquardt"])
def test_methods_reduce_residual_and_error(mpi_tmp_path, method):
    summary = run(config(mpi_tmp_path, method))
    hist = json.loads((mpi_tmp_path / f"cal_{method}" / "history.json").read_text())
    assert summary["reason"].startswith("discrepancy principle"), summary["reason"]
    # the discrepancy principle holds at the end: ||F(a) - y_delta|| <= tau delta (full data)
    assert summary["iterations"] >= 1
    assert summary["r_llg"] < 1e-8
    e0 = parameter_errors(np.array([1.2, 0.2]), np.array([1.0, 0.0]))
    assert summary["e_a1"] < e0[0] / 2  # a1 is well identified; a2 (weakly) only through a2^2
    assert summary["forward"] >= summary["iterations"] / 4
    assert len(hist["a1"]) == len(hist["forward"]) == len(hist["residual_norm"])
    assert hist["residual_norm"][-1] < hist["residual_norm"][0]
    if MPI.COMM_WORLD.rank == 0:
        assert (mpi_tmp_path / f"cal_{method}" / "plots" / "signal_fit.png").is_file()


def test_paper_observation_and_landweber_counters(mpi_tmp_path):
    cal = setup(config(mpi_tmp_path, coils=False))
    assert cal.op.observation.signals_shape == (1, 1, 10)
    assert all(v == 0 for v in cal.op.counters.values())
    summary, hist = calibrate(cal)
    assert summary["adjoint"] == summary["iterations"]  # one adjoint solve per accepted step
    assert summary["forward"] >= summary["iterations"] + 1
    assert np.all(np.diff(hist["newton"]) >= 0)


def test_nan_data_raise_on_every_rank(mpi_tmp_path):
    cal = setup(config(mpi_tmp_path))
    y = cal.y_delta.copy()
    y[0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        landweber(cal.op, y, np.array([1.2, 0.2]), step=_step(),
                  stop=DiscrepancyPrinciple(2.1, 1.0) | MaxIterations(3))


def _step():
    from llgfem.regularisation import ConstantStep

    return ConstantStep(1.0)


def test_failing_forward_solve_is_a_clear_error(mpi_tmp_path):
    opts = PETSc.Options()
    opts["llgfem_llg_newton_snes_max_it"] = 1  # one Newton step cannot reach rtol 1e-11
    try:
        with pytest.raises(SolverError, match="did not converge"):
            setup(config(mpi_tmp_path))
    finally:
        opts.delValue("llgfem_llg_newton_snes_max_it")


@pytest.mark.parametrize(("key", "value"), [("method", "bfgs"), ("tau", 1.0), ("lm_q", 1.5),
                                            ("step", "huge"), ("a0", [1.0])])
def test_invalid_config(mpi_tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        config(mpi_tmp_path, **{key: value}).section("calibrate", _cal_cls())


def _cal_cls():
    from llgfem.jobs.calibrate import CalibrateConfig

    return CalibrateConfig


def test_landau_lifshitz_scheme_calibrates_through_zero_field(mpi_tmp_path):
    """The length-preserving scheme in the reduced identification (a field-free point sweeps the
    interval, no bias): the residual falls and |m| = 1 is kept by the identified state."""
    cfg = config(mpi_tmp_path, a0=[1.3, 0.3], max_iter=8, delta=0.01)
    cfg.sections["llg"] = {"initial": "field", "scheme": "bartels_prohl", "a1": 1.0,
                           "a2": 0.5, "exchange": 0.05}
    cfg.sections["field"] = {"kind": "ffp", "gradient": 1.0, "amplitude": 2.0, "frequency": 2.5,
                             "direction": [1.0, 0.5, 0.0]}
    cfg.sections["domain"] = {"kind": "interval", "lower": [-2.0], "upper": [2.0], "n": [16]}
    cal = setup(cfg)
    summary, hist = calibrate(cal)
    assert hist["residual_norm"][-1] < 0.5 * hist["residual_norm"][0]
    m = cal.op.state(np.array([summary["a1"], summary["a2"]]))
    dev = np.abs(np.linalg.norm(m.reshape(m.shape[0], -1, 3), axis=2) - 1.0).max(initial=0.0)
    assert MPI.COMM_WORLD.allreduce(dev, op=MPI.MAX) < 1e-9
    cal.op.cache.destroy()


def test_scanner_demo_config_fast(mpi_tmp_path):
    """The 2-D demo config (phantom mesh, FFP field, 2 coils x 2 phantoms), shortened."""
    from pathlib import Path

    from llgfem.cli import load_run_config

    path = Path(__file__).resolve().parents[2] / "demos" / "configs" / "calibrate_scanner2d.toml"
    cfg = load_run_config(str(path), ["time.n_t=6", "time.T=0.25", "calibrate.max_iter=4",
                                      "output.plots=false"], str(mpi_tmp_path))
    summary = run(cfg)
    assert summary["method"] == "kaczmarz_data"
    assert summary["iterations"] == 4
    assert summary["r_llg"] < 1e-8
    assert summary["mpi_size"] == MPI.COMM_WORLD.size


def test_calibrate_resumes_from_its_checkpoint(mpi_tmp_path):
    """A run stopped after 3 iterations and resumed to 8 equals a straight run of 8."""
    def go(sub, max_iter, resume=False):
        cfg = config(mpi_tmp_path / sub, "kaczmarz_time", max_iter=max_iter, delta=0.0,
                     checkpoint_every=1, resume=resume, rtol=0.0)
        return run(cfg)

    straight = go("a", 8)
    go("b", 3)
    resumed = go("b", 8, resume=True)
    assert resumed["iterations"] == straight["iterations"] == 8
    # equal to the Newton tolerance (the resumed run has no warm-start trajectory)
    assert resumed["a1"] == pytest.approx(straight["a1"], rel=1e-10)
    assert resumed["a2"] == pytest.approx(straight["a2"], rel=1e-10, abs=1e-12)


def test_calibrate_refuses_a_foreign_checkpoint(mpi_tmp_path):
    from llgfem.regularisation.checkpoint import CheckpointError

    run(config(mpi_tmp_path, "landweber", max_iter=2, checkpoint_every=1))
    with pytest.raises(CheckpointError):  # another noise seed: another problem
        run(config(mpi_tmp_path, "landweber", max_iter=4, checkpoint_every=1, resume=True,
                   seed=5))


# -- uncertainty and identifiability (issue 14) ------------------------------------------------
XYZ_COILS = [{"name": n, "sensitivity": s} for n, s in
             (("x", [1.0, 0.0, 0.0]), ("y", [0.0, 1.0, 0.0]), ("z", [0.0, 0.0, 1.0]))]
GAUSS_CONCS = [{"name": "left", "center": [1.5], "width": 1.0},
               {"name": "right", "center": [4.5], "width": 1.0}]


def test_table3_setting_reports_a2_not_identified(mpi_tmp_path):
    """The paper's §4.3 observation (one number per coil, a~ = 1) does not determine a2."""
    from llgfem.calibration import NotIdentifiedWarning

    with pytest.warns(NotIdentifiedWarning, match="a2"):
        summary = run(config(mpi_tmp_path, coils=False, delta=0.03))
    assert summary["identified"][1] is False
    assert summary["stderr"][1] is None  # infinite: null in JSON
    saved = json.loads((mpi_tmp_path / "cal_landweber" / "summary.json").read_text())
    assert saved["uncertainty"]["parameters"][1]["identified"] is False
    assert min(saved["uncertainty"]["singular_values"]) < 1e-6 * max(
        saved["uncertainty"]["singular_values"])


def test_informative_coils_identify_both(mpi_tmp_path):
    """Three orthogonal coils and two Gaussian concentrations determine (a1, a2)."""
    data = {"job": {"kind": "calibrate", "name": "cal_gn"},
            "domain": {"kind": "interval", "lower": [0.0], "upper": [2 * math.pi], "n": [16]},
            "time": {"T": 0.2, "n_t": 11}, "llg": {"initial": "paper3"},
            "output": {"dir": str(mpi_tmp_path), "fields": False},
            "observation": {"mu0": 1.0}, "coil": XYZ_COILS, "concentration": GAUSS_CONCS,
            "calibrate": {"method": "gauss_newton", "a0": [1.3, 0.3], "delta": 0.03,
                          "max_iter": 20}}
    import warnings

    from llgfem.calibration import NotIdentifiedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", NotIdentifiedWarning)
        summary = run(parse_config(data))
    assert summary["identified"] == [True, True]
    for j, key in enumerate(("a1", "a2")):
        assert summary["ci95_low"][j] < summary[key] < summary["ci95_high"][j]
        assert 0 < summary["stderr"][j] < 0.1
    assert summary["reason"].startswith("converged")
    assert abs(summary["correlation"][0][1]) < 1.0
