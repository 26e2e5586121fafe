"""The physical scaling (:mod:`llgfem.physics`) reproduces standard SI micromagnetics.

Gilbert equation ``m_t = -gamma m x B_eff + alpha m x m_t`` with ``gamma > 0`` (see
``docs/physical_units.md``), solved by :class:`llgfem.solvers.llg.LLGSolver` on the
non-dimensionalised coefficients of :meth:`PhysicalParameters.llg`; inputs (fields in T, times in
s, coordinates in m) go through :class:`Units` and the results are compared with closed forms
written in SI:

1. macrospin (A = 0) in a static field ``B e_z``: ``tan(theta/2) = tan(theta0/2)
   exp(-alpha gamma B t / (1 + alpha^2))``, ``phi = phi0 + gamma B t / (1 + alpha^2)`` (counter-
   clockwise about the field); second order in dt;
2. travelling domain wall (exchange A, uniaxial K_u along e_x, field B e_x, no hard axis):
   ``theta = 2 arctan(exp((x - x0 - v t) / Delta))``, ``Delta = sqrt(A / K_u)``,
   ``v = alpha gamma B Delta / (1 + alpha^2)``, wall plane ``phi = gamma B t / (1 + alpha^2)``
   (``theta`` polar angle from ``e_x``, ``phi`` azimuth in the (e_y, e_z) plane); second order
   under joint h/dt refinement.
"""

from __future__ import annotations

import math
import tomllib

import dolfinx.mesh as dm
import numpy as np
import pytest
from mpi4py import MPI

from llgfem.config import ConfigError, parse_section
from llgfem.physics import (
    MU0,
    FieldSpec,
    LLGParameters,
    ParameterError,
    PhysicalParameters,
    Units,
    applied_field,
    reference_field,
)
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels
from llgfem.verification import convergence_rate

COMM = MPI.COMM_WORLD
MS, A_EX, K_U = 8e5, 1.3e-11, 5e5  # permalloy-like SI constants (A/m, J/m, J/m^3)


def global_max(local: float) -> float:
    return COMM.allreduce(float(local), op=MPI.MAX)


# -- 1. macrospin --------------------------------------------------------------------------------
ALPHA_1, B_1, T_1 = 0.2, 0.05, 2e-9  # damping, field (T), final time (s): ~2.7 periods
THETA0, PHI0 = 1.0, 0.3


def macrospin_exact(t_si: float, gamma: float) -> np.ndarray:
    rate = gamma * B_1 / (1 + ALPHA_1**2)
    theta = 2 * math.atan(math.tan(THETA0 / 2) * math.exp(-ALPHA_1 * rate * t_si))
    phi = PHI0 + rate * t_si
    return np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi),
                     math.cos(theta)])


def solve_macrospin(form: str, n_t: int, units: Units, final_time: float = T_1):
    """A single spin (2-cell mesh, A = 0) from SI inputs; returns (trajectory, SI times)."""
    phys = PhysicalParameters(m_S=MS, alpha_D=ALPHA_1)
    mesh = dm.create_interval(COMM, 2, [0.0, 1.0])
    V = create_vector_space(mesh)
    grid = TimeGrid(units.to_dimensionless_time(final_time), n_t)
    field = units.field_spec(FieldSpec(kind="static", amplitude=B_1, direction=(0.0, 0.0, 1.0)))
    solver = LLGSolver(V, grid, phys.llg(units), field, form=form)
    start = macrospin_exact(0.0, phys.gamma)
    m0 = interpolate_levels(V, lambda x, t: start[:, None] * np.ones_like(x[0]), [0.0])[0]
    return solver.solve(m0), units.to_si_time(grid.times), phys


def macrospin_error(form: str, n_t: int) -> float:
    phys = PhysicalParameters(m_S=MS, alpha_D=ALPHA_1)
    m, times, phys = solve_macrospin(form, n_t, phys.units(B_ref=B_1, L_ref=1e-8))
    exact = np.array([macrospin_exact(t, phys.gamma) for t in times])
    return global_max(np.abs(m.reshape(n_t, -1, 3) - exact[:, None, :]).max(initial=0.0))


