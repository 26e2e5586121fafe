"""Self-checks of the MDF reader/writer for benches (``fixture_read``, ``mdf_roundtrip``).

``check_fixture_read`` reads the real MDF 2.0 file of ``../shared/fixtures/mdf`` (written by
MPIMeasurements.jl in 2018, not by this project) with :func:`~llgfem.io.mdf.read_mdf` and
compares it with the facts listed in that folder's README and with the raw HDF5 values read by
h5py. ``check_mdf_roundtrip`` writes and reads back a time-domain measurement with background
frames, a frequency-domain measurement with a frequency selection and the frame axis last, and
a complex system matrix, and compares every value bit for bit (the signals derived from them
to round-off). Both return ``{"ok": bool, "failures": [...], ...}`` and never raise for a
failed comparison, so a bench can record ``false`` honestly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from llgfem.io.mdf_format import read_mdf, write_mdf
from llgfem.io.mdf_signals import frequency_domain, system_matrix, system_matrix_mdf, time_domain
from llgfem.io.mdf_types import MDF, Acquisition, MDFError, Measurement, Receiver, drive_field

__all__ = ["FIXTURE", "check_fixture_read", "check_mdf_roundtrip"]

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "mdf" / \
    "robot_calibration_9pos.mdf"
"""Default location of the fixture (``/work/shared`` next to the repository)."""


def _run(checks: dict[str, Callable[[], bool]]) -> list[str]:
    failures = []
    for name, check in checks.items():
        try:
            if not check():
                failures.append(name)
        except Exception as exc:  # a crash is a failed check, reported by name
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    return failures


def check_fixture_read(path: str | Path = FIXTURE) -> dict[str, Any]:
    """Read the robot-calibration fixture and check it against its README and raw h5py.

    Returns:
        ``{"ok", "failures", "path", "shape", "drive_frequency_hz"}``; ``ok`` is False (with
        the reason) if the file is missing or unreadable.
    """
    path = Path(path)
    try:
        mdf = read_mdf(path)
        with h5py.File(path, "r") as f:
            data = f["measurement/data"][()]
            dcf = f["acquisition/receiver/dataConversionFactor"][()]
    except (MDFError, OSError, KeyError) as exc:
        return {"ok": False, "failures": [f"read: {exc}"], "path": str(path)}
    acq, meas, cal = mdf.acquisition, mdf.measurement, mdf.calibration
    df, rx = acq.drivefield, acq.receiver
    flags = [v for k, v in vars(meas).items() if k.startswith("is_") and isinstance(v, bool)]
    checks = {
        "data shape (9, 1, 1, 152) float32": lambda: meas.data.shape == (9, 1, 1, 152)
        and meas.data.dtype == np.float32,
        "data equals raw h5py": lambda: np.array_equal(meas.data, data),
        "1 drive channel": lambda: df.num_channels == 1,
        "strength 5 mT (in T)": lambda: np.isclose(df.strength[0, 0, 0], 5e-3, rtol=1e-12),
        "baseFrequency 125 MHz": lambda: np.isclose(df.base_frequency, 125e6, rtol=1e-12),
        "divider 4864": lambda: int(df.divider[0, 0]) == 4864,
        "FOV 0.09 m in x": lambda: np.isclose(cal.field_of_view[0], 0.09, rtol=1e-12),
        "9 positions": lambda: system_matrix(mdf)[1].shape == (9, 3),
        "flags all 0": lambda: len(flags) == 8 and not any(flags)
        and not meas.is_background_frame.any(),
        "dataConversionFactor present": lambda: np.array_equal(rx.data_conversion_factor, dcf),
        "numSamplingPoints 152": lambda: rx.num_sampling_points == 152,
    }
    return {"ok": not (failures := _run(checks)), "failures": failures, "path": str(path),
            "shape": list(meas.data.shape),
            "drive_frequency_hz": float(df.base_frequency / df.divider[0, 0])}


def _measurement_mdf(fourier: bool) -> MDF:
    """6 frames (0 and 5 background), J = 2, C = 2, V = 16; FD with 5 selected frequencies."""
    rng = np.random.default_rng(7)
    td = rng.standard_normal((6, 2, 2, 16))
    sel = np.array([0, 1, 3, 4, 8]) if fourier else None
    data = np.moveaxis(np.fft.rfft(td, axis=-1)[..., sel], 0, -1) if fourier else td
    rx = Receiver(num_channels=2, num_sampling_points=16, bandwidth=1.25e6,
                  data_conversion_factor=[[2.0, 0.5], [0.25, -1.0]])
    acq = Acquisition(drivefield=drive_field(2.5e6, [102, 96], [12e-3, 12e-3]), receiver=rx,
                      num_frames=6, num_periods_per_frame=2, gradient=np.diag([-1, -1, 2.0]))
    meas = Measurement(data=np.ascontiguousarray(data), is_fourier_transformed=fourier,
                       is_fast_frame_axis=fourier, is_frequency_selection=fourier,
                       frequency_selection=sel,
                       is_background_frame=np.isin(np.arange(6), [0, 5]))
    return MDF(acquisition=acq, measurement=meas)


def _same_arrays(a: MDF, b: MDF) -> bool:
    ma, mb = a.measurement, b.measurement
    pairs = [(ma.data, mb.data), (ma.is_background_frame, mb.is_background_frame),
             (a.acquisition.drivefield.strength, b.acquisition.drivefield.strength),
             (a.acquisition.receiver.data_conversion_factor,
              b.acquisition.receiver.data_conversion_factor)]
    if ma.frequency_selection is not None:
        pairs.append((ma.frequency_selection, mb.frequency_selection))
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in pairs)


def check_mdf_roundtrip(folder: str | Path) -> dict[str, Any]:
    """Write -> read round trips of measurements and a system matrix in ``folder``.

    Returns:
        ``{"ok", "failures", "max_signal_error"}`` (the largest difference of derived
        time/frequency-domain signals before and after the round trip).
    """
    folder = Path(folder)
    errors: list[float] = []

    def measurement(fourier: bool) -> bool:
        mdf = _measurement_mdf(fourier)
        back = read_mdf(write_mdf(folder / f"roundtrip_{'fd' if fourier else 'td'}.mdf", mdf))
        for func in (time_domain, frequency_domain):
            errors.append(float(np.max(np.abs(func(mdf) - func(back)))))
        return _same_arrays(mdf, back) and errors[-1] == 0.0 and errors[-2] == 0.0

    def matrix() -> bool:
        rng = np.random.default_rng(8)
        S = rng.standard_normal((6, 2, 4)) + 1j * rng.standard_normal((6, 2, 4))
        rx = Receiver(num_channels=2, num_sampling_points=16, bandwidth=1.25e6)
        mdf = system_matrix_mdf(S, drivefield=drive_field(2.5e6, [102], [12e-3]), receiver=rx,
                                size=(3, 2, 1), field_of_view=(0.03, 0.02, 0.001),
                                frequency_selection=[1, 2, 5, 7], snr=np.ones((1, 2, 4)))
        S2, pos = system_matrix(read_mdf(write_mdf(folder / "roundtrip_sm.mdf", mdf)))
        return np.array_equal(S2[:, 0], S) and pos.shape == (6, 3)

    failures = _run({"time-domain measurement with background": lambda: measurement(False),
                     "frequency-domain measurement with selection": lambda: measurement(True),
                     "system matrix (complex, bit-equal)": matrix})
    return {"ok": not failures, "failures": failures,
            "max_signal_error": max(errors) if errors else None}
