"""Regenerate the sample meshes ``meshes/*.msh`` from their ``.geo`` files with the gmsh API.

Usage::

    python meshes/generate.py              # all samples
    python meshes/generate.py disk sphere  # selected samples

Writes ASCII MSH 4.1 next to the ``.geo`` file, with only the physical groups saved, meshed
single-threaded so the output is reproducible for a given gmsh version (4.15 here).  The
equivalent command line is ``gmsh -<dim> -format msh41 <name>.geo -o <name>.msh``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gmsh

HERE = Path(__file__).resolve().parent

#: Sample name -> mesh dimension.
SAMPLES: dict[str, int] = {"disk": 2, "phantom2d": 2, "sphere": 3}


def generate(name: str, dim: int, out_dir: Path = HERE) -> Path:
    """Mesh ``<name>.geo`` in dimension ``dim`` and write ``<out_dir>/<name>.msh``."""
    out = out_dir / f"{name}.msh"
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 1)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.open(str(HERE / f"{name}.geo"))
        gmsh.model.mesh.generate(dim)
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", 0)
        gmsh.option.setNumber("Mesh.SaveAll", 0)
        gmsh.write(str(out))
        _, tags, _ = gmsh.model.mesh.getElements(dim=dim)
        num_nodes = gmsh.model.mesh.getNodes()[0].size
        print(f"{out.name}: {sum(t.size for t in tags)} cells, {num_nodes} nodes")
    finally:
        gmsh.finalize()
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"samples to build (default: {list(SAMPLES)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SAMPLES))
    if unknown:
        parser.error(f"unknown sample(s) {unknown}; choose from {list(SAMPLES)}")
    for name in args.names or SAMPLES:
        generate(name, SAMPLES[name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
