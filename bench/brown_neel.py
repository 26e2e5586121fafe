"""Brown–Néel FOM and POD-ROM benchmark (paper 000 experiments) -> outputs/bench/brown_neel.json.

Usage::

    .venv/bin/python bench/brown_neel.py [--quick] [--stages langevin,fig2,fig3,fom,fig1,id]

Stages (results are merged into the JSON after every stage, so partial runs keep data; FOM
trajectories are cached in outputs/bench/cache/brown_neel/, so an interrupted run resumes):

* ``langevin`` static-field equilibrium ⟨m_z⟩ against the Langevin function per truncation.
* ``fom``   truncation ladders for the three particles at f_d = 5, 1, 10 kHz (``--conv-freqs``),
            the chosen (converged) truncations, the paper's N = 900 product basis, TS vs SciPy.
* ``fig1``  basis from f_d = 1 kHz and 10 kHz, reused at 1, 5, 10 kHz (20 nm, 6 kJ/m³);
            ranks include r ≤ 100 (stable ROM, formulation "dynamic").
* ``fig2``  basis from (20 nm, 6 kJ/m³) and (25 nm, 10 kJ/m³), reused at all three particles:
            directly (the paper) and after the Boltzmann-weight transfer of the snapshots.
* ``fig3``  ROM vs FOM time series for (20 nm, 6 kJ/m³) with the (25 nm, 10 kJ/m³) basis.
* ``id``    identification of (d_c, K) from a simulated MDF measurement (finer FOM) with the ROM.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

import llgfem  # noqa: F401  (must precede petsc4py)

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from mpi4py import MPI

from llgfem.brownneel import BrownNeelModel, ParticleParameters, TSSettings
from llgfem.brownneel.jobs import BrownNeelConfig, identify_simulated
from llgfem.brownneel.model import Trajectory, UnstableTruncationError
from llgfem.brownneel.params import SinusoidalDrive
from llgfem.brownneel.studies import FomRun, langevin_errors, rom_sweep, run_fom
from llgfem.brownneel.transfer import transfer_snapshots
from llgfem.rom import nrmse, pod

PARTICLES = {"20/6": (20, 6), "20/10": (20, 10), "25/10": (25, 10)}
OUT = Path("outputs/bench")  # --quick writes to outputs/bench/quick instead
CACHE = Path("outputs/bench/cache/brown_neel")


def particle(key: str) -> ParticleParameters:
    d, k = PARTICLES[key]
    return ParticleParameters(d_c=d * 1e-9, K=k * 1e3)


def fom_row(key, f_khz, model, run, **extra):
    d, k = PARTICLES[key]
    row = {"particle": [d, k], "f_d_kHz": f_khz,
           "truncation": [model.basis.n_m, model.basis.n_n], "unknowns": model.size,
           "seconds": run.traj.seconds, "steps": run.traj.steps,
           "mz_peak": float(run.recorded.mz.max())}
    row.update(extra)
    return row


class Bench:
    def __init__(self, args):
        self.args = args
        self.settings = TSSettings(rtol=args.rtol, atol=args.rtol * 1e-5, lu_reuse=30)
        self.settings_fig1 = TSSettings(rtol=args.rtol_fig1, atol=args.rtol_fig1 * 1e-5,
                                        lu_reuse=30)
        self.path = OUT / "brown_neel.json"
        self.data = {}  # keys written by this process; merged into the file on save
        self.models = {}
        self.runs = {}

    def save(self):
        """Merge this process's keys into the JSON (other stages may run concurrently)."""
        OUT.mkdir(parents=True, exist_ok=True)
        old = json.loads(self.path.read_text()) if self.path.exists() else {}
        for key, value in self.data.items():
            if key == "fom":  # rows from several processes: replace same (particle, f, trunc)
                mine = {_fom_key(r) for r in value}
                old["fom"] = [r for r in old.get("fom", []) if _fom_key(r) not in mine] + value
            elif key == "rom":
                exps = {r["experiment"] for r in value}
                old["rom"] = [r for r in old.get("rom", []) if r["experiment"] not in exps] + value
            elif isinstance(value, dict) and isinstance(old.get(key), dict):
                old[key] = {**old[key], **value}
            else:
                old[key] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(old, indent=1, default=float))
        tmp.replace(self.path)

    def model(self, key, trunc):
        if (key, trunc) not in self.models:
            self.models[(key, trunc)] = BrownNeelModel(particle(key), *trunc, "dynamic")
        return self.models[(key, trunc)]

    def fom(self, key, trunc, f_khz, settings=None):
        """A FOM run, from memory, from the disk cache (so interrupted studies resume) or
        computed and cached."""
        settings = settings or self.settings
        trunc = tuple(trunc)
        ck = (key, trunc, f_khz, settings.rtol)
        if ck not in self.runs:
            m = self.model(key, trunc)
            name = (f"{key.replace('/', '_')}_{trunc[0]}x{trunc[1]}_{f_khz}kHz_rtol"
                    f"{settings.rtol:g}_w{self.args.warmup:g}_spp{self.args.spp}.npz")
            path = CACHE / name
            if path.exists():
                z = np.load(path)
                traj = Trajectory(z["t"], z["y"], z["mz"], z["dmz"], z["mass"],
                                  float(z["seconds"]), int(z["steps"]),
                                  json.loads(str(z["info"])))
                self.runs[ck] = FomRun(m, SinusoidalDrive(15e-3, f_khz * 1e3), traj,
                                       int(z["start"]))
                cached = " (cached)"
            else:
                run = run_fom(m, f_khz * 1e3, warmup_periods=self.args.warmup, periods=1.0,
                              samples_per_period=self.args.spp, settings=settings)
                tr = run.traj
                CACHE.mkdir(parents=True, exist_ok=True)
                np.savez(path, t=tr.t, y=tr.y, mz=tr.mz, dmz=tr.dmz, mass=tr.mass,
                         seconds=tr.seconds, steps=tr.steps, start=run.start,
                         info=json.dumps(tr.info))
                self.runs[ck] = run
                cached = ""
            r = self.runs[ck]
            self.add_fom_row(fom_row(key, f_khz, m, r, rtol=settings.rtol,
                                     lu_solver=r.traj.info.get("lu_solver", "petsc")))
            print(f"FOM {key} {trunc} {f_khz} kHz n={m.size} rtol={settings.rtol:g}: "
                  f"{r.traj.seconds:.1f} s, {r.traj.steps} steps{cached}", flush=True)
        return self.runs[ck]

    def add_fom_row(self, row):
        rows = self.data.setdefault("fom", [])
        rows[:] = [r for r in rows if _fom_key(r) != _fom_key(row)] + [row]

    # ---------------------------------------------------------------------------------
    def stage_fom(self):
        """Truncation ladders per particle and drive frequency; NRMSE against the finest."""
        a = self.args
        for f in a.conv_freqs:
            for key in PARTICLES:
                truncs = a.conv_truncations[key]
                runs = [(t, self.fom(key, t, f)) for t in truncs]
                ref = runs[-1][1].recorded
                for t, run in runs:
                    rec = run.recorded
                    self.add_fom_row(fom_row(
                        key, f, self.model(key, t), run, rtol=self.settings.rtol,
                        lu_solver=run.traj.info.get("lu_solver", "petsc"),
                        nrmse_mz_vs_finest=nrmse(rec.mz, ref.mz),
                        nrmse_signal_vs_finest=nrmse(rec.dmz, ref.dmz),
                        finest=list(truncs[-1])))
                self.choose_truncations()
                self.save()
                self.plot_convergence()
        self.paper_n900()
        self.ts_vs_scipy()

    def choose_truncations(self, tol=1e-4, langevin_tol=1e-5):
        """Per particle: the coarsest truncation of the ladder whose ⟨m_z⟩ is within ``tol``
        (NRMSE) of the finest at every frequency run so far and whose static-field ⟨m_z⟩ is
        within ``langevin_tol`` of L(ξ) (stage ``langevin``, where computed for it)."""
        old = json.loads(self.path.read_text()) if self.path.exists() else {}
        lang = {(tuple(r["particle"]), tuple(r["truncation"])): r["max_error"]
                for r in self.data.get("langevin", old.get("langevin", []))
                if "max_error" in r}
        out = {}
        for key, truncs in self.args.conv_truncations.items():
            rows = [r for r in self.data.get("fom", []) if tuple(r["particle"]) ==
                    PARTICLES[key] and "nrmse_mz_vs_finest" in r
                    and r.get("finest") == list(truncs[-1])]
            freqs = sorted({r["f_d_kHz"] for r in rows})
            chosen = None
            for t in truncs:
                sel = [r["nrmse_mz_vs_finest"] for r in rows if r["truncation"] == list(t)]
                lerr = lang.get((PARTICLES[key], tuple(t)))
                if sel and max(sel) <= tol and (lerr is None or lerr <= langevin_tol):
                    chosen = {"truncation": list(t), "max_nrmse_vs_finest": max(sel),
                              "langevin_max_error": lerr}
                    break
            out[key] = {**(chosen or {"truncation": None}), "converged": chosen is not None,
                        "criterion": f"coarsest with NRMSE(<m_z>) vs {list(truncs[-1])} <= "
                        f"{tol:g} at f_d = {freqs} kHz and Langevin error <= {langevin_tol:g}"}
        self.data["chosen_truncations"] = out

    def stage_langevin(self):
        """Static-field equilibrium ⟨m_z⟩ (null vector of F(ξ)) against L(ξ)."""
        lang = []
        for key, truncs in self.args.langevin_truncations.items():
            for t in truncs:
                m = BrownNeelModel(particle(key), *t, "dynamic", shift=0.0)
                xi_b = [15e-3, 1.0 / m.params.xi_per_tesla, 4.0 / m.params.xi_per_tesla]
                t0 = time.perf_counter()
                checks = langevin_errors(m, xi_b)
                lang.append({"particle": list(PARTICLES[key]), "truncation": list(t),
                             "unknowns": m.size, "seconds": time.perf_counter() - t0,
                             "max_error": max(c["error"] for c in checks), "checks": checks})
                print("langevin", key, t, m.size, f"{lang[-1]['max_error']:.2e}", flush=True)
        self.data["langevin"] = lang
        self.save()

    def paper_n900(self):
        """The paper's N = 900 product basis = (N_m, N_n) = (5, 4) (64 sector unknowns)."""
        key, out = "20/6", {}
        plain = BrownNeelModel(particle(key), 5, 4, "plain")
        try:
            plain.check_stability(15e-3)
            out["plain_guard"] = "accepted"
        except UnstableTruncationError as err:
            out["plain_guard"] = str(err)
        out["plain_max_re_eig_tauN"] = plain.max_real_eigenvalue(plain.params.xi_per_tesla
                                                                 * 15e-3)
        m = self.model(key, (5, 4))
        conv = self.args.conv_truncations[key]
        for f in (5,):
            finest = tuple(conv[-1])
            run = self.fom(key, (5, 4), f)
            ref = self.fom(key, finest, f).recorded
            out[f"{f}kHz"] = {"unknowns_sector": m.size, "unknowns_full": 900,
                              "reference_truncation": list(finest),
                              "seconds": run.traj.seconds,
                              "nrmse_mz_vs_converged": nrmse(run.recorded.mz, ref.mz),
                              "nrmse_signal_vs_converged": nrmse(run.recorded.dmz, ref.dmz)}
            self.add_fom_row(fom_row(key, f, m, run, paper_N900=True))
        self.data["paper_N900"] = out
        self.save()

    def ts_vs_scipy(self):
        key, t = "20/6", tuple(self.args.fig1_truncation)
        m = self.model(key, t)
        ts = self.fom(key, t, 10)
        sc = run_fom(m, 10e3, warmup_periods=self.args.warmup, samples_per_period=self.args.spp,
                     settings=self.settings, backend="scipy")
        self.data["ts_vs_scipy"] = {
            "particle": list(PARTICLES[key]), "truncation": list(t), "f_d_kHz": 10,
            "petsc_seconds": ts.traj.seconds, "petsc_steps": ts.traj.steps,
            "scipy_seconds": sc.traj.seconds, "scipy_method": self.settings.scipy_method,
            "ratio_petsc_over_scipy": ts.traj.seconds / sc.traj.seconds,
            "nrmse_mz_petsc_vs_scipy": nrmse(ts.recorded.mz, sc.recorded.mz),
            "nrmse_signal_petsc_vs_scipy": nrmse(ts.recorded.dmz, sc.recorded.dmz),
            "settings": {"ts": f"bdf order {self.settings.order}", "rtol": self.settings.rtol,
                         "lu_reuse": self.settings.lu_reuse}}
        self.save()

    # ---------------------------------------------------------------------------------
    def sweep(self, name, basis_runs, targets, ranks, settings, pod_rtol=None,
              transfer="direct"):
        rows = []
        for bkey, brun in basis_runs.items():
            basis = pod(brun.traj.y, rtol=pod_rtol)
            sv = basis.singular_values
            self.data.setdefault("singular_values", {})[f"{name}:{bkey}"] = (
                (sv[:200] / sv[0]).tolist())
            for tkey, trun in targets.items():
                if transfer != "direct" and tkey != bkey:
                    t0 = time.perf_counter()
                    basis_t = pod(transfer_snapshots(brun, trun.model, trun.drive, transfer),
                                  rtol=pod_rtol)
                    transfer_seconds = time.perf_counter() - t0
                else:
                    basis_t, transfer_seconds = basis, 0.0
                for row in rom_sweep(brun, trun, ranks, settings, pod_basis=basis_t,
                                     transfer=transfer if tkey != bkey else "direct"):
                    row.update({"experiment": name, "basis_from": bkey, "applied_to": tkey,
                                "transfer_seconds": transfer_seconds,
                                "fom_seconds": trun.traj.seconds,
                                "truncation": [trun.model.basis.n_m, trun.model.basis.n_n],
                                "unknowns": trun.model.size, "rtol": settings.rtol})
                    rows.append(row)
                    print(name, bkey, "->", tkey, {k: row.get(k) for k in
                                                   ("r", "seconds", "speedup", "nrmse")},
                          flush=True)
        return rows

    def stage_fig1(self):
        t = tuple(self.args.fig1_truncation)
        runs = {f"{f}kHz": self.fom("20/6", t, f, self.settings_fig1) for f in (1, 5, 10)}
        basis_runs = {k: runs[k] for k in ("1kHz", "10kHz")}
        rows = self.sweep("fig1", basis_runs, runs, self.args.ranks1, self.settings_fig1)
        self.data["rom"] = [r for r in self.data.get("rom", []) if r["experiment"] != "fig1"]
        self.data["rom"] += rows
        base = {f"{a}->{b}": nrmse(runs[a].recorded.mz, runs[b].recorded.mz)
                for a in runs for b in runs if a != b}
        self.data["fig1_baseline_nrmse_between_settings"] = base
        stable = [r for r in rows if r["r"] <= 100 and r["nrmse"] is not None]
        self.data["stable_rom_r_le_100"] = {
            "ranks": sorted({r["r"] for r in stable}),
            "all_stable": all(r["stable"] for r in rows if r["r"] <= 100),
            "max_nrmse_at_r100": max((r["nrmse"] for r in stable if r["r"] == max(
                x["r"] for x in stable)), default=None),
            "min_r_with_nrmse_le_1e-3_all_settings": _min_rank(stable, 1e-3),
        }
        self.save()
        self.plot_sweep("fig1", rows)

    def stage_fig2(self):
        t = tuple(self.args.fig2_truncation)
        runs = {k: self.fom(k, t, 5) for k in PARTICLES}
        # keep every left singular vector (rtol = 0) so that large r spans most of the space,
        # as the paper's r = 600 of N = 900 does
        bases = {k: runs[k] for k in ("20/6", "25/10")}
        direct = self.sweep("fig2", bases, runs, self.args.ranks2, self.settings, pod_rtol=0.0)
        # beyond the paper: the same A-only snapshots mapped by the Boltzmann weight ratio
        mapped = []
        for b in bases:
            mapped += self.sweep("fig2", {b: bases[b]}, {g: runs[g] for g in runs if g != b},
                                 self.args.ranks2, self.settings, pod_rtol=0.0,
                                 transfer="boltzmann")
        self.data["rom"] = [r for r in self.data.get("rom", []) if r["experiment"] != "fig2"]
        self.data["rom"] += direct + mapped
        cross = [r for r in mapped if r["basis_from"] != r["applied_to"]]
        self.data["fig2_summary"] = {
            "truncation": list(t),
            "direct_best_cross_particle_nrmse": {
                f"{b}->{g}": min((r["nrmse"] for r in direct if r["basis_from"] == b
                                  and r["applied_to"] == g and r["nrmse"] is not None),
                                 default=None)
                for b in bases for g in runs if g != b},
            "boltzmann_best_cross_particle_nrmse": {
                f"{b}->{g}": min((r["nrmse"] for r in cross if r["basis_from"] == b
                                  and r["applied_to"] == g and r["nrmse"] is not None),
                                 default=None)
                for b in bases for g in runs if g != b},
            "boltzmann_min_r_nrmse_le_1e-2": _min_rank(cross, 1e-2),
        }
        self.save()
        self.plot_sweep("fig2", mapped + [r for r in direct if r["basis_from"] ==
                                          r["applied_to"]], suffix="")
        self.plot_sweep("fig2", direct, suffix="_direct")

    def stage_fig3(self):
        """ROM vs FOM time series, (20 nm, 6 kJ/m³) with the (25 nm, 10 kJ/m³) basis: the
        paper's direct reuse and the Boltzmann-mapped snapshots."""
        t = tuple(self.args.fig2_truncation)
        brun, trun = self.fom("25/10", t, 5), self.fom("20/6", t, 5)
        r = min(self.args.fig3_rank, trun.model.size)
        st = trun.start
        out = {"basis_from": "25/10", "applied_to": "20/6", "truncation": list(t),
               "t_us": (trun.traj.t[st:] * 1e6).tolist(), "mz_fom": trun.recorded.mz.tolist(),
               "signal_fom": trun.recorded.dmz.tolist()}
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
        tt = trun.traj.t[st:] * 1e6
        ax[0].plot(tt, trun.recorded.mz, "k", label="FOM")
        ax[1].plot(tt, trun.recorded.dmz, "k", label="FOM")
        for transfer, style in (("direct", "b:"), ("boltzmann", "r--")):
            basis = pod(transfer_snapshots(brun, trun.model, trun.drive, transfer), rank=r,
                        rtol=0.0)
            row = rom_sweep(brun, trun, [r], self.settings, pod_basis=basis,
                            transfer=transfer, series=True)[0]
            series = row.pop("series", None)
            out[transfer] = row
            if series is not None:
                out[transfer]["mz_rom"] = series["mz"][st:].tolist()
                out[transfer]["signal_rom"] = series["dmz"][st:].tolist()
                lab = f"ROM r={r}, {transfer} (NRMSE {row['nrmse']:.1e})"
                ax[0].plot(tt, np.clip(series["mz"][st:], -1.5, 1.5), style, label=lab)
                ax[1].plot(tt, series["dmz"][st:], style, label=lab)
        self.data["fig3"] = out
        self.save()
        ax[0].set(xlabel="t [µs]", ylabel="⟨m_z⟩ (clipped to ±1.5)")
        ax[1].set(xlabel="t [µs]", ylabel="d⟨m_z⟩/dt [1/s]")
        lim = 1.5 * np.abs(trun.recorded.dmz).max()
        ax[1].set_ylim(-lim, lim)
        ax[0].legend(fontsize=7)
        fig.suptitle(f"(20 nm, 6 kJ/m³) with the (25 nm, 10 kJ/m³) basis, truncation {t}")
        fig.tight_layout()
        fig.savefig(OUT / "brown_neel_fig3.png", dpi=120)
        plt.close(fig)

    def stage_id(self):
        """Identification through the job's path: simulate (FOM at a finer truncation) ->
        write MDF -> read -> ROM fit with 95 % intervals (``brown_neel_identify``)."""
        n_m, n_n = self.args.id_truncation
        cfg = BrownNeelConfig(n_m=n_m, n_n=n_n, f_d_kHz=5.0, B_d_mT=15.0,
                              rtol=self.settings.rtol, rank=60,
                              identify_truth=tuple(self.args.id_truth),
                              identify_noise=self.args.id_noise, identify_grid=3,
                              box_d_c_nm=(19.0, 22.0), box_K_kJ=(5.0, 8.0), substeps=4)
        cfg.validate("brown_neel")
        t0 = time.perf_counter()
        res = identify_simulated(cfg, OUT / "brown_neel_identification", rank0=True)
        res["seconds_total"] = time.perf_counter() - t0
        self.data["identification"] = res
        self.save()

    # ---------------------------------------------------------------------------------
    def plot_sweep(self, name, rows, suffix=""):
        groups = sorted({r["basis_from"] for r in rows})
        fig, axes = plt.subplots(3, len(groups), figsize=(5 * len(groups), 9), squeeze=False)
        for j, g in enumerate(groups):
            for tgt in sorted({r["applied_to"] for r in rows}):
                sel = [r for r in rows if r["basis_from"] == g and r["applied_to"] == tgt
                       and r["seconds"] is not None]
                rr = [r["r"] for r in sel]
                axes[0, j].semilogy(rr, [r["seconds"] for r in sel], "o-", label=tgt)
                axes[1, j].semilogy(rr, [r["speedup"] for r in sel], "o-", label=tgt)
                axes[2, j].semilogy(rr, [r["nrmse"] for r in sel], "o-", label=tgt)
                if sel:
                    axes[0, j].axhline(sel[0]["fom_seconds"], ls="--", lw=0.8)
            axes[0, j].set(title=f"basis from {g}", ylabel="ROM time [s]")
            axes[1, j].set(ylabel="speed-up")
            axes[2, j].set(ylabel="NRMSE ⟨m_z⟩", xlabel="r")
            axes[0, j].legend()
        fig.tight_layout()
        fig.savefig(OUT / f"brown_neel_{name}{suffix}.png", dpi=120)
        plt.close(fig)

    def plot_convergence(self):
        rows = [r for r in self.data["fom"] if "nrmse_mz_vs_finest" in r]
        fig, ax = plt.subplots(figsize=(6, 4))
        for p in PARTICLES.values():
            for f in (1, 5, 10):
                sel = [r for r in rows if tuple(r["particle"]) == p and r["f_d_kHz"] == f
                       and r["nrmse_mz_vs_finest"] > 0]
                if sel:
                    ax.semilogy([r["unknowns"] for r in sel],
                                [r["nrmse_mz_vs_finest"] for r in sel], "o-",
                                label=f"{p[0]} nm, {p[1]} kJ/m³, {f} kHz")
        ax.set(xlabel="unknowns (sector)", ylabel="NRMSE ⟨m_z⟩ vs finest")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT / "brown_neel_truncation.png", dpi=120)
        plt.close(fig)


