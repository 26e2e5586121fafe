"""The ``[dataset]`` coefficients of the FEM surrogate generator (issue 12, handoff item 16).

``dataset.a2 = 0`` with the Landau-Lifshitz form ended in "LLG Newton did not converge at step
0" in the fuzz sweep.  The cause is the sweep's coarse grid (``time.n_t = 11``), not ``a2 = 0``:
the pure damping flow is stiffer and needs more time levels, which the solver's error says.
``a2 = 0`` therefore stays valid; ``a1 = a2 = 0`` and ``a1 < 0`` are refused up front."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from llgfem.cli import load_run_config
from llgfem.config import ConfigError
from llgfem.solvers.linear import SolverError
from llgfem.surrogates.data import FEMDatasetSpec, _serial_solver, field_vector

CONFIG = str(Path(__file__).resolve().parents[3] / "demos" / "configs" / "surrogate_kernel.toml")
TAG = np.array([0.63489336, 194.58993122])  # the sweep's failing field (seed 0, n_fields = 6)


@pytest.mark.parametrize(("sets", "needle"), [
    (["dataset.a1=0.0", "dataset.a2=0.0"], "dataset.a1: a1 and a2 cannot both vanish"),
    (["dataset.a1=-1.0"], "dataset.a1: must be >= 0"),
    (["dataset.a2=1e300"], r"dataset.a2: \|a2\| > "),
])
def test_unsolvable_coefficients_are_refused_naming_the_key(sets, needle):
    with pytest.raises(ConfigError, match=needle):
        load_run_config(CONFIG, sets)


def _solve(spec: FEMDatasetSpec, cfg, n_t: int) -> np.ndarray:
    solver, h, m0 = _serial_solver(spec, cfg.domain, cfg.time.T, n_t)
    h.value[:] = field_vector(TAG)
    return solver.solve(m0)


def test_a2_zero_is_valid_and_a_coarse_grid_fails_with_the_n_t_hint():
    """``a2 = 0`` is accepted and solves on the demo's grid (60 levels) with |m| = 1 kept;
    on the sweep's 11 levels the same field fails as a SolverError pointing at ``n_t``."""
    cfg = load_run_config(CONFIG, ["dataset.a2=0.0"])
    spec = cfg.section("dataset", FEMDatasetSpec)
    assert spec.a2 == 0.0
    m = _solve(spec, cfg, cfg.time.n_t)
    norms = np.linalg.norm(m[-1].reshape(-1, 3), axis=1)
    assert np.all(np.isfinite(m))
    assert np.all(np.abs(norms - norms.mean()) < 1e-8)
    with pytest.raises(SolverError, match=r"try more time levels \(n_t\)"):
        _solve(spec, cfg, 11)
    _solve(replace(spec, a2=1.0), cfg, 11)  # the demo's a2 copes with the coarse grid
