"""The anisotropy coefficient ``k`` as a third identifiable parameter (issue 14, item 2).

With ``parameters=("a1", "a2", "k")`` the step residual's ``k (m . e) e`` term carries ``k`` as a
``ufl.variable``; the linearised and adjoint sweeps get ``dR_n/dk`` by ``ufl.diff``.  For both
fixed-step schemes (implicit midpoint on (6), Bartels-Prohl on (2)):

* dot test ``<F'(a) b, r>_Y = (b, F'(a)* r)_X`` in ``R^3`` to <= 1e-10 relative;
* Taylor test with a direction that moves ``k`` alone and one that moves all three: slope 2;
* the default (two parameters) is unchanged: the same signals and the same first two gradient
  entries as the three-parameter problem at the same point;
* a wrong-length parameter vector is refused.
"""

import dolfinx.mesh as dm
import numpy as np
import pytest
from _small_llg import small_reduced  # tests/verification (on sys.path)
from mpi4py import MPI

from llgfem.physics import LLGParameters
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space
from llgfem.verification import dot_test, taylor_test

A3 = np.array([1.0, 0.5, 0.8])
NAMES = ("a1", "a2", "k")


def reduced(form: str, parameters=NAMES):
    return small_reduced(form, *A3, cells=5, n_t=6, parameters=parameters)


@pytest.mark.parametrize("form", ["gilbert", "landau_lifshitz"])
def test_dot_and_taylor_three_parameters(form):
    F = reduced(form)
    assert F.problem.parameter_names == NAMES
    np.testing.assert_array_equal(F.problem.a, A3)
    L = F.derivative(A3)
    assert L.sensitivities().shape == (int(np.prod(F.data_shape)), 3)
    rng = np.random.default_rng(11)
    n = int(np.prod(F.data_shape))
    for _ in range(2):
        res = dot_test(L.apply, L.adjoint, rng.standard_normal(3), rng.standard_normal(n),
                       F.inner_domain, F.inner_range)
        assert res.relative_error < 1e-10, res.relative_error
    norm = lambda y: np.sqrt(F.inner_range(y, y))  # noqa: E731
    for direction in (np.array([0.0, 0.0, 1.0]), np.array([0.3, -0.2, 0.5])):
        t = taylor_test(F, L.apply, A3, direction, norm, eps=(2e-2, 1e-2, 5e-3, 2.5e-3))
        assert np.all(np.abs(t.slopes1 - 2.0) < 0.05), (direction, t.slopes1)
    F.cache.destroy()


@pytest.mark.parametrize("form", ["gilbert", "landau_lifshitz"])
def test_two_parameter_default_agrees(form):
    """The k column is an extension: signals and (a1, a2) gradient entries are those of the
    default problem at the same anisotropy."""
    F2, F3 = reduced(form, ("a1", "a2")), reduced(form)
    assert F2.problem.parameter_names == ("a1", "a2")
    assert F2.problem.a.shape == (2,)
    y2, y3 = F2(A3[:2]), F3(A3)
    assert np.allclose(y2, y3, rtol=0, atol=1e-10 * np.abs(y2).max())
    r = np.random.default_rng(5).standard_normal(y2.size)
    g2, g3 = F2.derivative(A3[:2]).adjoint(r), F3.derivative(A3).adjoint(r)
    assert g3.shape == (3,)
    assert abs(g3[2]) > 0
    assert np.allclose(g2, g3[:2], rtol=1e-9, atol=0)
    with pytest.raises(ValueError, match=r"\(a1, a2, k\)"):
        F3(A3[:2])
    with pytest.raises(ValueError, match=r"\(a1, a2\)"):
        F2(A3)
    F2.cache.destroy()
    F3.cache.destroy()


def test_unknown_parameter_names_refused():
    mesh = dm.create_unit_interval(MPI.COMM_WORLD, 2)
    with pytest.raises(ValueError, match="parameters must be one of"):
        LLGSolver(create_vector_space(mesh), TimeGrid(0.1, 2), LLGParameters(a1=1.0, a2=0.5),
                  parameters=("a1", "k"))


