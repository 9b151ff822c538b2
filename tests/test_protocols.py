"""train_on_task: settings are validated, keys are shared across cells, 'solved' follows its rule."""

import dataclasses

import jax
import numpy as np
import pytest

import rnnlab
from rnnlab import cells, protocols, tasks

SETTINGS = protocols.TrainSettings(
    seeds=2, batch_size=8, steps=30, eval_every=15, eval_size=16, test_size=32, grad_size=4,
)  # fmt: skip


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seeds": 0}, r"seeds must be"),
        ({"test_size": 20}, r"test_size must be a multiple of eval_size=16; got 20"),
        ({"grad_size": 17}, r"grad_size must be <= eval_size=16; got 17"),
        ({"solve_fraction": 0.0}, r"solve_fraction must be in \(0, 1\]"),
        ({"optimizer": "adam"}, r"optimizer must be an OptimizerConfig"),
        ({"matmul_dtype": "int8"}, r"matmul_dtype must be a floating dtype"),
        ({"matmul_dtype": 16}, r"matmul_dtype must be a dtype name"),
        ({"fresh_validation": 1}, r"fresh_validation must be a bool; got 1"),
    ],
)
def test_settings_are_checked(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        dataclasses.replace(SETTINGS, **change)


def test_train_on_task_with_bfloat16_matmuls():
    """The setting reaches the model: the run differs from float32's, by bfloat16 rounding only."""
    task = tasks.get("adding")
    f32 = protocols.train_on_task(cells.lstm(4), task, 12, SETTINGS, progress=False)
    bf16 = protocols.train_on_task(
        cells.lstm(4), task, 12, dataclasses.replace(SETTINGS, matmul_dtype="bfloat16"), progress=False
    )
    assert np.all(np.isfinite(bf16.test["mse"])) and not np.array_equal(bf16.test["mse"], f32.test["mse"])
    np.testing.assert_allclose(bf16.test["mse"], f32.test["mse"], rtol=0.1)


def test_train_on_task_needs_a_single_cell():
    with pytest.raises(TypeError, match=r"cell must be a single Cell; got Stack"):
        protocols.train_on_task(rnnlab.stack([cells.gru(3), cells.gru(3)]), tasks.get("adding"), 5, SETTINGS)


def test_a_decaying_schedule_must_end_with_the_run():
    from rnnlab import language_model, supervised, train

    cosine = train.OptimizerConfig(schedule="cosine", total_steps=500)
    match = r"decays to 0 at optimizer.total_steps=500, but the run has steps=2000; set total_steps to 2000"
    settings = dataclasses.replace(SETTINGS, steps=2000, optimizer=cosine)
    with pytest.raises(ValueError, match="train_on_task: the cosine schedule " + match):
        protocols.train_on_task(cells.gru(3), tasks.get("adding"), 5, settings)
    with pytest.raises(ValueError, match="fit_on_dataset: the cosine schedule " + match):
        supervised.fit_on_dataset(None, None, None, None, None, supervised.FitSettings(steps=2000, optimizer=cosine),
                                  monitor="loss")  # fmt: skip
    with pytest.raises(ValueError, match="train_language_model: the cosine schedule " + match):
        language_model.train_language_model(None, None, None, language_model.LMSettings(steps=2000, optimizer=cosine),
                                            jax.random.key(0))  # fmt: skip
    # A constant or exponential schedule has no end to match: total_steps is then free.
    train.check_schedule_length("x", dataclasses.replace(cosine, schedule="exponential"), 2000)


def test_keys_depend_on_seed_task_and_length_only():
    a, b = protocols.run_keys(0, "adding", 100), protocols.run_keys(0, "adding", 100)
    for name in a:
        np.testing.assert_array_equal(jax.random.key_data(a[name]), jax.random.key_data(b[name]))
    for other in (protocols.run_keys(1, "adding", 100), protocols.run_keys(0, "copy", 100),
                  protocols.run_keys(0, "adding", 101)):  # fmt: skip
        assert not np.array_equal(jax.random.key_data(a["models"]), jax.random.key_data(other["models"]))


def test_train_on_task_scores_and_measures_every_seed():
    task = tasks.get("copy")
    run = protocols.train_on_task(cells.lstm(6), task, 5, SETTINGS, progress=False)
    assert run.metric == "cross_entropy" and run.baseline == pytest.approx(10 * np.log(8) / 25)
    assert set(run.test) >= {"cross_entropy", "accuracy", "recall_accuracy", "success_rate"}
    assert run.test["cross_entropy"].shape == (2,)
    np.testing.assert_array_equal(run.solved, run.test["cross_entropy"] <= SETTINGS.solve_fraction * run.baseline)
    for grads in (run.grad_init, run.grad_trained):
        assert set(grads) == {"hidden", "cell"} and grads["hidden"].shape == (2, task.time_steps(5))
        assert np.all(np.isfinite(grads["hidden"]))
    # The last step's cell state reaches the loss only through h inside that step: dL/dc_T is zero.
    assert np.all(run.grad_init["cell"][:, -1] == 0)
    assert not np.allclose(run.grad_init["hidden"], run.grad_trained["hidden"])


def test_a_seed_hit_a_non_finite_step_when_it_was_stopped_or_skipped_one():
    run = protocols.TaskRun(*([None] * 13))._replace(diverged_step=np.array([-1, 40, -1, -1]))
    np.testing.assert_array_equal(run.hit_nonfinite, [False, True, False, False])  # no skip counts recorded
    run = run._replace(skipped=np.array([0, 0, 3, 0]))
    np.testing.assert_array_equal(run.hit_nonfinite, [False, True, True, False])


def test_fresh_validation_scores_a_new_set_at_every_evaluation():
    task, length = tasks.get("adding"), 6
    fixed = protocols.train_on_task(cells.gru(4), task, length, SETTINGS, progress=False)
    fresh = protocols.train_on_task(cells.gru(4), task, length, dataclasses.replace(SETTINGS, fresh_validation=True),
                                    progress=False)  # fmt: skip
    key = protocols.run_keys(0, task.name, length)["validation"]
    model = rnnlab.models.sequence_model(cells.gru(4), task.output_size)

    def mse(params, step):  # the validation MSE of the initial parameters on the set drawn at `step`
        batch = task.sample(jax.random.fold_in(key, step), SETTINGS.eval_size, length)
        return rnnlab.fit.evaluate(lambda p, b: task.metric(model.apply(p, b.inputs), b), params, batch)["mse"]

    np.testing.assert_allclose(fresh.history["eval/mse"][0], mse(fresh.init_params, 0), rtol=1e-6)
    assert not np.allclose(fixed.history["eval/mse"][0], fresh.history["eval/mse"][0])
    # The training batches and the test set are the validation's own business: untouched.
    np.testing.assert_array_equal(fixed.history["train/loss"], fresh.history["train/loss"])


def test_stop_metric_and_target_go_together():
    with pytest.raises(ValueError, match=r"stop_metric and stop_target go together"):
        dataclasses.replace(SETTINGS, stop_metric="error_rate")


def test_stop_metric_stops_each_model_on_its_own_rule():
    # error_rate <= 1 holds at the evaluation before training (step 0): every model is finished
    # there, and the run ends after its first chunk of steps.
    settings = dataclasses.replace(SETTINGS, steps=60, stop_metric="error_rate", stop_target=1.0)
    run = protocols.train_on_task(cells.gru(4), tasks.get("adding_hs97"), 20, settings, progress=False)
    np.testing.assert_array_equal(run.solved_step, [0] * settings.seeds)
    assert run.steps == settings.eval_every
    np.testing.assert_allclose(run.test["error_rate"], 1.0 - run.test["success_rate"])
    # error_rate < 0 never holds: nobody stops before the budget.
    never = dataclasses.replace(settings, steps=30, stop_target=-1.0)
    run = protocols.train_on_task(cells.gru(4), tasks.get("adding_hs97"), 20, never, progress=False)
    assert run.steps == 30 and np.all(run.solved_step == -1)


def test_learning_rates_train_a_grid_of_rates_for_every_seed():
    settings = dataclasses.replace(SETTINGS, steps=15)
    task = tasks.get("adding")
    run = protocols.train_on_task(cells.gru(4), task, 8, settings, progress=False, learning_rates=[1e-3, 1e-1])
    assert run.test["mse"].shape == (4,) and run.history["eval/mse"].shape[1] == 4
    # Seed-major: models 0 and 1 are seed 0 (same init), at rates 1e-3 and 1e-1.
    init = run.init_params.core.recurrent_kernel
    np.testing.assert_array_equal(init[0], init[1])
    assert not np.array_equal(init[0], init[2])
    # Adam's first update has a norm proportional to the learning rate.
    update = run.history["train/update_norm"][0]
    np.testing.assert_allclose(update[1::2] / update[0::2], 100.0, rtol=1e-3)
    # The seed-0 models see the same batches: the same first-step loss.
    loss = run.history["train/loss"][0]
    assert loss[0] == loss[1] and loss[2] == loss[3] and loss[0] != loss[2]
    with pytest.raises(ValueError, match=r"learning_rates must be a non-empty 1-D list of numbers > 0"):
        protocols.train_on_task(cells.gru(4), task, 8, settings, progress=False, learning_rates=[0.1, -1.0])


def test_gradient_curves_of_a_variable_length_task_count_the_lag_from_each_sequence_end():
    # adding_hs97's sequences have lengths in [T, 1.1 T] and their loss at their own last step: lag k of
    # sequence b is its step lengths[b] - 1 - k, not the padded array's step T' - 1 - k.
    task, length = tasks.get("adding_hs97"), 30
    settings = dataclasses.replace(SETTINGS, steps=15, grad_size=8)
    run = protocols.train_on_task(cells.elman(5), task, length, settings, progress=False)
    test_key = jax.random.split(protocols.run_keys(0, task.name, length)["test"], 2)[0]
    batch = jax.tree.map(lambda x: x[: settings.grad_size], task.sample(test_key, settings.eval_size, length))
    ends = np.asarray(batch.lengths)
    steps = batch.inputs.shape[1]
    assert ends.min() < steps  # padded sequences: the case the alignment is for
    model = rnnlab.models.sequence_model(cells.elman(5), task.output_size)
    for s in range(settings.seeds):
        p = jax.tree.map(lambda a, s=s: a[s], run.init_params)
        g = rnnlab.diagnostics.carry_gradients(
            cells.elman(5), p.core, batch.inputs, lambda ys, f, p=p: task.loss(model.readout(p, ys), batch),
            lengths=batch.lengths,
        )  # fmt: skip
        per_step = np.linalg.norm(np.asarray(g.hidden, np.float64), axis=-1)  # (B, T')
        want = [np.mean([per_step[b, e - 1 - k] for b, e in enumerate(ends) if e > k]) if ends.max() > k else np.nan
                for k in range(steps - 1, -1, -1)]  # fmt: skip
        np.testing.assert_allclose(run.grad_init["hidden"][s], want, rtol=1e-5)
    np.testing.assert_array_equal(run.grad_sequences, [np.sum(ends > steps - 1 - t) for t in range(steps)])
    # The loss is read at every sequence's last step: lag 0 carries the largest error, not a near-zero
    # average of the few sequences that fill the array.
    assert np.all(run.grad_init["hidden"][:, -1] >= np.nanmax(run.grad_init["hidden"][:, :-1], axis=1))
