"""Forecasters: the many-to-many targets and both losses against plain loops, and a sine wave learned."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import cells, data, forecasting


def test_step_targets_match_a_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 5, 3)).astype(np.float32), rng.normal(size=(2, 2, 3)).astype(np.float32)
    got = np.asarray(forecasting.step_targets(jnp.asarray(x), jnp.asarray(y)))
    full = np.concatenate([x, y], axis=1)
    for t in range(5):
        np.testing.assert_array_equal(got[:, t], full[:, t + 1 : t + 3])


@pytest.mark.parametrize("mapping", forecasting.MAPPINGS)
def test_losses_match_their_definitions(mapping):
    f = forecasting.forecaster(cells.lstm(4), features=2, horizon=3, mapping=mapping)
    params = f.init(jax.random.key(0))
    rng = np.random.default_rng(1)
    batch = forecasting.WindowBatch(jnp.asarray(rng.normal(size=(4, 6, 2)), jnp.float32),
                                    jnp.asarray(rng.normal(size=(4, 3, 2)), jnp.float32))  # fmt: skip
    out = np.asarray(f.outputs(params, batch.inputs))
    assert out.shape == (4, 6, 3, 2)
    np.testing.assert_array_equal(np.asarray(f.predict(params, batch.inputs)), out[:, -1])
    full = np.concatenate([np.asarray(batch.inputs), np.asarray(batch.targets)], axis=1)
    if mapping == "many_to_one":
        want = np.mean((out[:, -1] - np.asarray(batch.targets)) ** 2)
    else:
        want = np.mean([(out[b, t, h] - full[b, t + 1 + h]) ** 2 for b in range(4) for t in range(6) for h in range(3)])
    assert float(f.loss(params, batch)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("mapping", forecasting.MAPPINGS)
def test_forecasting_changes_adds_each_steps_input_to_its_readout(mapping):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(3, 5, 2)), jnp.float32)
    plain = forecasting.forecaster(cells.gru(4), features=2, horizon=3, mapping=mapping)
    changes = forecasting.forecaster(cells.gru(4), features=2, horizon=3, mapping=mapping, changes=True)
    params = plain.init(jax.random.key(0))
    want = np.asarray(plain.outputs(params, x)) + np.asarray(x)[:, :, None, :]
    np.testing.assert_allclose(np.asarray(changes.outputs(params, x)), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(changes.predict(params, x)), np.asarray(changes.outputs(params, x))[:, -1])
    with pytest.raises(TypeError, match=r"forecaster: changes must be a bool; got 1"):
        forecasting.forecaster(cells.gru(4), 2, 3, mapping, changes=1)


def test_a_sine_wave_is_learned_and_early_stopping_keeps_the_best():
    wave = np.sin(np.arange(400) / 3.0)
    w = data.windows(wave, input_length=10, horizon=2)
    settings = forecasting.ForecastSettings(seeds=2, batch_size=16, steps=300, eval_every=50, patience=2)
    model, result = forecasting.train_forecaster(cells.gru(8), w, w, settings, mapping="many_to_one", progress=False)
    mse = result.history["eval/mse"]
    assert np.all(result.best <= mse[0] / 20)  # far better than at initialization
    pred = forecasting.predict_seeds(model, result.params, w.inputs)
    assert pred.shape == (2, len(w.inputs), 2, 1)
    np.testing.assert_allclose(np.mean((pred - w.targets[None]) ** 2, axis=(1, 2, 3)), result.best, rtol=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"mapping"):
        forecasting.forecaster(cells.gru(4), 1, 2, "one_to_many")
    w1, w2 = data.windows(np.arange(30.0), 5, 1), data.windows(np.arange(30.0), 5, 2)
    with pytest.raises(ValueError, match=r"must share horizon and features"):
        forecasting.train_forecaster(cells.gru(4), w1, w2, forecasting.ForecastSettings(), mapping="many_to_one")
