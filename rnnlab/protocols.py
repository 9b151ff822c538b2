"""One cell, one task, one length, N seeds: train, test and measure the gradient flow.

:func:`train_on_task` is the unit every long-lag experiment is built from. It puts a linear
readout on the cell (:func:`rnnlab.models.sequence_model`), trains ``seeds`` models at once with
:func:`rnnlab.fit.fit` on fresh batches from the task's generator, keeps each model's parameters
at its best validation loss, scores them on a separate test set, and measures
``||dL/d(carry_t)||`` on the test loss at initialization and after training, by lag from each test
sequence's own last step (:func:`rnnlab.diagnostics.carry_gradient_norms`).

A seed *solves* the task when its test loss is at most ``solve_fraction`` times the task's
baseline (the loss of the best predictor that ignores what it would have to remember); with the
default 0.1 that is "beats the baseline convincingly" in the sense of Arjovsky et al. (2016).

Keys depend on ``(seed, task, length)`` only, not on the cell: every cell sees the same training
batches, validation and test sets for a given seed, so cells are compared pairwise.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from rnnlab import _checks, diagnostics, precision
from rnnlab.cells import Cell
from rnnlab.fit import evaluate, fit
from rnnlab.models import sequence_model
from rnnlab.tasks import Task
from rnnlab.train import OptimizerConfig, check_schedule_length, init_seeds, make_optimizer


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How :func:`train_on_task` trains and scores.

    Attributes:
        seeds: models trained side by side, N >= 1.
        batch_size: training sequences per step.
        steps: the most training steps.
        eval_every: steps between validation evaluations.
        eval_size: validation set size (sequences), also the batch size of evaluations.
        fresh_validation: draw a new validation set at every evaluation (from a key of its own,
            folded with the step), instead of scoring one set throughout. A stopping rule such as
            "every validation sequence right" then holds on sequences the model has not been
            selected on before, as a rule on a running stream of new sequences does.
        test_size: test set size, a multiple of ``eval_size`` (it is evaluated in batches).
        grad_size: test sequences the gradient-flow curves average over, <= ``eval_size``.
        optimizer: the update rule.
        solve_fraction: a seed solves the task when test loss <= solve_fraction * baseline.
        stop_fraction: a model is finished once its validation loss is <= stop_fraction *
            baseline (below the solve line, so it has a margin on the test set); training ends
            when every model is finished (see :func:`rnnlab.fit.fit`).
        patience: evaluations without improvement after which a model is finished; None: never.
        stop_metric: the validation metric that picks each model's best parameters and stops it,
            instead of the task's loss; any key of ``task.metric``, or ``"error_rate"`` (the share of
            sequences the task's success rule fails, exactly 0 when none does).
        stop_target: with ``stop_metric``, a model is finished once that metric is <= this
            (e.g. ``stop_metric="error_rate", stop_target=0.0``: every validation sequence right).
        on_nonfinite: a seed whose loss or gradient turns non-finite is stopped and marked failed
            (``"stop"``) or has that update skipped (``"skip"``); see :func:`rnnlab.fit.fit`.
        matmul_dtype: ``"bfloat16"`` trains and tests with mixed-precision matmuls (``unroll``'s
            ``matmul_dtype``, :mod:`rnnlab.precision`); ``None`` (default): float32. The
            gradient-flow curves are measured in the params' dtype either way.
    """

    seeds: int = 5
    batch_size: int = 32
    steps: int = 1000
    eval_every: int = 100
    eval_size: int = 512
    fresh_validation: bool = False
    test_size: int = 1024
    grad_size: int = 64
    optimizer: OptimizerConfig = OptimizerConfig("adam", learning_rate=1e-2, clip="global_norm", clip_value=1.0)
    solve_fraction: float = 0.1
    stop_fraction: float = 0.05
    patience: int | None = None
    stop_metric: str | None = None
    stop_target: float | None = None
    on_nonfinite: str = "stop"
    matmul_dtype: str | None = None

    def __post_init__(self):
        where = "TrainSettings"
        if self.matmul_dtype is not None and not isinstance(self.matmul_dtype, str):
            raise TypeError(f"{where}: matmul_dtype must be a dtype name such as 'bfloat16'; got {self.matmul_dtype!r}")
        precision.check_dtype(where, self.matmul_dtype)
        _checks.choice(where, "on_nonfinite", self.on_nonfinite, ("stop", "skip"))
        if not isinstance(self.fresh_validation, bool):
            raise TypeError(f"{where}: fresh_validation must be a bool; got {self.fresh_validation!r}")
        for name in ("seeds", "batch_size", "steps", "eval_every", "eval_size", "test_size", "grad_size"):
            _checks.positive_int(where, name, getattr(self, name))
        if self.test_size % self.eval_size:
            raise ValueError(
                f"{where}: test_size must be a multiple of eval_size={self.eval_size}; got {self.test_size}"
            )
        if self.grad_size > self.eval_size:
            raise ValueError(f"{where}: grad_size must be <= eval_size={self.eval_size}; got {self.grad_size}")
        if not isinstance(self.optimizer, OptimizerConfig):
            raise TypeError(f"{where}: optimizer must be an OptimizerConfig; got {type(self.optimizer).__name__}")
        for name in ("solve_fraction", "stop_fraction"):
            value = _checks.real_number(where, name, getattr(self, name))
            if not 0 < value <= 1:
                raise ValueError(f"{where}: {name} must be in (0, 1]; got {value}")
        if self.patience is not None:
            _checks.positive_int(where, "patience", self.patience)
        if (self.stop_metric is None) != (self.stop_target is None):
            raise ValueError(
                f"{where}: stop_metric and stop_target go together; got stop_metric={self.stop_metric!r}, "
                f"stop_target={self.stop_target!r}"
            )
        if self.stop_metric is not None and not isinstance(self.stop_metric, str):
            raise TypeError(f"{where}: stop_metric must be a metric name (str); got {self.stop_metric!r}")
        target = self.stop_target
        if target is not None and not math.isfinite(_checks.real_number(where, "stop_target", target)):
            raise ValueError(f"{where}: stop_target must be a finite number; got {self.stop_target}")


