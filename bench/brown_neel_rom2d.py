"""Offset-parametric Brown–Néel POD ROM for 2-D/3-D Lissajous scans -> brown_neel_rom2d.json.

Usage::

    nice -n 10 .venv/bin/python bench/brown_neel_rom2d.py [--quick] [--stages train,validate,
        matrix,check,3d] [--truncation 6 4] [--window 0.0625]

2-D scan: dividers 102/96 at 2.5 MHz (f = 24.51 / 26.04 kHz, repetition 652.8 µs), 12 mT on x
and y, gradient (−1, −1, 2) T/m, so the field of view is [−12, 12] mm² in the plane z = 0;
particle 20 nm / 6 kJ/m³.  Recorded: ``--window`` of the repetition time after a warm-up of
26 samples (10.4 µs ≈ 3.3 τ_B), sampled at 2.5 MHz; receive signals d⟨m_x⟩/dt, d⟨m_y⟩/dt.

Stages (results merged into the JSON after every stage; FOM runs cached in
outputs/bench/cache/brown_neel_rom2d/, so an interrupted run resumes):

* ``train``    greedy selection of training positions on a 5 × 5 candidate grid (residual
               indicator), POD basis of the selected FOM runs, projected once.
* ``greedy``   greedy with the TRUE error over the cached training pool (5 × 5 grid with
               borders + previous training positions): NRMSE of the ROM's receive signals vs
               the cached FOM run; POD of the unit-mass snapshots of the selected runs.
* ``speedup``  FOM and ROM back to back at the first held-out positions: wall and CPU times.
* ``fullrep``  one ROM run over the full repetition (cost; no FOM reference).
* ``validate`` FOM and ROM at held-out positions of the 19 × 19 grid (seeded random choice).
* ``matrix``   the 19 × 19 system matrix from the ROM on 2 ranks (``rom_system_matrix``);
               the FOM time for the same matrix is extrapolated from the held-out FOM runs.
* ``check``    truncation check: static in-plane fields of 12–34 mT, |⟨m⟩ − L(|ξ|)| per
               truncation (N_m up to 14 at N_n = 4, N_n up to 10 at N_m = 8).
* ``3d``       coarser 3-D case (dividers 102/96/136, 12 mT on x, y and 6 mT on z).
* ``dynamics`` FOM receive signals per ``--dynamic-truncations`` at the first held-out position,
               NRMSE against the finest.
* ``poolbasis`` POD of every cached training run of the 5 × 5 border grid (no greedy; with
               ``--cells`` also of the centres of its 4 × 4 cells).
* ``ranksweep`` held-out NRMSE and reduced-run cost for the leading r modes, r in ``--sweep-ranks``.
* ``phases``   the ROM against FOM runs whose window starts ``--phases`` samples later in the
               repetition (does the window basis hold along the rest of the curve?).
* ``phasetrain`` POD of the phase-0 pool plus 3 × 3-grid windows at ``--train-phases``;
               phase-0 held-out validation and the ``--phases`` check with that basis.
* ``fill``     compute missing FOM runs of ``--fill-set`` into the cache (lock files: run two
               processes, one with ``--fill-reverse``).
* ``3dpool``   3-D case: POD of the FOM runs (cached or computed) at every position of the
               ``--train-grid-3d`` grid, validation at ``--held-out-3d`` pixel centres.
* ``transfer3d`` the 3-D training snapshots mapped to ``--particle-b`` by
               ``boltzmann_transfer_3d``; ROM of B vs B's FOM, and A's basis used directly.

Third pass (docs/brown_neel.md)::

    A="--truncation 10 8 --window 0.015625 --rank 400 --pod-tol 1e-15 --rom-rtol 1e-7
       --reference-rtol 1e-7 --held-out 21"
    brown_neel_rom2d.py --stages poolbasis,validate,matrix,fullrep $A   # after the FOM runs

Fourth pass (41 training runs, r = 500; the 3-D case at (6, 4))::

    A="--truncation 10 8 --truncation-3d 6 4 --window 0.015625 --pod-tol 1e-15 --rom-rtol 1e-7
       --reference-rtol 1e-7 --held-out 21 --held-out-3d 10"
    brown_neel_rom2d.py --stages poolbasis,validate,ranksweep,phases,matrix,fullrep --cells \
        --rank 500 --phases 0 408 816 $A
    brown_neel_rom2d.py --stages phasetrain --cells --rank 500 --train-phases 816 \
        --phases 0 408 816 $A
    brown_neel_rom2d.py --stages 3dpool,transfer3d --rank 400 --held-out-b 6 $A
    brown_neel_rom2d.py --stages dynamics --rtol 1e-7 --dynamic-truncations 6 4 \
        --dynamic-truncations 8 6 --dynamic-truncations 10 8 --dynamic-truncations 12 10 $A

Fifth pass ((12, 10): 6.4e-4 from (14, 12) inside the field of view, 2.9e-3 at the corner;
training at rtol 1e-6, references at 1e-7)::

    T="--dynamic-truncations 10 8 --dynamic-truncations 12 10 --dynamic-truncations 14 12"
    brown_neel_rom2d.py --stages dynamics --rtol 1e-6 $T --truncation 12 10 \
        --dynamics-key truncation_dynamics_r1e-6 $A
    brown_neel_rom2d.py --stages dynamics --rtol 1e-6 --bdf-order 3 $T --truncation 12 10 \
        --dynamics-position -12 -12 0 --dynamics-key truncation_dynamics_corner_r1e-6 $A
    # training and held-out FOM runs, two processes (delete stale .lock files after a kill):
    brown_neel_rom2d.py --stages fill --truncation 12 10 --bdf-order 3 --fill-set grid5 cells $A
    brown_neel_rom2d.py --stages fill --truncation 12 10 --bdf-order 3 --fill-set grid5 cells \
        held --fill-reverse $A
    # then, with every run cached:
    brown_neel_rom2d.py --stages poolbasis,validate,ranksweep,matrix --cells --rank 500 \
        --truncation 12 10 $A

Sixth pass (field-frame FOM, ``--preconditioner field_frame`` is the default; the (10, 8) keys
were first copied to ``rom_10_8`` with ``--stages archive --truncation 10 8``)::

    brown_neel_rom2d.py --stages speedup --truncation 10 8 $A --rtol 1e-7 --bdf-order 3
    brown_neel_rom2d.py --stages archive --truncation 10 8 $A
    # (12, 10): the two fill commands above, then the poolbasis,... command above
    A6=${A/--rom-rtol 1e-7/--rom-rtol 1e-6}
    brown_neel_rom2d.py --stages validate --cells --use-rank 400 --truncation 12 10 $A6 \
        --out r400.json
    brown_neel_rom2d.py --stages speedup --cells --use-rank 400 --truncation 12 10 $A6 \
        --rtol 1e-7 --bdf-order 3 --speedup-positions 5 --out r400.json
    # (merged into the main JSON as rom_12_10_r400_rtol1e-6)
    # is (14, 12) converged at the corner?
    brown_neel_rom2d.py --stages dynamics --rtol 1e-6 --bdf-order 3 --dynamic-truncations 12 10 \
        --dynamic-truncations 14 12 --dynamic-truncations 16 14 --dynamics-position -12 -12 0 \
        --dynamics-key truncation_dynamics_corner_16_14_r1e-6 $A
    # (14, 12) training and references: the fill commands with --truncation 14 12, then
    brown_neel_rom2d.py --stages archive --truncation 12 10 $A
    brown_neel_rom2d.py --stages poolbasis,validate --cells --rank 500 --truncation 14 12 $A
    brown_neel_rom2d.py --stages speedup --cells --truncation 14 12 $A --rtol 1e-7 --bdf-order 3 \
        --speedup-positions 3

Seventh pass (field-frame ROM, ``--frame``; the lab-frame (14, 12) keys first copied to
``rom_14_12_lab``)::

    brown_neel_rom2d.py --stages archive --truncation 14 12 --archive-key rom_14_12_lab $A
    brown_neel_rom2d.py --frame --stages poolbasis --cells --rank 300 --truncation 14 12 $A
    brown_neel_rom2d.py --frame --stages validate,ranksweep,speedup,matrix --cells --use-rank 100 \
        --sweep-ranks 40 50 60 80 100 150 200 300 --truncation 14 12 $A --rtol 1e-7 \
        --bdf-order 3 --speedup-positions 5
    # (poolbasis reads the training runs cached at rtol 1e-6; --rtol 1e-7 is the back-to-back
    #  FOM's)
    # 3-D, field frame and lab at (10, 8) and the field frame at (6, 4), merged afterwards:
    brown_neel_rom2d.py --frame --stages 3dpool,transfer3d --truncation-3d 10 8 --rank 300 \
        --held-out-3d 10 --held-out-b 6 --bdf-order 3 $A --out f3d108.json
    brown_neel_rom2d.py --stages 3dpool --truncation-3d 10 8 --rank 500 --held-out-3d 10 \
        --bdf-order 3 $A --out f3d108.json
    brown_neel_rom2d.py --frame --stages 3dpool,transfer3d --truncation-3d 6 4 --rank 300 \
        --held-out-3d 10 --held-out-b 6 $A --out f3d64.json
    # lab-frame 19 x 19 matrix at (14, 12), r = 500, for the full-grid cross-check:
    brown_neel_rom2d.py --stages matrix --truncation 14 12 $A --out labmatrix.json
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    # one BLAS thread per process: threaded BLAS on r × r matrices on a loaded 2-core machine
    # made r = 100 reduced runs 13× slower (81 s vs 6.2 s, measured)
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as spla

import llgfem  # noqa: F401  (must precede petsc4py)
from llgfem.brownneel import ParticleParameters, TSSettings, langevin  # noqa: E402
from llgfem.brownneel.frame_rom import frame_reductor, reduce_frame, to_frame  # noqa: E402
from llgfem.brownneel.lissajous import (  # noqa: E402
    LissajousDrive,
    LissajousModel,
    coefficients,
    lissajous_time_grid,
    offset_field,
    signal_nrmse,
)
from llgfem.brownneel.lissajous_rom import (  # noqa: E402
    mass_normalised,
    reductor_for,
    rom_system_matrix,
    select_positions,
    simulate_reduced,
)
from llgfem.rom import pod  # noqa: E402
from llgfem.rom.parametric import greedy_selection  # noqa: E402

OUT = Path("outputs/bench")
CACHE = Path("outputs/bench/cache/brown_neel_rom2d")
PARTICLE = ParticleParameters(d_c=20e-9, K=6e3)
BASE = 2.5e6
GRADIENT = (-1.0, -1.0, 2.0)
WARMUP_SAMPLES = 26
FRAME = False  # --frame: field-frame ROM (llgfem.brownneel.frame_rom), bases "<case>_frame"
CASES = {
    "2d": {"dividers": (102, 96, 1), "amplitudes": (12e-3, 12e-3, 0.0), "grid": (19, 19, 1),
           "train_grid": (5, 5, 1)},
    "3d": {"dividers": (102, 96, 136), "amplitudes": (12e-3, 12e-3, 6e-3), "grid": (7, 7, 3),
           "train_grid": (2, 2, 2)},
}


def grid_positions(case: dict, shape) -> np.ndarray:
    """Pixel centres of the field of view |G_a x_a| <= A_a (z = 0 for a 2-D drive)."""
    axes = []
    for a in range(3):
        if case["amplitudes"][a] == 0:
            axes.append(np.zeros(1))
            continue
        half = case["amplitudes"][a] / abs(GRADIENT[a])
        n = shape[a]
        axes.append(-half + (np.arange(n) + 0.5) * 2 * half / n)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in mesh], axis=1)


def corner_positions(case: dict, shape) -> np.ndarray:
    """Candidate grid including the borders of the field of view."""
    axes = []
    for a in range(3):
        if case["amplitudes"][a] == 0:
            axes.append(np.zeros(1))
            continue
        half = case["amplitudes"][a] / abs(GRADIENT[a])
        axes.append(np.linspace(-half, half, shape[a]))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in mesh], axis=1)


def setup(case_key: str, args, particle: ParticleParameters = PARTICLE):
    case = CASES[case_key]
    drive = LissajousDrive.from_dividers(BASE, case["dividers"], case["amplitudes"])
    b_max = float(np.linalg.norm(2 * np.abs(case["amplitudes"])))  # offset <= amplitude
    trunc = args.truncation if case_key == "2d" else args.truncation_3d
    model = LissajousModel(particle, *trunc, b_max=b_max)
    return (case, drive, model, *time_grid(args, drive))


def time_grid(args, drive, phase: int | None = None) -> tuple[np.ndarray, int]:
    """Warm-up + window samples, starting ``phase`` samples (default ``--phase-samples``)
    into the repetition; (t, first recorded sample)."""
    t, start = lissajous_time_grid(drive, BASE, WARMUP_SAMPLES / BASE, args.window)
    phase = getattr(args, "phase_samples", 0) if phase is None else phase
    return t + phase / BASE, start


def fom_settings(args, rtol: float) -> TSSettings:
    """FOM integrator: adaptive BDF of order ``--bdf-order`` (2 by default) at ``rtol``, linear
    solves by ``--preconditioner`` (field frame by default)."""
    return TSSettings(rtol=rtol, atol=1e-10, order=getattr(args, "bdf_order", 2),
                      preconditioner=getattr(args, "preconditioner", "field_frame"))


def fom_cached(model, drive, t, settings, key: str):
    """FOM run (states, signals, seconds) cached on disk."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}.npz"
    if path.exists():
        d = np.load(path)
        cpu = float(d["cpu_seconds"]) if "cpu_seconds" in d else float("nan")
        return {"y": d["y"], "dm": d["dm"], "m": d["m"], "seconds": float(d["seconds"]),
                "steps": int(d["steps"]), "cpu_seconds": cpu,
                "bdf_order": int(d["bdf_order"]) if "bdf_order" in d else 2,
                "preconditioner": str(d["preconditioner"]) if "preconditioner" in d else "lu"}
    c0 = time.process_time()
    run = model.simulate(drive, t, settings)
    res = {"y": run.y, "dm": run.dm, "m": run.m, "seconds": run.seconds, "steps": run.steps,
           "cpu_seconds": time.process_time() - c0, "bdf_order": settings.order,
           "preconditioner": settings.preconditioner}
    np.savez(path, **res)
    return res


