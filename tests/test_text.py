"""Text pipeline: vocabularies, documents, lanes for stateful TBPTT, the n-gram baseline, the cached download."""

import collections
import hashlib
import io
import math
import urllib.error

import numpy as np
import pytest

from rnnlab.data import datasets, ngram, text


def test_byte_and_char_vocabularies_round_trip():
    s = "naïve café\nq"
    b = text.Vocabulary.bytes()
    assert b.size == 256 and b.encode(s).tolist() == list(s.encode("utf-8"))
    assert b.decode(b.encode(s)) == s
    c = text.Vocabulary.from_text(s)
    assert c.size == len(set(s)) + 1 and c.decode(c.encode(s)) == s
    assert c.encode("z").tolist() == [0] and c.decode([0]) == text.UNKNOWN  # unseen character -> unknown id
    with pytest.raises(ValueError, match=r"ids must be a 1-D sequence of ints in \[0, 256\)"):
        b.decode([256])
    with pytest.raises(ValueError, match="level must be one of"):
        text.vocabulary("word", s)


def test_documents_start_after_each_separator_and_keep_it():
    vocab = text.Vocabulary.bytes()
    s = text.token_stream("ab\n\ncd\n\n\n\nef", vocab, separator="\n\n")
    # Documents "ab\n\n", "cd\n\n", "\n\n", "ef": the separator ends each, and an empty piece is none.
    starts = np.flatnonzero(s.starts).tolist()
    assert starts == [0, 4, 8, 10] and vocab.decode(s.ids) == "ab\n\ncd\n\n\n\nef"
    assert text.token_stream("abc", vocab).starts.tolist() == [True, False, False]


def test_lanes_are_consecutive_stretches_of_the_stream():
    ids = np.arange(1, 51, dtype=np.int32)  # 49 (input, target) pairs
    starts = np.zeros(50, bool)
    starts[[0, 17]] = True
    s = text.TokenStream(ids, starts)
    ln = text.lanes(s, batch_size=3, window=4)
    assert ln.inputs.shape == (3, 16) and ln.mask.all()  # 4 * floor(49 / 12) = 16 pairs per lane
    np.testing.assert_array_equal(ln.inputs.reshape(-1), ids[:48])
    np.testing.assert_array_equal(ln.targets.reshape(-1), ids[1:49])
    # Lane starts and the document starting at token 17 (lane 1, step 1) are resets.
    assert np.argwhere(ln.resets).tolist() == [[0, 0], [1, 0], [1, 1], [2, 0]]
    covered = text.lanes(s, batch_size=3, window=4, cover=True)
    assert covered.inputs.shape == (3, 20) and covered.mask.sum() == 49
    np.testing.assert_array_equal(covered.targets[covered.mask], ids[1:])
    with pytest.raises(ValueError, match=r"49 \(input, target\) pairs cannot fill batch_size=8 lanes of one window=8"):
        text.lanes(s, batch_size=8, window=8)


def test_split_stream_is_in_reading_order_and_each_part_starts_a_document():
    s = text.token_stream("abcdefghij", text.Vocabulary.bytes())
    train, val, test = text.split_stream(s, (0.6, 0.2, 0.2))
    assert [len(p.ids) for p in (train, val, test)] == [6, 2, 2]
    assert all(p.starts[0] for p in (train, val, test))
    with pytest.raises(ValueError, match="leaves 1 in the validation part"):
        text.split_stream(s, (0.8, 0.1, 0.1))


def _plain_ngram_bits(train, ids, order, V, k):
    """The add-k model by counting in a Python dict, padded contexts as tuples."""
    pad = [None] * (order - 1)
    seq = pad + list(train)
    joint, context = collections.Counter(), collections.Counter()
    for t in range(order, len(seq)):  # tokens 1 .. N-1 of train
        ctx = tuple(seq[t - order + 1 : t])
        joint[ctx + (seq[t],)] += 1
        context[ctx] += 1
    seq = pad + list(ids)
    out = []
    for t in range(order, len(seq)):
        ctx = tuple(seq[t - order + 1 : t])
        out.append(-math.log2((joint[ctx + (seq[t],)] + k) / (context[ctx] + k * V)))
    return np.array(out)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_ngram_matches_counting_in_a_dict(order):
    rng = np.random.default_rng(order)
    train, other = rng.integers(0, 5, 300), rng.integers(0, 5, 40)
    model = ngram.NGram.fit(train, order=order, vocab_size=5, k=0.3)
    np.testing.assert_allclose(model.bits(other), _plain_ngram_bits(train, other, order, 5, 0.3), rtol=1e-12)
    # Probabilities over the vocabulary sum to one in every context.
    probs = [2.0 ** -model.bits(np.array([*other[:3], v])) [-1] for v in range(5)]
    assert sum(probs) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, vocab_size=5\); got \[0, 7\]"):
        model.bits(np.array([0, 7]))
    for bad in (0, float("nan"), float("inf")):  # NaN and inf had made every score NaN
        with pytest.raises(ValueError, match="k must be a finite number > 0"):
            ngram.NGram.fit(train, order=order, vocab_size=5, k=bad)
        with pytest.raises(ValueError, match="k must be a finite number > 0"):
            model.with_k(bad)


def test_tuned_ngram_picks_the_best_k_on_validation():
    rng = np.random.default_rng(0)
    train, val = rng.integers(0, 4, 500), rng.integers(0, 4, 100)
    model, bits = ngram.tuned(ngram.NGram.fit(train, order=3, vocab_size=4), val, ks=(0.01, 1.0, 10.0))
    assert bits == min(float(np.mean(model.with_k(k).bits(val))) for k in (0.01, 1.0, 10.0))


def test_tiny_shakespeare_downloads_once_checks_the_hash_and_explains_offline(tmp_path, monkeypatch):
    payload = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"
    monkeypatch.setattr(datasets, "TINY_SHAKESPEARE_SHA256", hashlib.sha256(payload).hexdigest())
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(datasets.urllib.request, "urlopen", fake_urlopen)
    path = datasets.tiny_shakespeare(tmp_path / "cache")
    assert path.read_bytes() == payload and calls == [datasets.TINY_SHAKESPEARE_URL]
    assert datasets.tiny_shakespeare(tmp_path / "cache") == path and len(calls) == 1  # cached: no second download
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tinyshakespeare.txt"]  # no temporary left behind

    def offline(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match=r"copy that file here by hand: .*tinyshakespeare.txt.*--corpus PATH"):
        datasets.tiny_shakespeare(tmp_path / "elsewhere")
    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"truncated"))
    with pytest.raises(ValueError, match="has SHA-256"):
        datasets.tiny_shakespeare(tmp_path / "corrupt")
    assert not (tmp_path / "corrupt" / "tinyshakespeare.txt").exists()


def test_read_text_names_the_file_and_the_bad_byte(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8 text: .* at byte 3"):
        text.read_text(bad)
    with pytest.raises(FileNotFoundError, match="no file at"):
        text.read_text(tmp_path / "missing.txt")
