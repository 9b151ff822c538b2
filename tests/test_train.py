"""The training stack: optimizer chain from a config, the train step's metrics, penalties, early stopping."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnnlab
from rnnlab import train

B, T, I, H = 3, 4, 5, 6
CELL = rnnlab.cells.lstm(H, variant="vanilla", layer_norm=True)  # peepholes and gains too: every leaf must move
PARAMS = CELL.init(jax.random.key(0), I)
BATCH = {"x": jax.random.normal(jax.random.key(1), (B, T, I)), "y": jnp.array([0.5, -1.0, 2.0])}


def loss_fn(params, batch, key, scale=1.0):
    del key
    _, ys = rnnlab.unroll(CELL, params, batch["x"])
    return scale * jnp.mean((jnp.sum(ys[:, -1], axis=-1) - batch["y"]) ** 2)


def _step(config, scale=1.0, **kw):
    opt = train.make_optimizer(config)
    step = train.make_train_step(lambda p, b, k: loss_fn(p, b, k, scale), opt, **kw)
    return step, train.init_state(PARAMS, opt)


def test_every_parameter_changes():
    step, state = _step(train.OptimizerConfig("adam", learning_rate=1e-2))
    new, _ = step(state, BATCH, jax.random.key(0))
    for path, (a, b) in zip(
        jax.tree_util.tree_flatten_with_path(PARAMS)[0], zip(jax.tree.leaves(PARAMS), jax.tree.leaves(new.params))
    ):
        assert np.all(np.asarray(a) != np.asarray(b)), f"{jax.tree_util.keystr(path[0])} has entries that did not move"
    assert int(new.step) == 1


def test_grad_norm_is_logged_before_clipping_and_clip_bounds_the_update():
    clip = 0.1
    step, state = _step(train.OptimizerConfig("sgd", learning_rate=1.0, clip="global_norm", clip_value=clip), scale=100)
    _, metrics = step(state, BATCH, jax.random.key(0))
    raw = optax.tree.norm(jax.grad(lambda p: loss_fn(p, BATCH, None, 100))(PARAMS))
    np.testing.assert_allclose(metrics["grad_norm"], raw, rtol=1e-5)
    assert float(metrics["grad_norm"]) > 10 * clip  # clipping was active...
    np.testing.assert_allclose(metrics["update_norm"], clip, rtol=1e-5)  # ...and the sgd step has norm lr * clip


def test_a_finite_gradient_whose_squares_overflow_is_clipped_not_zeroed_or_skipped():
    # Gradient 3e25 and 4e25: its norm, 5e25, is finite in float32, its squares are not.
    opt = train.make_optimizer(train.OptimizerConfig("sgd", learning_rate=1.0, clip="global_norm", clip_value=1.0))
    scale = jnp.array([3e25, 4e25])
    step = train.make_train_step(lambda p, b, k: jnp.sum(p["w"] * scale), opt, skip_nonfinite=True)
    new, metrics = step(train.init_state({"w": jnp.zeros(2)}, opt), None, jax.random.key(0))
    np.testing.assert_allclose(float(metrics["grad_norm"]), 5e25, rtol=1e-6)
    assert float(metrics["skipped"]) == 0.0
    np.testing.assert_allclose(new.params["w"], [-0.6, -0.8], rtol=1e-6)  # the update has norm clip_value
    # Non-finite stays non-finite: an inf component gives an inf norm, a NaN one NaN.
    assert float(train.global_norm([jnp.array([1.0, jnp.inf])])) == np.inf
    assert np.isnan(float(train.global_norm({"a": jnp.array([1e30, jnp.nan]), "b": jnp.zeros((2, 0))})))
    assert float(train.global_norm([jnp.zeros(3)])) == 0.0


def test_clip_by_value_bounds_every_component():
    step, state = _step(train.OptimizerConfig("sgd", learning_rate=1.0, clip="value", clip_value=1e-3), scale=100)
    new, _ = step(state, BATCH, jax.random.key(0))
    deltas = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), new.params, PARAMS)
    largest = max(float(d) for d in jax.tree.leaves(deltas))
    # new - old is rounded to float32 around weights of size ~1: allow one rounding step (~6e-8).
    assert 1e-3 - 1e-7 <= largest <= 1e-3 + 1e-7  # some component hit the bound, none passed it


def test_watch_sees_the_parameters_the_gradient_is_taken_at():
    def watch(params):
        return {"u_sum": jnp.sum(params.recurrent_kernel)}

    step, state = _step(train.OptimizerConfig("sgd", learning_rate=0.5), watch=watch)
    new, metrics = step(state, BATCH, jax.random.key(0))
    np.testing.assert_allclose(metrics["u_sum"], jnp.sum(PARAMS.recurrent_kernel), rtol=1e-6)  # before the update
    _, metrics = step(new, BATCH, jax.random.key(0))
    np.testing.assert_allclose(metrics["u_sum"], jnp.sum(new.params.recurrent_kernel), rtol=1e-6)
    step, state = _step(train.OptimizerConfig("sgd", learning_rate=0.5), watch=lambda p: {"grad_norm": 0.0})
    with pytest.raises(ValueError, match=r"watch returned \['grad_norm'\], names the step's own metrics use"):
        step(state, BATCH, jax.random.key(0))


def test_has_aux_returns_the_loss_functions_aux_and_the_same_update():
    opt = train.make_optimizer(train.OptimizerConfig("adam", learning_rate=1e-2))

    def with_carry(params, batch, key):
        carry, ys = rnnlab.unroll(CELL, params, batch["x"])
        return jnp.mean((jnp.sum(ys[:, -1], axis=-1) - batch["y"]) ** 2), carry

    state = train.init_state(PARAMS, opt)
    new, metrics, carry = train.make_train_step(with_carry, opt, has_aux=True)(state, BATCH, jax.random.key(0))
    plain, plain_metrics = train.make_train_step(loss_fn, opt)(state, BATCH, jax.random.key(0))
    np.testing.assert_allclose(carry.hidden, rnnlab.unroll(CELL, PARAMS, BATCH["x"])[0].hidden, rtol=1e-6)
    np.testing.assert_allclose(metrics["loss"], plain_metrics["loss"], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(plain.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_penalties_add_to_the_objective_and_spare_biases():
    l1, l2 = 0.01, 0.1
    step, state = _step(train.OptimizerConfig("sgd", learning_rate=1.0, clip=None), scale=0.0, l1=l1, l2=l2)
    new, metrics = step(state, BATCH, jax.random.key(0))
    kernels = [PARAMS.input_kernel, PARAMS.recurrent_kernel]
    expected = sum(l1 * np.abs(np.asarray(k)).sum() + 0.5 * l2 * (np.asarray(k) ** 2).sum() for k in kernels)
    np.testing.assert_allclose(metrics["penalty"], expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["objective"], metrics["loss"] + metrics["penalty"], rtol=1e-6)
    # With a zero loss, plain SGD moves each weight by -(l1 * sign(w) + l2 * w) and leaves the rest alone.
    w = np.asarray(PARAMS.recurrent_kernel)
    np.testing.assert_allclose(new.params.recurrent_kernel, w - (l1 * np.sign(w) + l2 * w), atol=1e-6)
    np.testing.assert_array_equal(new.params.bias, PARAMS.bias)
    np.testing.assert_array_equal(new.params.peephole, PARAMS.peephole)


def test_adamw_decays_the_weight_matrices_only():
    # With a zero loss, adamw moves each weight by -lr * weight_decay * w and leaves the rest alone.
    lr, wd = 0.1, 0.5
    opt = train.make_optimizer(train.OptimizerConfig("adamw", learning_rate=lr, weight_decay=wd, clip=None))
    step = train.make_train_step(lambda p, b, k: 0.0 * loss_fn(p, b, k), opt)
    new, _ = step(train.init_state(PARAMS, opt), BATCH, jax.random.key(0))
    for path, old in jax.tree_util.tree_flatten_with_path(PARAMS)[0]:
        moved = new.params
        for key in path:
            moved = getattr(moved, key.name)
        name = path[-1].name
        want = old * (1 - lr * wd) if name.endswith("kernel") else old
        np.testing.assert_allclose(moved, want, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", train.OPTIMIZERS)
def test_each_optimizer_lowers_the_loss(name):
    lr = {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.1}.get(name, 0.01)
    step, state = _step(train.OptimizerConfig(name, learning_rate=lr, weight_decay=1e-4 if name == "adamw" else 0.0))
    first = None
    for k in range(15):
        state, metrics = step(state, BATCH, jax.random.key(k))
        first = float(metrics["loss"]) if first is None else first
    assert float(metrics["loss"]) < first


def test_step_traces_once():
    traces = []
    opt = train.make_optimizer(train.OptimizerConfig())

    def counted(p, b, k):
        traces.append(1)
        return loss_fn(p, b, k)

    step = train.make_train_step(counted, opt)
    state = train.init_state(PARAMS, opt)
    for k in range(3):
        state, _ = step(state, BATCH, jax.random.key(k))
    assert len(traces) == 1


def test_schedules():
    assert float(train.make_schedule(train.OptimizerConfig(schedule="constant", learning_rate=1.0))(7)) == 1.0
    cfg = dict(learning_rate=1.0, total_steps=10)
    np.testing.assert_allclose(train.make_schedule(train.OptimizerConfig(schedule="cosine", **cfg))(10), 0.0, atol=1e-7)
    np.testing.assert_allclose(
        train.make_schedule(train.OptimizerConfig(schedule="exponential", decay_rate=0.5, **cfg))(10), 0.5, rtol=1e-6
    )
    warm = train.make_schedule(train.OptimizerConfig(schedule="warmup_cosine", warmup_steps=4, **cfg))
    np.testing.assert_allclose([warm(0), warm(2), warm(4), warm(7), warm(10)], [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)
    # No warm-up is the cosine schedule: the first step has the peak rate.
    cold = train.make_schedule(train.OptimizerConfig(schedule="warmup_cosine", warmup_steps=0, **cfg))
    np.testing.assert_allclose([cold(0), cold(5), cold(10)], [1.0, 0.5, 0.0], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"name": "adamax"}, ValueError, r"name must be one of .*got 'adamax'"),
        ({"learning_rate": -1.0}, ValueError, r"learning_rate must be a finite number > 0; got -1.0"),
        ({"learning_rate": float("nan")}, ValueError, r"learning_rate must be a finite number > 0"),
        ({"clip": "norm"}, ValueError, r"clip must be one of .*got 'norm'"),
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\); got 1.0"),
        ({"schedule": "linear"}, ValueError, r"schedule must be one of"),
        ({"total_steps": 0}, ValueError, r"total_steps must be a positive int; got 0"),
        # A field the chosen rule ignores is refused, not dropped.
        ({"name": "rmsprop", "momentum": 0.5}, ValueError, r"momentum=0.5 is used only with name in \('momentum', "),
        ({"name": "adam", "weight_decay": 0.1}, ValueError, r"weight_decay=0.1 is used only with name in \('adamw',\)"),
        ({"name": "adam", "decay": 0.99}, ValueError, r"decay=0.99 is used only with name in \('rmsprop',\)"),
        ({"schedule": "cosine", "warmup_steps": 5}, ValueError, r"warmup_steps=5 is used only with schedule in"),
        ({"decay_rate": 0.5}, ValueError, r"decay_rate=0.5 is used only with schedule in \('exponential',\)"),
        ({"clip": None, "clip_value": 5.0}, ValueError, r"clip_value=5.0 is used only with clip in \('global_norm', "
         r"'value'\); got clip=None, which ignores it \(leave clip_value at 1.0\)"),
        ({"total_steps": 50}, ValueError, r"total_steps=50 is used only with schedule in \('cosine', 'exponential', "
         r"'warmup_cosine'\); got schedule='constant'"),
        ({"schedule": "warmup_cosine", "warmup_steps": 10, "total_steps": 10}, ValueError, r"must be < total_steps"),
    ],
)
def test_config_errors(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        train.OptimizerConfig(**kwargs)


def test_with_name_resets_the_fields_only_other_rules_read():
    nesterov = train.OptimizerConfig("nesterov", learning_rate=0.1, momentum=0.95, clip_value=2.0)
    assert nesterov.with_name("momentum") == dataclasses.replace(nesterov, name="momentum")  # both read momentum
    adam = nesterov.with_name("adam")
    assert (adam.name, adam.momentum, adam.learning_rate, adam.clip_value) == ("adam", 0.9, 0.1, 2.0)
    rms = train.OptimizerConfig("rmsprop", decay=0.95, schedule="cosine", total_steps=50)
    assert rms.with_name("adamw").decay == 0.9 and rms.with_name("adamw").total_steps == 50
    with pytest.raises(ValueError, match=r"OptimizerConfig.with_name: name must be one of .*got 'adamax'"):
        rms.with_name("adamax")


def test_config_from_dict():
    cfg = train.OptimizerConfig.from_dict({"name": "rmsprop", "learning_rate": 1e-3, "clip_value": 1.0})
    assert cfg.name == "rmsprop" and cfg.clip == "global_norm"
    with pytest.raises(ValueError, match=r"unknown key 'lr'; valid keys: \['clip', "):
        train.OptimizerConfig.from_dict({"lr": 1e-3})
    with pytest.raises(TypeError, match=r"learning_rate must be float; got '1e-3' \(str\)"):
        train.OptimizerConfig.from_dict({"learning_rate": "1e-3"})


def test_early_stopping():
    es = train.EarlyStopping.create(patience=3, min_delta=0.01)
    for step, value in enumerate([1.0, 0.9, 0.895, 0.899, 0.89, 0.95]):
        es = es.update(value, step)
    # 0.895 and 0.89 are within min_delta of 0.9: not improvements.
    assert (es.best, es.best_step, es.bad_evals, es.should_stop) == (0.9, 1, 4, True)
    with pytest.raises(ValueError, match="patience must be a positive int"):
        train.EarlyStopping.create(patience=0)


@pytest.mark.parametrize("shared_batch", [True, False])
def test_seeds_in_parallel_equal_separate_runs(shared_batch):
    n = 3
    opt = train.make_optimizer(train.OptimizerConfig("adam", learning_rate=1e-2))
    cell = rnnlab.cells.gru(H)
    init_keys = jax.random.split(jax.random.key(3), n)

    def loss(p, batch, key):
        _, ys = rnnlab.unroll(cell, p, batch["x"])
        noise = 0.1 * jax.random.normal(key, ys.shape[:1])  # the per-seed key must reach the loss
        return jnp.mean((jnp.sum(ys[:, -1], -1) + noise - batch["y"]) ** 2)

    batches = [jax.tree.map(lambda a, s=s: a * (1 + 0.1 * s), BATCH) for s in range(n)]
    batch = BATCH if shared_batch else jax.tree.map(lambda *a: jnp.stack(a), *batches)
    parallel = train.make_seeds_train_step(loss, opt, shared_batch=shared_batch)
    states = train.init_seeds(lambda k: cell.init(k, I), init_keys, opt)
    single = train.make_train_step(loss, opt)
    alone = [train.init_state(cell.init(k, I), opt) for k in init_keys]
    for t in range(3):
        keys = jax.random.split(jax.random.key(100 + t), n)
        states, metrics = parallel(states, batch, keys)
        for s in range(n):
            alone[s], m = single(alone[s], BATCH if shared_batch else batches[s], keys[s])
            np.testing.assert_allclose(metrics["loss"][s], m["loss"], rtol=1e-5)
    for s in range(n):
        for a, b in zip(
            jax.tree.leaves(alone[s].params), jax.tree.leaves(jax.tree.map(lambda x, s=s: x[s], states.params))
        ):
            np.testing.assert_allclose(a, b, atol=1e-6)
    # Different seeds really are different models.
    assert not np.allclose(states.params.recurrent_kernel[0], states.params.recurrent_kernel[1])