def tag(case_key, model, args, x, rtol: float | None = None) -> str:
    n_m, n_n = model.truncation
    rtol = args.rtol if rtol is None else rtol
    xs = "_".join(f"{v * 1e3:+.3f}" for v in x)
    if getattr(args, "phase_samples", 0):
        xs += f"_p{args.phase_samples}"
    # "L": steps land on the samples (runs before that evaluated F y at interpolated states)
    return f"{case_key}_{n_m}_{n_n}_w{args.window:g}_r{rtol:g}_L_{xs}"


def train(case_key: str, args, out: dict) -> dict:
    case, drive, model, t, start = setup(case_key, args)
    settings = fom_settings(args, args.rtol)
    shape = case["train_grid"]
    if args.train_grid and case_key == "2d":
        shape = (args.train_grid, args.train_grid, 1)
    cands = corner_positions(case, shape)
    t0 = time.perf_counter()
    training = select_positions(
        model, drive, GRADIENT, cands, t, settings, rom_settings=rom_settings(args),
        max_selected=args.max_train if case_key == "2d" else args.max_train_3d,
        tol=args.greedy_tol, rank=args.rank, energy=1 - args.pod_tol,
        fom_states=lambda d, x: fom_cached(model, d, t, settings,
                                           tag(case_key, model, args, x))["y"])
    seconds = time.perf_counter() - t0
    g = training.greedy
    save_basis(case_key, model, g.pod.modes)
    s = g.pod.singular_values
    return {"truncation": list(model.truncation), "unknowns": model.size, "r": g.pod.rank,
            "training_positions": len(g.selected),
            "training_position_list": [cands[i].tolist() for i in g.selected],
            "candidate_grid": list(shape),
            "greedy_history": g.history, "candidates": len(cands),
            "pod_discarded_energy": g.pod.discarded_energy,
            "singular_values_head": (s[:120] / s[0]).tolist(),
            "offline_seconds": seconds, "quadrature_nodes": model.quad.size}


