"""A sweep: cells x tasks and lengths x hyperparameters x seeds into one run folder and one table with intervals.

A :class:`SweepConfig` names the axes. Seeds and learning rates are *packed*: every other
combination, a :class:`Point` (cell, task, length, hidden size, optimizer, clip value), is one
:func:`rnnlab.protocols.train_on_task` call that trains ``seeds x len(learning_rates)`` models side
by side in one compiled program. The points run one after another.

:func:`run_sweep` writes the run folder as results come in: ``config.json``; ``results.json``,
rewritten atomically after each point so an interrupted sweep keeps what it finished (with
``resume=True`` those points are kept and not run again, and the point that was running continues
from its last checkpoint under ``checkpoints/<point>/``); ``runs/<point>.npz`` (training histories);
and, when every point is done, ``results.csv`` and ``report.md``: one row per (point, learning
rate) with the share of seeds that solved the task and its Wilson interval
(:func:`wilson_interval`), and the mean test loss with its Student-t interval over the seeds whose
test loss is finite (:func:`student_t_interval`); the others are counted as failed, never averaged.

Example:
    >>> from rnnlab import protocols
    >>> config = SweepConfig(name="demo", cells=("elman", "lstm"), lengths={"adding": (10, 20)},
    ...                      hidden_sizes=(8,), learning_rates=(1e-3, 1e-2), optimizers=("adam", "rmsprop"),
    ...                      train=protocols.TrainSettings(seeds=3))
    >>> points = grid(config)
    >>> len(points), points[0].key
    (8, 'adding_T10_elman_h8_adam_clip1.0')
    >>> SweepConfig(name="demo", cells=("lstn",), lengths={"adding": (10,)}, hidden_sizes=(8,))
    Traceback (most recent call last):
    ...
    ValueError: SweepConfig: cells[0] must be a registered cell or a key of cell_variants, one of
    ['elman', 'gru', 'irnn', 'lstm', 'mgu']; got 'lstn'
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import pathlib
import statistics
import time
from typing import Any, NamedTuple

import numpy as np

from rnnlab import cells, experiment, runs, tasks
from rnnlab.protocols import TrainSettings, train_on_task
from rnnlab.train import OPTIMIZERS

_WHERE = "SweepConfig"


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A grid of runs; an empty hyperparameter axis means "the value in ``train.optimizer``".

    Attributes:
        name: the run folder's name under ``runs/``.
        cells: cell names: ids of :data:`rnnlab.cells.REGISTRY` (``"elman"``, ``"lstm"``, ...) or
            keys of ``cell_variants``.
        lengths: ``{task name: lengths}``; tasks from :data:`rnnlab.tasks.TASKS`.
        hidden_sizes: units per cell; run in sequence.
        train: how each point is trained and scored (``train.seeds`` models per learning rate).
        seed: the sweep seed; every cell sees the same data for a given (seed, task, length).
        learning_rates: peak learning rates, packed: trained side by side with the seeds.
        optimizers: update rules (:data:`rnnlab.train.OPTIMIZERS`); run in sequence. A field of
            ``train.optimizer`` that only some rules read (``decay`` for rmsprop, ...) applies to
            their points; the other points run with its default.
        clip_values: gradient clipping thresholds for ``train.optimizer.clip``; run in sequence.
        cell_variants: named cells with options, ``{name: {"cell": registry id, **options}}``,
            e.g. ``{"lstm_fb0": {"cell": "lstm", "forget_bias": 0.0}}``.
        confidence: the level of the intervals in the table, in (0, 1).
    """

    name: str
    cells: tuple[str, ...]
    lengths: dict[str, tuple[int, ...]]
    hidden_sizes: tuple[int, ...]
    train: TrainSettings = TrainSettings()
    seed: int = 0
    learning_rates: tuple[float, ...] = ()
    optimizers: tuple[str, ...] = ()
    clip_values: tuple[float, ...] = ()
    cell_variants: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    confidence: float = 0.95

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"{_WHERE}: name must be a non-empty string; got {self.name!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"{_WHERE}: seed must be an int; got {self.seed!r}")
        if not isinstance(self.train, TrainSettings):
            raise TypeError(f"{_WHERE}: train must be a TrainSettings; got {type(self.train).__name__}")
        confidence = _real(self.confidence, "confidence")
        if not 0 < confidence < 1:
            raise ValueError(f"{_WHERE}: confidence must be in (0, 1); got {confidence}")
        self._check_variants()
        valid_cells = sorted(cells.REGISTRY) + sorted(self.cell_variants)
        for i, name in enumerate(self._tuple("cells", self.cells, allow_empty=False)):
            if name not in valid_cells:
                raise ValueError(
                    f"{_WHERE}: cells[{i}] must be a registered cell or a key of cell_variants, one of "
                    f"{valid_cells}; got {name!r}"
                )
        self._check_lengths()
        for i, h in enumerate(self._tuple("hidden_sizes", self.hidden_sizes, allow_empty=False)):
            if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h <= 0:
                raise ValueError(f"{_WHERE}: hidden_sizes[{i}] must be a positive int; got {h!r}")
        for field in ("learning_rates", "clip_values"):
            for i, value in enumerate(self._tuple(field, getattr(self, field))):
                value = _real(value, f"{field}[{i}]")
                if not (math.isfinite(value) and value > 0):
                    raise ValueError(f"{_WHERE}: {field}[{i}] must be a finite number > 0; got {value}")
        for i, name in enumerate(self._tuple("optimizers", self.optimizers)):
            if name not in OPTIMIZERS:
                raise ValueError(f"{_WHERE}: optimizers[{i}] must be one of {sorted(OPTIMIZERS)}; got {name!r}")
        if self.clip_values and self.train.optimizer.clip is None:
            raise ValueError(
                f"{_WHERE}: clip_values needs train.optimizer.clip to be one of ['global_norm', 'value']; got None"
            )

    def _tuple(self, field: str, value, *, allow_empty: bool = True) -> tuple:
        """Stores a list as a tuple (configs parsed from JSON hold lists), refusing strings and duplicates."""
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{_WHERE}: {field} must be a list; got {value!r}")
        value = tuple(value)
        if not value and not allow_empty:
            raise ValueError(f"{_WHERE}: {field} must not be empty")
        repeated = sorted({repr(v) for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"{_WHERE}: {field} must not repeat a value; got {list(value)} (repeated: {repeated})")
        object.__setattr__(self, field, value)
        return value

    def _check_lengths(self) -> None:
        if not isinstance(self.lengths, dict) or not self.lengths:
            raise ValueError(f"{_WHERE}: lengths must map at least one task to its lengths; got {self.lengths!r}")
        lengths = {}
        for task_name, values in self.lengths.items():
            if task_name not in tasks.TASKS:
                raise ValueError(f"{_WHERE}: lengths has unknown task {task_name!r}; tasks are {sorted(tasks.TASKS)}")
            field = f"lengths[{task_name!r}]"
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"{_WHERE}: {field} must be a non-empty list of ints; got {values!r}")
            minimum = tasks.get(task_name).min_length
            for i, n in enumerate(values):
                if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < minimum:
                    raise ValueError(f"{_WHERE}: {field}[{i}] must be an int >= {minimum}; got {n!r}")
            if len(set(values)) != len(values):
                raise ValueError(f"{_WHERE}: {field} must not repeat a length; got {list(values)}")
            lengths[task_name] = tuple(int(n) for n in values)
        object.__setattr__(self, "lengths", lengths)

    def _check_variants(self) -> None:
        if not isinstance(self.cell_variants, dict):
            raise TypeError(f"{_WHERE}: cell_variants must be a dict; got {self.cell_variants!r}")
        for name, spec in self.cell_variants.items():
            field = f"cell_variants[{name!r}]"
            if name in cells.REGISTRY:
                raise ValueError(f"{_WHERE}: {field} shadows the registered cell {name!r}; choose another name")
            if not isinstance(spec, dict) or spec.get("cell") not in cells.REGISTRY:
                raise ValueError(
                    f"{_WHERE}: {field} must be a dict whose 'cell' is one of {sorted(cells.REGISTRY)}; got {spec!r}"
                )
            options = {k: v for k, v in spec.items() if k != "cell"}
            try:  # building a cell only makes closures: a cheap way to check the options against the factory
                cells.make(spec["cell"], 2, **options)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{_WHERE}: {field}: {e}") from e

    def to_dict(self) -> dict:
        """The config as plain data (``config.json``)."""
        from rnnlab import config as config_files

        return config_files.to_dict(self)


