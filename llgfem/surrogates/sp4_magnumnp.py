"""µMAG standard problem 4 trajectories through magnum.np, in the surrogate dataset layout.

A standalone script for the optional side environment ``.venv-sp4`` (Python 3.11 + CPU PyTorch
+ PyPI ``magnumnp``; ``tools/bootstrap-sp4.sh``).  It imports neither llgfem nor DOLFINx, so run
it by path::

    .venv-sp4/bin/python llgfem/surrogates/sp4_magnumnp.py OUT.h5 --n-fields 300 ...

and read the file with :func:`llgfem.surrogates.data.read_dataset` (or through
:func:`llgfem.surrogates.sp4.generate_sp4_dataset`, which also checks the reference run).

Physics (µMAG SP4, paper 001 §3): a permalloy film 500 nm x 125 nm x 3 nm on 100 x 25 x 1
cells, ``Ms = 8e5 A/m``, ``A = 1.3e-11 J/m``, ``alpha = 0.02``; demagnetising + exchange +
Zeeman field; LLG integrated by magnum.np's adaptive RKF45.  The s-state is relaxed once at
zero field from the uniform direction ``(1, 1, 1)/sqrt(3)`` (the µMAG recipe: saturation along
[1, 1, 1], then relaxation) by magnum.np's high-damping relaxation.  Each field sample
``(|h|, a)`` (``|h|`` = ``mu0 |H|`` in mT, ``a`` in degrees from ``e_x`` in the film plane,
``h = |h| (cos a, sin a, 0)``) then drives the LLG equation from the s-state for ``T`` (1 ns),
sampled at ``s`` equidistant times ``t_j = j T/(s - 1)`` (``t_0 = 0`` is the s-state).

File layout: that of :mod:`llgfem.surrogates.data` (``/D (n, s, 2 + 3N)`` with tags
``h_abs`` [mT], ``angle_deg`` and the cell magnetisations in component blocks, ``/times`` [s],
``/coordinates (N, 3)`` cell centres [m], the same attributes and ``format_version``), plus

    /sp4/tags            (n_fields, 2)  all planned samples (|h|, angle), seeded
    /sp4/m_relaxed       (N, 3)         the relaxed s-state
    /reference/field_mT  (3,)           SP4 field 1, mu0 H = (-24.6, 4.3, 0) mT
    /reference/mean_m    (s, 3)         <m>(t_j) of field 1 (checked by llgfem.surrogates.sp4)

``/D`` grows by one row per finished trajectory (flushed), so an interrupted run is resumed by
calling the script again with the same settings; ``--max-fields`` bounds the rows added in one
call.  ``meta`` (JSON) records the settings, the relaxation and per-trajectory wall times.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import h5py
import numpy as np

LAYOUT = "h|m_x|m_y|m_z"
FORMAT_VERSION = 1
MU0 = 4e-7 * math.pi
CELLS = (100, 25, 1)
SIZE = (500e-9, 125e-9, 3e-9)
MATERIAL = {"Ms": 8e5, "A": 1.3e-11, "alpha": 0.02}
FIELD1_MT = (-24.6, 4.3, 0.0)
SETTINGS = ("n_fields", "h_range", "angle_range", "seed", "s", "T", "atol", "rtol")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="HDF5 file (created, or resumed if it exists)")
    ap.add_argument("--n-fields", type=int, default=300)
    ap.add_argument("--h-range", type=float, nargs=2, default=(30.0, 40.0), help="mT")
    ap.add_argument("--angle-range", type=float, nargs=2, default=(180.0, 200.0), help="deg")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--s", type=int, default=100, help="time points on [0, T]")
    ap.add_argument("--T", type=float, default=1e-9, help="seconds")
    ap.add_argument("--atol", type=float, default=1e-5, help="RKF45 absolute tolerance")
    ap.add_argument("--rtol", type=float, default=1e-5, help="RKF45 relative tolerance")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--max-fields", type=int, default=0, help="rows added now (0 = all)")
    ap.add_argument("--skip-reference", action="store_true", help="no field-1 run")
    return ap.parse_args(argv)


def sample_tags(n: int, h_range, angle_range, seed: int) -> np.ndarray:
    """``(n, 2)`` uniform samples ``(|h|, angle)`` (as ``FEMDatasetSpec.sample_tags``)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(*h_range, n), rng.uniform(*angle_range, n)])


