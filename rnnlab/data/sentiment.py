r"""Generated "reviews": a text-like classification task of variable-length token sequences, padded.

Each review is a sequence of token ids over a 30-word vocabulary (:data:`VOCABULARY`, id 0 is the
pad token ``<pad>``). It is built from ``k`` opinion phrases, ``k`` odd, placed at random among
neutral filler words:

* an opinion phrase is two tokens, a modifier and a sentiment word: ``"not good"``, ``"very dull"``;
  the modifier is ``not`` with probability ``negation``, else a filler word;
* a sentiment word has polarity ``+1`` (:data:`POSITIVE`) or ``-1`` (:data:`NEGATIVE`), drawn
  with equal probability;
* outside the phrases, a filler may be a stray ``not`` (probability ``stray_not``) that negates nothing:
  it is never followed by a sentiment word or by an opinion phrase (whose modifier may be ``not``).

The label is the sign of the summed polarities, a sentiment word's polarity flipped when the token
just before it is ``not``:

.. math::

    y = [\textstyle\sum_{t:\,w_t \in S} s(w_t)\,(-1)^{[w_{t-1} = \mathrm{not}]} > 0],

1 for a positive review and 0 for a negative one (``k`` odd, so the sum is never 0). An order-
blind model (a bag of words) cannot tell which word a ``not`` negates; a bag of bigrams can.

Lengths are drawn uniformly from ``[min_length, max_length]`` and every review is padded with
``PAD`` after its length (``tokens[i, lengths[i]:] == PAD``), to ``max_length`` or to ``pad_to``.
:func:`one_hot` turns ids into inputs ``(N, T, V)`` with the pad token as the zero vector;
:func:`align_right` moves the padding in front (pre-padding), so that a model reading the last step
of the padded array sees each review's last token there.

Example:
    >>> r = reviews(4, min_length=6, max_length=12, seed=0)
    >>> r.tokens.shape, r.lengths.tolist(), r.labels.tolist()
    ((4, 12), [11, 10, 9, 7], [1, 0, 0, 0])
    >>> decode(r.tokens[3], r.lengths[3])
    'ending dull it was awful not clever'
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

PAD_WORD = "<pad>"
NOT_WORD = "not"
FILLER_WORDS = ("the", "a", "movie", "film", "plot", "acting", "was", "is", "and", "it", "story", "cast", "ending",
                "very", "quite", "really")  # fmt: skip
POSITIVE_WORDS = ("good", "great", "superb", "fun", "moving", "clever")
NEGATIVE_WORDS = ("bad", "dull", "awful", "boring", "weak", "silly")
VOCABULARY = (PAD_WORD, *FILLER_WORDS, *POSITIVE_WORDS, *NEGATIVE_WORDS, NOT_WORD)
"""Every word, at the index that is its token id."""

PAD = 0
NOT = VOCABULARY.index(NOT_WORD)
FILLERS = np.array([VOCABULARY.index(w) for w in FILLER_WORDS])
POSITIVE = np.array([VOCABULARY.index(w) for w in POSITIVE_WORDS])
NEGATIVE = np.array([VOCABULARY.index(w) for w in NEGATIVE_WORDS])
VOCAB_SIZE = len(VOCABULARY)


class Reviews(NamedTuple):
    """A padded batch of token sequences with labels.

    Attributes:
        tokens: ``(N, T) int32`` token ids; ``PAD`` at and after each review's length (or before it,
            after :func:`align_right`).
        lengths: ``(N,) int32`` the number of real tokens, in ``[1, T]``.
        labels: ``(N,) int32`` 1 positive, 0 negative (module docstring).
    """

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray


def _int_at_least(where: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{where}: {name} must be an int >= {low}; got {value!r}")
    return int(value)


def _probability(where: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: {name} must be a probability in [0, 1]; got {value!r}")
    return float(value)


def _one_review(rng: np.random.Generator, length: int, max_opinions: int, negation: float, stray_not: float):
    """``(tokens (length,), label)`` of one review."""
    most = min(max_opinions, length // 2)
    k = 1 + 2 * int(rng.integers((most + 1) // 2))  # odd, uniform on 1, 3, ..., most
    # The review as units: k two-token opinion phrases among length - 2k one-token fillers.
    units = length - k
    is_phrase = np.zeros(units, bool)
    is_phrase[rng.choice(units, k, replace=False)] = True
    first = np.cumsum(1 + is_phrase) - (1 + is_phrase)  # each unit's first token
    tokens = FILLERS[rng.integers(FILLERS.size, size=length)].astype(np.int32)
    # A stray "not" never stands before a phrase, whose first token may be "not" itself.
    before_phrase = np.append(is_phrase[1:], False)
    stray = (rng.random(units) < stray_not) & ~is_phrase & ~before_phrase
    tokens[first[stray]] = NOT
    negated = rng.random(k) < negation
    positive = rng.random(k) < 0.5
    words = np.where(positive, POSITIVE[rng.integers(POSITIVE.size, size=k)],
                     NEGATIVE[rng.integers(NEGATIVE.size, size=k)])  # fmt: skip
    at = first[is_phrase]
    tokens[at[negated]] = NOT  # the other modifiers keep their filler word
    tokens[at + 1] = words
    score = int(np.sum(np.where(positive, 1, -1) * np.where(negated, -1, 1)))
    return tokens, int(score > 0)


def reviews(
    n: int,
    *,
    min_length: int = 4,
    max_length: int = 64,
    max_opinions: int = 5,
    negation: float = 0.3,
    stray_not: float = 0.05,
    pad_to: int | None = None,
    seed: int = 0,
) -> Reviews:
    """``n`` generated reviews, padded after their lengths (module docstring).

    Args:
        n: how many reviews.
        min_length, max_length: lengths are uniform on ``[min_length, max_length]``; ``min_length >= 2``
            (one opinion phrase).
        max_opinions: the most opinion phrases per review (odd counts ``1, 3, ...`` up to this and up
            to ``length // 2``, drawn uniformly).
        negation: probability that an opinion phrase's modifier is ``not``.
        stray_not: probability that a filler outside the phrases is a ``not`` that negates nothing.
        pad_to: the padded width ``T`` (default ``max_length``); ``>= max_length``.
        seed: the same seed gives the same reviews.

    Returns:
        :class:`Reviews`.

    Raises:
        ValueError: naming the argument, what it must be and what it was.
    """
    where = "reviews"
    n = _int_at_least(where, "n", n, 1)
    min_length = _int_at_least(where, "min_length", min_length, 2)
    max_length = _int_at_least(where, "max_length", max_length, min_length)
    max_opinions = _int_at_least(where, "max_opinions", max_opinions, 1)
    negation = _probability(where, "negation", negation)
    stray_not = _probability(where, "stray_not", stray_not)
    width = max_length if pad_to is None else _int_at_least(where, "pad_to", pad_to, max_length)
    rng = np.random.default_rng(_int_at_least(where, "seed", seed, 0))
    lengths = rng.integers(min_length, max_length + 1, size=n).astype(np.int32)
    tokens = np.full((n, width), PAD, np.int32)
    labels = np.zeros(n, np.int32)
    for i, length in enumerate(lengths):
        tokens[i, :length], labels[i] = _one_review(rng, int(length), max_opinions, negation, stray_not)
    return Reviews(tokens, lengths, labels)


def _check_reviews(where: str, r) -> Reviews:
    if not isinstance(r, Reviews):
        raise TypeError(f"{where}: reviews must be a Reviews; got {type(r).__name__}")
    return r


def pad_to(r: Reviews, width: int, *, fill=PAD) -> Reviews:
    """``r`` padded to ``width`` steps with ``fill`` (an id, or ``(N, width - T)`` ids) after the current end.

    Any fill is past every length, so a model that reads each review up to its length must give
    the same output; ``fill`` other than ``PAD`` (garbage) tests exactly that.

    Example:
        >>> r = pad_to(reviews(2, max_length=5, seed=1), 7, fill=NOT)
        >>> r.tokens.shape, bool((r.tokens[:, 5:] == NOT).all())
        ((2, 7), True)
    """
    where = "pad_to"
    r = _check_reviews(where, r)
    n, t = r.tokens.shape
    width = _int_at_least(where, "width", width, t)
    extra = np.broadcast_to(np.asarray(fill, np.int32), (n, width - t)) if width > t else np.zeros((n, 0), np.int32)
    return r._replace(tokens=np.concatenate([r.tokens, extra], axis=1))


def fill_padding(r: Reviews, *, seed: int = 0) -> Reviews:
    """``r`` with every position past each review's length holding a random word id instead of ``PAD``.

    Garbage that a model reading each review only up to its length must ignore.

    Example:
        >>> r = fill_padding(reviews(3, max_length=8, seed=2), seed=0)
        >>> past = np.arange(8)[None, :] >= r.lengths[:, None]
        >>> bool((r.tokens[past] != PAD).all())
        True
    """
    r = _check_reviews("fill_padding", r)
    rng = np.random.default_rng(_int_at_least("fill_padding", "seed", seed, 0))
    past = np.arange(r.tokens.shape[1])[None, :] >= r.lengths[:, None]
    noise = rng.integers(1, VOCAB_SIZE, size=r.tokens.shape).astype(r.tokens.dtype)
    return r._replace(tokens=np.where(past, noise, r.tokens))


def align_right(r: Reviews) -> Reviews:
    """Moves each review's padding in front of it (pre-padding): ``tokens[i, T - lengths[i]:]`` holds the review.

    Example:
        >>> r = Reviews(np.array([[5, 6, 0, 0]]), np.array([2]), np.array([1]))
        >>> align_right(r).tokens.tolist()
        [[0, 0, 5, 6]]
    """
    r = _check_reviews("align_right", r)
    t = r.tokens.shape[1]
    # Source column of each output column: shift right by the padding, wrapping the pad to the front.
    cols = (np.arange(t)[None, :] + r.lengths[:, None]) % t
    return r._replace(tokens=np.take_along_axis(r.tokens, cols, axis=1))


def one_hot(tokens, vocab_size: int = VOCAB_SIZE) -> np.ndarray:
    """``(N, T) ids -> (N, T, V) float32`` one-hot inputs, the pad id 0 as the zero vector.

    Example:
        >>> one_hot(np.array([[2, 0]]), 3).tolist()
        [[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]
    """
    ids = np.asarray(tokens)
    vocab_size = _int_at_least("one_hot", "vocab_size", vocab_size, 1)
    if not np.issubdtype(ids.dtype, np.integer) or ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"one_hot: tokens must be integer ids in [0, {vocab_size}); got dtype {ids.dtype}"
                         + (f", values in [{ids.min()}, {ids.max()}]" if ids.size else ""))  # fmt: skip
    out = (ids[..., None] == np.arange(vocab_size)).astype(np.float32)
    out[..., PAD] = 0.0
    return out


def bag_of_words(r: Reviews, *, bigrams: bool = False) -> np.ndarray:
    """Counts of every word (and, with ``bigrams``, every pair of neighbouring words) in each review.

    Order-blind features for a linear baseline: ``(N, V)``, or ``(N, V + V * V)`` with bigrams
    (the pair ``(a, b)`` at column ``V + a * V + b``). Padding is not counted.

    Example:
        >>> good = VOCABULARY.index("good")
        >>> r = Reviews(np.array([[NOT, good, PAD]]), np.array([2]), np.array([0]))   # "not good"
        >>> f = bag_of_words(r, bigrams=True)
        >>> f.shape, int(f[0, NOT]), int(f[0, good]), int(f[0, VOCAB_SIZE + NOT * VOCAB_SIZE + good]), int(f.sum())
        ((1, 930), 1, 1, 1, 3)
    """
    r = _check_reviews("bag_of_words", r)
    n, t = r.tokens.shape
    v = VOCAB_SIZE
    valid = np.arange(t)[None, :] < r.lengths[:, None]
    rows = np.repeat(np.arange(n), t).reshape(n, t)
    counts = np.zeros((n, v), np.float32)
    np.add.at(counts, (rows[valid], r.tokens[valid]), 1.0)
    counts[:, PAD] = 0.0
    if not bigrams:
        return counts
    pair_valid = valid[:, 1:]
    pairs = np.zeros((n, v * v), np.float32)
    np.add.at(pairs, (rows[:, 1:][pair_valid], (r.tokens[:, :-1] * v + r.tokens[:, 1:])[pair_valid]), 1.0)
    return np.concatenate([counts, pairs], axis=1)


def decode(tokens, length: int | None = None) -> str:
    """The words of one review's ids (up to ``length``), space-separated."""
    ids = np.asarray(tokens).reshape(-1)[: None if length is None else int(length)]
    return " ".join(VOCABULARY[int(i)] for i in ids)