def cell_centres(case: dict) -> np.ndarray:
    """Centres of the 4 × 4 cells of the 5 × 5 border grid (±3, ±9 mm for the 2-D case)."""
    g = corner_positions(case, (9, 9, 1))
    odd = np.isclose(np.abs(g[:, :2]) / (case["amplitudes"][0] / 4 / abs(GRADIENT[0])) % 2, 1)
    return g[odd.all(axis=1)]


def training_pool(case: dict, model, args, out: dict) -> np.ndarray:
    """Training candidates with a cached FOM run: the 5 × 5 grid over the field of view
    (borders included) and the previous training positions (none is a 19 × 19 pixel centre
    except the centre, which the validation skips)."""
    pool = [*corner_positions(case, (5, 5, 1)), *map(np.array, out.get(
        "training_position_list", []))]
    if getattr(args, "cells", False):  # + the centres of the 4 x 4 cells (uniform refinement)
        pool += list(cell_centres(case))
    uniq = []
    for x in pool:
        if not any(np.allclose(x, y) for y in uniq):
            uniq.append(np.asarray(x, float))
    cached = [x for x in uniq if (CACHE / f"{tag('2d', model, args, x)}.npz").exists()]
    return np.array(cached)


def greedy_error(args, out: dict) -> dict:
    """Greedy over the cached training pool with the TRUE error indicator: the NRMSE of the
    ROM's receive signals against the cached FOM run at every unselected candidate; POD of
    the mass-normalised snapshots of the selected positions (rank <= ``--rank``)."""
    case, drive, model, t, start = setup("2d", args)
    settings = fom_settings(args, args.rtol)
    cands = training_pool(case, model, args, out)
    axes = drive.driven_axes
    foms = [fom_cached(model, drive.with_offset(offset_field(GRADIENT, x)), t, settings,
                       tag("2d", model, args, x)) for x in cands]

    def snapshots(i: int) -> np.ndarray:
        d = drive.with_offset(offset_field(GRADIENT, cands[i]))
        y = mass_normalised(model, d, t, foms[i]["y"])
        return to_frame(model, d, t, y) if FRAME else y

    def indicator(rom, i: int) -> float:
        d = drive.with_offset(offset_field(GRADIENT, cands[i]))
        try:
            run = simulate_reduced(model, rom, d, t, rom_settings(args), keep_states=False)
        except RuntimeError:
            return float("inf")
        e = signal_nrmse(run.dm[start:, axes], foms[i]["dm"][start:, axes])
        print(f"  candidate {np.round(cands[i] * 1e3, 1)} mm: NRMSE {e:.2e}", flush=True)
        return e

    first = int(np.argmin(np.linalg.norm(cands, axis=1)))
    t0 = time.perf_counter()
    reductor = frame_reductor(model) if FRAME else reductor_for(model, residual=False)
    g = greedy_selection(len(cands), snapshots, indicator, reductor,
                         first, args.max_train, args.greedy_tol, args.rank, 1 - args.pod_tol)
    save_basis(rom_name("2d"), model, g.pod.modes)
    s = g.pod.singular_values
    return {"truncation": list(model.truncation), "unknowns": model.size, "r": g.pod.rank,
            "training_positions": len(g.selected),
            "training_position_list": [cands[i].tolist() for i in g.selected],
            "candidate_pool": [x.tolist() for x in cands], "candidates": len(cands),
            "training_selection": f"greedy, true error, {len(g.selected)} of {len(cands)} cached "
                                  "runs" + (" (field frame)" if FRAME else ""),
            "rebasis": "final basis: POD of the greedy's selected runs (unit-mass snapshots"
                       + (", rotated into the field frame)" if FRAME else ")"),
            "greedy_indicator": "true NRMSE of the receive signals (ROM vs cached FOM) at "
                                "every unselected candidate; snapshots scaled to unit mass",
            "greedy_history": g.history, "pod_discarded_energy": g.pod.discarded_energy,
            "singular_values_head": (s[:120] / s[0]).tolist(),
            "offline_seconds_excluding_fom": time.perf_counter() - t0,
            "quadrature_nodes": model.quad.size,
            "quadrature_note": "the quadrature only maps states to outputs (psi = G U a at the "
                               "samples); the time stepping uses the K affine r x r terms"}


def rom_settings(args) -> TSSettings:
    """Reduced runs: the FOM's tolerances and a step limit (a failed run is reported)."""
    return TSSettings(rtol=args.rom_rtol or args.rtol, atol=1e-10,
                      max_steps=args.rom_max_steps)


def reference_rtol(args) -> float:
    """rtol of the held-out FOM references.  With the steps landing on the samples, BDF2 at
    1e-6 is 4.6e-5 (10, 8) / 4.7e-5 (12, 10) from 1e-7 in the receive signals and only ~10 %
    cheaper, so the references use 1e-7 (before the landing, 1e-6 was ~5e-4 off)."""
    return args.reference_rtol or args.rtol


def rebasis(case_key: str, args, out: dict) -> dict:
    """POD of the (cached) FOM runs at the selected training positions, each snapshot scaled
    to unit mass (``mass_normalised``), rank <= ``--rank``, discarded energy ``--pod-tol``."""
    case, drive, model, t, start = setup(case_key, args)
    settings = fom_settings(args, args.rtol)
    blocks = []
    for x in out["training_position_list"]:
        d = drive.with_offset(offset_field(GRADIENT, x))
        y = fom_cached(model, d, t, settings, tag(case_key, model, args, np.array(x)))["y"]
        y = mass_normalised(model, d, t, y)
        blocks.append(to_frame(model, d, t, y) if FRAME else y)
    basis = pod(np.hstack(blocks), rank=args.rank, energy=1 - args.pod_tol)
    save_basis(rom_name(case_key), model, basis.modes)
    s = basis.singular_values
    return {"r": basis.rank, "pod_discarded_energy": basis.discarded_energy,
            "singular_values_head": (s[:120] / s[0]).tolist(),
            "rebasis": "final basis: POD of the mass-normalised snapshots of the greedy's "
                       "training positions (the greedy itself ran with unnormalised "
                       "snapshots)"}


