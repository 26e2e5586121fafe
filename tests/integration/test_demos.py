"""The tutorial demos run end to end in their fast mode (serially and under MPI)."""

import runpy
from pathlib import Path

import pytest

DEMOS = Path(__file__).resolve().parents[2] / "demos"


@pytest.mark.parametrize("name", ["paper_test3_tutorial.py"])
def test_demo_runs(name, monkeypatch):
    monkeypatch.setenv("LLGFEM_FAST", "1")
    ns = runpy.run_path(str(DEMOS / name), run_name="__main__")
    assert ns["res"].relative_error < 1e-10
    assert ns["e1"] < ns["e0"]


def test_brown_neel_demo_runs(monkeypatch, mpi_tmp_path):
    monkeypatch.setenv("LLGFEM_DEMO_FAST", "1")
    monkeypatch.chdir(mpi_tmp_path)  # the demo writes outputs/ relative to the working dir
    runpy.run_path(str(DEMOS / "brown_neel.py"), run_name="__main__")
