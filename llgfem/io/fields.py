"""ParaView-readable output of trajectories: VTX (ADIOS2 ``.bp``) or XDMF, written collectively."""

from __future__ import annotations

from pathlib import Path

import dolfinx.fem as fem
import dolfinx.io as dio
import numpy as np

from llgfem.spacetime import array_to_function

__all__ = ["write_trajectory"]


def write_trajectory(path: str | Path, V, values: np.ndarray, times: np.ndarray,
                     name: str = "m", every: int = 1) -> Path:
    """Write the rows of ``values`` (owned dofs) at ``times`` to ``path`` (collective).

    ``.bp`` uses VTXWriter when DOLFINx has ADIOS2, otherwise (or for ``.xdmf``) XDMF is used.
    Returns the path actually written.
    """
    path = Path(path)
    comm = V.mesh.comm
    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    u = fem.Function(V, name=name)
    if path.suffix == ".bp" and dio.has_adios2:
        with dio.VTXWriter(comm, path, [u], engine="BP4") as writer:
            for i in range(0, len(times), every):
                array_to_function(values[i], u)
                writer.write(float(times[i]))
        return path
    path = path.with_suffix(".xdmf")
    with dio.XDMFFile(comm, path, "w") as xdmf:
        xdmf.write_mesh(V.mesh)
        for i in range(0, len(times), every):
            array_to_function(values[i], u)
            xdmf.write_function(u, float(times[i]))
    return path