def truncation_file(name: str, model) -> Path:
    """Cache file ``name`` of this truncation (results of several truncations coexist)."""
    n_m, n_n = model.truncation
    return CACHE / f"{name}_{n_m}_{n_n}.npz"


def basis_file(name: str, model) -> Path:
    """Cached POD basis ``name`` of this truncation."""
    return truncation_file(f"basis_{name}", model)


def save_basis(name: str, model, modes: np.ndarray) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(basis_file(name, model), modes=modes, truncation=np.array(model.truncation))


def rom_name(case_key: str) -> str:
    """Basis name of ``case_key`` (``<case>_frame`` for the field-frame ROM)."""
    return f"{case_key}_frame" if FRAME else case_key


def load_rom(case_key, model, rank: int | None = None):
    """ROM from the cached basis; ``rank`` keeps the leading POD modes (a rank-``rank`` POD).
    With ``--frame`` the field-frame ROM of the field-frame basis."""
    d = np.load(basis_file(rom_name(case_key), model))
    modes = d["modes"] if not rank else d["modes"][:, :rank]
    if FRAME:
        return reduce_frame(model, modes)
    return reductor_for(model, residual=False).reduce(modes)


def validate(case_key: str, args, out: dict, rom=None, quiet: bool = False,
             ctx: tuple | None = None) -> dict:
    """ROM vs cached FOM references at the held-out positions (``ctx``: a ``setup`` result to
    reuse, e.g. by the rank sweep)."""
    case, drive, model, t, start = ctx or setup(case_key, args)
    settings = fom_settings(args, reference_rtol(args))
    rom = rom or load_rom(case_key, model, args.use_rank)
    held = held_out_picks(case, args.held_out if case_key == "2d" else args.held_out_3d)
    axes = drive.driven_axes
    rows = []
    for x in held:
        d = drive.with_offset(offset_field(GRADIENT, x))
        key = tag(case_key, model, args, x, settings.rtol)
        if args.cached_only and not (CACHE / f"{key}.npz").exists():
            continue
        train = np.array(out.get("training_position_list", [[np.inf] * 3]))
        if np.min(np.linalg.norm(train - x, axis=1)) < 1e-9:
            continue  # a training position is not held out
        fom = fom_cached(model, d, t, settings, key)
        try:
            r = simulate_reduced(model, rom, d, t, rom_settings(args), keep_states=False)
        except RuntimeError as err:  # step limit: report as a failure, keep going
            rows.append({"position": x.tolist(), "nrmse": float("inf"),
                         "fom_seconds": fom["seconds"], "rom_seconds": float("nan"),
                         "error": str(err)})
            continue
        e = signal_nrmse(r.dm[start:, axes], fom["dm"][start:, axes])
        rows.append({"position": x.tolist(), "nrmse": e, "fom_seconds": fom["seconds"],
                     "fom_cpu_seconds": fom["cpu_seconds"],
                     "rom_seconds": r.seconds, "fom_steps": fom["steps"], "rom_steps": r.steps,
                     "fom_bdf_order": fom["bdf_order"],
                     "fom_preconditioner": fom["preconditioner"],
                     "rom_cpu_seconds": r.info.get("cpu_seconds"),
                     "nrmse_moment": signal_nrmse(r.m[start:, axes], fom["m"][start:, axes])})
        if not quiet:
            print(f"[{case_key}] x = {np.round(x * 1e3, 2)} mm: NRMSE {e:.2e}, FOM "
                  f"{fom['seconds']:.1f} s, ROM {r.seconds:.2f} s", flush=True)
    speed = [row["fom_seconds"] / row["rom_seconds"] for row in rows
             if np.isfinite(row["rom_seconds"])]
    speed_cpu = [row["fom_cpu_seconds"] / row["rom_cpu_seconds"] for row in rows
                 if np.isfinite(row["rom_seconds"]) and np.isfinite(row["fom_cpu_seconds"])]
    speed_cpu_median = float(np.median(speed_cpu)) if speed_cpu else float("nan")
    return {"held_out": rows, "max_nrmse_held_out": max(r["nrmse"] for r in rows),
            "median_nrmse_held_out": float(np.median([r["nrmse"] for r in rows])),
            "speedup_median_vs_cached_fom_wall": float(np.median(speed)),
            "speedup_median_vs_cached_fom_cpu": speed_cpu_median,
            "speedup_median": speed_cpu_median,
            "speedup_how": "median over the held-out positions of the CPU time of the cached "
                           "reference FOM run (rtol --reference-rtol) / the CPU time of the "
                           "reduced run; both one process, one BLAS thread, same machine",
            "rom_rank": rom.rank, "fom_reference_rtol": settings.rtol,
            "rom_rtol": rom_settings(args).rtol,
            "rom_frame": "field frame (co-rotating basis)" if FRAME else "lab"}


def speedup(args, out: dict) -> dict:
    """FOM and ROM back to back at the first ``--speedup-positions`` held-out positions (fresh
    FOM runs, one BLAS thread): wall and CPU (process) time of each."""
    case, drive, model, t, start = setup("2d", args)
    settings = fom_settings(args, args.rtol)
    rom = load_rom("2d", model, args.use_rank)
    axes = drive.driven_axes
    rows = []
    for row in out["held_out"][:args.speedup_positions]:
        d = drive.with_offset(offset_field(GRADIENT, row["position"]))
        w0, c0 = time.perf_counter(), time.process_time()
        fom = model.simulate(d, t, settings, keep_states=False)
        fw, fc = time.perf_counter() - w0, time.process_time() - c0
        w0, c0 = time.perf_counter(), time.process_time()
        r = simulate_reduced(model, rom, d, t, rom_settings(args), keep_states=False)
        rw, rc = time.perf_counter() - w0, time.process_time() - c0
        rows.append({"position": row["position"], "fom_seconds": fw, "fom_cpu_seconds": fc,
                     "rom_seconds": rw, "rom_cpu_seconds": rc, "speedup_wall": fw / rw,
                     "speedup_cpu": fc / rc, "fom_steps": fom.steps, "rom_steps": r.steps,
                     "fom_preconditioner": settings.preconditioner,
                     "nrmse": signal_nrmse(r.dm[start:, axes], fom.dm[start:, axes])})
        print(f"speedup {rows[-1]}", flush=True)
    return {"speedup_back_to_back": rows,
            "speedup_median": float(np.median([x["speedup_cpu"] for x in rows])),
            "speedup_median_wall": float(np.median([x["speedup_wall"] for x in rows])),
            "speedup_note": "speedup_median = median ratio of CPU (process) times of FOM and "
                            "ROM run back to back (one BLAS thread); the machine was shared "
                            "(load average 10-16 on 2 cores), so wall ratios "
                            "(speedup_median_wall) are noisier"}