@pytest.mark.parametrize("form", ["gilbert", "landau_lifshitz"])
def test_macrospin_precesses_counter_clockwise_and_matches_the_damped_closed_form(form):
    """Max error over all levels falls at rate 2 (implicit midpoint); measured (serial):
    gilbert 7.16e-2, 1.84e-2, 4.65e-3; landau_lifshitz 7.66e-2, 1.96e-2, 4.93e-3."""
    n_ts = (26, 51, 101)
    errors = [macrospin_error(form, n) for n in n_ts]
    rates = convergence_rate([1.0 / (n - 1) for n in n_ts], errors)
    assert errors[-1] < 1e-2, errors
    assert np.all(np.abs(rates - 2.0) < 0.1), (errors, rates)


def test_macrospin_sense_of_the_first_step():
    """For gamma > 0 the azimuth grows: m rotates counter-clockwise about +z seen from +z."""
    units = PhysicalParameters(m_S=MS, alpha_D=ALPHA_1).units(B_ref=B_1, L_ref=1e-8)
    m, _, _ = solve_macrospin("gilbert", 2, units, final_time=T_1 / 200)
    phi = [np.arctan2(level.reshape(-1, 3)[:, 1], level.reshape(-1, 3)[:, 0]) for level in m[:2]]
    if phi[0].size:
        assert np.all(phi[1] - phi[0] > 0)


def test_si_and_dimensionless_units_give_the_same_trajectory():
    """Units.si() (SI-sized coefficients a1 = alpha/gamma ~ 1e-12) and the scaled units solve
    the same discrete equations: the trajectories agree to the Newton tolerance (measured 4e-16)."""
    phys = PhysicalParameters(m_S=MS, alpha_D=ALPHA_1)
    si, _, _ = solve_macrospin("gilbert", 51, Units.si())
    scaled, _, _ = solve_macrospin("gilbert", 51, phys.units(B_ref=B_1, L_ref=1e-8))
    assert global_max(np.abs(si - scaled).max(initial=0.0)) < 1e-8


# -- 2. travelling domain wall -------------------------------------------------------------------
ALPHA_2, B_2 = 0.5, 0.05  # damping, field (T) along the easy axis e_x
HALF_WIDTH, X0, T_2 = 12.0, -1.0, 3.0  # domain [-12, 12] Delta, wall at -Delta, T = 3 t_ref


def wall_physics() -> PhysicalParameters:
    return PhysicalParameters(m_S=MS, alpha_D=ALPHA_2, A=A_EX, K_u=K_U,
                              easy_axis=(1.0, 0.0, 0.0))


def wall_exact(x_si: np.ndarray, t_si: float, gamma: float) -> np.ndarray:
    """The travelling wall in SI, written without the package's scaling."""
    delta = math.sqrt(A_EX / K_U)
    v = ALPHA_2 * gamma * B_2 * delta / (1 + ALPHA_2**2)
    omega = gamma * B_2 / (1 + ALPHA_2**2)
    theta = 2 * np.arctan(np.exp((x_si - X0 * delta - v * t_si) / delta))
    phi = omega * t_si
    return np.stack([np.cos(theta), np.sin(theta) * math.cos(phi), np.sin(theta) * math.sin(phi)])


def wall_error(cells: int, n_t: int) -> float:
    """Max nodal error over all levels of the Landau-Lifshitz form (homogeneous Neumann)."""
    phys = wall_physics()
    delta = math.sqrt(A_EX / K_U)
    units = phys.units(B_ref=B_2, L_ref=delta)
    bounds = [units.to_dimensionless_length(s * HALF_WIDTH * delta) for s in (-1, 1)]
    V = create_vector_space(dm.create_interval(COMM, cells, bounds))
    grid = TimeGrid(T_2, n_t)
    field = units.field_spec(FieldSpec(kind="static", amplitude=B_2, direction=(1.0, 0.0, 0.0)))
    solver = LLGSolver(V, grid, phys.llg(units), field, form="landau_lifshitz")

    def exact(x, tau):
        return wall_exact(units.to_si_length(x[0]), units.to_si_time(tau), phys.gamma)

    m = solver.solve(interpolate_levels(V, exact, [0.0])[0])
    return global_max(np.abs(m - interpolate_levels(V, exact, grid.times)).max(initial=0.0))