def field_mT(tag) -> list[float]:
    """``mu0 H`` in mT for a tag ``(|h| [mT], angle [deg])``."""
    a = math.radians(tag[1])
    return [tag[0] * math.cos(a), tag[0] * math.sin(a), 0.0]


class SP4:
    """The SP4 film in magnum.np: demag and exchange built once, one Zeeman term re-set."""

    def __init__(self, atol: float, rtol: float):
        import magnumnp as mn

        self.mn = mn
        dx = tuple(L / n for L, n in zip(SIZE, CELLS))
        self.state = mn.State(mn.Mesh(CELLS, dx))
        self.state.material = dict(MATERIAL)
        self.external = mn.ExternalField([0.0, 0.0, 0.0])
        self.terms = [mn.DemagField(), mn.ExchangeField(), self.external]
        self.atol, self.rtol = atol, rtol
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in CELLS], indexing="ij"), axis=-1)
        self.coordinates = ((idx + 0.5) * np.array(dx)).reshape(-1, 3)

    def versions(self) -> dict:
        import torch

        return {"magnumnp": self.mn.__version__, "torch": torch.__version__,
                "python": sys.version.split()[0], "torch_threads": torch.get_num_threads()}

    def _solver(self):
        return self.mn.LLGSolver(self.terms, atol=self.atol, rtol=self.rtol)

    def relax(self) -> np.ndarray:
        """The zero-field s-state from ``(1, 1, 1)/sqrt(3)``: ``(N, 3)``."""
        self.external.h = [0.0, 0.0, 0.0]
        self.state.m = self.state.Constant([1.0, 1.0, 1.0]) / math.sqrt(3.0)
        self.state.t = 0.0
        if not self._solver().relax(self.state, maxiter=2000):
            raise RuntimeError("sp4: the s-state relaxation did not converge")
        return self.state.m.detach().cpu().numpy().reshape(-1, 3).copy()

    def trajectory(self, m0: np.ndarray, h_mT, times: np.ndarray) -> np.ndarray:
        """``m(t_j)``, ``(s, N, 3)``, from ``m0`` under ``mu0 H = h_mT`` (constant)."""
        import torch

        self.external.h = [1e-3 * c / MU0 for c in h_mT]
        self.state.m = torch.tensor(m0.reshape(*CELLS, 3))
        self.state.t = 0.0
        llg, out = self._solver(), [m0.copy()]
        for dt in np.diff(times):
            llg.step(self.state, float(dt))
            out.append(self.state.m.detach().cpu().numpy().reshape(-1, 3).copy())
        return np.stack(out)


def settings_of(args: argparse.Namespace) -> dict:
    return {k: (list(v) if isinstance(v, (list, tuple)) else v)
            for k, v in ((k, getattr(args, k)) for k in SETTINGS)}


def open_file(args: argparse.Namespace, sim: SP4, times: np.ndarray) -> h5py.File:
    """Create the file (relaxing the s-state) or reopen it after checking the settings."""
    settings, N = settings_of(args), len(sim.coordinates)
    if args.out.exists():
        f = h5py.File(args.out, "a")
        old = json.loads(f.attrs["meta"])["settings"]
        if old != settings:
            f.close()
            raise SystemExit(f"sp4: {args.out} was generated with {old}, not {settings}; "
                             "use another file or the same settings to resume")
        return f
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    m_relaxed = sim.relax()
    relax_seconds = time.perf_counter() - t0
    f = h5py.File(args.out, "w")
    f.create_dataset("D", shape=(0, args.s, 2 + 3 * N), maxshape=(None, args.s, 2 + 3 * N),
                     chunks=(1, args.s, 2 + 3 * N), dtype="f8")
    f.create_dataset("times", data=times)
    f.create_dataset("coordinates", data=sim.coordinates)
    f.create_dataset("sp4/tags", data=sample_tags(args.n_fields, args.h_range,
                                                  args.angle_range, args.seed))
    f.create_dataset("sp4/m_relaxed", data=m_relaxed)
    meta = {"generator": "llgfem/surrogates/sp4_magnumnp.py", "settings": settings,
            "problem": {"cells": CELLS, "size_m": SIZE, "material": MATERIAL,
                        "terms": ["demag", "exchange", "zeeman"], "solver": "magnumnp RKF45",
                        "initial": "s-state relaxed from (1,1,1)/sqrt(3) at zero field"},
            "versions": sim.versions(), "relax_seconds": relax_seconds,
            "mean_m_relaxed": m_relaxed.mean(axis=0).tolist(), "trajectory_seconds": []}
    f.attrs.update({"layout": LAYOUT, "p": 2, "N": N, "n": 0, "s": args.s,
                    "tag_names": ["h_abs", "angle_deg"], "format_version": FORMAT_VERSION,
                    "meta": json.dumps(meta)})
    f.flush()
    return f


