"""The computational domain: built-in meshes or mesh files, with cell and facet tags.

:func:`create_domain` turns a :class:`llgfem.config.DomainConfig` into a :class:`Domain`
(a DOLFINx mesh plus its cell and facet tags).  Every function here is collective over
``comm``.

Built-in domains (``kind = interval | rectangle | box``) are
:math:`\\prod_i [\\mathrm{lower}_i, \\mathrm{upper}_i]` split into ``n_i`` cells per direction.
``cell_type = "auto"`` gives intervals/triangles/tetrahedra; ``quadrilateral`` (2-D) and
``hexahedron`` (3-D) give tensor-product cells.

Tag convention (built-in domains):

    ==========  =====  ===============  =================
    entity      tag    name             where
    ==========  =====  ===============  =================
    cells       1      ``domain``       every cell
    facets      1      ``left``         x = lower[0]
    facets      2      ``right``        x = upper[0]
    facets      3      ``bottom``       y = lower[1]   (2-D, 3-D)
    facets      4      ``top``          y = upper[1]   (2-D, 3-D)
    facets      5      ``front``        z = lower[2]   (3-D)
    facets      6      ``back``         z = upper[2]   (3-D)
    ==========  =====  ===============  =================

i.e. the side ``x_i = lower_i`` has tag ``2 i + 1`` and ``x_i = upper_i`` has ``2 i + 2``.
Mesh files carry their own tags from gmsh physical groups (or meshio cell data); the sample
meshes in ``meshes/`` follow the same spirit: cell tag 1 = domain (or background), facet
tag 1 = outer boundary (see ``meshes/README.md``).

Units: coordinates are used as given; ``DomainConfig.scale`` multiplies mesh-file coordinates
(e.g. ``scale = 1e-3`` for a file in millimetres, or ``0.01`` to give the unit-radius sample
meshes a 1 cm radius).  The rest of llgfem assumes consistent (SI or non-dimensional) units.

Mesh files: gmsh ``.msh`` is read with the gmsh Python module and
:func:`dolfinx.io.gmsh.model_to_mesh`; every other extension known to meshio is read with
meshio.  Reading happens on rank 0 only; the file is checked (exists, readable, parses, has
tagged cells) on rank 0 *before* any collective call and the verdict is broadcast, so a bad
file raises the same :class:`MeshError` on every rank instead of hanging.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import basix.ufl
import dolfinx.cpp.io
import dolfinx.fem
import dolfinx.mesh
import numpy as np
import numpy.typing as npt
import ufl
from dolfinx.graph import adjacencylist
from dolfinx.io.utils import distribute_entity_data
from mpi4py import MPI

from llgfem.config import DomainConfig

__all__ = [
    "BUILTIN_FACET_TAGS",
    "Domain",
    "MeshError",
    "create_domain",
    "create_domain_from_gmsh_model",
    "read_domain",
]

#: Facet tag names of the built-in domains, by tag (see the module docstring).
BUILTIN_FACET_TAGS: dict[int, str] = {
    1: "left",
    2: "right",
    3: "bottom",
    4: "top",
    5: "front",
    6: "back",
}

_MESHIO_TAG_KEYS = ("gmsh:physical", "medit:ref", "cell_tags", "CellEntityIds", "tags")
_MESHIO_CELLS = {
    "line": ("interval", 1, 2),
    "triangle": ("triangle", 2, 3),
    "quad": ("quadrilateral", 2, 4),
    "tetra": ("tetrahedron", 3, 4),
    "hexahedron": ("hexahedron", 3, 8),
}


class MeshError(ValueError):
    """A mesh file that is missing, unreadable, unsupported or invalid (same on all ranks)."""


@dataclass(frozen=True, eq=False)
class Domain:
    """A mesh with its tags.

    Attributes:
        mesh: The DOLFINx mesh.
        cell_tags: Cell markers (``None`` when the source has none).
        facet_tags: Boundary/interface facet markers (``None`` when the source has none).
        physical_groups: Names of the tags: ``name -> (entity dimension, tag)``.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags | None = None
    facet_tags: dolfinx.mesh.MeshTags | None = None
    physical_groups: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def comm(self) -> MPI.Comm:
        """The mesh communicator."""
        return self.mesh.comm

    @property
    def dim(self) -> int:
        """Topological dimension."""
        return self.mesh.topology.dim

    @property
    def gdim(self) -> int:
        """Geometric dimension."""
        return self.mesh.geometry.dim

    @property
    def dx(self) -> ufl.Measure:
        """Cell measure with the cell tags as subdomain data (``dx(1)`` = tag 1)."""
        return self.measure("dx")

    @property
    def ds(self) -> ufl.Measure:
        """Exterior facet measure with the facet tags (``ds(2)`` = facets tagged 2)."""
        return self.measure("ds")

    def measure(self, name: str) -> ufl.Measure:
        """A UFL measure ``dx``, ``ds`` or ``dS`` carrying the matching tags.

        Raises:
            ValueError: for any other name.
        """
        tags = {"dx": self.cell_tags, "ds": self.facet_tags, "dS": self.facet_tags}
        if name not in tags:
            raise ValueError(f"unknown measure {name!r}; use 'dx', 'ds' or 'dS'")
        return ufl.Measure(name, domain=self.mesh, subdomain_data=tags[name])

    def num_cells_global(self) -> int:
        """Number of cells over all ranks."""
        return self.mesh.topology.index_map(self.dim).size_global

    def volume(self, tag: int | None = None) -> float:
        """Global measure (length/area/volume) of the domain or of cells tagged ``tag``."""
        dx = self.dx if tag is None else self.dx(tag)
        one = dolfinx.fem.Constant(self.mesh, dolfinx.default_scalar_type(1.0))
        local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(one * dx))
        return float(self.comm.allreduce(local, op=MPI.SUM))


