"""Synthetic data go through a file: simulate -> write -> read (``llgfem.calibration.synthetic``).

The ``calibrate`` and ``all_at_once`` jobs read their data back from
``<run_dir>/data/measurement.h5``; ``[synthetic]`` makes the data model finer than the fitting
model.  Serial and on 2 ranks (every quantity compared is replicated).
"""

import logging
import math

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.calibration.synthetic import (
    INVERSE_CRIME_WARNING,
    SyntheticConfig,
    read_synthetic,
    refined_domain,
    sample_at_midpoints,
)
from llgfem.config import ConfigError, parse_config
from llgfem.errors import DataError
from llgfem.io.signals import load_signals
from llgfem.jobs.calibrate import calibrate, setup

COILS = [{"name": "p111", "sensitivity": [1.0, 1.0, 1.0], "transfer": "constant"},
         {"name": "px", "sensitivity": [1.0, -0.5, 0.2]}]
CONCS = [{"name": "one", "value": 1.0}, {"name": "half", "value": 0.5}]


def config(tmp, synthetic=None, **calibrate_keys):
    data = {"job": {"kind": "calibrate", "name": "syn"},
            "domain": {"kind": "interval", "lower": [0.0], "upper": [2 * math.pi], "n": [16]},
            "time": {"T": 0.2, "n_t": 11}, "llg": {"initial": "paper3"},
            "output": {"dir": str(tmp), "fields": False, "plots": False},
            "observation": {"mu0": 1.0}, "coil": COILS, "concentration": CONCS,
            "calibrate": {"method": "landweber", "a0": [1.2, 0.2], "delta": 0.02, "tau": 2.1,
                          "max_iter": 2, "noise": "norm", **calibrate_keys}}
    if synthetic is not None:
        data["synthetic"] = synthetic
    return parse_config(data)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("r", [1, 2, 3, 4, 5])
def test_sample_at_midpoints_exact_for_odd_and_second_order_for_even_refinement(r):
    T, n = 1.0, 10
    f = lambda t: np.sin(3 * t) + t**2  # noqa: E731
    fine = (np.arange(n * r) + 0.5) * T / (n * r)
    coarse = (np.arange(n) + 0.5) * T / n
    got = sample_at_midpoints(np.stack([f(fine), 2 * f(fine)]), r)
    err = np.abs(got[0] - f(coarse)).max()
    if r % 2:
        assert err < 1e-14
    else:
        h = T / (n * r)
        assert 0 < err <= h**2 / 8 * (9 + 2) * 1.0001  # |f''| <= 9 + 2
    assert np.array_equal(got[1], 2 * got[0])


def test_round_trip_noise_free_dataset_and_inverse_crime_flag(mpi_tmp_path):
    handler = _Records()
    logger = logging.getLogger("llgfem")
    logger.addHandler(handler)
    try:
        cal = setup(config(mpi_tmp_path))
    finally:
        logger.removeHandler(handler)
    path = mpi_tmp_path / "syn" / "data" / "measurement.h5"
    assert cal.data_file == path
    sig = load_signals(path)
    assert np.array_equal(sig.data.ravel(), cal.y_delta)  # what setup fits is the file
    assert np.array_equal(sig.noise_free.ravel(), cal.y)
    assert sig.delta == 0.02
    assert sig.seed == 0
    assert sig.attrs["noise"] == "norm"
    # the noise of the "norm" model on the fitting grid: ||y_delta - y|| = delta ||y||
    assert math.isclose(cal.noise, 0.02 * math.sqrt(cal.op.inner_range(cal.y, cal.y)),
                        rel_tol=1e-12)
    assert cal.data_model == {"cells": 16, "n_t": 11, "scheme": "midpoint", "refine": 1,
                              "time_refine": 1, "inverse_crime": True}
    # inverse crime: the file holds the fitting model's own F(a_true)
    assert _relative(cal.op(cal.a_true), cal.y) < 1e-10
    expected = 1 if MPI.COMM_WORLD.rank == 0 else 0
    assert handler.messages.count(INVERSE_CRIME_WARNING) == expected
    times = cal.op.observation.times
    with pytest.raises(DataError, match="acquisition/time"):  # another n_t or T
        read_synthetic(path, MPI.COMM_WORLD, 1.01 * times, cal.op.data_shape)
    with pytest.raises(DataError, match="shape"):
        read_synthetic(path, MPI.COMM_WORLD, times, (1, 2, 10))
    summary, _ = calibrate(cal)
    assert summary["data_file"] == str(path)
    assert summary["data_model"]["inverse_crime"] is True
    cal.op.cache.destroy()


