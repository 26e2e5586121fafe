"""Receive channels: band-pass, measured transfer function from the fixture, sensitivity maps."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from llgfem.config import ConfigError, parse_section
from llgfem.scanner.receive import MU0, ReceiveChannel, ReceiveConfig

FIXTURE = Path("/work/shared/fixtures/mdf/mps_transfer_function.h5")


def test_bandpass_corner_and_ideal():
    ch = ReceiveChannel(ReceiveConfig(transfer_function="bandpass", band=(1e3, 1e6), order=2))
    a = ch.transfer(np.array([1e3, 3e4, 1e6]))
    assert abs(a[0]) == pytest.approx(0.5 * abs(1 / (1 + 1j * 1e-3)) ** 2, rel=1e-12)
    r = 30.0 / np.sqrt(1 + 30.0**2) / np.sqrt(1 + 0.03**2)  # |high-pass| |low-pass| at 30 kHz
    assert abs(a[1]) == pytest.approx(r**2, rel=1e-12)
    ideal = ReceiveChannel(ReceiveConfig(gain=2.0)).transfer(np.array([0.0, 5e5]))
    np.testing.assert_array_equal(ideal, [2.0, 2.0])


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared fixture not present")
def test_measured_transfer_function_interpolates_the_fixture():
    with h5py.File(FIXTURE) as f:
        freqs, tf = f["frequencies"][()], f["transferFunction"][()]
    ch = ReceiveChannel(ReceiveConfig(transfer_function="measured", transfer_file=str(FIXTURE),
                                      channel=0))
    np.testing.assert_allclose(ch.transfer(freqs[100:110]), tf[0, 100:110], rtol=1e-12)
    mid = 0.5 * (freqs[500] + freqs[501])
    amp = abs(ch.transfer(np.array([mid]))[0])  # linear in amplitude (and unwrapped phase)
    assert amp == pytest.approx(0.5 * (abs(tf[0, 500]) + abs(tf[0, 501])), rel=1e-12)
    assert ch.transfer(np.array([1e3, 2e7])).tolist() == [0, 0]  # outside the measured band
    with pytest.raises(ConfigError, match="receiver.channel"):
        ReceiveChannel(ReceiveConfig(transfer_function="measured", transfer_file=str(FIXTURE),
                                     channel=5))


def test_missing_transfer_file_and_bad_values_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="receiver.transfer_file: not found"):
        ReceiveChannel(ReceiveConfig(transfer_function="measured",
                                     transfer_file=str(tmp_path / "none.h5")))
    for key, value in [("band", [2e3, 1e3]), ("sensitivity_unit", "V"),
                       ("transfer_function", "lowpass"), ("sensitivity", [0, 0, 0])]:
        tf = "bandpass" if key == "band" else "ideal"
        table = {"transfer_function": tf, key: value}
        with pytest.raises(ConfigError, match=f"rx.{key}"):
            parse_section(ReceiveConfig, table, "rx")


def test_sensitivity_units_and_maps(tmp_path):
    ch = ReceiveChannel(ReceiveConfig(sensitivity=(0, 2.0, 0), sensitivity_unit="1/m"))
    np.testing.assert_allclose(ch.sensitivity(np.zeros((2, 3))), [[0, 2 * MU0, 0]] * 2)
    ax = np.array([-1.0, 1.0])
    x, y, z = np.meshgrid(ax, ax, ax, indexing="ij")
    values = np.stack([1 + x, y, 0 * z], axis=-1)  # linear: trilinear interpolation exact
    path = tmp_path / "map.npz"  # tmp_path is per process (also under mpiexec)
    np.savez(path, x=ax, y=ax, z=ax, values=values)
    ch = ReceiveChannel(ReceiveConfig(sensitivity_map=str(path)))
    pts = np.array([[0.5, -0.25, 0.1], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(ch.sensitivity(pts), [[1.5, -0.25, 0], [1, 0, 0]])
    with pytest.raises(ConfigError, match="outside the map"):
        ch.sensitivity(np.array([[2.0, 0, 0]]))
