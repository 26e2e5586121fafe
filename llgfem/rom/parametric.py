r"""Parameter-affine POD-Galerkin ROMs and greedy selection of training parameters.

Full model y' = F(t; μ) y with F(t; μ) = Σ_k c_k(t; μ) A_k: the matrices A_k do not depend on
the parameter μ (for the Brown–Néel Lissajous model μ is the offset field G x, i.e. the position in
the field of view, and c_k ∈ {1, ξ_a, ξ_aξ_b, ξ̇_a, κ} are functions of ξ(t; μ)).  With an
orthonormal basis U (UᵀU = I):

    Â_k = Uᵀ A_k U   (projected once),   a' = Σ_k c_k(t; μ) Â_k a,   ŷ = U a,

so Uᵀ F(t; μ) U = Σ_k c_k(t; μ) Â_k for every μ and t: one projection serves every parameter.
An optional output map G (n_out × n) is reduced to Ψ = G U alongside.

Residual indicator (offline/online split): with z = (c_1 a, …, c_K a) and the Gram blocks
M_kl = (A_k U)ᵀ(A_l U),

    ‖F U a − U ȧ‖² = zᵀ M z − ‖ȧ‖²,   ȧ = Σ_k c_k Â_k a,

so the residual of a reduced trajectory costs O(K² r²) per sample.  The greedy loop
(``greedy_selection``) starts from one training parameter, builds the POD basis of the
snapshots of the selected parameters, and adds the candidate with the largest indicator until
the indicator falls below ``tol`` or ``max_selected`` are chosen.

Online time stepping (``integrate_rosenbrock``): the reduced system is dense and small, so a
step is one r × r LU of W = I/(hγ) − F(t_n) and six triangular solves of the L-stable,
stiffly accurate 4th-order Rosenbrock method RODAS4 (Hairer & Wanner, Solving ODEs II, §IV.7),
with its embedded 3rd-order error estimate and adaptive h.  For the linear system a' = F(t) a:

    W K_i = F(t_n + α_i h) Y_i + Σ_{j<i} (C_ij/h) K_j + h γ_i Ḟ(t_n) a_n,
    Y_i = a_n + Σ_{j<i} A_ij K_j,   a_{n+1} = a_n + Σ_i M_i K_i,   err = K_6,

with F(t) Y = Σ_k c_k(t) (Â_k Y) evaluated as one (K r × r) product.  The equation is linear
and the outputs of interest are homogeneous of degree 0 in a (mass-normalised), so the state is
rescaled to unit max-norm after every step (the log of the scale is accumulated): no leak
shift is needed, and the error is controlled relative to the state's max-norm.

Notation: N full size, r reduced size, K number of affine terms, μ parameter, h step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import get_lapack_funcs

from llgfem.rom.galerkin import ReducedModel
from llgfem.rom.pod import PODResult, pod

__all__ = [
    "GreedyResult",
    "ParametricReductor",
    "ParametricROM",
    "RosenbrockResult",
    "greedy_selection",
    "integrate_rosenbrock",
]


@dataclass
class ParametricROM(ReducedModel):
    """Reduced terms Â_k, the basis U, the reduced output map Ψ = G U and residual Gram blocks.

    Attributes:
        psi: Ψ = G U (n_out × r) or None.
        gram: M_kl = (A_k U)ᵀ(A_l U), shape (K, K, r, r), or None.
    """

    psi: np.ndarray | None = None
    gram: np.ndarray | None = None
    seconds: float = 0.0

    def operator(self, c: np.ndarray) -> np.ndarray:
        """Σ_k c_k Â_k for one coefficient vector."""
        return sum(ck * a for ck, a in zip(c, self.matrices, strict=True))

    def rates(self, c: np.ndarray, a: np.ndarray) -> np.ndarray:
        """ȧ(t_i) = Σ_k c_k(t_i) Â_k a(t_i) for c (n_t, K), a (r, n_t)."""
        out = np.zeros_like(a)
        for ck, ak in zip(c.T, self.matrices, strict=True):
            if np.any(ck):
                out += ck[None, :] * (ak @ a)
        return out

    def residual(self, c: np.ndarray, a: np.ndarray) -> np.ndarray:
        """‖F U a − U ȧ‖ at every sample (needs ``gram``), shape (n_t,)."""
        if self.gram is None:
            raise ValueError("this reduced model was built without residual Gram blocks")
        active = np.flatnonzero(np.any(c != 0, axis=0))
        z = c[:, active].T[:, None, :] * a[None, :, :]  # (K', r, n_t)
        m = self.gram[np.ix_(active, active)]
        full = np.einsum("kit,klij,ljt->t", z, m, z, optimize=True)
        adot = self.rates(c, a)
        return np.sqrt(np.maximum(full - np.einsum("it,it->t", adot, adot), 0.0))


class ParametricReductor:
    """Projects every parameter-independent term A_k once (and the output map, if any).

    Args:
        matrices: the A_k (SciPy sparse or dense, N × N).
        output_map: G (n_out × N) or None.
        residual: also build the Gram blocks of the residual indicator.
    """

    def __init__(self, matrices: Sequence, output_map: np.ndarray | None = None,
                 residual: bool = True):
        self.matrices = [sp.csr_matrix(a) for a in matrices]
        self.output_map = output_map
        self.with_residual = residual

    def reduce(self, basis: np.ndarray) -> ParametricROM:
        """Galerkin projection onto the (orthonormal) columns of ``basis``."""
        t0 = time.perf_counter()
        u = np.asarray(basis, float)
        au = [a @ u for a in self.matrices]
        reduced = [u.T @ x for x in au]
        psi = None if self.output_map is None else self.output_map @ u
        gram = None
        if self.with_residual:
            k = len(au)
            gram = np.empty((k, k, u.shape[1], u.shape[1]))
            for i in range(k):
                for j in range(i, k):
                    gram[i, j] = au[i].T @ au[j]
                    gram[j, i] = gram[i, j].T
        return ParametricROM(reduced, u, psi=psi, gram=gram,
                             seconds=time.perf_counter() - t0)


@dataclass
class GreedyResult:
    """Outcome of :func:`greedy_selection`.

    Attributes:
        selected: indices of the chosen training parameters, in order.
        indicators: per iteration, the indicator of every candidate (NaN for selected ones).
        pod: the POD of the final snapshot set.
        rom: the final reduced model.
        seconds: wall time (snapshots, POD, projections, indicators).
    """

    selected: list[int]
    indicators: list[np.ndarray]
    pod: PODResult
    rom: ParametricROM
    seconds: float
    history: list[dict] = field(default_factory=list)


def greedy_selection(n_candidates: int, snapshots: Callable[[int], np.ndarray],
                     indicator: Callable[[ParametricROM, int], float],
                     reductor: ParametricReductor, first: int = 0, max_selected: int = 6,
                     tol: float = 0.0, rank: int | None = None,
                     energy: float | None = None) -> GreedyResult:
    """Greedy choice of training parameters for one POD basis.

    Args:
        n_candidates: number of candidate parameters (indexed 0..n−1).
        snapshots: i -> snapshot matrix (N × n_s) of candidate i (a FOM run).
        indicator: (rom, i) -> error indicator of the ROM at candidate i.
        reductor: projects the affine terms onto a basis.
        first: the first training parameter.
        max_selected: at most this many training parameters.
        tol: stop when the largest indicator is below ``tol``.
        rank, energy: POD truncation (see :func:`llgfem.rom.pod.pod`).

    Returns:
        The selection, the indicator history, the final POD and ROM.
    """
    if not 0 <= first < n_candidates:
        raise ValueError(f"first must be in [0, {n_candidates}), got {first}")
    t0 = time.perf_counter()
    selected, blocks, history, ind_hist = [first], [snapshots(first)], [], []
    while True:
        basis = pod(np.hstack(blocks), rank=rank, energy=energy)
        rom = reductor.reduce(basis.modes)
        values = np.full(n_candidates, np.nan)
        for i in range(n_candidates):
            if i not in selected:
                values[i] = indicator(rom, i)
        ind_hist.append(values)
        worst = int(np.nanargmax(values)) if np.any(np.isfinite(values)) else -1
        history.append({"selected": list(selected), "rank": basis.rank,
                        "max_indicator": float(np.nanmax(values)) if worst >= 0 else 0.0,
                        "argmax": worst})
        if worst < 0 or values[worst] <= tol or len(selected) >= max_selected:
            break
        selected.append(worst)
        blocks.append(snapshots(worst))
    return GreedyResult(selected, ind_hist, basis, rom, time.perf_counter() - t0, history)


# -- online time stepping ------------------------------------------------------------------------
# RODAS4 in the form W K_i = f(Y_i) + Σ C_ij K_j/h + hγ_i f_t (Hairer & Wanner 1996, rodas.f)
_ROS_ALPHA = np.array([0.0, 0.386, 0.21, 0.63, 1.0, 1.0])
_ROS_GAMMA = np.array([0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0])
_ROS_A = np.zeros((6, 6))
_ROS_C = np.zeros((6, 6))
_ROS_A[1, 0] = 1.544
_ROS_A[2, :2] = (0.9466785280815826, 0.2557011698983284)
_ROS_A[3, :3] = (3.314825187068521, 2.896124015972201, 0.9986419139977817)
_ROS_A[4, :4] = (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895)
_ROS_A[5, :5] = (*_ROS_A[4, :4], 1.0)
_ROS_C[1, 0] = -5.6688
_ROS_C[2, :2] = (-2.430093356833875, -0.2063599157091915)
_ROS_C[3, :3] = (-0.1073529058151375, -9.594562251023355, -20.47028614809616)
_ROS_C[4, :4] = (7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616)
_ROS_C[5, :5] = (8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
                 -6.058818238834054)
_ROS_M = np.array([*_ROS_A[4, :4], 1.0, 1.0])
_ROS_AC = [np.stack([_ROS_A[i, :i], _ROS_C[i, :i]]) for i in range(6)]


@dataclass
class RosenbrockResult:
    """States at the output times (rescaled to unit max-norm) and step statistics.

    Attributes:
        y: states (r, n_out); column j is a(s_j)/scale_j.
        log_scale: log of the scale factors (a(s_j) = e^{log_scale_j} y_j).
        steps, rejected: accepted and rejected steps.
        seconds: wall time.
    """

    y: np.ndarray
    log_scale: np.ndarray
    steps: int
    rejected: int
    seconds: float


def integrate_rosenbrock(mats: Sequence[np.ndarray],
                         coefficients: Callable[[np.ndarray], np.ndarray], a0: np.ndarray,
                         s_out: np.ndarray, rtol: float = 1e-7, atol: float = 1e-10,
                         h0: float | None = None, max_steps: int = 10**6,
                         rate_step: float = 1e-3, substeps: int = 0) -> RosenbrockResult:
    """Integrate a' = Σ_k c_k(s) Â_k a with adaptive RODAS4 (module docstring) onto ``s_out``.

    Args:
        mats: the K dense r × r matrices Â_k.
        coefficients: vectorised s (n,) -> c (n, K).
        a0: state at s_out[0].
        s_out: increasing output times (steps end exactly on them).
        rtol, atol: local error tolerance rtol·min(1, |a_{n+1}|_max) with the state rescaled
            to |a_n|_max = 1 after every step (the scale of a linear system's state is
            arbitrary, so there is no absolute tolerance); ``atol`` is a floor of it.
        h0: first step (default: a hundredth of the first output interval).
        max_steps: step limit (RuntimeError beyond).
        rate_step: half-width of the central difference for ċ(s).
        substeps: > 0: exactly this many equal steps per output interval, no error control.

    Returns:
        :class:`RosenbrockResult`.
    """
    t_start = time.perf_counter()
    stack = np.ascontiguousarray(np.stack([np.asarray(m, float) for m in mats]))
    k_terms, r, _ = stack.shape
    flat = stack.reshape(k_terms, r * r)
    getrf, getrs = get_lapack_funcs(("getrf", "getrs"), (flat,))
    eye = np.eye(r)
    s_out = np.asarray(s_out, float)
    out = np.empty((r, s_out.size))
    logs = np.zeros(s_out.size)
    a = np.asarray(a0, float).copy()
    scale = float(np.abs(a).max())
    a /= scale
    log_scale = float(np.log(scale))
    out[:, 0], logs[0] = a, log_scale
    h = h0 if h0 is not None else (s_out[1] - s_out[0]) / 100 if s_out.size > 1 else 1.0
    steps = rejected = 0
    s = float(s_out[0])
    gam = _ROS_GAMMA[0]
    for j in range(1, s_out.size):
        target = float(s_out[j])
        if substeps:
            h = (target - s) / substeps * (1 + 1e-12)
        while s < target:
            last = s + h >= target * (1 - 1e-14) - 1e-300
            hh = target - s if last else h
            times = np.concatenate([s + _ROS_ALPHA[:5] * hh, [s - rate_step, s + rate_step]])
            c = coefficients(times)
            c[5] = (c[6] - c[5]) / (2 * rate_step)  # ċ(s)
            ops = (c[:6] @ flat).reshape(6, r, r)  # F(s + α_i h), i < 5, and Ḟ(s)
            lu, piv, info = getrf(eye / (hh * gam) - ops[0])
            if info != 0:
                raise RuntimeError(f"singular Rosenbrock matrix at s = {s:.6g} (h = {hh:.3g})")
            fdot = ops[5] @ a
            ks = np.empty((6, r))
            ks[0] = getrs(lu, piv, ops[0] @ a + (hh * gam) * fdot)[0]
            for i in range(1, 6):
                comb = _ROS_AC[i] @ ks[:i]  # (Σ A_ij K_j, Σ C_ij K_j)
                f_i = ops[min(i, 4)] @ (a + comb[0]) + comb[1] / hh
                if _ROS_GAMMA[i]:
                    f_i += (hh * _ROS_GAMMA[i]) * fdot
                ks[i] = getrs(lu, piv, f_i)[0]
            a_new = a + _ROS_M @ ks
            size = min(1.0, float(np.abs(a_new).max()))  # |a|_max = 1 (rescaled)
            sc = max(rtol * size, atol)
            err = float(np.sqrt(np.mean((ks[5] / sc) ** 2)))
            fac = min(6.0, max(0.2, 0.9 * (err + 1e-300) ** -0.25))
            if (err <= 1.0 or substeps) and np.all(np.isfinite(a_new)):
                s = target if last else s + hh
                scale = np.abs(a_new).max()
                a = a_new / scale
                log_scale += float(np.log(scale))
                steps += 1
                if not substeps:
                    h = hh * fac if not last or hh >= h else max(h, hh * fac)
            else:
                rejected += 1
                h = hh * (fac if np.isfinite(err) else 0.2)
            if steps + rejected > max_steps:
                raise RuntimeError(f"Rosenbrock: more than {max_steps} steps (s = {s:.6g}, "
                                   f"h = {h:.3g}, rtol {rtol:g})")
        out[:, j], logs[j] = a, log_scale
    return RosenbrockResult(out, logs, steps, rejected, time.perf_counter() - t_start)
