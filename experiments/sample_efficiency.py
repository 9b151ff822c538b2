r"""Sample efficiency against the 1997 paper: sequences until Hochreiter & Schmidhuber's stopping rule holds.

Run (from the repository root):

    .venv/bin/python experiments/sample_efficiency.py --preset quick            # a few minutes on a 2-core CPU
    .venv/bin/python experiments/sample_efficiency.py --preset full --out runs/se-full

Hochreiter & Schmidhuber (1997), Experiment 4, the adding problem
(:func:`rnnlab.tasks.adding_hs97`): pairs (value in U[-1, 1], marker), lengths uniform in
``[T, T + T/10]``, two marked values ``X1`` (among the first 10 steps) and ``X2`` (among the first
``T/2 - 1``), target ``0.5 + (X1 + X2) / 4`` at the last step. A sequence is processed correctly
when ``|error| < 0.04``. They stop training once the average training error is below 0.01 and the
2000 most recent sequences were processed correctly, and report 74,000 / 209,000 / 853,000
training sequences at T = 100 / 500 / 1000 (online learning, 10 trials each), with at most 1 of
2560 test sequences wrong.

Every sequence right implies a squared error below ``0.04^2``, so the rule is "2000 sequences in a
row right". Here it is checked on held-out data: every ``eval_every`` minibatch steps the models
are scored on ``eval_size`` validation sequences (2560, more than the paper's 2000) drawn afresh at
every evaluation (``TrainSettings.fresh_validation``), and a model stops at the first evaluation
with none wrong. (A single validation set re-scored at every evaluation would stop a model the
first time it happens to get those particular sequences right, a weaker rule than the paper's.) Its
count of training sequences is ``steps x batch_size`` at that evaluation (minibatches, not online
updates: the same sequences are counted). The stopped parameters are then scored on 2560 separate
test sequences. A seed that never meets the rule within the step budget is *censored*: its count is
only known to exceed the budget.

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json``, per-run arrays
under ``runs/``, PNG plots and ``report.md``. The same ``--seed`` gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

import rnnlab
from rnnlab import cli, experiment, protocols, runs
from rnnlab.tasks import adding_hs97
from rnnlab.train import OptimizerConfig

TASK = "adding_hs97"

# Init id -> label; options in :func:`cell_for`.
INITS = {"bias1": "forget bias 1", "chrono": "chrono"}

# Hochreiter & Schmidhuber 1997, Experiment 4: training sequences until the stopping rule held (mean over
# 10 trials) and test sequences wrong out of 2560.
PUBLISHED = {100: (74_000, 1), 500: (209_000, 0), 1000: (853_000, 1)}
PUBLISHED_SETTING = (
    "Hochreiter & Schmidhuber 1997, Experiment 4: a small LSTM without forget gate (the forget gate came in 2000), "
    "online gradient descent, 10 trials per T; the counts are their mean training sequences until the stopping "
    "rule held, the test set 2560 sequences."
)


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of the experiment.

    Attributes:
        name: the run folder's name under ``runs/``.
        lengths: ``{"adding_hs97": minimal lengths T}``.
        inits: ids from :data:`INITS`.
        hidden_size: LSTM units.
        chrono_factor: chrono init with ``T_max = chrono_factor * T``.
        seed: the experiment seed.
        train: how each run is trained; its stop rule is set to "no validation sequence wrong".
    """

    name: str
    lengths: dict[str, tuple[int, ...]]
    inits: tuple[str, ...]
    hidden_size: int
    chrono_factor: float
    seed: int
    train: protocols.TrainSettings

    def __post_init__(self):
        experiment.check_selection("init", self.inits, INITS)
        experiment.check_lengths(self.lengths, task=TASK, minimum=20)
        rnnlab._checks.positive_int("Config", "hidden_size", self.hidden_size)
        if not self.chrono_factor * min(self.lengths[TASK]) >= 2:
            raise ValueError(f"Config: chrono_factor * T must be >= 2 for every T; got {self.chrono_factor!r}")
        if (self.train.stop_metric, self.train.stop_target) != ("error_rate", 0.0):
            raise ValueError("Config: train must stop on stop_metric='error_rate', stop_target=0.0 (the 1997 rule)")
        if not isinstance(self.seed, int):
            raise TypeError(f"Config: seed must be an int; got {self.seed!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _settings(seeds, batch, steps, every, eval_size, lr):
    return protocols.TrainSettings(
        seeds=seeds, batch_size=batch, steps=steps, eval_every=every, eval_size=eval_size, test_size=eval_size,
        grad_size=min(32, eval_size),
        optimizer=OptimizerConfig("adam", learning_rate=lr, clip="global_norm", clip_value=1.0),
        stop_metric="error_rate", stop_target=0.0, fresh_validation=True,
    )  # fmt: skip


PRESETS = {
    # A few minutes on a 2-core CPU: T = 100 against the paper's 74,000 sequences.
    "quick": Config(
        name="sample_efficiency-quick",
        lengths={TASK: (100,)},
        inits=tuple(INITS),
        hidden_size=32,
        chrono_factor=1.0,
        seed=0,
        train=_settings(3, 32, 3000, 50, 2560, 3e-3),
    ),
    # The paper's three lengths, with chrono init (forget bias 1 never met the rule at T = 100 in the
    # quick preset's 96,000 sequences; at T = 500 and 1000 its full budget would take hours here).
    # 256,000 sequences: beyond the paper's count at T = 100 and 500, not at T = 1000.
    "full": Config(
        name="sample_efficiency-full",
        lengths={TASK: (100, 500, 1000)},
        inits=("chrono",),
        hidden_size=32,
        chrono_factor=1.0,
        seed=0,
        train=_settings(3, 32, 8000, 50, 2560, 3e-3),
    ),
    # For the test suite: seconds.
    "tiny": Config(
        name="sample_efficiency-tiny",
        lengths={TASK: (20,)},
        inits=("chrono",),
        hidden_size=4,
        chrono_factor=1.0,
        seed=0,
        train=_settings(2, 8, 20, 10, 16, 3e-3),
    ),
}


def cell_for(config: Config, init: str, length: int) -> rnnlab.cells.Cell:
    """The LSTM of init ``init`` (an id from :data:`INITS`) for minimal length ``length``."""
    if init == "chrono":
        return rnnlab.cells.lstm(config.hidden_size, chrono_t_max=config.chrono_factor * length)
    return rnnlab.cells.lstm(config.hidden_size, forget_bias=1.0)


def sequences_to_rule(run: protocols.TaskRun, batch_size: int) -> np.ndarray:
    """Training sequences seen when each model first met the rule, ``(N,)``; -1 where it never did."""
    step = np.asarray(run.solved_step)
    return np.where(step >= 0, step * batch_size, -1)


def summarize(run: protocols.TaskRun, config: Config, length: int, init: str) -> tuple:
    """The results.json entry of one run, and the arrays kept in its ``.npz``."""
    seqs = sequences_to_rule(run, config.train.batch_size)
    met = seqs >= 0
    wrong = np.rint(run.test["error_rate"] * config.train.test_size).astype(np.int64)
    budget = config.train.steps * config.train.batch_size
    h = run.history
    entry = {
        "length": length,
        "init": init,
        "seeds": int(seqs.size),
        "met_rule": int(met.sum()),
        "sequences": seqs,
        "sequences_met": runs.seed_stats(seqs[met]) if met.any() else runs.seed_stats([]),
        # With censored seeds counted at the budget, the mean is a lower bound on the true mean.
        "sequences_mean_lower_bound": float(np.mean(np.where(met, seqs, budget))),
        "budget_sequences": budget,
        "test_wrong": wrong,
        "test_size": config.train.test_size,
        "test_mse": runs.seed_stats(run.test["mse"]),
        "baseline_mse": run.baseline,
        "diverged": int(np.sum(run.diverged_step >= 0)),  # stopped at a non-finite loss or gradient
        "skipped": int(np.sum(run.skipped > 0)),  # trained on past one (on_nonfinite="skip")
        "skipped_updates": run.skipped,
        "published_sequences": PUBLISHED.get(length, (None, None))[0],
        "published_test_wrong": PUBLISHED.get(length, (None, None))[1],
        "steps_run": run.steps,
        "seconds": run.seconds,
    }
    arrays = {
        "eval_step": h["eval_step"],
        "eval.error_rate": h["eval/error_rate"],
        "eval.mse": h["eval/mse"],
        "train_loss": h["train/loss"],
        "grad_init_cell": run.grad_init["cell"],
    }
    return entry, arrays


def run_name(length: int, init: str) -> str:
    return f"{TASK}_T{length}_{init}"


def run_experiment(config: Config, out: pathlib.Path, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs every (length, init) of ``config`` into the run folder ``out`` (:func:`rnnlab.experiment.run_grid`)."""
    task = adding_hs97()

    def run_one(point, k, n):
        length, init = point
        run = protocols.train_on_task(
            cell_for(config, init, length), task, length, config.train, seed=config.seed, progress=progress,
            label=f"[{k + 1}/{n}] adding (1997) T={length} {INITS[init]}",
        )  # fmt: skip
        return summarize(run, config, length, init)

    return experiment.run_grid(
        config.to_dict(), out, experiment="sample_efficiency",
        grid=[(n, i) for n in config.lengths[TASK] for i in config.inits],
        name_of=lambda point: run_name(*point), entry_name=lambda e: run_name(e["length"], e["init"]),
        run_one=run_one, findings=findings, make_plots=make_plots, report=report,
        header={"published": {"setting": PUBLISHED_SETTING, "sequences_and_test_wrong": PUBLISHED}}, resume=resume,
    )  # fmt: skip


def _entry(results: dict, length: int, init: str) -> dict:
    return next(e for e in results["runs"] if (e["length"], e["init"]) == (length, init))


def verdict(f: dict) -> str:
    """One (T, init) entry of :func:`findings` against the paper's count, in words."""
    if f["median_sequences"] is None:
        return (
            f"{f['met_rule']} seeds met the rule within the budget of {f['budget']:,} sequences, so the median seed "
            "needed more: "
        ) + (
            "not decided, the budget is below the paper's count"
            if f["budget_below_published"]
            else f"more than the paper's {f['published']:,}"
        )
    word = "fewer" if f["fewer_than_published"] else "more"
    return (
        f"{f['met_rule']} seeds met the rule, median over the seeds {f['median_sequences']:,.0f} sequences: {word} "
        f"than the paper's {f['published']:,} ({f['ratio_to_published']:.2g}x)"
    )


def findings(results: dict) -> dict:
    """Per (T, init): seeds that met the rule, the median count over every seed, and its ratio to the paper's.

    A seed that did not meet the rule needed more than the budget: it sorts after every seed that
    did, so the median over all seeds is known exactly when more than half met the rule, and is
    above the budget otherwise (``median_sequences`` None). A seed stopped at a non-finite step
    counts as one that did not meet it (the report names it apart).
    """
    cfg = results["config"]
    out = {}
    for n in cfg["lengths"][TASK]:
        for init in cfg["inits"]:
            e = _entry(results, n, init)
            seqs = np.asarray(e["sequences"])
            met = seqs >= 0
            majority = 2 * int(met.sum()) > seqs.size
            median = float(np.median(np.where(met, seqs, e["budget_sequences"]))) if majority else None
            pub = e["published_sequences"]
            out[f"T={n} {init}"] = {
                "label": f"T = {n}, {INITS[init]}",
                "met_rule": f"{e['met_rule']}/{e['seeds']}",
                "median_sequences": median,
                "published": pub,
                "fewer_than_published": None if median is None or pub is None else bool(median < pub),
                "ratio_to_published": None if median is None or pub is None else median / pub,
                # Where at most half the seeds met the rule, the budget alone says whether it was fewer.
                "budget": e["budget_sequences"],
                "budget_below_published": None if pub is None else bool(e["budget_sequences"] < pub),
            }
    return out


def make_plots(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """Writes the sequences-to-rule and learning-curve figures; returns their paths."""
    from rnnlab import plots

    plt = plots.pyplot()
    cfg = results["config"]
    lengths, inits = cfg["lengths"][TASK], cfg["inits"]
    out = pathlib.Path(out)
    palette = plots.colors([INITS[i] for i in inits])
    written = []

    # 1. Sequences until the rule held, per seed, against the paper's; censored seeds as open markers at the budget.
    fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
    for k, init in enumerate(inits):
        for j, n in enumerate(lengths):
            e = _entry(results, n, init)
            x = n * (1 + 0.04 * (k - (len(inits) - 1) / 2))
            seqs = np.asarray(e["sequences"], np.float64)
            met = seqs >= 0
            label = INITS[init] if j == 0 else None
            ax.plot(np.full(met.sum(), x), seqs[met], "o", color=palette[INITS[init]], label=label)
            if (~met).any():
                ax.plot(np.full((~met).sum(), x), np.full((~met).sum(), e["budget_sequences"]), "^",
                        mfc="none", color=palette[INITS[init]])  # fmt: skip
    pub = [(n, PUBLISHED[n][0]) for n in lengths if n in PUBLISHED]
    if pub:
        ax.plot(*zip(*pub), "k*--", ms=10, label="Hochreiter & Schmidhuber 1997")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(lengths)
    ax.set_xticklabels([str(n) for n in lengths])
    ax.minorticks_off()
    ax.set_xlabel("minimal sequence length T")
    ax.set_ylabel("training sequences until the stopping rule held")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Adding problem (1997 form); open triangles: budget reached, rule not met", fontsize=9)
    written.append(runs.save_figure(fig, out / "sequences.png"))

    # 2. Validation error rate against training sequences, one panel per T.
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.6), squeeze=False, layout="constrained")
    for ax, n in zip(axes[0], lengths):
        loaded = {}
        for init in inits:
            with np.load(out / "runs" / f"{run_name(n, init)}.npz", allow_pickle=False) as z:
                loaded[INITS[init]] = (z["eval_step"], z["eval.error_rate"])
        # Runs end when all their seeds met the rule: pad the shorter curves with NaN (not drawn).
        steps = max((s for s, _ in loaded.values()), key=len)
        curves = {
            k: np.pad(c, ((0, len(steps) - len(c)), (0, 0)), constant_values=np.nan) for k, (_, c) in loaded.items()
        }
        plots.learning_curves(ax, steps * cfg["train"]["batch_size"], curves, log=False, title=f"T = {n}",
                              ylabel="share of validation sequences wrong")  # fmt: skip
        ax.set_xlabel("training sequences")
        if n in PUBLISHED:
            ax.axvline(PUBLISHED[n][0], color="k", ls=":", lw=1, label="1997")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Share of validation sequences with |error| >= 0.04: median and min-max over seeds")
    written.append(runs.save_figure(fig, out / "learning_curves.png"))
    return written


def report(results: dict) -> str:
    """``report.md``: sequences to the stopping rule next to the paper's."""
    cfg = results["config"]
    tr = cfg["train"]
    opt = tr["optimizer"]
    lengths, inits = cfg["lengths"][TASK], cfg["inits"]
    lines = [
        "# Sample efficiency on the 1997 adding problem",
        "",
        f"Preset `{cfg['name']}`, seed {cfg['seed']}: {tr['seeds']} seeds per run, LSTM with {cfg['hidden_size']} "
        f"units (forget gate, no peepholes) and a linear readout; minibatches of {tr['batch_size']}, {opt['name']} "
        f"(learning rate {opt['learning_rate']}, gradient norm clipped at {opt['clip_value']}), at most "
        f"{tr['steps']} steps ({tr['steps'] * tr['batch_size']:,} sequences). Chrono init: b_f ~ log U[1, T_max - 1], "
        f"b_i = -b_f with T_max = {cfg['chrono_factor']:g} T. Stopping rule: no wrong sequence (|error| >= 0.04) "
        f"among {tr['eval_size']} validation sequences "
        + ("drawn afresh at every evaluation" if tr.get("fresh_validation") else
           "(one set, the same at every evaluation)")  # fmt: skip
        + f", checked every {tr['eval_every']} steps ({tr['eval_every'] * tr['batch_size']:,} sequences); test: "
        f"{tr['test_size']} separate sequences.",
        "",
        experiment.machine_line(results),
        "",
        "| T | init | met the rule | training sequences (median, [min, max] of those that met it) | "
        "test wrong per seed | 1997: sequences | 1997: test wrong |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in lengths:
        for init in inits:
            e = _entry(results, n, init)
            s = e["sequences_met"]
            seqs = [x for x in e["sequences"] if x >= 0]
            counts = (
                f"{int(np.median(seqs)):,} [{int(s['min']):,}, {int(s['max']):,}]"
                if seqs
                else f"> {e['budget_sequences']:,} (none)"
            )
            # A seed that met the rule is frozen there, so a diverged seed is one that had not: it was stopped
            # at a non-finite step, not run to the budget.
            censored = e["seeds"] - e["met_rule"] - e["diverged"]
            if seqs and censored:
                counts += f"; {censored} seed(s) > {e['budget_sequences']:,}"
            if e["diverged"]:
                counts += f"; {e['diverged']} seed(s) diverged (stopped at a non-finite loss or gradient)"
            wrong = ", ".join(str(w) for w in e["test_wrong"])
            pub, pub_wrong = e["published_sequences"], e["published_test_wrong"]
            lines.append(
                f"| {n} | {INITS[init]} | {e['met_rule']}/{e['seeds']} | {counts} | {wrong} (of {e['test_size']}) | "
                f"{'n/a' if pub is None else f'{pub:,}'} | {'n/a' if pub_wrong is None else f'{pub_wrong} of 2560'} |"
            )
    lines += ["", "## Verdict", ""]
    lines += [f"- {f['label']}: {verdict(f)}." for f in results["findings"].values() if f["published"] is not None]
    lines += [
        "",
        "Figures: `sequences.png`, `learning_curves.png`.",
        "",
        "## Published",
        "",
        PUBLISHED_SETTING,
        "",
        "Differences: minibatches instead of online updates (a minibatch step counts all its sequences), Adam with "
        "gradient clipping instead of plain gradient descent, a forget gate, and the stopping rule checked on "
        + ("fresh held-out sequences" if tr.get("fresh_validation") else "one held-out set")
        + " at evaluation points instead of on the running training stream.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    return cli.main(
        argv, description=__doc__.splitlines()[0], presets=PRESETS, run_experiment=run_experiment,
        findings=findings, make_plots=make_plots, report=report,
    )  # fmt: skip


if __name__ == "__main__":
    main()