@pytest.mark.parametrize(("synthetic", "cells", "n_t"), [
    ({"refine": 2, "time_refine": 3}, 32, 31),
    ({"time_refine": 2}, 16, 21),
])
def test_finer_data_model_has_a_small_model_error(mpi_tmp_path, synthetic, cells, n_t):
    handler = _Records()
    logger = logging.getLogger("llgfem")
    logger.addHandler(handler)
    try:
        cal = setup(config(mpi_tmp_path, synthetic))
    finally:
        logger.removeHandler(handler)
    assert cal.data_model["cells"] == cells
    assert cal.data_model["n_t"] == n_t
    assert cal.data_model["inverse_crime"] is False
    assert INVERSE_CRIME_WARNING not in handler.messages
    model_error = _relative(cal.op(cal.a_true), cal.y)
    assert 1e-6 < model_error < 0.1, model_error  # another model, close to the fitting one
    cal.op.cache.destroy()


def test_other_scheme_is_another_data_model(mpi_tmp_path):
    cfg = parse_config({
        "job": {"kind": "calibrate", "name": "syn"},
        "domain": {"kind": "interval", "lower": [-2.0], "upper": [2.0], "n": [16]},
        "time": {"T": 1.0, "n_t": 51},
        "llg": {"initial": "field", "scheme": "midpoint", "a1": 1.0, "a2": 0.5,
                "exchange": 0.05},
        "field": {"kind": "ffp", "gradient": 1.0, "amplitude": 2.0, "frequency": 2.5,
                  "direction": [1.0, 0.5, 0.0], "offset": [0.0, 0.0, 0.5]},
        "observation": {"mu0": 1.0}, "coil": COILS, "concentration": CONCS,
        "calibrate": {"a0": [1.3, 0.3], "delta": 0.02, "state_guess": "m0"},
        "synthetic": {"scheme": "bartels_prohl"},
        "output": {"dir": str(mpi_tmp_path), "plots": False}})
    cal = setup(cfg)
    assert cal.data_model["scheme"] == "bartels_prohl"
    assert cal.data_model["inverse_crime"] is False
    model_error = _relative(cal.op(cal.a_true), cal.y)
    assert 1e-6 < model_error < 0.1, model_error
    cal.op.cache.destroy()


def test_data_file_is_rewritten_identically(mpi_tmp_path):
    """A resumed run re-simulates its data: the file is bit-identical."""
    cfg = config(mpi_tmp_path, {"time_refine": 3})
    first = setup(cfg)
    first.op.cache.destroy()
    again = setup(cfg)
    again.op.cache.destroy()
    assert np.array_equal(first.y_delta, again.y_delta)
    assert np.array_equal(first.y, again.y)