def create_domain(comm: MPI.Comm, cfg: DomainConfig) -> Domain:
    """Create the domain described by a validated :class:`DomainConfig` (collective).

    Args:
        comm: Communicator for the mesh.
        cfg: Domain configuration (``kind``, ``lower``/``upper``/``n``/``cell_type`` for
            built-in domains; ``path``/``gdim``/``scale`` for ``kind = "file"``).

    Returns:
        The domain; built-in domains are tagged as in the module docstring.

    Raises:
        MeshError: on every rank, for an unusable mesh file or an inconsistent cell type.
    """
    if cfg.kind == "file":
        return read_domain(comm, cfg.path, gdim=cfg.gdim, scale=cfg.scale)
    return _create_builtin(comm, cfg)


# -- built-in domains ---------------------------------------------------------------------------


def _builtin_cell_type(kind: str, cell_type: str) -> dolfinx.mesh.CellType:
    """The DOLFINx cell type for a built-in ``kind``; raises MeshError on a mismatch."""
    auto = {"interval": "interval", "rectangle": "triangle", "box": "tetrahedron"}
    tensor = {"interval": "interval", "rectangle": "quadrilateral", "box": "hexahedron"}
    if kind not in auto:
        raise MeshError(f"domain.kind: {kind!r} is not a built-in domain")
    if cell_type == "auto":
        return dolfinx.mesh.CellType[auto[kind]]
    if cell_type != tensor[kind] or kind == "interval":
        raise MeshError(f"domain.cell_type: {cell_type!r} is not available for kind {kind!r}")
    return dolfinx.mesh.CellType[cell_type]