def _fom_key(row):
    return (tuple(row["particle"]), row["f_d_kHz"], tuple(row["truncation"]),
            bool(row.get("paper_N900", False)))


def _min_rank(rows, tol):
    for r in sorted({x["r"] for x in rows}):
        sel = [x for x in rows if x["r"] == r]
        if all(x["nrmse"] is not None and x["nrmse"] <= tol for x in sel):
            return r
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small truncations, few ranks")
    p.add_argument("--stages", default="langevin,fig2,fig3,fom,fig1,id")
    p.add_argument("--fig2-truncation", default="",
                   help="common truncation 'N_m,N_n' of the Fig. 2/3 runs (default 28,22)")
    p.add_argument("--conv-freqs", default="5,1,10",
                   help="drive frequencies [kHz] of the truncation ladders (stage fom)")
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--rtol-fig1", type=float, default=1e-7)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--spp", type=int, default=400, help="samples per period")
    args = p.parse_args(argv)
    args.fig2_truncation = (tuple(int(v) for v in args.fig2_truncation.split(","))
                            if args.fig2_truncation else None)
    if args.quick:
        # small sizes; the 25 nm particle needs (14, 12) even to integrate in reasonable time
        args.conv_truncations = {"20/6": [(6, 4), (8, 6)], "20/10": [(8, 6), (10, 8)],
                                 "25/10": [(14, 12), (16, 14)]}
        args.langevin_truncations = {k: [(8, 6)] for k in PARTICLES}
        args.fig1_truncation = (8, 6)
        args.fig2_truncation = args.fig2_truncation or (14, 12)
        args.ranks1 = args.ranks2 = [10, 20, 40]
        args.fig3_rank = 40
        args.id_truncation = (8, 6)
    else:
        args.conv_truncations = {
            "20/6": [(12, 10), (14, 12), (16, 14)],
            "20/10": [(14, 12), (16, 14), (18, 16)],
            "25/10": [(16, 14), (20, 16), (24, 18), (28, 22)],
        }
        args.langevin_truncations = {
            "20/6": [(12, 10), (14, 12), (16, 14)],
            "20/10": [(14, 12), (16, 14), (18, 16)],
            "25/10": [(20, 16), (24, 18), (26, 20), (28, 22)],
        }
        args.fig1_truncation = (14, 12)
        args.fig2_truncation = args.fig2_truncation or (28, 22)
        args.ranks1 = [10, 20, 30, 40, 60, 80, 100, 150, 200, 300]
        args.ranks2 = [20, 50, 100, 200, 300, 600]
        args.fig3_rank = 600
        args.id_truncation = (10, 8)
    args.conv_freqs = [int(f) for f in args.conv_freqs.split(",")]
    args.id_truth = (20.6, 6.7)
    args.id_noise = 0.01
    if MPI.COMM_WORLD.rank != 0:  # the study is serial; other ranks idle
        return 0
    if args.quick:  # never mix smoke-test numbers into the real results
        global OUT
        OUT = OUT / "quick"
    bench = Bench(args)
    for stage in args.stages.split(","):
        t0 = time.perf_counter()
        getattr(bench, f"stage_{stage}")()
        bench.data.setdefault("stage_seconds", {})[stage] = time.perf_counter() - t0
        bench.save()
        print(f"stage {stage} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
