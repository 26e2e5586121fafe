"""Sweep bad inputs over the demo configs and count how ``llgfem`` ends (issue 12).

Phases:

``validate`` (in-process, every mutation of :mod:`tests/fuzz/fuzz_mutations`): each demo config
x each table it reads x each key x {misspelt, unknown, wrong type, NaN, inf, negative, zero,
huge} plus unknown/misspelt/removed tables.  Outcomes: ``clean`` (ConfigError naming the
table/key), ``clean-unnamed`` (ConfigError not naming it), ``accepted``, ``traceback`` (any
other exception).  A mutation that must be refused but is accepted is ``silent``.

``run`` (subprocess ``llgfem run``, serially or under ``mpiexec -n N``, with a timeout): the
refused mutations as ``--set`` overrides (a sample), override syntax errors, file faults
(missing/corrupt mesh, dataset, model, basis, snapshots; unwritable output), accepted
mutations with fast settings, and resumes of ``all_at_once``/``calibrate`` from damaged,
foreign or other-rank-count checkpoint sets (must be refused: ``silent`` if resumed) and from
an intact set (must resume: ``refused-valid`` otherwise).  Outcomes by exit status:
``clean`` (2 or 3, one line, no traceback), ``ok`` (0), ``silent`` (0 with NaN/inf in a
``summary.json``), ``internal`` (1), ``traceback`` (a
Python traceback on stderr), ``hang`` (timeout), ``messy`` (exit 2/3 with more than one line).
``checkpoints`` runs only the checkpoint cases.

Usage::

    .venv/bin/python tools/fuzz_cli.py validate
    .venv/bin/python tools/fuzz_cli.py run --np 2 --timeout 150 --limit 100
    .venv/bin/python tools/fuzz_cli.py checkpoints --np 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from fuzz_mutations import CONFIGS, Mutation, apply, as_override, mutations  # noqa: E402

import llgfem  # noqa: E402,F401

# fast settings per job kind, so that accepted inputs end quickly
FAST = {
    "heat": ["time.n_t=5"],
    "llg_forward": ["time.n_t=21"],  # >= 20 steps per drive period
    "calibrate": ["time.n_t=21", "calibrate.max_iter=2"],
    "all_at_once": ["time.n_t=5", "aao.max_iter=2"],
    "brown_neel_fom": ["brown_neel.n_m=8", "brown_neel.n_n=6",
                       "brown_neel.samples_per_period=20"],
    "brown_neel_pod": ["brown_neel.n_m=8", "brown_neel.n_n=6",
                       "brown_neel.samples_per_period=20"],
    "brown_neel_rom": ["brown_neel.n_m=8", "brown_neel.n_n=6",
                       "brown_neel.samples_per_period=20", "brown_neel.rank=8"],
    "brown_neel_identify": ["brown_neel.n_m=8", "brown_neel.n_n=6", "brown_neel.rank=8",
                            "brown_neel.identify_grid=2", "brown_neel.samples_per_period=20"],
    "surrogate_generate": ["time.n_t=5", "dataset.n_fields=4"],
    "surrogate_train": ["time.n_t=5"],
    "surrogate_predict": ["time.n_t=5"],
    "surrogate_kernel": ["time.n_t=11", "dataset.n_fields=6"],  # n_t > kernel.nu = 5
}

# per demo config, after FAST (the 3-D calibration takes > 400 s serially with FAST alone)
FAST_CONFIG = {
    "calibrate_scanner3d": ["time.T=0.25", "time.n_t=6", "calibrate.max_iter=1"],
    "physical_rotating": ["time.n_t=31"],  # 1.5 drive periods
    "physical_sinusoidal": ["time.n_t=31"],
    "calibrate_mdf": ["time.n_t=41"],  # the selected bins need n_t > 31
    "system_matrix_1d": ["model.n_m=8", "model.n_n=6", "model.rtol=1e-4"],  # > 400 s -> 85 s
}
#: accepted mutations of these configs are not run: one SP4 field is a magnum.np relaxation
#: plus a 1 ns run (2-5 min under load; tests/unit/surrogates/test_surrogate_sp4.py, slow)
NOT_RUN = ("surrogate_sp4_generate",)


def fast_settings(config: str | Path) -> list[str]:
    """The ``--set`` overrides that make a run of demo ``config`` end quickly."""
    path = Path(config)
    return [*FAST.get(_kind(path), []), *FAST_CONFIG.get(path.stem, [])]


def _surrogate_fixture(tmp: Path, np_: int, timeout: float) -> None:
    """A small dataset and model (surrogate_kernel run) for the surrogate_train/predict
    configs, which otherwise stop at 'no dataset' whatever the mutation."""
    config = str(ROOT / "demos" / "configs" / "surrogate_kernel.toml")
    res = _run_case([config, "dataset.n_fields=6", "time.n_t=11"], np_, timeout, tmp / "sur")
    run_dir = next((tmp / "sur").glob("*/dataset.h5"), None)
    if res["outcome"] != "ok" or run_dir is None:
        print(f"surrogate fixture failed: {res}", flush=True)
        return
    data, model = run_dir, run_dir.with_name("model.npz")
    FAST_CONFIG["surrogate_train"] = [f"surrogate.dataset='{data}'",
                                      f"surrogate.model='{tmp / 'trained.npz'}'"]
    FAST_CONFIG["surrogate_predict"] = [f"surrogate.dataset='{data}'",
                                        f"surrogate.model='{model}'"]


def _named(message: str, m: Mutation) -> bool:
    table = m.table
    return message.startswith(table) or f"{table}." in message or f"[{table}]" in message \
        or table in message


def phase_validate() -> dict:
    """Validate every mutation in-process; count the outcomes."""
    from llgfem.cli import validate_config_data
    from llgfem.config import ConfigError

    counts, examples = collections.Counter(), collections.defaultdict(list)
    for path in CONFIGS:
        for m in mutations(path):
            if m.expect == "refuse-at-run":
                counts["deferred"] += 1  # covered by the run phase
                continue
            try:
                validate_config_data(apply(m), str(path))
                outcome = "silent" if m.expect == "refuse" else "accepted"
            except ConfigError as e:
                outcome = "clean" if _named(str(e), m) else "clean-unnamed"
                if outcome == "clean-unnamed":
                    examples[outcome].append(f"{m.label}: {e}")
            except Exception as e:  # noqa: BLE001 - that is what we count
                outcome = "traceback"
                examples[outcome].append(f"{m.label}: {type(e).__name__}: {e}")
            counts[outcome] += 1
            if outcome in ("silent", "accepted"):
                examples[outcome].append(m.label)
    return {"tried": sum(counts.values()), "counts": dict(counts),
            "examples": {k: v[:400] for k, v in examples.items()}}


def _kind(path: Path) -> str:
    import tomllib

    return tomllib.loads(path.read_text())["job"]["kind"]


def _file_faults(tmp: Path) -> list[tuple[str, list[str], list[str]]]:
    """(label, config args, extra --set) cases of damaged input files and outputs."""
    import numpy as np

    bad_npz = tmp / "bad.npz"
    bad_npz.write_bytes(b"PK\x03\x04 truncated")
    nan_npz = tmp / "nan.npz"
    np.savez(nan_npz, modes=np.full((10, 3), np.nan), y=np.full((10, 4), np.nan),
             t=np.arange(4.0))
    text = tmp / "text.h5"
    text.write_text("not hdf5")
    empty_msh = tmp / "empty.msh"
    empty_msh.write_text("")
    blocker = tmp / "blocker"
    blocker.write_text("x")
    cfg = {p.stem: str(p) for p in CONFIGS}
    cases = [
        ("mesh-missing", [cfg["scanner2d"]], ["domain.path='/nonexistent/mesh.msh'"]),
        ("mesh-empty", [cfg["scanner2d"]], [f"domain.path='{empty_msh}'"]),
        ("mesh-text", [cfg["scanner2d"]], [f"domain.path='{text}'"]),
        ("basis-corrupt", [cfg["brown_neel_rom"]], [f"brown_neel.basis='{bad_npz}'"]),
        ("basis-nan", [cfg["brown_neel_rom"]], [f"brown_neel.basis='{nan_npz}'"]),
        ("basis-missing", [cfg["brown_neel_rom"]], ["brown_neel.basis='/nonexistent.npz'"]),
        ("snapshots-nan", [cfg["brown_neel_pod"]], [f"brown_neel.snapshots='{nan_npz}'"]),
        ("snapshots-corrupt", [cfg["brown_neel_pod"]], [f"brown_neel.snapshots='{bad_npz}'"]),
        ("dataset-text", [cfg["surrogate_train"]], [f"surrogate.dataset='{text}'"]),
        ("dataset-missing", [cfg["surrogate_train"]], ["surrogate.dataset='/nonexistent.h5'"]),
        ("model-corrupt", [cfg["surrogate_predict"]], [f"surrogate.model='{bad_npz}'",
                                                       f"surrogate.dataset='{text}'"]),
        ("output-under-file", [cfg["heat"]], [f"output.dir='{blocker}/sub'"]),
        ("output-readonly", [cfg["heat"]], ["output.dir='/proc/llgfem'"]),
        ("tags-not-in-mesh", [cfg["scanner2d"]], ["concentration.0.tags=[99]"]),
        ("tags-on-builtin-mesh", [cfg["scanner2d"]],
         ["domain.kind='rectangle'", "domain.path=''", "concentration.0.tags=[1]"]),
    ]
    syntax = ["coil.sensitivity=[0,0,1]", "coil[0].x=1", "feild.amplitude=5", "time=3",
              "=1", "a.b.c.d=1", "coil.9.sensitivity=[0,0,1]", "time.n_t=[1,", "job.kind=3",
              "job.kind='calibrat'", "output.progress='maybe'"]
    cases += [(f"override:{s}", [cfg["default"]], [s]) for s in syntax]
    latin1 = tmp / "latin1.toml"
    latin1.write_bytes('[job]\nkind = "heat"\nname = "caf\xe9"\n'.encode("latin-1"))
    cases += [("config-latin1", [str(latin1)], []), ("config-missing", ["/nonexistent.toml"],
                                                      []),
              ("config-directory", [str(tmp)], [])]
    return cases


def _classify(res: dict, table: str | None) -> dict:
    """A clean refusal that does not name the mutated table did not test the mutation."""
    if res["outcome"] == "clean" and res.get("code") == 2 and table and table not in \
            res.get("message", res["stderr"]):
        res["outcome"] = "clean-other"
    return res


def _non_finite_summaries(out: Path) -> list[str]:
    """The summary.json files under ``out`` holding NaN or infinite numbers (an exit-0 run
    with such a summary is a silent bad result)."""
    bad = []
    for path in out.rglob("summary.json") if out.exists() else []:
        text = path.read_text()
        if any(word in text for word in ("NaN", "Infinity")):
            bad.append(str(path))
    return bad


def _run_case(args: list[str], np_: int, timeout: float, out: Path) -> dict:
    sets_output = any(s.startswith("output.dir=") for s in args[1:])
    cmd = [str(ROOT / ".venv" / "bin" / "llgfem"), "run", *args[:1],
           *([] if sets_output else ["-o", str(out)])]  # -o would win over output.dir
    for s in args[1:]:
        cmd += ["--set", s]
    if np_ > 1:
        cmd = [str(ROOT / ".venv" / "bin" / "mpiexec"), "-n", str(np_), *cmd]
    t0 = time.monotonic()
    env = dict(os.environ, LLGFEM_ERROR_WAIT="3")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              start_new_session=True)
    except subprocess.TimeoutExpired as e:
        return {"outcome": "hang", "seconds": time.monotonic() - t0,
                "stderr": (e.stderr or b"")[-300:].decode(errors="replace")
                if isinstance(e.stderr, bytes) else str(e.stderr)[-300:]}
    err = proc.stderr
    lines = [ln for ln in err.splitlines() if ln.startswith("llgfem:")]
    if "Traceback" in err:
        outcome = "traceback"
    elif proc.returncode in (2, 3):
        outcome = "clean" if len(lines) == 1 else "messy"
    elif proc.returncode == 0:
        bad = _non_finite_summaries(out)
        outcome = "silent" if bad else "ok"
        if bad:
            err += f"\nnon-finite numbers in {bad}"
    else:
        outcome = "internal"
    return {"outcome": outcome, "code": proc.returncode,
            "seconds": round(time.monotonic() - t0, 1), "stderr": err.strip()[-400:],
            "message": lines[0][:1000] if lines else ""}


#: jobs that checkpoint: fast settings of the first run, the resume key, a changed problem
CHECKPOINT_JOBS = {
    "aao_test3": (["time.n_t=11", "aao.max_iter=4", "aao.checkpoint_every=2"], "aao",
                  "aao.mu=100.0"),
    "calibrate_test2": (["time.n_t=21", "calibrate.max_iter=4", "calibrate.checkpoint_every=2"],
                        "calibrate", "calibrate.mu=0.5"),
}


def _damage_checkpoint(folder: Path, how: str, np_: int) -> None:
    """Damage the checkpoint set under ``folder`` (``how``: see :func:`_checkpoint_cases`)."""
    (ckdir,) = {f.parent for f in folder.rglob("*.manifest.json")}
    manifest = next(ckdir.glob("*.manifest.json"))
    last = np_ - 1
    npz, meta = next(ckdir.glob(f"*.rank{last}.npz")), next(ckdir.glob(f"*.rank{last}.json"))
    if how == "manifest-truncated":
        manifest.write_bytes(manifest.read_bytes()[: manifest.stat().st_size // 2])
    elif how == "manifest-missing":
        manifest.unlink()
    elif how == "npz-truncated":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif how == "npz-bitflip":
        data = bytearray(npz.read_bytes())
        data[len(data) // 2] ^= 0xFF
        npz.write_bytes(bytes(data))
    elif how == "json-garbage":
        meta.write_text("{not json")
    elif how == "rank-files-missing":
        npz.unlink()
        meta.unlink()
    elif how == "torn":  # the last rank claims an earlier iteration (valid JSON)
        d = json.loads(meta.read_text())
        d["iteration"] = int(d.get("iteration", 2)) - 2
        meta.write_text(json.dumps(d))


def _checkpoint_cases(tmp: Path, np_: int, timeout: float) -> list[dict]:
    """Resume runs from damaged, foreign or other-rank-count checkpoint sets (each refused
    with exit 2 on every rank) and from an intact set (resumed, exit 0)."""
    import shutil

    cases = []
    for name, (sets, table, changed) in CHECKPOINT_JOBS.items():
        config = str(ROOT / "demos" / "configs" / f"{name}.toml")
        base = tmp / f"ck-{name}"
        first = _run_case([config, *sets], np_, timeout, base)
        if first["outcome"] != "ok":
            cases.append({**first, "case": f"checkpoint:{name}:first-run", "expect": "ok"})
            continue
        resume = [*sets, f"{table}.resume=true", f"{table}.max_iter=6"]
        damages = ["manifest-truncated", "manifest-missing", "npz-truncated", "npz-bitflip",
                   "json-garbage", "rank-files-missing", "torn"]
        runs = [(d, resume, np_, "clean") for d in damages]
        runs += [("foreign-problem", [*resume, changed], np_, "clean"),
                 ("other-rank-count", resume, 1 if np_ > 1 else 2, "clean"),
                 ("intact", resume, np_, "ok")]
        for how, args, n, expect in runs:
            out = tmp / f"ck-{name}-{how}"
            shutil.copytree(base, out)
            if how in damages:
                _damage_checkpoint(out, how, np_)
            res = _run_case([config, *args], n, timeout, out)
            cases.append({**res, "case": f"checkpoint:{name}:{how} (np {n})", "expect": expect})
    return cases


def phase_run(np_: int, timeout: float, limit: int, seed: int) -> dict:
    """Run a sample of refused mutations, the file faults and accepted mutations."""
    rng = random.Random(seed)
    refused, accepted = [], []
    for path in CONFIGS:
        for m in mutations(path):
            s = as_override(m)
            if s is None:
                continue
            if m.expect == "any" and Path(m.config).stem in NOT_RUN:
                continue
            (accepted if m.expect == "any" else refused).append((m, s))
    rng.shuffle(refused)
    rng.shuffle(accepted)
    results, counts = [], collections.Counter()
    with tempfile.TemporaryDirectory(prefix="llgfem-fuzz-") as tmpdir:
        tmp = Path(tmpdir)
        _surrogate_fixture(tmp, np_, timeout)
        cases = [(label, args, sets, None) for label, args, sets in _file_faults(tmp)]
        for m, s in refused[: limit // 2]:
            cases.append((m.label, [m.config], [s], m.table))
        for m, s in accepted[: limit - limit // 2]:
            cases.append((m.label, [m.config], [*fast_settings(m.config), s], m.table))
        for i, (label, args, sets, table) in enumerate(cases):
            res = _classify(_run_case([*args, *sets], np_, timeout, tmp / f"out{i}"), table)
            res["case"] = label
            counts[res["outcome"]] += 1
            results.append(res)
            print(f"[{i + 1}/{len(cases)}] {res['outcome']:9s} {label}", flush=True)
        for res in _checkpoint_cases(tmp, np_, timeout):
            if res["outcome"] == "ok" and res["expect"] != "ok":
                res["outcome"] = "silent"  # a damaged/foreign set was resumed
            elif res["outcome"] == "clean" and res["expect"] == "ok":
                res["outcome"] = "refused-valid"
            counts[res["outcome"]] += 1
            results.append(res)
            print(f"[ckpt] {res['outcome']:9s} {res['case']}", flush=True)
    return {"tried": len(results), "np": np_, "counts": dict(counts),
            "not_clean": [r for r in results if r["outcome"] not in ("clean", "ok")],
            "clean_messages": [(r["case"], r.get("message", "")[:300]) for r in results
                               if r["outcome"] == "clean"],
            "ok_cases": [r["case"] for r in results if r["outcome"] == "ok"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=["validate", "run", "checkpoints"])
    p.add_argument("--np", type=int, default=1)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    a = p.parse_args()
    if a.phase == "validate":
        report = phase_validate()
    elif a.phase == "checkpoints":
        with tempfile.TemporaryDirectory(prefix="llgfem-fuzz-") as tmpdir:
            cases = _checkpoint_cases(Path(tmpdir), a.np, a.timeout)
        report = {"tried": len(cases), "np": a.np, "cases": [
            (c["case"], c["expect"], c["outcome"], c.get("stderr", "")[-200:]) for c in cases]}
    else:
        report = phase_run(a.np, a.timeout, a.limit, a.seed)
    text = json.dumps(report, indent=1, default=str)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
    print(json.dumps({k: v for k, v in report.items() if k in ("tried", "np", "counts")}))


if __name__ == "__main__":
    main()
