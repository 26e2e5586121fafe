"""Regenerate demos/data/ffp_llg_scan.mdf: simulate (fine model) -> write MDF.

    .venv/bin/python demos/data/make_calibrate_mdf.py

The fine model is demos/data/ffp_llg_fine.toml; 64 receiver samples per period, 2 % noise
per frame, 4 foreground + 2 background frames, a drive feed-through of 0.5 x the channel rms
in every frame (removed by the background subtraction and the drive band-stop).
"""

from pathlib import Path

from mpi4py import MPI

import llgfem  # noqa: F401
from llgfem.calibration.simulate import clean_samples, write_measurement
from llgfem.config import load_config

HERE = Path(__file__).resolve().parent
OPTIONS = {"noise": 0.02, "seed": 0, "frames": 4, "background_frames": 2, "feedthrough": 0.5}
SAMPLES = 64

if __name__ == "__main__":
    comm = MPI.COMM_WORLD
    u, field, truth = clean_samples(load_config(HERE / "ffp_llg_fine.toml"), SAMPLES, comm)
    path = write_measurement(HERE / "ffp_llg_scan.mdf", u, field, truth, comm=comm, **OPTIONS)
    if comm.rank == 0:
        print(f"wrote {path} ({path.stat().st_size} bytes); truth {truth}")
