"""rnnlab.data: the Mackey-Glass integrator against an independent one, splits that never look ahead,
train-only normalization, windows against a plain loop, and baselines that are exact where they must be."""

import numpy as np
import pytest

from rnnlab import data


def _euler_mackey_glass(t_end, dt=1e-3, tau=17.0, beta=0.2, gamma=0.1, n=10.0, x0=1.2):
    """Forward Euler with a fine step from the same constant history: an independent reference."""
    lag = round(tau / dt)
    steps = round(t_end / dt)
    x = np.full(lag + steps + 1, x0)
    for k in range(lag, lag + steps):
        d = x[k - lag]
        x[k + 1] = x[k] + dt * (beta * d / (1.0 + d**n) - gamma * x[k])
    return x[lag :: round(1.0 / dt)]  # one sample per time unit from t = 0


def test_mackey_glass_matches_a_fine_euler_integration():
    ours = data.mackey_glass(60, warmup=0.0)
    ref = _euler_mackey_glass(59.0)
    np.testing.assert_allclose(ours, ref[:60], atol=2e-3)
    # Halving the step moves the series by ~1e-5 (the delayed value at half steps is interpolated
    # linearly, a second-order error): far below the Euler reference's own error.
    np.testing.assert_allclose(ours, data.mackey_glass(60, warmup=0.0, dt=0.05), atol=1e-4)


def test_mackey_glass_seeds_and_errors():
    a, b = data.mackey_glass(300, seed=1), data.mackey_glass(300, seed=2)
    np.testing.assert_array_equal(a, data.mackey_glass(300, seed=1))
    assert np.max(np.abs(a - b)) > 0.1  # chaotic: different histories, different trajectories
    with pytest.raises(ValueError, match=r"tau \(17.05\) and sample_every \(1.0\) must be whole multiples of dt"):
        data.mackey_glass(10, tau=17.05)
    with pytest.raises(ValueError, match=r"length must be"):
        data.mackey_glass(0)


def test_split_is_chronological_and_complete():
    x = np.arange(100.0)
    parts = data.chronological_split(x, (0.7, 0.2, 0.1))
    np.testing.assert_array_equal(np.concatenate(parts), x)
    assert parts.train[-1] < parts.validation[0] and parts.validation[-1] < parts.test[0]
    with pytest.raises(ValueError, match=r"summing to 1"):
        data.chronological_split(x, (0.7, 0.2, 0.2))
    with pytest.raises(ValueError, match=r"empty \['test'\] part"):
        data.chronological_split(np.arange(3.0), (0.7, 0.3, 0.0))


def test_standardizer_uses_the_training_split_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 2.0, (500, 2))
    later = rng.normal(50.0, 9.0, (100, 2))  # a shifted future must not leak into the statistics
    s = data.Standardizer.fit(train)
    z = s.transform(train)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.transform(later), (later - train.mean(0)) / train.std(0))
    np.testing.assert_allclose(s.inverse(s.transform(later)), later)
    assert data.Standardizer.fit(np.ones(4)).std.tolist() == [1.0]  # a constant feature maps to 0
    with pytest.raises(ValueError, match=r"must have the 2 fitted features on its last axis; got shape \(4, 3\)"):
        s.transform(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"got a 1-D series \(one feature\)"):
        s.transform(np.ones(4))
    # Statistics of one feature apply to a 1-D series or a last axis of 1, not to several features.
    one = data.Standardizer.fit(train[:, 0])
    np.testing.assert_allclose(one.transform(later[:, 0]), one.transform(later[:, :1])[:, 0])
    with pytest.raises(ValueError, match=r"must have the 1 fitted features on its last axis; got shape \(100, 2\)"):
        one.transform(later)


@pytest.mark.parametrize("input_length, horizon, stride", [(5, 1, 1), (4, 3, 2), (1, 1, 3)])
def test_windows_match_a_plain_loop(input_length, horizon, stride):
    x = np.arange(40.0).reshape(20, 2)
    w = data.windows(x, input_length, horizon, stride)
    starts = list(range(0, 20 - input_length - horizon + 1, stride))
    assert w.start.tolist() == starts
    for k, s in enumerate(starts):
        np.testing.assert_array_equal(w.inputs[k], x[s : s + input_length])
        np.testing.assert_array_equal(w.targets[k], x[s + input_length : s + input_length + horizon])
    with pytest.raises(ValueError, match=r"series has 20 steps; input_length \+ horizon = 21"):
        data.windows(x, 20, 1)


def test_baselines_are_exact_where_they_must_be():
    t = np.arange(300.0)
    period = 12
    wave = np.sin(2 * np.pi * t / period)
    w = data.windows(wave, input_length=24, horizon=6)
    # A periodic series: the seasonal naive forecast is exact; persistence is not.
    np.testing.assert_allclose(data.seasonal_naive(w.inputs, 6, season=period), w.targets, atol=1e-12)
    assert data.errors(data.persistence(w.inputs, 6), w.targets)["rmse"] > 0.3
    # A sinusoid is an exact AR(2): x_{t+1} = 2 cos(w) x_t - x_{t-1}; least squares finds it.
    predict = data.linear_autoregressive(w.inputs[:200], w.targets[:200], order=2)
    np.testing.assert_allclose(predict(w.inputs[200:]), w.targets[200:], atol=1e-8)
    # Ridge shrinks the coefficients: no longer exact.
    shrunk = data.linear_autoregressive(w.inputs[:200], w.targets[:200], order=2, ridge=10.0)
    assert data.errors(shrunk(w.inputs[200:]), w.targets[200:])["rmse"] > 1e-3
    with pytest.raises(ValueError, match=r"season \(30\) must be <= the input length \(24\)"):
        data.seasonal_naive(w.inputs, 6, season=30)
    with pytest.raises(ValueError, match=r"order \(30\) must be <= the input length \(24\)"):
        data.linear_autoregressive(w.inputs, w.targets, order=30)
    for ridge in (-1.0, float("nan")):
        with pytest.raises(ValueError, match=r"ridge must be a finite number >= 0"):
            data.linear_autoregressive(w.inputs, w.targets, order=2, ridge=ridge)


def test_errors_are_rmse_and_mae():
    p, t = np.array([[1.0, 2.0], [3.0, 7.0]]), np.array([[1.0, 0.0], [3.0, 3.0]])
    assert data.errors(p, t) == {"rmse": pytest.approx(np.sqrt((4 + 16) / 4)), "mae": pytest.approx(6 / 4)}
    with pytest.raises(ValueError, match=r"same shape"):
        data.errors(p, t[:1])


def test_bundled_series_load_offline_and_are_what_they_say():
    pytest.importorskip("statsmodels")
    from statsmodels import datasets as sm_datasets

    co2 = data.datasets.co2()
    assert co2.season == 12 and co2.step == "month" and np.all(np.isfinite(co2.values))
    # Each month is the mean of that month's weekly readings, recomputed here from the raw weeks.
    weekly = sm_datasets.co2.load_pandas().data["co2"]
    months = weekly.index.year * 12 + weekly.index.month - 1
    first = months.min()
    for k in (0, 100, 300):
        raw = weekly.to_numpy()[np.asarray(months == first + k)]
        if np.isfinite(raw).any():
            assert co2.values[k] == pytest.approx(np.nanmean(raw))
    yearly = co2.values[: len(co2.values) // 12 * 12].reshape(-1, 12).mean(axis=1)
    assert np.all(np.diff(yearly) > 0)  # the rising Keeling curve
    spots = data.datasets.sunspots()
    assert spots.values.shape == (309,) and spots.start == "1700" and np.all(spots.values >= 0)