def test_travelling_domain_wall_in_si_units_converges_at_rate_2():
    """Joint refinement h = Delta/2, Delta/4, Delta/8 with dt = 0.2, 0.1, 0.05 t_ref (the wall
    moves 1.2 Delta and its plane turns by 2.4 rad). Measured (serial): 6.47e-2, 1.47e-2,
    3.60e-3 (rates 2.14, 2.03)."""
    levels = ((48, 16), (96, 31), (192, 61))
    errors = [wall_error(cells, n_t) for cells, n_t in levels]
    rates = convergence_rate([1.0 / cells for cells, _ in levels], errors)
    assert errors[-1] < 1e-2, errors
    assert np.all(np.abs(rates - 2.0) < 0.25), (errors, rates)


def test_wall_coefficients_balance_exchange_and_anisotropy():
    """With L_ref = Delta = sqrt(A/K_u): c = k = 2 K_u / (M_S B_ref) (the wall's own length)."""
    phys = wall_physics()
    units = phys.units(B_ref=B_2, L_ref=phys.wall_width)
    p = phys.llg(units)
    assert (p.a1, p.a2) == (ALPHA_2, -1.0)
    assert p.exchange == pytest.approx(p.anisotropy, rel=1e-12)
    assert p.anisotropy == pytest.approx(2 * K_U / (MS * B_2), rel=1e-12)
    assert units.time == pytest.approx(1 / (phys.gamma * B_2), rel=1e-12)
    si = phys.llg(Units.si())
    assert si.a2 == pytest.approx(-1 / phys.gamma)
    assert si.exchange == pytest.approx(2 * A_EX / MS)
    assert phys.exchange_length == pytest.approx(math.sqrt(2 * A_EX / (MU0 * MS**2)))


# -- conversions and validation ------------------------------------------------------------------
def test_field_spec_conversion_matches_the_si_field():
    """b(xi, tau) = B(L xi, t_ref tau) / B_ref for every FieldSpec kind, evaluated in UFL."""
    import dolfinx.fem as fem
    import ufl

    units = Units(field=0.02, time=3e-9, length=5e-3)
    mesh = dm.create_rectangle(COMM, [[-1.0, -1.0], [1.0, 1.0]], [3, 3])
    xi, tau = ufl.SpatialCoordinate(mesh), fem.Constant(mesh, 0.7)
    t_si = fem.Constant(mesh, units.to_si_time(0.7))
    specs = [FieldSpec(kind="ffp", amplitude=0.012, gradient=2.0, frequency=25e3, phase=0.2,
                       direction=(1.0, 0.0, 0.0), offset=(0.0, 1e-3, 0.0)),
             FieldSpec(kind="rotating", amplitude=0.01, frequency=5e7),
             FieldSpec(kind="expression", expression=lambda x, t: ufl.as_vector(
                 (x[0] * 3.0, ufl.sin(1e8 * t), 0.0)))]
    for spec in specs:
        b = applied_field(units.field_spec(spec), xi, tau)
        ref = applied_field(spec, units.length * xi, t_si) / units.field
        diff = fem.assemble_scalar(fem.form(ufl.inner(b - ref, b - ref) * ufl.dx))
        size = fem.assemble_scalar(fem.form(ufl.inner(ref, ref) * ufl.dx))
        assert COMM.allreduce(diff) <= 1e-24 * COMM.allreduce(size), spec.kind
        assert COMM.allreduce(size) > 1e-3, spec.kind


def test_physical_table_keeps_the_old_key_names():
    text = 'm_S = 474000.0\ngamma = 1.75e11\nalpha_D = 0.1\nA = 0.0\nK_u = 1e4\n' \
           'easy_axis = [0.0, 0.0, 2.0]\n'
    phys = parse_section(PhysicalParameters, tomllib.loads(text), "physical")
    p = phys.llg(phys.units(B_ref=1e-4))
    assert p.a2 == -1.0
    assert p.a1 == pytest.approx(0.1)
    assert p.easy_axis == (0.0, 0.0, 1.0)
    assert p.anisotropy == pytest.approx(2e4 / (474000.0 * 1e-4))