def _create_builtin(comm: MPI.Comm, cfg: DomainConfig) -> Domain:
    """Interval, rectangle or box mesh with side facet tags and cell tag 1."""
    cell_type = _builtin_cell_type(cfg.kind, cfg.cell_type)
    lower, upper = np.array(cfg.lower, dtype=float), np.array(cfg.upper, dtype=float)
    if cfg.kind == "interval":
        msh = dolfinx.mesh.create_interval(comm, cfg.n[0], [lower[0], upper[0]])
    elif cfg.kind == "rectangle":
        msh = dolfinx.mesh.create_rectangle(comm, [lower, upper], list(cfg.n), cell_type)
    else:
        msh = dolfinx.mesh.create_box(comm, [lower, upper], list(cfg.n), cell_type)
    tdim = msh.topology.dim
    groups = {"domain": (tdim, 1)}
    groups.update({BUILTIN_FACET_TAGS[t]: (tdim - 1, t) for t in range(1, 2 * tdim + 1)})
    return Domain(msh, _tag_all_cells(msh), _tag_box_sides(msh, lower, upper), groups)


def _tag_all_cells(msh: dolfinx.mesh.Mesh, value: int = 1) -> dolfinx.mesh.MeshTags:
    """Cell tags marking every local cell (owned and ghost) with ``value``."""
    tdim = msh.topology.dim
    imap = msh.topology.index_map(tdim)
    cells = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    tags = dolfinx.mesh.meshtags(msh, tdim, cells, np.full_like(cells, value))
    tags.name = "cell_tags"
    return tags


def _tag_box_sides(
    msh: dolfinx.mesh.Mesh, lower: npt.NDArray, upper: npt.NDArray
) -> dolfinx.mesh.MeshTags:
    """Facet tags 2i+1 on the side x_i = lower_i and 2i+2 on x_i = upper_i."""
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    indices, values = [], []
    for i in range(tdim):
        tol = 1e-10 * (upper[i] - lower[i])
        for tag, c in ((2 * i + 1, lower[i]), (2 * i + 2, upper[i])):
            facets = dolfinx.mesh.locate_entities_boundary(
                msh, tdim - 1, lambda x, i=i, c=c: np.abs(x[i] - c) <= tol
            )
            indices.append(facets)
            values.append(np.full_like(facets, tag))
    indices, values = np.concatenate(indices), np.concatenate(values)
    order = np.argsort(indices)
    tags = dolfinx.mesh.meshtags(msh, tdim - 1, indices[order], values[order])
    tags.name = "facet_tags"
    return tags


# -- mesh files ---------------------------------------------------------------------------------


def read_domain(comm: MPI.Comm, path: str | Path, gdim: int = 0, scale: float = 1.0) -> Domain:
    """Read a gmsh ``.msh`` file or any meshio-readable file into a :class:`Domain`.

    The file is read on rank 0 and the mesh distributed over ``comm``.

    Args:
        comm: Communicator for the mesh.
        path: Mesh file.
        gdim: Geometric dimension (0: infer; the topological dimension unless the file has
            non-zero coordinates beyond it).
        scale: Factor (> 0) applied to all coordinates after reading.

    Returns:
        The domain with the cell/facet tags stored in the file (or ``None``).

    Raises:
        MeshError: on every rank, if the file is missing, unreadable, of an unsupported
            format, fails to parse, or has no usable cells.
    """
    if not (scale > 0 and np.isfinite(scale)):
        raise MeshError(f"scale must be a positive number, got {scale}")
    path = Path(path)
    reader = _read_msh if path.suffix.lower() == ".msh" else _read_meshio
    _raise_collectively(comm, _check_file(path) if comm.rank == 0 else None)
    domain = reader(comm, path, gdim)
    if scale != 1.0:
        domain.mesh.geometry.x[:] *= scale
    return domain


def _raise_collectively(comm: MPI.Comm, message: str | None, root: int = 0) -> None:
    """Broadcast the root's error message ("" = ok) and raise MeshError on all ranks if set."""
    message = comm.bcast(message, root=root)
    if message:
        raise MeshError(message)


