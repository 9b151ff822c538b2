r"""Character-level language modelling: LSTM, GRU and tanh RNN against count-based n-gram models.

Run (from the repository root):

    .venv/bin/python experiments/char_lm.py --preset quick                        # Tiny Shakespeare, minutes
    .venv/bin/python experiments/char_lm.py --preset full --out runs/char_lm-full --resume
    .venv/bin/python experiments/char_lm.py --corpus notes.txt --separator $'\n\n'  # any UTF-8 text file

The corpus is any UTF-8 text file (``--corpus PATH``); by default the Tiny Shakespeare file
(:func:`rnnlab.data.datasets.tiny_shakespeare`), downloaded on first use and cached (offline, the
error says where to put a copy). The text is encoded as characters or bytes
(:mod:`rnnlab.data.text`) and cut in reading order into train / validation / test.

Every network reads one character per step and predicts the next (:mod:`rnnlab.language_model`):
stateful truncated BPTT over ``B`` parallel lanes of the training text, windows of ``L`` steps, the
carry passed from window to window; with ``documents = "separated"`` the carry is also reset at
every ``separator`` (a blank line: in Tiny Shakespeare, every speech). Each model keeps its
parameters at the best validation score. Scores: bits per character (bpc) and perplexity per
character on the validation and test text, and how much probability the model gives the letter
that follows a ``q`` ("after q comes u"). Baselines in the same table: add-k n-gram models of
orders 1-5 (:mod:`rnnlab.data.ngram`), ``k`` tuned on the validation text. Samples at a few
temperatures close the report.

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json``, per-run curves
under ``runs/``, ``learning_curves.png`` and ``report.md``. The same ``--seed`` gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import jax
import numpy as np

import rnnlab
from rnnlab import cli, experiment, language_model, runs
from rnnlab.data import datasets, ngram, text
from rnnlab.experiment import fmt
from rnnlab.train import OptimizerConfig

CELLS = {
    "lstm": ("LSTM", lambda h: rnnlab.cells.lstm(h)),
    "gru": ("GRU", lambda h: rnnlab.cells.gru(h)),
    "rnn": ("tanh RNN", lambda h: rnnlab.cells.elman(h)),
}
DOCUMENTS = ("stream", "separated")
CORPORA = ("tiny_shakespeare", "generated")  # or a path to a UTF-8 text file


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of the experiment.

    Attributes:
        name: the run folder's name under ``runs/``.
        corpus: ``"tiny_shakespeare"`` (downloaded once, cached), ``"generated"``
            (:func:`rnnlab.data.text.generated_text`, for tests) or the path of a UTF-8 text file.
        generated_documents: documents of the generated corpus.
        level: ``"char"`` or ``"byte"`` vocabulary.
        separator: the text that ends a document (for ``documents = "separated"``).
        fractions: train / validation / test shares, in reading order.
        models: ``(cell, documents)`` pairs: a cell of :data:`CELLS`; ``"stream"`` carries the state
            through the whole text, ``"separated"`` resets it at every separator.
        hidden_size: units of every cell.
        seeds: models trained per pair, one after another.
        ngram_orders: orders of the n-gram baselines.
        prompt: the text samples start from.
        temperatures: sampling temperatures of the report's samples.
        sample_length: characters per sample.
        seed: the experiment seed.
        train: how each network is trained.
    """

    name: str
    corpus: str
    generated_documents: int
    level: str
    separator: str
    fractions: tuple[float, float, float]
    models: tuple[tuple[str, str], ...]
    hidden_size: int
    seeds: int
    ngram_orders: tuple[int, ...]
    prompt: str
    temperatures: tuple[float, ...]
    sample_length: int
    seed: int
    train: language_model.LMSettings

    def __post_init__(self):
        where = "Config"
        rnnlab._checks.choice(where, "level", self.level, text.LEVELS)
        for cell, docs in self.models:
            rnnlab._checks.choice(where, "models cell", cell, CELLS)
            rnnlab._checks.choice(where, "models documents", docs, DOCUMENTS)
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError(f"{where}: models must be distinct (cell, documents) pairs; got {self.models!r}")
        for name in ("hidden_size", "seeds", "sample_length", "generated_documents"):
            rnnlab._checks.positive_int(where, name, getattr(self, name))
        if not self.separator:
            raise ValueError(f"{where}: separator must be a non-empty string; got {self.separator!r}")
        if any(not isinstance(t, (int, float)) or t < 0 for t in self.temperatures):
            raise ValueError(f"{where}: temperatures must be numbers >= 0; got {self.temperatures!r}")
        if not isinstance(self.train, language_model.LMSettings):
            raise TypeError(f"{where}: train must be LMSettings; got {type(self.train).__name__}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _settings(window, batch_size, steps, every, lr=3e-3, schedule="cosine"):
    return language_model.LMSettings(
        window=window, batch_size=batch_size, steps=steps, eval_every=every,
        optimizer=OptimizerConfig("adam", learning_rate=lr, clip="global_norm", clip_value=5.0, schedule=schedule,
                                  **({} if schedule == "constant" else {"total_steps": steps})),
    )  # fmt: skip


_SHAKESPEARE = dict(corpus="tiny_shakespeare", generated_documents=1, level="char", separator="\n\n",
                    fractions=(0.9, 0.05, 0.05), ngram_orders=(1, 2, 3, 4, 5), prompt="ROMEO:\n",
                    temperatures=(0.5, 1.0), sample_length=300, seed=0)  # fmt: skip

PRESETS = {
    # Tiny Shakespeare, small networks: about a minute on a 2-core CPU.
    "quick": Config(
        name="char_lm-quick",
        models=(("lstm", "stream"), ("rnn", "stream")),
        hidden_size=128,
        seeds=1,
        train=_settings(64, 32, 2000, 200),
        **_SHAKESPEARE,
    ),
    # Three cells and the LSTM with its state reset at every speech; about 8 epochs each (4000 steps x 32 lanes
    # x 64 characters over 1.0M training characters), one seed (about 25 minutes on a 2-core CPU).
    "full": Config(
        name="char_lm-full",
        models=(("lstm", "stream"), ("gru", "stream"), ("rnn", "stream"), ("lstm", "separated")),
        hidden_size=256,
        seeds=1,
        train=_settings(64, 32, 4000, 250),
        **_SHAKESPEARE,
    ),
    # For the test suite: a generated corpus, seconds.
    "tiny": Config(
        name="char_lm-tiny",
        corpus="generated",
        generated_documents=40,
        level="char",
        separator="\n\n",
        fractions=(0.8, 0.1, 0.1),
        models=(("gru", "separated"),),
        hidden_size=16,
        seeds=1,
        ngram_orders=(1, 3),
        prompt="the ",
        temperatures=(0.0, 1.0),
        sample_length=40,
        seed=0,
        train=_settings(16, 4, 60, 30, lr=1e-2, schedule="constant"),
    ),
}


def load_corpus(config: Config) -> tuple[str, str]:
    """``(text, description)`` of the config's corpus."""
    if config.corpus == "generated":
        return text.generated_text(config.generated_documents, seed=config.seed), "generated (rnnlab.data.text)"
    path = datasets.tiny_shakespeare() if config.corpus == "tiny_shakespeare" else pathlib.Path(config.corpus)
    return text.read_text(path), ("Tiny Shakespeare" if config.corpus == "tiny_shakespeare" else str(path))


class Prepared:
    """The corpus encoded and split, for both document settings."""

    def __init__(self, config: Config):
        self.text, self.description = load_corpus(config)
        n = len(self.text)
        cut = round(n * config.fractions[0])
        # The vocabulary is the training text's: characters seen only later map to the unknown id.
        self.vocab = text.vocabulary(config.level, self.text[:cut])
        self.splits = {
            docs: text.split_stream(
                text.token_stream(self.text, self.vocab, None if docs == "stream" else config.separator),
                config.fractions,
            )
            for docs in DOCUMENTS
        }  # fmt: skip
        # Positions of the validation text whose previous character is "q" (after q comes u).
        val = self.splits["stream"][1].ids
        q = self.vocab.encode("q")
        self.after_q = np.flatnonzero(val[:-1] == q[0]) if q.size == 1 and q[0] != 0 else np.array([], int)


def run_name(model: str, documents: str, seed: int | None = None) -> str:
    return f"{model}_{documents}" + ("" if seed is None else f"_s{seed}")


def _score(nats: np.ndarray) -> dict:
    mean = float(np.mean(nats))
    return {"bits_per_char": mean / math.log(2), "perplexity": math.exp(mean), "tokens": int(nats.size)}


def run_experiment(config: Config, out: pathlib.Path, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs the n-gram baselines and every (cell, documents, seed) into ``out`` (:func:`rnnlab.experiment.run_grid`)."""
    prep, models = [], {}

    def prepared() -> Prepared:
        if not prep:
            prep.append(Prepared(config))
        return prep[0]

    def run_one(point, k, n):
        kind, a, b = point
        p = prepared()
        train_s, val_s, test_s = p.splits["stream"]
        if kind == "ngram":
            model = ngram.NGram.fit(train_s.ids, order=a, vocab_size=p.vocab.size)
            model, _ = ngram.tuned(model, val_s.ids)
            val_bits, test_bits = model.bits(val_s.ids), model.bits(test_s.ids)
            entry = {"model": f"ngram{a}", "documents": "-", "seed": None, "k": model.k,
                     "validation": _score(val_bits * math.log(2)), "test": _score(test_bits * math.log(2)),
                     "after_q": _after_q(p, val_bits * math.log(2))}  # fmt: skip
            return entry, {}
        (cell_id, docs), seed = a, b
        train_d, val_d, test_d = p.splits[docs]
        if cell_id not in models:  # one model per cell: its compiled training and scoring are reused
            models[cell_id] = language_model.char_model(CELLS[cell_id][1](config.hidden_size), p.vocab.size)
        model = models[cell_id]
        key = jax.random.fold_in(jax.random.key(config.seed), seed)
        label = f"[{k + 1}/{n}] {CELLS[cell_id][0]} {docs} seed {seed}"
        result = language_model.train_language_model(model, train_d, val_d, config.train, key,
                                                     progress=label if progress else False)  # fmt: skip
        s = config.train
        scored = {
            split: language_model.token_nats(model, result.params, stream, batch_size=s.eval_batch_size,
                                             window=s.eval_window)  # fmt: skip
            for split, stream in (("validation", val_d), ("test", test_d))
        }
        samples = {
            str(t): language_model.sample(model, result.params, p.vocab, jax.random.fold_in(key, 1),
                                          prompt=config.prompt, length=config.sample_length,
                                          temperature=float(t))  # fmt: skip
            for t in config.temperatures
        }
        entry = {
            "model": cell_id, "documents": docs, "seed": seed,
            "validation": _score(scored["validation"]), "test": _score(scored["test"]),
            "after_q": _after_q(p, scored["validation"]) if docs == "stream" else None,
            "best_step": result.best_step, "steps_run": result.steps, "diverged_step": result.diverged_step,
            "train_seconds": result.seconds, "samples": samples,
        }  # fmt: skip
        return entry, dict(result.history)

    grid = [("ngram", order, None) for order in config.ngram_orders] + [
        ("net", pair, seed) for pair in config.models for seed in range(config.seeds)
    ]

    def name_of(point):
        kind, a, b = point
        return f"ngram{a}" if kind == "ngram" else run_name(a[0], a[1], b)

    def entry_name(e):
        return e["model"] if e["model"].startswith("ngram") else run_name(e["model"], e["documents"], e["seed"])

    return experiment.run_grid(
        config.to_dict(), out, experiment="char_lm", grid=grid, name_of=name_of, entry_name=entry_name,
        run_one=run_one, findings=findings, make_plots=make_plots, report=report, resume=resume,
    )  # fmt: skip


def _after_q(p: Prepared, val_nats: np.ndarray) -> float | None:
    """Mean probability given to the character after each ``q`` of the validation text.

    ``val_nats[i]`` is the score of token ``i + 1``, so position ``i`` of a ``q`` indexes its successor.
    """
    if p.after_q.size == 0:
        return None
    return float(np.mean(np.exp(-val_nats[p.after_q])))


def _label(model: str, documents: str) -> str:
    if model.startswith("ngram"):
        return f"{model[5:]}-gram (add-k)"
    return CELLS[model][0] + (", state reset at each separator" if documents == "separated" else "")


def _networks(results: dict) -> dict:
    """``{(model, documents): [entries over seeds]}`` in config order."""
    out = {}
    for e in results["runs"]:
        if not e["model"].startswith("ngram"):
            out.setdefault((e["model"], e["documents"]), []).append(e)
    return out


def findings(results: dict) -> dict:
    """The best n-gram, each network's mean scores, and whether every seed of it beat the best n-gram."""
    grams = [e for e in results["runs"] if e["model"].startswith("ngram")]
    best = min(grams, key=lambda e: e["validation"]["bits_per_char"]) if grams else None
    out = {"best_ngram": None if best is None else best["model"],
           "best_ngram_test_bpc": None if best is None else best["test"]["bits_per_char"], "models": {}}  # fmt: skip
    for (model, docs), es in _networks(results).items():
        test = np.array([e["test"]["bits_per_char"] for e in es])
        val = np.array([e["validation"]["bits_per_char"] for e in es])
        out["models"][run_name(model, docs)] = {
            "label": _label(model, docs),
            "test_bpc": runs.seed_stats(test),
            "validation_bpc": runs.seed_stats(val),
            "beats_best_ngram_every_seed": None if best is None else bool(np.all(test < best["test"]["bits_per_char"])),
            "diverged": sum(e["diverged_step"] >= 0 for e in es),
        }
    return out


def make_plots(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """``learning_curves.png``: validation and training bpc against steps, the best n-gram as a line."""
    from rnnlab import plots

    plt = plots.pyplot()
    out = pathlib.Path(out)
    nets = _networks(results)
    labels = [_label(m, d) for m, d in nets]
    palette = plots.colors(labels)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained", sharey=True)
    lows, highs = [], []
    for (model, docs), es in nets.items():
        label = _label(model, docs)
        for i, e in enumerate(es):
            with np.load(out / "runs" / f"{run_name(model, docs, e['seed'])}.npz", allow_pickle=False) as z:
                curve = dict(z)
            kw = dict(color=palette[label], lw=1.2, label=label if i == 0 else None)
            axes[0].plot(curve["eval_step"], curve["val_bpc"], marker=".", **kw)
            width = max(1, len(curve["train_bpc"]) // 100)
            smooth = np.convolve(curve["train_bpc"], np.ones(width) / width, mode="valid")
            axes[1].plot(curve["step"][width - 1:], smooth, **kw)
            lows.append(min(curve["val_bpc"].min(), smooth.min()))
            highs.append(curve["val_bpc"][1:].max() if len(curve["val_bpc"]) > 1 else curve["val_bpc"][0])
    f = results["findings"]
    if f["best_ngram"] is not None:
        (best,) = [e for e in results["runs"] if e["model"] == f["best_ngram"]]
        for ax in axes:
            ax.axhline(best["validation"]["bits_per_char"], color="0.4", ls="--", lw=1,
                       label=f"{_label(best['model'], '-')}, validation")  # fmt: skip
    axes[0].set_title("validation text (every evaluation; each seed a line; step 0 off the chart)", fontsize=9)
    axes[1].set_title("training windows (moving average)", fontsize=9)
    axes[0].set_ylabel(_units(results["config"]["level"])[1])
    for ax in axes:
        ax.set_xlabel("training step (one window of every lane)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    if lows:
        axes[0].set_ylim(max(0.0, min(lows) - 0.2), max(highs) + 0.2)  # the untrained step-0 scores stay off the chart
    return [runs.save_figure(fig, out / "learning_curves.png")]


def _units(level: str) -> tuple[str, str, str]:
    """``(short unit, long unit, token)`` of the scores: per character, or per byte of a byte vocabulary."""
    return ("bpc", "bits per character", "character") if level == "char" else ("bits/byte", "bits per byte", "byte")


def report(results: dict) -> str:
    """``report.md``: bits per character (per byte with a byte vocabulary) and perplexity of every model next to
    the n-gram baselines, then samples."""
    cfg = results["config"]
    unit, _, token = _units(cfg["level"])
    tr = cfg["train"]
    opt = tr["optimizer"]
    f = results["findings"]
    corpus = {"tiny_shakespeare": "Tiny Shakespeare (1,115,394 characters)", "generated": "a generated corpus"}
    lines = [
        "# Character-level language modelling",
        "",
        f"Preset `{cfg['name']}`, seed {cfg['seed']}, corpus {corpus.get(cfg['corpus'], cfg['corpus'])}, "
        f"{cfg['level']} vocabulary of the training text, split in reading order {tuple(cfg['fractions'])}. "
        f"Networks: {cfg['hidden_size']} units, one-hot input, softmax readout; stateful truncated BPTT over "
        f"{tr['batch_size']} lanes with windows of {tr['window']} steps, Adam (learning rate {opt['learning_rate']}"
        + (f", {opt['schedule']} schedule over {opt['total_steps']} steps" if opt["schedule"] != "constant" else "")
        + ", "
        f"gradient norm clipped at {opt['clip_value']}), {tr['steps']} steps at most, validation every "
        f"{tr['eval_every']} steps, each model's best validation parameters kept; {cfg['seeds']} seed(s) each. "
        f"Scores on every {token} of the validation and test text but the first"
        + (" (bits per UTF-8 byte, which is not bits per character where a character takes several bytes), "
           if token == "byte" else ", ")  # fmt: skip
        + ("read in one continuous pass (each character predicted from all the text before it). "
           if tr["eval_batch_size"] == 1 else
           f"the carry running through the text in {tr['eval_batch_size']} lanes (each lane starts from a fresh "
           "state). ")  # fmt: skip
        + "n-gram baselines: add-k smoothing, k tuned on the validation text; contexts do not reach before a split.",
        "",
        experiment.machine_line(results),
        "",
        f"| model | validation {unit} | test {unit} | test perplexity | p(next \\| q) on validation |",
        "|---|---|---|---|---|",
    ]
    nets = _networks(results)
    rows = []
    for e in results["runs"]:
        if e["model"].startswith("ngram"):
            rows.append((e["test"]["bits_per_char"], f"| {_label(e['model'], '-')}, k = {e['k']:g} | "
                         f"{e['validation']['bits_per_char']:.3f} | {e['test']['bits_per_char']:.3f} | "
                         f"{e['test']['perplexity']:.2f} | {fmt(e['after_q'])} |"))  # fmt: skip
    for (model, docs), es in nets.items():
        def stat(split, key, es=es):
            v = np.array([e[split][key] for e in es])
            return f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else "")

        q = [e["after_q"] for e in es if e["after_q"] is not None]
        rows.append((np.mean([e["test"]["bits_per_char"] for e in es]),
                     f"| **{_label(model, docs)}** | {stat('validation', 'bits_per_char')} | "
                     f"{stat('test', 'bits_per_char')} | {stat('test', 'perplexity')} | "
                     f"{fmt(float(np.mean(q))) if q else 'n/a'} |"))  # fmt: skip
    lines += [r for _, r in sorted(rows)]
    lines += ["", "Networks: mean ± standard deviation over seeds (one seed: its value).", ""]
    if f["best_ngram"] is not None:
        lines.append(f"Best n-gram on the validation text: {_label(f['best_ngram'], '-')}, test "
                     f"{f['best_ngram_test_bpc']:.3f} {unit}.")  # fmt: skip
        for m in f["models"].values():
            verdict = "beats it on every seed" if m["beats_best_ngram_every_seed"] else "does not beat it on every seed"
            lines.append(f"- {m['label']}: test {m['test_bpc']['mean']:.3f} {unit}, {verdict}"
                         + (f"; {m['diverged']} seed(s) diverged" if m["diverged"] else "") + ".")  # fmt: skip
        lines.append("")
    lines += ["Training: best validation step / steps run / seconds per run:", ""]
    for (model, docs), es in nets.items():
        parts = ", ".join(
            f"seed {e['seed']}: {e['best_step']} / {e['steps_run']} / {e['train_seconds']:.0f} s" for e in es
        )
        lines.append(f"- {_label(model, docs)}: {parts}")
    lines += ["", "Figure: `learning_curves.png`.", "", "## Samples", ""]
    lines.append(f"From the first seed of each network, prompt {cfg['prompt']!r}, {cfg['sample_length']} characters.")
    lines.append("")
    for (model, docs), es in nets.items():
        for t, sample in es[0]["samples"].items():
            lines += [f"{_label(model, docs)}, temperature {t}:", "", "```text", sample, "```", ""]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--corpus", help="a UTF-8 text file (default: the preset's; Tiny Shakespeare, downloaded once)")
    parser.add_argument("--separator", help="the text that ends a document, e.g. $'\\n\\n'")
    parser.add_argument("--level", choices=text.LEVELS, help="character or byte vocabulary")
    parser.add_argument("--window", type=int, help="truncated-BPTT window (steps)")


def configure(config: Config, args, parser) -> Config:
    """Applies the options of :func:`add_arguments`, and ties the learning-rate schedule to the run's steps.

    The presets' schedules span their ``train.steps``; a ``--steps`` (or ``train.steps`` in ``--config``)
    moves ``train.optimizer.total_steps`` with it, so the cosine still ends at the last step. A
    ``total_steps`` set to neither the preset's value nor the run's steps exits with an error.
    """
    changes = {k: getattr(args, k) for k in ("corpus", "separator", "level") if getattr(args, k) is not None}
    if args.corpus is not None and args.corpus not in CORPORA and not pathlib.Path(args.corpus).is_file():
        parser.error(f"--corpus: no file at {args.corpus}")
    train = config.train
    if args.window is not None:
        train = dataclasses.replace(train, window=args.window)
    opt = train.optimizer
    if opt.schedule != "constant":  # the constant schedule has no length (and refuses a total_steps)
        if opt.total_steps not in (PRESETS[args.preset].train.optimizer.total_steps, train.steps):
            parser.error(
                f"train.optimizer.total_steps = {opt.total_steps} differs from train.steps = {train.steps}: "
                "in char_lm the learning-rate schedule spans the run's steps; leave total_steps out"
            )
        try:
            opt = dataclasses.replace(opt, total_steps=train.steps)
        except ValueError as e:  # e.g. a warm-up no shorter than the run
            parser.error(f"train.steps = {train.steps}, the schedule's total_steps: {e}")
    changes["train"] = dataclasses.replace(train, optimizer=opt)
    return dataclasses.replace(config, **changes)


def main(argv=None) -> dict:
    return cli.main(
        argv, description=__doc__.splitlines()[0], presets=PRESETS, run_experiment=run_experiment,
        findings=findings, make_plots=make_plots, report=report, add_arguments=add_arguments, configure=configure,
    )  # fmt: skip


if __name__ == "__main__":
    main()
