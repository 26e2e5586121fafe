"""Observation operator of eq. (5): exact transpose, transfer functions, data, noise and MPI."""

import dolfinx.fem as fem
import dolfinx.mesh as dm
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from llgfem.config import ConfigError
from llgfem.operators.observation import (
    Coil,
    Concentration,
    Observation,
    Transfer,
    add_noise,
    parse_transfer,
)
from llgfem.physics import MU0
from llgfem.spacetime import (
    TimeGrid,
    array_to_function,
    create_vector_space,
    global_dot,
    interpolate_levels,
)
from llgfem.verification import dot_test

ROUNDOFF = 1e-12
QDEG = 6  # one quadrature degree for the operator and the independent reference forms
GRID = TimeGrid(0.3, 9)  # N = 8 samples


def space(comm=MPI.COMM_WORLD, n=6):
    mesh = dm.create_rectangle(comm, [[0.0, 0.0], [1.0, 2.0]], [n, n])
    return create_vector_space(mesh)


def left_tags(mesh):
    """Cell tags: 2 on x < 1/2 (a union of whole cells), 1 elsewhere."""
    tdim = mesh.topology.dim
    imap = mesh.topology.index_map(tdim)
    cells = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    left = dm.locate_entities(mesh, tdim, lambda x: x[0] <= 0.5 + 1e-12)
    values = np.where(np.isin(cells, left), 2, 1).astype(np.int32)
    return dm.meshtags(mesh, tdim, cells, values)


def kernel(n):
    j = np.arange(n)
    return np.exp(-j / 2.0) * (1.0 + 0.3 * np.cos(j)) + 0.1 * (j == n - 1)  # not symmetric


def two_by_two(V, transfers, mu0=MU0):
    """K = 2 (smooth and tagged) concentrations, L = 2 (constant and smooth) sensitivities."""
    mesh = V.mesh
    concs = [Concentration(lambda x: 1.0 + x[0] * x[1], "smooth"),
             Concentration(("tags", left_tags(mesh), 2), "left")]
    coils = [Coil((1.0, 0.5, -0.2), transfers[0], "fixed"),
             Coil(lambda x: ufl.as_vector((ufl.sin(x[0]), x[1], 1.0)), transfers[1], "curved")]
    return Observation(V, GRID, concs, coils, mu0=mu0, quadrature_degree=QDEG)


def smooth_trajectory(V, grid=GRID):
    return interpolate_levels(V, lambda x, t: np.stack(
        [np.sin(3 * t + x[0]), x[1] * t**2, np.cos(x[0] * x[1] + 5 * t)]), grid.times)


def global_integral(mesh, integrand):
    form = fem.form(integrand * ufl.dx(metadata={"quadrature_degree": QDEG}))
    return mesh.comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM)


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b))


TRANSFERS = {
    "delta": ("delta", "delta"),
    "constant": (("constant", 1.0), ("constant", -2.5)),
    "kernel": (kernel(GRID.n_t - 1), kernel(GRID.n_t - 1)[::-1]),
    "mixed": ("delta", ("kernel", kernel(GRID.n_t - 1))),
}


@pytest.mark.parametrize("kind", list(TRANSFERS))
def test_transpose_passes_dot_test(kind):
    obs = two_by_two(space(), TRANSFERS[kind])
    rng = np.random.default_rng(11 + MPI.COMM_WORLD.rank)
    m = rng.standard_normal((GRID.n_t, obs.n))
    y = np.random.default_rng(5).standard_normal(obs.signals_shape)  # replicated
    res = dot_test(obs.apply, obs.transpose, m, y,
                   lambda a, b: global_dot(obs.comm, a, b), obs.inner_range)
    assert abs(res.lhs) > 0
    assert res.relative_error < ROUNDOFF


def test_constant_kernel_is_the_section_4_3_setting():
    V = space()
    obs = two_by_two(V, (("constant", 1.0), ("constant", 1.0)))
    m = smooth_trajectory(V)
    y = obs.apply(m)
    m0, mT = fem.Function(V), fem.Function(V)
    array_to_function(m[0], m0)
    array_to_function(m[-1], mT)
    x = ufl.SpatialCoordinate(V.mesh)
    c = 1.0 + x[0] * x[1]
    for i, p in enumerate([ufl.as_vector((1.0, 0.5, -0.2)),
                           ufl.as_vector((ufl.sin(x[0]), x[1], 1.0))]):
        expected = -MU0 * global_integral(V.mesh, c * ufl.inner(p, mT - m0))
        assert rel(y[0, i], expected) < ROUNDOFF


