"""The sweep runner: a tiny grid end to end, its table and intervals, NaN seeds, resuming, config errors."""

import dataclasses
import json
import math
import shutil

import experiment_module
import numpy as np
import pytest
from scipy import stats

from rnnlab import checkpoint, protocols, sweep
from rnnlab.train import OptimizerConfig

TRAIN = protocols.TrainSettings(seeds=2, batch_size=8, steps=20, eval_every=10, eval_size=16, test_size=16, grad_size=4)
TINY = sweep.SweepConfig(
    name="tiny", cells=("elman", "lstm"), lengths={"adding": (6,)}, hidden_sizes=(4,), learning_rates=(1e-3, 1e-2),
    train=TRAIN,
)  # fmt: skip
TINY_TOML = """
name = "tiny"
cells = ["elman", "lstm"]
hidden_sizes = [4]
learning_rates = [1e-3, 1e-2]
[lengths]
adding = [6]
[train]
seeds = 2
batch_size = 8
steps = 20
eval_every = 10
eval_size = 16
test_size = 16
grad_size = 4
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished tiny sweep (2 cells x 1 length x 2 learning rates x 2 seeds): its folder, its results, and
    ``{point key: (the arguments of its train_on_task call, the TaskRun)}``."""
    out = tmp_path_factory.mktemp("sweep") / "tiny"
    recorded, checkpoints = {}, {}

    def recording(cell, task, length, settings, **kwargs):
        run = protocols.train_on_task(cell, task, length, settings, **kwargs)
        key = kwargs["label"].split()[-1]
        recorded[key] = (_arguments(cell, task, length, settings, **kwargs), run)
        checkpoints[key] = sorted(p.name for p in (out / "checkpoints" / key).iterdir())
        return run

    with pytest.MonkeyPatch.context() as patch, checkpoint.interval(0):  # a checkpoint at every evaluation
        patch.setattr(sweep, "train_on_task", recording)
        results = sweep.run_sweep(TINY, out, progress=False)
    # Each point's training loop checkpointed while it ran (a killed sweep resumes mid-point); the
    # checkpoints are gone once the point is written.
    assert checkpoints == {p.key: ["fit-0"] for p in sweep.grid(TINY)}
    assert not any((out / "checkpoints").iterdir())
    return out, results, recorded


def _arguments(cell, task, length, settings, *, seed, learning_rates, **unused):
    del unused  # progress and label
    return cell.name, cell.options, task.name, length, settings, seed, learning_rates


def test_tiny_sweep_writes_one_row_per_point_and_learning_rate(swept):
    out, results, _ = swept
    assert {p.name for p in out.iterdir()} >= {"config.json", "results.json", "results.csv", "report.md", "runs"}
    assert sorted(p.name for p in (out / "runs").iterdir()) == [f"{p.key}.npz" for p in sweep.grid(TINY)]
    assert json.loads((out / "results.json").read_text()) == results
    assert results["config"] == json.loads((out / "config.json").read_text()) == json.loads(json.dumps(TINY.to_dict()))

    rows = results["table"]
    assert [(r["cell"], r["learning_rate"]) for r in rows] == [
        ("elman", 1e-3), ("elman", 1e-2), ("lstm", 1e-3), ("lstm", 1e-2)
    ]  # fmt: skip
    assert all(tuple(r) == sweep.COLUMNS for r in rows)
    for r in rows:
        assert (r["task"], r["length"], r["hidden"], r["optimizer"], r["clip"]) == ("adding", 6, 4, "adam", 1.0)
        assert r["seeds"] == 2 and r["failed"] == 0 and r["metric"] == "mse"
        assert r["baseline"] == pytest.approx(1 / 6)
        assert r["solved_fraction"] == r["solved"] / 2
        assert 0 <= r["solved_low"] <= r["solved_fraction"] <= r["solved_high"] <= 1
        assert r["test_loss_low"] <= r["test_loss_mean"] <= r["test_loss_high"]

    # The two learning rates of a point are separate models: the rows differ.
    assert rows[0]["test_loss_mean"] != rows[1]["test_loss_mean"]
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0] == ",".join(sweep.COLUMNS) and len(csv_lines) == 1 + len(rows)
    report = (out / "report.md").read_text()
    assert "Wilson" in report and "Student-t" in report and "| elman | adding | 6 |" in report


@pytest.mark.parametrize("successes, trials, confidence", [(0, 1, 0.95), (0, 5, 0.95), (2, 5, 0.95), (5, 5, 0.95),
                                                           (3, 7, 0.9), (17, 40, 0.99)])  # fmt: skip
