"""Tests of llgfem.mesh: built-in domains, sample meshes, meshio files and error paths.

Runs serially and under ``mpiexec -n 2``; every check compares global (allreduced) quantities.
"""

from __future__ import annotations

import math
from pathlib import Path

import dolfinx.fem
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from llgfem.config import DomainConfig
from llgfem.mesh import (
    BUILTIN_FACET_TAGS,
    Domain,
    MeshError,
    create_domain,
    create_domain_from_gmsh_model,
    read_domain,
)

MESHES = Path(__file__).resolve().parents[2] / "meshes"


def global_measure(domain: Domain, measure) -> float:
    """Integral of 1 over ``measure``, summed over ranks."""
    one = dolfinx.fem.Constant(domain.mesh, 1.0)
    local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(one * measure))
    return domain.comm.allreduce(local, op=MPI.SUM)


def global_tag_values(tags) -> set[int]:
    """Union over ranks of the values in a MeshTags object."""
    return set().union(*tags.topology.comm.allgather(set(np.unique(tags.values).tolist())))


def owned_cells_tagged(domain: Domain, value: int) -> int:
    """Number of owned cells carrying ``value``, summed over ranks."""
    size_local = domain.mesh.topology.index_map(domain.dim).size_local
    tags = domain.cell_tags
    local = np.count_nonzero(tags.values[tags.indices < size_local] == value)
    return domain.comm.allreduce(int(local), op=MPI.SUM)


def assert_same_error_on_all_ranks(comm, call, match: str) -> str:
    """``call()`` raises MeshError with one message on every rank, containing ``match``."""
    with pytest.raises(MeshError, match=match) as info:
        call()
    messages = comm.allgather(str(info.value))
    assert len(set(messages)) == 1, messages
    return messages[0]


# -- built-in domains ---------------------------------------------------------------------------

BUILTINS = [
    # kind, lower, upper, n, cell_type, global cells
    ("interval", (0.0,), (2.0,), (8,), "auto", 8),
    ("rectangle", (0.0, -1.0), (2.0, 2.0), (4, 5), "auto", 2 * 4 * 5),
    ("rectangle", (0.0, -1.0), (2.0, 2.0), (4, 5), "quadrilateral", 4 * 5),
    ("box", (0.0, 0.0, -1.0), (1.0, 2.0, 2.0), (2, 3, 4), "auto", 6 * 2 * 3 * 4),
    ("box", (0.0, 0.0, -1.0), (1.0, 2.0, 2.0), (2, 3, 4), "hexahedron", 2 * 3 * 4),
]


@pytest.mark.parametrize(("kind", "lower", "upper", "n", "cell_type", "num_cells"), BUILTINS)
def test_builtin_domain(comm, kind, lower, upper, n, cell_type, num_cells):
    cfg = DomainConfig(kind=kind, lower=lower, upper=upper, n=n, cell_type=cell_type)
    domain = create_domain(comm, cfg)
    extent = np.subtract(upper, lower)
    assert domain.dim == domain.gdim == len(n)
    assert domain.comm is not None
    assert domain.comm.size == comm.size
    assert domain.num_cells_global() == num_cells
    assert owned_cells_tagged(domain, 1) == num_cells
    assert math.isclose(domain.volume(), np.prod(extent), rel_tol=1e-12)
    # side x_i = lower_i has tag 2i+1, x_i = upper_i has 2i+2; measure = product of the rest
    for i in range(domain.dim):
        side = np.prod(np.delete(extent, i))
        for tag in (2 * i + 1, 2 * i + 2):
            assert math.isclose(global_measure(domain, domain.ds(tag)), side, rel_tol=1e-12)
            assert domain.physical_groups[BUILTIN_FACET_TAGS[tag]] == (domain.dim - 1, tag)
    total = 2 * sum(np.prod(np.delete(extent, i)) for i in range(domain.dim))
    assert math.isclose(global_measure(domain, domain.ds), total, rel_tol=1e-12)
    assert global_tag_values(domain.facet_tags) == set(range(1, 2 * domain.dim + 1))


def test_builtin_side_is_where_documented(comm):
    cfg = DomainConfig(kind="rectangle", lower=(0.0, 0.0), upper=(2.0, 1.0), n=(4, 2))
    domain = create_domain(comm, cfg)
    xs = ufl.SpatialCoordinate(domain.mesh)
    # mean of x on the right side (tag 2) is 2, mean of y on the top side (tag 4) is 1
    assert math.isclose(global_measure(domain, xs[0] * domain.ds(2)), 2.0 * 1.0, rel_tol=1e-12)
    assert math.isclose(global_measure(domain, xs[1] * domain.ds(4)), 1.0 * 2.0, rel_tol=1e-12)
    assert abs(global_measure(domain, xs[0] * domain.ds(1))) < 1e-14


