"""The exploding-gradients experiment runs end to end on a tiny config; its cliff detector and clips are checked."""

import json
import pathlib
import re

import experiment_module
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def eg():
    return experiment_module.load("exploding_gradients")


def test_cliffs_are_jumps_over_the_recent_median(eg):
    rng = np.random.default_rng(0)
    g = np.exp(rng.normal(0.0, 0.1, (60, 2)))  # steady norms around 1
    g[30, 0] = 50.0  # a cliff at step 31 for model 0
    g[40:, 1] *= 5.0  # a 5x rise: not a cliff at factor 10
    found = eg.cliffs(g, 10.0)
    assert found[0].tolist() == [31] and found[1].size == 0
    g[45, 1] = np.nan  # a non-finite step is the divergence, not a cliff
    assert eg.cliffs(g, 10.0)[1].size == 0


def test_cells_start_with_every_singular_value_at_the_radius(eg):
    import jax

    config = eg.PRESETS["tiny"]
    for radius in (0.8, 2.0):
        cell = eg.cell_for(config, radius)
        u = np.asarray(cell.init(jax.random.key(0), 3).recurrent_kernel, np.float64)
        np.testing.assert_allclose(np.linalg.svd(u, compute_uv=False), radius, rtol=1e-5)


def test_pascanu_success_is_fewer_than_one_percent_wrong(eg):
    # Test sets of 1000 in two batches of 500, their float32 shares averaged as protocols does.
    rates = [np.mean(np.float32([a / 500, b / 500])) for a, b in [(5, 5), (3, 7), (4, 5), (0, 0), (60, 40)]]
    np.testing.assert_array_equal(eg.pascanu_solved(rates, 1000), [False, False, True, True, False])
    assert eg.pascanu_solved([10 / 1024], 1024).tolist() == [True]  # 10 < 10.24


def test_optimizer_per_clip(eg):
    config = eg.PRESETS["tiny"]
    assert config.optimizer("none").clip is None
    assert (config.optimizer("norm").clip, config.optimizer("norm").clip_value) == ("global_norm", config.clip_norm)
    assert (config.optimizer("value").clip, config.optimizer("value").clip_value) == ("value", config.clip_value)
    assert config.optimizer("norm").name == config.train.optimizer.name == "sgd"


def test_tiny_run_writes_config_results_plots_and_report(eg, tmp_path, capsys):
    out = tmp_path / "run"
    eg.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    config = eg.PRESETS["tiny"]
    names = {p.name for p in out.iterdir()}
    task = "temporal_order_pascanu"
    figures = {f"{kind}_{task}.png" for kind in ("grad_norm", "sigma_max", "jacobian", "success")}
    assert names >= {"config.json", "results.json", "report.md", "runs"} | figures
    assert json.loads((out / "config.json").read_text()) == json.loads(json.dumps(config.to_dict()))

    results = json.loads((out / "results.json").read_text())
    grid = {(e["radius"], e["clip"]) for e in results["runs"]}
    assert grid == {(r, c) for r in config.radii for c in config.clips}
    for e in results["runs"]:
        assert len(e["solved"]) == e["seeds"] == config.train.seeds
        assert e["success_rate"] == pytest.approx(np.mean(e["solved"]))
        # lambda_1(U) at step 0 is the initial radius: U = r Q.
        assert e["sigma_max_init"]["mean"] == pytest.approx(e["radius"], rel=1e-4)
        with np.load(out / "runs" / f"{eg.run_name(task, e['length'], e['radius'], e['clip'])}.npz") as z:
            assert z["grad_norm"].shape == z["sigma_max"].shape == (e["steps_run"], e["seeds"])
            # The largest singular value recorded at step 1 is the initial U's, and a cliff's is the one
            # the cliff's gradient was taken at.
            np.testing.assert_allclose(z["sigma_max"][0], e["radius"], rtol=1e-4)
            for m, found in enumerate(eg.cliffs(z["grad_norm"], config.cliff_factor)):
                if found.size:
                    assert z["sigma_max"][found[0] - 1, m] == pytest.approx(e["sigma_max_at_first_cliff"][m])
            jac = z["jacobian_init"]
            assert jac.shape == (e["seeds"], eg.tasks.get(task).time_steps(e["length"]))
            # Lag 0 is dh_T/dh_T = I; with tanh (|phi'| <= 1) the lag-k value is at most r^k.
            np.testing.assert_allclose(jac[:, 0], 1.0, rtol=1e-5)
            lags = np.arange(jac.shape[1])
            assert np.all(jac <= e["radius"] ** lags * (1 + 1e-4))
        assert e["cliffs_total"] == sum(e["cliffs_per_seed"])
    report = (out / "report.md").read_text()
    assert "## Cliffs against lambda_1(U)" in report and "| 2 | clip by global norm |" in report
    # The two "after training" columns say which parameters each is measured at.
    assert "| start r | clip | dh_T/dh_1 at init | kept | lambda_1(U) at init | end of training |" in report
    assert "Wrote" in capsys.readouterr().out

    (out / "report.md").unlink()
    eg.main(["--replot", "--out", str(out)])
    assert (out / "report.md").read_text() == report
    for e in results["runs"]:
        assert e["diverged"] == sum(s >= 0 for s in e["diverged_step"]) and len(e["skipped_updates"]) == e["seeds"]
    # In skip mode no seed is stopped, so the report says what its "diverged" column counts then.
    assert 'on_nonfinite = "skip"' not in report
    results["config"]["train"]["on_nonfinite"] = "skip"
    assert 'This run trained with on_nonfinite = "skip"' in eg.report(results)


def test_bad_cli_values_are_rejected(eg, capsys):
    with pytest.raises(SystemExit):
        eg.main(["--preset", "tiny", "--radii", "0", "--out", "/nonexistent"])
    assert re.search(r"radii must be positive", capsys.readouterr().err)
    with pytest.raises(SystemExit):
        eg.main(["--preset", "tiny", "--lengths", "temporal_order_pascanu=5", "--out", "/nonexistent"])
    assert re.search(r"lengths\['temporal_order_pascanu'\] must be ints >= 10", capsys.readouterr().err)
