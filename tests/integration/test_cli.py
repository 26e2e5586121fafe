"""The command line: info, run (heat job) and its error paths, serially and on 2 ranks."""

import json

import pytest
from mpi4py import MPI

from llgfem.cli import info, main

HEAT = """
[job]
kind = "heat"
name = "t"
[domain]
kind = "rectangle"
lower = [0.0, 0.0]
upper = [1.0, 1.0]
n = [6, 6]
[time]
T = 0.1
n_t = 5
[heat]
problem = "{problem}"
"""


def write(comm, path, text):
    if comm.rank == 0:
        path.write_text(text)
    comm.Barrier()


def test_info_reports_versions():
    facts = info()
    assert facts["dolfinx"].startswith("0.11")
    assert facts["mpi_size"] == MPI.COMM_WORLD.size
    assert "heat" in facts["jobs"]


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0


@pytest.mark.parametrize("problem", ["forward", "backward", "elliptic"])
def test_run_heat_writes_outputs(mpi_tmp_path, problem):
    comm = MPI.COMM_WORLD
    cfg = mpi_tmp_path / "heat.toml"
    write(comm, cfg, HEAT.format(problem=problem))
    out = mpi_tmp_path / "out"
    assert main(["run", str(cfg), "-o", str(out), "--set", "time.n_t=4"]) == 0
    run_dir = out / "t"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["problem"] == problem
    assert summary["n_t"] == 4
    assert summary["mpi_size"] == comm.size
    assert summary["l2_norm_max"] > 0
    assert (run_dir / "config.resolved.json").exists()
    assert (run_dir / "plots" / "heat_norm.png").exists()


@pytest.mark.parametrize(("text", "sets", "needle"), [
    (HEAT.format(problem="sideways"), [], "heat.problem"),
    (HEAT.format(problem="forward"), ["domain.n=[0, 3]"], "domain.n"),
    (HEAT.format(problem="forward"), ["time.n_t=1"], "time.n_t"),
    (HEAT.format(problem="forward"), ["heat.bogus=1"], "heat.bogus"),
    (HEAT.format(problem="forward").replace('kind = "heat"', 'kind = "nope"'), [], "job.kind"),
    ("[job]\nkind = 'heat'\n[domain]\nkind = 'file'\npath = 'missing.msh'\n", [], "missing.msh"),
    ("this is not toml = = =", [], "invalid TOML"),
])
def test_bad_input_gives_one_clear_error_on_every_rank(mpi_tmp_path, capsys, text, sets, needle):
    comm = MPI.COMM_WORLD
    cfg = mpi_tmp_path / "bad.toml"
    write(comm, cfg, text)
    args = ["run", str(cfg), "-o", str(mpi_tmp_path / "o")]
    for s in sets:
        args += ["--set", s]
    code = main(args)
    codes = comm.allgather(code)
    assert codes == [2] * comm.size
    err = capsys.readouterr().err
    if comm.rank == 0:
        assert needle in err, err
    else:
        assert err == ""


def test_missing_config_file(mpi_tmp_path, capsys):
    assert main(["run", str(mpi_tmp_path / "nope.toml")]) == 2


@pytest.mark.parametrize("name", ["surrogate_kernel.toml"])
def test_registered_jobs_run_from_the_cli(mpi_tmp_path, name):
    """Jobs written by other modules are reachable through `llgfem run` (fast settings)."""
    from pathlib import Path

    cfg = Path(__file__).resolve().parents[2] / "demos" / "configs" / name
    sets = {"surrogate_kernel.toml": ["dataset.n_fields=16", "time.n_t=21"]}[name]
    args = ["run", str(cfg), "-o", str(mpi_tmp_path)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