def full_repetition(args, out: dict) -> dict:
    """One ROM run over warm-up + the full repetition at one held-out position (no FOM
    reference: a full-repetition FOM run was out of reach); times and the extrapolated ROM
    matrix time."""
    import copy

    full = copy.copy(args)
    full.window = 1.0
    case, drive, model, t, start = setup("2d", full)
    rom = load_rom("2d", model, args.use_rank)
    x = out["held_out"][0]["position"]
    d = drive.with_offset(offset_field(GRADIENT, x))
    w0, c0 = time.perf_counter(), time.process_time()
    r = simulate_reduced(model, rom, d, t, rom_settings(args), keep_states=False)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n = int(np.prod(CASES["2d"]["grid"]))
    return {"full_repetition_rom": {
        "position": x, "samples": int(t.size), "rom_seconds": wall, "rom_cpu_seconds": cpu,
        "rom_steps": r.steps, "finite": bool(np.all(np.isfinite(r.dm))), "rom_rank": rom.rank,
        "matrix_19x19_estimate_seconds_2_ranks": cpu * n / 2,
        "how": "CPU time of this run x 361 positions / 2 ranks (assumes two free cores)"}}


def matrix_worker(args) -> None:
    from mpi4py import MPI

    case_key = "2d"
    case, drive, model, t, start = setup(case_key, args)
    rom = load_rom(case_key, model, args.use_rank)
    grid = grid_positions(case, case["grid"])
    res = rom_system_matrix(model, rom, drive, GRADIENT, grid, t, start,
                            rom_settings(args), MPI.COMM_WORLD)
    if MPI.COMM_WORLD.rank == 0:
        np.savez(truncation_file(rom_name("system_matrix_2d"), model), signals=res["signals"],
                 positions=grid)
        Path(args.worker).write_text(json.dumps({
            "seconds": res["seconds"], "ranks": MPI.COMM_WORLD.size,
            "cpu_seconds": res["cpu_seconds"],
            "per_position_median": float(np.median([s for _, s in res["per_position"]])),
            "rank": rom.rank,
            "shape": list(res["signals"].shape)}))


def matrix(args, out: dict) -> dict:
    res = run_two_ranks_with(str(Path(__file__).resolve()), OUT / "brown_neel_rom2d.json",
                             args)
    sm = {"grid": [19, 19], "positions": int(np.prod(CASES["2d"]["grid"])),
          "ranks": res["ranks"], "rom_seconds": res["seconds"],
          "rom_cpu_seconds_max_rank": res["cpu_seconds"],
          "rom_seconds_per_position_median": res["per_position_median"],
          "window_fraction_of_repetition": args.window, "rom_rank": res.get("rank")}
    return {"system_matrix": {**sm, **fom_estimate(out)}}


def fom_estimate(out: dict) -> dict:
    """FOM time of the same matrix, extrapolated from the held-out FOM runs (serial)."""
    secs = [r["fom_cpu_seconds"] if np.isfinite(r.get("fom_cpu_seconds", np.nan))
            else r["fom_seconds"] for r in out.get("held_out", [])]
    n = int(np.prod(CASES["2d"]["grid"]))
    per = float(np.median(secs)) if secs else float("nan")
    return {"fom_seconds_estimated_or_measured": {
        "kind": "estimated", "seconds": per * n / 2,
        "how": f"median FOM time of {len(secs)} held-out positions ({per:.1f} s per position, "
               f"one process, CPU time where recorded) x {n} positions / 2 ranks (not run)"}}


def run_two_ranks_with(script, out, args):
    """``run_two_ranks`` with this run's truncation/window passed to the workers."""
    import os
    import subprocess

    tmp = out.with_suffix(".2ranks.json")
    mpiexec = Path(sys.executable).with_name("mpiexec")
    cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", "2", sys.executable, script,
           "--worker", str(tmp), "--truncation", *map(str, args.truncation),
           "--window", str(args.window), "--rtol", str(args.rtol),
           "--rom-rtol", str(rom_settings(args).rtol), "--use-rank", str(args.use_rank or 0)]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--frame"] if FRAME else []
    subprocess.run(cmd, check=True, env=os.environ.copy())
    data = json.loads(tmp.read_text())
    tmp.unlink()
    return data


def check(args, out: dict) -> dict:
    """Static in-plane fields |B| = 12, 17, 24, 34 mT along (1, −1, 0)/√2 (34 mT = the largest
    |B| of the scan): |⟨m⟩ − L(|ξ|) ξ/|ξ]|_max per truncation from the null vector of F(ξ)
    (the equilibrium of the coupled model is Boltzmann, and its m-marginal is Langevin in ξ
    because ∫ e^{σ(m·n)²} dn does not depend on m), and the leak rate of that mode."""
    rows = []
    for trunc in args.check_truncations:
        model = LissajousModel(PARTICLE, *trunc, b_max=0.034)
        for bmag in (0.012, 0.017, 0.024, 0.034):
            xi = PARTICLE.xi_per_tesla * bmag * np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
            ref = langevin(np.linalg.norm(xi)) * xi / np.linalg.norm(xi)
            c = coefficients(model.table, xi[None], np.zeros((1, 3)), np.zeros(1))[0]
            f = sum(ck * a for ck, a in zip(c, model.matrices(), strict=True)).tocsc()
            lam, v = spla.eigs(f, k=1, sigma=0.0)
            m, _, _ = model.quad.moments(xi[None], model.quad.g @ np.real(v))
            rows.append({"truncation": list(trunc), "unknowns": model.size, "B_T": bmag,
                         "langevin": float(np.linalg.norm(ref)),
                         "leak_rate_per_tau_n": float(-np.real(lam[0])),
                         "moment_error": float(np.abs(m[0] - ref).max())})
            print(f"check {trunc}: {rows[-1]}", flush=True)
    return {"truncation_check": {"direction": [1, -1, 0], "rows": rows}}


def rank_sweep(args, out: dict) -> dict:
    """Held-out NRMSE for the leading r modes of the cached 2-D basis (the rank-r POD of the
    same snapshots), r in ``--sweep-ranks``: what r the accuracy needs and what it costs."""
    ctx = setup("2d", args)
    model = ctx[2]
    rows = []
    for r in args.sweep_ranks:
        res = validate("2d", args, out, rom=load_rom("2d", model, r), quiet=True, ctx=ctx)
        e = [row["nrmse"] for row in res["held_out"]]
        cpu = [row["rom_cpu_seconds"] for row in res["held_out"]]
        rows.append({"r": res["rom_rank"], "max_nrmse": max(e), "median_nrmse": float(np.median(e)),
                     "count_le_1e-3": int(sum(x <= 1e-3 for x in e)), "positions": len(e),
                     "all_finite": bool(np.all(np.isfinite(e))),
                     "rom_cpu_seconds_median": float(np.nanmedian(cpu)),
                     "speedup_median": res["speedup_median"]})
        print(f"rank sweep {rows[-1]}", flush=True)
    return {"rank_sweep": {"window_fraction_of_repetition": args.window, "rows": rows}}