def _real(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_WHERE}: {field} must be a number; got {value!r} of type {type(value).__name__}")
    return float(value)


def load_config(path) -> SweepConfig:
    """Reads a :class:`SweepConfig` from a TOML or JSON file (see ``experiments/sweeps/quick.toml``)."""
    from rnnlab import config as config_files

    return config_files.from_dict(SweepConfig, config_files.load(path), where=str(path))


class Point(NamedTuple):
    """One sequential run of a sweep: everything but the seeds and learning rates.

    Attributes:
        cell: a name from ``SweepConfig.cells``.
        task, length: the task and its length parameter.
        hidden: units per cell.
        optimizer: the update rule's name.
        clip: the clipping threshold; None when the optimizer does not clip.
    """

    cell: str
    task: str
    length: int
    hidden: int
    optimizer: str
    clip: float | None

    @property
    def key(self) -> str:
        """The point's name: its ``runs/<key>.npz`` and its id in ``results.json``."""
        clip = "none" if self.clip is None else repr(float(self.clip))  # repr: distinct values, distinct keys
        return f"{self.task}_T{self.length}_{self.cell}_h{self.hidden}_{self.optimizer}_clip{clip}"


def grid(config: SweepConfig) -> list[Point]:
    """The sweep's points in the order they run (cells innermost, so the cells of one setting run together)."""
    opt = config.train.optimizer
    optimizers = config.optimizers or (opt.name,)
    clips = (None,) if opt.clip is None else (config.clip_values or (opt.clip_value,))
    return [
        Point(cell, task, length, hidden, name, clip)
        for task, lengths in config.lengths.items()
        for length in lengths
        for hidden in config.hidden_sizes
        for name in optimizers
        for clip in clips
        for cell in config.cells
    ]


