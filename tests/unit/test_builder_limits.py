"""Range checks of the builder tables found by the issue-12 fuzz sweeps (handoff items 8, 11,
12, 13): each bad value is refused up front naming the key, instead of an internal error or a
silent result of pure noise late in the run.  ``load_run_config`` only: no solve, fast."""

from __future__ import annotations

from pathlib import Path

import pytest
from mpi4py import MPI

from llgfem.builders import DataConfig, _check_drive_resolved
from llgfem.cli import load_run_config
from llgfem.config import ConfigError
from llgfem.physics import FieldSpec
from llgfem.spacetime import TimeGrid

CONFIGS = Path(__file__).resolve().parents[2] / "demos" / "configs"


@pytest.mark.parametrize(("config", "sets", "needle"), [
    ("scanner2d", ["observation.delta=1e300"], r"observation.delta: a relative noise level"),
    ("scanner2d", ["observation.delta=nan"], r"observation.delta"),
    ("calibrate_scanner3d", ["concentration.0.value=1e300"],
     r"concentration\[0\].value: must be finite and <= 1e12"),
    ("calibrate_test2", ["calibrate.a0=[-1,-1]"], r"calibrate.a0: a0\[0\] is the damping"),
    ("calibrate_test2", ["calibrate.a0=[1e300,1e300]"], r"calibrate.a0: needs 2 finite"),
])
def test_out_of_range_builder_values_are_refused(config, sets, needle):
    with pytest.raises(ConfigError, match=needle):
        load_run_config(str(CONFIGS / f"{config}.toml"), sets)


def test_valid_builder_values_still_load():
    """The limits do not refuse ordinary values (the checks above can fail)."""
    load_run_config(str(CONFIGS / "scanner2d.toml"), ["observation.delta=0.05"])
    load_run_config(str(CONFIGS / "calibrate_test2.toml"), ["calibrate.a0=[0,-3]"])


def test_an_absurd_drive_frequency_names_the_frequency():
    """1e300 Hz used to be refused under time.n_t with a 300-digit level count."""
    spec = FieldSpec(kind="sinusoidal", amplitude=1.0, frequency=1e300, direction=(1, 0, 0))
    with pytest.raises(ConfigError, match=r"field.frequency: 1e\+300 .* more than 1e\+06"):
        _check_drive_resolved(spec, TimeGrid(1.0, 51))
    _check_drive_resolved(FieldSpec(kind="sinusoidal", amplitude=1.0, frequency=2.0,
                                    direction=(1, 0, 0)), TimeGrid(1.0, 51))


def test_a_physical_table_of_a_non_physical_run_is_refused(tmp_path):
    """``[physical]`` with ``llg.physical = false`` was accepted and silently ignored."""
    from llgfem.builders import build_llg_problem
    from llgfem.mesh import create_domain

    cfg = load_run_config(str(CONFIGS / "default.toml"), ["physical.K_u=-1.0"])
    domain = create_domain(MPI.COMM_WORLD, cfg.domain)
    with pytest.raises(ConfigError, match=r"physical: a \[physical\] table is given"):
        build_llg_problem(cfg, domain.mesh)


def test_a_field_table_with_the_drive_from_the_file_is_refused():
    """``[field]`` with ``data.field = "file"`` was accepted and silently ignored."""
    from llgfem.jobs.calibrate_data import model_config

    cfg = load_run_config(str(CONFIGS / "calibrate_mdf.toml"), ["field.amplitude=0.0"])
    with pytest.raises(ConfigError, match=r"field: a \[field\] table is given"):
        model_config(cfg, cfg.section("data", DataConfig), None)
