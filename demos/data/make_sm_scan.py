"""Regenerate demos/data/sm_scan.mdf: a simulated MDF system-matrix (calibration) scan.

    .venv/bin/python demos/data/make_sm_scan.py

No inverse crime: the data come from the ``system_matrix`` job's ``llg`` particle model
(:class:`llgfem.scanner.llg_model.LLGResponse`: the macrospin on a one-cell FEM mesh, PETSc TS
ARK4 adaptive at rtol 1e-8, another scheme and a much finer time grid than the fixed-step ROS2
model that ``calibrate`` fits them with).  Scanner: 25 kHz (2.5 MHz / 100) sine drive of
12 mT along x, gradient (-1, -1, 2) T/m, 100 samples per 40 us cycle; 12 positions
x = -5..5 mm (2 mm apart), y = +-0.5 mm, z = 0; three receive channels along x, y, z
(ideal chain).  Every frame gets white time-domain noise of 1 % of the RMS x-channel signal
(the same sigma on all channels) and a drive feed-through (3 x that RMS at 25 kHz plus an
offset); 6 background frames (empty robot: feed-through + noise) before, between and after
the positions.  True parameters alpha_D = 0.1, gamma = 1.76e11 rad/(s T) (so a = (a1, a2) =
(alpha, -1) gamma_ref/gamma with gamma_ref = 1.75e11) are stored as ``/experiment/_true_*``.
"""

from pathlib import Path

import numpy as np
from mpi4py import MPI

import llgfem  # noqa: F401  (DOLFINx bootstrap)
from llgfem.calibration.system_matrix_fit import system_matrix_with_background
from llgfem.io.mdf import Receiver, drive_field, write_mdf
from llgfem.scanner.fields import ScannerConfig, ScannerFields
from llgfem.scanner.llg_model import LLGOptions, LLGResponse
from llgfem.scanner.system_matrix import CalibrationGrid, grid_positions
from llgfem.scanner.tracer import TracerConfig

HERE = Path(__file__).resolve().parent
SCANNER = ScannerConfig(base_frequency=2.5e6, dividers=(100,), strengths=(0.012,),
                        gradient=(-1.0, -1.0, 2.0), num_sampling_points=100)
GRID = CalibrationGrid(size=(6, 2, 1), fov=(0.012, 0.002, 0.0),
                       delta_sample_size=(0.002, 0.001, 0.001))
ALPHA, GAMMA, GAMMA_REF = 0.1, 1.76e11, 1.75e11
NOISE, FEEDTHROUGH, BACKGROUND, SEED = 0.01, 3.0, 6, 7


def clean_spectra(sc: ScannerFields, positions: np.ndarray, comm) -> np.ndarray:
    """``S (P, 3, V/2+1)``: rfft of ``-e_c . dm/dt`` (receive channels x, y, z; unit gain)."""
    tracer = TracerConfig(damping=ALPHA, gyromagnetic_ratio=GAMMA)
    model = LLGResponse(tracer, LLGOptions(rtol=1e-8, warmup_cycles=0.25))
    mine = np.array_split(np.arange(len(positions)), comm.size)[comm.rank]
    rates = model.moments(sc, positions[mine])[1]
    rates = np.concatenate(comm.allgather(rates), axis=0)
    return np.fft.rfft(-np.moveaxis(rates, 2, 1), axis=-1)


def frames(S: np.ndarray, v: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background frames with noise and feed-through, and the background mask."""
    signal = np.fft.irfft(S, n=v, axis=-1)
    sigma = NOISE * np.sqrt(np.mean(signal[:, 0] ** 2))
    t = np.arange(v) / v
    feed = FEEDTHROUGH * sigma / NOISE * np.array([1.0, 0.4, 0.2])[:, None] * np.sin(
        2 * np.pi * t + 0.3)[None, :] + 0.1 * sigma / NOISE
    p = len(S)
    order = np.zeros(p + BACKGROUND, bool)
    order[np.linspace(0, p + BACKGROUND - 1, BACKGROUND).round().astype(int)] = True
    out = np.empty((p + BACKGROUND, 3, v))
    out[~order] = signal
    out[order] = 0.0
    out += feed[None] + sigma * rng.standard_normal(out.shape)
    return np.fft.rfft(out, axis=-1), order


def main() -> None:
    comm = MPI.COMM_WORLD
    sc = ScannerFields(SCANNER)
    positions = grid_positions(GRID)
    S = clean_spectra(sc, positions, comm)
    spectra, background = frames(S, sc.num_samples, np.random.default_rng(SEED))
    drive = drive_field(SCANNER.base_frequency, list(SCANNER.dividers),
                        list(SCANNER.strengths), list(sc.mdf_phases()), "sine")
    rx = Receiver(num_channels=3, num_sampling_points=sc.num_samples,
                  bandwidth=sc.num_samples / sc.cycle / 2, unit="V")
    truth = {"_true_alpha_D": ALPHA, "_true_gamma": GAMMA, "_gamma_ref": GAMMA_REF,
             "_true_a1": ALPHA * GAMMA_REF / GAMMA, "_true_a2": -GAMMA_REF / GAMMA}
    mdf = system_matrix_with_background(
        spectra, background, drivefield=drive, receiver=rx, size=list(GRID.size),
        field_of_view=list(GRID.fov), field_of_view_center=list(GRID.center),
        positions=positions, gradient=sc.gradient, delta_sample_size=list(GRID.delta_sample_size),
        experiment={"description": "llgfem make_sm_scan.py: LLG macrospin (ARK4, rtol 1e-8), "
                                   f"{NOISE:.0%} noise, {BACKGROUND} background frames",
                    "name": "sm_scan", **truth},
        tracer={"name": ["macrospin tracer"], "batch": ["simulation"], "vendor": ["n.a."],
                "solute": ["water"], "concentration": [0.1], "volume": [GRID.voxel_volume]})
    path = write_mdf(HERE / "sm_scan.mdf", mdf, comm=comm)
    if comm.rank == 0:
        print(f"wrote {path} ({path.stat().st_size} bytes); truth {truth}")


if __name__ == "__main__":
    main()
