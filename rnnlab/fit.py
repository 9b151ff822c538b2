"""The training loop: many models in one compiled program, held-out evaluation, early stopping.

:func:`fit` trains ``N`` models side by side (seeds, and optionally learning rates, see
:func:`rnnlab.train.init_seeds`) with ``jax.vmap``, running ``eval_every`` steps per call as one
``jax.lax.scan`` (sampling each step's batch inside the compiled program), then evaluates every
model on a fixed held-out batch. It records the training curves, keeps each model's parameters
from its best evaluation, freezes a model once it has stopped improving (``patience``) or reached a
target, stops early when every model has, and reports non-finite losses with their step and model:
a model whose loss or gradient is not finite is either stopped and marked failed
(``on_nonfinite="stop"``) or has that update skipped (``"skip"``).

Long runs: with a :class:`~rnnlab.checkpoint.Checkpointer` (or inside a
:func:`rnnlab.checkpoint.scope`) the loop's whole state is saved at its evaluations and a new call
with the same arguments continues from the newest checkpoint, ending with the same parameters
and curves, bit for bit, as a run that was never interrupted. With a ``mesh``
(:mod:`rnnlab.distributed`) the models, and optionally each model's batch, are split over devices.

Determinism: everything is a function of the per-model ``keys``; model ``n``'s step ``s`` uses
``fold_in(keys[n], s)`` for its batch and dropout, and a finished model is frozen while the others
train on, so a model's run does not depend on which other models share the program (tests hold the
vmapped run equal to separate runs, with and without early stopping).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnlab import _checks, distributed
from rnnlab import checkpoint as _ckpt
from rnnlab.progress import Progress
from rnnlab.train import TrainState, make_train_step


class FitResult(NamedTuple):
    """What :func:`fit` returns. Arrays over models have a leading axis of size ``N``.

    Attributes:
        params: each model's parameters at its best evaluation of ``monitor`` (its initial
            parameters if no evaluation improved on the one at step 0).
        state: each model's :class:`~rnnlab.train.TrainState` at the end of its run: at the
            evaluation where it finished (patience, target or a non-finite step), else at step S.
        history: numpy arrays. ``"step"`` ``(S,)`` the training steps 1..S, and per train-step
            metric ``"train/<name>"`` ``(S, N)`` (``loss``, ``grad_norm`` before clipping, ...;
            NaN at the steps after a model finished, which it did not train);
            ``"eval_step"`` ``(E,)`` the steps at which the held-out set was evaluated (0 first),
            and ``"eval/<name>"`` ``(E, N)`` for every metric ``eval_fn`` returns.
        best_step: ``(N,)`` the step of each model's best evaluation.
        best: ``(N,)`` the best value of ``monitor``.
        solved_step: ``(N,)`` the first evaluated step where ``monitor <= target``; -1 if never
            (or no target).
        diverged_step: ``(N,)`` the first step whose loss or gradient norm was not finite; -1 if none.
        steps: how many training steps ran (fewer than asked when every model stopped early).
        skipped: ``(N,)`` how many updates were skipped for a non-finite loss or gradient (always
            0 unless ``on_nonfinite="skip"``).
        resumed_from: the step the run continued from (a checkpoint's), 0 for a fresh run.
    """

    params: Any
    state: TrainState
    history: dict[str, np.ndarray]
    best_step: np.ndarray
    best: np.ndarray
    solved_step: np.ndarray
    diverged_step: np.ndarray
    steps: int
    skipped: np.ndarray | None = None
    resumed_from: int = 0


@functools.lru_cache(maxsize=16)
def _chunk_runner(loss_fn, sample_fn, optimizer, l1: float, l2: float, watch, skip: bool, mesh) -> Callable:
    """``run(states, keys, first_step, length)``: ``length`` vmapped train steps as one ``lax.scan``.

    Cached on its arguments (as ``jax.jit`` caches on the function), so repeated :func:`fit`
    calls with the same functions and shapes compile once.
    """
    single = make_train_step(loss_fn, optimizer, l1=l1, l2=l2, jit=False, watch=watch, skip_nonfinite=skip)
    split_batch = mesh is not None and mesh.shape["batch"] > 1

    def one_step(state, key):
        data_key, dropout_key = jax.random.split(key)
        batch = sample_fn(data_key)
        if split_batch:
            batch = distributed.constrain_batch(batch, mesh)
        return single(state, batch, dropout_key)

    @functools.partial(jax.jit, static_argnums=3)
    def run(states, keys, first_step, length):
        def body(states, s):
            step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, s)
            return jax.vmap(one_step, spmd_axis_name=None if mesh is None else "seeds")(states, step_keys)

        return jax.lax.scan(body, states, first_step + jnp.arange(length))

    return run


@functools.lru_cache(maxsize=64)
def _vmapped(eval_fn: Callable) -> Callable:
    return jax.jit(jax.vmap(eval_fn, in_axes=(0, None)))


def evaluate(eval_fn: Callable, params, batch) -> dict[str, np.ndarray]:
    """``eval_fn(params, batch)`` for every model in ``params`` (leading axis N): ``{name: (N,)}``.

    The compiled function is cached per ``eval_fn``, so :func:`fit`'s validation and a later test
    evaluation with the same ``eval_fn`` and batch shape compile once.
    """
    metrics = distributed.to_host(_vmapped(eval_fn)(params, batch))
    return {k: np.asarray(v, np.float64).reshape(-1) for k, v in metrics.items()}


def _tree_select(mask, a, b):
    return jax.tree.map(lambda x, y: jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y), a, b)


def fit(
    loss_fn: Callable,
    eval_fn: Callable,
    sample_fn: Callable,
    eval_batch,
    states: TrainState,
    keys: jax.Array,
    optimizer: optax.GradientTransformation,
    *,
    steps: int,
    eval_every: int = 100,
    monitor: str = "loss",
    patience: int | None = None,
    min_delta: float = 0.0,
    target: float | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    watch: Callable | None = None,
    progress: bool = True,
    label: str = "fit",
    on_nonfinite: str = "stop",
    model_names: Sequence[str] | None = None,
    checkpoint: _ckpt.Checkpointer | None = None,
    mesh=None,
) -> FitResult:
    """Trains the ``N`` models in ``states`` for up to ``steps`` steps in one vmapped program.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> scalar`` for one model (``key`` for dropout).
        eval_fn: ``eval_fn(params, batch) -> dict`` of scalars for one model; must hold ``monitor``.
        sample_fn: ``sample_fn(key) -> batch``, a jittable training-batch generator (e.g.
            ``lambda k: task.sample(k, 32, 100)``); each model draws its own batches.
        eval_batch: the held-out batch, shared by all models (sample it with a key kept apart
            from the training keys); or ``eval_batch(step) -> batch``, called at every evaluation
            with the training steps run so far (0 first), for a fresh held-out batch each time
            (e.g. ``lambda s: task.sample(jax.random.fold_in(key, s), 512, 100)``; a resumed run
            draws the same batches as an uninterrupted one).
        states: from :func:`rnnlab.train.init_seeds` (leading axis N).
        keys: ``(N,)`` PRNG keys for the models' data and dropout.
        optimizer: the optimizer ``states`` was initialized with.
        steps: the most training steps to run.
        eval_every: steps between evaluations; they run as one compiled ``lax.scan``.
        monitor: the ``eval_fn`` metric to minimize for early stopping and best parameters.
        patience: a model is finished after this many evaluations in a row without an improvement
            larger than ``min_delta``; ``None``: never. The run ends when every model is finished
            (patience, ``target`` or divergence); until then all of them keep training together,
            and each keeps its best parameters.
        min_delta: the smallest decrease of ``monitor`` that counts as an improvement.
        target: a model whose ``monitor`` is ``<= target`` is finished (``solved_step`` records when).
        l1, l2: weight penalties (:func:`rnnlab.train.penalty`).
        watch: ``watch(params) -> {name: scalar}`` of one model, recorded at every step as
            ``history["train/<name>"]`` on the parameters that step's gradient is taken at
            (see :func:`rnnlab.train.make_train_step`).
        progress: print a progress line (to stderr).
        label: the progress line's label.
        on_nonfinite: what a non-finite loss or gradient norm does to a model: ``"stop"`` (it is
            finished and marked failed in ``diverged_step``; its parameters stay at its best
            evaluation) or ``"skip"`` (that update is not applied, the model trains on; counted in
            ``skipped``). Either way a warning names the step, the model and the values.
        model_names: ``N`` names for the warnings (e.g. ``"seed 3"``); default ``"model <n>"``.
        checkpoint: a :class:`~rnnlab.checkpoint.Checkpointer`: the loop's state is saved at its
            evaluations, and when the folder already holds a checkpoint of this run the loop
            continues from it. Default: the enclosing :func:`rnnlab.checkpoint.scope`'s, if any.
        mesh: a :func:`rnnlab.distributed.make_mesh` mesh: the models are split over its
            ``"seeds"`` axis (N must be a multiple of it) and each model's batch over its
            ``"batch"`` axis. Default: the enclosing :func:`rnnlab.distributed.use_mesh`'s, if any.

    Returns:
        A :class:`FitResult`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells, fit, models, tasks, train
        >>> task, model = tasks.get("adding"), models.sequence_model(cells.elman(4), 1)
        >>> opt = train.make_optimizer(train.OptimizerConfig("adam", learning_rate=1e-2))
        >>> keys = jax.random.split(jax.random.key(0), 2)                  # two models
        >>> states = train.init_seeds(lambda k: model.init(k, 2), keys, opt)
        >>> loss = lambda p, b, k: task.loss(model.apply(p, b.inputs), b)
        >>> metrics = lambda p, b: task.metric(model.apply(p, b.inputs), b)
        >>> result = fit.fit(loss, metrics, lambda k: task.sample(k, 8, 10), task.sample(jax.random.key(9), 32, 10),
        ...                  states, keys, opt, steps=20, eval_every=10, monitor="mse", progress=False)
        >>> result.history["train/loss"].shape, result.history["eval/mse"].shape
        ((20, 2), (3, 2))
    """
    where = "fit"
    steps = _checks.positive_int(where, "steps", steps)
    eval_every = _checks.positive_int(where, "eval_every", eval_every)
    if patience is not None:
        _checks.positive_int(where, "patience", patience)
    if target is not None:
        target = _checks.real_number(where, "target", target)
        if math.isnan(target):
            raise ValueError(f"{where}: target must be a number (a model is finished once monitor <= target); got nan")
    min_delta = _checks.nonnegative(where, "min_delta", min_delta)
    l1, l2 = _checks.nonnegative(where, "l1", l1), _checks.nonnegative(where, "l2", l2)
    _checks.choice(where, "on_nonfinite", on_nonfinite, ("stop", "skip"))
    if not hasattr(keys, "shape") or keys.ndim != 1:
        raise ValueError(f"{where}: keys must be a (N,) array of PRNG keys; got {getattr(keys, 'shape', keys)!r}")
    n = keys.shape[0]
    leading = {int(x.shape[0]) if getattr(x, "ndim", 0) else None for x in jax.tree.leaves(states)}
    if leading != {n}:
        raise ValueError(f"{where}: every leaf of states needs a leading axis of N = {n} (one per key); got {leading}")
    if model_names is None:
        model_names = [f"model {m}" for m in range(n)]
    elif len(model_names) != n:
        raise ValueError(f"{where}: model_names needs N = {n} names (one per key); got {len(model_names)}")
    if checkpoint is None:
        checkpoint = _ckpt.next_checkpointer()
    elif not isinstance(checkpoint, _ckpt.Checkpointer):
        raise TypeError(
            f"{where}: checkpoint must be a rnnlab.checkpoint.Checkpointer; got {type(checkpoint).__name__}"
        )
    if mesh is None:
        mesh = distributed.current_mesh()
    if mesh is not None:
        distributed.check_mesh(where, mesh)
        states, keys = distributed.shard_models((states, keys), mesh, where=where)

    run_chunk = _chunk_runner(
        loss_fn, sample_fn, optimizer, l1, l2, watch, on_nonfinite == "skip", mesh
    )  # fmt: skip

    def eval_now(params, step):
        metrics = evaluate(eval_fn, params, eval_batch(step) if callable(eval_batch) else eval_batch)
        if monitor not in metrics:
            raise KeyError(f"{where}: eval_fn returned {sorted(metrics)}; monitor={monitor!r} is not among them")
        return metrics

    # Everything the loop carries from one evaluation to the next: what a checkpoint holds.
    loop = {
        "states": states,
        "best_params": states.params,
        "keys": keys,
        "done": np.asarray(0, np.int64),
        "best": np.full(n, np.inf),
        "best_step": np.zeros(n, np.int64),
        "bad_evals": np.zeros(n, np.int64),
        "solved_step": np.full(n, -1, np.int64),
        "diverged_step": np.full(n, -1, np.int64),
        "skipped": np.zeros(n, np.int64),
    }
    restored = checkpoint.restore(loop) if checkpoint is not None else None
    resumed_from = 0
    if restored is None:
        first = eval_now(states.params, 0)
        evals = {k: [v] for k, v in first.items()}
        eval_steps = [0]
        loop["best"] = np.where(np.isfinite(first[monitor]), first[monitor], np.inf)
        if target is not None:
            loop["solved_step"][first[monitor] <= target] = 0
        train_hist: dict[str, list] = {}
    else:
        resumed_from, loop, log = restored
        checkpoint.check_keys(where, loop["keys"], keys)
        eval_steps = list(log.pop("eval_step"))
        evals = {k[len("eval/"):]: list(v) for k, v in log.items() if k.startswith("eval/")}
        train_hist = {k[len("train/"):]: [v] for k, v in log.items() if k.startswith("train/")}
    states, best_params, done = loop["states"], loop["best_params"], int(loop["done"])
    best, best_step, bad_evals = loop["best"], loop["best_step"], loop["bad_evals"]
    solved_step, diverged_step, skipped = loop["solved_step"], loop["diverged_step"], loop["skipped"]

    def finished_now():
        finished = diverged_step >= 0
        if patience is not None:
            finished |= bad_evals >= patience
        if target is not None:
            finished |= solved_step >= 0
        return finished

    bar = Progress(steps, label, enabled=progress)
    if done:
        bar.update(done, f"resumed at step {done}")
    while done < steps and not (done and finished_now().all()):
        length = min(eval_every, steps - done)
        # A finished model is frozen: the chunk's steps for it are discarded, so its state, best parameters
        # and scores are those of a run that stopped there, whatever the other models still do.
        # (The first chunk always runs, as it would for the model alone.)
        active = ~finished_now() if done else np.ones(n, bool)
        previous = states
        states, metrics = run_chunk(states, keys, jnp.asarray(done + 1, jnp.int32), length)
        metrics = {k: np.asarray(v) for k, v in distributed.to_host(metrics).items()}
        if not active.all():
            states = _tree_select(jnp.asarray(active), states, previous)
            metrics = {k: np.where(active, v, np.nan) if v.dtype.kind == "f" else v for k, v in metrics.items()}
        for k, v in metrics.items():
            train_hist.setdefault(k, []).append(v)
        bad = ~(np.isfinite(metrics["loss"]) & np.isfinite(metrics["grad_norm"])) & active
        fresh = bad.any(axis=0) & (diverged_step < 0)
        if on_nonfinite == "skip":
            fresh &= skipped == 0  # one warning per model; the count says how many followed
            skipped = skipped + bad.sum(axis=0)
        for m in np.flatnonzero(fresh):
            k = int(np.argmax(bad[:, m]))
            s = done + 1 + k
            if on_nonfinite == "stop":
                diverged_step[m] = s
            then = "it is stopped and marked failed; its parameters stay at its best evaluation"
            if on_nonfinite == "skip":
                then = "the update is skipped (and every later non-finite one: counted in skipped)"
            warnings.warn(
                f"{label}: {model_names[m]} hit a non-finite loss or gradient at step {s} "
                f"(loss {metrics['loss'][k, m]}, grad_norm {metrics['grad_norm'][k, m]}); {then}",
                RuntimeWarning,
                stacklevel=2,
            )
        done += length
        now = eval_now(states.params, done)
        for k, v in now.items():
            evals[k].append(v)
        eval_steps.append(done)
        value = now[monitor]
        improved = active & np.isfinite(value) & (value < best - min_delta)
        best_params = _tree_select(jnp.asarray(improved), states.params, best_params)
        best = np.where(improved, value, best)
        best_step = np.where(improved, done, best_step)
        bad_evals = np.where(improved, 0, bad_evals + active)
        if target is not None:
            solved_step = np.where(active & (solved_step < 0) & (value <= target), done, solved_step)
        bar.update(done, f"{monitor} best {np.min(best):.4g} median {np.median(value):.4g}")
        if checkpoint is not None:
            loop = {
                "states": states, "best_params": best_params, "keys": keys, "done": np.asarray(done, np.int64),
                "best": best, "best_step": best_step, "bad_evals": bad_evals, "solved_step": solved_step,
                "diverged_step": diverged_step, "skipped": skipped,
            }  # fmt: skip
            log = {"eval_step": np.asarray(eval_steps)}
            log.update({f"eval/{k}": np.stack(v) for k, v in evals.items()})
            log.update({f"train/{k}": np.concatenate(v, axis=0) for k, v in train_hist.items()})
            checkpoint.maybe_save(done, loop, log)
    bar.close()
    if checkpoint is not None:
        checkpoint.close()
    history = {"step": np.arange(1, done + 1)}
    history.update({f"train/{k}": np.concatenate(v, axis=0) for k, v in train_hist.items()})
    history["eval_step"] = np.asarray(eval_steps)
    history.update({f"eval/{k}": np.stack(v) for k, v in evals.items()})
    return FitResult(
        best_params, states, history, best_step, np.where(np.isinf(best), math.nan, best), solved_step,
        diverged_step, done, skipped, resumed_from,
    )  # fmt: skip