# -- calibrate: parameters = ["a1", "a2", "k"] ----------------------------------------------------
def calibrate_config(tmp, llg: dict, field: dict, a0, **calibrate):
    """A 1-D calibrate config: FFP drive, three orthogonal coils, two Gaussian samples."""
    from llgfem.config import parse_config

    coils = [{"name": n, "sensitivity": s} for n, s in
             (("x", [1.0, 0.0, 0.0]), ("y", [0.0, 1.0, 0.0]), ("z", [0.0, 0.0, 1.0]))]
    concs = [{"name": "left", "center": [-1.0], "width": 1.0},
             {"name": "right", "center": [1.0], "width": 1.0}]
    return parse_config({
        "job": {"kind": "calibrate", "name": "cal_k"},
        "domain": {"kind": "interval", "lower": [-2.0], "upper": [2.0], "n": [12]},
        "time": {"T": 0.4, "n_t": 21}, "llg": {"initial": "field", "exchange": 0.05, **llg},
        "field": {"kind": "ffp", "gradient": 1.0, "amplitude": 2.0, "frequency": 2.5, **field},
        "output": {"dir": str(tmp), "fields": False, "plots": False},
        "observation": {"mu0": 1.0}, "coil": coils, "concentration": concs,
        "calibrate": {"method": "gauss_newton", "parameters": ["a1", "a2", "k"],
                      "a0": list(a0), "delta": 0.02, "max_iter": 20, **calibrate},
    })


def test_calibrate_recovers_the_anisotropy_coefficient(mpi_tmp_path):
    """Noisy data of a problem with k = 0.8 (easy axis oblique to the drive): Gauss-Newton from
    (1.3, 0.3, 0.4) recovers k inside its 95 % interval, (a1, a2, k) all identified."""
    from llgfem.jobs.calibrate import run

    cfg = calibrate_config(mpi_tmp_path, {"a1": 1.0, "a2": 0.5, "anisotropy": 0.8,
                                          "easy_axis": [0.0, 0.6, 0.8]},
                           {"direction": [1.0, 0.5, 0.0]}, (1.3, 0.3, 0.4))
    summary = run(cfg)
    assert summary["uncertainty"]["parameters"][2]["name"] == "k"
    assert summary["identified"] == [True, True, True]
    assert summary["reason"].startswith("converged")
    assert summary["ci95_low"][2] < 0.8 < summary["ci95_high"][2], summary["k"]
    assert summary["e_k"] < 0.1
    for j, (key, true) in enumerate((("a1", 1.0), ("a2", 0.5), ("k", 0.8))):
        # 95 % intervals miss one time in 20: the seeded draw is held to 4 standard errors
        assert abs(summary[key] - true) < 4 * summary["stderr"][j], (key, summary[key])


def test_calibrate_parameters_key_is_validated(mpi_tmp_path):
    from llgfem.config import ConfigError
    from llgfem.jobs.calibrate import setup

    llg = {"a1": 1.0, "a2": 0.5, "anisotropy": 0.8}
    with pytest.raises(ConfigError, match=r"calibrate\.a0: needs 3 finite"):
        setup(calibrate_config(mpi_tmp_path, llg, {}, (1.3, 0.3)))
    with pytest.raises(ConfigError, match=r"calibrate\.parameters"):
        setup(calibrate_config(mpi_tmp_path, llg, {}, (1.3, 0.3), parameters=["a1", "k"]))


def test_calibrate_reports_k_not_identified_when_m_stays_off_the_easy_axis(mpi_tmp_path):
    """a2 = 0 and a drive in the x-y plane keep m in that plane; with the easy axis e_z the
    anisotropy field k (m . e) e vanishes on the data's trajectory, so k is not identified
    (warning, ``identified[2] = False``) while a1 is."""
    from llgfem.calibration import NotIdentifiedWarning
    from llgfem.jobs.calibrate import run

    cfg = calibrate_config(mpi_tmp_path, {"a1": 1.0, "a2": 0.0, "anisotropy": 0.8,
                                          "easy_axis": [0.0, 0.0, 1.0]},
                           {"direction": [1.0, 0.5, 0.0]}, (1.3, 0.1, 0.4))
    with pytest.warns(NotIdentifiedWarning, match="k = "):
        summary = run(cfg)
    assert summary["identified"][0] is True
    assert summary["identified"][2] is False


