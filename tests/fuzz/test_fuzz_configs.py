"""Property-based fuzzing of configs, overrides and data files (issue 12, item 8).

Every generated bad input must end in a clean error: ``ConfigError`` naming the table or key
(exit status 2 and one line from the CLI), never another exception, never a hang.  Examples are
derandomised, so every MPI rank draws the same ones (the CLI calls are collective).
"""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
from fuzz_mutations import CONFIGS, VALUE_KINDS, Mutation, apply, as_override, mutations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpi4py import MPI

from llgfem.cli import _override, main, validate_config_data
from llgfem.config import ConfigError, read_toml
from llgfem.errors import DataError, load_npz

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
ALL = [m for path in CONFIGS for m in mutations(path)]
REFUSED = [m for m in ALL if m.expect == "refuse"]
OTHERS = [m for m in ALL if m.expect == "any"]


def _named(message: str, m: Mutation) -> bool:
    return m.table in message


@FUZZ
@given(st.sampled_from(REFUSED))
def test_invalid_input_is_refused_naming_the_key(m):
    with pytest.raises(ConfigError) as info:
        validate_config_data(apply(m), m.config)
    assert _named(str(info.value), m), (m.label, str(info.value))


@FUZZ
@given(st.sampled_from(OTHERS))
def test_questionable_values_never_crash_validation(m):
    message = ""
    try:
        validate_config_data(apply(m), m.config)
    except ConfigError as e:
        message = str(e)
    assert not message or _named(message, m), (m.label, message)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(m=st.sampled_from([m for m in REFUSED if as_override(m) is not None]))
def test_cli_refuses_bad_overrides_with_one_line(m, tmp_path_factory, capsys):
    comm = MPI.COMM_WORLD
    out = tmp_path_factory.getbasetemp() / f"o{comm.rank}"
    code = main(["run", m.config, "-o", str(out), "--set", as_override(m)])
    assert comm.allgather(code) == [2] * comm.size, m.label
    err = capsys.readouterr().err
    if comm.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("llgfem: error: "), err
        assert m.table in lines[0], (m.label, err)


KEYS = st.text(alphabet=string.ascii_lowercase + "_.[]0123456789 =", min_size=0, max_size=20)
VALUES = st.one_of(st.integers(-10, 10).map(str), st.floats(allow_nan=True).map(repr),
                   st.text(alphabet=string.printable, max_size=12),
                   st.sampled_from(["[0,0,1]", "[", "{a=1}", "nan", "inf", "-inf", "true",
                                    "'x'", '"', "[1,2,3,4]", "1e999"]))


@FUZZ
@given(st.sampled_from(CONFIGS), KEYS, VALUES)
def test_any_override_is_applied_or_refused_cleanly(path, key, value):
    """Random ``--set KEY=VALUE`` strings: a ConfigError or a valid config, nothing else."""
    data = read_toml(path)
    try:
        _override(data, f"{key}={value}")
        validate_config_data(data, str(path))
    except ConfigError:
        pass


@FUZZ
@given(st.sampled_from(CONFIGS), st.sampled_from(VALUE_KINDS))
def test_every_table_rejects_non_finite_numbers(path, kind):
    """For each config, the NaN/inf mutations of every numeric key are refused."""
    for m in mutations(path):
        if m.kind == kind and kind in ("nan", "inf"):
            with pytest.raises(ConfigError):
                validate_config_data(apply(m), m.config)


def _damage(data: bytes, how: str, where: float) -> bytes:
    cut = int(where * len(data))
    if how == "truncate":
        return data[:cut]
    if how == "flip":
        return data[:cut] + bytes([data[cut] ^ 0xFF]) + data[cut + 1:] if cut < len(data) \
            else data[:-1]
    return b""


@FUZZ
@given(st.sampled_from(["truncate", "flip", "empty"]), st.floats(0.0, 0.999))
def test_damaged_npz_is_a_data_error(tmp_path_factory, how, where):
    path = tmp_path_factory.mktemp("npz") / "basis.npz"
    np.savez(path, modes=np.eye(6)[:, :3], singular_values=np.arange(3.0))
    path.write_bytes(_damage(path.read_bytes(), how, where))
    arrays, message = None, ""
    try:
        arrays = load_npz(path, "brown_neel.basis", {"modes": 2})
    except DataError as e:
        message = str(e)
    if arrays is None:
        assert "brown_neel.basis" in message
    else:  # the damage missed the data (e.g. a flip in a zip comment): the data is intact
        np.testing.assert_array_equal(arrays["modes"], np.eye(6)[:, :3])


@FUZZ
@given(st.sampled_from([math.nan, math.inf, -math.inf]), st.integers(0, 17))
def test_non_finite_file_data_is_refused(tmp_path_factory, bad, index):
    path = tmp_path_factory.mktemp("npz") / "snap.npz"
    y = np.ones((6, 3))
    y.flat[index] = bad
    np.savez(path, y=y, t=np.arange(3.0))
    with pytest.raises(DataError, match="NaN or infinite"):
        load_npz(path, "brown_neel.snapshots", {"y": 2, "t": 1})
