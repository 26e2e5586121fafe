"""Autoencoder surrogate of paper 001 (Tables 1-2, eq. (4)); skipped without JAX.

Every MPI rank trains its own tiny model on a synthetic dataset (no collectives); files are
written to the shared ``mpi_tmp_path`` under rank-suffixed names.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

pytest.importorskip("jax")
pytest.importorskip("optax")

from llgfem.surrogates.autoencoder import (  # noqa: E402
    AutoencoderSurrogate,
    AutoencoderSurrogateConfig,
    decode,
    encode,
    forward_looking_loss,
    init_params,
    integrator_step,
    latent_segments,
    load_autoencoder,
    save_autoencoder,
)
from llgfem.surrogates.data import train_test_split  # noqa: E402
from llgfem.surrogates.evaluate import baseline_mse, trajectory_mse  # noqa: E402

TINY = AutoencoderSurrogateConfig(latent_dim=4, encoder_hidden=(32,), integrator_hidden=(32, 16),
                                  dropout=0.0, nu=3, lookahead=4, learning_rate=5e-3,
                                  batch_size=32, epochs_ae=30, epochs_integrator=20, seed=1)


def synthetic(n: int = 24, s: int = 16, n_nodes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Tags ``(|h|, angle)`` and unit-length states precessing at a field-dependent rate."""
    rng = np.random.default_rng(5)
    tags = np.column_stack([rng.uniform(0.5, 1.0, n), rng.uniform(180.0, 200.0, n)])
    t = np.linspace(0.0, 3.0, s)
    phase = tags[:, :1] * t[None, :] + np.deg2rad(tags[:, 1:2] - 190.0)  # (n, s)
    theta = 0.3 + 0.1 * np.arange(n_nodes) / n_nodes  # polar angle per node
    mx = np.sin(theta) * np.cos(phase)[..., None]
    my = np.sin(theta) * np.sin(phase)[..., None]
    mz = np.broadcast_to(np.cos(theta), mx.shape)
    states = np.concatenate([mx, my, mz], axis=2)
    return np.repeat(tags[:, None, :], s, axis=1), states


@pytest.fixture(scope="module")
def fitted():
    tags, states = synthetic()
    train, test = train_test_split(len(tags), 0.25, seed=0)
    model = AutoencoderSurrogate(TINY).fit(tags[train], states[train])
    return model, tags[test], states[test]


def test_network_shapes():
    import jax.numpy as jnp

    c, dim, p, batch = TINY, 12, 2, 7
    params = init_params(c, dim, p)
    z = encode(params, jnp.zeros((batch, p)), jnp.ones((batch, dim)))
    assert z.shape == (batch, c.latent_dim)
    assert decode(params, z).shape == (batch, dim)
    window = jnp.zeros((batch, c.nu, c.latent_dim))
    assert params["integrator"][0]["w"].shape == (p + c.nu * c.latent_dim, 32)
    assert integrator_step(params, jnp.zeros((batch, p)), window, 0.5).shape == (batch, 4)


def test_paper_config_has_table_sizes():
    c = AutoencoderSurrogateConfig.paper()
    params = init_params(c, 7500, 2)
    widths = {k: [layer["w"].shape for layer in v] for k, v in params.items()}
    assert widths["encoder"] == [(7502, 400), (400, 400), (400, 40)]  # Table 1
    assert widths["decoder"] == [(40, 400), (400, 400), (400, 7500)]
    assert [w[1] for w in widths["integrator"]] == [400, 300, 300, 200, 100, 40]  # Table 2
    assert widths["integrator"][0][0] == 202  # 2 + nu d


def test_forward_looking_loss_zero_on_exact_dynamics():
    """With increment steps, a constant trajectory is reproduced iff the net outputs zero."""
    import jax.numpy as jnp

    params = init_params(TINY, 6, 2)
    params["integrator"] = [{k: jnp.zeros_like(v) for k, v in layer.items()}
                            for layer in params["integrator"]]
    z = jnp.broadcast_to(jnp.arange(4.0), (5, TINY.nu + TINY.lookahead, 4))
    loss = forward_looking_loss(params, jnp.zeros((5, z.shape[1], 2)), z, TINY.nu, 1.0)
    assert float(loss) == 0.0


def test_latent_segments_windows():
    tags, z = np.zeros((2, 6, 1)), np.arange(12.0).reshape(2, 6, 1)
    _, segs = latent_segments(tags, z, 4)
    assert segs.shape == (2 * 3, 4, 1)
    assert np.array_equal(segs[4, :, 0], [7.0, 8.0, 9.0, 10.0])


def test_losses_decrease(fitted):
    model = fitted[0]
    for name in ("ae", "integrator"):
        h = model.history[name]
        assert h[-1] < 0.5 * h[0], (name, h[0], h[-1])


def test_beats_constant_baseline(fitted):
    model, tags, states = fitted
    pred = model.predict(tags, states[:, : TINY.nu])
    assert pred.shape == states.shape
    assert np.array_equal(pred[:, : TINY.nu], states[:, : TINY.nu])
    assert trajectory_mse(pred, states, TINY.nu) < 0.5 * baseline_mse(states, TINY.nu)


def test_save_load_round_trip(fitted, mpi_tmp_path):
    model, tags, states = fitted
    path = mpi_tmp_path / f"ae_rank{MPI.COMM_WORLD.rank}.npz"
    save_autoencoder(path, model)
    again = load_autoencoder(path)
    assert again.config == model.config
    first = states[:, : TINY.nu]
    assert np.array_equal(again.predict(tags, first), model.predict(tags, first))


def test_predict_needs_nu_states(fitted):
    model, tags, states = fitted
    with pytest.raises(ValueError, match="first nu"):
        model.predict(tags, states[:, :2])


def test_dropout_only_with_key():
    import jax
    import jax.numpy as jnp

    params = init_params(TINY, 6, 2)
    h, x = jnp.zeros((50, 2)), jnp.ones((50, 6))
    assert np.array_equal(encode(params, h, x), encode(params, h, x, rate=0.5))
    dropped = encode(params, h, x, rate=0.5, key=jax.random.PRNGKey(0))
    assert not np.allclose(dropped, encode(params, h, x))
