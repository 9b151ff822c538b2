"""The character-level language model against a float64 numpy loop: scoring, stateful TBPTT, resets, sampling."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import f64, gru_step, randomize

from rnnlab import cells, checkpoint
from rnnlab import language_model as lm
from rnnlab.data import text
from rnnlab.train import OptimizerConfig

H = 6
VOCAB = text.Vocabulary.from_text("abcd.")
MODEL = lm.char_model(cells.gru(H), VOCAB.size)
PARAMS = randomize(MODEL.init(jax.random.key(0), VOCAB.size), seed=1)
STREAM = text.token_stream("abcab.dcba.abba.cabd.dd.acbdacbd.", VOCAB, separator=".")


def _reference_nats(params, ids, resets):
    """nats of tokens 1..N-1 read one by one from a zero state, set back to zero where ``resets``."""
    h = {"hidden": np.zeros((1, H))}
    out = []
    for t in range(len(ids) - 1):
        if resets[t]:
            h = {"hidden": np.zeros((1, H))}
        h, y = gru_step(params.core, h, np.eye(VOCAB.size)[ids[t]][None])
        logits = y[0] @ f64(params.readout.kernel) + f64(params.readout.bias)
        out.append(np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[ids[t + 1]])
    return np.array(out)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_token_nats_equal_a_numpy_loop_with_resets_at_documents_and_lanes(batch_size):
    got = lm.token_nats(MODEL, PARAMS, STREAM, batch_size=batch_size, window=4)
    resets = STREAM.starts.copy()
    n = text.lanes(STREAM, batch_size, 4, cover=True).inputs.shape[1]
    resets[np.arange(batch_size) * n] = True  # each lane starts from a fresh state
    np.testing.assert_allclose(got, _reference_nats(PARAMS, STREAM.ids, resets), rtol=1e-5, atol=1e-5)
    scores = lm.evaluate(MODEL, PARAMS, STREAM, batch_size=batch_size, window=4)
    assert scores["tokens"] == len(STREAM.ids) - 1
    assert scores["bits_per_char"] == pytest.approx(np.mean(got) / math.log(2))
    assert scores["perplexity"] == pytest.approx(math.exp(np.mean(got)))


def test_training_passes_the_carry_from_window_to_window():
    """Step 2's loss is window 2 read from the carry window 1 left (under the step-1 parameters), under the new ones."""
    settings = lm.LMSettings(window=4, batch_size=2, steps=2, eval_every=1,
                             optimizer=OptimizerConfig("sgd", learning_rate=0.5, clip=None))  # fmt: skip
    key = jax.random.key(3)
    result = lm.train_language_model(MODEL, STREAM, STREAM, settings, key)
    laid = text.lanes(STREAM, 2, 4)
    p0 = MODEL.init(jax.random.split(key)[0], VOCAB.size)

    def window_loss(params, k):
        win = [jnp.asarray(a[:, 4 * k : 4 * k + 4]) for a in laid]
        return jnp.mean(lm._window_nll(MODEL, params, MODEL.core.initial_carry(params.core, (2,)),
                                       lm._Window(*win))[0])  # fmt: skip

    p1 = jax.tree.map(lambda p, g: p - 0.5 * g, p0, jax.jit(jax.grad(window_loss), static_argnums=1)(p0, 0))
    expected = []
    for params, k in ((p0, 0), (p1, 1)):
        nats = []
        for b in range(2):
            # The lane's stream up to the end of window k; the carry at window k's start was computed under p0.
            ids = np.append(laid.inputs[b, : 4 * k + 4], laid.targets[b, 4 * k + 3])
            resets = laid.resets[b, : 4 * k + 4]
            h = {"hidden": np.zeros((1, H))}
            for t in range(4 * k + 4):
                if resets[t]:
                    h = {"hidden": np.zeros((1, H))}
                h, y = gru_step((p0 if t < 4 * k else params).core, h, np.eye(VOCAB.size)[ids[t]][None])
                if t >= 4 * k:
                    logits = y[0] @ f64(params.readout.kernel) + f64(params.readout.bias)
                    nats.append(np.log(np.sum(np.exp(logits))) - logits[ids[t + 1]])
        expected.append(np.mean(nats) / math.log(2))
    np.testing.assert_allclose(result.history["train_bpc"], expected, rtol=1e-5)
    assert result.history["eval_step"].tolist() == [0, 1, 2] and result.steps == 2


def test_greedy_sampling_follows_the_most_likely_character():
    got = lm.sample(MODEL, PARAMS, VOCAB, jax.random.key(0), prompt="ab", length=5, temperature=0)
    h = {"hidden": np.zeros((1, H))}
    ids = list(VOCAB.encode("ab"))
    for t in range(len(ids) + 4):
        h, y = gru_step(PARAMS.core, h, np.eye(VOCAB.size)[ids[t]][None])
        if t >= len("ab") - 1:
            ids.append(int(np.argmax(y[0] @ f64(PARAMS.readout.kernel) + f64(PARAMS.readout.bias))))
    assert got == VOCAB.decode(ids)
    hot = {lm.sample(MODEL, PARAMS, VOCAB, jax.random.key(s), prompt="a", length=8, temperature=1.0) for s in range(4)}
    assert len(hot) > 1  # temperature 1 draws, so different keys give different text
    for bad in (-1, float("nan")):  # NaN had sampled greedily
        with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
            lm.sample(MODEL, PARAMS, VOCAB, jax.random.key(0), prompt="a", length=3, temperature=bad)
    with pytest.raises(ValueError, match="prompt must hold at least one token"):
        lm.sample(MODEL, PARAMS, VOCAB, jax.random.key(0), prompt="", length=3)


def test_settings_errors_name_the_field():
    with pytest.raises(ValueError, match="LMSettings: window must be a positive int; got 0"):
        lm.LMSettings(window=0)
    with pytest.raises(ValueError, match="LMSettings: l2 must be a finite number >= 0; got nan"):
        lm.LMSettings(l2=float("nan"))
    with pytest.raises(TypeError, match="settings must be LMSettings"):
        lm.train_language_model(MODEL, STREAM, STREAM, {"window": 4}, jax.random.key(0))


def test_training_continued_from_a_checkpoint_ends_bit_identical(tmp_path):
    """Carry, parameters, optimizer state and curves come back: 4 + 4 steps equal 8 in one go."""
    settings = lm.LMSettings(window=4, batch_size=2, steps=8, eval_every=2,
                             optimizer=OptimizerConfig("adam", learning_rate=0.05))  # fmt: skip
    key = jax.random.key(5)
    whole = lm.train_language_model(MODEL, STREAM, STREAM, settings, key)
    ckpt = checkpoint.Checkpointer(tmp_path / "lm")
    cut = lm.train_language_model(MODEL, STREAM, STREAM, dataclasses.replace(settings, steps=4), key, checkpoint=ckpt)
    assert cut.steps == 4 and ckpt.latest_step() == 4
    resumed = lm.train_language_model(MODEL, STREAM, STREAM, settings, key,
                                      checkpoint=checkpoint.Checkpointer(tmp_path / "lm"))  # fmt: skip
    assert resumed.steps == 8 and resumed.best_step == whole.best_step and resumed.best_bpc == whole.best_bpc
    for name, values in whole.history.items():
        np.testing.assert_array_equal(values, resumed.history[name], err_msg=name)
    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="other keys"):
        lm.train_language_model(MODEL, STREAM, STREAM, settings, jax.random.key(6),
                                checkpoint=checkpoint.Checkpointer(tmp_path / "lm"))  # fmt: skip
