r"""Count-based n-gram language models: the baseline a character-level network must beat.

An order-``n`` model predicts token ``x_t`` from the ``n - 1`` tokens before it with add-``k``
(Lidstone) smoothing of the training counts,

.. math::

    p(x_t \mid x_{t-n+1..t-1}) = \frac{c(x_{t-n+1..t}) + k}{c(x_{t-n+1..t-1}) + k V},

``V`` the vocabulary size. Contexts that reach back past the start of a split are padded with a
symbol outside the vocabulary, so every token but a split's first is scored, as a recurrent
model scores them. Counts are kept as sorted integer codes (numpy, no Python loop over tokens).

Example:
    >>> import numpy as np
    >>> train = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    >>> model = NGram.fit(train, order=2, vocab_size=2, k=0.5)
    >>> bits = model.bits(np.array([0, 1, 0]))        # after 0 comes 1 (4 of 4 times), after 1 comes 0 (3 of 3)
    >>> np.round(2 ** -bits, 3).tolist()              # (4 + .5) / (4 + 1), (3 + .5) / (3 + 1)
    [0.9, 0.875]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from rnnlab import _checks


def _codes(ids: np.ndarray, order: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(context codes, joint codes)`` for tokens ``1 .. N-1``, contexts padded with ``vocab_size``."""
    base = vocab_size + 1
    padded = np.concatenate([np.full(order - 1, vocab_size, np.int64), ids.astype(np.int64)])
    n = len(ids)
    context = np.zeros(n - 1, np.int64)
    for j in range(order - 1):  # token t - order + 1 + j of the context, for t = 1 .. N - 1
        context = context * base + padded[1 + j : n + j]
    return context, context * base + ids[1:].astype(np.int64)


class NGram(NamedTuple):
    """Counts of an add-``k`` n-gram model (build with :meth:`fit`)."""

    order: int
    vocab_size: int
    k: float
    joint: np.ndarray  # sorted codes of (context, next) seen in training
    joint_counts: np.ndarray
    context: np.ndarray  # sorted codes of contexts seen in training
    context_counts: np.ndarray

    @classmethod
    def fit(cls, ids, *, order: int, vocab_size: int, k: float = 1.0) -> NGram:
        """Counts every (context, next token) pair of the training ids ``(N,)`` in ``[0, vocab_size)``."""
        where = "NGram.fit"
        order = _checks.positive_int(where, "order", order)
        V = _checks.positive_int(where, "vocab_size", vocab_size)
        if not 0 < _checks.real_number(where, "k", k) < math.inf:
            raise ValueError(f"{where}: k must be a finite number > 0 (add-k smoothing); got {k}")
        if float(order) * np.log2(V + 1) > 62:
            raise ValueError(f"{where}: order={order} with vocab_size={V} overflows the int64 codes; lower the order")
        ids = _token_ids(where, ids, V)
        context, joint = _codes(ids, order, V)
        j, jc = np.unique(joint, return_counts=True)
        c, cc = np.unique(context, return_counts=True)
        return cls(order, V, float(k), j, jc, c, cc)

    def with_k(self, k: float) -> NGram:
        """The same counts with another smoothing constant."""
        if not 0 < _checks.real_number("NGram.with_k", "k", k) < math.inf:
            raise ValueError(f"NGram.with_k: k must be a finite number > 0; got {k}")
        return self._replace(k=float(k))

    def bits(self, ids) -> np.ndarray:
        """``(N - 1,)`` bits ``-log2 p(x_t | context)`` of tokens ``1 .. N-1`` of ``ids``."""
        ids = _token_ids("NGram.bits", ids, self.vocab_size)
        context, joint = _codes(ids, self.order, self.vocab_size)
        numer = _lookup(self.joint, self.joint_counts, joint) + self.k
        denom = _lookup(self.context, self.context_counts, context) + self.k * self.vocab_size
        return np.log2(denom) - np.log2(numer)


def _token_ids(where: str, ids, vocab_size: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) < 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{where}: ids must be a (N,) integer array with N >= 2; got {ids.dtype} {ids.shape}")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"{where}: ids must lie in [0, vocab_size={vocab_size}); got [{ids.min()}, {ids.max()}]")
    return ids


def _lookup(keys: np.ndarray, counts: np.ndarray, query: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[at] == query, counts[at], 0).astype(np.float64)


def tuned(model: NGram, validation_ids, ks=(1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)) -> tuple[NGram, float]:
    """The model with the ``k`` of ``ks`` giving the fewest mean bits on ``validation_ids``, and those bits."""
    scored = [(float(np.mean(model.with_k(k).bits(validation_ids))), k) for k in ks]
    best, k = min(scored)
    return model.with_k(k), best
