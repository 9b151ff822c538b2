"""The training loop: vmapped models equal separate runs, learning-rate grids, early stopping, NaN reports."""

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import cells, checkpoint, fit, models, tasks, train

TASK = tasks.get("adding")
LENGTH = 7
MODEL = models.sequence_model(cells.elman(5), TASK.output_size)
EVAL_BATCH = TASK.sample(jax.random.key(99), 32, LENGTH)


def loss_fn(params, batch, key):
    del key
    return TASK.loss(MODEL.apply(params, batch.inputs), batch)


def eval_fn(params, batch):
    return TASK.metric(MODEL.apply(params, batch.inputs), batch)


def sample_fn(key):
    return TASK.sample(key, 8, LENGTH)


@functools.cache
def _optimizer(config):
    return train.make_optimizer(config)  # one object per config: fit reuses its compiled steps


ADAM = train.OptimizerConfig("adam", learning_rate=1e-2)


def _fit(keys, config=ADAM, learning_rates=None, **kw):
    opt = _optimizer(config)
    states = train.init_seeds(lambda k: MODEL.init(k, TASK.input_size), keys, opt, learning_rates=learning_rates)
    kw = {"steps": 12, "eval_every": 4, "monitor": "mse", "progress": False, **kw}
    return fit.fit(loss_fn, eval_fn, sample_fn, EVAL_BATCH, states, keys, opt, **kw)


def _model(tree, n):
    return jax.tree.map(lambda x: x[n], tree)


def test_models_trained_together_equal_separate_runs_and_reruns_are_identical():
    keys = jax.random.split(jax.random.key(0), 2)
    together = _fit(keys)
    assert together.history["train/loss"].shape == (12, 2)
    assert together.history["eval/mse"].shape == (4, 2)
    np.testing.assert_array_equal(together.history["eval_step"], [0, 4, 8, 12])
    for n in range(2):
        alone = _fit(keys[n : n + 1])
        for name in ("train/loss", "train/grad_norm", "eval/mse"):
            np.testing.assert_allclose(together.history[name][:, n], alone.history[name][:, 0], rtol=2e-5, atol=1e-7)
        for a, b in zip(jax.tree.leaves(_model(together.params, n)), jax.tree.leaves(_model(alone.params, 0))):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    again = _fit(keys)
    np.testing.assert_array_equal(together.history["train/loss"], again.history["train/loss"])


def test_a_finished_model_is_frozen_while_the_others_train_on():
    # Learning rates 3e-2 and 3e-4: with patience 1 the first model finishes well before the second.
    keys = jax.random.split(jax.random.key(4), 2)
    rates = jnp.asarray([3e-2, 3e-4])
    kw = {"steps": 60, "eval_every": 4, "patience": 1, "min_delta": 1e-3}
    together = _fit(keys, learning_rates=rates, **kw)
    alone = [_fit(keys[n : n + 1], learning_rates=rates[n : n + 1], **kw) for n in range(2)]
    assert alone[0].steps < alone[1].steps == together.steps  # otherwise the test shows nothing
    for n, one in enumerate(alone):
        assert together.best_step[n] == one.best_step[0]
        np.testing.assert_allclose(together.best[n], one.best[0], rtol=2e-5)
        for a, b in zip(jax.tree.leaves(_model(together.params, n)), jax.tree.leaves(_model(one.params, 0))):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
        for a, b in zip(jax.tree.leaves(_model(together.state, n)), jax.tree.leaves(_model(one.state, 0))):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
        loss = together.history["train/loss"][:, n]
        np.testing.assert_allclose(loss[: one.steps], one.history["train/loss"][:, 0], rtol=2e-5, atol=1e-7)
        assert np.isnan(loss[one.steps :]).all()  # the steps it did not train


def test_learning_rate_grid_equals_one_run_per_rate():
    key = jax.random.key(1)
    rates = [1e-3, 3e-2]
    grid = _fit(jnp.stack([key, key]), train.OptimizerConfig("rmsprop", learning_rate=0.5), learning_rates=rates)
    for n, lr in enumerate(rates):
        alone = _fit(key[None], train.OptimizerConfig("rmsprop", learning_rate=lr))
        np.testing.assert_allclose(grid.history["train/loss"][:, n], alone.history["train/loss"][:, 0], rtol=2e-5)
    # Same key, same data: only the rate differs, and it changes the run.
    assert not np.allclose(grid.history["train/loss"][-1, 0], grid.history["train/loss"][-1, 1])