def pool3d(args, out: dict) -> dict:
    """3-D case: POD of the FOM runs at every position of the ``--train-grid-3d`` grid (borders
    included), validated at ``--held-out-3d`` pixel centres of the 7 × 7 × 3 grid against FOM
    runs at ``--reference-rtol``."""
    case, drive, model, t, start = setup("3d", args)
    pool = corner_positions(case, tuple(args.train_grid_3d))  # FOM runs cached, else computed
    res = {"truncation": list(model.truncation), "unknowns": model.size,
           "training_position_list": pool.tolist(), "training_positions": len(pool),
           "training_selection": f"every position of the {tuple(args.train_grid_3d)} grid "
                                 "with borders (no greedy)",
           "candidate_grid": list(args.train_grid_3d)}
    res.update(rebasis("3d", args, res))
    res.update(validate("3d", args, res))
    res["geometry"] = {"dividers": list(case["dividers"]), "amplitudes_T": list(case["amplitudes"]),
                       "repetition_s": drive.period, "grid": list(case["grid"]),
                       "window_fraction_of_repetition": args.window,
                       "receive_signals": "d<m>/dt on x, y, z (NRMSE over the three channels)"}
    return {"case_3d_frame" if FRAME else "case_3d": res}


def transfer3d(args, out: dict) -> dict:
    """Across particles in the 3-D case: the training snapshots of the 20 nm / 6 kJ/m³ particle
    mapped to particle B (``--particle-b``) by ``boltzmann_transfer_3d``, POD, ROM of B; against
    FOM runs of B at the first ``--held-out-b`` held-out positions.  For comparison the basis
    of A used directly for B (no transfer)."""
    from llgfem.brownneel.transfer import boltzmann_transfer_3d

    pb = ParticleParameters(d_c=args.particle_b[0] * 1e-9, K=args.particle_b[1] * 1e3)
    case, drive, model_a, t, start = setup("3d", args)
    _, _, model_b, _, _ = setup("3d", args, pb)
    settings = fom_settings(args, args.rtol)
    key3 = "case_3d_frame" if FRAME else "case_3d"
    train = np.array(out[key3]["training_position_list"])
    blocks, c0 = [], time.process_time()
    for x in train:
        d = drive.with_offset(offset_field(GRADIENT, x))
        y = fom_cached(model_a, d, t, settings, tag("3d", model_a, args, x))["y"]
        yb = boltzmann_transfer_3d(model_a, model_b, mass_normalised(model_a, d, t, y),
                                   d.fields(t))
        yb = mass_normalised(model_b, d, t, yb)
        blocks.append(to_frame(model_b, d, t, yb) if FRAME else yb)
    transfer_cpu = time.process_time() - c0
    basis = pod(np.hstack(blocks), rank=args.rank, energy=1 - args.pod_tol)
    save_basis(rom_name("3d_b"), model_b, basis.modes)
    modes_a = np.load(basis_file(rom_name("3d"), model_a))["modes"]
    if FRAME:
        roms = {"boltzmann_transfer": reduce_frame(model_b, basis.modes),
                "direct (basis of A)": reduce_frame(model_b, modes_a)}
    else:
        reduce_b = reductor_for(model_b, residual=False)
        roms = {"boltzmann_transfer": reduce_b.reduce(basis.modes),
                "direct (basis of A)": reduce_b.reduce(modes_a)}
    ref = fom_settings(args, reference_rtol(args))
    held = held_out_picks(case, args.held_out_3d)[:args.held_out_b]
    label = f"3dB{args.particle_b[0]:g}_{args.particle_b[1]:g}"
    rows = []
    for x in held:
        d = drive.with_offset(offset_field(GRADIENT, x))
        fom = fom_cached(model_b, d, t, ref, tag(label, model_b, args, x, ref.rtol))
        row = {"position": x.tolist(), "fom_cpu_seconds": fom["cpu_seconds"]}
        for name, rom in roms.items():
            try:
                r = simulate_reduced(model_b, rom, d, t, rom_settings(args), keep_states=False)
                row[name] = signal_nrmse(r.dm[start:], fom["dm"][start:])
                row[f"{name} rom_cpu_seconds"] = r.info.get("cpu_seconds")
            except RuntimeError as err:
                row[name] = float("inf")
                row[f"{name} error"] = str(err)
        rows.append(row)
        print(f"transfer3d {row}", flush=True)
    return {"transfer_3d": {
        "source": {"d_c_nm": 20, "K_kJ_m3": 6}, "target": {"d_c_nm": args.particle_b[0],
                                                            "K_kJ_m3": args.particle_b[1]},
        "r": basis.rank, "transfer_cpu_seconds": transfer_cpu, "rows": rows,
        "max_nrmse_transfer": max(r["boltzmann_transfer"] for r in rows),
        "max_nrmse_direct": max(r["direct (basis of A)"] for r in rows),
        "how": "no FOM run of particle B in the training; B's FOM only as held-out reference"}}


def phase_check(args, model, drive, rom, label: str) -> list[dict]:
    """NRMSE of ``rom`` against FOM runs (rtol ``--reference-rtol``) whose warm-up + window
    start ``--phases`` samples into the repetition, at the first ``--phase-positions``
    held-out positions."""
    import copy

    a = copy.copy(args)
    ref = fom_settings(args, reference_rtol(args))
    rows = []
    for p in args.phases:
        a.phase_samples = p
        t, start = time_grid(a, drive)
        for x in held_out_picks(CASES["2d"], args.held_out)[:args.phase_positions]:
            d = drive.with_offset(offset_field(GRADIENT, x))
            fom = fom_cached(model, d, t, ref, tag("2d", model, a, x, ref.rtol))
            r = simulate_reduced(model, rom, d, t, rom_settings(args), keep_states=False)
            rows.append({"phase_samples": p, "position": x.tolist(), "rom_rank": rom.rank,
                         "nrmse": signal_nrmse(r.dm[start:, :2], fom["dm"][start:, :2]),
                         "fom_cpu_seconds": fom["cpu_seconds"]})
            print(f"{label} {rows[-1]}", flush=True)
    return rows


def phase_windows(args, out: dict) -> dict:
    """Does the window basis generalise in time?  The ROM (trained on windows starting at t = 0)
    against later stretches of the Lissajous curve (``phase_check``)."""
    _, drive, model, _, _ = setup("2d", args)
    rows = phase_check(args, model, drive, load_rom("2d", model, args.use_rank), "phase")
    return {"phase_windows": {"rows": rows, "samples_per_repetition": int(round(
        drive.period * BASE)), "how": "warm-up of 26 samples then the window, both shifted"}}


def phase_training(args, out: dict) -> dict:
    """Training windows along the curve: POD of the phase-0 training pool (``--cells``) plus FOM
    windows starting ``--train-phases`` samples into the repetition at the 3 × 3 border grid;
    then the phase-0 held-out validation and the ``--phases`` check with that basis."""
    import copy

    ctx = setup("2d", args)
    case, drive, model, _, _ = ctx
    settings = fom_settings(args, args.rtol)
    blocks, used = [], []
    for p in [0, *args.train_phases]:
        a = copy.copy(args)
        a.phase_samples = p
        tp, _ = time_grid(a, drive)
        pos = training_pool(case, model, a, {}) if p == 0 else corner_positions(case, (3, 3, 1))
        for x in pos:
            d = drive.with_offset(offset_field(GRADIENT, x))
            y = fom_cached(model, d, tp, settings, tag("2d", model, a, x))["y"]
            blocks.append(mass_normalised(model, d, tp, y))
            used.append({"phase_samples": p, "position": np.asarray(x).tolist()})
    basis = pod(np.hstack(blocks), rank=args.rank, energy=1 - args.pod_tol)
    save_basis("2d_phases", model, basis.modes)
    rom = reductor_for(model, residual=False).reduce(basis.modes)
    res = validate("2d", args, {"training_position_list": out["training_position_list"]},
                   rom=rom, quiet=True, ctx=ctx)
    rows = phase_check(args, model, drive, rom, "phase-trained")
    e = [row["nrmse"] for row in res["held_out"]]
    return {"phase_training": {
        "train_phases": [0, *args.train_phases], "training_runs": len(used), "runs": used,
        "r": basis.rank, "held_out_phase0_max": max(e),
        "held_out_phase0_median": float(np.median(e)),
        "held_out_phase0_count_le_1e-3": int(sum(v <= 1e-3 for v in e)),
        "rom_cpu_seconds_median": float(np.median([row["rom_cpu_seconds"]
                                                   for row in res["held_out"]])),
        "phase_rows": rows}}


