"""The forecasting experiment: baselines scored as the data module scores them, relative windows, a tiny run."""

import dataclasses
import json

import experiment_module
import numpy as np
import pytest

from rnnlab import data


@pytest.fixture(scope="module")
def fc():
    return experiment_module.load("forecast")


def test_relative_windows_put_the_first_input_at_zero_and_keep_the_targets(fc):
    config = fc.PRESETS["tiny"]  # its networks read Mackey-Glass relative to each window's first value
    p = fc.Prepared(config, "mackey_glass", 2)
    for z, net, off in zip(p.z, p.net, p.offsets):
        np.testing.assert_array_equal(net.inputs[:, 0], 0.0)
        np.testing.assert_allclose(net.targets + off, z.targets)
    # Causal: a window's input at step t holds no later value, so the many-to-many loss at step t
    # forecasts values its inputs have not seen. (Relative to the last value, every step held x_L.)
    net = p.net[0]
    for t in range(p.length):
        np.testing.assert_allclose(net.inputs[:, t, 0], p.z[0].inputs[:, t, 0] - p.z[0].inputs[:, 0, 0])
    absolute = fc.Prepared(dataclasses.replace(config, relative=()), "mackey_glass", 2)
    np.testing.assert_array_equal(absolute.net[0].inputs, absolute.z[0].inputs)
    # Standardized with the training split's statistics only.
    values = data.mackey_glass(config.mackey_glass_length)
    train = data.chronological_split(values, config.fractions).train
    np.testing.assert_allclose(p.scaler.mean, [train.mean()])


def test_tiny_run_scores_baselines_and_models_on_the_test_tail(fc, tmp_path):
    out = tmp_path / "run"
    results = fc.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    config = fc.PRESETS["tiny"]
    assert (out / "forecast_mackey_glass_H2.png").exists() and (out / "report.md").exists()
    saved = json.loads((out / "results.json").read_text())
    models = {(e["model"], e["mapping"]) for e in saved["runs"]}
    assert models == {(b, "-") for b in fc.BASELINES} | {("gru", m) for m in config.mappings}
    # The persistence entry is the data module's score of the same test windows.
    values = data.mackey_glass(config.mackey_glass_length)
    test = data.windows(data.chronological_split(values, config.fractions).test, 8, 2)
    want = data.errors(data.persistence(test.inputs, 2), test.targets)
    (pers,) = [e for e in saved["runs"] if e["model"] == "persistence"]
    assert pers["rmse"]["mean"] == pytest.approx(want["rmse"]) and pers["mae"]["mean"] == pytest.approx(want["mae"])
    # The AR on relative windows: fitted on train windows minus their first value, forecasting the change
    # from their last, standardized with train statistics.
    parts = data.chronological_split(values, config.fractions)
    mean, std = parts.train.mean(), parts.train.std()
    tr, te = (data.windows((x - mean) / std, 8, 2) for x in (parts.train, parts.test))
    ar = data.linear_autoregressive(tr.inputs - tr.inputs[:, :1], tr.targets - tr.inputs[:, -1:], order=8)
    pred = (ar(te.inputs - te.inputs[:, :1]) + te.inputs[:, -1:]) * std + mean
    (rel,) = [e for e in saved["runs"] if e["model"] == "linear_ar_relative"]
    assert rel["rmse"]["mean"] == pytest.approx(data.errors(pred, test.targets)["rmse"], rel=1e-6)
    (seasonal,) = [e for e in saved["runs"] if e["model"] == "seasonal_naive"]
    assert seasonal["rmse"] is None and seasonal["skipped"] == "no season"
    for e in saved["runs"]:
        if e["model"] == "gru":
            assert len(e["rmse"]["per_seed"]) == config.train.seeds
    f = results["findings"]["mackey_glass H=2"]
    assert f["best_baseline"] in ("persistence", "linear AR") and isinstance(f["beats_baseline"], bool)
    assert "| persistence |" in (out / "report.md").read_text()


def _run(model, mapping, validation, rmse, series="sunspots", horizon=1, non_finite=0):
    entry = {"series": series, "horizon": horizon, "model": model, "mapping": mapping,
             "rmse": {"mean": rmse, "std": 0.0, "max": rmse, "non_finite": non_finite}}  # fmt: skip
    return entry if validation is None else {**entry, "validation_mse_z": [validation]}


def test_findings_choose_models_on_validation_and_compare_their_test_scores(fc):
    runs = [_run("persistence", "-", 2.0, 0.8), _run("linear_ar", "-", 0.1, 1.0),
            _run("lstm", "many_to_one", 1.0, 0.5), _run("gru", "many_to_many", 0.5, 0.9)]  # fmt: skip
    f = fc.findings({"config": {"horizons": {"sunspots": [1]}}, "runs": runs})["sunspots H=1"]
    assert (f["best_model"], f["best_model_rmse"]) == ("GRU (many-to-many)", 0.9)  # not the LSTM, best on test
    # The bar is the strongest baseline on the test windows: persistence (0.8), which the GRU does not beat.
    assert (f["best_baseline"], f["best_baseline_rmse"], f["beats_baseline"]) == ("persistence", 0.8, False)
    # Its finite seeds all beat the baseline, but a diverged one (left out of the rmse statistics) does not.
    for non_finite, every in [(0, True), (1, False)]:
        runs = [_run("persistence", "-", 2.0, 0.8), _run("gru", "many_to_many", 0.5, 0.7, non_finite=non_finite)]
        f = fc.findings({"config": {"horizons": {"sunspots": [1]}}, "runs": runs})["sunspots H=1"]
        assert (f["beats_baseline"], f["beats_baseline_every_seed"]) == (True, every)