def update_meta(f: h5py.File, **changes) -> dict:
    meta = json.loads(f.attrs["meta"])
    for key, value in changes.items():
        meta[key] = value
    f.attrs["meta"] = json.dumps(meta)
    return meta


def run_reference(f: h5py.File, sim: SP4, times: np.ndarray) -> None:
    """SP4 field 1 from the s-state: ``/reference/mean_m`` (once per file)."""
    if "reference/mean_m" in f:
        return
    t0 = time.perf_counter()
    m = sim.trajectory(f["sp4/m_relaxed"][...], FIELD1_MT, times)
    seconds = time.perf_counter() - t0
    f.create_dataset("reference/field_mT", data=np.array(FIELD1_MT))
    f.create_dataset("reference/mean_m", data=m.mean(axis=1))
    update_meta(f, reference_seconds=seconds)
    f.flush()
    print(f"sp4: field 1 <m>(T) = {m[-1].mean(axis=0).round(4).tolist()} ({seconds:.1f} s)",
          flush=True)


def append_trajectories(f: h5py.File, sim: SP4, times: np.ndarray, max_fields: int) -> None:
    """Solve the next planned fields and append them to ``/D`` one by one (flushed)."""
    tags, D = f["sp4/tags"][...], f["D"]
    stop = len(tags) if max_fields <= 0 else min(len(tags), len(D) + max_fields)
    m0 = f["sp4/m_relaxed"][...]
    for i in range(len(D), stop):
        t0 = time.perf_counter()
        m = sim.trajectory(m0, field_mT(tags[i]), times)  # (s, N, 3)
        seconds = time.perf_counter() - t0
        row = np.concatenate([np.repeat(tags[i][None], len(times), axis=0),
                              m.transpose(0, 2, 1).reshape(len(times), -1)], axis=1)
        D.resize(i + 1, axis=0)
        D[i] = row
        f.attrs["n"] = i + 1
        meta = json.loads(f.attrs["meta"])
        per = meta["trajectory_seconds"] + [seconds]
        update_meta(f, trajectory_seconds=per, solver_seconds_per_trajectory=float(np.mean(per)))
        f.flush()
        print(f"sp4: field {i + 1}/{len(tags)} |h| = {tags[i][0]:.2f} mT, "
              f"angle = {tags[i][1]:.1f} deg: {seconds:.1f} s", flush=True)


def run(args: argparse.Namespace, sim) -> None:
    """Create or resume ``args.out`` with the simulator ``sim`` (:class:`SP4` or a stand-in
    with ``coordinates``, ``versions()``, ``relax()`` and ``trajectory(m0, h_mT, times)``)."""
    times = np.linspace(0.0, args.T, args.s)
    with open_file(args, sim, times) as f:
        if not args.skip_reference:
            run_reference(f, sim, times)
        append_trajectories(f, sim, times, args.max_fields)
        print(f"sp4: {f.attrs['n']} of {len(f['sp4/tags'])} fields in {args.out}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import magnumnp

    magnumnp.set_log_level(30)
    run(args, SP4(args.atol, args.rtol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
