r"""Sequence classification: handwritten digits read pixel by pixel (plain and permuted), and masking of padding.

Run (from the repository root):

    .venv/bin/python experiments/seq_digits.py --preset quick            # about 1.5 minutes on an idle 2-core CPU
    .venv/bin/python experiments/seq_digits.py --preset full --out runs/seq_digits-full

Part 1, digits. The 1797 8x8 digit images that ship with scikit-learn, read one pixel per step
(64 steps, one input in [0, 1]; :mod:`rnnlab.data.digits`), in row-major order ("plain") or in one
fixed random order of the 64 pixels ("permuted", the small-scale analogue of permuted pixel MNIST:
neighbouring pixels land far apart in time). A stratified train / validation / test split, the same
for both orders. For every order and cell (LSTM, GRU, tanh RNN and IRNN: relu, identity recurrent
matrix, zero bias; Le, Jaitly & Hinton 2015) ``seeds`` many-to-one classifiers read the last step's
output into 10 logits (:mod:`rnnlab.classification`), trained with Adam on the softmax
cross-entropy, each keeping its parameters at its best validation accuracy. Baselines on the same
test images: chance (1/10), the majority class of the training split, and a non-recurrent model, an
L2-regularized logistic regression on the 64 pixels (scikit-learn), whose accuracy does not depend
on the pixel order (it sees all pixels at once and a permutation only permutes its weights).

Part 2, masking. Generated "reviews" (:mod:`rnnlab.data.sentiment`): token sequences of widely
varying length, padded after their end with a pad id, labelled by the sign of their sentiment words
with ``not`` flipping the word after it. Three ways to read a padded batch, per cell:

* masked: :func:`rnnlab.unroll` gets ``lengths``, so the padding never touches the carry, and the
  classifier reads each review's own last step;
* unmasked, padding after: the model reads the whole padded array and the classifier its last step,
  so it must carry its answer through the padding;
* unmasked, padding before (pre-padding): the same model on reviews moved to the end of the array.

Each is scored on the test reviews as trained, padded to twice the width, and with random word ids
(garbage) in place of the padding; a masked model must give the same logits in all three.
Baselines: chance, majority class, and logistic regressions on the bag of words (order-blind: it
cannot tell which word a ``not`` negates) and on the bag of bigrams (it can).

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json``, per-run arrays
under ``runs/``, ``learning_curves.png``, ``accuracy.png`` and ``report.md``. The same ``--seed``
gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

import rnnlab
from rnnlab import classification, cli, data, experiment, runs
from rnnlab.data import sentiment
from rnnlab.experiment import fmt
from rnnlab.train import OptimizerConfig

CELLS = {
    "lstm": ("LSTM", lambda h: rnnlab.cells.lstm(h)),
    "gru": ("GRU", lambda h: rnnlab.cells.gru(h)),
    "rnn": ("tanh RNN", lambda h: rnnlab.cells.elman(h)),
    "irnn": ("IRNN", lambda h: rnnlab.cells.irnn(h)),
}
ORDERS = ("plain", "permuted")
DIGIT_BASELINES = {"chance": "chance", "majority": "majority class", "logistic": "logistic regression (64 pixels)"}
# Variant id -> (label, classifier read, where the padding goes).
NEAR_CHANCE = 0.6  # a review model whose test accuracy is below this has not learned the task
VARIANTS = {
    "masked": ("masked", "last_valid", "after"),
    "end_after": ("unmasked, padding after", "end", "after"),
    "end_before": ("unmasked, padding before", "end", "before"),
}
REVIEW_BASELINES = {"chance": "chance", "majority": "majority class", "bow": "bag of words (logistic)",
                    "bigrams": "bag of bigrams (logistic)"}  # fmt: skip
IRNN_NOTE = (
    "The IRNN shares the other cells' optimizer. Preliminary runs on the plain order (3 seeds, 32 units, not part "
    "of this script) reached validation accuracies of 0.67-0.83 with Adam at 3e-3 after 5000 steps, 0.54-0.63 at "
    "3e-4 and 0.56-0.69 at 1e-2 after 5000 steps, 0.61-0.65 at 1e-3 after 2000 steps; with input weights drawn from "
    "N(0, 0.001^2) instead of Glorot-uniform they stayed near chance (0.10-0.34) at 1e-3 to 1e-2."
)


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of the experiment.

    Attributes:
        name: the run folder's name under ``runs/``.
        orders: pixel orders from :data:`ORDERS`.
        permutation_seed: the seed of the permuted order's pixel permutation.
        fractions: train / validation / test shares of the digits, stratified by class.
        cells: ids from :data:`CELLS` trained on the digits.
        review_cells: ids from :data:`CELLS` trained on the reviews.
        variants: ids from :data:`VARIANTS`.
        reviews: how many train, validation and test reviews.
        review_lengths: ``(min, max)`` review length; the padded width is ``max``.
        hidden_size: units of every cell.
        logistic_c: inverse L2 strength of the logistic-regression baselines (scikit-learn's ``C``).
        seed: the experiment seed (digit split, reviews, models).
        train: how every network is trained.
    """

    name: str
    orders: tuple[str, ...]
    permutation_seed: int
    fractions: tuple[float, float, float]
    cells: tuple[str, ...]
    review_cells: tuple[str, ...]
    variants: tuple[str, ...]
    reviews: tuple[int, int, int]
    review_lengths: tuple[int, int]
    hidden_size: int
    logistic_c: float
    seed: int
    train: classification.ClassifySettings

    def __post_init__(self):
        groups = (("orders", self.orders, ORDERS), ("cells", self.cells, CELLS),
                  ("review_cells", self.review_cells, CELLS), ("variants", self.variants, VARIANTS))  # fmt: skip
        for name, group, known in groups:
            bad = sorted(set(group) - set(known))
            if bad or len(set(group)) != len(group):
                raise ValueError(f"Config: {name} must be distinct ids from {list(known)}; got {list(group)}")
        if not (self.orders and self.cells) and not (self.review_cells and self.variants):
            raise ValueError("Config: nothing to train; give orders and cells, or review_cells and variants")
        if len(self.reviews) != 3 or any(not isinstance(n, int) or n < 2 for n in self.reviews):
            raise ValueError(f"Config: reviews must be three ints >= 2 (train, validation, test); got {self.reviews!r}")
        lo, hi = self.review_lengths
        if not (isinstance(lo, int) and isinstance(hi, int) and 2 <= lo <= hi):
            raise ValueError(f"Config: review_lengths must be (min, max) ints with 2 <= min <= max; got "
                             f"{self.review_lengths!r}")  # fmt: skip
        rnnlab._checks.positive_int("Config", "hidden_size", self.hidden_size)
        if not isinstance(self.train, classification.ClassifySettings):
            raise TypeError(f"Config: train must be a ClassifySettings; got {type(self.train).__name__}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _settings(seeds, steps, every, patience, lr=3e-3):
    return classification.ClassifySettings(
        seeds=seeds, batch_size=32, steps=steps, eval_every=every, patience=patience, monitor="error",
        optimizer=OptimizerConfig("adam", learning_rate=lr, clip="global_norm", clip_value=1.0),
    )  # fmt: skip


PRESETS = {
    # About 2 minutes on an idle 2-core CPU.
    "quick": Config(
        name="seq_digits-quick",
        orders=ORDERS,
        permutation_seed=0,
        fractions=(0.6, 0.2, 0.2),
        cells=tuple(CELLS),
        review_cells=("lstm",),
        variants=tuple(VARIANTS),
        reviews=(1500, 500, 1000),
        review_lengths=(4, 40),
        hidden_size=32,
        logistic_c=1.0,
        seed=0,
        train=_settings(3, 1000, 100, 5),
    ),
    # Two cells on the reviews; 10 minutes on an idle 2-core CPU.
    "full": Config(
        name="seq_digits-full",
        orders=ORDERS,
        permutation_seed=0,
        fractions=(0.6, 0.2, 0.2),
        cells=tuple(CELLS),
        review_cells=("lstm", "gru"),
        variants=tuple(VARIANTS),
        reviews=(3000, 1000, 2000),
        review_lengths=(4, 64),
        hidden_size=32,
        logistic_c=1.0,
        seed=0,
        train=_settings(5, 5000, 100, 10),
    ),
    # For the test suite: seconds.
    "tiny": Config(
        name="seq_digits-tiny",
        orders=("permuted",),
        permutation_seed=0,
        fractions=(0.6, 0.2, 0.2),
        cells=("rnn",),
        review_cells=("rnn",),
        variants=("masked",),
        reviews=(60, 30, 40),
        review_lengths=(3, 10),
        hidden_size=4,
        logistic_c=1.0,
        seed=0,
        train=_settings(2, 10, 10, 1),
    ),
}


class DigitData:
    """The digits in one pixel order, split (the split does not depend on the order)."""

    def __init__(self, config: Config, order: str):
        d = data.digit_sequences(permutation_seed=config.permutation_seed if order == "permuted" else None)
        self.split = data.stratified_split(d.labels, config.fractions, seed=config.seed)
        self.x = [d.inputs[i] for i in self.split]
        self.y = [d.labels[i] for i in self.split]
        self.batches = [classification.labelled_batch(x, y) for x, y in zip(self.x, self.y)]


class ReviewData:
    """Train / validation / test reviews, padded after their ends to the longest length."""

    def __init__(self, config: Config):
        lo, hi = config.review_lengths
        all_ = data.reviews(sum(config.reviews), min_length=lo, max_length=hi, seed=config.seed)
        cuts = np.cumsum(config.reviews)[:-1]
        self.parts = [data.Reviews(*(np.split(a, cuts)[k] for a in all_)) for k in range(3)]
        self.width = hi
        train = {tuple(t[:n]) for t, n in zip(self.parts[0].tokens.tolist(), self.parts[0].lengths)}
        test = self.parts[2]
        self.test_seen_in_train = int(sum(tuple(t[:n]) in train for t, n in zip(test.tokens.tolist(), test.lengths)))

    def batch(self, r: data.Reviews, padding: str) -> classification.LabelledBatch:
        """One-hot inputs of ``r`` with the padding ``"after"`` each review or ``"before"`` it."""
        r = sentiment.align_right(r) if padding == "before" else r
        return classification.labelled_batch(sentiment.one_hot(r.tokens), r.labels, r.lengths)

    def conditions(self, padding: str, seed: int) -> dict[str, classification.LabelledBatch]:
        """The test reviews as trained, padded to twice the width, and with garbage in place of the padding."""
        test = self.parts[2]
        return {
            "as_trained": self.batch(test, padding),
            "padded_2x": self.batch(sentiment.pad_to(test, 2 * self.width), padding),
            "garbage": self.batch(sentiment.fill_padding(test, seed=seed), padding),
        }


def logistic_accuracy(train_x, train_y, test_x, test_y, c: float) -> float:
    """Test accuracy of an L2-regularized multinomial logistic regression fitted on the training features."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(np.asarray(train_x, np.float64), train_y)
    return float(np.mean(model.predict(np.asarray(test_x, np.float64)) == test_y))


def _accuracy(values) -> dict:
    values = np.asarray(values, np.float64).reshape(-1)
    return {**runs.seed_stats(values), "per_seed": values}


def _baseline_entry(task, variant, model, accuracy):
    return {"task": task, "variant": variant, "model": model, "kind": "baseline", "seeds": 1,
            "accuracy": _accuracy([accuracy])}  # fmt: skip


def best_validation_accuracy(history: dict, best_step) -> np.ndarray:
    """Each model's validation accuracy at its ``best_step`` (the evaluation whose parameters it kept), whatever
    the monitor that chose it, from a :class:`~rnnlab.fit.FitResult` history."""
    rows = np.searchsorted(np.asarray(history["eval_step"]), np.asarray(best_step))
    acc = np.asarray(history["eval/accuracy"])
    return acc[rows, np.arange(acc.shape[1])]


def run_name(task: str, variant: str, model: str) -> str:
    return f"{task}_{variant}_{model}"


def run_experiment(config: Config, out: pathlib.Path, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs every (task, order or variant, baseline or cell) into ``out`` (:func:`rnnlab.experiment.run_grid`)."""
    cache = {}

    def digit_data(order):
        if order not in cache:
            cache[order] = DigitData(config, order)
        return cache[order]

    def review_data():
        if "reviews" not in cache:
            cache["reviews"] = ReviewData(config)
        return cache["reviews"]

    def train(cell_id, batches, read, label):
        model, result = classification.train_classifier(
            CELLS[cell_id][1](config.hidden_size), batches[0], batches[1], config.train, classes=int(
                max(np.max(batches[0].labels), np.max(batches[1].labels))) + 1, read=read, seed=config.seed,
            progress=progress, label=label,
        )  # fmt: skip
        arrays = {"eval_step": result.history["eval_step"], "eval_accuracy": result.history["eval/accuracy"],
                  "eval_cross_entropy": result.history["eval/cross_entropy"]}  # fmt: skip
        extra = {"kind": "network", "seeds": config.train.seeds, "steps_run": result.steps,
                 "best_step": result.best_step,
                 "validation_accuracy": best_validation_accuracy(result.history, result.best_step),
                 "diverged_seeds": int(np.sum(result.diverged_step >= 0))}  # fmt: skip
        return model, result, arrays, extra

    def run_digits(order, model_id, k, n):
        d = digit_data(order)
        if model_id in DIGIT_BASELINES:
            test_y = d.y[2]
            if model_id == "chance":
                acc = 1.0 / data.digits.CLASSES
            elif model_id == "majority":
                acc = float(np.mean(test_y == np.bincount(d.y[0]).argmax()))
            else:
                acc = logistic_accuracy(d.x[0][..., 0], d.y[0], d.x[2][..., 0], test_y, config.logistic_c)
            return _baseline_entry("digits", order, model_id, acc), {}
        label = f"[{k + 1}/{n}] digits {order} {CELLS[model_id][0]}"
        model, result, arrays, extra = train(model_id, d.batches, "end", label)
        test = classification.evaluate_seeds(model, result.params, d.batches[2])
        entry = {"task": "digits", "variant": order, "model": model_id, **extra,
                 "accuracy": _accuracy(test["accuracy"]), "test_cross_entropy": test["cross_entropy"]}  # fmt: skip
        return entry, arrays

    def run_reviews(variant, model_id, k, n):
        r = review_data()
        train_r, test_r = r.parts[0], r.parts[2]
        if model_id in REVIEW_BASELINES:
            if model_id == "chance":
                acc = 0.5
            elif model_id == "majority":
                acc = float(np.mean(test_r.labels == np.bincount(train_r.labels).argmax()))
            else:
                bigrams = model_id == "bigrams"
                acc = logistic_accuracy(sentiment.bag_of_words(train_r, bigrams=bigrams), train_r.labels,
                                        sentiment.bag_of_words(test_r, bigrams=bigrams), test_r.labels,
                                        config.logistic_c)  # fmt: skip
            return _baseline_entry("reviews", variant, model_id, acc), {}
        _, read, padding = VARIANTS[variant]
        batches = [r.batch(p, padding) for p in r.parts]
        label = f"[{k + 1}/{n}] reviews {CELLS[model_id][0]} {VARIANTS[variant][0]}"
        model, result, arrays, extra = train(model_id, batches, read, label)
        conditions = r.conditions(padding, seed=config.seed + 1)
        logits = {c: classification.predict_seeds(model, result.params, b) for c, b in conditions.items()}
        labels = np.asarray(conditions["as_trained"].labels)
        entry = {"task": "reviews", "variant": variant, "model": model_id, **extra,
                 "accuracy": _accuracy(np.mean(np.argmax(logits["as_trained"], -1) == labels, axis=1))}  # fmt: skip
        for c in ("padded_2x", "garbage"):
            entry[f"accuracy_{c}"] = _accuracy(np.mean(np.argmax(logits[c], -1) == labels, axis=1))
            entry[f"max_logit_change_{c}"] = float(np.max(np.abs(logits[c] - logits["as_trained"])))
        return entry, arrays

    def run_one(point, k, n):
        task, variant, model_id = point
        return (run_digits if task == "digits" else run_reviews)(variant, model_id, k, n)

    grid = [("digits", o, m) for o in config.orders for m in [*DIGIT_BASELINES, *config.cells]] if config.cells else []
    if config.review_cells and config.variants:
        grid += [("reviews", "-", b) for b in REVIEW_BASELINES]
        grid += [("reviews", v, c) for c in config.review_cells for v in config.variants]
    header = {}
    if config.review_cells and config.variants:
        r = review_data()
        header["reviews_data"] = {
            "test_seen_in_train": r.test_seen_in_train,
            "positive_share": [float(np.mean(p.labels)) for p in r.parts],
            "mean_length": [float(np.mean(p.lengths)) for p in r.parts],
            "example": [sentiment.decode(r.parts[2].tokens[i], r.parts[2].lengths[i]) + f" -> {r.parts[2].labels[i]}"
                        for i in np.argsort(r.parts[2].lengths[:50], kind="stable")[:3]],
        }  # fmt: skip
    return experiment.run_grid(
        config.to_dict(), out, experiment="seq_digits", grid=grid, name_of=lambda p: run_name(*p),
        entry_name=lambda e: run_name(e["task"], e["variant"], e["model"]), run_one=run_one, findings=findings,
        make_plots=make_plots, report=report, header=header, resume=resume,
    )  # fmt: skip


def _label(e) -> str:
    if e["kind"] == "baseline":
        return (DIGIT_BASELINES if e["task"] == "digits" else REVIEW_BASELINES)[e["model"]]
    if e["task"] == "digits":
        return CELLS[e["model"]][0]
    return f"{CELLS[e['model']][0]}, {VARIANTS[e['variant']][0]}"


def _mean(e, key="accuracy"):
    return e[key]["mean"] if e.get(key) and e[key]["mean"] is not None else -np.inf


def _validation(e) -> float:
    """An entry's validation accuracy (mean over seeds); -inf where it has none."""
    v = np.mean(e.get("validation_accuracy") or -np.inf)
    return float(v) if np.isfinite(v) else -np.inf


def findings(results: dict) -> dict:
    """Digits: the best cell per order against logistic regression, and each cell's loss from permuting.
    Reviews: masked against unmasked accuracy per cell, padding invariance, the best baseline.

    The best network is the one with the highest validation accuracy, and its test accuracy is what is reported;
    it is compared with the strongest baseline on the test set (a bar no weaker than one chosen on validation)."""
    cfg = results["config"]
    es = results["runs"]
    out = {}
    for order in cfg["orders"] if cfg["cells"] else ():
        mine = [e for e in es if e["task"] == "digits" and e["variant"] == order]
        nets = [e for e in mine if e["kind"] == "network"]
        best = max(nets, key=_validation)
        logistic = next(e for e in mine if e["model"] == "logistic")
        out[f"digits {order}"] = {
            "best_model": _label(best),
            "best_accuracy": _mean(best),
            "best_accuracy_std": best["accuracy"]["std"],
            "logistic_accuracy": _mean(logistic),
            "beats_logistic": bool(_mean(best) > _mean(logistic)),
            "beats_logistic_every_seed": bool(best["accuracy"]["min"] > _mean(logistic)),
            "ranking": [_label(e) for e in sorted(nets, key=_mean, reverse=True)],
        }
    if set(ORDERS) <= set(cfg["orders"]):
        drop = {}
        for c in cfg["cells"]:
            plain, perm = (next(e for e in es if e["task"] == "digits" and e["variant"] == o and e["model"] == c)
                           for o in ORDERS)  # fmt: skip
            drop[CELLS[c][0]] = _mean(plain) - _mean(perm)
        out["digits permutation cost"] = drop
    if cfg["review_cells"] and cfg["variants"]:
        rev = [e for e in es if e["task"] == "reviews"]
        base = max((e for e in rev if e["kind"] == "baseline"), key=_mean)
        per_cell = {}
        for c in cfg["review_cells"]:
            cell_runs = {e["variant"]: e for e in rev if e["model"] == c and e["kind"] == "network"}
            per_cell[CELLS[c][0]] = {
                VARIANTS[v][0]: {
                    "accuracy": _mean(e),
                    "accuracy_padded_2x": _mean(e, "accuracy_padded_2x"),
                    "accuracy_garbage": _mean(e, "accuracy_garbage"),
                    "max_logit_change": max(e["max_logit_change_padded_2x"], e["max_logit_change_garbage"]),
                }
                for v, e in cell_runs.items()
            }
        masked = [e for e in rev if e["variant"] == "masked"]
        nets = [e for e in rev if e["kind"] == "network"]
        best = max(nets, key=_validation)
        out["reviews"] = {
            "best_baseline": _label(base),
            "best_baseline_accuracy": _mean(base),
            "best_model": _label(best),
            "best_accuracy": _mean(best),
            "masked_invariant": None if not masked else bool(all(
                max(e["max_logit_change_padded_2x"], e["max_logit_change_garbage"]) <= 1e-5 for e in masked)),
            "per_cell": per_cell,
            "seeds_near_chance": {_label(e): [int(np.sum(np.asarray(e["accuracy"]["per_seed"]) < NEAR_CHANCE)),
                                              len(e["accuracy"]["per_seed"])] for e in nets},
        }  # fmt: skip
    return out


def _load(out, e) -> dict:
    with np.load(pathlib.Path(out) / "runs" / f"{run_name(e['task'], e['variant'], e['model'])}.npz",
                 allow_pickle=False) as z:  # fmt: skip
        return {k: z[k] for k in z.files}


def make_plots(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """``learning_curves.png`` (validation accuracy by step) and ``accuracy.png`` (test accuracy per model)."""
    from rnnlab import plots

    plt = plots.pyplot()
    cfg = results["config"]
    es = results["runs"]
    out = pathlib.Path(out)
    panels = [("digits", o) for o in cfg["orders"] if cfg["cells"]]
    if cfg["review_cells"] and cfg["variants"]:
        panels.append(("reviews", None))
    written = []

    def reference_lines(ax, task, variant):
        base = [e for e in es if e["task"] == task and e["kind"] == "baseline" and e["model"] != "majority"
                and (task == "reviews" or e["variant"] == variant)]  # fmt: skip
        for e, style in zip(sorted(base, key=_mean), ("k:", "k--", "k-.")):
            ax.axhline(_mean(e), color=style[0], ls=style[1:], lw=1, label=_label(e))

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False, layout="constrained")
    for ax, (task, variant) in zip(axes[0], panels):
        nets = [e for e in es if e["task"] == task and e["kind"] == "network" and (variant is None or
                                                                                  e["variant"] == variant)]  # fmt: skip
        loaded = {_label(e): _load(out, e) for e in nets}
        steps = max((z["eval_step"] for z in loaded.values()), key=len)
        title = f"digits, {variant} pixel order" if task == "digits" else "reviews (masking)"
        plots.learning_curves(ax, steps, {k: z["eval_accuracy"] for k, z in loaded.items()}, log=False,
                              ylabel="validation accuracy (median, min-max over seeds)", title=title)  # fmt: skip
        reference_lines(ax, task, variant)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Validation accuracy while training ({cfg['train']['seeds']} seeds per model, "
                 f"{cfg['hidden_size']} units); black: baselines on the test split")  # fmt: skip
    written.append(runs.save_figure(fig, out / "learning_curves.png"))

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False, layout="constrained")
    for ax, (task, variant) in zip(axes[0], panels):
        mine = [e for e in es if e["task"] == task and (variant is None or e["variant"] in (variant, "-"))]
        mine = sorted((e for e in mine if e["kind"] == "network" or task == "reviews" or e["variant"] == variant),
                      key=lambda e: (e["kind"] == "network", _mean(e)))  # fmt: skip
        x = np.arange(len(mine))
        colors = ["0.6" if e["kind"] == "baseline" else "C0" for e in mine]
        ax.bar(x, [_mean(e) for e in mine], color=colors, alpha=0.6, width=0.7)
        for i, e in enumerate(mine):
            per = np.asarray(e["accuracy"]["per_seed"], np.float64)
            ax.plot(np.full(per.size, i), per, "k.", ms=4)
            if task == "reviews" and e["kind"] == "network":
                first = i == len(mine) - 1  # one legend entry per marker
                ax.plot(i + 0.2, _mean(e, "accuracy_padded_2x"), "v", color="C3", ms=6,
                        label="mean, test padded to 2x width" if first else None)  # fmt: skip
                ax.plot(i + 0.2, _mean(e, "accuracy_garbage"), "x", color="C4", ms=6, mew=2,
                        label="mean, garbage in the padding" if first else None)  # fmt: skip
        ax.set_xticks(x)
        ax.set_xticklabels([_label(e) for e in mine], rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("test accuracy (bar: mean; dots: seeds)")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"digits, {variant} pixel order" if task == "digits" else "reviews (bars: test as trained)",
                     fontsize=9)  # fmt: skip
        ax.grid(True, axis="y", alpha=0.3)
        if task == "reviews":
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Test accuracy per model (grey: baselines)")
    written.append(runs.save_figure(fig, out / "accuracy.png"))
    return written


