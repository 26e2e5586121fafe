"""Strict configs and overrides: unknown tables/keys with the nearest name, array-of-tables
overrides, range checks, unreadable files (issue 12, item 1).  No DOLFINx solve: fast."""

from __future__ import annotations

from pathlib import Path

import pytest
from mpi4py import MPI

from llgfem.cli import _job_tables, _override, load_run_config, main
from llgfem.config import JOB_TABLES, TABLE_CLASSES, ConfigError, parse_config, read_toml

CONFIGS = Path(__file__).resolve().parents[2] / "demos" / "configs"
DEMOS = sorted(CONFIGS.glob("*.toml"))


def test_every_job_kind_declares_its_tables():
    """Each kind lists its tables (module ``TABLES`` or :data:`JOB_TABLES`); every table of
    :data:`JOB_TABLES` besides domain/time has a dataclass in :data:`TABLE_CLASSES`."""
    import importlib

    from llgfem.jobs import JOBS

    for kind, target in JOBS.items():
        module = importlib.import_module(target.split(":")[0])
        assert kind in JOB_TABLES or hasattr(module, "TABLES"), kind
    tables = {t for kind in JOB_TABLES.values() for t in kind} - {"domain", "time"}
    assert tables == set(TABLE_CLASSES)


@pytest.mark.parametrize("path", DEMOS, ids=[p.stem for p in DEMOS])
def test_every_demo_config_loads_and_validates(path):
    """Every demo config passes the strict table/key check and parses its job tables."""
    cfg = load_run_config(str(path))
    assert set(cfg.sections) <= set(_job_tables(read_toml(path)))


@pytest.mark.parametrize(("table", "nearest"), [
    ("feild", "field"), ("tiem", "time"), ("llgx", "llg"), ("calibratex", "calibrate"),
    ("coils", "coil"), ("observaton", "observation")])
def test_misspelt_table_is_refused_with_the_nearest_name(table, nearest):
    data = read_toml(CONFIGS / "default.toml")
    data[table] = {"x": 1}
    with pytest.raises(ConfigError, match=rf"^{table}: unknown table .*did you mean '{nearest}'"):
        parse_config(data)


def test_table_of_another_job_is_refused():
    data = read_toml(CONFIGS / "heat.toml")
    data["aao"] = {}
    with pytest.raises(ConfigError, match="unknown table \\[aao\\] for job kind 'heat'"):
        parse_config(data)


def test_misspelt_key_names_the_nearest_key():
    with pytest.raises(ConfigError, match=r"time.n_tt: unknown key \(did you mean 'n_t'\?\)"):
        load_run_config(str(CONFIGS / "heat.toml"), ["time.n_tt=3"])


def test_unknown_job_kind_names_the_nearest_kind():
    with pytest.raises(ConfigError, match="did you mean 'calibrate'"):
        load_run_config(str(CONFIGS / "default.toml"), ["job.kind='calibrat'"])


@pytest.mark.parametrize(("assignment", "needle"), [
    ("coil.sensitivity=[0,0,1]", "address one entry as coil.0.sensitivity"),
    ("coil.7.sensitivity=[0,0,1]", "index 7 is out of range"),
    ("time.0.T=1", "is not an array of tables"),
    ("time=3", "expected TABLE.KEY=VALUE"),
    ("time.T", "expected TABLE.KEY=VALUE"),
    ("a.b.c.d=1", "expected TABLE.KEY=VALUE"),
    ("time.T=1\nfoo=2", "not a single TOML value"),
])
def test_bad_override_is_a_config_error(assignment, needle):
    data = read_toml(CONFIGS / "default.toml")
    with pytest.raises(ConfigError, match=needle):
        _override(data, assignment)


@pytest.mark.parametrize("assignment", ["coil.1.sensitivity=[0,0,1]",
                                        "coil[1].sensitivity=[0,0,1]"])
def test_array_of_tables_entry_is_addressable(assignment):
    cfg = load_run_config(str(CONFIGS / "default.toml"), [assignment])
    assert cfg.sections["coil"][1]["sensitivity"] == [0, 0, 1]
    assert cfg.sections["coil"][0]["sensitivity"] != [0, 0, 1]


def test_override_appends_one_entry():
    cfg = load_run_config(str(CONFIGS / "default.toml"), ["coil.2.sensitivity=[0,1,0]"])
    assert len(cfg.sections["coil"]) == 3


