"""µMAG standard problem 4 datasets through magnum.np (paper 001, §3), an optional extra.

magnum.np (PyPI ``magnumnp``) needs PyTorch, which this package never depends on; the
generator :mod:`llgfem/surrogates/sp4_magnumnp.py <llgfem.surrogates.sp4_magnumnp>` is a
standalone script run by a *side interpreter* that has ``magnumnp`` (by default the Python 3.11
environment ``.venv-sp4`` made by ``tools/bootstrap-sp4.sh``).  :func:`generate_sp4_dataset`
finds that interpreter, runs the script in a subprocess (resuming an existing file), reads the
file back in the layout of :mod:`llgfem.surrogates.data` and accepts it only if the reference
run passes:

    SP4 field 1, ``mu0 H = (-24.6, 4.3, 0.0) mT``, from the s-state:
    ``max_q |<m_q>(1 ns) - m_ref_q| <= 1e-2``,  ``m_ref = (-0.983, 0.140, 0.042)``

(the published reference values quoted in issue 7).  Interpreter lookup order: the
``python`` argument, ``$LLGFEM_MAGNUMNP_PYTHON``, ``<repo>/.venv-sp4/bin/python``, then the
current interpreter if it can import ``magnumnp``.

Notation: ``n`` fields, ``s`` time points, ``T`` horizon [s], ``|h|`` = ``mu0 |H|`` [mT],
angle [deg] from ``e_x`` in the film plane, ``<m>`` the cell-averaged magnetisation.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from llgfem.config import ConfigError
from llgfem.errors import DataError
from llgfem.surrogates.data import TrajectoryDataset, read_dataset

__all__ = [
    "REFERENCE_M_1NS",
    "REFERENCE_TOLERANCE",
    "SP4DatasetSpec",
    "SP4ReferenceError",
    "SideEnvironmentError",
    "check_reference",
    "find_magnumnp_python",
    "generate_sp4_dataset",
    "generator_command",
]

SCRIPT = Path(__file__).with_name("sp4_magnumnp.py")
REPO = Path(__file__).resolve().parents[2]
ENV_VAR = "LLGFEM_MAGNUMNP_PYTHON"
REFERENCE_FIELD_MT = (-24.6, 4.3, 0.0)
REFERENCE_M_1NS = (-0.983, 0.140, 0.042)
REFERENCE_TOLERANCE = 1e-2


class SideEnvironmentError(ConfigError, RuntimeError):
    """No interpreter with magnum.np was found, or the generator failed (``llgfem run``: exit
    status 2)."""


class SP4ReferenceError(DataError):
    """The field-1 reference run misses the published ``<m>(1 ns)``: dataset refused (a
    :class:`llgfem.errors.DataError`, exit status 2)."""


@dataclass(frozen=True)
class SP4DatasetSpec:
    """The ``[sp4]`` table: field samples and integration settings of the SP4 dataset.

    Attributes:
        n_fields: number ``n`` of field samples (the paper: 300).
        h_range: ``mu0 |H|`` range in mT (the paper: [30, 40]).
        angle_range: in-plane angle range in degrees from ``e_x`` (the paper: [180, 200]).
        s: time points on ``[0, T]`` including ``t = 0`` (the paper: 100).
        T: horizon in seconds (1 ns; the reference check reads ``<m>(T)`` and needs T = 1 ns).
        seed: seed of the samples.
        atol, rtol: tolerances of magnum.np's RKF45.
        threads: ``torch.set_num_threads`` of the generator.
        max_fields: trajectories added by one call (0 = all that are missing).
        python: side interpreter ("" = the lookup of the module docstring).
    """

    n_fields: int = 300
    h_range: tuple[float, float] = (30.0, 40.0)
    angle_range: tuple[float, float] = (180.0, 200.0)
    s: int = 100
    T: float = 1e-9
    seed: int = 0
    atol: float = 1e-5
    rtol: float = 1e-5
    threads: int = 1
    max_fields: int = 0
    python: str = ""

    def validate(self, where: str = "sp4") -> None:
        from llgfem.config import ConfigError

        if self.n_fields < 1 or self.s < 2 or self.threads < 1 or self.max_fields < 0:
            raise ConfigError(f"{where}: need n_fields >= 1, s >= 2, threads >= 1, "
                              "max_fields >= 0")
        for name in ("h_range", "angle_range"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ConfigError(f"{where}.{name}: need finite lower <= upper")
        if not (self.T > 0 and self.atol > 0 and 0 < self.rtol < 1):
            raise ConfigError(f"{where}: T and atol must be > 0, 0 < rtol < 1")


def _has_magnumnp(python: str) -> bool:
    if Path(python).resolve() == Path(sys.executable).resolve():
        return importlib.util.find_spec("magnumnp") is not None
    probe = [python, "-c", "import importlib.util as u, sys; "
             "sys.exit(u.find_spec('magnumnp') is None)"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def find_magnumnp_python(python: str | None = None) -> str:
    """The side interpreter (lookup order of the module docstring).

    Raises:
        SideEnvironmentError: nothing found, or an explicit choice does not exist.
    """
    explicit = python or os.environ.get(ENV_VAR, "")
    if explicit:
        if not Path(explicit).exists():
            raise SideEnvironmentError(f"magnum.np interpreter {explicit!r} does not exist "
                                       "(create it with tools/bootstrap-sp4.sh)")
        return explicit
    venv = REPO / ".venv-sp4" / "bin" / "python"
    if venv.exists():
        return str(venv)
    if _has_magnumnp(sys.executable):
        return sys.executable
    raise SideEnvironmentError(
        "SP4 datasets need magnum.np + PyTorch in a side environment: run "
        f"`bash tools/bootstrap-sp4.sh` (creates {REPO / '.venv-sp4'}) or set ${ENV_VAR}")


def generator_command(spec: SP4DatasetSpec, path: str | Path, python: str,
                      script: str | Path = SCRIPT) -> list[str]:
    """The argv of one generator call (settings -> command-line flags)."""
    return [python, str(script), str(path), "--n-fields", str(spec.n_fields),
            "--h-range", *map(repr, spec.h_range), "--angle-range", *map(repr, spec.angle_range),
            "--seed", str(spec.seed), "--s", str(spec.s), "--T", repr(spec.T),
            "--atol", repr(spec.atol), "--rtol", repr(spec.rtol),
            "--threads", str(spec.threads), "--max-fields", str(spec.max_fields)]


def check_reference(mean_m_1ns, reference=REFERENCE_M_1NS,
                    tolerance: float = REFERENCE_TOLERANCE) -> dict:
    """Compare ``<m>(1 ns)`` of field 1 with the reference (max-norm of the difference).

    Returns:
        ``{"mean_m_1ns", "reference", "max_abs_error", "tolerance", "passed"}``.

    Raises:
        SP4ReferenceError: the error exceeds ``tolerance`` (or is not finite).
    """
    m = np.asarray(mean_m_1ns, dtype=float)
    err = float(np.max(np.abs(m - np.asarray(reference, dtype=float))))
    result = {"mean_m_1ns": m.tolist(), "reference": list(reference), "max_abs_error": err,
              "tolerance": tolerance, "passed": bool(err <= tolerance)}
    if not result["passed"]:
        raise SP4ReferenceError(
            f"SP4 field 1: <m>(1 ns) = {np.round(m, 4).tolist()} differs from the reference "
            f"{list(reference)} by {err:.3g} > {tolerance}: dataset refused")
    return result


def read_reference(path: str | Path, T: float = 1e-9) -> np.ndarray:
    """``<m>(T)`` of the field-1 run stored in ``path`` (``/reference/mean_m``)."""
    from llgfem.errors import reading, require_file

    path = require_file(path, "SP4 dataset")
    with reading(path, "SP4 dataset"), h5py.File(path, "r") as f:
        if "reference/mean_m" not in f:
            raise SP4ReferenceError(f"{path}: no /reference/mean_m (field-1 run): refused")
        field = tuple(float(c) for c in f["reference/field_mT"][...])
        times = f["times"][...]
        if not np.allclose(field, REFERENCE_FIELD_MT) or not np.isclose(times[-1], T):
            raise SP4ReferenceError(f"{path}: reference run is field {field} mT up to "
                                    f"{times[-1]:g} s, not field 1 up to {T:g} s: refused")
        return f["reference/mean_m"][-1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``), so
    an ``llgfem run`` killed from outside (a job scheduler, ``timeout -s KILL``) leaves no
    magnum.np process behind; a no-op elsewhere."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)
        except OSError:  # pragma: no cover - another libc
            pass


def generate_sp4_dataset(spec: SP4DatasetSpec, path: str | Path, python: str | None = None,
                         script: str | Path | None = None,
                         timeout: float | None = None) -> tuple[TrajectoryDataset, dict]:
    """Run (or resume) the magnum.np generator, check field 1, read the dataset.

    Serial: call it on one rank.  The generator's output goes to ``<path>.log``.

    Args:
        spec: samples and settings (passed to the script as flags).
        path: HDF5 file; an existing file with the same settings is completed, not rewritten.
        python: side interpreter (default: :func:`find_magnumnp_python`).
        script: the generator (default: the module attribute ``SCRIPT``; tests pass a
            stand-in).
        timeout: seconds before the subprocess is killed (None = no limit).

    Returns:
        The dataset (possibly fewer than ``n_fields`` rows when ``max_fields`` bounds a call)
        and the reference check of :func:`check_reference`.

    Raises:
        SideEnvironmentError: no interpreter, or the generator exits non-zero.
        SP4ReferenceError: the field-1 check fails (the file is kept for inspection).
    """
    spec.validate()
    if not np.isclose(spec.T, 1e-9):
        raise ValueError(f"generate_sp4_dataset: the reference check needs T = 1 ns, "
                         f"got {spec.T}")
    python = find_magnumnp_python(python or spec.python or None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_suffix(path.suffix + ".log")
    with open(log, "a") as out:
        proc = subprocess.run(generator_command(spec, path, python, script or SCRIPT), stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout,
                              preexec_fn=_die_with_parent)
    if proc.returncode != 0:
        tail = [ln.strip() for ln in log.read_text().splitlines() if ln.strip()][-1:]
        raise SideEnvironmentError(f"SP4 generator ({python}) exited with {proc.returncode} "
                                   f"({tail[0] if tail else 'no output'}); see {log}")
    check = check_reference(read_reference(path, spec.T))
    data = read_dataset(path)
    data.meta["reference_check"] = check
    return data, check