def test_physical_calibration_reports_the_anisotropy_constant(mpi_tmp_path):
    """A physical FFP scan (SI units, Bartels-Prohl) with K_u = 4 J/m^3: the fitted k gives
    ``K_u = k M_S B_ref / 2`` beside alpha_D and gamma, its 95 % interval around the truth."""
    from llgfem.config import parse_config
    from llgfem.jobs.calibrate import run

    coils = [{"name": n, "sensitivity": s} for n, s in
             (("x", [1.0, 0.0, 0.0]), ("y", [0.0, 1.0, 0.0]), ("z", [0.0, 0.0, 1.0]))]
    cfg = parse_config({
        "job": {"kind": "calibrate", "name": "cal_ku"},
        "domain": {"kind": "interval", "lower": [-0.01], "upper": [0.01], "n": [8]},
        "time": {"T": 1e-5, "n_t": 41},
        "llg": {"physical": True, "scheme": "bartels_prohl", "initial": "field",
                "initial_direction": [0.0, 1.0, 0.0]},
        "physical": {"alpha_D": 0.1, "K_u": 4.0, "easy_axis": [0.0, 0.6, 0.8]},
        "field": {"kind": "ffp", "gradient": 4e-3, "amplitude": 2e-5, "frequency": 1e5,
                  "direction": [1.0, 0.0, 0.0], "offset": [0.0, 2e-6, 0.0]},
        "observation": {"mu0": 1.0}, "coil": coils,
        "concentration": [{"name": "s", "center": [0.002], "width": 0.004}],
        "output": {"dir": str(mpi_tmp_path), "fields": False, "plots": False},
        "calibrate": {"method": "gauss_newton", "parameters": ["a1", "a2", "k"],
                      "a0": [1.0, 1.0, 1.0], "delta": 0.01, "max_iter": 20},
    })
    from llgfem.jobs.calibrate import setup

    cal = setup(cfg)  # the scaled true (a1, a2, k) of this config, for the start a0
    a_true, k_true = cal.a_true.copy(), float(cal.a_true[2])
    cal.op.cache.destroy()
    cfg.sections["calibrate"]["a0"] = [float(v) for v in a_true * (1.02, 0.98, 0.8)]
    summary = run(cfg)
    phys = {p["name"]: p for p in summary["physical"]["parameters"]}
    assert list(phys) == ["alpha_D", "gamma", "K_u"]
    ku = phys["K_u"]
    assert ku["identified"] is True
    assert ku["ci95_low"] < 4.0 < ku["ci95_high"], ku
    # K_u is k M_S B_ref / 2: the same relative interval as k
    assert ku["estimate"] / 4.0 == pytest.approx(summary["k"] / k_true, rel=1e-9)


def test_data_file_calibration_recovers_k(mpi_tmp_path):
    """simulate -> MDF -> calibrate [data] with parameters [a1, a2, k]: exact data of the same
    model (pipeline check) give back K_u = 4 J/m^3 and (a1, a2) to 1e-4."""
    from llgfem.calibration.simulate import clean_samples, write_measurement
    from llgfem.config import parse_config
    from llgfem.jobs.calibrate import run

    coils = [{"name": n, "sensitivity": s} for n, s in
             (("x", [1.0, 0.0, 0.0]), ("y", [0.0, 1.0, 0.0]), ("z", [0.0, 0.0, 1.0]))]
    field = {"kind": "ffp", "gradient": 4e-3, "amplitude": 2e-5, "frequency": 1e5,
             "direction": [1.0, 0.0, 0.0], "offset": [0.0, 2e-6, 0.0]}

    def data(**extra):
        return {"job": {"kind": "calibrate", "name": "cal_data_k"},
                "domain": {"kind": "interval", "lower": [-0.01], "upper": [0.01], "n": [8]},
                "time": {"T": 1e-5, "n_t": 41},
                "llg": {"physical": True, "scheme": "bartels_prohl", "initial": "field",
                        "initial_direction": [0.0, 1.0, 0.0]},
                "physical": {"alpha_D": 0.1, "K_u": 4.0, "easy_axis": [0.0, 0.6, 0.8]},
                "observation": {"mu0": 1.0}, "coil": coils,
                "concentration": [{"name": "s", "center": [0.002], "width": 0.004}],
                "output": {"dir": str(mpi_tmp_path), "fields": False, "plots": False},
                **extra}

    comm = MPI.COMM_WORLD
    u, table, truth = clean_samples(parse_config(data(field=field)), 24, comm)
    path = write_measurement(mpi_tmp_path / "k.mdf", u, table, truth, comm=comm, noise=0.0,
                             frames=2, background_frames=1)
    summary = run(parse_config(data(data={"path": str(path)}, calibrate={
        "method": "gauss_newton", "parameters": ["a1", "a2", "k"],
        "a0": [0.102, -0.99, 0.25], "max_iter": 20})))
    assert summary["parameter_names"][:3] == ["a1", "a2", "k"]
    assert summary["a1"] == pytest.approx(truth["a1"], rel=1e-4)
    assert summary["a2"] == pytest.approx(truth["a2"], rel=1e-4)
    phys = {p["name"]: p for p in summary["physical"]["parameters"]}
    assert phys["K_u"]["estimate"] == pytest.approx(4.0, rel=1e-4)
