r"""Text as token streams for stateful language-model training: vocabularies, documents, lanes.

* :class:`Vocabulary` maps text to integer ids: ``"byte"`` (the UTF-8 bytes, 256 ids, any text) or
  ``"char"`` (the characters of a reference text, sorted, after id 0 which stands for any
  character the reference lacks).
* :func:`token_stream` encodes a text and marks where each document starts (``separator`` ends a
  document; the separator stays in the text, so a model sees it and predicts what opens the next).
* :func:`split_stream` cuts a stream in reading order into train / validation / test.
* :func:`generated_text` writes a small corpus with known structure (for tests and demos).
* :func:`lanes` lays a stream out as ``B`` parallel lanes for truncated BPTT: lane ``b`` holds the
  ``b``-th contiguous stretch of (input, next-token target) pairs. Consecutive windows of a lane
  continue each other, so the carry after one window is the right start for the next; a lane's
  first step and every document start are flagged in ``resets``.

Example:
    >>> from rnnlab.data import text
    >>> vocab = text.Vocabulary.from_text("ab.abc.a")
    >>> vocab.size, vocab.encode("cab").tolist(), vocab.decode([4, 2, 3])
    (5, [4, 2, 3], 'cab')
    >>> s = text.token_stream("ab.abc.a", vocab, separator=".")   # documents "ab.", "abc.", "a"
    >>> s.starts.astype(int).tolist()
    [1, 0, 0, 1, 0, 0, 0, 1]
    >>> ln = text.lanes(s, batch_size=2, window=3)
    >>> [vocab.decode(x) for x in ln.inputs], [vocab.decode(y) for y in ln.targets]
    (['ab.', 'abc'], ['b.a', 'bc.'])
    >>> ln.resets.astype(int).tolist()
    [[1, 0, 0], [1, 0, 0]]
"""

from __future__ import annotations

import math
import pathlib
from typing import NamedTuple

import numpy as np

from rnnlab import _checks

LEVELS = ("byte", "char")
UNKNOWN = "\ufffd"  # what a char vocabulary decodes id 0 to


