"""The 1997 sample-efficiency experiment: its count of sequences, its stop rule, and a tiny run end to end."""

import dataclasses
import json

import experiment_module
import numpy as np
import pytest


@pytest.fixture(scope="module")
def se():
    return experiment_module.load("sample_efficiency")


def test_sequences_count_the_minibatch_steps_until_the_rule_held(se):
    run = se.protocols.TaskRun(*([None] * 13))._replace(solved_step=np.array([150, -1, 50]))
    np.testing.assert_array_equal(se.sequences_to_rule(run, 32), [4800, -1, 1600])


def test_the_config_must_stop_on_the_1997_rule(se):
    config = se.PRESETS["tiny"]
    loose = dataclasses.replace(config.train, stop_metric="mse", stop_target=0.01)
    with pytest.raises(ValueError, match=r"stop_metric='error_rate', stop_target=0.0"):
        dataclasses.replace(config, train=loose)
    with pytest.raises(ValueError, match=r"must be ints >= 20"):
        dataclasses.replace(config, lengths={"adding_hs97": (10,)})


def test_tiny_run_writes_config_results_plots_and_report(se, tmp_path):
    out = tmp_path / "run"
    results = se.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    config = se.PRESETS["tiny"]
    assert {p.name for p in out.iterdir()} >= {"config.json", "results.json", "report.md", "sequences.png",
                                               "learning_curves.png"}  # fmt: skip
    assert json.loads((out / "results.json").read_text())["findings"] == json.loads(json.dumps(results["findings"]))
    (e,) = results["runs"]
    assert len(e["skipped_updates"]) == config.train.seeds and e["skipped"] == sum(n > 0 for n in e["skipped_updates"])
    assert e["budget_sequences"] == config.train.steps * config.train.batch_size
    seqs = np.asarray(e["sequences"])
    assert seqs.shape == (config.train.seeds,) and e["met_rule"] == np.sum(seqs >= 0)
    # Counted in whole evaluations: a multiple of eval_every * batch_size, within the budget.
    met = seqs[seqs >= 0]
    assert np.all(met % (config.train.eval_every * config.train.batch_size) == 0)
    assert np.all(met <= e["budget_sequences"])
    assert len(e["test_wrong"]) == config.train.seeds and all(0 <= w <= e["test_size"] for w in e["test_wrong"])
    assert "| 20 | chrono |" in (out / "report.md").read_text()
