"""MDF v2 (Magnetic Particle Imaging Data Format) in llgfem: the public module.

Reading and writing (:mod:`llgfem.io.mdf_format`, dataclasses in :mod:`llgfem.io.mdf_types`)::

    mdf = read_mdf("calibration.mdf")          # MDF dataclass tree, validated, SI units
    write_mdf("out.mdf", mdf)                  # MDF v2.1.0, atomic (temp file + rename)

Signals (:mod:`llgfem.io.mdf_signals`)::

    u = time_domain(mdf)                       # (N, J, C, V) in receiver unit, a_c r + b_c
    U = frequency_domain(mdf)                  # (N, J, C, K) complex, rfft over V samples
    f = frequencies(mdf)                       # (K,) Hz, f_k = k 2B / V
    S, x = system_matrix(mdf)                  # (P, J, C, K) complex, positions (P, 3) m
    mdf = system_matrix_mdf(S, drivefield=..., receiver=..., size=..., field_of_view=...)
    f, a, beta = read_transfer_function("tf.h5")
    a_q = interpolate_transfer_function(f, a, f_query)

Bench self-checks (:mod:`llgfem.io.mdf_checks`): ``check_fixture_read()`` and
``check_mdf_roundtrip(folder)`` return ``{"ok": bool, "failures": [...], ...}``.

See ``docs/mdf.md`` for the layout, units and the conventions chosen where the specification
leaves room (0-based indices in Python, 2.0 aliases, gradient layout, background handling).
"""

from llgfem.io.mdf_checks import check_fixture_read, check_mdf_roundtrip
from llgfem.io.mdf_format import read_mdf, write_mdf
from llgfem.io.mdf_signals import (
    calibration_positions,
    frequencies,
    frequency_domain,
    interpolate_transfer_function,
    read_transfer_function,
    system_matrix,
    system_matrix_mdf,
    time_domain,
)
from llgfem.io.mdf_types import (
    MDF,
    MDF_VERSION,
    REQUIRED,
    Acquisition,
    Calibration,
    DriveField,
    MDFError,
    Measurement,
    Receiver,
    drive_field,
)
from llgfem.io.mdf_validate import data_axes, validate_mdf

__all__ = [
    "MDF",
    "MDF_VERSION",
    "REQUIRED",
    "Acquisition",
    "Calibration",
    "DriveField",
    "MDFError",
    "Measurement",
    "Receiver",
    "calibration_positions",
    "check_fixture_read",
    "check_mdf_roundtrip",
    "data_axes",
    "drive_field",
    "frequencies",
    "frequency_domain",
    "interpolate_transfer_function",
    "read_mdf",
    "read_transfer_function",
    "system_matrix",
    "system_matrix_mdf",
    "time_domain",
    "validate_mdf",
    "write_mdf",
]
