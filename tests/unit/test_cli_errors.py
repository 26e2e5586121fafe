"""Errors end every rank with one line; signals end a run with 130/143 (issue 12, items 2, 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mpi4py import MPI

from llgfem.cli import Interrupted, exit_status, main
from llgfem.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "demos" / "configs"
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(("exc", "code", "start"), [
    (ConfigError("x.y: bad"), 2, "error: x.y: bad"),
    (FileNotFoundError(2, "No such file or directory", "/a/b"), 2, "error: No such file"),
    (PermissionError(13, "Permission denied", "/a"), 2, "error: Permission denied: /a"),
    (Interrupted(signal.SIGINT), 130, "interrupted by SIGINT"),
    (Interrupted(signal.SIGTERM), 143, "interrupted by SIGTERM"),
    (ZeroDivisionError("division by zero"), 1, "internal error"),
])
def test_exit_status(exc, code, start):
    got_code, text = exit_status(exc)
    assert got_code == code
    assert text.startswith(start)
    assert "\n" not in text


def test_diverged_iteration_is_a_solver_failure():
    """A NaN/inf norm in a regularisation driver (e.g. from a non-physical initial guess) ends
    with exit 3 and the driver's message, not as an internal error."""
    from llgfem.regularisation.core import require_finite

    with pytest.raises(RuntimeError) as info:
        require_finite(float("nan"), "residual norm", 4)
    code, text = exit_status(info.value)
    assert code == 3
    assert text.startswith("solver failed: non-finite residual norm (nan) at iteration 4")


def test_solver_error_is_exit_3():
    from llgfem.solvers.linear import SolverError

    assert exit_status(SolverError("KSP diverged"))[0] == 3


def test_unwritable_output_is_refused_before_the_job(mpi_tmp_path, capsys):
    comm = MPI.COMM_WORLD
    blocker = mpi_tmp_path / "a_file"
    if comm.rank == 0:
        blocker.write_text("x")
    comm.Barrier()
    code = main(["run", str(CONFIGS / "heat.toml"), "-o", str(blocker / "sub")])
    assert comm.allgather(code) == [2] * comm.size
    err = capsys.readouterr().err
    if comm.rank == 0:
        assert err.startswith("llgfem: error: output.dir: cannot write"), err
        assert len(err.strip().splitlines()) == 1


def _subprocess(args, timeout=120, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, **kw)


ONE_RANK_FAILS = textwrap.dedent("""
    import sys
    import llgfem.jobs.heat as heat
    from mpi4py import MPI
    from llgfem.config import ConfigError
    from llgfem.cli import main

    def run(cfg):
        if MPI.COMM_WORLD.rank == 1:
            raise ConfigError("data.file: bad on this rank only")
        MPI.COMM_WORLD.Barrier()  # rank 0 would wait here forever

    heat.run = run
    sys.exit(main(["run", sys.argv[1], "-o", sys.argv[2]]))
""")


@pytest.mark.skip_in_parallel
def test_failure_on_one_rank_ends_every_rank(tmp_path):
    script = tmp_path / "one_rank.py"
    script.write_text(ONE_RANK_FAILS)
    t0 = time.monotonic()
    proc = _subprocess([BIN / "mpiexec", "-n", "2", sys.executable, script,
                        CONFIGS / "heat.toml", tmp_path / "out"], timeout=90)
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - t0 < 60
    assert "llgfem: error: data.file: bad on this rank only [rank 1 of 2" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_the_run_with_one_line(tmp_path, sig, code):
    """A long run (the default calibration: gmsh mesh, many iterations) interrupted."""
    out = tmp_path / "out"
    proc = subprocess.Popen([BIN / "llgfem", "run", CONFIGS / "default.toml", "-o", out,
                             "--set", "calibrate.max_iter=100000", "--set", "calibrate.tau=1.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (out / "default").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # inside the job (mesh read by gmsh, solver set up)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not end after the signal")
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [f"llgfem: interrupted by {signal.Signals(sig).name}"]


def test_absurd_coil_sensitivities_are_refused_up_front(mpi_tmp_path, capsys):
    """Absurd coil sensitivities: exit 2 naming the key on every rank before any work (they
    used to overflow the signals: exit 0 with inf in the summary, later exit 3)."""
    comm = MPI.COMM_WORLD
    code = main(["run", str(CONFIGS / "physical_random.toml"), "-o", str(mpi_tmp_path),
                 "--set", "time.n_t=21", "--set", "coil.0.sensitivity=[1e300,1e300,1e300]"])
    assert comm.allgather(code) == [2] * comm.size
    err = capsys.readouterr().err
    if comm.rank == 0:
        assert "coil[0].sensitivity" in err or "coil.0.sensitivity" in err, err


def test_small_brown_neel_truncation_failure_names_the_keys(mpi_tmp_path, capsys):
    """Handoff item 7: the FOM demo at truncation (6, 4) ends in a TS failure (20000 steps).
    It stays exit 3 on every rank, and the line now names ``brown_neel.n_m``/``n_n``.  Small
    truncations are not refused up front: at this setting (4, 2) runs and (6, 4) fails."""
    comm = MPI.COMM_WORLD
    code = main(["run", str(CONFIGS / "brown_neel_fom.toml"), "-o", str(mpi_tmp_path),
                 "--set", "brown_neel.n_m=6", "--set", "brown_neel.n_n=4"])
    assert comm.allgather(code) == [3] * comm.size
    err = capsys.readouterr().err
    if comm.rank == 0:
        assert "Brown–Néel PETSc TS failed" in err, err
        assert "(brown_neel.n_m, brown_neel.n_n) = (6, 4) is below the demos' (10, 8)" in err
        assert len(err.strip().splitlines()) == 1


def test_truncation_hint_only_below_the_demo_truncation():
    from llgfem.brownneel.jobs import truncation_hint
    from llgfem.solvers.linear import SolverError

    with pytest.raises(SolverError, match=r"^TS failed; the truncation \(model.n_m, model.n_n\) "
                                          r"= \(8, 6\)"):
        with truncation_hint(8, 6, "model"):
            raise SolverError("TS failed")
    with pytest.raises(SolverError, match=r"^TS failed$"):
        with truncation_hint(12, 10, "brown_neel"):
            raise SolverError("TS failed")
    with pytest.raises(ValueError, match=r"^other$"):
        with truncation_hint(4, 2, "brown_neel"):
            raise ValueError("other")
