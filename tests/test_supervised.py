"""Classifiers and forecasters: a stack's dropout reaches training, and the many-to-one read of a
bidirectional core against a numpy loop over each sequence's valid steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import cells, classification, data, forecasting, layers


def _batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 2))
    return classification.labelled_batch(x, (x[:, 0, 0] > 0).astype(int), [5, 3, 1, 4, 5, 2, 5, 3])


def test_a_stacks_dropout_is_on_in_training_and_off_in_evaluation():
    b = _batch()
    settings = classification.ClassifySettings(seeds=1, batch_size=4, steps=3, eval_every=3)

    def trained(rate):
        core = layers.stack([cells.elman(3), cells.elman(3)], dropout=rate)
        model, result = classification.train_classifier(core, b, b, settings, classes=2, progress=False)
        return model, jax.tree.map(lambda a: np.asarray(a[0]), result.state.params), result.history["train/loss"]

    model, with_dropout, loss_with = trained(0.5)
    _, without, loss_without = trained(0.0)
    # The same seed draws the same models and batches: only the dropout can set them apart.
    assert not np.array_equal(loss_with, loss_without)
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, with_dropout, without)))
    a = model.loss(with_dropout, b, jax.random.key(1))
    assert float(a) != float(model.loss(with_dropout, b, jax.random.key(2)))
    np.testing.assert_array_equal(model.logits(with_dropout, b.inputs, b.lengths),
                                  model.logits(with_dropout, b.inputs, b.lengths))  # fmt: skip


def test_a_forecasters_loss_takes_the_dropout_key():
    f = forecasting.forecaster(layers.stack([cells.gru(3), cells.gru(3)], dropout=0.5), 1, 2, "many_to_many")
    params = f.init(jax.random.key(0))
    w = data.windows(np.sin(np.arange(40) / 3.0), input_length=6, horizon=2)
    batch = forecasting.WindowBatch(jnp.asarray(w.inputs, jnp.float32), jnp.asarray(w.targets, jnp.float32))
    plain = float(f.loss(params, batch))
    assert plain == float(f.loss(params, batch))
    assert float(f.loss(params, batch, jax.random.key(1))) != plain


def _numpy_elman(p, xs):
    h = np.zeros(p.bias.shape, np.float64)
    out = []
    for x in xs:
        h = np.tanh(x @ p.input_kernel + h @ p.recurrent_kernel + p.bias)
        out.append(h)
    return out


@pytest.mark.parametrize("read", classification.READS)
def test_a_bidirectional_core_is_read_forward_at_the_last_step_and_backward_at_the_first(read):
    b = _batch()
    core = layers.bidirectional(cells.elman(3), cells.elman(2))
    clf = classification.classifier(core, 2, 2, read=read)
    params = clf.init(jax.random.key(0))
    got = np.asarray(clf.logits(params, b.inputs, b.lengths))
    fwd, bwd, out = (jax.tree.map(lambda a: np.asarray(a, np.float64), t)
                     for t in (params.core.forward, params.core.backward, params.readout))  # fmt: skip
    x = np.asarray(b.inputs, np.float64)
    for i, n in enumerate(np.asarray(b.lengths)):
        n = n if read == "last_valid" else x.shape[1]
        # The forward direction has read x_0..x_{n-1} at step n-1; the backward one, started at
        # step n-1, has read the same steps when it reaches step 0.
        summary = np.concatenate([_numpy_elman(fwd, x[i, :n])[-1], _numpy_elman(bwd, x[i, :n][::-1])[-1]])
        np.testing.assert_allclose(got[i], summary @ out.kernel + out.bias, rtol=1e-5, atol=1e-5)


def test_a_summed_bidirectional_core_cannot_be_read_and_a_forecaster_must_be_causal():
    with pytest.raises(ValueError, match=r"classifier: a bidirectional last layer must have merge='concat'.*'sum'"):
        classification.classifier(layers.bidirectional(cells.gru(2), merge="sum"), 1, 2)
    deep = layers.stack([cells.gru(2), layers.bidirectional(cells.gru(2), merge="sum")])
    with pytest.raises(ValueError, match=r"merge='concat'"):
        classification.classifier(deep, 1, 2)
    for mapping in forecasting.MAPPINGS:
        with pytest.raises(ValueError, match=r"forecaster: cell must be causal: .*got a Bidirectional"):
            forecasting.forecaster(layers.bidirectional(cells.gru(2)), 1, 2, mapping)
