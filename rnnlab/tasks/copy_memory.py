"""The copy memory problem of Arjovsky, Shah & Bengio 2016 ("Unitary evolution recurrent neural networks")."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from rnnlab.tasks._base import Batch, Task, check_outputs, classification_task, correct

N_SYMBOLS = 10  # how many symbols to remember
BLANK, DELIMITER = 0, 9  # data symbols are 1..8


def _sample(key, batch_size: int, length: int) -> Batch:
    steps = length + 2 * N_SYMBOLS
    symbols = jax.random.randint(key, (batch_size, N_SYMBOLS), 1, 9)
    start = length + N_SYMBOLS  # first step of the target block: right after the delimiter
    seq = jnp.zeros((batch_size, steps), jnp.int32).at[:, :N_SYMBOLS].set(symbols).at[:, start - 1].set(DELIMITER)
    targets = jnp.zeros((batch_size, steps), jnp.int32).at[:, start:].set(symbols)
    inputs = jax.nn.one_hot(seq, 10, dtype=jnp.float32)
    mask = jnp.ones((batch_size, steps), bool)
    return Batch(inputs, targets, mask, jnp.full((batch_size,), steps, jnp.int32))


def _success(outputs, batch):
    check_outputs("tasks.copy.success", outputs, batch, 9)
    return jnp.all(correct(outputs[:, -N_SYMBOLS:], batch.targets[:, -N_SYMBOLS:]), axis=1)


def copy_memory() -> Task:
    """The copy memory problem (Arjovsky, Shah & Bengio 2016, Sec. 4.1).

    ``length = T >= 1`` is the lag; sequences have ``T + 20`` steps. Input symbols, one-hot over 10 channels
    ``(B, T + 20, 10)``: 0 blank, 1..8 data, 9 delimiter. Steps ``0..9`` hold 10 data symbols drawn uniformly from
    1..8, steps ``10..T + 8`` are ``T - 1`` blanks, step ``T + 9`` the delimiter, steps ``T + 10..T + 19`` blanks.
    ``targets (B, T + 20) int32``: blank everywhere except the last 10 steps ``T + 10..T + 19`` (the block starts on
    the step right after the delimiter), which repeat the 10 data symbols in order.

    Outputs are 9-way logits ``(B, T + 20, 9)`` over ``{blank, 1..8}`` (the delimiter is never a target). The loss
    is cross-entropy averaged over all ``T + 20`` steps (``mask`` is all True), the average under which the
    published baseline is defined: a memoryless model that predicts blank until the delimiter and uniform over
    the 8 symbols after it scores ``10 log(8) / (T + 20)`` (0.1733 at T=100, 0.0204 at T=1000).
    Success per sequence: all 10 recalled symbols correct (argmax over the last 10 steps). ``metric`` also reports
    ``"recall_accuracy"``, the per-symbol accuracy over the last 10 steps.

    Returns:
      A :class:`~rnnlab.tasks.Task` named ``"copy"``.

    Example:
      >>> import jax
      >>> from rnnlab import tasks
      >>> task = tasks.copy_memory()
      >>> batch = task.sample(jax.random.key(0), 2, 100)
      >>> batch.inputs.shape, batch.targets.shape, task.output_size
      ((2, 120, 10), (2, 120), 9)
      >>> bool((batch.targets[:, -10:] == batch.inputs[:, :10].argmax(-1)).all())
      True
      >>> round(task.baseline(100), 4)
      0.1733
    """
    task = classification_task(
        "copy",
        sample=_sample,
        time_steps=lambda length: length + 2 * N_SYMBOLS,
        baseline=lambda length: N_SYMBOLS * math.log(8) / (length + 2 * N_SYMBOLS),
        input_size=10,
        output_size=9,
        min_length=1,
        success=_success,
    )
    base_metric = task.metric

    def metric(outputs, batch):
        out = base_metric(outputs, batch)
        ok = correct(outputs[:, -N_SYMBOLS:], batch.targets[:, -N_SYMBOLS:])
        return {**out, "recall_accuracy": jnp.mean(ok.astype(jnp.float32))}

    return task._replace(metric=metric)