@pytest.mark.parametrize(("table", "key"), [
    ({"refine": 0}, "synthetic.refine"), ({"time_refine": -1}, "synthetic.time_refine"),
    ({"refine": 1.5}, "synthetic.refine"), ({"scheme": "euler"}, "synthetic.scheme"),
    ({"format": "mdf"}, "synthetic.format"), ({"refines": 2}, "synthetic.refines"),
])
def test_bad_synthetic_values_are_config_errors(mpi_tmp_path, table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config(mpi_tmp_path, table).section("synthetic", SyntheticConfig)


def test_synthetic_refusals_before_any_work(mpi_tmp_path):
    with pytest.raises(ConfigError, match=r"synthetic\.scheme: 'paper3'"):
        setup(config(mpi_tmp_path, {"scheme": "bartels_prohl"}))
    with pytest.raises(ConfigError, match=r"synthetic\.time_refine: 60 x"):
        setup(parse_config({**config(mpi_tmp_path).sections, "job": {"kind": "calibrate"},
                            "time": {"T": 0.2, "n_t": 50_001},
                            "synthetic": {"time_refine": 60}}))
    from llgfem.jobs.calibrate import run

    with pytest.raises(ConfigError, match=r"synthetic: .*\[data\]"):
        run(parse_config({**config(mpi_tmp_path, {}).sections, "job": {"kind": "calibrate"},
                          "data": {"path": "measured.h5"}}))
    cfg = config(mpi_tmp_path, {"refine": 3})
    cfg.sections.pop("coil"), cfg.sections.pop("concentration"), cfg.sections.pop("observation")
    file_cfg = parse_config({**cfg.sections, "job": {"kind": "calibrate"},
                             "domain": {"kind": "file", "path": "phantom2d.msh"}})
    with pytest.raises(ConfigError, match=r"synthetic\.refine: .* power of 2"):
        setup(file_cfg)


def test_cli_refuses_bad_synthetic_with_exit_2(mpi_tmp_path, capsys):
    from llgfem.cli import main

    path = mpi_tmp_path / "bad.toml"
    if MPI.COMM_WORLD.rank == 0:
        path.write_text('[job]\nkind = "calibrate"\n[llg]\ninitial = "paper3"\n'
                        '[synthetic]\ntime_refine = 0\n')
    MPI.COMM_WORLD.Barrier()
    assert main(["run", str(path), "-o", str(mpi_tmp_path)]) == 2
    err = capsys.readouterr().err
    if MPI.COMM_WORLD.rank == 0:  # the CLI prints the one line on rank 0
        assert "synthetic.time_refine" in err


def test_refined_mesh_file_keeps_its_tagged_volumes(comm):
    from pathlib import Path

    mesh = Path(__file__).resolve().parents[2] / "meshes" / "phantom2d.msh"
    cfg = parse_config({"job": {"kind": "calibrate"},
                        "domain": {"kind": "file", "path": str(mesh)}})
    coarse, fine = refined_domain(comm, cfg, 1), refined_domain(comm, cfg, 2)
    assert fine.num_cells_global() == 4 * coarse.num_cells_global()
    for tag in (2, 3):
        assert math.isclose(fine.volume(tag), coarse.volume(tag), rel_tol=1e-12)


def test_all_at_once_data_through_a_finer_file(mpi_tmp_path):
    from llgfem.jobs.all_at_once import run

    data = {"job": {"kind": "all_at_once", "name": "aao_syn"},
            "domain": {"kind": "interval", "lower": [0.0], "upper": [2 * math.pi], "n": [20]},
            "time": {"T": 0.2, "n_t": 11},
            "output": {"dir": str(mpi_tmp_path), "fields": False, "plots": False,
                       "progress": False},
            "aao": {"case": "paper3", "observe": True, "estimate_parameters": True,
                    "a0": [1.5, 0.5], "delta": 0.05, "max_iter": 3, "mu": 0.3,
                    "state_guess": "perturbed", "error_every": 0},
            "synthetic": {"refine": 2, "time_refine": 3}}
    summary = run(parse_config(data))
    path = mpi_tmp_path / "aao_syn" / "data" / "measurement.h5"
    assert summary["data_file"] == str(path)
    assert summary["data_model"] == {"cells": 40, "n_t": 31, "scheme": "exact solution",
                                     "refine": 2, "time_refine": 3, "inverse_crime": False}
    sig = load_signals(path)
    assert sig.noise_free is not None
    assert sig.shape == (1, 1, 10)
    # Test 3's §4.3 data do not depend on the data mesh and grid (to round-off)
    from llgfem.jobs.all_at_once import AAOConfig, build_problem
    from llgfem.mesh import create_domain

    cfg = parse_config(data)
    same = build_problem(cfg.section("aao", AAOConfig),
                         create_domain(MPI.COMM_WORLD, cfg.domain).mesh, 0.2, 11)
    assert same["data_model"]["cells"] == 20
    assert _relative(same["y_obs"], sig.noise_free) < 1e-12
    with pytest.raises(ConfigError, match=r"synthetic\.scheme"):
        run(parse_config({**data, "synthetic": {"scheme": "midpoint"}}))


def test_model_bias_predicts_the_shift_of_the_least_squares_point(mpi_tmp_path):
    """``model_bias``: b = -J^+ (F(a_true) - y) is the first-order shift of the least-squares
    point of the noise-free data of a finer data model (checked by Gauss-Newton on them).  A
    small model error (3x finer time grid, 3e-5 of the signal) keeps it in the linear regime;
    with refine = 2 (1.6 %) the first order is only an order of magnitude (a2 off by 3x)."""
    from llgfem.jobs.calibrate import model_bias, uncertainty

    cal = setup(config(mpi_tmp_path, {"time_refine": 3}))
    op, a_true = cal.op, cal.a_true
    J = op.derivative(a_true).sensitivities()
    bias = model_bias(cal, J, uncertainty(cal, a_true, J))
    a = a_true.copy()
    for _ in range(6):  # Gauss-Newton to the least-squares point of the noise-free data y
        a = a - np.linalg.lstsq(op.derivative(a).sensitivities(), op(a) - cal.y, rcond=None)[0]
    shift = a - a_true
    assert np.linalg.norm(shift) > 0
    assert np.allclose(bias["bias"], shift, rtol=0.1, atol=1e-3 * np.abs(shift).max())
    assert 0 < bias["relative"] < 1e-3
    cal.op.cache.destroy()
    same = setup(config(mpi_tmp_path))  # same-model data: no model error to report
    assert model_bias(same, J, uncertainty(same, a_true, J)) is None
    same.op.cache.destroy()
