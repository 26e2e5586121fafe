"""Dense autoencoder + latent feed-forward integrator for LLG dynamics (paper 001, §2.1).

Optional extra: needs JAX and optax (``pip install jax optax``).  JAX is imported lazily inside
the functions, so importing this module (or :mod:`llgfem.surrogates`) never requires it.  Serial
and CPU-only: every MPI rank may train its own copy.

The pieces, with the paper's numbers:

* Autoencoder, Table 1: encoder ``z = E([h | x]; w1)`` (dense ELU layers, a dropout layer after
  the last hidden one, a linear layer to the latent dimension ``d = 40``) with the field tag
  ``h`` as extra input; decoder ``x_hat = D(z; w2)`` (dense ELU layers, dropout after the first,
  linear output of size ``3N``).  Trained on the reconstruction error (2),
  ``min_{w1, w2} sum_i ||x_i - x_hat_i||^2`` (here: the mean over entries, on standardised
  states).
* Latent integrator, Table 2 and eq. (3): ``N([c_hat^{i-nu+1} ... c_hat^i]; w, h(t_i)) ->
  c_hat^{i+1}``, input size ``p + nu d`` (``2 + 5 * 40 = 202`` in the paper), dense ELU layers
  each followed by dropout, linear output of size ``d``; ``c_hat^i = c^i`` for ``i <= nu``.
* Forward-looking loss (4): ``sum_{j=1}^{ft} sum_{i=nu+j}^{s} ||C(i) - C_hat(i)||_F^2``, i.e.
  the integrator is rolled out ``ft = 15`` steps from every window of true latent states and all
  ``ft`` predictions are penalised (here: the mean over windows, steps and latent entries).

As in the paper the two networks are trained one after the other (the autoencoder by (2), then
the integrator on the frozen encoder's latent trajectories by (4)), each with Adam at learning
rate ``2e-4`` on shuffled mini-batches.  Departures, all configurable: states and tags are
standardised per column and latents divided by one scalar (their RMS) before they enter the
networks; ``increment=True`` (default) lets the integrator learn ``c^{i+1} - c^i`` (divided
by the RMS of the training increments) instead of ``c^{i+1}``; the default hidden sizes are
smaller than Tables 1-2 (see :meth:`AutoencoderSurrogateConfig.paper` for the paper's).

Notation: ``x`` states ``[m_x | m_y | m_z]`` (``3N``), ``h`` field tags (``p``), ``z``/``c``
latent coordinates (``d``), ``nu`` integrator steps, ``ft`` look-ahead steps, ``n`` fields,
``s`` time points, ``w`` network weights (``params``: a pytree of ``{"w", "b"}`` layers).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from llgfem.surrogates.kernel import _Affine  # the shared column-wise standardisation

__all__ = [
    "AutoencoderSurrogate",
    "AutoencoderSurrogateConfig",
    "forward_looking_loss",
    "init_params",
    "latent_segments",
    "load_autoencoder",
    "mlp",
    "reconstruction_loss",
    "save_autoencoder",
]


@dataclass(frozen=True)
class AutoencoderSurrogateConfig:
    """Hyper-parameters of :class:`AutoencoderSurrogate`.

    Attributes:
        latent_dim: latent dimension ``d`` (Table 1: 40).
        encoder_hidden: hidden widths of the encoder; the decoder uses them reversed.
        integrator_hidden: hidden widths of the integrator (Table 2: 400, 300, 300, 200, 100).
        dropout: dropout rate of the dropout layers (training only).
        nu: steps of the integrator (paper: 5).
        lookahead: ``ft`` of the forward-looking loss (4) (paper: 15; capped at ``s - nu``).
        learning_rate: Adam step size of both networks (paper: 2e-4).
        final_lr_fraction: cosine decay of the step size to this fraction over the epochs of
            each stage (1: constant, as in the paper).
        batch_size: mini-batch size (states for the autoencoder, windows for the integrator).
        epochs_ae, epochs_integrator: passes over the training data.
        increment: the integrator learns ``(z_{i+1} - z_i) / rms(increments)`` instead of
            ``z_{i+1}``.
        seed: seed of the initialisation, shuffling and dropout.
    """

    latent_dim: int = 40
    encoder_hidden: tuple[int, ...] = (200, 200)
    integrator_hidden: tuple[int, ...] = (200, 150, 100)
    dropout: float = 0.02
    nu: int = 5
    lookahead: int = 15
    learning_rate: float = 2e-4
    final_lr_fraction: float = 1.0
    batch_size: int = 64
    epochs_ae: int = 200
    epochs_integrator: int = 60
    increment: bool = True
    seed: int = 0

    @classmethod
    def paper(cls, **overrides) -> AutoencoderSurrogateConfig:
        """The layer sizes of Tables 1-2 (``d = 40``, 400-400, 400-300-300-200-100)."""
        base = cls(encoder_hidden=(400, 400), integrator_hidden=(400, 300, 300, 200, 100))
        return replace(base, **overrides)

    def validate(self, where: str = "autoencoder") -> None:
        from llgfem.config import ConfigError

        for name in ("latent_dim", "nu", "lookahead", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("epochs_ae", "epochs_integrator"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name}: must be >= 0")
        if min(self.encoder_hidden + self.integrator_hidden, default=1) < 1:
            raise ConfigError(f"{where}: hidden widths must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{where}.dropout: must lie in [0, 1), got {self.dropout}")
        if not 0 < self.final_lr_fraction <= 1:
            raise ConfigError(f"{where}.final_lr_fraction: must lie in (0, 1]")
        if not self.learning_rate > 0:
            raise ConfigError(f"{where}.learning_rate: must be > 0")


# ---------------------------------------------------------------- networks (pure functions)


def _init_dense(key, sizes: list[int]) -> list[dict]:
    """Glorot-uniform weights and zero biases of a dense stack ``sizes[0] -> ... -> sizes[-1]``."""
    import jax
    import jax.numpy as jnp

    layers = []
    for k, (fan_in, fan_out) in zip(jax.random.split(key, len(sizes) - 1),
                                    zip(sizes[:-1], sizes[1:], strict=True), strict=True):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = jax.random.uniform(k, (fan_in, fan_out), jnp.float32, -limit, limit)
        layers.append({"w": w, "b": jnp.zeros(fan_out, jnp.float32)})
    return layers


def init_params(config: AutoencoderSurrogateConfig, dim: int, p: int) -> dict:
    """Seeded parameters ``{"encoder", "decoder", "integrator"}`` (lists of dense layers).

    Args:
        config: layer sizes and seed.
        dim: state size ``3N``.
        p: tag size.
    """
    import jax

    d, hidden = config.latent_dim, list(config.encoder_hidden)
    k_enc, k_dec, k_int = jax.random.split(jax.random.PRNGKey(config.seed), 3)
    return {"encoder": _init_dense(k_enc, [p + dim, *hidden, d]),
            "decoder": _init_dense(k_dec, [d, *hidden[::-1], dim]),
            "integrator": _init_dense(k_int, [p + config.nu * d, *config.integrator_hidden, d])}


def mlp(layers: list[dict], x, dropout_after: tuple[int, ...] = (), rate: float = 0.0,
        key=None):
    """Dense ELU stack with a linear last layer; dropout after the listed hidden layers.

    Args:
        layers: ``[{"w", "b"}, ...]``.
        x: ``(..., n_in)`` inputs.
        dropout_after: indices of hidden layers followed by a dropout layer.
        rate: dropout rate; dropout is active only when ``key`` is given and ``rate > 0``.
        key: PRNG key of the dropout masks (``None``: inference).
    """
    import jax
    import jax.numpy as jnp

    for i, layer in enumerate(layers[:-1]):
        x = jax.nn.elu(x @ layer["w"] + layer["b"])
        if key is not None and rate > 0 and i in dropout_after:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - rate, x.shape)
            x = jnp.where(keep, x / (1.0 - rate), 0.0)
    return x @ layers[-1]["w"] + layers[-1]["b"]


def encode(params: dict, tags, x, rate: float = 0.0, key=None):
    """Table 1 encoder ``z = E([h | x])`` (dropout after the last hidden layer)."""
    import jax.numpy as jnp

    last = len(params["encoder"]) - 2
    return mlp(params["encoder"], jnp.concatenate([tags, x], axis=-1), (last,), rate, key)


def decode(params: dict, z, rate: float = 0.0, key=None):
    """Table 1 decoder ``x_hat = D(z)`` (dropout after the first hidden layer)."""
    return mlp(params["decoder"], z, (0,), rate, key)


def integrator_step(params: dict, tag, window, increment: float, rate: float = 0.0, key=None):
    """Eq. (3): ``z_{i+1}`` from scaled tags ``(B, p)`` and windows ``(B, nu, d)`` (Table 2).

    ``increment > 0``: ``z_{i+1} = z_i + increment * N(...)`` (``increment`` the RMS of the
    training increments); ``0``: ``z_{i+1} = N(...)`` as in the paper.
    """
    import jax.numpy as jnp

    u = jnp.concatenate([tag, window.reshape(window.shape[0], -1)], axis=-1)
    n_hidden = len(params["integrator"]) - 1
    out = mlp(params["integrator"], u, tuple(range(n_hidden)), rate, key)
    return window[:, -1] + increment * out if increment else out


def reconstruction_loss(params: dict, tags, x, rate: float = 0.0, key=None):
    """Eq. (2) as a mean over entries: ``mean ||x - D(E([h | x]))||^2``."""
    import jax
    import jax.numpy as jnp

    k_enc, k_dec = jax.random.split(key) if key is not None else (None, None)
    z = encode(params, tags, x, rate, k_enc)
    return jnp.mean((decode(params, z, rate, k_dec) - x) ** 2)


def forward_looking_loss(params: dict, tags, z, nu: int, increment: float, rate: float = 0.0,
                         key=None):
    """Eq. (4) on segments: roll ``ft`` steps from the first ``nu`` true latents of each segment.

    Args:
        params: network parameters (only ``"integrator"`` is used).
        tags: ``(B, nu + ft, p)`` scaled tags of the segments.
        z: ``(B, nu + ft, d)`` true (scaled) latent segments.
        nu: integrator steps.
        increment: see :func:`integrator_step`.
        rate, key: dropout (training only).

    Returns:
        Mean over segments, the ``ft`` predicted steps and latent entries of
        ``||c^i - c_hat^i||^2``.
    """
    import jax
    import jax.numpy as jnp

    ft = z.shape[1] - nu
    keys = jax.random.split(key, ft) if key is not None else [None] * ft
    window, err = z[:, :nu], 0.0
    for k in range(ft):  # unrolled once at trace time (ft is static)
        new = integrator_step(params, tags[:, nu - 1 + k], window, increment, rate, keys[k])
        err = err + jnp.mean((new - z[:, nu + k]) ** 2)
        window = jnp.concatenate([window[:, 1:], new[:, None]], axis=1)
    return err / ft


def latent_segments(tags: np.ndarray, z: np.ndarray, length: int) -> tuple[np.ndarray, ...]:
    """All time windows of ``(n, s, .)`` trajectories: ``(n (s - length + 1), length, .)``."""
    n, s = z.shape[:2]
    starts = np.arange(s - length + 1)
    idx = starts[:, None] + np.arange(length)[None, :]
    return (tags[:, idx].reshape(-1, length, tags.shape[2]),
            z[:, idx].reshape(-1, length, z.shape[2]))


# ---------------------------------------------------------------- training




def _adam(config: AutoencoderSurrogateConfig, n_steps: int):
    """optax Adam with a constant or cosine-decayed step size."""
    import optax

    lr = config.learning_rate
    if config.final_lr_fraction < 1:
        lr = optax.cosine_decay_schedule(lr, max(1, n_steps), config.final_lr_fraction)
    return optax.adam(lr)


def _train(params: dict, part: str, loss_fn, arrays: tuple[np.ndarray, ...],
           config: AutoencoderSurrogateConfig, epochs: int) -> tuple[dict, list[float]]:
    """Adam (optax) on ``params[part]`` over shuffled mini-batches of ``arrays``; epoch losses."""
    import jax
    import jax.numpy as jnp
    import optax

    m = len(arrays[0])
    bs = min(config.batch_size, m)
    opt = _adam(config, epochs * (m // bs))
    trainable = {k: v for k, v in params.items() if k in part.split("+")}
    frozen = {k: v for k, v in params.items() if k not in trainable}
    state = opt.init(trainable)

    @jax.jit
    def update(trainable, state, key, *batch):
        loss, grads = jax.value_and_grad(
            lambda t: loss_fn({**frozen, **t}, *batch, key=key))(trainable)
        steps, state = opt.update(grads, state, trainable)
        return optax.apply_updates(trainable, steps), state, loss

    rng, key = np.random.default_rng(config.seed), jax.random.PRNGKey(config.seed + 1)
    data = [jnp.asarray(a, jnp.float32) for a in arrays]
    history = []
    for _ in range(epochs):
        perm, losses = rng.permutation(m), []
        for b in range(m // bs):
            key, sub = jax.random.split(key)
            idx = perm[b * bs: (b + 1) * bs]
            trainable, state, loss = update(trainable, state, sub, *(a[idx] for a in data))
            losses.append(loss)
        history.append(float(np.mean(jax.device_get(losses))))
    return {**frozen, **trainable}, history


class AutoencoderSurrogate:
    """Field-tagged latent time stepping with a dense autoencoder (Table 1) and a FF-NN (Table 2).

    Same interface as :class:`llgfem.surrogates.kernel.KernelSurrogate`: :meth:`fit` on tags
    ``(n, s, p)`` and states ``(n, s, 3N)``; :meth:`predict` returns whole trajectories from
    their first ``nu`` states.  After :meth:`fit`, ``history`` holds the per-epoch training
    losses (``"ae"``: eq. (2), ``"integrator"``: eq. (4)) and ``fit_seconds`` of both stages.
    """

    def __init__(self, config: AutoencoderSurrogateConfig | None = None):
        self.config = config or AutoencoderSurrogateConfig()
        self.config.validate()

    def fit(self, tags: np.ndarray, states: np.ndarray) -> AutoencoderSurrogate:
        """Train the autoencoder by (2), then the integrator by (4) on the frozen latents."""
        c, (n, s, dim) = self.config, states.shape
        if s <= c.nu:
            raise ValueError(f"AutoencoderSurrogate.fit: need more than nu = {c.nu} time points")
        p = tags.shape[2]
        self.tag_scaler = _Affine.fit(tags.reshape(-1, p))
        self.state_scaler = _Affine.fit(states.reshape(-1, dim))
        h, x = self.tag_scaler(tags.reshape(-1, p)), self.state_scaler(states.reshape(-1, dim))
        self.params = init_params(c, dim, p)
        t0 = time.perf_counter()
        self.params, ae = _train(self.params, "encoder+decoder", self._ae_loss, (h, x), c,
                                 c.epochs_ae)
        t1 = time.perf_counter()
        z = self._encode_scaled(h, x)
        self.z_scale = float(np.sqrt(np.mean(z**2))) or 1.0
        z = (z / self.z_scale).reshape(n, s, -1)
        self.dz_scale = float(np.sqrt(np.mean(np.diff(z, axis=1) ** 2))) if c.increment else 0.0
        segs = latent_segments(h.reshape(n, s, p), z, c.nu + min(c.lookahead, s - c.nu))
        self.params, fl = _train(self.params, "integrator", self._fl_loss, segs, c,
                                 c.epochs_integrator)
        self.history = {"ae": ae, "integrator": fl}
        self.fit_seconds = {"ae": t1 - t0, "integrator": time.perf_counter() - t1}
        return self

    def _ae_loss(self, params, h, x, key=None):
        return reconstruction_loss(params, h, x, self.config.dropout, key)

    def _fl_loss(self, params, h, z, key=None):
        c = self.config
        return forward_looking_loss(params, h, z, c.nu, self.dz_scale, c.dropout, key)

    def _encode_scaled(self, h: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.asarray(encode(self.params, np.float32(h), np.float32(x)), dtype=float)

    def encode(self, tags: np.ndarray, states: np.ndarray) -> np.ndarray:
        """Scaled latents ``z`` ``(..., d)`` of tags ``(..., p)`` and states ``(..., 3N)``."""
        h = self.tag_scaler(tags.reshape(-1, tags.shape[-1]))
        z = self._encode_scaled(h, self.state_scaler(states.reshape(-1, states.shape[-1])))
        return (z / self.z_scale).reshape(*states.shape[:-1], -1)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """States ``(..., 3N)`` from scaled latents ``(..., d)``."""
        flat = np.float32(z.reshape(-1, z.shape[-1]) * self.z_scale)
        x = self.state_scaler.inverse(np.asarray(decode(self.params, flat), dtype=float))
        return x.reshape(*z.shape[:-1], x.shape[-1])

    def rollout(self, tags: np.ndarray, z_first: np.ndarray) -> np.ndarray:
        """Latent trajectories ``(n, s, d)`` from tags ``(n, s, p)`` and ``z_first (n, nu, d)``."""
        import jax

        nu, (n, s, p) = self.config.nu, tags.shape
        h = np.float32(self.tag_scaler(tags.reshape(-1, p)).reshape(n, s, p))
        step = jax.jit(lambda t, w: integrator_step(self.params, t, w, self.dz_scale))
        z = [np.float32(z_first[:, k]) for k in range(nu)]
        for j in range(nu - 1, s - 1):
            z.append(np.asarray(step(h[:, j], np.stack(z[j - nu + 1: j + 1], axis=1))))
        return np.stack(z, axis=1).astype(float)

    def predict(self, tags: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Whole trajectories ``(n, s, 3N)`` from tags ``(n, s, p)`` and ``first (n, nu, 3N)``.

        The first ``nu`` states are returned as given; later ones are decoded predictions.
        """
        nu = self.config.nu
        if first.shape[1] != nu:
            raise ValueError(f"AutoencoderSurrogate.predict: need the first nu = {nu} states")
        z = self.rollout(tags, self.encode(tags[:, :nu], first))
        return np.concatenate([first, self.decode(z[:, nu:])], axis=1)


