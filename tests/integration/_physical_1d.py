"""The small physical 1-D calibration setting shared by the ``[data]`` tests.

A 2 cm interval (``cells`` cells), Bartels-Prohl scheme, m0 along y, alpha_D = 0.1, three
receive coils x, y, z, one Gaussian sample at 2 mm; ``FIELD`` is an FFP drive at 100 kHz.
"""

FIELD = {"kind": "ffp", "gradient": 4e-3, "amplitude": 2e-5, "frequency": 1e5,
         "direction": [1.0, 0.0, 0.0], "offset": [0.0, 2e-6, 0.0]}
COILS = [{"name": n, "sensitivity": s} for n, s in
         (("x", [1.0, 0.0, 0.0]), ("y", [0.0, 1.0, 0.0]), ("z", [0.0, 0.0, 1.0]))]


def physical_1d(tmp, name: str, *, cells: int = 8, T: float = 1e-5, n_t: int = 41,
                **extra) -> dict:
    """A ``calibrate`` config dict writing to ``tmp``; ``extra`` tables replace/add tables."""
    data = {"job": {"kind": "calibrate", "name": name},
            "domain": {"kind": "interval", "lower": [-0.01], "upper": [0.01], "n": [cells]},
            "time": {"T": T, "n_t": n_t},
            "llg": {"physical": True, "scheme": "bartels_prohl", "initial": "field",
                    "initial_direction": [0.0, 1.0, 0.0]},
            "physical": {"alpha_D": 0.1}, "observation": {"mu0": 1.0}, "coil": COILS,
            "concentration": [{"name": "s", "center": [0.002], "width": 0.004}],
            "output": {"dir": str(tmp), "fields": False, "plots": False}}
    data.update(extra)
    return data
