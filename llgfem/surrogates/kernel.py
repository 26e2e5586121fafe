"""Low-rank kernel surrogates of LLG dynamics (paper 001, §2.2, eqs. (5)-(16)).

Plain NumPy/SciPy, serial (every MPI rank may train its own copy). The pieces:

* RBF kernel (5): ``k(x, y) = exp(-gamma ||x - y||^2)``.
* Nyström factor (9): ``K[x] ~ Phi_r Phi_r^T`` with
  ``Phi_r[x] = K[x, x_r] K[x_r]^{-1/2}`` for a random subset ``x_r`` of ``r`` training points;
  ``K[x_r]^{-1/2}`` by a symmetric eigendecomposition, eigenvalues below
  ``cutoff * lambda_max`` dropped (so ``Phi_r`` may have fewer than ``r`` columns).
* ℓ-kPCA: linear PCA of the (centred) low-rank features ``Phi_r``; since
  ``H K H ~ (H Phi_r)(H Phi_r)^T`` (``H`` the centring matrix) its eigenvalues are those of the
  kernel PCA of the centred Gram matrix, obtained from the small ``r x r`` matrix.
* ℓ-kRR (14), push-through identity: the dense kRR estimator (12)
  ``K[y, x] (K[x] + alpha I)^{-1} X~`` becomes
  ``Phi_r[y] (Phi_r[x]^T Phi_r[x] + alpha I)^{-1} Phi_r[x]^T X~`` (an ``r x r`` solve).
* Pre-image map (15)-(16): ℓ-kRR from the kPCA projections ``P_d phi(x_i)`` back to ``x_i``.
* Latent integrator (ν-step, field-tagged): ℓ-kRR from ``[h tag | z_{j-ν+1} ... z_j]`` to
  ``z_{j+1}`` (the literal map of the paper; ``increment=True`` learns ``z_{j+1} - z_j``),
  rolled out from the first ν encoded states of a trajectory.

Notation: ``x`` training states (rows), ``x_r`` Nyström landmarks, ``r`` rank, ``Phi`` the
Nyström features, ``d`` number of principal components, ``z`` latent (kPCA) coordinates,
``alpha`` ridge parameter (``lambda`` in the issue), ``nu`` steps of the integrator, ``p``
length of the field tag, ``N`` mesh nodes (states have ``3N`` entries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

__all__ = [
    "KernelSurrogate",
    "KernelSurrogateConfig",
    "LowRankKPCA",
    "LowRankKRR",
    "Nystroem",
    "dense_krr",
    "inverse_sqrt",
    "load_surrogate",
    "rbf_kernel",
    "save_surrogate",
]


def rbf_kernel(x: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    """The Gram matrix ``K[x, y]_ij = exp(-gamma ||x_i - y_j||^2)`` of eq. (5).

    Args:
        x: ``(m, D)`` points (rows).
        y: ``(l, D)`` points.
        gamma: kernel width parameter (> 0).

    Returns:
        ``(m, l)`` kernel matrix.
    """
    sq = (np.einsum("ij,ij->i", x, x)[:, None] + np.einsum("ij,ij->i", y, y)[None, :]
          - 2.0 * x @ y.T)
    return np.exp(-gamma * np.maximum(sq, 0.0))


def inverse_sqrt(k: np.ndarray, cutoff: float = 1e-10) -> np.ndarray:
    """``K^{-1/2}`` of a symmetric positive semi-definite matrix, as an ``(r, r')`` factor.

    Eigenpairs with ``lambda <= cutoff * lambda_max`` are dropped, so the result ``U L^{-1/2}``
    has ``r' <= r`` columns and ``K[x, x_r] U L^{-1/2}`` is the Nyström factor of eq. (9).
    """
    lam, u = sla.eigh(0.5 * (k + k.T))
    keep = lam > cutoff * max(lam[-1], 0.0)
    if not keep.any():
        raise ValueError("inverse_sqrt: the matrix has no eigenvalue above the cutoff")
    return u[:, keep] / np.sqrt(lam[keep])


@dataclass
class Nystroem:
    """The learned feature map ``Phi_r[y] = K[y, x_r] K[x_r]^{-1/2}`` of eq. (9).

    Attributes:
        landmarks: ``(r, D)`` subset ``x_r`` of the training points.
        gamma: RBF parameter.
        inv_sqrt: ``(r, r')`` factor ``K[x_r]^{-1/2}`` (see :func:`inverse_sqrt`).
    """

    landmarks: np.ndarray
    gamma: float
    inv_sqrt: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, rank: int, gamma: float, rng: np.random.Generator | None = None,
            cutoff: float = 1e-10) -> Nystroem:
        """Pick ``min(rank, m)`` random rows of ``x`` as landmarks (all rows if ``rank >= m``)."""
        m = x.shape[0]
        if rank >= m:
            idx = np.arange(m)
        else:
            idx = np.sort((rng or np.random.default_rng(0)).choice(m, rank, replace=False))
        xr = np.array(x[idx])
        return cls(xr, gamma, inverse_sqrt(rbf_kernel(xr, xr, gamma), cutoff))

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """The features ``Phi_r[y]`` (``(l, r')``) of new points ``y``."""
        return rbf_kernel(y, self.landmarks, self.gamma) @ self.inv_sqrt


def dense_krr(k_train: np.ndarray, targets: np.ndarray, alpha: float) -> np.ndarray:
    """Dual coefficients ``(K[x] + alpha I)^{-1} X~`` of the dense kRR (11)-(12)."""
    return sla.solve(k_train + alpha * np.eye(k_train.shape[0]), targets, assume_a="pos")


@dataclass
class LowRankKRR:
    """ℓ-kRR (14): weights ``W^T = (Phi^T Phi + alpha I)^{-1} Phi^T X~`` on low-rank features.

    Attributes:
        weights: ``(r', dim Y)``; the estimator is ``Phi_r[y] @ weights``.
    """

    weights: np.ndarray

    @classmethod
    def fit(cls, phi: np.ndarray, targets: np.ndarray, alpha: float) -> LowRankKRR:
        """Solve the ``r' x r'`` ridge system of the push-through identity."""
        gram = phi.T @ phi + alpha * np.eye(phi.shape[1])
        return cls(sla.solve(gram, phi.T @ targets, assume_a="pos"))

    def __call__(self, phi: np.ndarray) -> np.ndarray:
        return phi @ self.weights


@dataclass
class LowRankKPCA:
    """ℓ-kPCA: PCA of the Nyström features (the kernel PCA of ``K ~ Phi Phi^T``).

    Attributes:
        mean: ``(r',)`` feature mean (centring in feature space).
        components: ``(r', d)`` orthonormal principal axes.
        eigenvalues: ``(d,)`` eigenvalues of the centred ``Phi^T Phi`` = nonzero eigenvalues of
            the centred Gram matrix ``H Phi Phi^T H``, decreasing.
    """

    mean: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray

    @classmethod
    def fit(cls, phi: np.ndarray, n_components: int) -> LowRankKPCA:
        """Eigendecomposition of the ``r' x r'`` centred feature covariance."""
        mean = phi.mean(axis=0)
        c = phi - mean
        lam, v = sla.eigh(c.T @ c)
        order = np.argsort(lam)[::-1][: min(n_components, phi.shape[1])]
        return cls(mean, v[:, order], np.maximum(lam[order], 0.0))

    def __call__(self, phi: np.ndarray) -> np.ndarray:
        """Projections ``P_d phi(y)``: latent coordinates ``z`` (``(l, d)``)."""
        return (phi - self.mean) @ self.components


@dataclass(frozen=True)
class KernelSurrogateConfig:
    """Hyper-parameters of :class:`KernelSurrogate` (gamma = 0: ``1/dim`` of the input).

    Attributes:
        rank_pca, gamma_pca: Nyström rank and RBF parameter of the kPCA (states).
        n_components: latent dimension ``d``.
        rank_pre, gamma_pre, alpha_pre: Nyström/RBF/ridge of the pre-image map (16).
        rank_int, gamma_int, alpha_int: same for the latent integrator.
        nu: steps of the integrator.
        increment: learn ``z_{j+1} - z_j`` instead of ``z_{j+1}``.
        cutoff: relative eigenvalue cutoff of ``K[x_r]^{-1/2}``.
        seed: seed of the landmark choice.
    """

    rank_pca: int = 200
    gamma_pca: float = 0.0
    n_components: int = 20
    rank_pre: int = 200
    gamma_pre: float = 0.0
    alpha_pre: float = 1e-8
    rank_int: int = 300
    gamma_int: float = 0.0
    alpha_int: float = 1e-8
    nu: int = 5
    increment: bool = False
    cutoff: float = 1e-10
    seed: int = 0

    def validate(self, where: str = "kernel") -> None:
        from llgfem.config import ConfigError

        ints = ("rank_pca", "n_components", "rank_pre", "rank_int", "nu")
        for name in ints:
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("gamma_pca", "gamma_pre", "gamma_int", "alpha_pre", "alpha_int"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{where}.{name}: must be >= 0")
        if not 0 < self.cutoff < 1:
            raise ConfigError(f"{where}.cutoff: must lie in (0, 1), got {self.cutoff}")


def _gamma(gamma: float, dim: int) -> float:
    return gamma if gamma > 0 else 1.0 / dim


def _windows(z: np.ndarray, tags: np.ndarray, nu: int) -> tuple[np.ndarray, np.ndarray]:
    """Integrator inputs ``[tag_j | z_{j-nu+1..j}]`` and the next states, all windows.

    Args:
        z: ``(n, s, d)`` latent trajectories.
        tags: ``(n, s, p)`` field tags.

    Returns:
        inputs ``(n (s - nu), p + nu d)`` and targets ``(n (s - nu), d)``.
    """
    n, s, d = z.shape
    js = np.arange(nu - 1, s - 1)
    hist = np.stack([z[:, js - k] for k in range(nu - 1, -1, -1)], axis=2)  # (n, J, nu, d)
    inputs = np.concatenate([tags[:, js], hist.reshape(n, len(js), nu * d)], axis=2)
    return inputs.reshape(-1, inputs.shape[-1]), z[:, js + 1].reshape(-1, d)


@dataclass
class _Affine:
    """``(x - shift) / scale`` (column-wise standardisation)."""

    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> _Affine:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.shift) / self.scale

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return y * self.scale + self.shift


class KernelSurrogate:
    """Field-tagged latent time stepping with ℓ-kPCA, the kRR pre-image (16) and ℓ-kRR (14).

    Train with :meth:`fit` on tags ``(n, s, p)`` and states ``(n, s, 3N)`` (the blocks of
    ``D(i, j, :)``); :meth:`predict` returns whole trajectories from their first ``nu`` states.
    Latent coordinates are divided by one scalar (their RMS) and the tags standardised per
    column before they enter the integrator and pre-image kernels.
    """

    def __init__(self, config: KernelSurrogateConfig | None = None):
        self.config = config or KernelSurrogateConfig()
        self.config.validate()

    def fit(self, tags: np.ndarray, states: np.ndarray) -> KernelSurrogate:
        """Learn the encoder (Nyström + ℓ-kPCA), the pre-image map and the integrator."""
        c, (n, s, dim) = self.config, states.shape
        if s <= c.nu:
            raise ValueError(f"KernelSurrogate.fit: need more than nu = {c.nu} time points")
        rng = np.random.default_rng(c.seed)
        x = states.reshape(-1, dim)
        self.encoder = Nystroem.fit(x, c.rank_pca, _gamma(c.gamma_pca, dim), rng, c.cutoff)
        phi = self.encoder(x)
        self.kpca = LowRankKPCA.fit(phi, c.n_components)
        z = self.kpca(phi)
        self.z_scale = float(np.sqrt(np.mean(z**2))) or 1.0
        z /= self.z_scale
        self._fit_preimage(z, x, rng)
        self.tag_scaler = _Affine.fit(tags.reshape(-1, tags.shape[-1]))
        self._fit_integrator(z.reshape(n, s, -1), tags, rng)
        return self

    def _fit_preimage(self, z: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> None:
        c = self.config
        self.pre_map = Nystroem.fit(z, c.rank_pre, _gamma(c.gamma_pre, z.shape[1]), rng,
                                    c.cutoff)
        self.pre_krr = LowRankKRR.fit(self.pre_map(z), x, c.alpha_pre)

    def _fit_integrator(self, z: np.ndarray, tags: np.ndarray, rng) -> None:
        c = self.config
        inputs, targets = _windows(z, self.tag_scaler(tags), c.nu)
        if c.increment:
            targets = targets - inputs[:, -z.shape[2]:]
        self.int_map = Nystroem.fit(inputs, c.rank_int, _gamma(c.gamma_int, inputs.shape[1]),
                                    rng, c.cutoff)
        self.int_krr = LowRankKRR.fit(self.int_map(inputs), targets, c.alpha_int)

    def encode(self, states: np.ndarray) -> np.ndarray:
        """Scaled latent coordinates ``z`` of states ``(..., 3N)`` -> ``(..., d)``."""
        x = states.reshape(-1, states.shape[-1])
        z = self.kpca(self.encoder(x)) / self.z_scale
        return z.reshape(*states.shape[:-1], z.shape[-1])

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The pre-image map (16): latent ``(..., d)`` -> states ``(..., 3N)``."""
        flat = z.reshape(-1, z.shape[-1])
        x = self.pre_krr(self.pre_map(flat))
        return x.reshape(*z.shape[:-1], x.shape[-1])

    def step(self, tag: np.ndarray, window: np.ndarray) -> np.ndarray:
        """``z_{j+1}`` from scaled tags ``(l, p)`` and windows ``(l, nu, d)``."""
        last = window[:, -1]
        u = np.concatenate([tag, window.reshape(len(window), -1)], axis=1)
        out = self.int_krr(self.int_map(u))
        return last + out if self.config.increment else out

    def rollout(self, tags: np.ndarray, z_first: np.ndarray) -> np.ndarray:
        """Latent trajectories ``(n, s, d)`` from tags ``(n, s, p)`` and ``z_first (n, nu, d)``."""
        nu, (n, s, _) = self.config.nu, tags.shape
        scaled = self.tag_scaler(tags)
        z = np.empty((n, s, z_first.shape[2]))
        z[:, :nu] = z_first
        for j in range(nu - 1, s - 1):
            z[:, j + 1] = self.step(scaled[:, j], z[:, j - nu + 1: j + 1])
        return z

    def predict(self, tags: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Whole trajectories ``(n, s, 3N)`` from tags ``(n, s, p)`` and ``first (n, nu, 3N)``.

        The first ``nu`` states are returned as given; later ones are decoded predictions.
        """
        nu = self.config.nu
        if first.shape[1] != nu:
            raise ValueError(f"KernelSurrogate.predict: need the first nu = {nu} states")
        z = self.rollout(tags, self.encode(first))
        out = self.decode(z[:, nu:])
        return np.concatenate([first, out], axis=1)


_MAPS = ("encoder", "pre_map", "int_map")


def save_surrogate(path, model: KernelSurrogate) -> None:
    """Store a fitted surrogate as NPZ (arrays + the config as JSON); serial."""
    import json
    from dataclasses import asdict

    arrays = {"config": np.array(json.dumps(asdict(model.config))),
              "z_scale": np.array(model.z_scale), "kpca_mean": model.kpca.mean,
              "kpca_components": model.kpca.components,
              "kpca_eigenvalues": model.kpca.eigenvalues,
              "pre_weights": model.pre_krr.weights, "int_weights": model.int_krr.weights,
              "tag_shift": model.tag_scaler.shift, "tag_scale": model.tag_scaler.scale}
    for name in _MAPS:
        ny = getattr(model, name)
        arrays.update({f"{name}_landmarks": ny.landmarks, f"{name}_inv_sqrt": ny.inv_sqrt,
                       f"{name}_gamma": np.array(ny.gamma)})
    np.savez(path, **arrays)


def load_surrogate(path) -> KernelSurrogate:
    """Read a surrogate written by :func:`save_surrogate`."""
    import json

    from llgfem.config import parse_section
    from llgfem.errors import load_npz, reading

    what = "surrogate.model"
    required = {"config": 0, "z_scale": 0, "kpca_mean": None, "kpca_components": 2,
                "kpca_eigenvalues": 1, "pre_weights": None, "int_weights": None,
                "tag_shift": None, "tag_scale": None}
    for name in _MAPS:
        required.update({f"{name}_landmarks": 2, f"{name}_inv_sqrt": 2, f"{name}_gamma": 0})
    a = load_npz(path, what, required)
    with reading(path, what):
        config = parse_section(KernelSurrogateConfig, json.loads(str(a["config"])),
                               f"{what} config")
    model = KernelSurrogate(config)
    for name in _MAPS:
        setattr(model, name, Nystroem(a[f"{name}_landmarks"], float(a[f"{name}_gamma"]),
                                      a[f"{name}_inv_sqrt"]))
    model.z_scale = float(a["z_scale"])
    model.kpca = LowRankKPCA(a["kpca_mean"], a["kpca_components"], a["kpca_eigenvalues"])
    model.pre_krr, model.int_krr = LowRankKRR(a["pre_weights"]), LowRankKRR(a["int_weights"])
    model.tag_scaler = _Affine(a["tag_shift"], a["tag_scale"])
    return model