def learning_rates(config: SweepConfig) -> tuple[float, ...]:
    """The packed learning rates: ``config.learning_rates``, or the optimizer's when there are none."""
    return tuple(config.learning_rates) or (config.train.optimizer.learning_rate,)


def make_cell(config: SweepConfig, point: Point) -> cells.Cell:
    """The point's cell, built from the registry with its variant's options."""
    spec = dict(config.cell_variants.get(point.cell, {"cell": point.cell}))
    return cells.make(spec.pop("cell"), point.hidden, **spec)


def settings_for(config: SweepConfig, point: Point) -> TrainSettings:
    """``config.train`` with the point's optimizer and clip value.

    A field only some update rules read (``momentum``, ``decay``, ``weight_decay``) applies to the
    points whose rule reads it; the others run with its default (:meth:`OptimizerConfig.with_name`).
    """
    opt = config.train.optimizer.with_name(point.optimizer)
    if point.clip is not None:
        opt = dataclasses.replace(opt, clip_value=point.clip)
    return dataclasses.replace(config.train, optimizer=opt)


def run_point(config: SweepConfig, point: Point, *, progress: bool = True, label: str | None = None):
    """Trains one point (every seed at every learning rate in one program).

    Returns:
        ``(entry, arrays)``: the point's JSON-able ``results.json`` entry, with per-seed test
        metrics, solved flags, divergence steps (-1: not stopped) and skipped updates (non-finite
        steps of ``on_nonfinite="skip"``) for each learning rate, and its training history.
    """
    rates = learning_rates(config)
    run = train_on_task(
        make_cell(config, point), tasks.get(point.task), point.length, settings_for(config, point),
        seed=config.seed, progress=progress, label=label or point.key, learning_rates=rates,
    )  # fmt: skip
    seeds, k = config.train.seeds, len(rates)
    skipped = np.zeros(seeds * k, np.int64) if run.skipped is None else run.skipped

    def per_lr(values, j):  # models are seed-major: model s * k + j is seed s at rates[j]
        return np.asarray(values).reshape(seeds, k)[:, j]

    entry = {
        "key": point.key,
        **point._asdict(),
        "metric": run.metric,
        "baseline": run.baseline,
        "seeds": seeds,
        "steps_run": run.steps,
        "seconds": run.seconds,
        "by_learning_rate": [
            {
                "learning_rate": lr,
                "test": {name: per_lr(v, j) for name, v in run.test.items()},
                "solved": per_lr(run.solved, j),
                "solved_step": per_lr(run.solved_step, j),
                "diverged_step": per_lr(run.diverged_step, j),
                "skipped": per_lr(skipped, j),
            }
            for j, lr in enumerate(rates)
        ],
    }
    arrays = {name.replace("/", "."): v for name, v in run.history.items()}
    return runs.to_jsonable(entry), arrays