def test_best_params_are_those_of_the_best_evaluation():
    result = _fit(jax.random.split(jax.random.key(2), 2), steps=16)
    mse = result.history["eval/mse"]
    np.testing.assert_array_equal(result.best, mse.min(axis=0))
    np.testing.assert_array_equal(result.best_step, result.history["eval_step"][mse.argmin(axis=0)])
    np.testing.assert_allclose(fit.evaluate(eval_fn, result.params, EVAL_BATCH)["mse"], result.best, rtol=1e-6)


def test_target_and_patience_stop_early():
    keys = jax.random.split(jax.random.key(3), 2)
    reached = _fit(keys, steps=400, target=0.25)  # these two models start at MSE 0.99 and 0.32
    mse, at = reached.history["eval/mse"], reached.history["eval_step"]
    assert np.all(mse[0] > 0.25) and np.all(reached.solved_step > 0)
    assert reached.steps == reached.solved_step.max() < 400
    for n, s in enumerate(reached.solved_step):
        k = list(at).index(s)
        assert mse[k, n] <= 0.25 < mse[:k, n].min()  # the first evaluation at or below the target
    assert reached.history["train/loss"].shape[0] == reached.steps
    # A learning rate of ~0 cannot improve: patience 2 ends the run after two evaluations.
    stuck = _fit(keys, train.OptimizerConfig("sgd", learning_rate=1e-30), steps=400, patience=2, min_delta=1e-3)
    assert stuck.steps == 8
    assert list(stuck.solved_step) == [-1, -1]