def _check_file(path: Path) -> str:
    """Why ``path`` cannot be read ("" if it looks fine); called on one rank only."""
    if not path.exists():
        return f"mesh file not found: {path}"
    if not path.is_file() or not os.access(path, os.R_OK):
        return f"mesh file is not a readable file: {path}"
    if path.suffix.lower() == ".msh":
        try:
            import gmsh  # noqa: F401
        except ImportError:
            return f"reading {path.name} needs the gmsh Python module (pip install gmsh)"
        return ""
    import meshio

    suffixes = "".join(path.suffixes[-2:]).lower()
    known = meshio.extension_to_filetypes
    if path.suffix.lower() not in known and suffixes not in known:
        return (
            f"unsupported mesh file extension {path.suffix!r} ({path}); use gmsh .msh or a "
            f"meshio format such as .xdmf, .vtu, .vtk"
        )
    return ""


def _shared_facet_partitioner(comm: MPI.Comm) -> Callable | None:
    """Cell partitioner with shared-facet ghosts (as the built-in meshes), None in serial."""
    if comm.size == 1:
        return None
    return dolfinx.mesh.create_cell_partitioner(dolfinx.mesh.GhostMode.shared_facet, 2)


def _infer_gdim(x: npt.NDArray, tdim: int, gdim: int) -> tuple[int, str]:
    """Geometric dimension (given or inferred from the coordinates) and an error message."""
    x = np.atleast_2d(x)
    if gdim == 0:
        nonzero = np.flatnonzero(np.any(x != 0.0, axis=0))
        gdim = max(tdim, int(nonzero[-1]) + 1 if nonzero.size else 0)
    if not tdim <= gdim <= 3:
        return gdim, f"gdim = {gdim} is invalid for a mesh of topological dimension {tdim}"
    if np.any(x[:, gdim:] != 0.0):
        return gdim, f"gdim = {gdim} would drop non-zero coordinates beyond dimension {gdim}"
    return gdim, ""


# -- gmsh ---------------------------------------------------------------------------------------


def _read_msh(comm: MPI.Comm, path: Path, gdim: int) -> Domain:
    """Read a gmsh file on rank 0 and build the distributed mesh (collective)."""
    model, message, previous = None, None, None
    if comm.rank == 0:
        import gmsh

        previous, message = _gmsh_open(gmsh, path)
        model = gmsh.model
    try:
        _raise_collectively(comm, message)
        return create_domain_from_gmsh_model(comm, model, gdim=gdim)
    finally:
        if comm.rank == 0:
            _gmsh_close(gmsh, previous)