def run_sweep(config: SweepConfig, out, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs every point of ``config`` into the run folder ``out``; returns the results.

    Args:
        config: the sweep.
        out: the run folder; written as described in the module docstring.
        progress: print a progress line per point.
        resume: keep the points an interrupted sweep of the same config left in ``out/results.json``
            and run only the others, the one that was running from its checkpoint; a folder written by
            another config raises ``ValueError``.

    Returns:
        The results as ``results.json`` holds them: ``config``, ``machine``, ``points`` (one entry
        per point, in grid order), ``table`` (the rows of ``results.csv``), ``elapsed_s``,
        ``resumed`` (how many points were kept from before).
    """
    if not isinstance(config, SweepConfig):
        raise TypeError(f"run_sweep: config must be a SweepConfig; got {type(config).__name__}")
    out = pathlib.Path(out)
    start = time.perf_counter()
    config_dict = config.to_dict()
    previous = runs.previous_results(out, config_dict) if resume else None
    kept = {}
    if previous is not None:
        kept = {e["key"]: e for e in previous.get("points", [])}
        start -= previous.get("elapsed_s", 0.0)
    runs.write_json(out / "config.json", config_dict)
    results = {"experiment": "sweep", "config": config_dict, "machine": runs.machine_info(), "points": [],
               "resumed": 0}  # fmt: skip
    points = grid(config)
    for k, point in enumerate(points):
        if point.key in kept:
            results["points"].append(kept[point.key])
            results["resumed"] += 1
            continue
        # Checkpointed under checkpoints/<key>/ (a sweep killed mid-point continues it), then recorded.
        label = f"[{k + 1}/{len(points)}] {point.key}"
        run = functools.partial(run_point, config, point, progress=progress, label=label)
        experiment.run_point(out, point.key, run, results, results["points"], start=start, resume=resume)
    results["elapsed_s"] = time.perf_counter() - start
    results["table"] = table(results)
    runs.write_json(out / "results.json", results)
    results = experiment.json_round_trip(results)
    runs.atomic_write(out / "results.csv", to_csv(results["table"]))
    runs.atomic_write(out / "report.md", report(results))
    return results


# ----------------------------------------------------------------------------------------------
# The table and its intervals.


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``successes / trials``.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or all
    successes, which matters with a handful of seeds (Wilson 1927; Brown, Cai & DasGupta 2001).

    Args:
        successes: the count, ``0 <= successes <= trials``.
        trials: the number of trials, >= 1.
        confidence: the coverage, in (0, 1).

    Returns:
        ``(low, high)``.

    Example:
        >>> [round(x, 4) for x in wilson_interval(3, 3)]
        [0.4385, 1.0]
        >>> [round(x, 4) for x in wilson_interval(1, 4, confidence=0.9)]
        [0.0579, 0.6438]
    """
    if isinstance(trials, bool) or not isinstance(trials, numbers.Integral) or trials < 1:
        raise ValueError(f"wilson_interval: trials must be an int >= 1; got {trials!r}")
    if isinstance(successes, bool) or not isinstance(successes, numbers.Integral) or not 0 <= successes <= trials:
        raise ValueError(f"wilson_interval: successes must be an int in [0, trials={trials}]; got {successes!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"wilson_interval: confidence must be in (0, 1); got {confidence!r}")
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    n, p = trials, successes / trials
    scale = 1 + z * z / n
    center = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    # At 0 or n successes the bound is exactly 0 or 1; clamp the rounding of center -/+ half.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return low, high


class MeanInterval(NamedTuple):
    """The mean of the finite values, its Student-t interval, and what was left out.

    Attributes:
        mean: the mean of the finite values; None when there is none.
        low, high: the interval; None with fewer than 2 finite values.
        n: the number of finite values.
        failed: the number of non-finite values (NaN, inf), left out of everything above.
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int
    failed: int


def student_t_interval(values, confidence: float = 0.95) -> MeanInterval:
    """The mean of the finite ``values`` and its Student-t confidence interval.

    ``mean +- t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)`` with ``s`` the sample standard
    deviation of the ``n`` finite values. Non-finite values (a diverged seed's NaN) are counted in
    ``failed``, never averaged in.

    Example:
        >>> r = student_t_interval([1.0, 2.0, 3.0, float("nan")])
        >>> r.mean, round(r.low, 4), round(r.high, 4), r.n, r.failed
        (2.0, -0.4841, 4.4841, 3, 1)
        >>> student_t_interval([float("nan")])
        MeanInterval(mean=None, low=None, high=None, n=0, failed=1)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"student_t_interval: confidence must be in (0, 1); got {confidence!r}")
    x = np.asarray(values, np.float64).reshape(-1)
    finite = x[np.isfinite(x)]
    n, failed = int(finite.size), int(x.size - finite.size)
    if n == 0:
        return MeanInterval(None, None, None, 0, failed)
    mean = float(finite.mean())
    if n == 1:
        return MeanInterval(mean, None, None, 1, failed)
    from scipy import special  # the t quantile; imported here so `import rnnlab` stays light

    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * float(finite.std(ddof=1)) / math.sqrt(n)
    return MeanInterval(mean, mean - half, mean + half, n, failed)


COLUMNS = (
    "cell", "task", "length", "hidden", "optimizer", "clip", "learning_rate", "seeds",
    "solved", "solved_fraction", "solved_low", "solved_high",
    "metric", "baseline", "test_loss_mean", "test_loss_low", "test_loss_high", "failed", "diverged",
    "skipped", "skipped_updates",
)  # fmt: skip
"""The columns of :func:`table`, in order."""


def table(results: dict) -> list[dict]:
    """One row per (point, learning rate) of ``results`` (see :data:`COLUMNS`).

    ``solved`` counts the seeds whose test loss beat ``solve_fraction x baseline`` (a failed seed
    did not); ``test_loss_*`` are over the seeds with a finite test loss, ``failed`` counts the
    others. A seed whose training met a non-finite loss or gradient is counted in ``diverged`` if it
    was stopped there (``on_nonfinite="stop"``; its best parameters from before may still have a
    finite test loss), in ``skipped`` if it trained on with those updates skipped
    (``on_nonfinite="skip"``); ``skipped_updates`` is the number of updates skipped, summed over the
    seeds. Both skipped columns are None for entries written before they were recorded.
    """
    confidence = results["config"]["confidence"]
    rows = []
    for e in results["points"]:
        for by_lr in e["by_learning_rate"]:
            seeds = len(by_lr["solved"])
            solved = int(sum(bool(s) for s in by_lr["solved"]))
            loss = [math.nan if v is None else v for v in by_lr["test"][e["metric"]]]
            stats = student_t_interval(loss, confidence)
            low, high = wilson_interval(solved, seeds, confidence)
            skipped = by_lr.get("skipped")  # absent from results.json files written before it was recorded
            rows.append({
                **{c: e[c] for c in ("cell", "task", "length", "hidden", "optimizer", "clip")},
                "learning_rate": by_lr["learning_rate"],
                "seeds": seeds,
                "solved": solved,
                "solved_fraction": solved / seeds,
                "solved_low": low,
                "solved_high": high,
                "metric": e["metric"],
                "baseline": e["baseline"],
                "test_loss_mean": stats.mean,
                "test_loss_low": stats.low,
                "test_loss_high": stats.high,
                "failed": stats.failed,
                "diverged": int(sum(d >= 0 for d in by_lr["diverged_step"])),
                "skipped": None if skipped is None else int(sum(s > 0 for s in skipped)),
                "skipped_updates": None if skipped is None else int(sum(skipped)),
            })  # fmt: skip
    return rows


def to_csv(rows: list[dict]) -> str:
    """The rows as CSV with a header; a missing value (None) is an empty field.

    Example:
        >>> print(to_csv([{"cell": "lstm", "seeds": 3, "test_loss_mean": None}]), end="")
        cell,seeds,test_loss_mean
        lstm,3,
    """
    import csv
    import io

    buf = io.StringIO()
    columns = list(rows[0]) if rows else list(COLUMNS)
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buf.getvalue()


def to_markdown(rows: list[dict]) -> str:
    """The rows as a markdown table, numbers to 3 significant digits, intervals in brackets."""
    fmt = experiment.fmt
    head = ["cell", "task", "T", "hidden", "optimizer", "clip", "lr", "solved", "solved (interval)",
            "test loss", "test loss (interval)", "baseline", "failed", "diverged", "skipped"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        loss_ci = "n/a" if r["test_loss_low"] is None else f"[{fmt(r['test_loss_low'])}, {fmt(r['test_loss_high'])}]"
        skipped = r.get("skipped")
        if skipped is not None and r["skipped_updates"]:
            skipped = f"{skipped} ({r['skipped_updates']} updates)"
        cells_ = [
            r["cell"], r["task"], str(r["length"]), str(r["hidden"]), r["optimizer"],
            "none" if r["clip"] is None else fmt(r["clip"]), fmt(r["learning_rate"]),
            f"{r['solved']}/{r['seeds']}", f"[{r['solved_low']:.2f}, {r['solved_high']:.2f}]",
            fmt(r["test_loss_mean"]), loss_ci, fmt(r["baseline"]), str(r["failed"]), str(r["diverged"]),
            "n/a" if skipped is None else str(skipped),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells_) + " |")
    return "\n".join(lines) + "\n"


def report(results: dict) -> str:
    """``report.md``: what was swept, the table, the machine and how long it took."""
    cfg, tr = results["config"], results["config"]["train"]
    level = f"{100 * cfg['confidence']:g}%"
    n_points = len(results["points"])
    resumed = f" ({results['resumed']} kept from an interrupted run)" if results.get("resumed") else ""
    rates = cfg["learning_rates"] or [tr["optimizer"]["learning_rate"]]
    listed = ", ".join(f"{r:g}" for r in rates)
    return "\n".join([
        f"# Sweep `{cfg['name']}`",
        "",
        f"{n_points} points{resumed}, each training {tr['seeds']} seeds x {len(rates)} learning rates "
        f"({listed}) side by side; seed {cfg['seed']}, batch {tr['batch_size']}, at most {tr['steps']} steps. A seed "
        f"solves a task when its test loss is at most {tr['solve_fraction']} x the baseline; each seed is scored on "
        "a separate test set with its parameters of best validation loss.",
        "",
        f"Solved: seeds that solved, with a {level} Wilson interval on the fraction. Test loss: mean over the seeds "
        f"whose test loss is finite, with a {level} Student-t interval; *failed* counts the other seeds (left out "
        "of the mean). A seed whose training met a non-finite loss or gradient is counted in *diverged* if it was "
        "stopped there (on_nonfinite = \"stop\"), in *skipped* if it trained on with those updates skipped "
        "(on_nonfinite = \"skip\"; in brackets, the updates skipped over the row's seeds); this sweep ran with "
        f"on_nonfinite = \"{tr.get('on_nonfinite', 'stop')}\". With a handful of seeds the Student-t interval is "
        "wide and can reach below 0, which a loss cannot.",
        "",
        experiment.machine_line(results),
        "",
        to_markdown(results["table"]),
    ])  # fmt: skip
