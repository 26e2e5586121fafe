"""Checkpoints as a set (issue 12, item 3): manifest, two-phase commit, collective validation.

Every damaged set is refused with the same CheckpointError on every rank; an interrupted commit
leaves the last checkpoint valid; stopping-rule state (an error trace) is restored.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from llgfem.config import ConfigError
from llgfem.regularisation import (
    AdaptiveStep,
    Checkpoint,
    DiscrepancyPrinciple,
    History,
    MaxIterations,
    landweber,
)
from llgfem.regularisation.checkpoint import CheckpointError
from llgfem.regularisation.stopping import StoppingRule


class ErrorTrace(StoppingRule):
    """Records (iteration, |x|) every 2 iterations: stateful, restored by the checkpoint."""

    def __init__(self):
        self.errors: list[tuple[int, float]] = []

    def check(self, info) -> str | None:
        if info.iteration % 2 == 0:
            self.errors.append((info.iteration, float(np.linalg.norm(info.x))))
        return None

    def state_dict(self) -> dict:
        return {"errors": [list(e) for e in self.errors]}

    def load_state_dict(self, state: dict) -> None:
        self.errors = [tuple(e) for e in state["errors"]]


def _run(problem, stop, ckpt, trace=None):
    y_delta, delta = problem.noisy(1e-2)
    rules = DiscrepancyPrinciple(2.0, delta) | stop
    if trace is not None:
        rules = rules | trace
    return landweber(problem.F, y_delta, np.zeros_like(problem.x_true),
                     step=AdaptiveStep(4 * problem.mu, grow=1.5, armijo=0.5), stop=rules,
                     checkpoint=ckpt, callbacks=[History()])


def _ckpt(path, comm, resume=False, problem=None, every=3):
    return Checkpoint(path, every=every, resume=resume, rank=comm.rank, size=comm.size,
                      comm=comm, problem=problem)


def _refused(ill_posed, path, comm, match, **kw):
    """Resuming raises the same CheckpointError on every rank."""
    with pytest.raises(CheckpointError, match=match) as info:
        _run(ill_posed, MaxIterations(100), _ckpt(path, comm, resume=True, **kw))
    messages = comm.allgather(str(info.value))
    assert all(m == messages[0] for m in messages)
    assert isinstance(info.value, ConfigError)  # exit status 2 in the CLI


def test_manifest_names_iteration_ranks_and_problem(ill_posed, mpi_tmp_path, comm):
    path = mpi_tmp_path / "ck"
    _run(ill_posed, MaxIterations(7), _ckpt(path, comm, problem={"case": 1}))
    comm.Barrier()  # every rank has renamed its files
    manifest = json.loads((mpi_tmp_path / "ck.manifest.json").read_text())
    assert manifest["iteration"] == 7
    assert manifest["size"] == comm.size
    assert manifest["driver"] == "landweber"
    assert len(manifest["files"]) == comm.size
    assert manifest["problem"]
    assert not list(mpi_tmp_path.glob("*.next.*"))


def test_torn_set_is_refused_on_every_rank(ill_posed, mpi_tmp_path, comm):
    path = mpi_tmp_path / "ck"
    _run(ill_posed, MaxIterations(3), _ckpt(path, comm))
    last = comm.size - 1
    if comm.rank == last:  # keep the iteration-3 files of the last rank
        for suffix in ("npz", "json"):
            shutil.copy(mpi_tmp_path / f"ck.rank{last}.{suffix}", mpi_tmp_path / f"old.{suffix}")
    comm.Barrier()
    _run(ill_posed, MaxIterations(6), _ckpt(path, comm, resume=True))
    if comm.rank == last:  # the last rank's files go back to iteration 3: a torn set
        for suffix in ("npz", "json"):
            shutil.copy(mpi_tmp_path / f"old.{suffix}", mpi_tmp_path / f"ck.rank{last}.{suffix}")
    comm.Barrier()
    _refused(ill_posed, path, comm, "torn or corrupt")


@pytest.mark.parametrize("damage", ["missing", "truncated_npz", "truncated_json", "manifest"])
def test_damaged_set_is_refused_on_every_rank(ill_posed, mpi_tmp_path, comm, damage):
    path = mpi_tmp_path / "ck"
    _run(ill_posed, MaxIterations(4), _ckpt(path, comm))
    last = comm.size - 1
    if comm.rank == 0:
        npz, js = mpi_tmp_path / f"ck.rank{last}.npz", mpi_tmp_path / f"ck.rank{last}.json"
        if damage == "missing":
            npz.unlink()
            js.unlink()
        elif damage == "truncated_npz":
            npz.write_bytes(npz.read_bytes()[:100])
        elif damage == "truncated_json":
            js.write_text(js.read_text()[:20])
        else:
            (mpi_tmp_path / "ck.manifest.json").write_text("{not json")
    comm.Barrier()
    match = {"missing": "files are missing", "manifest": "corrupt manifest"}.get(
        damage, "torn or corrupt")
    _refused(ill_posed, path, comm, match)


def test_foreign_problem_and_driver_are_refused(ill_posed, mpi_tmp_path, comm):
    path = mpi_tmp_path / "ck"
    _run(ill_posed, MaxIterations(4), _ckpt(path, comm, problem={"delta": 0.01}))
    _refused(ill_posed, path, comm, "another problem", problem={"delta": 0.02})
    _refused(ill_posed, path, comm, "another problem")  # written with a hash, resumed without


def test_rank_files_without_manifest_are_refused(ill_posed, mpi_tmp_path, comm):
    path = mpi_tmp_path / "ck"
    _run(ill_posed, MaxIterations(4), _ckpt(path, comm))
    if comm.rank == 0:
        (mpi_tmp_path / "ck.manifest.json").unlink()
    comm.Barrier()
    _refused(ill_posed, path, comm, "without a manifest")


@pytest.mark.parametrize("phase", ["before_commit", "after_commit"])
def test_interrupted_save_leaves_a_valid_checkpoint(ill_posed, mpi_tmp_path, comm, phase):
    """Killed in phase 1 (``.next`` files, old manifest) or phase 3 (new manifest, files still
    ``.next``): the resumed run equals the straight run bit for bit."""
    straight = _run(ill_posed, MaxIterations(10_000), None)
    path = mpi_tmp_path / "ck"
    _run(ill_posed, MaxIterations(6), _ckpt(path, comm))
    if phase == "before_commit":  # stray next files of a later save that never committed
        for suffix in ("npz", "json"):
            (mpi_tmp_path / f"ck.rank{comm.rank}.next.{suffix}").write_bytes(b"partial")
    else:  # the commit happened, the renames did not
        for suffix in ("npz", "json"):
            src = mpi_tmp_path / f"ck.rank{comm.rank}.{suffix}"
            src.rename(mpi_tmp_path / f"ck.rank{comm.rank}.next.{suffix}")
            src.write_bytes(b"stale")
    comm.Barrier()
    resumed = _run(ill_posed, MaxIterations(10_000), _ckpt(path, comm, resume=True))
    np.testing.assert_array_equal(resumed.x, straight.x)
    assert resumed.iterations == straight.iterations


def test_stopping_rule_state_is_restored(ill_posed, mpi_tmp_path, comm):
    straight_trace = ErrorTrace()
    straight = _run(ill_posed, MaxIterations(30), None, straight_trace)
    path = mpi_tmp_path / "ck"
    _run(ill_posed, MaxIterations(13), _ckpt(path, comm), ErrorTrace())
    trace = ErrorTrace()
    resumed = _run(ill_posed, MaxIterations(30), _ckpt(path, comm, resume=True), trace)
    assert resumed.iterations == straight.iterations
    assert trace.errors == straight_trace.errors


def test_unwritable_checkpoint_is_refused_on_every_rank(ill_posed, mpi_tmp_path, comm):
    blocker = mpi_tmp_path / "file"
    if comm.rank == 0:
        blocker.write_text("x")
    comm.Barrier()
    with pytest.raises(CheckpointError, match="cannot write"):
        _run(ill_posed, MaxIterations(4), _ckpt(blocker / "ck", comm))