def test_fft_convolution_equals_direct_sum():
    V = space()
    a = kernel(GRID.n_t - 1)
    obs = two_by_two(V, (a, a[::-1]))
    m = smooth_trajectory(V)
    s, y = obs.signals(m), obs.apply(m)
    N, dt = GRID.n_t - 1, GRID.dt
    for i, ai in enumerate([a, a[::-1]]):
        direct = np.array([[-MU0 * dt * sum(ai[(n - j) % N] * s[k, i, j] for j in range(N))
                            for n in range(N)] for k in range(2)])
        assert rel(y[:, i], direct) < ROUNDOFF
        z = np.random.default_rng(2).standard_normal(N)
        corr = np.array([dt * sum(ai[(n - j) % N] * z[n] for n in range(N)) for j in range(N)])
        assert rel(Transfer("kernel", kernel=ai).transpose(z, dt), corr) < ROUNDOFF


def test_delta_kernel_reproduces_rate_functional():
    V = space()
    obs = two_by_two(V, ("delta", "delta"))
    m = smooth_trajectory(V)
    y = obs.apply(m)
    x = ufl.SpatialCoordinate(V.mesh)
    p = ufl.as_vector((ufl.sin(x[0]), x[1], 1.0))
    u0, u1 = fem.Function(V), fem.Function(V)
    for n in range(GRID.n_t - 1):
        array_to_function(m[n], u0)
        array_to_function(m[n + 1], u1)
        rate = global_integral(V.mesh, (1.0 + x[0] * x[1]) * ufl.inner(p, (u1 - u0) / GRID.dt))
        assert abs(y[0, 1, n] + MU0 * rate) <= ROUNDOFF * abs(MU0 * rate)


def test_linear_in_time_trajectory_gives_static_signal():
    V = space()
    obs = two_by_two(V, ("delta", "delta"), mu0=1.0)

    def q(x):
        return np.stack([np.cos(x[0]), x[0] * x[1], 1.0 + 0 * x[0]])

    m0 = interpolate_levels(V, lambda x, t: np.stack([x[1], -x[0], 0 * x[0]]), [0.0])[0]
    m = m0 + interpolate_levels(V, lambda x, t: t * q(x), GRID.times)
    qh = fem.Function(V)
    qh.interpolate(q)
    x = ufl.SpatialCoordinate(V.mesh)
    s = obs.signals(m)
    expected = global_integral(V.mesh, (1.0 + x[0] * x[1]) * ufl.inner(
        ufl.as_vector((1.0, 0.5, -0.2)), qh))
    assert rel(s[0, 0], expected) < ROUNDOFF


def test_tagged_concentration_integrates_over_the_subdomain():
    V = space()
    tags = left_tags(V.mesh)
    obs = Observation(V, GRID, Concentration(("tags", tags, [2])),
                      Coil(lambda x: ufl.as_vector((x[0], 1.0, x[1]))), quadrature_degree=QDEG)
    x = ufl.SpatialCoordinate(V.mesh)
    dx2 = ufl.Measure("dx", domain=V.mesh, subdomain_data=tags,
                      metadata={"quadrature_degree": QDEG})
    v = ufl.TestFunction(V)
    from llgfem.solvers.llg import assemble_owned

    ref = assemble_owned(fem.form(ufl.inner(ufl.as_vector((x[0], 1.0, x[1])), v) * dx2(2)))
    diff = obs.functionals[0, 0] - ref
    assert np.sqrt(global_dot(obs.comm, diff, diff)) < ROUNDOFF * np.sqrt(
        global_dot(obs.comm, ref, ref))
    whole = Observation(V, GRID, 1.0, Coil(lambda x: ufl.as_vector((x[0], 1.0, x[1]))),
                        quadrature_degree=QDEG).functionals[0, 0]
    assert global_dot(obs.comm, whole - ref, whole - ref) > 1e-6  # the restriction matters


def test_noise_has_the_requested_level_and_is_replicated():
    V = space()
    obs = two_by_two(V, TRANSFERS["mixed"])
    y = obs.apply(smooth_trajectory(V))
    y_delta, level = obs.add_noise(y, 0.05, seed=3)
    assert abs(obs.norm_range(y_delta - y) - 0.05 * obs.norm_range(y)) < ROUNDOFF * level
    assert abs(level - 0.05 * obs.norm_range(y)) < ROUNDOFF * level
    everyone = MPI.COMM_WORLD.allgather(y_delta)
    assert all(np.array_equal(everyone[0], other) for other in everyone)
    assert not np.array_equal(obs.add_noise(y, 0.05, seed=4)[0], y_delta)
    assert np.array_equal(add_noise(y, 0.0, seed=1)[0], y)