class Vocabulary(NamedTuple):
    """Text <-> ids.

    Attributes:
        level: ``"byte"`` (ids are UTF-8 bytes, ``size`` 256) or ``"char"``.
        symbols: for ``"char"``, the characters of ids ``1 .. size - 1`` (id 0 is any other
            character); empty for ``"byte"``.
    """

    level: str
    symbols: tuple[str, ...]

    @classmethod
    def bytes(cls) -> Vocabulary:
        """The 256 byte values: every UTF-8 text encodes without loss."""
        return cls("byte", ())

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """The characters of ``text``, sorted by code point, after the unknown id 0."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"Vocabulary.from_text: text must be a non-empty str; got {text!r:.40}")
        return cls("char", tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        """How many ids there are (the model's input and output width)."""
        return 256 if self.level == "byte" else len(self.symbols) + 1

    def encode(self, text: str) -> np.ndarray:
        """``(N,)`` int32 ids of ``text`` (N bytes or N characters)."""
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary.encode: text must be a str; got {type(text).__name__}")
        if self.level == "byte":
            return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
        table = {c: i + 1 for i, c in enumerate(self.symbols)}
        return np.fromiter((table.get(c, 0) for c in text), np.int32, count=len(text))

    def decode(self, ids) -> str:
        """The text of ``ids``; bytes that are not valid UTF-8 and unknown ids decode to U+FFFD."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and (ids.min() < 0 or ids.max() >= self.size)):
            raise ValueError(f"Vocabulary.decode: ids must be a 1-D sequence of ints in [0, {self.size}); "
                             f"got {ids!r:.60}")  # fmt: skip
        if self.level == "byte":
            return bytes(ids.astype(np.uint8).tolist()).decode("utf-8", errors="replace")
        return "".join(UNKNOWN if i == 0 else self.symbols[i - 1] for i in ids.tolist())


def vocabulary(level: str, reference: str) -> Vocabulary:
    """``Vocabulary.bytes()`` or ``Vocabulary.from_text(reference)`` by ``level`` (one of :data:`LEVELS`)."""
    _checks.choice("vocabulary", "level", level, LEVELS)
    return Vocabulary.bytes() if level == "byte" else Vocabulary.from_text(reference)


def read_text(path) -> str:
    """The UTF-8 text of the file at ``path``, with a readable error for a missing file or bad bytes."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_text: no file at {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"read_text: {path} is not UTF-8 text: {e.reason} at byte {e.start}") from None
    if not text:
        raise ValueError(f"read_text: {path} is empty")
    return text


class TokenStream(NamedTuple):
    """Token ids in reading order, ``ids (N,) int32``, and ``starts (N,) bool``: True at each document's first token."""

    ids: np.ndarray
    starts: np.ndarray


def token_stream(text: str, vocab: Vocabulary, separator: str | None = None) -> TokenStream:
    """Encodes ``text``; with ``separator``, a document starts after each occurrence of it (and at 0)."""
    if separator is not None and (not isinstance(separator, str) or not separator):
        raise ValueError(f"token_stream: separator must be a non-empty str or None; got {separator!r}")
    pieces = [text] if separator is None else text.split(separator)
    docs = [p + separator for p in pieces[:-1]] + [pieces[-1]] if separator is not None else pieces
    encoded = [vocab.encode(d) for d in docs if d]
    if not encoded:
        raise ValueError("token_stream: text is empty")
    starts = [np.zeros(len(e), bool) for e in encoded]
    for s in starts:
        s[0] = True
    return TokenStream(np.concatenate(encoded), np.concatenate(starts))


def split_stream(stream: TokenStream, fractions=(0.9, 0.05, 0.05)) -> tuple[TokenStream, TokenStream, TokenStream]:
    """Contiguous train / validation / test parts in reading order; each part's first token starts a document."""
    f = np.asarray(fractions, np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"split_stream: fractions must be three numbers >= 0 summing to 1; got {fractions!r}")
    n = len(stream.ids)
    cuts = [0, round(n * f[0]), round(n * (f[0] + f[1])), n]
    parts = []
    for name, a, b in zip(("train", "validation", "test"), cuts[:-1], cuts[1:]):
        if b - a < 2:
            raise ValueError(f"split_stream: a stream of {n} tokens leaves {b - a} in the {name} part; need >= 2")
        starts = stream.starts[a:b].copy()
        starts[0] = True
        parts.append(TokenStream(stream.ids[a:b], starts))
    return tuple(parts)


class Lanes(NamedTuple):
    """A stream laid out as parallel lanes, all ``(B, n)``: ``n`` a multiple of the window.

    Attributes:
        inputs: token ids read at each step.
        targets: the token that follows each input in the stream.
        resets: True where the input starts a document or a lane (the carry starts fresh).
        mask: False on padding (only with ``cover=True``).
    """

    inputs: np.ndarray
    targets: np.ndarray
    resets: np.ndarray
    mask: np.ndarray


def lanes(stream: TokenStream, batch_size: int, window: int, *, cover: bool = False) -> Lanes:
    """Lays the stream's ``N - 1`` (input, target) pairs out in ``batch_size`` lanes of whole windows.

    Lane ``b`` holds pairs ``b n .. (b + 1) n - 1`` in order. With ``cover=False`` (training) every
    lane holds ``n = window * floor((N - 1) / (B window))`` pairs and the rest are left out; with
    ``cover=True`` (evaluation) every pair is in some lane, ``n = window * ceil(ceil((N - 1) / B) / window)``,
    and the ends are padding (``mask`` False).

    Raises:
        ValueError: too few tokens for one window in every lane (``cover=False``).
    """
    where = "lanes"
    B = _checks.positive_int(where, "batch_size", batch_size)
    L = _checks.positive_int(where, "window", window)
    pairs = len(stream.ids) - 1
    if cover:
        n = L * max(1, math.ceil(math.ceil(pairs / B) / L))
    else:
        n = L * (pairs // (B * L))
        if n == 0:
            raise ValueError(
                f"{where}: {pairs} (input, target) pairs cannot fill batch_size={B} lanes of one window={L} "
                f"(need >= {B * L}); use a smaller batch_size or window"
            )
    size = B * n
    take = min(size, pairs)
    shape = (B, n)

    def laid(values, fill):
        out = np.full(size, fill, values.dtype)
        out[:take] = values[:take]
        return out.reshape(shape)

    inputs = laid(stream.ids[:-1], 0)
    targets = laid(stream.ids[1:], 0)
    resets = laid(stream.starts[:-1], False)
    resets[:, 0] = True
    mask = (np.arange(size) < take).reshape(shape)
    return Lanes(inputs, targets, resets, mask)


_WORDS = {
    "adjective": ("quiet", "quick", "old", "red", "square"),
    "noun": ("queen", "quill", "quest", "squire", "knight", "banquet"),
    "verb": ("quotes", "quits", "seeks", "asks", "requests"),
}


def generated_text(documents: int = 20, *, seed: int = 0) -> str:
    """``documents`` short documents of generated sentences, each ending with a blank line (``"\\n\\n"``).

    Sentences follow ``the <adjective> <noun> <verb> the <noun>.`` over a small word list in
    which ``q`` is always followed by ``u``, so a model that learns the spelling predicts ``u``
    after ``q`` with certainty. The same ``seed`` gives the same text.

    Example:
        >>> generated_text(2, seed=0).count("\\n\\n")
        2
    """
    n = _checks.positive_int("generated_text", "documents", documents)
    rng = np.random.default_rng(seed)

    def word(kind):
        options = _WORDS[kind]
        return options[rng.integers(len(options))]

    docs = []
    for _ in range(n):
        sentences = [
            f"the {word('adjective')} {word('noun')} {word('verb')} the {word('noun')}."
            for _ in range(int(rng.integers(2, 6)))
        ]
        docs.append(" ".join(sentences) + "\n\n")
    return "".join(docs)