def _acc_cell(stats, digits=3) -> str:
    if not stats or stats["mean"] is None:
        return "n/a"
    return fmt(stats["mean"], digits) + ("" if len(stats["per_seed"]) < 2 else f" ± {fmt(stats['std'], 2)}")


def _seeds(stats) -> str:
    return ", ".join(f"{v:.3f}" for v in stats["per_seed"]) if stats and len(stats["per_seed"]) > 1 else ""


def report(results: dict) -> str:
    """``report.md``: test accuracy per model next to the baselines, and what masking did."""
    cfg = results["config"]
    tr = cfg["train"]
    es = results["runs"]
    f = results["findings"]
    lines = [
        "# Sequence classification: pixel-by-pixel digits and masked padding",
        "",
        f"Preset `{cfg['name']}`, seed {cfg['seed']}: {tr['seeds']} seeds per model, {cfg['hidden_size']} units, "
        f"one linear readout of the last step's output, softmax cross-entropy, Adam (learning rate "
        f"{tr['optimizer']['learning_rate']} for every cell, IRNN included; gradient norm clipped at "
        f"{tr['optimizer']['clip_value']}), batches of {tr['batch_size']} random training sequences, at most "
        f"{tr['steps']} steps, validation every {tr['eval_every']} steps, a model stops after {tr['patience']} "
        f"validation checks without a better validation {tr['monitor']} and keeps its best parameters. IRNN: relu, "
        "recurrent matrix initialized to the identity, zero bias, Glorot-uniform input weights "
        "(`rnnlab.cells.irnn`). Test accuracy as mean ± standard deviation over seeds.",
        "",
        experiment.machine_line(results),
        "",
    ]
    if cfg["cells"]:
        n_split = [round(1797 * x) for x in cfg["fractions"]]
        lines += [
            "## Digits, pixel by pixel (64 steps)",
            "",
            f"scikit-learn's 1797 8x8 digits, one pixel per step, split {tuple(cfg['fractions'])} stratified by "
            f"class (about {n_split[0]} / {n_split[1]} / {n_split[2]} images); the permuted order is one fixed "
            f"permutation of the 64 pixels (seed {cfg['permutation_seed']}). Logistic regression sees the 64 pixels "
            "at once; its accuracy does not depend on the order (a permutation of the pixels permutes its weights).",
            "",
            IRNN_NOTE if "irnn" in cfg["cells"] else "",
            "",
            f"| model | {' | '.join(f'{o}: test accuracy' for o in cfg['orders'])} | per seed | steps run | "
            "best step (median) |",
            "|---|" + "---|" * (len(cfg["orders"]) + 3),
        ]
        models = [*DIGIT_BASELINES, *cfg["cells"]]
        by = {(e["variant"], e["model"]): e for e in es if e["task"] == "digits"}
        for m in sorted(models, key=lambda m: -np.mean([_mean(by[(o, m)]) for o in cfg["orders"]])):
            row = [by[(o, m)] for o in cfg["orders"]]
            per = "; ".join(_seeds(e["accuracy"]) for e in row if _seeds(e["accuracy"]))
            steps = ", ".join(str(e["steps_run"]) for e in row if e["kind"] == "network")
            best = ", ".join(f"{np.median(e['best_step']):.0f}" for e in row if e["kind"] == "network")
            lines.append(f"| {_label(row[0])} | " + " | ".join(_acc_cell(e["accuracy"]) for e in row)
                         + f" | {per} | {steps} | {best} |")  # fmt: skip
        lines.append("")
        for o in cfg["orders"]:
            g = f[f"digits {o}"]
            verdict = "does not beat it"
            if g["beats_logistic"]:
                verdict = "beats it on every seed" if g["beats_logistic_every_seed"] else "beats it on average only"
            lines.append(f"- {o} order: best recurrent model on the validation images, {g['best_model']} (test "
                         f"{fmt(g['best_accuracy'])}), which {verdict}: logistic regression "
                         f"{fmt(g['logistic_accuracy'])}. Ranking on the test images: "
                         f"{', '.join(g['ranking'])}.")  # fmt: skip
        if "digits permutation cost" in f:
            cost = ", ".join(f"{k} {v:+.3f}" for k, v in f["digits permutation cost"].items())
            lines.append(f"- Accuracy lost by permuting the pixels (plain minus permuted, mean over seeds): {cost}.")
        diverged = [f"{_label(e)} {e['variant']} ({e['diverged_seeds']})" for e in es
                    if e["task"] == "digits" and e.get("diverged_seeds")]  # fmt: skip
        lines += [f"- Seeds with a non-finite loss: {', '.join(diverged) if diverged else 'none'}.", ""]
    if cfg["review_cells"] and cfg["variants"]:
        rd = results.get("reviews_data", {})
        rev = [e for e in es if e["task"] == "reviews"]
        lo, hi = cfg["review_lengths"]
        # The splits' means weighted by their sizes: the mean over every review.
        split_means = rd.get("mean_length")
        mean_length = np.average(split_means, weights=cfg["reviews"]) if split_means else np.nan
        lines += [
            "## Masking padded variable-length sequences (generated reviews)",
            "",
            f"{cfg['reviews'][0]} / {cfg['reviews'][1]} / {cfg['reviews'][2]} train / validation / test reviews "
            f"(`rnnlab.data.reviews`) of {lo} to {hi} tokens (mean {fmt(mean_length)}), "
            f"one-hot over {sentiment.VOCAB_SIZE} ids with the pad id as the zero vector, padded to {hi} steps; label: "
            "the sign of the sentiment words' polarities, a word's flipped when `not` stands just before it "
            f"(positive share {', '.join(fmt(x, 2) for x in rd.get('positive_share', []))}). "
            f"{rd.get('test_seen_in_train', 'n/a')} of the test reviews also occur in the training set. Examples: "
            + "; ".join(f"`{x}`" for x in rd.get("example", []))
            + ".",
            "",
            "Columns: test accuracy as trained; with the test reviews padded to twice the width; with random word "
            "ids (garbage) in place of the padding; the largest change of any logit between those and as trained.",
            "",
            "| model | accuracy | padded 2x | garbage padding | max logit change | per seed |",
            "|---|---|---|---|---|---|",
        ]
        for e in sorted(rev, key=lambda e: -_mean(e)):
            if e["kind"] == "baseline":
                lines.append(f"| {_label(e)} | {_acc_cell(e['accuracy'])} | | | | |")
                continue
            change = max(e["max_logit_change_padded_2x"], e["max_logit_change_garbage"])
            cols = [_acc_cell(e[k]) for k in ("accuracy", "accuracy_padded_2x", "accuracy_garbage")]
            lines.append(f"| {_label(e)} | {' | '.join(cols)} | {fmt(change, 2)} | {_seeds(e['accuracy'])} |")
        r = f["reviews"]
        lines += [
            "",
            f"- Best network on the validation reviews: {r['best_model']} (test {fmt(r['best_accuracy'])}); "
            f"strongest baseline on the test reviews: {r['best_baseline']} ({fmt(r['best_baseline_accuracy'])}).",
        ]
        if r["masked_invariant"] is not None:
            lines.append(
                "- Masked models gave the same logits (to 1e-5) with twice the padding and with garbage in it: "
                + ("yes, every seed." if r["masked_invariant"] else "NO: see the max logit change column.")
            )
        stuck = [f"{k} {a}/{n}" for k, (a, n) in r["seeds_near_chance"].items() if a]
        lines.append(f"- Seeds left near chance (test accuracy below {NEAR_CHANCE}): "
                     + (", ".join(stuck) if stuck else "none") + ".")  # fmt: skip
        for cell, by_variant in r["per_cell"].items():
            parts = [f"{v} {fmt(x['accuracy'])} (padded 2x {fmt(x['accuracy_padded_2x'])}, garbage "
                     f"{fmt(x['accuracy_garbage'])})" for v, x in by_variant.items()]  # fmt: skip
            lines.append(f"- {cell}: " + "; ".join(parts) + ".")
        lines.append("")
    lines += ["Figures: `learning_curves.png` (validation accuracy by step), `accuracy.png` (test accuracy per model).",
              ""]  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> dict:
    return cli.main(
        argv, description=__doc__.splitlines()[0], presets=PRESETS, run_experiment=run_experiment,
        findings=findings, make_plots=make_plots, report=report,
    )  # fmt: skip


if __name__ == "__main__":
    main()
