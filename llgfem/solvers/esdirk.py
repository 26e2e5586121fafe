"""Building blocks of the adaptive scheme (:mod:`llgfem.solvers.adaptive`).

* the implicit Butcher tableaus ``(A, c)`` of PETSc's fully implicit ARKIMEX types: stiffly
  accurate ESDIRKs (``A[0, 0] = 0``, singly diagonal ``A_ii = gamma`` for ``i >= 1``,
  ``b = A[-1]``, ``c = A 1``) of Kennedy & Carpenter (2003), L-stable;
* the options of the scheme and the trajectory record;
* PETSc option presets for the stage solves.

Notation: ``s`` stages, ``N`` steps, ``n`` owned dofs of ``m``; block arrays ``(m, H)`` have
``2 n`` entries per rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["REDUNDANT_LU_LIMIT", "TABLEAUS", "AdaptiveOptions", "AdaptiveTrajectory", "Tableau",
           "direct_solver_options", "esdirk_tableau"]


@dataclass(frozen=True)
class Tableau:
    """Implicit Butcher tableau ``(A, c)`` of a stiffly accurate ESDIRK (``b = A[-1]``)."""

    name: str
    A: np.ndarray

    @property
    def c(self) -> np.ndarray:
        return self.A.sum(axis=1)

    @property
    def stages(self) -> int:
        return self.A.shape[0]


def _ark3() -> np.ndarray:
    g = 1767732205903.0 / 4055673282236.0
    return np.array([
        [0.0, 0.0, 0.0, 0.0],
        [g, g, 0.0, 0.0],
        [2746238789719.0 / 10658868560708.0, -640167445237.0 / 6845629431997.0, g, 0.0],
        [1471266399579.0 / 7840856788654.0, -4482444167858.0 / 7529755066697.0,
         11266239266428.0 / 11593286722821.0, g]])


def _ark4() -> np.ndarray:
    return np.array([
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [1.0 / 4, 1.0 / 4, 0.0, 0.0, 0.0, 0.0],
        [8611.0 / 62500, -1743.0 / 31250, 1.0 / 4, 0.0, 0.0, 0.0],
        [5012029.0 / 34652500, -654441.0 / 2922500, 174375.0 / 388108, 1.0 / 4, 0.0, 0.0],
        [15267082809.0 / 155376265600, -71443401.0 / 120774400, 730878875.0 / 902184768,
         2285395.0 / 8070912, 1.0 / 4, 0.0],
        [82889.0 / 524892, 0.0, 15625.0 / 83664, 69875.0 / 102672, -2260.0 / 8211, 1.0 / 4]])


#: Implicit tableaus of PETSc's ARKIMEX types (Kennedy & Carpenter 2003), as registered in
#: PETSc ``src/ts/impls/arkimex/arkimex.c``: ``"3"`` = ARK3(2)4L[2]SA, ``"4"`` = ARK4(3)6L[2]SA.
TABLEAUS = {"3": _ark3, "4": _ark4}


def esdirk_tableau(tstype: str) -> Tableau:
    """The implicit tableau of ARKIMEX type ``tstype`` (``"3"`` or ``"4"``)."""
    if tstype not in TABLEAUS:
        raise ValueError(f"llg.adaptive.tstype: {tstype!r} is not one of {sorted(TABLEAUS)}")
    return Tableau(tstype, TABLEAUS[tstype]())


@dataclass(frozen=True)
class AdaptiveOptions:
    """Options of the adaptive scheme (PETSc options under ``prefix`` win over these).

    Attributes:
        tstype: ARKIMEX type, ``"4"`` (ARK4(3)6L[2]SA) or ``"3"`` (ARK3(2)4L[2]SA).
        rtol, atol: TSAdapt tolerances on ``m`` (``atol = None``: same as ``rtol``).
        dt0: first trial step (``None``: ``T / 1000``).
        max_steps: limit of accepted steps.
        newton_rtol, newton_atol: stage Newton tolerances (TS and replay); Newton also stops
            when the update is below 1e-13 of the state (round-off with tiny steps, where
            the residual ``shift (Y - Z) - rhs`` cannot get below ``shift`` x round-off).
        prefix: PETSc options prefix of the TS (the replay SNES uses ``prefix + "stage_"``).
    """

    tstype: str = "4"
    rtol: float = 1e-5
    atol: float | None = None
    dt0: float | None = None
    max_steps: int = 100000
    newton_rtol: float = 1e-12
    newton_atol: float = 1e-12
    prefix: str = "llgfem_llg_ts_"

    def validate(self, where: str = "llg.adaptive") -> None:
        """Raise ``ValueError`` naming the config key of a bad value (same on all ranks; the
        builders turn it into a ``ConfigError``)."""
        esdirk_tableau(self.tstype)
        for key in ("rtol", "newton_rtol", "newton_atol"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{where}.{key}: must be > 0, got {getattr(self, key)!r}")
        if self.atol is not None and not self.atol > 0:
            raise ValueError(f"{where}.atol: must be > 0, got {self.atol!r}")
        if self.dt0 is not None and not self.dt0 > 0:
            raise ValueError(f"{where}.dt0: must be > 0, got {self.dt0!r}")
        if int(self.max_steps) < 1:
            raise ValueError(f"{where}.max_steps: must be >= 1, got {self.max_steps!r}")


@dataclass
class AdaptiveTrajectory:
    """Step values of a run: ``times (N+1,)``, ``m``, ``mdot``, ``H`` of shape ``(N+1, n)``.

    ``Y``, ``K`` (replay only): per step the stage values ``Y_i`` and derivatives ``K_i`` as
    block arrays, shape ``(N, s, 2 n)`` (memory ``2 s`` block vectors per step); used by
    :meth:`AdaptiveLL.tangent` and :meth:`AdaptiveLL.adjoint`.  ``a`` the parameters of the
    run, ``rejected`` TS step rejections.
    """

    times: np.ndarray
    m: np.ndarray
    mdot: np.ndarray
    H: np.ndarray
    Y: np.ndarray | None = None
    K: np.ndarray | None = None
    a: tuple[float, float] | None = None
    rejected: int = 0

    @property
    def steps(self) -> int:
        return len(self.times) - 1

    def at(self, times: np.ndarray) -> np.ndarray:
        """Indices of ``times`` among the step times (they must be step times, e.g. the
        ``stop_times`` of :meth:`AdaptiveLL.forward`)."""
        times = np.asarray(times, dtype=float)
        idx = np.clip(np.searchsorted(self.times, times), 0, len(self.times) - 1)
        lower = np.clip(idx - 1, 0, None)
        idx = np.where(np.abs(self.times[lower] - times) < np.abs(self.times[idx] - times),
                       lower, idx)
        scale = max(abs(self.times[-1]), 1.0)
        if np.any(np.abs(self.times[idx] - times) > 1e-12 * scale):
            raise ValueError("AdaptiveTrajectory.at: some times are not step times")
        return idx


#: Up to this many global unknowns, parallel runs gather the stage matrix on every rank and
#: factorise it with PETSc's LU (``PCREDUNDANT``): measured 4x faster than MUMPS for the
#: 7-node drive case on 2 ranks (many small factorisations); MUMPS above.
REDUNDANT_LU_LIMIT = 20000


def direct_solver_options(J) -> dict:
    """Direct LU presets for the stage matrices (forward and transposed solves)."""
    if J.getType() == "seqaij":  # one rank: PETSc's own LU
        return {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "petsc"}
    if J.getSize()[0] <= REDUNDANT_LU_LIMIT:
        return {"ksp_type": "preonly", "pc_type": "redundant", "redundant_pc_type": "lu"}
    return {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
