"""Sequence-classification data and models: the shipped digits as pixel sequences, generated reviews, masking."""

import collections
import sys

import jax
import numpy as np
import pytest

from rnnlab import cells, classification, data
from rnnlab.data import sentiment


@pytest.fixture(scope="module")
def plain():
    return data.digit_sequences()


def test_digit_sequences_are_the_shipped_images_read_row_major_in_unit_range(plain):
    from sklearn.datasets import load_digits

    images = load_digits().images  # (1797, 8, 8), values 0..16
    assert plain.inputs.shape == (1797, 64, 1) and plain.inputs.dtype == np.float32
    assert plain.labels.shape == (1797,) and plain.permutation is None
    assert plain.inputs.min() == 0.0 and plain.inputs.max() == 1.0
    for i in (0, 500, 1796):
        for t in (0, 9, 63):  # step t is row t // 8, column t % 8
            assert plain.inputs[i, t, 0] * 16 == images[i, t // 8, t % 8]
    assert sorted(collections.Counter(plain.labels.tolist())) == list(range(10))


def test_the_permutation_is_a_bijection_reproducible_from_its_seed(plain):
    p = data.pixel_permutation(7)
    assert sorted(p.tolist()) == list(range(64))
    np.testing.assert_array_equal(p, data.pixel_permutation(7))
    assert not np.array_equal(p, data.pixel_permutation(8))
    permuted = data.digit_sequences(permutation_seed=7)
    np.testing.assert_array_equal(permuted.permutation, p)
    np.testing.assert_array_equal(permuted.inputs, plain.inputs[:, p])
    np.testing.assert_array_equal(permuted.inputs[:, np.argsort(p)], plain.inputs)  # undone by the inverse
    np.testing.assert_array_equal(permuted.labels, plain.labels)


def test_the_split_is_disjoint_covering_stratified_and_seeded(plain):
    fractions = (0.6, 0.2, 0.2)
    s = data.stratified_split(plain.labels, fractions, seed=3)
    together = np.concatenate(s)
    assert together.size == 1797 and np.unique(together).size == 1797  # disjoint and covering
    for part, f in zip(s, fractions):
        counts = np.bincount(plain.labels[part], minlength=10)
        np.testing.assert_allclose(counts, f * np.bincount(plain.labels), atol=1.0)
        assert not np.all(np.diff(plain.labels[part]) >= 0)  # shuffled, not sorted by class
    for a, b in zip(s, data.stratified_split(plain.labels, fractions, seed=3)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(s.train, data.stratified_split(plain.labels, fractions, seed=4).train)


def test_without_scikit_learn_the_loader_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'rnnlab\[data\]'"):
        data.digit_sequences()


POSITIVE = {"good", "great", "superb", "fun", "moving", "clever"}
NEGATIVE = {"bad", "dull", "awful", "boring", "weak", "silly"}


def sentiment_of(words):
    """The labelling rule, written out: sum the polarities, flipping a word's right after "not"."""
    score = 0
    for i, w in enumerate(words):
        s = 1 if w in POSITIVE else -1 if w in NEGATIVE else 0
        if s and i > 0 and words[i - 1] == "not":
            s = -s
        score += s
    return int(score > 0)


def test_reviews_vary_in_length_are_padded_and_labelled_by_the_rule():
    r = data.reviews(400, min_length=2, max_length=40, seed=3)
    assert r.tokens.shape == (400, 40) and r.lengths.min() >= 2 and r.lengths.max() <= 40
    assert r.lengths.min() <= 4 and r.lengths.max() >= 38  # widely varying
    past = np.arange(40)[None, :] >= r.lengths[:, None]
    assert np.all(r.tokens[past] == sentiment.PAD) and np.all(r.tokens[~past] != sentiment.PAD)
    negations = strays = 0
    for tokens, n, label in zip(r.tokens, r.lengths, r.labels):
        words = sentiment.decode(tokens, n).split()
        assert label == sentiment_of(words)
        assert sum(w in POSITIVE | NEGATIVE for w in words) % 2 == 1  # odd: never a tie
        follows_not = [b for a, b in zip(words, words[1:]) if a == "not"]
        negations += sum(w in POSITIVE | NEGATIVE for w in follows_not)
        strays += sum(w not in POSITIVE | NEGATIVE for w in follows_not)
    assert negations > 50 and strays > 5 and 0.4 < r.labels.mean() < 0.6
    again = data.reviews(400, min_length=2, max_length=40, seed=3)
    np.testing.assert_array_equal(again.tokens, r.tokens)
    assert not np.array_equal(data.reviews(400, min_length=2, max_length=40, seed=4).tokens, r.tokens)


def test_padding_helpers_and_features():
    r = data.reviews(5, min_length=3, max_length=9, seed=1)
    right = sentiment.align_right(r)
    wide = sentiment.pad_to(r, 12)
    noisy = sentiment.fill_padding(r, seed=2)
    for i, n in enumerate(r.lengths):
        np.testing.assert_array_equal(right.tokens[i, 9 - n :], r.tokens[i, :n])
        assert np.all(right.tokens[i, : 9 - n] == sentiment.PAD)
        np.testing.assert_array_equal(wide.tokens[i, :9], r.tokens[i])
        np.testing.assert_array_equal(noisy.tokens[i, :n], r.tokens[i, :n])
        assert np.all(noisy.tokens[i, n:] != sentiment.PAD)
    assert wide.tokens.shape == (5, 12) and np.all(wide.tokens[:, 9:] == sentiment.PAD)
    x = sentiment.one_hot(r.tokens)
    assert x.shape == (5, 9, sentiment.VOCAB_SIZE)
    np.testing.assert_array_equal(x.sum(-1), np.arange(9)[None, :] < r.lengths[:, None])  # padding: zero vectors
    bow = sentiment.bag_of_words(noisy, bigrams=True)  # garbage past the length is not counted
    v = sentiment.VOCAB_SIZE
    for i, n in enumerate(r.lengths):
        ids = r.tokens[i, :n].tolist()
        for w, c in collections.Counter(ids).items():
            assert bow[i, w] == c
        for (a, b), c in collections.Counter(zip(ids, ids[1:])).items():
            assert bow[i, v + a * v + b] == c
        assert bow[i].sum() == 2 * n - 1


def test_a_masked_classifier_ignores_what_follows_each_length():
    r = data.reviews(4, min_length=2, max_length=7, seed=5)
    # One review fills the width, the others end early: whatever stands past a length is padding.
    r = r._replace(lengths=np.array([7, 2, 4, 5], np.int32))
    cell = cells.elman(4)  # as in the tiny experiment run, so its initializers compile once per session
    clf = classification.classifier(cell, sentiment.VOCAB_SIZE, 2)
    params = clf.init(jax.random.key(0))

    def as_batch(reviews):
        return classification.labelled_batch(sentiment.one_hot(reviews.tokens), reviews.labels, reviews.lengths)

    @jax.jit
    def logits_and_grads(b):
        return clf.logits(params, b.inputs, b.lengths), jax.grad(clf.loss)(params, b)

    batch = as_batch(r)
    want_logits, want_grads = logits_and_grads(batch)
    longer = sentiment.pad_to(r, 11)
    for other in (sentiment.fill_padding(r, seed=1), longer, sentiment.fill_padding(longer, seed=2)):
        got_logits, got_grads = logits_and_grads(as_batch(other))
        np.testing.assert_allclose(got_logits, want_logits, rtol=1e-6, atol=1e-6)
        jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6), got_grads, want_grads)
    # The logits are the readout of each review's own last step, h_t = tanh(x_t W + h_{t-1} U + b) in numpy;
    # run to the end of the padded array instead, garbage in the padding changes them.
    core, out = jax.tree.map(np.asarray, params)

    def numpy_logits(x, steps):
        h = np.zeros(4, np.float32)
        for t in range(steps):
            h = np.tanh(x[t] @ core.input_kernel + h @ core.recurrent_kernel + core.bias)
        return h @ out.kernel + out.bias

    noisy = sentiment.one_hot(sentiment.fill_padding(r, seed=1).tokens)
    for i, n in enumerate(r.lengths):
        np.testing.assert_allclose(want_logits[i], numpy_logits(noisy[i], n), rtol=1e-5, atol=1e-5)
        if n < 7:
            assert not np.allclose(numpy_logits(noisy[i], 7), want_logits[i], atol=1e-4)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: data.pixel_permutation(-1), ValueError, r"pixel_permutation: seed must be an int >= 0; got -1"),
        (lambda: data.digit_sequences(permutation_seed=1.5), ValueError,
         r"permutation_seed must be an int >= 0; got 1.5"),
        (lambda: data.stratified_split([0, 1, 1], (0.5, 0.5)), ValueError,
         r"fractions must be three numbers >= 0 summing to 1; got \(0.5, 0.5\)"),
        (lambda: data.stratified_split(np.zeros((2, 2), int)), ValueError, r"labels must be .*got shape \(2, 2\)"),
        (lambda: data.stratified_split([0, 1]), ValueError, r"empty \['validation', 'test'\] part"),
        (lambda: data.reviews(0), ValueError, r"reviews: n must be an int >= 1; got 0"),
        (lambda: data.reviews(3, min_length=1), ValueError, r"min_length must be an int >= 2; got 1"),
        (lambda: data.reviews(3, min_length=9, max_length=5), ValueError, r"max_length must be an int >= 9; got 5"),
        (lambda: data.reviews(3, negation=1.5), ValueError, r"negation must be a probability in \[0, 1\]; got 1.5"),
        (lambda: data.reviews(3, max_length=10, pad_to=8), ValueError, r"pad_to must be an int >= 10; got 8"),
        (lambda: sentiment.one_hot(np.array([[31]])), ValueError,
         r"ids in \[0, 30\); got dtype int\d+, values in \[31"),
        (lambda: sentiment.pad_to(data.reviews(2, max_length=6), 4), ValueError, r"width must be an int >= 6; got 4"),
        (lambda: sentiment.align_right((1, 2)), TypeError, r"align_right: reviews must be a Reviews; got tuple"),
        (lambda: classification.labelled_batch(np.zeros((2, 3, 1)), [0, 1], [0, 3]), ValueError,
         r"lengths must lie in \[1, T=3\]; got values in \[0, 3\]"),
        (lambda: classification.labelled_batch(np.zeros((2, 3)), [0, 1]), ValueError,
         r"inputs must have shape \(B, T, I\) .*got \(2, 3\)"),
        (lambda: classification.labelled_batch(np.zeros((2, 3, 1)), [0, 1, 1]), ValueError,
         r"labels must be 2 class ids .*got shape \(3,\)"),
        (lambda: classification.classifier(cells.gru(2), 1, 2, read="first"), ValueError,
         r"read must be one of \['end', 'last_valid'\]; got 'first'"),
        (lambda: classification.ClassifySettings(monitor="loss"), ValueError,
         r"monitor must be one of \['cross_entropy', 'error'\]; got 'loss'"),
        (lambda: classification.ClassifySettings(steps=0), ValueError, r"steps must be a positive int; got 0"),
    ],
)  # fmt: skip
def test_bad_arguments_name_the_argument_and_the_values(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_train_classifier_checks_its_inputs_before_tracing():
    b = classification.labelled_batch(np.zeros((4, 3, 1)), [0, 1, 2, 1])
    settings = classification.ClassifySettings(seeds=1, steps=1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, classes=2\); got a label 2"):
        classification.train_classifier(cells.gru(2), b, b, settings, classes=2)
    with pytest.raises(TypeError, match=r"settings must be a ClassifySettings; got dict"):
        classification.train_classifier(cells.gru(2), b, b, {}, classes=3)
    with pytest.raises(TypeError, match=r"validation must be a LabelledBatch .*got tuple"):
        classification.train_classifier(cells.gru(2), b, tuple(b), settings, classes=3)