@pytest.mark.parametrize(
    ("kind", "n", "cell_type"),
    [
        ("interval", (4,), "quadrilateral"),
        ("rectangle", (2, 2), "hexahedron"),
        ("box", (1, 1, 1), "quadrilateral"),
    ],
)
def test_builtin_rejects_wrong_cell_type(comm, kind, n, cell_type):
    dim = len(n)
    cfg = DomainConfig(kind=kind, lower=(0.0,) * dim, upper=(1.0,) * dim, n=n, cell_type=cell_type)
    assert_same_error_on_all_ranks(comm, lambda: create_domain(comm, cfg), "not available")


def test_measure_names(comm):
    domain = create_domain(comm, DomainConfig(kind="interval", n=(4,)))
    assert domain.measure("dS").integral_type() == "interior_facet"
    with pytest.raises(ValueError, match="unknown measure"):
        domain.measure("dX")


# -- sample meshes ------------------------------------------------------------------------------
# Boundary vertices lie on the curved boundary, so the mesh is an inscribed polygon/polyhedron:
# a chord of length h under a curve of radius R cuts off a sagitta h^2/(8R), so the relative
# volume and boundary-measure defects are ~ h^2/(6R^2) > 0.  We allow h^2/(2R^2) (edges up to
# about sqrt(3) h).  h is the mesh size set in the .geo file, R the smallest radius of curvature.


def ellipse_perimeter(a: float, b: float) -> float:
    """Ramanujan's approximation (relative error ~1e-6 here)."""
    return math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))


def assert_inscribed(computed: float, exact: float, h: float, radius: float) -> None:
    assert computed <= exact * (1 + 1e-12)
    assert computed >= exact * (1 - h**2 / (2 * radius**2)), (computed, exact)


@pytest.mark.parametrize(
    ("name", "dim", "h", "volume", "boundary"),
    [("disk", 2, 0.06, math.pi, 2 * math.pi), ("sphere", 3, 0.13, 4 * math.pi / 3, 4 * math.pi)],
)
def test_sample_mesh(comm, name, dim, h, volume, boundary):
    domain = read_domain(comm, MESHES / f"{name}.msh")
    assert (domain.dim, domain.gdim) == (dim, dim)
    assert domain.physical_groups == {"domain": (dim, 1), "boundary": (dim - 1, 1)}
    assert global_tag_values(domain.cell_tags) == {1}
    assert global_tag_values(domain.facet_tags) == {1}
    assert owned_cells_tagged(domain, 1) == domain.num_cells_global()
    assert_inscribed(domain.volume(1), volume, h, 1.0)
    assert math.isclose(domain.volume(), domain.volume(1), rel_tol=1e-12)
    assert_inscribed(global_measure(domain, domain.ds(1)), boundary, h, 1.0)


def test_phantom2d(comm):
    domain = read_domain(comm, MESHES / "phantom2d.msh")
    h = 0.07
    assert global_tag_values(domain.cell_tags) == {1, 2, 3}
    assert global_tag_values(domain.facet_tags) == {1, 2, 3}
    assert domain.physical_groups["phantom_a"] == (2, 2)
    assert domain.physical_groups["interface_b"] == (1, 3)
    parts = [domain.volume(tag) for tag in (1, 2, 3)]
    assert math.isclose(sum(parts), 4.0, rel_tol=1e-12)  # the square field of view is exact
    assert math.isclose(global_measure(domain, domain.ds(1)), 8.0, rel_tol=1e-12)
    assert_inscribed(parts[1], math.pi * 0.25**2, h, 0.25)
    assert_inscribed(parts[2], math.pi * 0.3 * 0.15, h, 0.15**2 / 0.3)
    dS = domain.measure("dS")
    assert_inscribed(global_measure(domain, dS(2)), 2 * math.pi * 0.25, h, 0.25)
    assert_inscribed(global_measure(domain, dS(3)), ellipse_perimeter(0.3, 0.15), h, 0.075)


def test_file_config_scale_and_gdim(comm):
    cfg = DomainConfig(kind="file", path=str(MESHES / "disk.msh"), scale=0.01)
    area = read_domain(comm, MESHES / "disk.msh").volume()
    scaled = create_domain(comm, cfg)
    assert math.isclose(scaled.volume(), 1e-4 * area, rel_tol=1e-12)
    embedded = read_domain(comm, MESHES / "disk.msh", gdim=3)
    assert (embedded.dim, embedded.gdim) == (2, 3)
    assert math.isclose(embedded.volume(), area, rel_tol=1e-12)