def held_out_picks(case: dict, n: int) -> np.ndarray:
    """The held-out pixel centres: a seeded choice of ``n`` of the 19 × 19 grid."""
    grid = grid_positions(case, case["grid"])
    rng = np.random.default_rng(15)
    return grid[rng.choice(len(grid), size=min(n, len(grid)), replace=False)]


def truncation_dynamics(args, out: dict) -> dict:
    """Receive signals of the FOM at the first held-out position for each truncation of
    ``--dynamic-truncations`` over the recorded window, NRMSE against the finest one (the
    static check above tests the equilibrium only)."""
    import copy

    case = CASES["2d"]
    x = held_out_picks(case, args.held_out)[0]
    if args.dynamics_position:
        x = np.array(args.dynamics_position) * 1e-3
    runs = {}
    for trunc in args.dynamic_truncations:
        a = copy.copy(args)
        a.truncation = tuple(trunc)
        _, drive, model, t, start = setup("2d", a)
        d = drive.with_offset(offset_field(GRADIENT, x))
        fom = fom_cached(model, d, t, fom_settings(args, args.rtol),
                         tag("2d", model, a, x))
        runs[tuple(trunc)] = (model.size, fom)
        print(f"dynamics {trunc}: {fom['seconds']:.0f} s, {fom['steps']} steps", flush=True)
    finest = max(runs, key=lambda k: runs[k][0])
    ref = runs[finest][1]["dm"][start:, :2]
    rows = [{"truncation": list(k), "unknowns": n, "fom_seconds": f["seconds"],
             "fom_steps": f["steps"],
             "nrmse_vs_finest": signal_nrmse(f["dm"][start:, :2], ref)}
            for k, (n, f) in sorted(runs.items(), key=lambda kv: kv[1][0])]
    return {args.dynamics_key: {"position": x.tolist(), "reference": list(finest),
                                "window_fraction_of_repetition": args.window,
                                "rtol": args.rtol, "rows": rows}}


def fill_cache(args, out: dict) -> None:
    """Compute missing 2-D FOM runs (rtol ``--rtol``) of ``--fill-set`` (grid3, grid5, cells,
    held — held at ``--reference-rtol``) into the cache.  Lock files let several processes
    share the work (start one with ``--fill-reverse``); a stale lock of a killed run must be
    deleted by hand."""
    case, drive, model, t, _ = setup("2d", args)
    todo: list = []
    for name in args.fill_set:
        rtol = reference_rtol(args) if name == "held" else args.rtol
        pos = {"grid3": lambda: corner_positions(case, (3, 3, 1)),
               "grid5": lambda: corner_positions(case, (5, 5, 1)),
               "cells": lambda: cell_centres(case),
               "held": lambda: held_out_picks(case, args.held_out)}[name]()
        todo += [(x, rtol) for x in pos]
    for x, rtol in todo[::-1] if args.fill_reverse else todo:
        key = tag("2d", model, args, x, rtol)
        path, lock = CACHE / f"{key}.npz", CACHE / f"{key}.lock"
        if path.exists() or lock.exists():
            continue
        CACHE.mkdir(parents=True, exist_ok=True)
        lock.write_text(str(os.getpid()))
        try:
            run = fom_cached(model, drive.with_offset(offset_field(GRADIENT, x)), t,
                             fom_settings(args, rtol), key)
        finally:
            lock.unlink()
        print(f"fill {key}: {run['cpu_seconds']:.0f} s CPU, {run['steps']} steps", flush=True)


def pool_basis(args, out: dict) -> dict:
    """Every cached training run (no greedy selection), POD."""
    case, _, model, _, _ = setup("2d", args)
    res = {"training_position_list": [x.tolist() for x in training_pool(case, model, args, {})]}
    res["training_positions"] = len(res["training_position_list"])
    res["training_selection"] = "every cached run of the 5 x 5 border grid" + (
        " and of the centres of its 4 x 4 cells" if args.cells else "") + " (no greedy)"
    res["truncation"], res["unknowns"] = list(model.truncation), model.size
    res.update(rebasis("2d", args, res))
    return res


def case_3d(args, out: dict) -> dict:
    """The first-pass 3-D stage: residual greedy on the 2 × 2 × 2 corners, validation."""
    res = train("3d", args, out)
    res.update(validate("3d", args, out))
    res["geometry"] = {"dividers": list(CASES["3d"]["dividers"]),
                       "repetition_s": LissajousDrive.from_dividers(
                           BASE, CASES["3d"]["dividers"], CASES["3d"]["amplitudes"]).period,
                       "max_train": args.max_train_3d,
                       "amplitudes_T": list(CASES["3d"]["amplitudes"]),
                       "grid": list(CASES["3d"]["grid"])}
    return {"case_3d": res}


ROM_KEYS = ("training_position_list", "training_positions", "training_selection", "truncation",
            "unknowns", "r", "pod_discarded_energy", "singular_values_head", "rebasis",
            "held_out", "max_nrmse_held_out", "median_nrmse_held_out", "speedup_median",
            "speedup_median_wall", "speedup_back_to_back", "speedup_note", "speedup_how",
            "speedup_median_vs_cached_fom_wall", "speedup_median_vs_cached_fom_cpu", "rom_rank",
            "fom_reference_rtol", "rom_rtol", "system_matrix", "rank_sweep", "rom_frame")


def archive(args, out: dict) -> dict:
    """Copy the top-level 2-D ROM results into ``rom_<N_m>_<N_n>`` (before another
    truncation's stages overwrite them)."""
    n_m, n_n = out["truncation"]
    key = args.archive_key or f"rom_{n_m}_{n_n}"
    return {key: {k: out[k] for k in ROM_KEYS if k in out}}


