"""Stand-in for magnum.np in the SP4 generator: same CLI and file logic, analytic dynamics.

Run by path like ``llgfem/surrogates/sp4_magnumnp.py``; reuses its argument parsing and file
handling (create, resume, append, reference run) with a cheap simulator: ``N = 6`` cells, the
relaxed state along ``e_x`` and every cell rotating in the plane towards the field direction.
The field-1 run ends at ``$FAKE_SP4_M1NS`` (comma-separated) so tests can make the reference
check pass or fail; ``$FAKE_SP4_FAIL`` makes the script exit with status 3.
"""

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "llgfem" / "surrogates"))
import sp4_magnumnp  # noqa: E402  (the real script, imported by path)


class FakeSP4:
    coordinates = np.column_stack([np.arange(6.0), np.zeros(6), np.zeros(6)])

    def versions(self) -> dict:
        return {"fake": True}

    def relax(self) -> np.ndarray:
        return np.tile([1.0, 0.0, 0.0], (6, 1))

    def trajectory(self, m0, h_mT, times):
        if np.allclose(h_mT, sp4_magnumnp.FIELD1_MT):
            end = np.array([float(c) for c in os.environ["FAKE_SP4_M1NS"].split(",")])
            w = (times / times[-1])[:, None, None]
            return (1 - w) * m0[None] + w * end[None, None, :]
        a = np.arctan2(h_mT[1], h_mT[0]) * times / times[-1]
        m = np.stack([np.cos(a), np.sin(a), 0 * a], axis=-1)
        return np.repeat(m[:, None, :], len(m0), axis=1)


if __name__ == "__main__":
    if os.environ.get("FAKE_SP4_FAIL"):
        print("fake generator: failing on purpose", file=sys.stderr)
        sys.exit(3)
    sp4_magnumnp.run(sp4_magnumnp.parse_args(), FakeSP4())