class TaskRun(NamedTuple):
    """The outcome of :func:`train_on_task`; arrays over seeds have a leading axis N.

    Attributes:
        metric: the task's loss name (``"mse"`` or ``"cross_entropy"``).
        baseline: the task's baseline loss at this length.
        test: every test metric of each seed's best parameters, ``{name: (N,)}``.
        solved: ``(N,)`` test loss <= ``solve_fraction * baseline`` (False for diverged seeds).
        solved_step: ``(N,)`` first validation step at or below the stopping target; -1 if never.
        diverged_step: ``(N,)`` the step at which a seed was stopped for a non-finite loss or gradient
            (``on_nonfinite="stop"``); -1 if it never was, which with ``on_nonfinite="skip"`` is always
            (its non-finite steps are counted in ``skipped`` instead).
        grad_init, grad_trained: ``{"hidden": (N, T), "cell": (N, T)}`` (``cell`` for LSTMs), T the
            padded number of steps: ``||dL/d(carry)||`` on the test loss by lag ``k = T - 1 - t`` at
            entry t, counted back from each test sequence's own last step (where the loss is read)
            and averaged over the ``grad_sequences[t]`` of the ``grad_size`` sequences that reach
            lag k (:func:`rnnlab.diagnostics.carry_gradient_norms`); ``nan`` where none does. For a
            fixed-length task entry t is step t and every sequence counts.
        history: the :class:`~rnnlab.fit.FitResult` history.
        steps: training steps run.
        seconds: wall-clock time of the whole call.
        params: every seed's best parameters (leading axis N), for diagnostics of the trained models.
        init_params: every seed's parameters at initialization.
        skipped: ``(N,)`` updates skipped for a non-finite loss or gradient (``on_nonfinite="skip"``;
            always 0 with ``"stop"``).
        grad_sequences: ``(T,)`` how many test sequences entry t of ``grad_init`` and ``grad_trained``
            averages over (:func:`rnnlab.diagnostics.lag_counts`): ``grad_size`` everywhere for a
            fixed-length task, fewer at the lags past the shortest sequence of a variable-length one.
    """

    metric: str
    baseline: float
    test: dict
    solved: np.ndarray
    solved_step: np.ndarray
    diverged_step: np.ndarray
    grad_init: dict
    grad_trained: dict
    history: dict
    steps: int
    seconds: float
    params: Any = None
    init_params: Any = None
    skipped: np.ndarray | None = None
    grad_sequences: np.ndarray | None = None

    @property
    def hit_nonfinite(self) -> np.ndarray:
        """``(N,)`` whether a seed met a non-finite loss or gradient: it was stopped there
        (``on_nonfinite="stop"``, ``diverged_step >= 0``) or had an update skipped (``"skip"``).

        Counting ``diverged_step >= 0`` alone would report no seed in trouble under ``"skip"``.
        """
        hit = np.asarray(self.diverged_step) >= 0
        if self.skipped is not None:
            hit = hit | (np.asarray(self.skipped) > 0)
        return hit


