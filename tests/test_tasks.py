"""Tests for rnnlab.tasks: shapes, determinism, protocol ranges, targets recomputed in numpy, baselines, success."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import tasks

KEY = jax.random.key(0)
LENGTHS = {"adding": 30, "adding_hs97": 40, "multiplication": 30, "copy": 7, "temporal_order": 50,
           "temporal_order_pascanu": 30}  # fmt: skip


def perfect_outputs(task, batch):
    """Outputs that match the targets: the value itself, or a one-hot logit of the class."""
    if task.kind == "regression":
        return batch.targets[..., None].astype(jnp.float32)
    return 10.0 * jax.nn.one_hot(batch.targets, task.output_size, dtype=jnp.float32)


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_contract(name):
    task = tasks.get(name)
    length = LENGTHS[name]
    batch = task.sample(KEY, 3, length)
    steps = task.time_steps(length)
    assert batch.inputs.shape == (3, steps, task.input_size) and batch.inputs.dtype == jnp.float32
    assert batch.targets.shape == (3, steps)
    assert batch.targets.dtype == (jnp.float32 if task.kind == "regression" else jnp.int32)
    assert batch.mask.shape == (3, steps) and batch.mask.dtype == jnp.bool_
    assert batch.lengths.shape == (3,) and batch.lengths.dtype == jnp.int32
    # determinism, and jit of the caller gives the same sample as eager (no jit at all)
    again = task.sample(KEY, 3, length)
    jitted = jax.jit(lambda k: task.sample(k, 3, length))(KEY)
    with jax.disable_jit():
        eager = task.sample(KEY, 3, length)
    for a, b, c, d in zip(batch, again, jitted, eager):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(a, d)
    assert not np.array_equal(task.sample(jax.random.key(1), 3, length).inputs, batch.inputs)
    # inputs are zero past each length; mask lies within the valid steps
    t = np.arange(steps)[None, :]
    valid = t < np.asarray(batch.lengths)[:, None]
    assert not np.asarray(batch.inputs)[~valid].any()
    assert not np.asarray(batch.mask)[~valid].any()
    # perfect outputs succeed everywhere and beat the baseline; loss/metric jit
    out = perfect_outputs(task, batch)
    assert bool(task.success(out, batch).all())
    m = jax.jit(task.metric)(out, batch)
    assert float(m["success_rate"]) == 1.0
    assert float(m["mse" if task.kind == "regression" else "cross_entropy"]) < 1e-3 * task.baseline(length)


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_bad_arguments(name):
    task = tasks.get(name)
    with pytest.raises(TypeError, match="batch_size must be a positive int"):
        task.sample(KEY, 2.0, 30)
    with pytest.raises(ValueError, match="batch_size must be a positive int; got 0"):
        task.sample(KEY, 0, 30)
    with pytest.raises(ValueError, match=f"length must be (>= {task.min_length}|a positive int)"):
        task.sample(KEY, 2, task.min_length - 1)
    task.sample(KEY, 1, task.min_length)  # the minimum itself works
    batch = task.sample(KEY, 2, LENGTHS[name])
    with pytest.raises(ValueError, match=r"outputs must have shape \(B, T, O\)"):
        task.loss(jnp.zeros((2, 3, task.output_size)), batch)


def test_get_unknown():
    with pytest.raises(ValueError, match="choose one of .*'adding'.*'copy'"):
        tasks.get("addition")


def test_min_lengths():
    assert [tasks.get(n).min_length for n in ("adding", "adding_hs97", "multiplication", "copy")] == [2, 20, 2, 1]


@pytest.mark.parametrize("name, combine", [("adding", np.add), ("multiplication", np.multiply)])
def test_adding_arjovsky_protocol(name, combine):
    task, length = tasks.get(name), 31
    batch = jax.tree.map(np.asarray, task.sample(KEY, 512, length))
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    half = length // 2
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    pos = np.argwhere(markers)  # every position of both halves gets used
    assert pos[:, 1].min() == 0 and pos[:, 1].max() == length - 1
    x1 = (values * markers)[:, :half].sum(1)
    x2 = (values * markers)[:, half:].sum(1)
    np.testing.assert_allclose(batch.targets[:, -1], combine(x1, x2), rtol=1e-6)
    assert (batch.mask[:, -1]).all() and batch.mask.sum() == 512
    assert (batch.targets[:, :-1] == 0).all() and (batch.lengths == length).all()


def test_adding_hs97_protocol():
    task, length = tasks.get("adding_hs97"), 100
    batch = jax.tree.map(np.asarray, task.sample(KEY, 512, length))
    assert batch.inputs.shape[1] == 110
    assert batch.lengths.min() == 100 and batch.lengths.max() == 110
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert ((values >= -1) & (values <= 1)).all()
    marked = markers == 1
    assert (marked.sum(1) == 2).all()
    pos = np.argwhere(marked)[:, 1].reshape(512, 2)
    assert (pos[:, 0] < 10).all()  # one marker among the first 10 steps
    assert (pos[:, 1] < length // 2).all() and pos.max() == length // 2 - 1  # the other among the first T/2 - 1 left
    rows = np.arange(512)
    last = batch.lengths - 1
    assert (markers[rows, last] == -1).all()
    assert ((markers[:, 0] == -1) | marked[:, 0]).all()
    assert (np.abs(markers).sum(1) == 4 - marked[:, 0]).all()
    assert (values[marked[:, 0], 0] == 0).all()  # a marked step 0 holds zero
    assert batch.mask.sum() == 512 and batch.mask[rows, last].all()
    expected = 0.5 + (values * marked).sum(1) / 4
    np.testing.assert_allclose(batch.targets[rows, last], expected, rtol=1e-6)


def test_regression_baselines_and_success():
    n = 40_000
    for name, length, mean, exact in [
        ("adding", 20, 1.0, 1 / 6),
        ("multiplication", 20, 0.25, 7 / 144),
        ("adding_hs97", 100, 0.5, (0.9 + 1 - 0.9 / 49) / 48),
    ]:
        task = tasks.get(name)
        assert task.baseline(length) == pytest.approx(exact, rel=1e-12)
        batch = task.sample(KEY, n, length)
        const = jnp.full(batch.mask.shape + (1,), mean, jnp.float32)
        loss = float(task.loss(const, batch))
        errors = np.asarray(batch.targets)[np.asarray(batch.mask)] - mean
        stderr = np.std(errors**2) / math.sqrt(n)
        assert abs(loss - exact) < 4 * stderr, (name, loss, exact)
        rate = float(task.metric(const, batch)["success_rate"])
        assert rate < 0.2, (name, rate)
        # an error just inside / outside the tolerance
        off = perfect_outputs(task, batch)
        assert bool(task.success(off + 0.039, batch).all()) and not bool(task.success(off - 0.041, batch).any())
    assert tasks.get("adding_hs97").baseline(100) < 1 / 24


def test_copy_protocol():
    task, length = tasks.get("copy"), 25
    batch = jax.tree.map(np.asarray, task.sample(KEY, 512, length))
    seq = batch.inputs.argmax(-1)
    assert (batch.inputs.sum(-1) == 1).all()
    assert ((seq[:, :10] >= 1) & (seq[:, :10] <= 8)).all()
    assert set(np.unique(seq[:, :10])) == set(range(1, 9))
    assert (seq[:, 10 : length + 9] == 0).all() and (seq[:, length + 9] == 9).all()
    assert (seq[:, length + 10 :] == 0).all()
    np.testing.assert_array_equal(batch.targets[:, length + 10 :], seq[:, :10])
    assert (batch.targets[:, : length + 10] == 0).all() and batch.mask.all()
    assert (batch.lengths == length + 20).all()


@pytest.mark.parametrize("length, published", [(100, 0.1733), (200, 0.0945), (300, 0.0650), (500, 0.0400),
                                               (1000, 0.0204)])  # fmt: skip
def test_copy_baseline(length, published):
    task = tasks.get("copy")
    assert round(task.baseline(length), 4) == published
    batch = task.sample(KEY, 4, length)
    # memoryless: certain blank before the block, uniform over the 8 symbols in it
    t = jnp.arange(length + 20)[None, :, None]
    blank = jnp.where(jnp.arange(9) == 0, 0.0, -1e4)[None, None, :]
    uniform = jnp.where(jnp.arange(9) == 0, -1e4, 0.0)[None, None, :]
    logits = jnp.broadcast_to(jnp.where(t < length + 10, blank, uniform), (4, length + 20, 9))
    assert float(task.loss(logits, batch)) == pytest.approx(task.baseline(length), rel=1e-5)
    assert not bool(task.success(jnp.broadcast_to(blank, logits.shape), batch).any())
    # one wrong recalled symbol fails the sequence
    out = perfect_outputs(task, batch)
    wrong = out.at[0, -3].set(jax.nn.one_hot((batch.targets[0, -3] % 8) + 1, 9) * 10.0)
    np.testing.assert_array_equal(task.success(wrong, batch), [False, True, True, True])
    m = task.metric(wrong, batch)
    assert float(m["recall_accuracy"]) == pytest.approx(39 / 40)


def test_temporal_order_hs97_protocol():
    task = tasks.get("temporal_order")
    batch = jax.tree.map(np.asarray, task.sample(KEY, 512, 100))
    assert batch.lengths.min() == 100 and batch.lengths.max() == 110
    seq = batch.inputs.argmax(-1)
    rows = np.arange(512)
    last = batch.lengths - 1
    assert (seq[:, 0] == 6).all() and (seq[rows, last] == 7).all()
    xy = np.argwhere((seq == 4) | (seq == 5))[:, 1].reshape(512, 2)
    assert xy[:, 0].min() == 10 and xy[:, 0].max() == 20 and xy[:, 1].min() == 50 and xy[:, 1].max() == 60
    valid = np.arange(110)[None, :] < batch.lengths[:, None]
    assert ((seq < 4) | (seq > 5)).sum() + 1024 == valid.sum() + (~valid).sum()
    assert (batch.inputs.sum(-1) == valid).all()
    first, second = seq[rows, xy[:, 0]] - 4, seq[rows, xy[:, 1]] - 4
    np.testing.assert_array_equal(batch.targets[rows, last], 2 * first + second)
    assert set(np.unique(batch.targets[rows, last])) == {0, 1, 2, 3}
    assert batch.mask.sum() == 512 and batch.mask[rows, last].all()


@pytest.mark.parametrize("length", [100, 25])
def test_temporal_order_pascanu_protocol(length):
    task = tasks.get("temporal_order_pascanu")
    batch = jax.tree.map(np.asarray, task.sample(KEY, 512, length))
    seq = batch.inputs.argmax(-1)
    assert (batch.inputs.sum(-1) == 1).all()
    rel = np.argwhere(seq < 2)[:, 1].reshape(512, 2)
    # tempOrder.py: p0 = randint(int(.1 l)) + int(.1 l), p1 = randint(int(.1 l)) + int(.5 l), in Python floats.
    tenth, half = int(length * 0.1), int(length * 0.5)
    assert (rel[:, 0].min(), rel[:, 0].max()) == (tenth, 2 * tenth - 1)
    assert (rel[:, 1].min(), rel[:, 1].max()) == (half, half + tenth - 1)  # 50..59 at L = 100, 12..13 at L = 25
    rows = np.arange(512)
    np.testing.assert_array_equal(batch.targets[:, -1], seq[rows, rel[:, 0]] + 2 * seq[rows, rel[:, 1]])
    assert batch.mask[:, -1].all() and batch.mask.sum() == 512


@pytest.mark.parametrize("name", ["temporal_order", "temporal_order_pascanu"])
def test_temporal_order_baseline(name):
    task = tasks.get(name)
    assert task.baseline(100) == pytest.approx(math.log(4))
    batch = task.sample(KEY, 2000, 100)
    uniform = jnp.zeros(batch.mask.shape + (4,), jnp.float32)
    assert float(task.loss(uniform, batch)) == pytest.approx(math.log(4), rel=1e-6)
    always_zero = uniform.at[..., 0].set(1.0)  # constant class: chance success ~ 1/4
    assert 0.2 < float(task.metric(always_zero, batch)["success_rate"]) < 0.3
