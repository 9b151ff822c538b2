"""The LSTM search-space experiment: its architectures, learning-rate draws, statistics and a tiny run."""

import dataclasses
import json

import experiment_module
import jax
import numpy as np
import pytest


@pytest.fixture(scope="module")
def lv():
    return experiment_module.load("lstm_variants")


def test_every_architecture_builds_and_steps(lv):
    import jax.numpy as jnp

    for label, make in lv.CELLS.values():
        cell = make(3)
        p = cell.init(jax.random.key(0), 2)
        carry, y = cell.apply(p, cell.initial_carry(p, (4,)), jnp.ones((4, 2)))
        assert y.shape == (4, 3), label
    assert len(lv.CELLS) == 13  # vanilla, 8 variants, the 1997 LSTM, two GRUs, MGU


def test_learning_rates_are_log_uniform_in_range_and_reproducible(lv):
    config = dataclasses.replace(lv.PRESETS["full"], lr_trials=200)
    a = config.learning_rates("adding")
    np.testing.assert_array_equal(a, config.learning_rates("adding"))
    assert not np.array_equal(a, config.learning_rates("temporal_order"))
    low, high = config.lr_range
    assert a.min() >= low and a.max() <= high and np.all(np.diff(a) >= 0)
    # Log-uniform: about half of the draws lie below the geometric midpoint.
    assert 0.4 < np.mean(a < np.sqrt(low * high)) < 0.6


def test_welch_matches_the_textbook_formula(lv):
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0, 9.0, 11.0])
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    got = lv.welch(a, b)
    assert got["t"] == pytest.approx(t) and 0 < got["p"] < 0.1
    assert lv.welch([1.0, np.nan], b) == {"t": None, "p": None}  # one finite value on one side
    assert lv.welch([1.0, 1.0], [1.0, 1.0]) == {"t": None, "p": None}


def test_config_needs_the_vanilla_reference(lv):
    with pytest.raises(ValueError, match=r"cells must include 'vanilla'"):
        dataclasses.replace(lv.PRESETS["tiny"], cells=("CIFG", "NP"))
    with pytest.raises(ValueError, match=r"unknown cell\(s\) \['LSTM9'\]"):
        dataclasses.replace(lv.PRESETS["tiny"], cells=("vanilla", "LSTM9"))


def test_tiny_run_writes_config_results_plots_and_report(lv, tmp_path):
    out = tmp_path / "run"
    results = lv.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    config = lv.PRESETS["tiny"]
    assert {p.name for p in out.iterdir()} >= {"config.json", "results.json", "report.md", "variants.png",
                                               "learning_rates.png"}  # fmt: skip
    saved = json.loads((out / "results.json").read_text())
    assert [(e["task"], e["cell"]) for e in saved["runs"]] == [("temporal_order", c) for c in config.cells]
    lrs = config.learning_rates("temporal_order")
    for e in saved["runs"]:
        np.testing.assert_allclose(e["learning_rates"], lrs)
        assert e["best_lr"] == pytest.approx(lrs[e["best_lr_index"]])
        assert len(e["skipped_updates"]) == config.train.seeds * config.lr_trials  # every seed at every rate
        assert e["skipped"] == sum(n > 0 for n in e["skipped_updates"])
        with np.load(out / "runs" / f"{lv.run_name(e['task'], e['cell'])}.npz") as z:
            assert z["test"].shape == z["val_best"].shape == (config.train.seeds, config.lr_trials)
            # The reported score is the test score at the rate with the best median validation score.
            j = int(np.argmin(np.median(z["val_best"], axis=0)))
            assert j == e["best_lr_index"]
            np.testing.assert_allclose(e["test"]["per_seed"], z["test"][:, j])
    f = results["findings"]["temporal_order"]
    assert f["by_cell"]["vanilla"]["verdict"] == "reference" and set(f["ranking"]) == set(config.cells)
    report = (out / "report.md").read_text()
    assert "## temporal_order, T = 20" in report and "## Against Greff et al." in report
    # Runs stopped at a non-finite step are counted next to each architecture's score.
    runs = config.train.seeds * config.lr_trials
    results["runs"][0]["diverged"] = 2
    (row,) = [r for r in lv.report(results).splitlines() if r.startswith(f"| {lv.CELLS[config.cells[0]][0]} |")]
    assert row.endswith(f"| 2/{runs} |")


def test_a_learning_rate_is_refused_as_the_rates_come_from_lr_range(lv, tmp_path, capsys):
    with pytest.raises(SystemExit):
        lv.main(["--preset", "tiny", "--lr", "0.1", "--out", str(tmp_path / "x"), "--no-progress"])
    assert "--lr 0.1: lstm_variants draws 2 learning rates per task log-uniformly from" in capsys.readouterr().err
    file = tmp_path / "run.toml"
    file.write_text("[train.optimizer]\nlearning_rate = 0.1\n")
    with pytest.raises(SystemExit):
        lv.main(["--preset", "tiny", "--config", str(file), "--out", str(tmp_path / "x"), "--no-progress"])
    assert "train.optimizer.learning_rate: lstm_variants draws" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_learning_rate_is_chosen_on_the_validation_score_of_the_kept_parameters(lv):
    # Model 0 keeps its parameters at its lowest cross-entropy (step 1: error 0.4), not where its error is lowest.
    history = {"eval/cross_entropy": np.array([[0.9, 0.8], [0.3, np.nan], [0.5, np.nan]]),
               "eval/error_rate": np.array([[0.5, 0.6], [0.4, np.nan], [0.1, np.nan]])}  # fmt: skip
    np.testing.assert_array_equal(lv.kept_validation(history, "cross_entropy", "error_rate"), [0.4, 0.6])