STAGES = {
    "archive": archive, "check": check, "dynamics": truncation_dynamics, "greedy": greedy_error,
    "train": lambda args, out: train("2d", args, out),
    "validate": lambda args, out: validate("2d", args, out),
    "rebasis": lambda args, out: rebasis("2d", args, out),
    "matrix": matrix, "speedup": speedup, "fullrep": full_repetition, "poolbasis": pool_basis,
    "phases": phase_windows, "phasetrain": phase_training, "ranksweep": rank_sweep,
    "3dpool": pool3d, "3d": case_3d,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", default="check,train,validate,matrix,3d")
    ap.add_argument("--truncation", type=int, nargs=2, default=(6, 4))
    ap.add_argument("--truncation-3d", type=int, nargs=2, default=(4, 2))
    ap.add_argument("--check-truncations", type=int, nargs=2, action="append",
                    default=None)
    ap.add_argument("--dynamic-truncations", type=int, nargs=2, action="append",
                    default=None)
    ap.add_argument("--dynamics-position", type=float, nargs=3, default=None,
                    help="position [mm] of the dynamics stage (default: first held-out)")
    ap.add_argument("--dynamics-key", default="truncation_dynamics",
                    help="JSON key of the dynamics stage (keeps earlier comparisons)")
    ap.add_argument("--window", type=float, default=1 / 16,
                    help="recorded fraction of the repetition time")
    ap.add_argument("--rtol", type=float, default=1e-6,
                    help="FOM rtol of the training runs (and of everything else by default)")
    ap.add_argument("--reference-rtol", type=float, default=None,
                    help="FOM rtol of the held-out references")
    ap.add_argument("--rom-rtol", type=float, default=None, help="rtol of the reduced runs")
    ap.add_argument("--bdf-order", type=int, default=2, choices=(2, 3),
                    help="BDF order of new FOM runs (recorded in the cache file, not in its "
                         "name: a cached run at the same rtol is reused whatever its order)")
    ap.add_argument("--preconditioner", default="field_frame", choices=("field_frame", "lu"),
                    help="FOM linear solves: field-frame blocks (default) or the lagged LU")
    ap.add_argument("--max-train", type=int, default=4)
    ap.add_argument("--train-grid", type=int, default=3,
                    help="2-D candidate grid n x n over the field of view (borders included)")
    ap.add_argument("--greedy-tol", type=float, default=0.0)
    ap.add_argument("--rank", type=int, default=80)
    ap.add_argument("--pod-tol", type=float, default=1e-12,
                    help="discarded POD energy")
    ap.add_argument("--held-out", type=int, default=20)
    ap.add_argument("--rom-max-steps", type=int, default=100_000)
    ap.add_argument("--held-out-3d", type=int, default=8)
    ap.add_argument("--use-rank", type=int, default=None,
                    help="validate/fullrep/matrix: keep the leading modes of the cached basis")
    ap.add_argument("--sweep-ranks", type=int, nargs="+", default=[100, 150, 200, 250, 300, 400])
    ap.add_argument("--train-grid-3d", type=int, nargs=3, default=(3, 3, 3),
                    help="3-D training grid (borders included) for the stages 3dpool/transfer3d")
    ap.add_argument("--particle-b", type=float, nargs=2, default=(19.0, 7.0),
                    help="transfer3d: target particle d_c [nm], K [kJ/m^3]")
    ap.add_argument("--held-out-b", type=int, default=6)
    ap.add_argument("--phases", type=int, nargs="+", default=[0, 408, 816])
    ap.add_argument("--phase-positions", type=int, default=1)
    ap.add_argument("--train-phases", type=int, nargs="+", default=[816],
                    help="phasetrain: extra training windows (3 x 3 grid) at these phases")
    ap.add_argument("--fill-set", nargs="+", default=["grid5", "cells"],
                    choices=["grid3", "grid5", "cells", "held"],
                    help="fill: which FOM runs to compute")
    ap.add_argument("--phase-samples", type=int, default=0,
                    help="start warm-up and window this many samples into the repetition")
    ap.add_argument("--cells", action="store_true",
                    help="poolbasis: also the cached runs at the 4 x 4 cell centres")
    ap.add_argument("--speedup-positions", type=int, default=3)
    ap.add_argument("--max-train-3d", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--frame", action="store_true",
                    help="field-frame ROM (basis co-rotating with the field; llgfem.brownneel."
                         "frame_rom): poolbasis/rebasis/3dpool build '<case>_frame' bases, the "
                         "other stages use them")
    ap.add_argument("--archive-key", default=None,
                    help="archive: JSON key (default rom_<N_m>_<N_n>)")
    ap.add_argument("--worker", default=None)
    ap.add_argument("--cached-only", action="store_true",
                    help="validate: use only held-out positions whose FOM run is cached")
    ap.add_argument("--fill-reverse", action="store_true",
                    help="validate: only compute the held-out FOM runs, in reverse order")
    ap.add_argument("--out", default=None,
                    help="JSON to write (default outputs/bench/brown_neel_rom2d.json); "
                         "stage 'merge3d' copies case_3d from this file into the default one")
    args = ap.parse_args()
    global OUT, CACHE, FRAME
    FRAME = args.frame
    if args.quick:
        OUT, CACHE = OUT / "quick", CACHE / "quick"
        args.truncation, args.truncation_3d = (4, 2), (4, 2)
        args.window, args.held_out, args.held_out_3d, args.max_train = 1 / 64, 3, 2, 2
        CASES["2d"]["train_grid"] = (3, 3, 1)
        CASES["3d"]["train_grid"] = (2, 2, 2)
    if args.worker:
        matrix_worker(args)
        return
    args.dynamic_truncations = args.dynamic_truncations or [(6, 4), (8, 6), (10, 8), (12, 10)]
    args.check_truncations = args.check_truncations or [
        (6, 4), (8, 4), (10, 4), (12, 4), (14, 4), (8, 2), (8, 6), (8, 8), (8, 10), (10, 8)]
    OUT.mkdir(parents=True, exist_ok=True)
    path = Path(args.out) if args.out and "merge3d" not in args.stages else \
        OUT / "brown_neel_rom2d.json"
    out = json.loads(path.read_text()) if path.exists() else {}
    case = CASES["2d"]
    out["geometry"] = {
        "particle": {"d_c_nm": 20, "K_kJ_m3": 6}, "base_frequency_Hz": BASE,
        "dividers": list(case["dividers"][:2]), "amplitudes_T": list(case["amplitudes"][:2]),
        "gradient_T_per_m": list(GRADIENT), "fov_m": [[-0.012, 0.012], [-0.012, 0.012]],
        "repetition_s": LissajousDrive.from_dividers(BASE, *[case[k] for k in
                                                             ("dividers", "amplitudes")]).period,
        "sample_rate_Hz": BASE, "warmup_samples": WARMUP_SAMPLES,
        "window_fraction_of_repetition": args.window, "rtol": args.rtol,
        "receive_signals": "d<m_x>/dt, d<m_y>/dt (NRMSE over both channels together)"}
    for stage in args.stages.split(","):
        t0 = time.perf_counter()
        if FRAME and stage in ("train", "phases", "phasetrain", "3d"):
            raise SystemExit(f"stage {stage!r} has no field-frame variant (drop --frame)")
        if stage == "fill":  # cache only, the JSON is not touched
            fill_cache(args, out)
            continue
        if stage == "estimate":
            out.setdefault("system_matrix", {}).update(fom_estimate(out))
        elif stage == "transfer3d":
            out["case_3d_frame" if FRAME else "case_3d"].update(transfer3d(args, out))
        elif stage == "merge3d":
            out["case_3d"] = json.loads(Path(args.out).read_text())["case_3d"]
        elif stage in STAGES:
            out.update(STAGES[stage](args, out))
        else:
            raise SystemExit(f"unknown stage {stage!r}; one of {sorted(STAGES)}, fill, "
                             "estimate, transfer3d, merge3d")
        print(f"stage {stage}: {time.perf_counter() - t0:.0f} s", flush=True)
        path.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
