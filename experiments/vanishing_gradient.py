"""LSTM vs plain RNN: how far back the gradient reaches, and which cells learn long lags.

Run (from the repository root; ``make demo`` runs the quick preset):

    .venv/bin/python experiments/vanishing_gradient.py --preset quick            # a few minutes on a laptop CPU
    .venv/bin/python experiments/vanishing_gradient.py --preset full --out runs/vg-full

Two parts, for each cell (tanh RNN, IRNN, LSTM with forget bias 0 and 1 and chrono init, GRU):

1. Gradient flow: ``||dL/dh||`` against the lag k counted back from each test sequence's own last
   step, where the loss is read (step ``T - 1 - k`` for a fixed length T), on the task's test loss at
   initialization and after training, averaged over seeds (``rnnlab.diagnostics``).
2. Long-lag learning: success rate over seeds and final test loss against the sequence length,
   next to the task's baseline (``rnnlab.protocols.train_on_task``).

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json``, per-run histories
under ``runs/``, PNG plots and ``report.md``. The same ``--seed`` gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
import time

import numpy as np

import rnnlab
from rnnlab import cli, experiment, protocols, runs, tasks
from rnnlab.train import OptimizerConfig

# Cell id -> (label, factory(hidden_size, time_steps)). Chrono init spreads the forget-gate
# timescales over [1, T_max] with T_max the number of steps of the task's sequences.
CELLS = {
    "tanh": ("tanh RNN", lambda h, t: rnnlab.cells.elman(h)),
    "irnn": ("IRNN", lambda h, t: rnnlab.cells.irnn(h)),
    "lstm_fb0": ("LSTM (forget bias 0)", lambda h, t: rnnlab.cells.lstm(h, forget_bias=0.0)),
    "lstm_fb1": ("LSTM (forget bias 1)", lambda h, t: rnnlab.cells.lstm(h, forget_bias=1.0)),
    "lstm_chrono": ("LSTM (chrono init)", lambda h, t: rnnlab.cells.lstm(h, chrono_t_max=t)),
    "gru": ("GRU", lambda h, t: rnnlab.cells.gru(h)),
}

# The published settings, to state where a run differs from them.
PUBLISHED_SETTINGS = {
    "adding": {"hidden_size": 128, "optimizer": "rmsprop", "learning_rate": 1e-3, "lengths": (100, 200, 400, 750)},
    # Their copy-memory LSTM had 40 units (128 is Tallec & Ollivier's chrono LSTM).
    "copy": {"hidden_size": 40, "optimizer": "rmsprop", "learning_rate": 1e-3, "lengths": (100, 200, 300, 500)},
}

# What Arjovsky, Shah & Bengio (2016) report, to print next to our numbers (see ../shared/RESEARCH.md).
PUBLISHED = {
    "adding": "Arjovsky et al. 2016 (128 units, RMSprop 1e-3, clip 1; T = 100, 200, 400, 750): the tanh RNN and the "
    "IRNN never beat the baseline MSE 0.167; the LSTM (forget bias 1) beats it convincingly up to T = 400 and only "
    "partly at T = 750.",
    "copy": "Arjovsky et al. 2016: the tanh RNN stays at the memoryless baseline 10 log(8) / (T + 20); a 40-unit LSTM "
    "beat it only at T = 100. Tallec & Ollivier 2018: a 128-unit LSTM with chrono init leaves the plateau at T = 500 "
    "and T = 2000.",
}


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of the experiment.

    Attributes:
        name: the run folder's name under ``runs/``.
        cells: ids from :data:`CELLS`.
        lengths: ``{task name: lengths}``; tasks from :mod:`rnnlab.tasks`.
        hidden_size: units per cell.
        seed: the experiment seed.
        train: how each (cell, task, length) is trained and scored.
    """

    name: str
    cells: tuple[str, ...]
    lengths: dict[str, tuple[int, ...]]
    hidden_size: int
    seed: int
    train: protocols.TrainSettings

    def __post_init__(self):
        experiment.check_selection("cell", self.cells, CELLS)
        experiment.check_lengths(self.lengths)
        rnnlab._checks.positive_int("Config", "hidden_size", self.hidden_size)
        if not isinstance(self.seed, int):
            raise TypeError(f"Config: seed must be an int; got {self.seed!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


ALL_CELLS = tuple(CELLS)

PRESETS = {
    # A few minutes on a 2-core laptop CPU. Small models trained fast (Adam 1e-2) so both effects show.
    "quick": Config(
        name="vanishing_gradient-quick",
        cells=ALL_CELLS,
        lengths={"adding": (25, 100, 250)},
        hidden_size=16,
        seed=0,
        train=protocols.TrainSettings(
            seeds=5,
            batch_size=16,
            steps=800,
            eval_every=100,
            eval_size=256,
            test_size=2048,
            grad_size=64,
            optimizer=OptimizerConfig("adam", learning_rate=1e-2, clip="global_norm", clip_value=1.0),
        ),
    ),
    # The published lengths of the adding problem (Arjovsky et al. 2016) and copy memory, at a scale a 2-core CPU
    # finishes in about an hour: 32 units and Adam 1e-2 instead of 128 units and RMSprop 1e-3 (which needs tens of
    # thousands of steps), and copy lags up to 100 (the published 100-500 leave every cell at the baseline for
    # thousands of steps). Re-create the published setting with --hidden 128 --optimizer rmsprop --lr 1e-3.
    "full": Config(
        name="vanishing_gradient-full",
        cells=ALL_CELLS,
        lengths={"adding": (100, 200, 400, 750), "copy": (25, 50, 100)},
        hidden_size=32,
        seed=0,
        train=protocols.TrainSettings(
            seeds=5,
            batch_size=20,
            steps=4000,
            eval_every=250,
            eval_size=500,
            test_size=1000,
            grad_size=100,
            optimizer=OptimizerConfig("adam", learning_rate=1e-2, clip="global_norm", clip_value=1.0),
        ),
    ),
    # For the test suite: seconds.
    "tiny": Config(
        name="vanishing_gradient-tiny",
        cells=("tanh", "lstm_chrono"),
        lengths={"adding": (6, 12)},
        hidden_size=4,
        seed=0,
        train=protocols.TrainSettings(
            seeds=2, batch_size=8, steps=20, eval_every=10, eval_size=16, test_size=32, grad_size=8
        ),
    ),
}


def _ratio(by_lag: np.ndarray, lag: int) -> float:
    """``||dL/dh||`` at ``lag`` over lag 0 of a seed-averaged curve by lag (0 when the deep one underflowed)."""
    return float(by_lag[lag] / by_lag[0]) if by_lag[0] > 0 else math.nan


def summarize(run: protocols.TaskRun, cell_id: str, task_name: str, length: int) -> dict:
    """The results.json entry of one (cell, task, length)."""
    metric = run.test[run.metric]
    seeds = metric.size
    # How many test sequences reach each lag (all of them at every lag for a fixed-length task); a lag that
    # none reaches is nan in every seed's curve, and null in the entry.
    steps = next(iter(run.grad_init.values())).shape[1]
    sequences = np.full(steps, -1) if run.grad_sequences is None else np.asarray(run.grad_sequences)[::-1]
    reached = sequences != 0
    # The ratio's deep end: the deepest lag every test sequence reaches (the first step of the shortest; lag
    # T - 1 for a fixed length T), so that both ends average the same sequences.
    deepest = int(np.flatnonzero(sequences == sequences[0])[-1])
    # Seeds whose curve is not finite (a diverged model) are left out of the mean, and counted.
    curves, counted = {}, {}
    for when, grads in (("init", run.grad_init), ("trained", run.grad_trained)):
        finite = np.all([np.isfinite(g[:, ::-1][:, reached]).all(axis=1) for g in grads.values()], axis=0)
        counted[when] = int(finite.sum())
        curves[when] = {
            leaf: (g[finite].mean(axis=0) if finite.any() else np.full(g.shape[1], np.nan))[::-1]  # by lag 0..T-1
            for leaf, g in grads.items()
        }
    entry = {
        "cell": cell_id,
        "label": CELLS[cell_id][0],
        "task": task_name,
        "length": length,
        "baseline": run.baseline,
        "metric": run.metric,
        "success_rate": float(run.solved.mean()),
        "solved": run.solved,
        "test_metric": {**runs.seed_stats(metric), "per_seed": metric},
        "test_metric_over_baseline": runs.seed_stats(metric / run.baseline),
        "per_sequence_success_rate": runs.seed_stats(run.test["success_rate"]),
        "solved_step": run.solved_step,
        "diverged_step": run.diverged_step,
        "skipped_updates": run.skipped,
        "steps_run": run.steps,
        "seconds": run.seconds,
        "seeds": seeds,
        # Curves by lag k from each test sequence's own last step (lag 0: where the loss is read; step T - 1 - k
        # for a fixed length T), averaged over seeds; entry k averages the grad_sequences_by_lag[k] test
        # sequences that reach lag k (null where none does).
        "grad_norm_by_lag": curves,
        "grad_norm_seeds": counted,
        "grad_sequences_by_lag": None if run.grad_sequences is None else sequences,
        # ||dL/dh|| at lag grad_ratio_lag over lag 0 (the first step over the last for a fixed length).
        "grad_ratio_lag": deepest,
        "grad_ratio_first_last": {
            when: {leaf: _ratio(c, deepest) for leaf, c in by_leaf.items()} for when, by_leaf in curves.items()
        },
    }
    if "accuracy" in run.test:
        entry["test_accuracy"] = runs.seed_stats(run.test["accuracy"])
    return entry


def _run_point(config: Config, cell, cell_id: str, task, task_name: str, length: int, progress, label: str):
    """One (task, length, cell): its results entry and the arrays of its ``runs/<point>.npz``."""
    run = protocols.train_on_task(cell, task, length, config.train, seed=config.seed, progress=progress, label=label)
    arrays = {
        **{k.replace("/", "."): v for k, v in run.history.items()},
        **{f"grad_init.{k}": v for k, v in run.grad_init.items()},
        **{f"grad_trained.{k}": v for k, v in run.grad_trained.items()},
    }
    return summarize(run, cell_id, task_name, length), arrays


def run_experiment(config: Config, out: pathlib.Path, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs every (task, length, cell) of ``config``, writing the run folder as results come in.

    With ``resume``, the (task, length, cell) entries already in ``out/results.json`` (from an
    interrupted run of the same config) are kept and not run again.
    """
    out = pathlib.Path(out)
    start = time.perf_counter()
    previous = runs.previous_results(out, config.to_dict()) if resume else None
    runs.write_json(out / "config.json", config.to_dict())
    results = {
        "experiment": "vanishing_gradient",
        "config": config.to_dict(),
        "machine": runs.machine_info(),
        "solve_rule": f"a seed solves a task when its test loss <= {config.train.solve_fraction} x the baseline",
        "tasks": {},
    }
    kept = {}
    if previous is not None:
        for block in previous["tasks"].values():
            for e in block["runs"]:
                kept[(e["task"], e["length"], e["cell"])] = e
        start -= previous.get("elapsed_s", 0.0)
    total = len(config.cells) * sum(len(v) for v in config.lengths.values())
    for task_name, lengths in config.lengths.items():
        task = tasks.get(task_name)
        entries = results["tasks"].setdefault(task_name, {"published": PUBLISHED.get(task_name), "runs": []})["runs"]
        for length in lengths:
            for cell_id in config.cells:
                label, factory = CELLS[cell_id]
                if (task_name, length, cell_id) in kept:
                    entries.append(kept[(task_name, length, cell_id)])
                    continue
                cell = factory(config.hidden_size, task.time_steps(length))
                done = sum(len(b["runs"]) for b in results["tasks"].values())
                label = f"[{done + 1}/{total}] {task_name} T={length} {label}"
                run = functools.partial(_run_point, config, cell, cell_id, task, task_name, length, progress, label)
                # Checkpointed under checkpoints/<point>/ (a killed run continues it with --resume).
                experiment.run_point(out, f"{task_name}_T{length}_{cell_id}", run, results, entries, start=start,
                                     resume=resume)  # fmt: skip
    results["elapsed_s"] = time.perf_counter() - start
    results["findings"] = findings(results)
    runs.write_json(out / "results.json", results)
    make_plots(results, out)
    runs.atomic_write(out / "report.md", report(results))
    return results


def _entry(results: dict, task: str, length: int, cell: str) -> dict | None:
    for e in results["tasks"][task]["runs"]:
        if e["length"] == length and e["cell"] == cell:
            return e
    return None


def findings(results: dict) -> dict:
    """Numbers the claims rest on: per task, the longest length's success rates and the init
    gradient ratios of the tanh RNN and the chrono LSTM."""
    out = {}
    for task, block in results["tasks"].items():
        longest = max(e["length"] for e in block["runs"])
        at_longest = {e["cell"]: e["success_rate"] for e in block["runs"] if e["length"] == longest}
        ratios = {
            e["cell"]: e["grad_ratio_first_last"]["init"]["hidden"] for e in block["runs"] if e["length"] == longest
        }
        item = {"longest_length": longest, "success_rate_at_longest": at_longest, "init_grad_ratio_at_longest": ratios}
        if ratios.get("tanh") is not None and ratios.get("lstm_chrono"):
            item["tanh_over_chrono_init_grad_ratio"] = ratios["tanh"] / ratios["lstm_chrono"]
        out[task] = item
    return out


def make_plots(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """Writes the PNG figures of every task; returns their paths."""
    from rnnlab import plots

    plt = plots.pyplot()
    written = []
    for task, block in results["tasks"].items():
        entries = block["runs"]
        cells = list(dict.fromkeys(e["cell"] for e in entries))
        labels = {c: CELLS[c][0] for c in cells}
        lengths = sorted({e["length"] for e in entries})

        fig, axes = plt.subplots(
            2, len(lengths), figsize=(4.2 * len(lengths), 7.5), squeeze=False, sharey="row", layout="constrained"
        )
        for col, length in enumerate(lengths):
            for row, when in enumerate(("init", "trained")):
                curves = {}
                for c in cells:
                    e = _entry(results, task, length, c)
                    curves[labels[c]] = np.asarray(e["grad_norm_by_lag"][when]["hidden"], np.float64)[::-1]
                plots.gradient_flow(
                    axes[row, col], curves, title=f"{task}, T = {length}, {'at init' if when == 'init' else 'trained'}",
                    ylabel=r"$\|\partial L / \partial h_{L-1-k}\|$",
                )  # fmt: skip
                axes[row, col].set_xlabel("lag k from the sequence's last step L - 1 (steps)")
        axes[0, -1].legend(fontsize=8, loc="lower left")
        fig.suptitle("Error reaching k steps back from each sequence's loss step, mean over seeds")
        written.append(runs.save_figure(fig, out / f"gradient_flow_{task}.png"))

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        rates = {labels[c]: [_entry(results, task, n, c)["success_rate"] for n in lengths] for c in cells}
        plots.versus_length(ax1, lengths, rates, ylabel="fraction of seeds that solve the task")
        ax1.set_ylim(-0.05, 1.05)
        means, spread = {}, {}
        for c in cells:
            stats = [_entry(results, task, n, c)["test_metric"] for n in lengths]
            means[labels[c]] = [np.nan if s["mean"] is None else s["mean"] for s in stats]
            spread[labels[c]] = (
                [np.nan if s["min"] is None else s["min"] for s in stats],
                [np.nan if s["max"] is None else s["max"] for s in stats],
            )
        baselines = [_entry(results, task, n, cells[0])["baseline"] for n in lengths]
        metric = entries[0]["metric"]
        plots.versus_length(ax2, lengths, means, spread=spread, baseline=baselines, ylabel=f"test {metric}", log=True)
        ax2.legend(fontsize=8)
        fig.suptitle(f"{task}: long-lag learning ({entries[0]['seeds']} seeds; bars: min-max)")
        written.append(runs.save_figure(fig, out / f"success_{task}.png"))

        fig, axes = plt.subplots(
            1, len(lengths), figsize=(4.2 * len(lengths), 3.8), squeeze=False, layout="constrained"
        )
        for col, length in enumerate(lengths):
            curves, steps = {}, None
            for c in cells:
                with np.load(out / "runs" / f"{task}_T{length}_{c}.npz", allow_pickle=False) as h:
                    curves[labels[c]] = h[f"eval.{metric}"]
                    if steps is None or len(h["eval_step"]) > len(steps):
                        steps = h["eval_step"]
            baseline = _entry(results, task, length, cells[0])["baseline"]
            plots.learning_curves(
                axes[0, col], steps, curves, baseline=baseline, ylabel=f"validation {metric}", title=f"T = {length}"
            )
            # A diverging model (e.g. an IRNN) would stretch the axis over tens of decades.
            low = np.nanmin([np.nanmin(np.where(c > 0, c, np.nan)) for c in curves.values()])
            axes[0, col].set_ylim(0.5 * low, 30 * baseline)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"{task}: validation loss while training (median, min-max band over seeds)")
        written.append(runs.save_figure(fig, out / f"learning_curves_{task}.png"))
    return written


def _fmt(x, digits=3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _diverged(entry) -> str:
    """``", k diverged"`` for the seeds of ``entry`` stopped at a non-finite loss or gradient, else ``""``."""
    k = int(np.sum(np.asarray(entry["diverged_step"]) >= 0))
    return f", {k} diverged" if k else ""


def report(results: dict) -> str:
    """``report.md``: the findings in numbers, next to the published ones."""
    cfg = results["config"]
    tr = cfg["train"]
    m = results["machine"]
    lines = [
        "# Vanishing gradients: plain RNNs against LSTMs",
        "",
        f"Preset `{cfg['name']}`, seed {cfg['seed']}: {tr['seeds']} seeds per cell and length, {cfg['hidden_size']} "
        f"units, batch {tr['batch_size']}, at most {tr['steps']} steps of {tr['optimizer']['name']} "
        f"(learning rate {tr['optimizer']['learning_rate']}, clip {tr['optimizer']['clip']} "
        f"{tr['optimizer']['clip_value']}). {results['solve_rule'][0].upper() + results['solve_rule'][1:]}; each "
        "seed's parameters are those of its best validation loss, scored on a separate test set. Training of a "
        f"cell stops early once every seed's validation loss has reached {tr['stop_fraction']} x the baseline.",
        "",
        f"Ran in {results['elapsed_s'] / 60:.1f} minutes on {m['cpu']} ({m['cores']} cores, backend "
        f"{m['backend']}), jax {m['versions'].get('jax', '?')}.",
        "",
    ]
    for task, block in results["tasks"].items():
        entries = block["runs"]
        cells = list(dict.fromkeys(e["cell"] for e in entries))
        lengths = sorted({e["length"] for e in entries})
        f = results["findings"][task]
        lines += [f"## {task}", "", "### Long-lag learning", ""]
        lines.append("| cell | " + " | ".join(f"T = {n}" for n in lengths) + " |")
        lines.append("|---|" + "---|" * len(lengths))
        for c in cells:
            row = []
            for n in lengths:
                e = _entry(results, task, n, c)
                t = e["test_metric"]
                solved = int(round(e["success_rate"] * e["seeds"]))
                row.append(f"{solved}/{e['seeds']} solved, {e['metric']} {_fmt(t['mean'])} ± {_fmt(t['std'], 2)}"
                           + _diverged(e))  # fmt: skip
            lines.append(f"| {CELLS[c][0]} | " + " | ".join(row) + " |")
        base = [_fmt(_entry(results, task, n, cells[0])["baseline"], 4) for n in lengths]
        lines.append("| *baseline* | " + " | ".join(base) + " |")
        lines += ["", "Test loss: mean ± standard deviation over seeds. \"k diverged\": seeds stopped at a non-finite "
                  "loss or gradient, each scored with the parameters of its best validation loss before that (its "
                  "initial ones if none had improved on them).", ""]  # fmt: skip
        lines += ["### Gradient flow at initialization", ""]
        first = _entry(results, task, f["longest_length"], cells[0])
        deepest = first.get("grad_ratio_lag", len(first["grad_norm_by_lag"]["init"]["hidden"]) - 1)
        if deepest == len(first["grad_norm_by_lag"]["init"]["hidden"]) - 1:
            lines.append(
                "Ratio ||dL/dh_t|| at the first step over the last (mean over seeds) at T = "
                f"{f['longest_length']}: how much of the error signal reaches the start of the sequence.",
            )
        else:  # sequences of different lengths, each with its loss at its own last step
            lines.append(
                f"Ratio of ||dL/dh|| at lag {deepest} to lag 0 (mean over seeds) at T = {f['longest_length']}, lags "
                "counted back from each test sequence's own last step, where its loss is read: how much of the error "
                f"signal reaches the start of the sequence. Lag {deepest} is the deepest every test sequence reaches "
                "(the first step of the shortest), so both ends average the same sequences; in the figure, the "
                "deeper lags average only the sequences that reach them."
            )
        lines.append(
            "A 0 is a gradient that underflowed float32 (below about 1e-38) on its way back; n/a: no seed's curve "
            "was finite."
        )
        lines.append(
            "After training: at each seed's kept parameters (those of its best validation loss), so a seed that "
            "diverged before improving on its start is measured at its initial parameters."
        )
        lines += ["", "| cell | at init | after training |", "|---|---|---|"]
        for c in cells:
            e = _entry(results, task, f["longest_length"], c)
            r = e["grad_ratio_first_last"]
            lines.append(f"| {CELLS[c][0]} | {_fmt(r['init']['hidden'])} | {_fmt(r['trained']['hidden'])}"
                         f"{_diverged(e)} |")  # fmt: skip
        lines.append("")
        factor = f.get("tanh_over_chrono_init_grad_ratio")
        if factor == 0:
            lines.append(
                "At initialization the tanh RNN's gradient underflows before it reaches the first step, where the "
                "chrono LSTM's does not."
            )
        elif factor is not None and factor <= 1:
            lines.append(
                f"At initialization the tanh RNN's ratio is {_fmt(1 / factor)}x smaller than the chrono LSTM's."
            )
        elif factor is not None:
            lines.append(f"At initialization the tanh RNN's ratio is {_fmt(factor)}x larger than the chrono LSTM's.")
        if task == "copy":
            lines.append(
                "Copy memory's loss is read at every step, so every h_t also receives error directly from its own "
                "output: the ratio does not isolate the long-range flow (the adding problem does)."
            )
        rates = f["success_rate_at_longest"]
        said = ", ".join(f"{CELLS[c][0]} {rates[c]:.0%}" for c in cells if c in rates)
        lines += ["", f"At T = {f['longest_length']}, seeds solved: {said}.", ""]
        reach = []
        for c in cells:
            solved = [n for n in lengths if _entry(results, task, n, c)["success_rate"] > 0.5]
            reach.append(f"{CELLS[c][0]} {max(solved) if solved else 'none'}")
        lines += ["Longest length solved by a majority of seeds: " + ", ".join(reach) + ".", ""]
        if block.get("published"):
            lines += ["Published: " + block["published"], ""]
        pub = PUBLISHED_SETTINGS.get(task)
        if pub:
            opt = tr["optimizer"]
            ours = {"hidden_size": cfg["hidden_size"], "optimizer": opt["name"], "learning_rate": opt["learning_rate"],
                    "lengths": tuple(lengths)}  # fmt: skip
            differ = [f"{k.replace('_', ' ')} {ours[k]} (published {pub[k]})" for k in pub if ours[k] != pub[k]]
            if differ:
                lines += ["This run differs from the published setting in: " + "; ".join(differ) + ".", ""]
        lines += [
            f"Figures: `gradient_flow_{task}.png`, `success_{task}.png`, `learning_curves_{task}.png`.",
            "",
        ]
    return "\n".join(lines)


def _add_arguments(parser):
    parser.add_argument("--cells", help=f"comma-separated subset of {','.join(CELLS)}")


def _configure(config: Config, args, parser) -> Config:
    if args.cells is None:
        return config
    return dataclasses.replace(config, cells=tuple(c.strip() for c in args.cells.split(",")))


def main(argv=None) -> dict:
    return cli.main(
        argv, description=__doc__.splitlines()[0], presets=PRESETS, run_experiment=run_experiment,
        findings=findings, make_plots=make_plots, report=report, add_arguments=_add_arguments, configure=_configure,
    )  # fmt: skip


if __name__ == "__main__":
    main()