@contextlib.contextmanager
def _keep_signal_handlers():
    """Reinstall Python's SIGINT/SIGTERM handlers after gmsh (its library resets them to the
    default, so ``llgfem run`` would die silently on SIGTERM instead of exiting cleanly)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            with contextlib.suppress(ValueError, TypeError):  # not the main thread / unknown
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _gmsh_open(gmsh: Any, path: Path) -> tuple[str | None, str]:
    """Merge ``path`` into a fresh gmsh model; returns (previous model or None, error)."""
    previous = None
    if gmsh.isInitialized():
        previous = gmsh.model.getCurrent()
    else:
        with _keep_signal_handlers():
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add(f"llgfem:{path.name}")
    try:
        gmsh.merge(str(path))
    except Exception as e:  # gmsh raises plain Exception with its error text
        return previous, f"cannot parse mesh file {path}: {e}"
    return previous, ""


def _gmsh_close(gmsh: Any, previous: str | None) -> None:
    """Undo :func:`_gmsh_open`: drop our model; finalize gmsh if we initialized it."""
    if previous is None:
        with _keep_signal_handlers():
            gmsh.finalize()
        return
    gmsh.model.remove()
    gmsh.model.setCurrent(previous)


def create_domain_from_gmsh_model(
    comm: MPI.Comm, model: Any, gdim: int = 0, rank: int = 0
) -> Domain:
    """Create a domain from a meshed gmsh model held on one rank (collective).

    The model must tag all cells of its highest dimension with physical groups (each cell
    once); lower-dimensional physical groups become facet tags.

    Args:
        comm: Communicator for the mesh.
        model: ``gmsh.model`` on rank ``rank`` (ignored, may be ``None``, elsewhere).
        gdim: Geometric dimension (0: infer from the coordinates).
        rank: The rank holding the model.

    Raises:
        MeshError: on every rank, if the model has no mesh or untagged/mixed cells.
    """
    from dolfinx.io.gmsh import model_to_mesh

    message, tdim = None, 0
    if comm.rank == rank:
        message, tdim = _check_gmsh_model(model)
        if not message:
            x = model.mesh.getNodes()[1].reshape(-1, 3)
            gdim, message = _infer_gdim(x, tdim, gdim)
    _raise_collectively(comm, message, root=rank)
    gdim = comm.bcast(gdim, root=rank)
    data = model_to_mesh(model, comm, rank, gdim=gdim, partitioner=_shared_facet_partitioner(comm))
    groups = {name: (int(g.dim), int(g.tag)) for name, g in data.physical_groups.items()}
    return Domain(data.mesh, data.cell_tags, data.facet_tags, groups)


def _check_gmsh_model(model: Any) -> tuple[str, int]:
    """Why the model cannot become a Domain ("" if fine) and its topological dimension."""
    elements = {d: model.mesh.getElements(dim=d) for d in range(1, 4)}
    dims = [d for d, (types, _, _) in elements.items() if len(types) > 0]
    if not dims:
        return "the gmsh model has no mesh elements of dimension >= 1", 0
    tdim = max(dims)
    types, tags, _ = elements[tdim]
    if len(types) > 1:
        return f"mixed cell types in dimension {tdim} are not supported", tdim
    groups = [tag for d, tag in model.getPhysicalGroups() if d == tdim]
    if not groups:
        return f"no physical group of dimension {tdim}: tag the cells in gmsh", tdim
    tagged = [
        model.mesh.getElements(dim=tdim, tag=entity)[1]
        for tag in groups
        for entity in model.getEntitiesForPhysicalGroup(tdim, tag)
    ]
    tagged = np.concatenate([t for block in tagged for t in block] or [np.empty(0)])
    if tagged.size != tags[0].size or np.unique(tagged).size != tagged.size:
        return (
            f"every cell must be in exactly one physical group of dimension {tdim} "
            f"({tags[0].size} cells, {tagged.size} tagged)"
        ), tdim
    return "", tdim


# -- meshio -------------------------------------------------------------------------------------


def _read_meshio(comm: MPI.Comm, path: Path, gdim: int) -> Domain:
    """Read any meshio format on rank 0 and build the distributed mesh (collective)."""
    data, message = None, None
    if comm.rank == 0:
        try:
            data = _meshio_arrays(path, gdim)
        except SystemExit:  # meshio calls sys.exit() when no reader accepts the file
            message = f"cannot parse mesh file {path}: meshio cannot read it"
        except Exception as e:  # meshio raises many types; report them all the same way
            message = f"cannot parse mesh file {path}: {type(e).__name__}: {e}"
    _raise_collectively(comm, message)
    # the other ranks contribute empty arrays of the right shapes and dtypes
    empty = None if data is None else {k: _empty_like(v) for k, v in data.items()}
    empty = comm.bcast(empty, root=0)
    data = data if comm.rank == 0 else empty
    element = basix.ufl.element("Lagrange", empty["cell"], 1, shape=(empty["x"].shape[1],))
    msh = dolfinx.mesh.create_mesh(
        comm, data["cells"], ufl.Mesh(element), data["x"], _shared_facet_partitioner(comm)
    )
    tdim = msh.topology.dim
    cell_tags = _tags_from_input(msh, tdim, data["cells"], data["cell_values"])
    facet_tags = _tags_from_input(msh, tdim - 1, data["facets"], data["facet_values"])
    return Domain(msh, cell_tags, facet_tags, {})


def _empty_like(value: Any) -> Any:
    """An array's empty slice (shape (0, ...), same dtype); other values unchanged."""
    return value[:0] if isinstance(value, np.ndarray) else value