@pytest.mark.parametrize(("table", "key"), [
    ({"gamma": -1.75e11}, "physical.gamma"), ({"alpha_D": -0.1}, "physical.alpha_D"),
    ({"m_S": 0.0}, "physical.m_S"), ({"A": -1e-11}, "physical.A"),
    ({"easy_axis": [0.0, 0.0, 0.0]}, "physical.easy_axis"), ({"M_S": 8e5}, "physical.M_S"),
    ({"K_u": float("nan")}, "physical.K_u")])
def test_physical_table_errors_name_the_key(table, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_section(PhysicalParameters, table, "physical")


def test_negative_damping_and_bad_units_are_parameter_errors():
    """The physics layer raises ParameterError (a ValueError naming the key); parse_section
    turns it into a ConfigError (test above)."""
    with pytest.raises(ParameterError, match=r"llg\.a1: must be >= 0"):
        LLGParameters(a1=-0.1, a2=-1.0).validate()
    with pytest.raises(ParameterError, match=r"llg\.a1: a1 and a2 cannot both vanish"):
        LLGParameters(a1=0.0, a2=0.0).validate()
    with pytest.raises(ParameterError, match=r"units\.field"):
        PhysicalParameters().units(B_ref=0.0)
    with pytest.raises(ParameterError, match=r"units\.length"):
        PhysicalParameters().units(B_ref=1e-3, L_ref=-1.0)


def test_reference_field_is_the_largest_applied_field():
    ffp = FieldSpec(kind="ffp", amplitude=0.012, gradient=2.0, direction=(1.0, 0.0, 0.0),
                    offset=(0.0, 0.0, 1e-3))
    assert reference_field(ffp, extent=0.01) == pytest.approx(0.012 + 1e-3 + 0.02)
    assert reference_field(FieldSpec(kind="rotating", amplitude=1e-4)) == pytest.approx(1e-4)
    assert reference_field(FieldSpec(kind="zero"), fallback=1.25) == 1.25
    assert reference_field(FieldSpec(kind="static", amplitude=0.0), fallback=0.5) == 0.5


# -- 3. side by side with magnum.np (optional side environment) ----------------------------------
def _magnumnp_python():
    from llgfem.surrogates.sp4 import SideEnvironmentError, find_magnumnp_python

    try:
        return find_magnumnp_python()
    except SideEnvironmentError:
        return None


@pytest.mark.slow
@pytest.mark.skipif(_magnumnp_python() is None,
                    reason="no magnum.np side environment (tools/bootstrap-sp4.sh)")
def test_strip_matches_magnumnp():
    """1-D strip (exchange + K_u + 50 mT at 30 deg, bench/physical_scaling.py) at h = 4, 2 nm:
    <m>(t) agrees with magnum.np, the profile difference falls with h (FD vs P1, both O(h^2)),
    and paper 002's precession sense does not agree."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "physical_scaling.py"
    spec = importlib.util.spec_from_file_location("bench_physical_scaling", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    coarse, fine = (bench.side_by_side(cells, steps_per_sample=10) for cells in (50, 100))
    assert fine["standard"]["max_mean_m_diff"] < 1e-3, fine
    assert fine["standard"]["max_profile_diff"] < coarse["standard"]["max_profile_diff"] / 2.5
    assert fine["paper_sense"]["max_mean_m_diff"] > 0.1, fine


def test_coefficients_of_invalid_parameters_are_refused():
    """Built directly (not from a config), the parameters are validated before scaling."""
    with pytest.raises(ParameterError, match=r"physical\.gamma"):
        PhysicalParameters(gamma=-1.75e11).llg()
    with pytest.raises(ParameterError, match=r"physical\.alpha_D"):
        PhysicalParameters(alpha_D=-0.1).units(B_ref=1e-3)
