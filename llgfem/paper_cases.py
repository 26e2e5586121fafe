"""The exact-solution test cases of paper 002, Table 1 (SPEC §3), as reusable definitions.

1-D, Omega = [0, 2 pi], T = 0.2, 51 time levels, 101 grid points, exchange coefficient 1, f = 0:

====  ===  ===  ======================  =======================  ======================
Test  a1   a2   h                       m exact                  m0
====  ===  ===  ======================  =======================  ======================
1     1    -1   (2/5)(0, 3, 4)          (1/5)(0, 3, 4)           (1/5)(0, 3, 4)
2     2    0    -(cos x, cos x, 0)      (cos x, cos x, e^t)      (cos x, cos x, 1)
3     1    0    0                       (sin x, cos x, e^t)      (sin x, cos x, 1)
====  ===  ===  ======================  =======================  ======================

All three solve the LLG equation exactly with f = 0 (checked symbolically in the tests); Test 3
has the Neumann datum ``g = dm/dn = n_x (cos x, -sin x, 0)``.  ``initial_guess`` is the paper's
perturbed starting m_hat for the all-at-once solver (Table 1), ``paper`` its reported numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import ufl

from llgfem.physics import FieldSpec, LLGParameters

__all__ = ["PAPER_GRID", "PaperCase", "paper_case"]

PAPER_GRID = {"length": 2 * np.pi, "cells": 100, "T": 0.2, "n_t": 51}


@dataclass(frozen=True)
class PaperCase:
    """One row of Table 1: parameters, data and the exact solution (UFL and NumPy)."""

    number: int
    params: LLGParameters
    field: FieldSpec
    exact_ufl: Callable  # (x, t) -> UFL vector
    exact_np: Callable  # (x, t) -> array (3, n)
    g: Callable | None = None  # (x, t, n) -> UFL vector
    initial_guess_np: Callable | None = None  # m_hat(x, t) of Table 1
    paper: dict = field(default_factory=dict)

    def m0_np(self, x):
        return self.exact_np(x, 0.0)


def _ones(x):
    return np.ones_like(x[0])


def _case1() -> PaperCase:
    m = np.array([0.0, 3.0, 4.0]) / 5
    return PaperCase(
        1, LLGParameters(a1=1.0, a2=-1.0),
        FieldSpec(kind="static", amplitude=0.4, direction=(0.0, 3.0, 4.0)),
        exact_ufl=lambda x, t: ufl.as_vector(tuple(m)),
        exact_np=lambda x, t: m[:, None] * _ones(x),
        initial_guess_np=lambda x, t: -5 * t * np.ones((3, x.shape[1])),
        paper={"rel_error": 0.004, "seconds": 289, "iterations": 3050, "step": 150,
               "initial_rel_error": 0.40})


def _case2() -> PaperCase:
    return PaperCase(
        2, LLGParameters(a1=2.0, a2=0.0),
        FieldSpec(kind="expression",
                  expression=lambda x, t: (-ufl.cos(x[0]), -ufl.cos(x[0]), 0.0)),
        exact_ufl=lambda x, t: ufl.as_vector((ufl.cos(x[0]), ufl.cos(x[0]), ufl.exp(t))),
        exact_np=lambda x, t: np.stack([np.cos(x[0]), np.cos(x[0]), np.exp(t) * _ones(x)]),
        initial_guess_np=lambda x, t: -5 * t * np.cos(x[0]) * np.ones((3, 1)),
        paper={"rel_error": 0.002, "seconds": 512, "iterations": 5350, "step": 75,
               "initial_rel_error": 0.11})


def _case3() -> PaperCase:
    return PaperCase(
        3, LLGParameters(a1=1.0, a2=0.0), FieldSpec(kind="zero"),
        exact_ufl=lambda x, t: ufl.as_vector((ufl.sin(x[0]), ufl.cos(x[0]), ufl.exp(t))),
        exact_np=lambda x, t: np.stack([np.sin(x[0]), np.cos(x[0]), np.exp(t) * _ones(x)]),
        g=lambda x, t, n: ufl.as_vector((n[0] * ufl.cos(x[0]), -n[0] * ufl.sin(x[0]), 0.0)),
        initial_guess_np=lambda x, t: -np.sin(30 * t) / 5 * np.ones((3, x.shape[1])),
        paper={"rel_error": 0.011, "seconds": 205, "iterations": 1850, "step": 300,
               "initial_rel_error": 0.22})


def paper_case(number: int) -> PaperCase:
    """Test ``number`` (1, 2 or 3) of Table 1."""
    cases = {1: _case1, 2: _case2, 3: _case3}
    if number not in cases:
        raise ValueError(f"paper test case must be 1, 2 or 3, got {number}")
    return cases[number]()


def relative_error(V, grid, m: np.ndarray, exact: Callable) -> float:
    """``|m - m_exact| / |m_exact|`` in L2(0,T;L2) (trapezoidal in time)."""
    from llgfem.spacetime import l2_errors_levels

    e2 = l2_errors_levels(V, m, exact, grid.times)
    n2 = l2_errors_levels(V, np.zeros_like(m), exact, grid.times)
    return float(np.sqrt(grid.weights @ e2 / (grid.weights @ n2)))


def solve_forward(case: PaperCase, comm, cells: int = 100, n_t: int = 51,
                  T: float = 0.2) -> dict:
    """Solve a Table 1 case with :class:`~llgfem.solvers.llg.LLGSolver`.

    Returns:
        ``V``, ``grid``, ``solver``, trajectory ``m``, ``rel_error`` and ``seconds`` (the time
        loop only; setup/JIT excluded and reported as ``setup_seconds``).
    """
    import time

    import dolfinx.mesh as dm

    from llgfem.solvers.llg import LLGSolver
    from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

    t0 = time.perf_counter()
    V = create_vector_space(dm.create_interval(comm, cells, [0.0, PAPER_GRID["length"]]))
    grid = TimeGrid(T, n_t)
    solver = LLGSolver(V, grid, case.params, case.field, g=case.g)
    m0 = interpolate_levels(V, case.exact_np, [0.0])[0]
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = solver.solve(m0)
    seconds = time.perf_counter() - t0
    return {"V": V, "grid": grid, "solver": solver, "m": m, "seconds": seconds,
            "setup_seconds": setup, "rel_error": relative_error(V, grid, m, case.exact_ufl)}
