"""Trajectories of finite-element fields on disk: XDMF/HDF5 (default) or VTX, written collectively.

The default is XDMF with HDF5 heavy data: ParaView opens the ``.xdmf`` file, and the install
can read it back with ``h5py`` (:func:`read_trajectory`), which VTX files (ADIOS2 ``.bp``)
would need the ``adios2`` Python bindings for.  The mesh is written once; every time level adds
one dataset of nodal values.  ``format="vtx"`` writes ADIOS2 ``.bp`` (when DOLFINx has ADIOS2)
with the mesh written once (``VTXMeshPolicy.reuse``).

HDF5 layout written by DOLFINx's XDMFFile (P1 fields, nodal values)::

    /Mesh/mesh/geometry           (n_nodes, gdim) node coordinates
    /Mesh/mesh/topology           (n_cells, nodes per cell)
    /Function/<name>/<time>       (n_nodes, components) values at time <time>
"""

from __future__ import annotations

from pathlib import Path

import dolfinx.fem as fem
import dolfinx.io as dio
import numpy as np

from llgfem.spacetime import array_to_function

__all__ = ["read_trajectory", "write_trajectory"]

FORMATS = ("xdmf", "vtx")


def write_trajectory(path: str | Path, V, values: np.ndarray, times: np.ndarray,
                     name: str = "m", every: int = 1, format: str = "xdmf") -> Path:
    """Write the rows of ``values`` (owned dofs) at ``times`` (collective).

    Args:
        path: Output file; its suffix is replaced by ``.xdmf`` (``.bp`` for VTX).
        V: The function space of the rows.
        values: ``(n_t, n_owned)`` owned dofs per time level.
        times: The ``n_t`` times.
        name: Field name in the file.
        every: Write every ``every``-th level.
        format: ``xdmf`` (default, readable back with :func:`read_trajectory`) or ``vtx``
            (falls back to XDMF when DOLFINx lacks ADIOS2).

    Returns:
        The path actually written.
    """
    if format not in FORMATS:
        raise ValueError(f"write_trajectory: format {format!r} not in {FORMATS}")
    path = Path(path)
    comm = V.mesh.comm
    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    u = fem.Function(V, name=name)
    levels = range(0, len(times), max(int(every), 1))
    if format == "vtx" and dio.has_adios2:
        path = path.with_suffix(".bp")
        with dio.VTXWriter(comm, path, [u], engine="BP4",
                           mesh_policy=dio.VTXMeshPolicy.reuse) as writer:
            for i in levels:
                array_to_function(values[i], u)
                writer.write(float(times[i]))
        return path
    path = path.with_suffix(".xdmf")
    with dio.XDMFFile(comm, path, "w") as xdmf:
        xdmf.write_mesh(V.mesh)
        for i in levels:
            array_to_function(values[i], u)
            xdmf.write_function(u, float(times[i]))
    return path


def read_trajectory(path: str | Path, name: str = "m") -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """Read a field written by :func:`write_trajectory` (XDMF) with h5py (any rank, serial).

    Args:
        path: The ``.xdmf`` file (its ``.h5`` sibling holds the data).
        name: Field name.

    Returns:
        ``(times, values, geometry)``: the ``n`` written times, values of shape
        ``(n, n_nodes, components)`` in the file's node order, and ``(n_nodes, gdim)``
        node coordinates.

    Raises:
        llgfem.errors.DataError: if the file is missing or not such a field file.
    """
    import h5py

    from llgfem.errors import DataError, reading, require_file

    h5 = require_file(Path(path).with_suffix(".h5"), "fields")
    with reading(h5, "fields"), h5py.File(h5, "r") as f:
        geometry = f["Mesh/mesh/geometry"][...]
        if f"Function/{name}" not in f:
            raise DataError(f"fields: {h5} has no field {name!r} "
                            f"(fields: {', '.join(f.get('Function', {}))})")
        group = f[f"Function/{name}"]
        keys = sorted(group, key=lambda k: float(k.replace("_", ".")))
        times = np.array([float(k.replace("_", ".")) for k in keys])
        values = np.stack([group[k][...] for k in keys])
    return times, values, geometry
