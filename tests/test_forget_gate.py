"""The forget-gate experiment: its inits, its gradient and timescale measurements, and a tiny run end to end."""

import json
import re

import experiment_module
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import cells


@pytest.fixture(scope="module")
def fg():
    return experiment_module.load("forget_gate")


def _forget_bias(cell, params):
    k = cells.gate_names(cell).index("f")
    h = cell.hidden_size
    return np.asarray(params.bias[k * h : (k + 1) * h])


def test_each_init_sets_the_forget_bias_it_names(fg):
    config = fg.PRESETS["quick"]
    for init, value in (("bias0", 0.0), ("bias1", 1.0), ("bias5", 5.0)):
        cell = fg.cell_for(config, init, 100)
        np.testing.assert_array_equal(_forget_bias(cell, cell.init(jax.random.key(0), 10)), value)
    cell = fg.cell_for(config, "chrono", 100)
    p = cell.init(jax.random.key(0), 10)
    b_f = _forget_bias(cell, p)
    # b_f ~ log U[1, T_max - 1] with T_max = 1.5 T = 150, and b_i = -b_f.
    assert np.all((b_f >= 0) & (b_f <= np.log(149.0))) and b_f.std() > 0.5
    np.testing.assert_array_equal(np.asarray(p.bias[: cell.hidden_size]), -b_f)


def test_plateau_steps_is_the_first_evaluation_below_the_line(fg):
    losses = np.array([[0.9, 0.9, np.nan], [0.4, 0.8, np.nan], [0.6, 0.3, np.nan]])
    np.testing.assert_array_equal(fg.plateau_steps([10, 20, 30], losses, 0.5), [20, 30, -1])


def test_timescales_of_a_constant_forget_gate(fg):
    config = fg.PRESETS["tiny"]
    cell = fg.cell_for(config, "bias5", 6)
    model = fg.rnnlab.models.sequence_model(cell, 9)
    params = jax.vmap(lambda k: model.init(k, 10))(jax.random.split(jax.random.key(0), 2))
    # No weights into the gates: f = sigmoid(5) at every step, tau = -1 / log sigmoid(5) ~ 149.
    core = params.core._replace(
        input_kernel=jnp.zeros_like(params.core.input_kernel),
        recurrent_kernel=jnp.zeros_like(params.core.recurrent_kernel),
    )
    tau = fg.timescales(cell, params._replace(core=core), jnp.ones((3, 8, 10)))
    assert tau.shape == (2, config.hidden_size)
    np.testing.assert_allclose(tau, -1.0 / np.log(1.0 / (1.0 + np.exp(-5.0))), rtol=1e-4)


def test_recall_gradient_reaches_further_with_a_larger_forget_bias(fg):
    config = fg.PRESETS["tiny"]
    task = fg.tasks.get("copy")
    batch = task.sample(jax.random.key(1), 4, 30)
    reach = {}
    for init in ("bias0", "bias5"):
        cell = fg.cell_for(config, init, 30)
        model = fg.rnnlab.models.sequence_model(cell, task.output_size)
        params = jax.vmap(lambda k, model=model: model.init(k, 10))(jax.random.split(jax.random.key(0), 2))
        g = fg.recall_gradients(cell, params, batch)
        assert g["cell"].shape == g["hidden"].shape == (2, 50)
        # Only the recall loss: the last step's cell state reaches no output, so its gradient is 0.
        assert np.all(g["cell"][:, -1] == 0) and np.all(g["hidden"][:, -1] > 0)
        reach[init] = g["cell"][:, :10].mean() / g["cell"][:, -10:-1].mean()
    # f ~ 0.5 halves the error per step over ~30 steps; f ~ 0.993 keeps most of it.
    assert reach["bias5"] > 0.1 and reach["bias0"] < 1e-4


