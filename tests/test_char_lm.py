"""The character-level language-model experiment: a tiny run on a generated corpus, and its corpus options."""

import argparse
import json

import experiment_module
import numpy as np
import pytest

from rnnlab.data import ngram, text


@pytest.fixture(scope="module")
def cl():
    return experiment_module.load("char_lm")


def test_tiny_run_scores_networks_next_to_ngrams(cl, tmp_path):
    out = tmp_path / "run"
    results = cl.main(["--preset", "tiny", "--out", str(out), "--no-progress"])
    config = cl.PRESETS["tiny"]
    assert (out / "learning_curves.png").exists() and (out / "report.md").exists()
    saved = json.loads((out / "results.json").read_text())
    names = [(e["model"], e["documents"]) for e in saved["runs"]]
    assert names == [(f"ngram{n}", "-") for n in config.ngram_orders] + list(config.models)
    # The n-gram entries are rnnlab.data.ngram's scores of the same split of the same text.
    corpus = text.generated_text(config.generated_documents, seed=config.seed)
    vocab = text.Vocabulary.from_text(corpus[: round(len(corpus) * config.fractions[0])])
    train, val, test = text.split_stream(text.token_stream(corpus, vocab), config.fractions)
    model, _ = ngram.tuned(ngram.NGram.fit(train.ids, order=3, vocab_size=vocab.size), val.ids)
    (tri,) = [e for e in saved["runs"] if e["model"] == "ngram3"]
    assert tri["test"]["bits_per_char"] == pytest.approx(float(np.mean(model.bits(test.ids))))
    assert tri["test"]["tokens"] == len(test.ids) - 1
    for e in saved["runs"][len(config.ngram_orders):]:
        assert e["test"]["tokens"] == len(test.ids) - 1 and e["diverged_step"] == -1
        assert e["validation"]["bits_per_char"] < np.log2(vocab.size)  # learned something in 60 steps
        greedy = e["samples"]["0.0"]
        assert greedy.startswith(config.prompt) and len(greedy) == len(config.prompt) + config.sample_length
    assert set(results["findings"]["models"]) == {"gru_separated"}
    assert "| 3-gram (add-k)" in (out / "report.md").read_text()
    assert "| model | validation bpc | test bpc |" in (out / "report.md").read_text()
    # With a byte vocabulary the means are per byte, and the report says so.
    as_bytes = cl.report({**results, "config": {**results["config"], "level": "byte"}})
    assert "| model | validation bits/byte | test bits/byte |" in as_bytes and " bpc" not in as_bytes
    assert "Scores on every byte" in as_bytes


def test_corpus_options(cl, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cl.main(["--preset", "tiny", "--corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x")])
    assert "--corpus: no file at" in capsys.readouterr().err
    corpus = tmp_path / "notes.txt"
    corpus.write_text("héllo wörld\n\n" * 50, encoding="utf-8")
    config = cl.PRESETS["tiny"].__class__(**{**cl.PRESETS["tiny"].__dict__, "corpus": str(corpus), "level": "byte"})
    prepared = cl.Prepared(config)
    assert prepared.vocab.size == 256 and len(prepared.splits["stream"][0].ids) == round(0.8 * len(corpus.read_bytes()))
    assert prepared.splits["separated"][0].starts.sum() > 1  # documents at every blank line


def _configure(cl, argv):
    from rnnlab import cli

    parser = argparse.ArgumentParser()
    cli.add_common_arguments(parser, cl.PRESETS)
    cl.add_arguments(parser)
    args = parser.parse_args(argv)
    return cl.configure(cli.apply_common_arguments(cl.PRESETS[args.preset], args, parser), args, parser)


def test_the_cosine_schedule_follows_the_run_steps(cl, tmp_path, capsys):
    from rnnlab.train import make_schedule

    config = _configure(cl, ["--preset", "quick", "--steps", "6000"])
    assert config.train.steps == config.train.optimizer.total_steps == 6000
    schedule = make_schedule(config.train.optimizer)
    assert float(schedule(3000)) == pytest.approx(config.train.optimizer.learning_rate / 2)  # half-way, not 0
    file = tmp_path / "run.toml"
    file.write_text("[train]\nsteps = 500\n")
    assert _configure(cl, ["--preset", "quick", "--config", str(file)]).train.optimizer.total_steps == 500
    file.write_text("[train]\nsteps = 500\n[train.optimizer]\ntotal_steps = 700\n")
    with pytest.raises(SystemExit):
        _configure(cl, ["--preset", "quick", "--config", str(file)])
    assert "total_steps = 700 differs from train.steps = 500" in capsys.readouterr().err