def test_gmsh_model_and_existing_session(comm):
    gmsh = pytest.importorskip("gmsh")
    if comm.rank == 0:
        gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("user")
        gmsh.model.occ.addRectangle(0, 0, 0, 2, 1)
        gmsh.model.occ.synchronize()
        gmsh.model.mesh.generate(2)
    try:
        model = gmsh.model if comm.rank == 0 else None
        message = assert_same_error_on_all_ranks(
            comm, lambda: create_domain_from_gmsh_model(comm, model), "no physical group"
        )
        assert "dimension 2" in message
        if comm.rank == 0:
            gmsh.model.addPhysicalGroup(2, [1], 5)
        domain = create_domain_from_gmsh_model(comm, model)
        assert global_tag_values(domain.cell_tags) == {5}
        assert domain.facet_tags is None
        assert math.isclose(domain.volume(5), 2.0, rel_tol=1e-12)
        # reading a file while the caller's gmsh session is open leaves that session intact
        assert read_domain(comm, MESHES / "disk.msh").num_cells_global() > 0
        if comm.rank == 0:
            assert gmsh.isInitialized()
            assert gmsh.model.getCurrent() == "user"
    finally:
        if comm.rank == 0:
            gmsh.finalize()


# -- meshio files -------------------------------------------------------------------------------


def write_two_quads(path: Path) -> None:
    """Two unit squares side by side (cell tags 1, 2), bottom edges tagged 7, an unused node."""
    import meshio

    points = np.array(
        [[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0], [1, 1, 0], [2, 1, 0], [5, 5, 0]], float
    )
    cells = [("line", np.array([[0, 1], [1, 2]])), ("quad", np.array([[0, 1, 4, 3], [1, 2, 5, 4]]))]
    tags = {"gmsh:physical": [np.array([7, 7]), np.array([1, 2])]}
    meshio.Mesh(points, cells, cell_data=tags).write(path)


@pytest.mark.parametrize("suffix", [".xdmf", ".vtu"])
def test_meshio_file(comm, mpi_tmp_path, suffix):
    path = mpi_tmp_path / f"two_quads{suffix}"
    if comm.rank == 0:
        write_two_quads(path)
    comm.Barrier()
    domain = read_domain(comm, path, scale=2.0)
    assert (domain.dim, domain.gdim) == (2, 2)
    assert domain.mesh.topology.cell_name() == "quadrilateral"
    assert domain.num_cells_global() == 2
    assert domain.mesh.geometry.index_map().size_global == 6  # the unused node is dropped
    assert math.isclose(domain.volume(), 8.0, rel_tol=1e-12)
    assert math.isclose(domain.volume(1), 4.0, rel_tol=1e-12)
    assert math.isclose(domain.volume(2), 4.0, rel_tol=1e-12)
    assert math.isclose(global_measure(domain, domain.ds(7)), 4.0, rel_tol=1e-12)


def test_meshio_file_without_tags(comm, mpi_tmp_path):
    import meshio

    path = mpi_tmp_path / "triangles.vtk"
    if comm.rank == 0:
        points = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
        meshio.Mesh(points, [("triangle", np.array([[0, 1, 2], [0, 2, 3]]))]).write(path)
    comm.Barrier()
    domain = read_domain(comm, path)
    assert domain.cell_tags is None
    assert domain.facet_tags is None
    assert domain.num_cells_global() == 2
    assert math.isclose(domain.volume(), 1.0, rel_tol=1e-12)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.msh", None, "not found"),
        ("missing.xdmf", None, "not found"),
        ("garbage.msh", "this is not a mesh\n", "cannot parse"),
        ("garbage.vtu", "<VTKFile garbage", "cannot parse"),
        ("mesh.foo", "1 2 3\n", "unsupported mesh file extension"),
    ],
)
def test_bad_files_raise_same_error_everywhere(comm, mpi_tmp_path, name, content, match):
    path = mpi_tmp_path / name
    if comm.rank == 0 and content is not None:
        path.write_text(content)
    comm.Barrier()
    cfg = DomainConfig(kind="file", path=str(path))
    message = assert_same_error_on_all_ranks(comm, lambda: create_domain(comm, cfg), match)
    assert name in message
    # nothing hangs: the communicator is still usable afterwards
    assert comm.allreduce(1, op=MPI.SUM) == comm.size


def test_directory_is_not_a_mesh_file(comm, mpi_tmp_path):
    assert_same_error_on_all_ranks(
        comm, lambda: read_domain(comm, mpi_tmp_path), "not a readable file"
    )