@pytest.mark.parametrize(("assignment", "needle"), [
    ("observation.seed=-1", "observation.seed: must be >= 0"),
    ("calibrate.seed=-3", "calibrate.seed: must be >= 0"),
    ("llg.a1=nan", "llg.a1: must be finite"),
    ("llg.a2=inf", "llg.a2: must be finite"),
    ("coil.0.sensitivity=[0,0,0]", "coil\\[0\\].sensitivity: must be non-zero"),
    ("time.n_t=1", "time.n_t"),
    ("time.T=0", "time.T"),
    ("observation.mu0=-1", "observation.mu0"),
    ("domain.n=[0,4]", "domain.n"),
])
def test_out_of_range_values_are_refused(assignment, needle):
    with pytest.raises(ConfigError, match=needle):
        load_run_config(str(CONFIGS / "default.toml"), [assignment])


def test_weights_must_be_positive():
    for value in ("0", "-1"):
        with pytest.raises(ConfigError, match="aao.model_weight: must be > 0"):
            load_run_config(str(CONFIGS / "aao_test3.toml"), [f"aao.model_weight={value}"])


def test_non_utf8_config_is_a_clean_error(mpi_tmp_path):
    path = mpi_tmp_path / f"latin1.{MPI.COMM_WORLD.rank}.toml"
    path.write_bytes('[job]\nkind = "heat"\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        read_toml(path)


def test_config_that_is_a_directory_is_a_clean_error(mpi_tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        read_toml(mpi_tmp_path)


def test_cli_override_errors_exit_2_with_one_line(mpi_tmp_path, capsys):
    comm = MPI.COMM_WORLD
    for s in ("feild.amplitude=5", "coil.sensitivity=[0,0,1]", "coil[0].x=1"):
        code = main(["run", str(CONFIGS / "default.toml"), "-o", str(mpi_tmp_path),
                     "--set", s])
        assert comm.allgather(code) == [2] * comm.size
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        if comm.rank == 0:
            assert len(lines) == 1, err
            assert lines[0].startswith("llgfem: error: "), err
            assert "Traceback" not in err
        else:
            assert lines == []


@pytest.mark.parametrize("path", DEMOS, ids=[p.stem for p in DEMOS])
def test_resolved_config_holds_every_table_with_its_defaults(mpi_tmp_path, path):
    """config.resolved.{json,toml} of every demo: the common tables and every table the job
    reads, each with all its keys (defaults filled in); the TOML file reads back."""
    import dataclasses
    import importlib
    import json
    import tomllib

    from llgfem.config import ARRAY_TABLES, write_resolved_config

    cfg = load_run_config(str(path))
    out = mpi_tmp_path / f"r{MPI.COMM_WORLD.rank}"
    write_resolved_config(cfg, out)
    data = json.loads((out / "config.resolved.json").read_text())
    toml = tomllib.loads((out / "config.resolved.toml").read_text())
    for table in ("job", "domain", "time", "output"):
        assert table in data, table
        assert table in toml, table
    for table in _job_tables(read_toml(path)):
        if table in ARRAY_TABLES or table not in TABLE_CLASSES:
            continue
        module, cls = TABLE_CLASSES[table].split(":")
        fields = dataclasses.fields(getattr(importlib.import_module(module), cls))
        required = [f for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        if table not in cfg.sections and required:  # an optional table with required keys
            assert table not in data, table
            continue
        assert set(data[table]) == {f.name for f in fields}, table
        assert table in toml, table


@pytest.mark.parametrize("path", DEMOS, ids=[p.stem for p in DEMOS])
def test_every_demo_drive_is_resolved_in_time(path):
    """The up-front check of ``llgfem run`` (>= 20 steps per drive period) passes for every
    demo with an LLG drive (it runs in the builder, after the table checks: a demo whose
    ``time.n_t`` is too small would be refused by ``llgfem run`` although it validates)."""
    from llgfem.builders import LLGConfig, _check_drive_resolved, section
    from llgfem.physics import FieldSpec
    from llgfem.spacetime import TimeGrid

    cfg = load_run_config(str(path))
    if "field" not in _job_tables(read_toml(path)):
        pytest.skip("no LLG drive")
    if section(cfg, "llg", LLGConfig).initial.startswith("paper"):
        pytest.skip("paper cases bring their own field")
    # T * frequency (the number of periods) is the same in SI and in scaled units
    _check_drive_resolved(section(cfg, "field", FieldSpec), TimeGrid(cfg.time.T, cfg.time.n_t))


def test_resolved_toml_without_tomli_w_reads_back_the_same(mpi_tmp_path, monkeypatch):
    """The built-in TOML writer (installs without the dev extra) writes what tomli-w writes,
    up to formatting: both read back to the same data, for every demo config."""
    import sys
    import tomllib

    from llgfem.config import write_resolved_config

    pytest.importorskip("tomli_w")
    rank = MPI.COMM_WORLD.rank
    for path in DEMOS:
        cfg = load_run_config(str(path))
        write_resolved_config(cfg, mpi_tmp_path / f"a{rank}")
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "tomli_w", None)  # import tomli_w -> ImportError
            with pytest.raises(ImportError):
                import tomli_w  # noqa: F401
            write_resolved_config(cfg, mpi_tmp_path / f"b{rank}")
        a, b = ((mpi_tmp_path / f"{x}{rank}" / "config.resolved.toml").read_text()
                for x in "ab")
        assert tomllib.loads(a) == tomllib.loads(b), path.stem


@pytest.mark.parametrize(("sets", "needle"), [
    (["domain.upper=[1e300, 1e300]"], "domain.upper: coordinates must lie within"),
    (["domain.lower=[-1e13, 0.0]"], "domain.lower: coordinates must lie within"),
    (["domain.lower=[0.0, 0.0]", "domain.upper=[1e-300, 1e-300]"], "domain.n: cells"),
])
def test_absurd_domain_extents_are_refused(sets, needle):
    """Fuzz finding: a 1e300-wide box reached the mesh (NaN Jacobians, an internal error)."""
    with pytest.raises(ConfigError, match=needle):
        load_run_config(str(CONFIGS / "aao_2d.toml"), sets)


@pytest.mark.parametrize(("config", "sets", "needle"), [
    ("aao_test3", ["aaox.mu=1"], "aaox: unknown table .*did you mean 'aao'"),
    ("brown_neel_fom", ["brown_neelx.n_m=4"], "brown_neelx: unknown table .*'brown_neel'"),
    ("surrogate_kernel", ["kernelx.nu=3"], "kernelx: unknown table .*did you mean 'kernel'"),
    ("default", ["coils.0.sensitivity=[0,0,1]"], "coils"),
    ("aao_test3", ["aao.param_weight=-1"], "aao.param_weight: must be > 0"),
    ("aao_test3", ["aao.error_every=-1"], "aao.error_every: must be >= 0"),
    ("default", ["calibrate.checkpoint_every=-1"], "calibrate.checkpoint_every: must be >= 0"),
    ("aao_test3", ["aao.checkpoint_every=-1"], "aao.checkpoint_every: must be >= 0"),
    ("brown_neel_fom", ["brown_neel.d_c_nm=-20"], "brown_neel.d_c_nm"),
    ("brown_neel_fom", ["brown_neel.d_h_nm=-1"], "brown_neel.d_h_nm"),
    ("brown_neel_fom", ["brown_neel.rtol=1e-30"], "brown_neel.rtol"),
    ("default", ["llg.a1=-1"], "llg.a1: must be >= 0"),
    ("physical_static", ["physical.alpha_D=-0.1"], "physical.alpha_D"),
    ("physical_static", ["physical.m_S=-1"], "physical.m_S"),
    ("aao_test3", ["aao.a_init=[1,1]"], "aao.a_init: renamed to aao.a0"),
    ("aao_test3", ["aao.max_iterations=3"], "aao.max_iterations: renamed to aao.max_iter"),
    ("aao_test3", ["aao.m_init='m0'"], "aao.m_init: renamed to aao.state_guess"),
    ("aao_test3", ["aao.paper_noise=true"], "aao.paper_noise: renamed to aao.noise"),
    ("surrogate_generate", ["dataset.initial_direction=[0,0,0]"], "dataset.initial_direction"),
    ("aao_2d", ["time.T=1e300"], "time.T: must lie in"),
    ("physical_sinusoidal", ["field.direction=[0,0,0]"], "field.direction: must be non-zero"),
    ("scanner2d", ["field.direction=[0,0,0]"], "field.direction: must be non-zero"),
    ("brown_neel_pod", ["brown_neel.energy=1.5"], "brown_neel.rank/energy: .*0 <= energy <= 1"),
    ("brown_neel_pod", ["brown_neel.energy=-0.1"], "brown_neel.rank/energy"),
])
def test_issue_12_inputs_are_refused_naming_the_key(config, sets, needle):
    """The bad inputs listed in issue 12 (and found by the sweeps) stay refused up front."""
    with pytest.raises(ConfigError, match=needle):
        load_run_config(str(CONFIGS / f"{config}.toml"), sets)


def test_zero_direction_is_refused_only_where_it_removes_a_drive():
    """Fuzz finding (issue 12, handoff item 19): a zero ``field.direction`` removed the drive of
    a sinusoidal run silently (exit 0).  It is kept where the direction is unused or scaled
    by a zero amplitude."""
    from llgfem.physics import FieldSpec, ParameterError

    for kind in ("static", "sinusoidal", "ffp"):
        with pytest.raises(ParameterError, match="direction: must be non-zero"):
            FieldSpec(kind=kind, amplitude=1.0, direction=(0.0, 0.0, 0.0)).validate()
        FieldSpec(kind=kind, amplitude=0.0, direction=(0.0, 0.0, 0.0)).validate()
    FieldSpec(kind="rotating", amplitude=1.0, direction=(0.0, 0.0, 0.0)).validate()


def test_phantom_outside_the_calibration_grid_is_refused_in_setup():
    """Handoff item 9: a phantom that covers no calibration position was refused only after
    the system matrix had been computed (101 s); ``setup`` now refuses it before any model
    evaluation.  The demo grid itself passes."""
    from llgfem.jobs.system_matrix import setup

    path = str(CONFIGS / "system_matrix_1d.toml")
    assert setup(load_run_config(path)).grid.size[0] == 7
    with pytest.raises(ConfigError, match=r"reconstruction.phantom: 'dots' covers no calibration "
                                          r"position of the grid calibration.size = \[3, 1, 1\]"):
        setup(load_run_config(path, ["calibration.size=[3,1,1]"]))
    cfg = load_run_config(path, ["calibration.size=[3,1,1]", "reconstruction.enabled=false"])
    assert setup(cfg).grid.size[0] == 3


def test_brown_neel_energy_zero_means_off():
    """Handoff item 14 asked for ``0 < energy <= 1``.  ``energy = 0`` is the default and means
    "criterion off" (the rank alone decides), so it stays valid; the sweep's identification
    failure at ``energy = 0`` came from its truncation (8, 6) (item 7), not from the energy."""
    import numpy as np

    from llgfem.brownneel.jobs import BrownNeelConfig
    from llgfem.rom import pod

    bn = load_run_config(str(CONFIGS / "brown_neel_pod.toml"),
                         ["brown_neel.energy=0.0", "brown_neel.rank=3"]).section(
                             "brown_neel", BrownNeelConfig)
    assert (bn.energy, bn.rank) == (0.0, 3)
    y = np.random.default_rng(0).standard_normal((20, 8))
    assert pod(y, rank=bn.rank, energy=bn.energy or None).rank == 3
    assert pod(y, rank=None, energy=bn.energy or None).rank == 8


def test_system_matrix_solver_failure_names_the_model_truncation():
    """Handoff item 7 for the system matrix: a Brown–Néel solver failure below the demos'
    truncation names ``model.n_m``/``model.n_n``; the Langevin model gets no hint."""
    from llgfem.jobs.system_matrix import _truncation_hint, setup
    from llgfem.solvers.linear import SolverError

    bn = setup(load_run_config(str(CONFIGS / "system_matrix_1d.toml"),
                               ["model.n_m=6", "model.n_n=4"]))
    with pytest.raises(SolverError, match=r"\(model.n_m, model.n_n\) = \(6, 4\) is below"):
        with _truncation_hint(bn.model):
            raise SolverError("TS failed")
    langevin = setup(load_run_config(str(CONFIGS / "system_matrix_2d.toml")))
    with pytest.raises(SolverError, match=r"^TS failed$"):
        with _truncation_hint(langevin.model):
            raise SolverError("TS failed")
