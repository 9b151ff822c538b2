"""The headline experiment runs end to end on a tiny config and writes its whole run folder."""

import json
import pathlib
import re

import experiment_module
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vg():
    return experiment_module.load("vanishing_gradient")


def test_tiny_run_writes_config_results_plots_and_report(vg, tmp_path, capsys):
    out = tmp_path / "run"
    vg.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    names = {p.name for p in out.iterdir()}
    assert names >= {"config.json", "results.json", "report.md", "runs"}
    assert {"gradient_flow_adding.png", "success_adding.png", "learning_curves_adding.png"} <= names
    config = vg.PRESETS["tiny"]
    assert json.loads((out / "config.json").read_text()) == json.loads(json.dumps(config.to_dict()))

    results = json.loads((out / "results.json").read_text())
    entries = results["tasks"]["adding"]["runs"]
    lengths = config.lengths["adding"]
    assert {(e["cell"], e["length"]) for e in entries} == {(c, n) for c in config.cells for n in lengths}
    for e in entries:
        assert e["baseline"] == pytest.approx(1 / 6)
        assert 0 <= e["success_rate"] <= 1 and len(e["solved"]) == config.train.seeds
        assert e["success_rate"] == pytest.approx(np.mean(e["solved"]))
        assert e["test_metric"]["mean"] == pytest.approx(np.mean(e["test_metric"]["per_seed"]))
        curve = e["grad_norm_by_lag"]["init"]["hidden"]
        assert len(curve) == e["length"] and all(v > 0 for v in curve)
        assert e["grad_ratio_first_last"]["init"]["hidden"] == pytest.approx(curve[-1] / curve[0])
    assert "chrono" in json.dumps(results["findings"])
    report = (out / "report.md").read_text()
    assert "| tanh RNN |" in report and "| *baseline* | 0.1667 | 0.1667 |" in report
    assert "Wrote" in capsys.readouterr().out and "diverged" not in report.split("## adding")[1].split("Test loss")[0]
    # A seed stopped at a non-finite step is counted where its scores are shown.
    longest = max(lengths)
    (tanh,) = [e for e in entries if e["cell"] == "tanh" and e["length"] == longest]
    tanh["diverged_step"] = [3] + [-1] * (config.train.seeds - 1)
    rows = [r for r in vg.report(results).splitlines() if r.startswith("| tanh RNN |")]
    assert rows[0].endswith(", 1 diverged |") and rows[1].endswith(", 1 diverged |")  # learning; gradient ratio

    (out / "report.md").unlink()
    vg.main(["--replot", "--out", str(out)])
    assert (out / "report.md").read_text() == report


def test_bad_cli_values_are_rejected_with_the_valid_choices(vg, capsys):
    with pytest.raises(SystemExit):
        vg.main(["--preset", "tiny", "--cells", "lstn", "--out", "/nonexistent"])
    assert re.search(r"unknown cell\(s\) \['lstn'\]; choose from", capsys.readouterr().err)
    with pytest.raises(SystemExit):
        vg.main(["--preset", "tiny", "--lengths", "adding=1", "--out", "/nonexistent"])
    assert re.search(r"lengths\['adding'\] must be ints >= 2", capsys.readouterr().err)
    with pytest.raises(SystemExit):
        vg.main(["--preset", "tiny", "--lengths", "adder=10", "--out", "/nonexistent"])
    assert re.search(r"unknown task 'adder'", capsys.readouterr().err)


def test_summary_of_variable_length_curves_keeps_the_lags_no_sequence_reaches_out(vg):
    # Curves by step t of 3 seeds over test sequences of lengths 4 and 3 in 5 padded steps: lag 4 (t = 0) no
    # sequence reaches (nan), lag 3 only the first; seed 2 diverged (nan everywhere).
    curve = np.array([np.nan, 0.2, 0.4, 0.8, 1.6])
    grads = {"hidden": np.stack([curve, 2 * curve, np.full(5, np.nan)])}
    run = vg.protocols.TaskRun(
        "mse", 0.1, {"mse": np.array([0.05, 0.2, np.nan]), "success_rate": np.array([0.9, 0.1, 0.0])},
        np.array([True, False, False]), np.array([10, -1, -1]), np.array([-1, -1, 5]), grads, grads, {}, 20, 1.0,
        skipped=np.zeros(3, np.int64), grad_sequences=np.array([0, 1, 2, 2, 2]),
    )  # fmt: skip
    e = vg.summarize(run, "tanh", "adding_hs97", 3)
    assert e["grad_norm_seeds"] == {"init": 2, "trained": 2}  # the lag none reaches does not make a seed "diverged"
    np.testing.assert_allclose(e["grad_norm_by_lag"]["init"]["hidden"], 1.5 * curve[::-1])
    np.testing.assert_array_equal(e["grad_sequences_by_lag"], [2, 2, 2, 1, 0])
    # Deepest lag every sequence reaches: 2 (the shortest's first step); lag 3 holds one sequence only.
    assert e["grad_ratio_lag"] == 2 and e["grad_ratio_first_last"]["init"]["hidden"] == pytest.approx(0.4 / 1.6)


def test_variable_length_task_reports_the_lag_from_each_sequence_end(vg, tmp_path):
    out = tmp_path / "run"
    results = vg.main(["--preset", "tiny", "--cells", "tanh", "--lengths", "adding_hs97=20", "--out", str(out),
                       "--no-progress"])  # fmt: skip
    (e,) = results["tasks"]["adding_hs97"]["runs"]
    curve, sequences = e["grad_norm_by_lag"]["init"]["hidden"], e["grad_sequences_by_lag"]
    assert len(curve) == len(sequences) == 22 and sequences[0] == vg.PRESETS["tiny"].train.grad_size
    # Lag 0 is every sequence's loss step: the largest error, and a lag no sequence reaches is null, not 0.
    assert curve[0] == max(v for v in curve if v is not None)
    assert all((v is None) == (n == 0) for v, n in zip(curve, sequences))
    k = e["grad_ratio_lag"]
    assert sequences[k] == sequences[0] and (k + 1 == len(sequences) or sequences[k + 1] < sequences[0])
    assert e["grad_ratio_first_last"]["init"]["hidden"] == pytest.approx(curve[k] / curve[0])
    assert f"Ratio of ||dL/dh|| at lag {k} to lag 0" in (out / "report.md").read_text()
