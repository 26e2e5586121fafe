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


class _Records:
    """Collect the messages of the ``llgfem`` logger (it does not propagate to the root)."""

    def __init__(self):
        import logging

        self.messages: list[str] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.messages.append(record.getMessage())

    def __enter__(self):
        import logging

        logging.getLogger("llgfem").addHandler(self.handler)
        return self.messages

    def __exit__(self, *exc):
        import logging

        logging.getLogger("llgfem").removeHandler(self.handler)


def test_run_logs_start_stages_and_the_summary_line(mpi_tmp_path):
    """Rank 0: a start line, one line per stage, the common closing line; others: nothing."""
    comm = MPI.COMM_WORLD
    cfg = mpi_tmp_path / "heat.toml"
    write(comm, cfg, HEAT.format(problem="forward"))
    with _Records() as messages:
        assert main(["run", str(cfg), "-o", str(mpi_tmp_path / "out")]) == 0
    if comm.rank:
        assert messages == []
        return
    assert messages[0].startswith("start: heat 't'"), messages
    ranks = f"{comm.size} rank" + ("s" if comm.size > 1 else "")
    assert messages[-1].startswith(f"done: heat 't' on {ranks} in "), messages
    assert "problem=forward" in messages[-1], messages[-1]
    assert "n_t=5" in messages[-1], messages[-1]
    assert len([m for m in messages if m.startswith("heat: ")]) == 3, messages


def test_all_at_once_logs_every_iteration_and_plots_reference_lines(mpi_tmp_path,
                                                                    monkeypatch):
    """One INFO line per iteration; the residual plot has the tau*delta line, the parameter
    plot the true values, every plot axis labels."""
    from pathlib import Path

    import llgfem.jobs.all_at_once as aao

    calls = {}
    monkeypatch.setattr(aao, "plot_series", lambda path, x, series, **kw: calls.update(
        {Path(path).relative_to(out).as_posix(): kw}))
    cfg = Path(__file__).resolve().parents[2] / "demos" / "configs" / "aao_table3.toml"
    out = mpi_tmp_path / "o" / "aao_table3"
    with _Records() as messages:
        assert main(["run", str(cfg), "-o", str(mpi_tmp_path / "o"), "--set", "time.n_t=5",
                     "--set", "aao.max_iter=3", "--set", "aao.error_every=1",
                     "--set", "output.fields=false"]) == 0
    if MPI.COMM_WORLD.rank == 0:
        its = [m for m in messages if m.startswith("it ")]
        assert [int(m.split()[1]) for m in its] == [0, 1, 2, 3], messages
        assert messages[-1].startswith("done: all_at_once 'aao_table3'"), messages
    assert set(calls) == {"plots/residual.png", "plots/step_size.png", "plots/parameters.png",
                          "plots/error.png"}
    summary = json.loads((out / "summary.json").read_text())
    tau_delta = calls["plots/residual.png"]["hlines"]["tau delta"]
    assert tau_delta > 0
    assert summary["delta"] > 0
    assert set(calls["plots/parameters.png"]["hlines"]) == {"a1 true", "a2 true"}
    for kw in calls.values():
        assert kw["xlabel"], kw
        assert kw["ylabel"], kw


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize(("first", "second"), [(1, 2), (2, 1)])
def test_resume_on_another_rank_count_is_refused_on_every_rank(tmp_path, capsys, first, second):
    """A checkpoint set written by ``first`` ranks, resumed on ``second``: exit 2, one line
    naming both counts, no traceback (the set is per rank; it is not re-partitioned)."""
    import subprocess
    import sys
    from pathlib import Path

    cfg = str(Path(__file__).resolve().parents[2] / "demos" / "configs" / "aao_test3.toml")
    sets = ["time.n_t=11", "aao.max_iter=4", "aao.checkpoint_every=2"]
    binary = Path(sys.executable).parent

    def run(n, extra=()):
        args = ["run", cfg, "-o", str(tmp_path)]
        for s in [*sets, *extra]:
            args += ["--set", s]
        if n == 1:
            return main(args), capsys.readouterr().err
        proc = subprocess.run([str(binary / "mpiexec"), "-n", str(n), str(binary / "llgfem"),
                               *args], capture_output=True, text=True, timeout=180)
        return proc.returncode, proc.stderr

    code, err = run(first)
    assert code == 0, err
    assert (tmp_path / "aao_test3" / "checkpoint" / "aao.manifest.json").exists()
    code, err = run(second, ["aao.resume=true", "aao.max_iter=6"])
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert f"written by {first} ranks, resuming with {second}" in lines[0], err


def test_all_at_once_without_error_trace(mpi_tmp_path):
    """aao.error_every = 0 means no error trace (it was a ZeroDivisionError, exit 1)."""
    from pathlib import Path

    cfg = Path(__file__).resolve().parents[2] / "demos" / "configs" / "aao_test3.toml"
    args = ["run", str(cfg), "-o", str(mpi_tmp_path)]
    for s in ("time.n_t=5", "aao.max_iter=2", "aao.error_every=0", "output.fields=false",
              "output.plots=false"):
        args += ["--set", s]
    assert main(args) == 0
    summary = json.loads((mpi_tmp_path / "aao_test3" / "summary.json").read_text())
    assert summary["error_trace"] == []
    assert summary["iterations"] == 2