def _meshio_arrays(path: Path, gdim: int) -> dict[str, Any]:
    """Cells (DOLFINx ordering), coordinates and tags of a meshio file (rank 0 only)."""
    import meshio

    m = meshio.read(path)
    dims = [_MESHIO_CELLS[b.type][1] for b in m.cells if b.type in _MESHIO_CELLS]
    if not dims:
        found = sorted({b.type for b in m.cells})
        raise ValueError(f"no linear line/triangle/quad/tetra/hexahedron cells (found {found})")
    tdim = max(dims)
    cells, cell_values, cell_name = _stack_blocks(m, tdim)
    facets, facet_values, _ = _stack_blocks(m, tdim - 1)
    cells, keep, x = _compact_nodes(cells, facets, np.asarray(m.points, dtype=float))
    gdim, message = _infer_gdim(x, tdim, gdim)
    if message:
        raise ValueError(message)
    perm = dolfinx.cpp.io.perm_vtk(dolfinx.mesh.to_type(cell_name), cells.shape[1])
    return {
        "cell": cell_name,
        "cells": cells[:, perm],
        "x": x[:, :gdim].copy(),
        "cell_values": cell_values,
        "facets": facets[keep],
        "facet_values": None if facet_values is None else facet_values[keep],
    }


def _stack_blocks(m: Any, dim: int) -> tuple[npt.NDArray, npt.NDArray | None, str]:
    """Connectivity, tags (first integer cell-data key) and cell name of all dim-blocks."""
    blocks = [i for i, b in enumerate(m.cells) if _MESHIO_CELLS.get(b.type, ("", -1))[1] == dim]
    names = {_MESHIO_CELLS[m.cells[i].type][0] for i in blocks}
    if len(names) > 1:
        raise ValueError(f"mixed cell types {sorted(names)} in dimension {dim} are not supported")
    if not blocks:
        return np.empty((0, 1), dtype=np.int64), None, ""
    cells = np.vstack([np.asarray(m.cells[i].data, dtype=np.int64) for i in blocks])
    keys = [k for k in _MESHIO_TAG_KEYS if k in m.cell_data]
    keys += [k for k in m.cell_data if k not in keys]
    for key in keys:
        values = [np.asarray(m.cell_data[key][i]).reshape(-1) for i in blocks]
        if all(np.issubdtype(v.dtype, np.integer) for v in values):
            return cells, np.concatenate(values).astype(np.int32), names.pop()
    return cells, None, names.pop()


def _compact_nodes(
    cells: npt.NDArray, facets: npt.NDArray, x: npt.NDArray
) -> tuple[npt.NDArray, npt.NDArray, npt.NDArray]:
    """Drop nodes no cell uses; renumber cells; facets to keep (those on kept nodes); x."""
    used = np.unique(cells)
    new = np.full(x.shape[0], -1, dtype=np.int64)
    new[used] = np.arange(used.size)
    keep = np.all(new[facets] >= 0, axis=1) if facets.size else np.zeros(0, dtype=bool)
    return new[cells], keep, x[used]


def _tags_from_input(
    msh: dolfinx.mesh.Mesh,
    dim: int,
    entities: npt.NDArray,
    values: npt.NDArray | None,
) -> dolfinx.mesh.MeshTags | None:
    """MeshTags from entities given by input node indices (collective; None without values)."""
    if values is None or dim < 0:
        return None
    local_entities, local_values = distribute_entity_data(
        msh, dim, np.asarray(entities, dtype=np.int64), np.asarray(values, dtype=np.int32)
    )
    msh.topology.create_connectivity(dim, msh.topology.dim)
    tags = dolfinx.mesh.meshtags_from_entities(
        msh, dim, adjacencylist(local_entities), local_values.astype(np.int32, copy=False)
    )
    tags.name = "cell_tags" if dim == msh.topology.dim else "facet_tags"
    return tags
