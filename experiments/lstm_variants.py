r"""The LSTM search space: vanilla LSTM, Greff et al.'s eight variants, GRU, MGU and the 1997 LSTM side by side.

Run (from the repository root):

    .venv/bin/python experiments/lstm_variants.py --preset quick            # a few minutes on a 2-core CPU
    .venv/bin/python experiments/lstm_variants.py --preset full --out runs/lv-full

Greff, Srivastava, Koutník, Steunebrink & Schmidhuber (2017, "LSTM: A Search Space Odyssey") compare
the vanilla LSTM (input, forget and output gates, peepholes, tanh input and output activations)
with eight variants that each change one thing: NIG (no input gate, i = 1), NFG (no forget gate,
f = 1), NOG (no output gate, o = 1), NIAF (no input activation), NOAF (no output activation), NP (no
peepholes), CIFG (coupled input and forget gate, i = 1 - f) and FGR (full gate recurrence). Here
they are joined by the GRU in both published forms (reset before or after the recurrent matmul),
the MGU, and the 1997 LSTM (no forget gate, no peepholes).

For every (task, architecture), ``lr_trials`` peak learning rates are drawn log-uniformly from
``lr_range`` (the same draws for every architecture) and each is trained with ``seeds`` seeds, all
``seeds x lr_trials`` models in one program. An architecture's score on a task is its test metric
at its best learning rate (lowest median over seeds of the validation score of the parameters each
model kept, those of its lowest validation loss), with the spread over
seeds; each architecture is compared with the vanilla LSTM at their best rates by Welch's t-test
over seeds, as Greff et al. do over their best trials.

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json``, per-run arrays
under ``runs/``, PNG plots and ``report.md``. The same ``--seed`` gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

import rnnlab
from rnnlab import cli, experiment, protocols, runs, tasks
from rnnlab.experiment import fmt
from rnnlab.train import OptimizerConfig

# Architecture id -> (label, factory of hidden_size).
CELLS = {
    "vanilla": ("vanilla LSTM", lambda h: rnnlab.cells.lstm(h, variant="vanilla")),
    **{
        v: (v, lambda h, v=v: rnnlab.cells.lstm(h, variant=v))
        for v in ("NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR")
    },  # fmt: skip
    "original": ("LSTM 1997 (no forget gate)", lambda h: rnnlab.cells.lstm(h, variant="original")),
    "gru": ("GRU (reset after)", lambda h: rnnlab.cells.gru(h, reset_after=True)),
    "gru_cho": ("GRU (Cho 2014, reset before)", lambda h: rnnlab.cells.gru(h, reset_after=False)),
    "mgu": ("MGU", lambda h: rnnlab.cells.mgu(h)),
}

# The score each task is ranked by (lower is better) and how it is named in the report.
SCORES = {
    "regression": ("mse", "test MSE"),
    "classification": ("error_rate", "test error rate (sequences wrong)"),
}

PUBLISHED = (
    "Greff et al. 2017 (TIMIT, IAM Online, JSB Chorales; 200 random-search trials per variant and dataset): no "
    "variant improves significantly on the vanilla LSTM; removing the forget gate (NFG) or the output activation "
    "(NOAF) hurts most; coupling the input and forget gates (CIFG) and dropping the peepholes (NP) do not hurt "
    "significantly and simplify the cell; the learning rate is the most important hyperparameter."
)


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of the experiment.

    Attributes:
        name: the run folder's name under ``runs/``.
        lengths: ``{task name: (length,)}``: one length per task.
        cells: ids from :data:`CELLS`.
        hidden_size: units of every architecture.
        lr_trials: learning rates drawn per task (the same for every architecture).
        lr_range: ``(low, high)`` of the log-uniform draw.
        seed: the experiment seed (the learning-rate draws come from it too).
        train: how each model is trained and scored (its learning rate is replaced by the draws).
    """

    name: str
    lengths: dict[str, tuple[int, ...]]
    cells: tuple[str, ...]
    hidden_size: int
    lr_trials: int
    lr_range: tuple[float, float]
    seed: int
    train: protocols.TrainSettings

    def __post_init__(self):
        experiment.check_selection("cell", self.cells, CELLS)
        if "vanilla" not in self.cells:
            raise ValueError("Config: cells must include 'vanilla', the reference every variant is compared with")
        if not self.lengths:
            raise ValueError("Config: lengths must name at least one task")
        for task, lengths in self.lengths.items():
            t = tasks.get(task)
            if len(lengths) != 1 or not isinstance(lengths[0], int) or lengths[0] < t.min_length:
                raise ValueError(f"Config: lengths[{task!r}] must be one int >= {t.min_length}; got {lengths!r}")
        rnnlab._checks.positive_int("Config", "hidden_size", self.hidden_size)
        rnnlab._checks.positive_int("Config", "lr_trials", self.lr_trials)
        low, high = self.lr_range
        if not 0 < low <= high:
            raise ValueError(f"Config: lr_range must be (low, high) with 0 < low <= high; got {self.lr_range!r}")
        if not isinstance(self.seed, int):
            raise TypeError(f"Config: seed must be an int; got {self.seed!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def learning_rates(self, task: str) -> np.ndarray:
        """The ``lr_trials`` rates of ``task``: log-uniform in ``lr_range``, sorted, the same for every cell."""
        rng = np.random.default_rng([self.seed, *task.encode()])
        low, high = np.log(self.lr_range[0]), np.log(self.lr_range[1])
        return np.sort(np.exp(rng.uniform(low, high, self.lr_trials)))


def _settings(seeds, batch, steps, every, eval_size, test_size):
    return protocols.TrainSettings(
        seeds=seeds, batch_size=batch, steps=steps, eval_every=every, eval_size=eval_size, test_size=test_size,
        grad_size=min(16, eval_size), optimizer=OptimizerConfig("adam", learning_rate=1e-3, clip="global_norm",
                                                                clip_value=1.0),
    )  # fmt: skip


PRESETS = {
    # A few minutes on a 2-core CPU: the variants Greff et al. single out, on temporal order.
    "quick": Config(
        name="lstm_variants-quick",
        lengths={"temporal_order": (60,)},
        cells=("vanilla", "NFG", "NOAF", "NP", "CIFG", "gru"),
        hidden_size=16,
        lr_trials=2,
        lr_range=(3e-3, 3e-2),
        seed=0,
        train=_settings(5, 32, 600, 100, 256, 512),
    ),
    # Every architecture on two tasks of different kinds (classification at the published temporal-order
    # length, regression); about 25 minutes on a 2-core CPU.
    "full": Config(
        name="lstm_variants-full",
        lengths={"temporal_order": (100,), "adding": (50,)},
        cells=tuple(CELLS),
        hidden_size=16,
        lr_trials=3,
        lr_range=(2e-3, 3e-2),
        seed=0,
        train=_settings(5, 32, 1000, 100, 256, 512),
    ),
    # For the test suite: seconds.
    "tiny": Config(
        name="lstm_variants-tiny",
        lengths={"temporal_order": (20,)},
        cells=("vanilla", "CIFG"),
        hidden_size=4,
        lr_trials=2,
        lr_range=(1e-3, 1e-2),
        seed=0,
        train=_settings(2, 8, 20, 10, 16, 32),
    ),
}


def kept_validation(history: dict, monitor: str, score: str) -> np.ndarray:
    """Per model, the validation ``score`` of the parameters it kept (inf where not finite).

    :func:`rnnlab.fit.fit` keeps a model's parameters at the first evaluation with its lowest finite
    ``monitor`` (a later one only if strictly lower; the one at step 0 if none is finite), so the
    score is read at that evaluation of the ``(E, N)`` history, not at the best of ``score`` itself.

    Example:
        >>> h = {"eval/cross_entropy": np.array([[0.9], [0.5], [0.6]]),
        ...      "eval/error_rate": np.array([[0.5], [0.3], [0.1]])}
        >>> kept_validation(h, "cross_entropy", "error_rate")
        array([0.3])
    """
    m = np.asarray(history[f"eval/{monitor}"], np.float64)
    rows = np.argmin(np.where(np.isfinite(m), m, np.inf), axis=0)
    v = np.asarray(history[f"eval/{score}"], np.float64)[rows, np.arange(m.shape[1])]
    return np.where(np.isfinite(v), v, np.inf)


def best_rate(val: np.ndarray) -> int:
    """The learning rate (column of ``val (seeds, K)``) with the lowest median validation score.

    Example:
        >>> best_rate(np.array([[0.5, 0.2, 0.9], [0.4, 0.3, 0.1], [0.6, 0.25, 0.8]]))
        1
    """
    return int(np.argmin(np.median(val, axis=0)))


def welch(a, b) -> dict:
    """Welch's t-test of ``a`` against ``b`` (finite entries): ``{"t", "p"}``; ``p`` is two-sided.

    ``None`` where either side has fewer than two finite values or both have no spread.
    """
    import warnings

    from scipy import stats

    a, b = (np.asarray(x, np.float64) for x in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2 or (a.std() == 0 and b.std() == 0):
        return {"t": None, "p": None}
    with warnings.catch_warnings():  # one side without spread is a valid (if weak) test
        warnings.simplefilter("ignore", RuntimeWarning)
        t, p = stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(t), "p": float(p)}


def summarize(run: protocols.TaskRun, config: Config, task, cell_id: str, lrs: np.ndarray) -> tuple:
    """The results.json entry of one (task, cell), and the arrays kept in its ``.npz``."""
    score, _ = SCORES[task.kind]
    k, s = lrs.size, config.train.seeds
    test = run.test[score].reshape(s, k)  # seed-major: model s * K + j is seed s at rate j
    # The validation score of the parameters whose test score is reported, so that both come from one evaluation.
    val = kept_validation(run.history, config.train.stop_metric or run.metric, score).reshape(s, k)
    j = best_rate(val)
    entry = {
        "task": task.name,
        "length": config.lengths[task.name][0],
        "cell": cell_id,
        "score": score,
        "baseline": run.baseline,
        "learning_rates": lrs,
        "best_lr": float(lrs[j]),
        "best_lr_index": j,
        "test": {**runs.seed_stats(test[:, j]), "per_seed": test[:, j]},
        "test_median_by_lr": np.median(test, axis=0),
        "val_median_by_lr": np.median(val, axis=0),
        "solved_at_best_lr": int(run.solved.reshape(s, k)[:, j].sum()),
        "diverged": int(np.sum(run.diverged_step >= 0)),  # stopped at a non-finite loss or gradient
        "skipped": int(np.sum(run.skipped > 0)),  # trained on past one (on_nonfinite="skip")
        "skipped_updates": run.skipped,
        "seeds": s,
        "steps_run": run.steps,
        "seconds": run.seconds,
    }
    arrays = {"eval_step": run.history["eval_step"], f"eval.{score}": run.history[f"eval/{score}"], "test": test,
              "val_best": val}  # fmt: skip
    return entry, arrays


def run_name(task: str, cell_id: str) -> str:
    return f"{task}_{cell_id}"


def run_experiment(config: Config, out: pathlib.Path, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs every (task, cell) of ``config`` into the run folder ``out`` (:func:`rnnlab.experiment.run_grid`)."""

    def run_one(point, k, n):
        task_name, cell_id = point
        task, lrs = tasks.get(task_name), config.learning_rates(task_name)
        length = config.lengths[task_name][0]
        run = protocols.train_on_task(
            CELLS[cell_id][1](config.hidden_size), task, length, config.train, seed=config.seed, progress=progress,
            learning_rates=lrs, label=f"[{k + 1}/{n}] {task_name} T={length} {CELLS[cell_id][0]}",
        )  # fmt: skip
        return summarize(run, config, task, cell_id, lrs)

    return experiment.run_grid(
        config.to_dict(), out, experiment="lstm_variants", grid=[(t, c) for t in config.lengths for c in config.cells],
        name_of=lambda point: run_name(*point), entry_name=lambda e: run_name(e["task"], e["cell"]),
        run_one=run_one, findings=findings, make_plots=make_plots, report=report,
        header={"published": PUBLISHED, "learning_rates": {t: config.learning_rates(t) for t in config.lengths}},
        resume=resume,
    )  # fmt: skip


def _entry(results: dict, task: str, cell_id: str) -> dict:
    return next(e for e in results["runs"] if (e["task"], e["cell"]) == (task, cell_id))


def findings(results: dict, alpha: float = 0.05) -> dict:
    """Per task: every architecture against the vanilla LSTM (Welch's t-test over seeds at the best rates)."""
    cfg = results["config"]
    out = {}
    for task in cfg["lengths"]:
        ref = _entry(results, task, "vanilla")
        per = {}
        for c in cfg["cells"]:
            e = _entry(results, task, c)
            test = e["test"]
            mean, ref_mean = test["mean"], ref["test"]["mean"]
            w = {"p": None} if c == "vanilla" else welch(_floats(test["per_seed"]), _floats(ref["test"]["per_seed"]))
            if c == "vanilla" or w["p"] is None or w["p"] >= alpha:
                verdict = "reference" if c == "vanilla" else "no significant difference"
            else:
                verdict = "worse" if mean > ref_mean else "better"
            per[c] = {"mean": mean, "std": test["std"], "p_vs_vanilla": w["p"], "verdict": verdict}
        ranked = sorted(cfg["cells"], key=lambda c: math.inf if per[c]["mean"] is None else per[c]["mean"])
        # Every architecture is tested against vanilla: with m tests, about alpha * m pass by chance.
        m = max(len(cfg["cells"]) - 1, 1)
        bonferroni = [c for c in ranked if per[c]["p_vs_vanilla"] is not None and per[c]["p_vs_vanilla"] < alpha / m]
        out[task] = {
            "by_cell": per,
            "ranking": ranked,
            "alpha": alpha,
            "comparisons": m,
            "significant_after_bonferroni": bonferroni,
            "reference_solved": f"{ref['solved_at_best_lr']}/{ref['seeds']}",
        }
    return out


def _floats(xs) -> np.ndarray:
    return np.asarray([np.nan if x is None else x for x in xs], np.float64)


def make_plots(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """Writes ``variants.png`` (score per architecture with spread) and ``learning_rates.png``."""
    from rnnlab import plots

    plt = plots.pyplot()
    cfg = results["config"]
    out = pathlib.Path(out)
    task_names = list(cfg["lengths"])
    written = []
    fig, axes = plt.subplots(1, len(task_names), figsize=(6 * len(task_names), 0.45 * len(cfg["cells"]) + 1.6),
                             squeeze=False, layout="constrained")  # fmt: skip
    for ax, task in zip(axes[0], task_names):
        f = results["findings"][task]
        order = f["ranking"][::-1]  # best at the top
        for y, c in enumerate(order):
            e = _entry(results, task, c)
            vals = _floats(e["test"]["per_seed"])
            color = {"worse": "tab:red", "better": "tab:green"}.get(f["by_cell"][c]["verdict"], "tab:blue")
            ax.plot(vals, np.full(vals.size, y), "o", color=color, alpha=0.6, ms=4)
            if e["test"]["mean"] is not None:
                ax.plot([e["test"]["mean"]], [y], "|", color="k", ms=14, mew=2)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels([CELLS[c][0] for c in order])
        ref = _entry(results, task, "vanilla")["test"]["mean"]
        if ref is not None:
            ax.axvline(ref, color="gray", ls=":", lw=1)
        base = _entry(results, task, "vanilla")["baseline"]
        score = SCORES["regression" if _entry(results, task, "vanilla")["score"] == "mse" else "classification"][1]
        ax.set_xlabel(score + ("" if score.endswith("wrong)") else f" (baseline {base:.3g})"))
        if _entry(results, task, "vanilla")["score"] == "mse":
            ax.set_xscale("log")  # MSEs of solved and unsolved seeds differ by orders of magnitude
        ax.set_title(f"{task}, T = {cfg['lengths'][task][0]}: each seed at the best learning rate (| mean)",
                     fontsize=9)  # fmt: skip
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Architectures against the vanilla LSTM: red worse, green better (Welch p < 0.05), blue no difference")
    written.append(runs.save_figure(fig, out / "variants.png"))

    fig, axes = plt.subplots(1, len(task_names), figsize=(6 * len(task_names), 3.8), squeeze=False,
                             layout="constrained")  # fmt: skip
    palette = plots.colors([CELLS[c][0] for c in cfg["cells"]])
    for ax, task in zip(axes[0], task_names):
        for c in cfg["cells"]:
            e = _entry(results, task, c)
            ax.plot(e["learning_rates"], _floats(e["test_median_by_lr"]), "o-", color=palette[CELLS[c][0]],
                    label=CELLS[c][0], lw=1, ms=3)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate (Adam)")
        ax.set_ylabel("median test score over seeds")
        ax.set_title(task, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("Sensitivity to the learning rate")
    written.append(runs.save_figure(fig, out / "learning_rates.png"))
    return written


def report(results: dict) -> str:
    """``report.md``: the table per task, the verdicts, and Greff et al.'s next to them."""
    cfg = results["config"]
    tr = cfg["train"]
    lines = [
        "# The LSTM search space",
        "",
        f"Preset `{cfg['name']}`, seed {cfg['seed']}: every architecture has {cfg['hidden_size']} units and a linear "
        f"readout; {cfg['lr_trials']} Adam learning rates per task drawn log-uniformly from "
        f"[{cfg['lr_range'][0]:g}, {cfg['lr_range'][1]:g}] (the same for every architecture), each with "
        f"{tr['seeds']} seeds; batch {tr['batch_size']}, at most {tr['steps']} steps, gradient norm clipped at "
        f"{tr['optimizer']['clip_value']}, each model's parameters kept at its lowest validation "
        f"{tr['stop_metric'] or 'loss'}. Score: the test metric at the architecture's best learning rate (lowest "
        "median validation score of the kept parameters), mean ± standard deviation over seeds; p: Welch's t-test "
        "against the vanilla LSTM at its best rate.",
        "",
        experiment.machine_line(results),
        "",
    ]
    for task, f in results["findings"].items():
        ref = _entry(results, task, "vanilla")
        score = SCORES["regression" if ref["score"] == "mse" else "classification"][1]
        lines += [
            f"## {task}, T = {cfg['lengths'][task][0]}",
            "",
            f"Ranked by {score} (lower is better); the task's baseline "
            f"{'MSE' if ref['score'] == 'mse' else 'cross-entropy'} is {fmt(ref['baseline'], 4)}.",
            "",
            "| architecture | score | best lr | p vs vanilla | verdict | solved at best lr | diverged, every lr |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in f["ranking"]:
            e, v = _entry(results, task, c), f["by_cell"][c]
            lines.append(
                f"| {CELLS[c][0]} | {fmt(v['mean'])} ± {fmt(v['std'], 2)} | {e['best_lr']:.2g} | "
                f"{fmt(v['p_vs_vanilla'], 2)} | {v['verdict']} | {e['solved_at_best_lr']}/{e['seeds']} | "
                f"{e['diverged']}/{e['seeds'] * len(e['learning_rates'])} |"
            )
        lines += ["", "Diverged: runs (seeds x learning rates) stopped at a non-finite loss or gradient; each keeps "
                  "the parameters of its best validation score before that.", ""]  # fmt: skip
    lines += ["## Against Greff et al.", ""]
    for task, f in results["findings"].items():
        by = f["by_cell"]
        worse = [CELLS[c][0] for c in f["ranking"] if by[c]["verdict"] == "worse"]
        better = [CELLS[c][0] for c in f["ranking"] if by[c]["verdict"] == "better"]
        checks = []
        if better:
            checks.append(f"significantly better than vanilla: {', '.join(better)} (Greff: none)")
        else:
            checks.append("no architecture significantly better than vanilla (as Greff)")
        for c, claim in (("NFG", "hurts"), ("NOAF", "hurts"), ("CIFG", "safe"), ("NP", "safe")):
            if c in by:
                got = by[c]["verdict"]
                agrees = (got == "worse") if claim == "hurts" else (got != "worse")
                checks.append(f"{c}: {got} (Greff: {'hurts' if claim == 'hurts' else 'no significant loss'}; "
                              f"{'agrees' if agrees else 'disagrees'})")  # fmt: skip
        tail = f". Worse than vanilla: {', '.join(worse)}." if worse else "."
        lines.append(f"- {task}: " + "; ".join(checks) + tail)
    lines.append("")
    for task, f in results["findings"].items():
        kept = ", ".join(CELLS[c][0] for c in f["significant_after_bonferroni"]) or "none"
        lines.append(
            f"- {task}: {f['comparisons']} architectures were each tested against vanilla, so about "
            f"{f['alpha'] * f['comparisons']:.1g} would pass p < {f['alpha']:g} by chance; with the Bonferroni "
            f"threshold p < {f['alpha'] / f['comparisons']:.2g}: {kept}. The vanilla LSTM solved "
            f"{f['reference_solved']} seeds at its best rate"
            + (
                f"; where the reference itself mostly fails, the ranking measures learning speed within {tr['steps']} "
                "steps more than what each architecture can learn."
                if int(f["reference_solved"].split("/")[0]) * 2 < tr["seeds"]
                else "."
            )
        )
    lines += [
        "",
        f'With {tr["seeds"]} seeds per architecture a t-test only detects large differences: "no significant '
        'difference" is not evidence of equality. Greff et al. trained on speech, handwriting and music with 200 '
        "random-search trials per variant and dataset over several hyperparameters; here two synthetic long-lag tasks, "
        f"{cfg['lr_trials']} learning-rate draws and a budget sized for a 2-core CPU.",
        "",
        "Figures: `variants.png`, `learning_rates.png`.",
        "",
        "## Published",
        "",
        PUBLISHED,
        "",
    ]
    return "\n".join(lines)


def configure(config: Config, args, parser) -> Config:
    """Refuses a learning rate: this experiment draws its own from ``lr_range`` (the preset's rate is unused)."""
    preset_lr = PRESETS[args.preset].train.optimizer.learning_rate
    if args.lr is not None or config.train.optimizer.learning_rate != preset_lr:
        given = f"--lr {args.lr:g}" if args.lr is not None else "train.optimizer.learning_rate"
        parser.error(
            f"{given}: lstm_variants draws {config.lr_trials} learning rates per task log-uniformly from lr_range "
            f"{tuple(config.lr_range)}; set lr_range (and lr_trials) in --config instead"
        )
    return config


def main(argv=None) -> dict:
    return cli.main(
        argv, description=__doc__.splitlines()[0], presets=PRESETS, run_experiment=run_experiment,
        findings=findings, make_plots=make_plots, report=report, configure=configure,
    )  # fmt: skip


if __name__ == "__main__":
    main()