def test_wilson_interval_matches_scipy(successes, trials, confidence):
    expected = stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    np.testing.assert_allclose(sweep.wilson_interval(successes, trials, confidence), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n, confidence", [(2, 0.95), (3, 0.95), (5, 0.9), (12, 0.99)])
def test_student_t_interval_matches_scipy(n, confidence):
    x = np.random.default_rng(n).lognormal(size=n)
    r = sweep.student_t_interval(x, confidence)
    expected = stats.t.interval(confidence, n - 1, loc=x.mean(), scale=stats.sem(x))
    np.testing.assert_allclose((r.low, r.high), expected, rtol=1e-12)
    assert (r.mean, r.n, r.failed) == (pytest.approx(x.mean()), n, 0)


def test_student_t_interval_leaves_out_non_finite_values():
    r = sweep.student_t_interval([0.5, math.nan, 1.5, math.inf, 1.0])
    assert (r.mean, r.n, r.failed) == (1.0, 3, 2)
    assert (r.low, r.high) == pytest.approx(stats.t.interval(0.95, 2, loc=1.0, scale=stats.sem([0.5, 1.5, 1.0])))
    assert sweep.student_t_interval([2.0, math.nan]) == (2.0, None, None, 1, 1)


@pytest.mark.parametrize("call, message", [
    (lambda: sweep.wilson_interval(4, 3), "successes must be an int in [0, trials=3]; got 4"),
    (lambda: sweep.wilson_interval(0, 0), "trials must be an int >= 1; got 0"),
    (lambda: sweep.student_t_interval([1.0], confidence=1.0), "confidence must be in (0, 1); got 1.0"),
])  # fmt: skip
def test_interval_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        call()


def _fake_run(test_loss, diverged):
    """A TaskRun of 3 seeds x 2 learning rates (seed-major) with the given per-model test loss."""
    test_loss = np.asarray(test_loss, np.float64)
    solved = np.isfinite(test_loss) & (test_loss <= 0.1 / 6)
    return protocols.TaskRun(
        "mse", 1 / 6, {"mse": test_loss}, solved, np.where(solved, 10, -1), np.asarray(diverged), {}, {},
        {"eval_step": np.array([10, 20])}, 20, 0.1,
    )  # fmt: skip


def test_a_nan_seed_is_counted_as_failed_and_never_averaged(tmp_path, monkeypatch):
    config = dataclasses.replace(TINY, cells=("lstm",), train=dataclasses.replace(TRAIN, seeds=3))
    # Models s * 2 + k: learning rate 1e-3 gets 0.01, NaN, 0.03; learning rate 1e-2 gets 0.2, 0.4, 0.6.
    run = _fake_run([0.01, 0.2, math.nan, 0.4, 0.03, 0.6], diverged=[-1, -1, 7, -1, -1, -1])
    calls = []

    def fake(cell, task, length, settings, **kwargs):
        calls.append((cell.name, task.name, length, settings.seeds, kwargs["learning_rates"]))
        return run

    monkeypatch.setattr(sweep, "train_on_task", fake)
    results = sweep.run_sweep(config, tmp_path, progress=False)
    assert calls == [("lstm", "adding", 6, 3, (1e-3, 1e-2))]  # one program for every seed and learning rate
    slow, fast = results["table"]
    assert (slow["learning_rate"], fast["learning_rate"]) == (1e-3, 1e-2)
    # 0.01 is below the solve line 0.1 x 1/6, 0.03 is not; the NaN seed did not solve.
    assert (slow["failed"], slow["diverged"], slow["solved"], slow["seeds"]) == (1, 1, 1, 3)
    assert slow["test_loss_mean"] == pytest.approx(0.02)
    assert (slow["test_loss_low"], slow["test_loss_high"]) == pytest.approx(
        stats.t.interval(0.95, 1, loc=0.02, scale=stats.sem([0.01, 0.03]))
    )
    assert (fast["failed"], fast["solved"], fast["test_loss_mean"]) == (0, 0, pytest.approx(0.4))
    assert results["points"][0]["by_learning_rate"][0]["test"]["mse"] == [0.01, None, 0.03]  # JSON null, not NaN
    assert "nan" not in (tmp_path / "results.csv").read_text().lower()


def test_resume_runs_only_the_missing_point_and_gives_the_same_table(swept, tmp_path, monkeypatch):
    finished, results, recorded = swept
    out = tmp_path / "interrupted"
    shutil.copytree(finished, out)
    # An interruption during the last point: results.json holds the points before it.
    partial = json.loads((out / "results.json").read_text())
    del partial["points"][-1], partial["table"]
    (out / "results.json").write_text(json.dumps(partial))
    (out / "results.csv").unlink()
    labels = []

    def replay(*args, **kwargs):
        """Counts the call, checks its arguments and gives back what the uninterrupted sweep's training returned
        for them: what is under test is the sweep's bookkeeping, and replaying saves compiling the model again."""
        labels.append(kwargs["label"])
        arguments, run = recorded[kwargs["label"].split()[-1]]
        assert _arguments(*args, **kwargs) == arguments
        return run

    monkeypatch.setattr(sweep, "train_on_task", replay)
    resumed = sweep.run_sweep(TINY, out, progress=False, resume=True)
    assert labels == ["[2/2] adding_T6_lstm_h4_adam_clip1.0"]
    assert resumed["resumed"] == 1
    assert resumed["table"] == results["table"]
    assert (out / "results.csv").read_text() == (finished / "results.csv").read_text()

    # Resuming a finished sweep trains nothing.
    labels.clear()
    assert sweep.run_sweep(TINY, out, progress=False, resume=True)["table"] == results["table"]
    assert labels == []


def test_resume_refuses_a_folder_written_by_another_config(swept, tmp_path):
    out = tmp_path / "other"
    shutil.copytree(swept[0], out)
    with pytest.raises(ValueError, match=r"different config \(differs in \['seed'\]\)"):
        sweep.run_sweep(dataclasses.replace(TINY, seed=1), out, progress=False, resume=True)


def test_command_line_loads_a_toml_config_and_prints_the_table(swept, tmp_path, capsys):
    cli = experiment_module.load("sweep")
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    assert sweep.load_config(path) == TINY
    out = tmp_path / "run"
    shutil.copytree(swept[0], out)  # resuming the finished sweep: the command trains nothing
    results = cli.main(["--config", str(path), "--out", str(out), "--resume", "--no-progress"])
    printed = capsys.readouterr().out
    assert results["table"] == swept[1]["table"]
    assert printed.rstrip().endswith(sweep.to_markdown(results["table"]).splitlines()[-1])
    with pytest.raises(SystemExit):  # the finished sweep is not started over without --overwrite
        cli.main(["--config", str(path), "--out", str(out), "--no-progress"])
    assert "holds the results of an earlier run (results.json): pass --resume" in capsys.readouterr().err

    path.write_text(TINY_TOML.replace("hidden_sizes", "hiden_sizes"))
    with pytest.raises(SystemExit):
        cli.main(["--config", str(path)])
    assert "unknown key 'hiden_sizes' (did you mean 'hidden_sizes'?)" in capsys.readouterr().err


def test_the_quick_example_config_loads():
    config = sweep.load_config(experiment_module.ROOT / "experiments" / "sweeps" / "quick.toml")
    assert len(sweep.grid(config)) == 6 and sweep.learning_rates(config) == (3e-3, 1e-2)


def test_grid_runs_hidden_sizes_optimizers_and_clip_values_in_sequence():
    config = dataclasses.replace(
        TINY, hidden_sizes=(4, 8), optimizers=("adam", "sgd"), clip_values=(0.5, 2.0),
        cell_variants={"lstm_fb0": {"cell": "lstm", "forget_bias": 0.0}}, cells=("lstm", "lstm_fb0"),
    )  # fmt: skip
    points = sweep.grid(config)
    assert len(points) == 2 * 2 * 2 * 2 and len({p.key for p in points}) == len(points)
    assert points[:2] == [("lstm", "adding", 6, 4, "adam", 0.5), ("lstm_fb0", "adding", 6, 4, "adam", 0.5)]
    settings = sweep.settings_for(config, points[-1])
    assert (settings.optimizer.name, settings.optimizer.clip_value, settings.seeds) == ("sgd", 2.0, 2)
    assert sweep.make_cell(config, points[-1]).name == "lstm"
    no_clip = dataclasses.replace(TRAIN, optimizer=OptimizerConfig("adam", clip=None))
    assert {p.clip for p in sweep.grid(dataclasses.replace(TINY, train=no_clip))} == {None}


def test_a_field_only_some_optimizers_read_applies_to_their_points():
    # rmsprop's decay (and nesterov's momentum) would be refused by adam's config if carried over.
    for base, field, value, rules in [("rmsprop", "decay", 0.95, ("rmsprop", "adam")),
                                      ("nesterov", "momentum", 0.99, ("nesterov", "momentum", "adamw"))]:  # fmt: skip
        train_settings = dataclasses.replace(TRAIN, optimizer=OptimizerConfig(base, **{field: value}))
        config = dataclasses.replace(TINY, optimizers=rules, train=train_settings)
        got = {p.optimizer: getattr(sweep.settings_for(config, p).optimizer, field) for p in sweep.grid(config)}
        default = getattr(OptimizerConfig(), field)
        assert got == {rule: value if rule in (base, "momentum") else default for rule in rules}


@pytest.mark.parametrize("change, message", [
    ({"cells": ("lstn",)}, "cells[0] must be a registered cell or a key of cell_variants, one of ['elman', 'gru', "),
    ({"cells": ("lstm", "lstm")}, "cells must not repeat a value"),
    ({"cells": "lstm"}, "cells must be a list; got 'lstm'"),
    ({"lengths": {"addng": (6,)}}, "lengths has unknown task 'addng'; tasks are ['adding', "),
    ({"lengths": {"adding": (1,)}}, "lengths['adding'][0] must be an int >= 2; got 1"),
    ({"hidden_sizes": (4, 0)}, "hidden_sizes[1] must be a positive int; got 0"),
    ({"learning_rates": (-1.0,)}, "learning_rates[0] must be a finite number > 0; got -1.0"),
    ({"optimizers": ("adan",)}, "optimizers[0] must be one of ['adagrad', 'adam', "),
    ({"clip_values": (1.0,), "train": dataclasses.replace(TRAIN, optimizer=OptimizerConfig(clip=None))},
     "clip_values needs train.optimizer.clip"),
    ({"cell_variants": {"x": {"cell": "lstm", "forget_bias": 1.0, "bias": 2}}}, "cell_variants['x']: make: cell 'lstm' "
     "has no option(s) ['bias']"),
    ({"cell_variants": {"lstm": {"cell": "gru"}}}, "cell_variants['lstm'] shadows the registered cell 'lstm'"),
    ({"confidence": 95}, "confidence must be in (0, 1); got 95.0"),
])  # fmt: skip
def test_config_errors_name_the_field_and_the_valid_values(change, message):
    with pytest.raises((ValueError, TypeError)) as e:
        dataclasses.replace(TINY, **change)
    assert str(e.value).startswith("SweepConfig: ") and message in str(e.value)


def test_skipped_updates_are_recorded_and_shown_next_to_diverged(tmp_path, monkeypatch):
    # on_nonfinite="skip": the seeds met non-finite steps but were not stopped (diverged_step stays -1).
    config = dataclasses.replace(TINY, cells=("lstm",), train=dataclasses.replace(TRAIN, seeds=3, on_nonfinite="skip"))
    skipped = np.array([0, 17, 2, 0, 0, 5])  # models s * 2 + k: seed s at learning rate k
    run = _fake_run([0.01, 0.2, 0.02, 0.4, 0.03, 0.6], diverged=[-1] * 6)._replace(skipped=skipped)
    monkeypatch.setattr(sweep, "train_on_task", lambda *args, **kwargs: run)
    results = sweep.run_sweep(config, tmp_path, progress=False)
    slow, fast = results["points"][0]["by_learning_rate"]
    assert (slow["skipped"], fast["skipped"]) == ([0, 2, 0], [17, 0, 5])  # per seed
    rows = results["table"]
    assert [(r["diverged"], r["skipped"], r["skipped_updates"]) for r in rows] == [(0, 1, 2), (0, 2, 22)]
    assert (tmp_path / "results.csv").read_text().splitlines()[0].endswith(",diverged,skipped,skipped_updates")
    report = (tmp_path / "report.md").read_text()
    assert "| 0 | 1 (2 updates) |" in report and "| 0 | 2 (22 updates) |" in report
    assert "in *skipped* if it trained on with those updates skipped" in report
    assert 'this sweep ran with on_nonfinite = "skip"' in report

    # An entry written before the count was recorded: the columns are empty, not a made-up 0.
    del results["points"][0]["by_learning_rate"][0]["skipped"]
    old = sweep.table(results)[0]
    assert (old["diverged"], old["skipped"], old["skipped_updates"]) == (0, None, None)
    assert sweep.to_markdown([old]).rstrip().endswith("| 0 | n/a |")
