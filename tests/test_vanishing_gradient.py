"""The headline experiment runs end to end on a tiny config and writes its whole run folder."""

import json
import pathlib

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
    assert "Wrote" in capsys.readouterr().out

    (out / "report.md").unlink()
    vg.main(["--replot", "--out", str(out)])
    assert (out / "report.md").read_text() == report


def test_bad_cli_values_are_rejected_with_the_valid_choices(vg):
    with pytest.raises(ValueError, match=r"unknown cell\(s\) \['lstn'\]; choose from"):
        vg.main(["--preset", "tiny", "--cells", "lstn", "--out", "/nonexistent"])
    with pytest.raises(ValueError, match=r"lengths\['adding'\] must be ints >= 2"):
        vg.main(["--preset", "tiny", "--lengths", "adding=1", "--out", "/nonexistent"])
    with pytest.raises(ValueError, match=r"unknown task 'adder'"):
        vg.main(["--preset", "tiny", "--lengths", "adder=10", "--out", "/nonexistent"])