# ---------------------------------------------------------------- persistence


def save_autoencoder(path: str | Path, model: AutoencoderSurrogate) -> None:
    """Store a fitted model as NPZ: the flattened parameter pytree, scalers and the config JSON.

    Serial: call it on one rank (or with a rank-specific path).
    """
    import jax

    leaves = jax.tree_util.tree_leaves(model.params)
    dims = {"dim": int(model.state_scaler.shift.size), "p": int(model.tag_scaler.shift.size)}
    arrays = {f"leaf_{i:03d}": np.asarray(v) for i, v in enumerate(leaves)}
    arrays.update(config=np.array(json.dumps({**asdict(model.config), **dims})),
                  z_scale=np.array(model.z_scale), dz_scale=np.array(model.dz_scale),
                  tag_shift=model.tag_scaler.shift,
                  tag_scale=model.tag_scaler.scale, state_shift=model.state_scaler.shift,
                  state_scale=model.state_scaler.scale)
    np.savez(path, **arrays)


def load_autoencoder(path: str | Path) -> AutoencoderSurrogate:
    """Read a model written by :func:`save_autoencoder` (the pytree structure from the config)."""
    import jax
    import jax.numpy as jnp

    from llgfem.errors import load_npz, reading

    what = "autoencoder model"
    a = load_npz(path, what, {"config": 0, "z_scale": 0, "dz_scale": 0, "tag_shift": None,
                              "tag_scale": None, "state_shift": None, "state_scale": None})
    with reading(path, what):
        raw = json.loads(str(a["config"]))
        dim, p = raw.pop("dim"), raw.pop("p")
        for name in ("encoder_hidden", "integrator_hidden"):
            raw[name] = tuple(raw[name])
        model = AutoencoderSurrogate(AutoencoderSurrogateConfig(**raw))
        treedef = jax.tree_util.tree_structure(init_params(model.config, dim, p))
        leaves = [jnp.asarray(a[k]) for k in sorted(k for k in a if k.startswith("leaf_"))]
        model.params = jax.tree_util.tree_unflatten(treedef, leaves)
    model.z_scale, model.dz_scale = float(a["z_scale"]), float(a["dz_scale"])
    model.tag_scaler = _Affine(a["tag_shift"], a["tag_scale"])
    model.state_scaler = _Affine(a["state_shift"], a["state_scale"])
    return model
