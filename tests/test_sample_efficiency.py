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


@pytest.mark.parametrize(
    "sequences, median, said",
    [  # a seed that missed the rule (-1) needed more than the budget of 1000 sequences: it sorts last
        ([100, 300, -1], 300.0, "2/3 seeds met the rule, median over the seeds 300 sequences: fewer than the "
                                "paper's 500"),
        ([100, 200, 900, -1], 550.0, "median over the seeds 550 sequences: more than the paper's 500 (1.1x)"),
        ([100, -1, -1], None, "1/3 seeds met the rule within the budget of 1,000 sequences, so the median seed needed "
                              "more: more than the paper's 500"),
        ([100, 200, -1, -1], None, "2/4 seeds met the rule within the budget of 1,000 sequences, so the median"),
    ],
)  # fmt: skip
def test_the_median_counts_the_seeds_that_missed_the_rule_beyond_the_budget(se, sequences, median, said):
    entry = {"length": 20, "init": "chrono", "sequences": sequences, "met_rule": sum(s >= 0 for s in sequences),
             "seeds": len(sequences), "published_sequences": 500, "budget_sequences": 1000}  # fmt: skip
    (f,) = se.findings({"config": {"lengths": {se.TASK: [20]}, "inits": ["chrono"]}, "runs": [entry]}).values()
    assert f["median_sequences"] == median and said in se.verdict(f)


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
    assert config.train.fresh_validation and "validation sequences drawn afresh at every evaluation" in (
        out / "report.md").read_text()  # fmt: skip
    # A diverged seed is named as such, not as one that ran past the budget.
    e.update(met_rule=1, diverged=1, sequences=[3200] + [-1] * (config.train.seeds - 1),
             sequences_met={**e["sequences_met"], "min": 3200, "max": 3200})  # fmt: skip
    row = [r for r in se.report(results).splitlines() if r.startswith("| 20 | chrono |")][0]
    assert config.train.seeds == 2 and "; 1 seed(s) diverged" in row and "seed(s) >" not in row
