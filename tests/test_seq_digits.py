"""The sequence-classification experiment: baselines as scikit-learn scores them, the review conditions, a tiny run."""

import dataclasses
import json

import experiment_module
import numpy as np
import pytest

from rnnlab import data
from rnnlab.data import sentiment


@pytest.fixture(scope="module")
def sd():
    return experiment_module.load("seq_digits")


def test_review_conditions_change_only_the_padding(sd):
    config = sd.PRESETS["tiny"]
    r = sd.ReviewData(config)
    assert [len(p.labels) for p in r.parts] == list(config.reviews)
    test = r.parts[2]
    for padding in ("after", "before"):
        c = sd.ReviewData.conditions(r, padding, seed=1)
        base, wide, noisy = (np.asarray(c[k].inputs) for k in ("as_trained", "padded_2x", "garbage"))
        assert base.shape[1] == r.width and wide.shape[1] == 2 * r.width
        np.testing.assert_array_equal(np.asarray(c["garbage"].lengths), test.lengths)
        for i, n in enumerate(test.lengths):
            real = slice(0, n) if padding == "after" else slice(r.width - n, r.width)
            np.testing.assert_array_equal(noisy[i, real], base[i, real])
            assert noisy[i].sum() == r.width  # every step holds a word: the padding is garbage
            assert wide[i].sum() == base[i].sum() == n  # more padding, no more words


def test_tiny_run_scores_baselines_networks_and_padding_invariance(sd, tmp_path):
    out = tmp_path / "run"
    results = sd.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    config = sd.PRESETS["tiny"]
    for name in ("report.md", "results.json", "learning_curves.png", "accuracy.png"):
        assert (out / name).exists()
    saved = json.loads((out / "results.json").read_text())
    got = {(e["task"], e["variant"], e["model"]) for e in saved["runs"]}
    want = {("digits", "permuted", m) for m in [*sd.DIGIT_BASELINES, "rnn"]}
    want |= {("reviews", "-", b) for b in sd.REVIEW_BASELINES} | {("reviews", v, "rnn") for v in config.variants}
    assert got == want
    by = {(e["task"], e["variant"], e["model"]): e for e in saved["runs"]}
    # The logistic-regression entry (permuted pixels) is scikit-learn's score on the same stratified split
    # in the plain order: the pixel order does not change it.
    plain = data.digit_sequences()
    split = data.stratified_split(plain.labels, config.fractions, seed=config.seed)
    x, y = plain.inputs[..., 0], plain.labels
    score = sd.logistic_accuracy(x[split.train], y[split.train], x[split.test], y[split.test], config.logistic_c)
    assert by[("digits", "permuted", "logistic")]["accuracy"]["mean"] == pytest.approx(score)
    assert by[("digits", "permuted", "chance")]["accuracy"]["mean"] == 0.1
    net = by[("digits", "permuted", "rnn")]
    assert len(net["accuracy"]["per_seed"]) == config.train.seeds and net["steps_run"] <= config.train.steps
    # The masked model gives the same logits whatever the padding holds.
    masked = by[("reviews", "masked", "rnn")]
    assert max(masked["max_logit_change_padded_2x"], masked["max_logit_change_garbage"]) <= 1e-5
    assert masked["accuracy_garbage"]["per_seed"] == masked["accuracy"]["per_seed"]
    f = results["findings"]
    assert f["reviews"]["masked_invariant"] is True and isinstance(f["digits permuted"]["beats_logistic"], bool)
    text = (out / "report.md").read_text()
    assert "| logistic regression (64 pixels) |" in text and "| RNN" not in text and "tanh RNN, masked" in text
    # The reviews' mean length is over every review, not the mean of the three splits' means.
    reviews = sd.ReviewData(config)
    every = np.concatenate([p.lengths for p in reviews.parts])
    assert f"tokens (mean {sd.fmt(every.mean())})" in text


def test_config_names_what_is_wrong(sd):
    tiny = sd.PRESETS["tiny"]
    known = r"\['lstm', 'gru', 'rnn', 'irnn'\]"
    with pytest.raises(ValueError, match=rf"cells must be distinct ids from {known}; got \['rnn', 'cnn'\]"):
        dataclasses.replace(tiny, cells=("rnn", "cnn"))
    with pytest.raises(ValueError, match=r"review_lengths must be \(min, max\) ints with 2 <= min <= max; got \(5, 3"):
        dataclasses.replace(tiny, review_lengths=(5, 3))
    with pytest.raises(ValueError, match=r"reviews must be three ints >= 2 .*got \(10, 10\)"):
        dataclasses.replace(tiny, reviews=(10, 10))
    assert sentiment.VOCAB_SIZE == 30


def _entry(task, variant, model, test, validation=None, **extra):
    kind = "network" if model in ("lstm", "gru") else "baseline"
    e = {"task": task, "variant": variant, "model": model, "kind": kind,
         "accuracy": {"mean": test, "std": 0.0, "min": test, "per_seed": [test]}, **extra}  # fmt: skip
    return e if validation is None else {**e, "validation_accuracy": [validation]}


def test_findings_choose_models_on_validation_and_report_their_test_accuracy(sd):
    same = {"max_logit_change_padded_2x": 0.0, "max_logit_change_garbage": 0.0}
    for k in ("accuracy_padded_2x", "accuracy_garbage"):
        same[k] = {"mean": 0.5, "per_seed": [0.5]}
    runs = [_entry("digits", "plain", "logistic", 0.92), _entry("digits", "plain", "lstm", 0.95, 0.90),
            _entry("digits", "plain", "gru", 0.91, 0.96),
            _entry("reviews", "-", "bow", 0.70, 0.80), _entry("reviews", "-", "bigrams", 0.90, 0.75),
            _entry("reviews", "masked", "lstm", 0.99, 0.80, **same),
            _entry("reviews", "masked", "gru", 0.85, 0.95, **same)]  # fmt: skip
    cfg = {"orders": ["plain"], "cells": ["lstm", "gru"], "review_cells": ["lstm", "gru"], "variants": ["masked"]}
    f = sd.findings({"config": cfg, "runs": runs})
    g = f["digits plain"]
    assert (g["best_model"], g["best_accuracy"], g["beats_logistic"]) == ("GRU", 0.91, False)  # not the LSTM
    r = f["reviews"]
    assert (r["best_model"], r["best_accuracy"]) == ("GRU, masked", 0.85)
    # The bar is the strongest baseline on the test reviews, whatever its validation accuracy.
    assert (r["best_baseline"], r["best_baseline_accuracy"]) == ("bag of bigrams (logistic)", 0.90)


def test_the_validation_accuracy_is_the_kept_parameters_whatever_the_monitor(sd):
    history = {"eval_step": np.array([0, 10, 20]), "eval/accuracy": np.array([[0.1, 0.2], [0.5, 0.6], [0.7, 0.4]])}
    np.testing.assert_array_equal(sd.best_validation_accuracy(history, np.array([10, 0])), [0.5, 0.2])