def test_a_non_finite_loss_is_reported_with_its_step_and_model():
    # loss = -w with SGD lr 1 moves w by +1 per step; the loss turns NaN once w > threshold, which
    # happens at a known step for each model.
    opt = train.make_optimizer(train.OptimizerConfig("sgd", learning_rate=1.0, clip=None))
    thresholds = jnp.array([100.0, 2.5])

    def nan_loss(params, batch, key):
        del batch, key
        return jnp.where(params["w"] > params["threshold"], jnp.nan, -params["w"])

    states = jax.vmap(lambda t: train.init_state({"w": jnp.zeros(()), "threshold": t}, opt))(thresholds)
    keys = jax.random.split(jax.random.key(4), 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit.fit(
            nan_loss, lambda p, b: {"loss": nan_loss(p, b, None)}, lambda k: jnp.zeros(()), jnp.zeros(()), states,
            keys, opt, steps=8, eval_every=4, progress=False,
        )  # fmt: skip
    # w after step s is s; step s sees w = s - 1, NaN once s - 1 > 2.5: step 4.
    assert list(result.diverged_step) == [-1, 4]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("model 1" in m and "step 4" in m for m in messages), messages
    assert np.isnan(result.history["train/loss"][3, 1]) and np.isfinite(result.history["train/loss"][:, 0]).all()
    # A NaN evaluation never counts as the best: model 1's only finite evaluation is at step 0 (w = 4 at step 4
    # already evaluates to NaN), so it keeps w = 0; model 0 keeps its last and lowest (w = 8, loss -8).
    assert float(result.params["w"][1]) == 0.0 and int(result.best_step[1]) == 0
    assert float(result.params["w"][0]) == 8.0


def test_bad_arguments_are_named():
    keys = jax.random.split(jax.random.key(5), 2)
    opt = train.make_optimizer(train.OptimizerConfig())
    states = train.init_seeds(lambda k: MODEL.init(k, TASK.input_size), keys, opt)
    args = (loss_fn, eval_fn, sample_fn, EVAL_BATCH)
    with pytest.raises(ValueError, match=r"leading axis of N = 3"):
        fit.fit(*args, states, jax.random.split(keys[0], 3), opt, steps=4, progress=False)
    with pytest.raises(KeyError, match=r"monitor='accuracy' is not among them"):
        fit.fit(*args, states, keys, opt, steps=4, monitor="accuracy", progress=False)
    with pytest.raises(ValueError, match=r"steps must be"):
        fit.fit(*args, states, keys, opt, steps=0, progress=False)
    for name, value in (("min_delta", -1.0), ("min_delta", math.nan), ("l2", math.nan), ("l1", -0.1)):
        with pytest.raises(ValueError, match=rf"fit: {name} must be a finite number >= 0; got {value}"):
            fit.fit(*args, states, keys, opt, steps=4, progress=False, **{name: value})
    with pytest.raises(ValueError, match=r"fit: target must be a number .*got nan"):
        fit.fit(*args, states, keys, opt, steps=4, target=math.nan, progress=False)
    with pytest.raises(ValueError, match=r"learning_rates must have shape \(2,\)"):
        train.init_seeds(lambda k: MODEL.init(k, TASK.input_size), keys, opt, learning_rates=[1e-3])
    with pytest.raises(ValueError, match=r"learning_rates must all be > 0"):
        train.init_seeds(lambda k: MODEL.init(k, TASK.input_size), keys, opt, learning_rates=[1e-3, -1.0])


def _nan_after(thresholds, **kw):
    """Two models of ``loss = -w`` under SGD lr 1 (w gains 1 per step): NaN once w > threshold."""
    opt = train.make_optimizer(train.OptimizerConfig("sgd", learning_rate=1.0, clip=None))

    def nan_loss(params, batch, key):
        del batch, key
        return jnp.where(params["w"] > params["threshold"], jnp.nan, -params["w"])

    states = jax.vmap(lambda t: train.init_state({"w": jnp.zeros(()), "threshold": t}, opt))(jnp.asarray(thresholds))
    keys = jax.random.split(jax.random.key(4), 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit.fit(
            nan_loss, lambda p, b: {"loss": nan_loss(p, b, None)}, lambda k: jnp.zeros(()), jnp.zeros(()), states,
            keys, opt, **{"steps": 8, "eval_every": 4, "progress": False, **kw},
        )  # fmt: skip
    return result, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_skip_policy_keeps_the_parameters_of_a_non_finite_step_and_counts_it():
    result, messages = _nan_after([100.0, 2.5], on_nonfinite="skip", model_names=["seed 0", "seed 1"])
    # Step 4 sees w = 3 > 2.5: NaN; skipped, w stays 3 and every later step is NaN as well.
    assert list(result.skipped) == [0, 5] and list(result.diverged_step) == [-1, -1]
    assert result.state.params["w"].tolist() == [8.0, 3.0]
    np.testing.assert_array_equal(result.history["train/skipped"][:, 1], [0, 0, 0, 1, 1, 1, 1, 1])
    assert len(messages) == 1 and "seed 1" in messages[0] and "step 4" in messages[0] and "skipped" in messages[0]
    # The default stops the model instead, and names it as given.
    stopped, messages = _nan_after([100.0, 2.5], model_names=["seed 0", "seed 1"])
    assert list(stopped.diverged_step) == [-1, 4] and list(stopped.skipped) == [0, 0]
    assert any("seed 1" in m and "marked failed" in m for m in messages), messages
    with pytest.raises(ValueError, match="on_nonfinite must be one of"):
        _nan_after([1.0, 1.0], on_nonfinite="ignore")


def test_a_run_continued_from_its_checkpoint_ends_bit_identical(tmp_path):
    keys = jax.random.split(jax.random.key(6), 2)
    whole = _fit(keys, steps=12, eval_every=4, patience=50)
    # The same run cut short after 8 steps (checkpoints at 4 and 8), then called again to 12.
    ckpt = checkpoint.Checkpointer(tmp_path / "ckpt")
    first = _fit(keys, steps=8, eval_every=4, patience=50, checkpoint=ckpt)
    assert first.steps == 8 and ckpt.latest_step() == 8
    resumed = _fit(keys, steps=12, eval_every=4, patience=50, checkpoint=checkpoint.Checkpointer(tmp_path / "ckpt"))
    assert resumed.resumed_from == 8 and resumed.steps == 12
    for a, b in zip(jax.tree.leaves((whole.params, whole.state)), jax.tree.leaves((resumed.params, resumed.state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert sorted(whole.history) == sorted(resumed.history)
    for name, values in whole.history.items():
        np.testing.assert_array_equal(values, resumed.history[name], err_msg=name)
    np.testing.assert_array_equal(whole.best_step, resumed.best_step)
    # A checkpoint is only continued by the run that wrote it.
    with pytest.raises(ValueError, match="other keys"):
        _fit(jax.random.split(jax.random.key(7), 2), steps=12, checkpoint=checkpoint.Checkpointer(tmp_path / "ckpt"))


def test_a_callable_eval_batch_is_drawn_at_every_evaluation_and_again_on_resume(tmp_path):
    keys = jax.random.split(jax.random.key(6), 2)
    opt = _optimizer(ADAM)
    states = train.init_seeds(lambda k: MODEL.init(k, TASK.input_size), keys, opt)
    drawn = []

    def fresh(step):
        drawn.append(step)
        return TASK.sample(jax.random.fold_in(jax.random.key(99), step), 32, LENGTH)

    def run(**kw):
        return fit.fit(loss_fn, eval_fn, sample_fn, fresh, states, keys, opt, monitor="mse", progress=False,
                       eval_every=4, **kw)  # fmt: skip

    whole = run(steps=12)
    assert drawn == [0, 4, 8, 12]
    # Each evaluation scores its own batch: the same parameters score as that batch says.
    np.testing.assert_allclose(whole.history["eval/mse"][0], fit.evaluate(eval_fn, states.params, fresh(0))["mse"])
    assert not np.allclose(fit.evaluate(eval_fn, states.params, fresh(4))["mse"], whole.history["eval/mse"][0])
    drawn.clear()
    run(steps=8, checkpoint=checkpoint.Checkpointer(tmp_path / "ckpt"))
    resumed = run(steps=12, checkpoint=checkpoint.Checkpointer(tmp_path / "ckpt"))
    assert drawn == [0, 4, 8, 12]  # the resumed call draws only the evaluation after its checkpoint
    for name, values in whole.history.items():
        np.testing.assert_array_equal(values, resumed.history[name], err_msg=name)


@pytest.mark.parametrize(
    "saved, template, pattern",
    [  # params of another variant: a None field on one side only
        ("peepholes", "plain", r"the checkpoint holds state\['params'\].peephole, which this run's state has not"),
        ("plain", "peepholes", r"state\['params'\].peephole \(shape \(3, 3\), float32\) is not in the checkpoint"),
        # numpy bookkeeping of another size: Orbax checks only jax arrays' shapes itself
        ("best2", "best3", r"state\['best'\] has shape \(2,\), float64 in the checkpoint; this run's has shape \(3,\)"),
    ],
)  # fmt: skip
def test_a_checkpoint_of_another_state_is_refused_naming_the_leaf(tmp_path, saved, template, pattern):
    key = jax.random.key(0)
    states = {
        "plain": {"params": cells.lstm(3).init(key, 2)},
        "peepholes": {"params": cells.lstm(3, peepholes=True).init(key, 2)},
        "best2": {"best": np.zeros(2)},
        "best3": {"best": np.zeros(3)},
    }
    checkpoint.Checkpointer(tmp_path / "c").save(1, states[saved])
    with pytest.raises(ValueError, match=r"does not match this run's state .*: " + pattern):
        checkpoint.Checkpointer(tmp_path / "c").restore(states[template])
    step, state, _ = checkpoint.Checkpointer(tmp_path / "c").restore(states[saved])  # its own template restores
    assert step == 1 and jax.tree.structure(state) == jax.tree.structure(states[saved])


def test_a_checkpoint_scope_hands_each_loop_its_folder_and_clears_it_when_done(tmp_path):
    keys = jax.random.split(jax.random.key(6), 2)
    with checkpoint.scope(tmp_path / "point", resume=False, seconds=0) as folder:
        _fit(keys, steps=4, eval_every=4)
        _fit(keys, steps=4, eval_every=4)
        assert sorted(p.name for p in folder.iterdir()) == ["fit-0", "fit-1"]
    assert not (tmp_path / "point").exists()
    assert checkpoint.next_checkpointer() is None


def test_a_model_that_diverges_after_a_resume_is_stopped_as_in_an_uninterrupted_run(tmp_path):
    # w > 5.5 first at step 7, after the checkpoint at step 4 that the second call continues from.
    whole, _ = _nan_after([100.0, 5.5])
    _nan_after([100.0, 5.5], steps=4, checkpoint=checkpoint.Checkpointer(tmp_path / "c"))
    resumed, messages = _nan_after([100.0, 5.5], checkpoint=checkpoint.Checkpointer(tmp_path / "c"))
    assert resumed.resumed_from == 4 and list(resumed.diverged_step) == list(whole.diverged_step) == [-1, 7]
    assert any("model 1" in m and "step 7" in m for m in messages), messages
    np.testing.assert_array_equal(resumed.params["w"], whole.params["w"])