def test_select_agrees_with_the_slice_of_the_full_data():
    V = space()
    obs = two_by_two(V, TRANSFERS["mixed"])
    m = smooth_trajectory(V)
    y = obs.apply(m)
    r = np.random.default_rng(9).standard_normal(obs.signals_shape)
    for k, i in obs.pairs:
        sub = obs.select(k, i)
        assert sub.signals_shape == (1, 1, GRID.n_t - 1)
        assert sub.coil_names == (obs.coil_names[i],)
        assert np.allclose(sub.apply(m), y[k:k + 1, i:i + 1], rtol=1e-14, atol=0)
        padded = np.zeros_like(r)
        padded[k, i] = r[k, i]
        assert np.allclose(sub.transpose(r[k:k + 1, i:i + 1]), obs.transpose(padded),
                           rtol=1e-14, atol=1e-300)
    with pytest.raises(IndexError):
        obs.select(2, 0)


def test_function_valued_concentration_and_sensitivity():
    V = space()
    Q = fem.functionspace(V.mesh, ("Lagrange", 2))
    c = fem.Function(Q)
    c.interpolate(lambda x: 1.0 + x[0] * x[1])
    p = fem.Function(V)
    p.interpolate(lambda x: np.stack([np.ones_like(x[0]), 0.5 + 0 * x[0], -0.2 + 0 * x[0]]))
    a = Observation(V, GRID, c, p, quadrature_degree=QDEG)
    b = two_by_two(V, TRANSFERS["delta"]).select(0, 0)
    m = smooth_trajectory(V)
    assert rel(a.apply(m), b.apply(m)) < ROUNDOFF  # c in P2 and p constant are exact


def test_serial_and_parallel_data_agree():
    data = []
    for comm in (MPI.COMM_SELF, MPI.COMM_WORLD):
        V = space(comm)
        obs = two_by_two(V, TRANSFERS["mixed"])
        data.append(obs.apply(smooth_trajectory(V)))
    assert rel(data[1], data[0]) < ROUNDOFF


def test_invalid_inputs_raise_on_every_rank():
    V = space()
    obs = two_by_two(V, TRANSFERS["delta"])
    m = smooth_trajectory(V)
    if MPI.COMM_WORLD.rank == 0:
        m[2, :1] = np.nan  # only rank 0 holds the bad value: all ranks must raise
    with pytest.raises(ValueError, match="NaN"):
        obs.apply(m)
    with pytest.raises(ValueError, match="shape"):
        obs.apply(m[:-1])
    with pytest.raises(ValueError, match="shape"):
        obs.transpose(np.zeros((2, 2, 3)))
    y = np.zeros(obs.signals_shape)
    y[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        obs.transpose(y)


@pytest.mark.parametrize(("spec", "match"), [
    ("gaussian", "coils\\[1\\].transfer"),
    (("constant", float("nan")), "finite"),
    (("lowpass", 1.0), "unknown transfer kind"),
    (np.ones(3), "shape \\(8,\\)"),
])
def test_bad_transfer_specs_name_the_field(spec, match):
    with pytest.raises(ConfigError, match=match):
        two_by_two(space(n=2), ("delta", spec))


def test_bad_concentrations_and_coils_name_the_field():
    V = space(n=2)
    with pytest.raises(ConfigError, match="coils\\[0\\].sensitivity"):
        Observation(V, GRID, 1.0, Coil((1.0, 2.0)))
    with pytest.raises(ConfigError, match="concentrations\\[0\\].value"):
        Observation(V, GRID, lambda x: ufl.as_vector((x[0], x[1])), (1.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="observation.coils"):
        Observation(V, GRID, 1.0, [])
    assert parse_transfer(Transfer("constant", value=2.0), 8).value == 2.0


def test_bare_specifications_are_single_entries():
    V = space(n=2)
    obs = Observation(V, GRID, ("tags", left_tags(V.mesh), 2), (1.0, 0.0, 0.0))
    assert obs.signals_shape == (1, 1, GRID.n_t - 1)
    assert obs.coil_names == ("coil0",)
    assert obs.concentration_names == ("c0",)
    three = Observation(V, GRID, [1.0, 2.0, 3.0], [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0)])
    assert three.signals_shape == (3, 2, GRID.n_t - 1)
    assert np.allclose(three.times, GRID.midpoints)