def run_keys(seed: int, task: str, length: int) -> dict[str, jax.Array]:
    """The PRNG keys of one ``(seed, task, length)``: ``models`` (N keys come from it), ``validation``
    and ``test``. Stable across processes (the task name is hashed with CRC-32)."""
    base = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), zlib.crc32(task.encode())), length)
    return {name: jax.random.fold_in(base, k) for k, name in enumerate(("models", "validation", "test"))}


def train_on_task(
    cell: Cell,
    task: Task,
    length: int,
    settings: TrainSettings,
    *,
    seed: int = 0,
    progress=True,
    label=None,
    watch: Callable | None = None,
    learning_rates=None,
    mesh=None,
) -> TaskRun:
    """Trains ``settings.seeds`` models ``cell`` + linear readout on ``task`` at ``length``.

    Args:
        cell: a single :class:`~rnnlab.cells.Cell` (the gradient-flow curves perturb its carry).
        task: from :mod:`rnnlab.tasks`.
        length: the task's length parameter (the lag).
        settings: see :class:`TrainSettings`.
        seed: the experiment seed; with the same seed the result is the same.
        progress: print a progress line.
        label: the progress line's label.
        watch: ``watch(params) -> {name: scalar}`` of one model's parameters (a
            :func:`~rnnlab.models.sequence_model`'s, the cell's under ``params.core``), recorded
            at every training step as ``history["train/<name>"]`` ``(S, N)`` on the parameters that
            step's gradient is taken at; e.g. the largest singular value of the recurrent matrix.
        learning_rates: optional peak learning rates ``(K,)`` to train side by side, each with
            every seed: the models are then ``seeds x K``, seed-major (model ``s * K + k`` is seed
            ``s`` at ``learning_rates[k]``; the K models of one seed share its initialization and
            training batches), and every ``(N,)`` array of the result has ``N = seeds * K``.
        mesh: split the models (and each model's batch) over devices; see :func:`rnnlab.fit.fit`.

    Returns:
        A :class:`TaskRun`.

    Example:
        >>> from rnnlab import cells, protocols, tasks
        >>> settings = protocols.TrainSettings(seeds=2, batch_size=8, steps=20, eval_every=10, eval_size=16,
        ...                                    test_size=16, grad_size=4)
        >>> run = protocols.train_on_task(cells.lstm(4), tasks.get("adding"), 12, settings, progress=False)
        >>> run.metric, run.test["mse"].shape, run.grad_init["cell"].shape
        ('mse', (2,), (2, 12))
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"train_on_task: cell must be a single Cell; got {type(cell).__name__}")
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"train_on_task: settings must be a TrainSettings; got {type(settings).__name__}")
    check_schedule_length("train_on_task", settings.optimizer, settings.steps)
    start = time.perf_counter()
    model = sequence_model(cell, task.output_size)
    optimizer = make_optimizer(settings.optimizer)
    keys = run_keys(seed, task.name, length)
    model_keys = jax.random.split(keys["models"], settings.seeds)
    lrs = None
    names = [f"seed {s}" for s in range(settings.seeds)]
    if learning_rates is not None:
        rates = np.asarray(learning_rates, np.float64)
        if rates.ndim != 1 or rates.size == 0 or not np.all(np.isfinite(rates) & (rates > 0)):
            raise ValueError(f"train_on_task: learning_rates must be a non-empty 1-D list of numbers > 0; got {rates}")
        model_keys = jax.numpy.repeat(model_keys, rates.size, axis=0)
        lrs = np.tile(rates, settings.seeds)
        names = [f"seed {s} at lr {r:g}" for s in range(settings.seeds) for r in rates]
    states = init_seeds(lambda k: model.init(k, task.input_size), model_keys, optimizer, learning_rates=lrs)
    metric = "mse" if task.kind == "regression" else "cross_entropy"
    baseline = float(task.baseline(length))

    def outputs(params, batch, dropout_key=None):
        return model.apply(
            params, batch.inputs, lengths=batch.lengths, dropout_key=dropout_key, matmul_dtype=settings.matmul_dtype
        )

    def loss_fn(params, batch, key):
        return task.loss(outputs(params, batch, key), batch)

    def eval_fn(params, batch):
        ys = outputs(params, batch)
        # The share of sequences the task's success rule fails, counted (not 1 - success_rate,
        # whose rounding could keep "none wrong" from reading exactly 0).
        return {**task.metric(ys, batch), "error_rate": jax.numpy.mean(~task.success(ys, batch), dtype=ys.dtype)}

    if settings.fresh_validation:
        draw = jax.jit(lambda k: task.sample(k, settings.eval_size, length))

        def validation(step):
            return draw(jax.random.fold_in(keys["validation"], step))
    else:
        validation = task.sample(keys["validation"], settings.eval_size, length)
    result = fit(
        loss_fn,
        eval_fn,
        lambda k: task.sample(k, settings.batch_size, length),
        validation,
        states,
        model_keys,
        optimizer,
        steps=settings.steps,
        eval_every=settings.eval_every,
        monitor=settings.stop_metric or metric,
        patience=settings.patience,
        target=settings.stop_fraction * baseline if settings.stop_metric is None else settings.stop_target,
        watch=watch,
        progress=progress,
        label=label or f"{cell.name} {task.name} T={length}",
        on_nonfinite=settings.on_nonfinite,
        model_names=names,
        mesh=mesh,
    )
    # The test set comes in validation-sized batches, so it reuses the compiled evaluation.
    # Every task masks the same number of steps in each sequence: the mean of the batch means is
    # the mean over the whole test set.
    test_keys = jax.random.split(keys["test"], settings.test_size // settings.eval_size)
    test_batches = [task.sample(k, settings.eval_size, length) for k in test_keys]
    parts = [evaluate(eval_fn, result.params, b) for b in test_batches]
    test = {k: np.mean([p[k] for p in parts], axis=0) for k in parts[0]}
    solved = np.isfinite(test[metric]) & (test[metric] <= settings.solve_fraction * baseline)
    solved &= result.diverged_step < 0

    grad_batch = jax.tree.map(lambda x: x[: settings.grad_size], test_batches[0])

    def grad_norms(params):
        def loss_of_outputs(ys, final):
            del final
            return task.loss(model.readout(params, ys), grad_batch)

        norms = diagnostics.carry_gradient_norms(
            cell, params.core, grad_batch.inputs, loss_of_outputs, lengths=grad_batch.lengths
        )
        return norms._asdict() if hasattr(norms, "_asdict") else {"hidden": norms}

    grads = jax.jit(jax.vmap(grad_norms))
    # Lag k of a sequence is its step lengths - 1 - k (its loss step is its own last one, not the array's):
    # at the lags past the shortest test sequence the curves average fewer sequences.
    steps = grad_batch.inputs.shape[1]
    counted = np.asarray(diagnostics.lag_counts(grad_batch.lengths, steps), np.int64)
    return TaskRun(
        metric, baseline, test, solved, result.solved_step, result.diverged_step, _numpy(grads(states.params)),
        _numpy(grads(result.params)), result.history, result.steps, time.perf_counter() - start, result.params,
        states.params, result.skipped, counted,
    )  # fmt: skip


def _numpy(tree: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float64) for k, v in jax.device_get(tree).items() if v is not None}