def test_tiny_run_writes_config_results_plots_and_report(fg, tmp_path, capsys):
    out = tmp_path / "run"
    fg.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    config = fg.PRESETS["tiny"]
    names = {p.name for p in out.iterdir()}
    assert names >= {"config.json", "results.json", "report.md", "runs", "learning_curves.png", "gradient_flow.png",
                     "timescales.png"}  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert [(e["length"], e["init"]) for e in results["runs"]] == [(6, i) for i in config.inits]
    for e in results["runs"]:
        assert e["seeds"] == config.train.seeds and 0 <= e["left_plateau"] <= e["seeds"]
        assert len(e["skipped_updates"]) == e["seeds"] and e["skipped"] == sum(n > 0 for n in e["skipped_updates"])
        with np.load(out / "runs" / f"{fg.run_name(e['length'], e['init'])}.npz") as z:
            assert z["timescale_trained"].shape == (e["seeds"], config.hidden_size)
            assert z["grad_init_cell"].shape == (e["seeds"], 6 + 20)
            assert z["eval.cross_entropy"].shape == (len(z["eval_step"]), e["seeds"])
    report = (out / "report.md").read_text()
    assert "## Forget-gate timescales against the lag" in report and "| chrono |" in report
    assert "Wrote" in capsys.readouterr().out
    # Seeds stopped at a non-finite step are counted where the learning results are shown.
    results["runs"][0]["diverged"] = 1
    (row,) = [r for r in fg.report(results).splitlines() if r.startswith(f"| {fg.INITS[config.inits[0]]} | loss")]
    assert row.endswith(", 1 diverged |")


def test_bad_config_is_rejected(fg, capsys):
    with pytest.raises(ValueError, match=r"unknown init\(s\) \['bias9'\]"):
        fg.Config(**{**fg.PRESETS["tiny"].__dict__, "inits": ("bias9",)})
    with pytest.raises(SystemExit):
        fg.main(["--preset", "tiny", "--lengths", "adding=10", "--out", "/nonexistent"])
    assert re.search(r"lengths must be \{'copy'", capsys.readouterr().err)


def test_plots_draw_each_init_against_its_own_evaluation_steps(fg, tmp_path):
    # The first init's seeds all stopped early (3 evaluations), the second trained on (5): no shared step axis.
    (tmp_path / "runs").mkdir()
    inits = ("bias0", "chrono")
    for init, evals in zip(inits, (3, 5)):
        rng = np.random.default_rng(evals)
        np.savez(tmp_path / "runs" / f"{fg.run_name(4, init)}.npz", eval_step=np.arange(evals) * 10,
                 **{"eval.cross_entropy": rng.uniform(0.5, 2.0, (evals, 2))},
                 **{f"grad_{w}_cell": rng.uniform(0.1, 1.0, (2, 24)) for w in ("init", "trained")},
                 **{f"timescale_{w}": rng.uniform(1.0, 50.0, (2, 3)) for w in ("init", "trained")})  # fmt: skip
    results = {"config": {"lengths": {"copy": [4]}, "inits": list(inits)},
               "runs": [{"length": 4, "init": i, "baseline": 1.0} for i in inits]}  # fmt: skip
    assert [p.name for p in fg.make_plots(results, tmp_path)] == ["learning_curves.png", "gradient_flow.png",
                                                                   "timescales.png"]  # fmt: skip


def test_learning_curves_take_one_step_axis_per_curve_and_gradient_flow_labels_its_lag():
    from rnnlab import plots

    fig, (ax, bx) = plots.pyplot().subplots(1, 2)
    plots.learning_curves(ax, {"a": [0, 10], "b": [0, 10, 20]}, {"a": np.ones((2, 3)), "b": np.ones((3, 3))})
    assert [list(line.get_xdata()) for line in ax.lines] == [[0, 10], [0, 10, 20]]
    with pytest.raises(ValueError, match=r"'b' has 3 evaluations but only 2 steps"):
        plots.learning_curves(ax, [0, 10], {"b": np.ones((3, 3))})
    plots.gradient_flow(bx, {"g": np.array([1e-3, 1e-2, 1e-1])})  # indexed by step t; the last step is lag 0
    assert list(bx.lines[0].get_xdata()) == [0, 1, 2] and bx.get_xlabel() == "lag: steps back from the last step"
    plots.pyplot().close(fig)
