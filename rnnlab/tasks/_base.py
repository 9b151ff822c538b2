"""Shared types and helpers for the task generators: :class:`Batch`, :class:`Task`, checks and losses.

Conventions shared by every task:

* ``batch.inputs (B, T, I) float32``; ``batch.targets (B, T)``, float32 for regression and int32 class ids
  for classification, meaningful only where ``batch.mask (B, T) bool`` is True; ``batch.lengths (B,) int32`` the
  valid length of each sequence (equal to ``T`` for fixed-length tasks; steps past it are zero padding).
* The model emits an output at every step, ``outputs (B, T, O)`` (a readout applied to each step; ``O = 1`` for
  regression, the number of classes for classification, as logits). Losses read only the steps where ``mask`` is
  True: the last valid step for adding and temporal order, every step for copy memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks

MAX_LENGTH = 2**30  # time_steps(length) stays below 2**31: positions are int32 in the generators


class Batch(NamedTuple):
    """One batch of a task.

    Attributes:
      inputs: ``(B, T, I) float32``; zero past each sequence's length.
      targets: ``(B, T)``; float32 (regression) or int32 class ids (classification); zero where ``mask`` is False.
      mask: ``(B, T) bool``; the steps whose outputs enter the loss.
      lengths: ``(B,) int32``; the valid length of each sequence (``T`` for fixed-length tasks).
    """

    inputs: jax.Array
    targets: jax.Array
    mask: jax.Array
    lengths: jax.Array


class Task(NamedTuple):
    """A long-lag task as a bundle of pure functions (build one with :func:`rnnlab.tasks.get`).

    Attributes:
      name: registry name, e.g. ``"adding"``.
      kind: ``"regression"`` (MSE on ``outputs[..., 0]``) or ``"classification"`` (softmax cross-entropy on logits).
      input_size: ``I``, the number of input channels.
      output_size: ``O``, the number of outputs per step the loss expects.
      min_length: the smallest ``length`` the protocol allows.
      sample: ``sample(key, batch_size, length) -> Batch``; deterministic in ``key``, jitted with ``batch_size``
        and ``length`` static (they are checked as Python ints before tracing; each new pair compiles once).
      time_steps: ``time_steps(length) -> int``, the time dimension ``T`` of the arrays ``sample`` returns
        (e.g. ``length + 20`` for copy memory, ``length + length // 10`` for variable-length tasks).
      loss: ``loss(outputs (B, T, O), batch) -> scalar``, the mean over masked steps (differentiable, jittable).
      metric: ``metric(outputs, batch) -> dict`` of scalars: the loss under its name (``"mse"`` or
        ``"cross_entropy"``), ``"success_rate"``, and ``"accuracy"`` for classification.
      success: ``success(outputs, batch) -> (B,) bool``, the published per-sequence criterion.
      baseline: ``baseline(length) -> float``, the exact loss of the best predictor that ignores the inputs
        it would need to remember (the chance level the papers compare against).
    """

    name: str
    kind: str
    input_size: int
    output_size: int
    min_length: int
    sample: Callable[..., Batch]
    time_steps: Callable[[int], int]
    loss: Callable[..., jax.Array]
    metric: Callable[..., dict]
    success: Callable[..., jax.Array]
    baseline: Callable[[int], float]


def check_length(where: str, length, min_length: int) -> int:
    """Returns ``length`` as an int, raising unless it is an int ``>= min_length``."""
    length = _checks.positive_int(where, "length", length)
    if length < min_length:
        raise ValueError(f"{where}: length must be >= {min_length} for this protocol; got {length}")
    if length >= MAX_LENGTH:
        raise ValueError(f"{where}: length must be < 2**30; got {length}")
    return length


def check_key(where: str, key) -> None:
    """Raises unless ``key`` is one PRNG key: a typed key of shape ``()`` or a raw ``uint32`` key."""
    if not hasattr(key, "shape") or not hasattr(key, "dtype"):
        raise TypeError(f"{where}: key must be a PRNG key, e.g. jax.random.key(0); got {type(key).__name__}")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{where}: key must be one PRNG key (shape ()); got a key array of shape {key.shape}")
    elif key.dtype != jnp.uint32 or key.ndim != 1:
        raise TypeError(
            f"{where}: key must be a PRNG key, e.g. jax.random.key(0); got an array of shape {tuple(key.shape)} "
            f"and dtype {key.dtype}"
        )


def length_checked(where: str, fn: Callable[[int], object]) -> Callable[[int], object]:
    """``fn(length)`` behind the check that ``length`` is a positive int."""

    def checked(length):
        return fn(_checks.positive_int(where, "length", length))

    return checked


def make_sampler(name: str, raw: Callable[..., Batch], min_length: int) -> Callable[..., Batch]:
    """Wraps ``raw(key, batch_size, length)`` in argument checks and ``jax.jit`` with the two ints static."""
    jitted = jax.jit(raw, static_argnums=(1, 2))
    where = f"tasks.{name}.sample"

    def sample(key, batch_size, length) -> Batch:
        check_key(where, key)
        batch_size = _checks.dimension(where, "batch_size", batch_size)
        length = check_length(where, length, min_length)
        if batch_size * length >= 2**31:  # larger products can overflow XLA's shape arithmetic, aborting the process
            raise ValueError(f"{where}: batch_size * length must be < 2**31; got {batch_size} * {length}")
        return jitted(key, batch_size, length)

    sample.__doc__ = f"Samples a ``{name}`` :class:`Batch`; ``batch_size`` and ``length`` are static ints."
    return sample


def check_outputs(where: str, outputs, batch: Batch, output_size: int) -> None:
    """Raises unless ``outputs`` is a float array of shape ``(B, T, output_size)`` matching ``batch``."""
    if not hasattr(outputs, "shape") or not hasattr(outputs, "dtype"):
        raise TypeError(f"{where}: outputs must be an array; got {type(outputs).__name__}")
    b, t = batch.mask.shape
    if tuple(outputs.shape) != (b, t, output_size):
        raise ValueError(
            f"{where}: outputs must have shape (B, T, O) = {(b, t, output_size)} to match the batch; "
            f"got {tuple(outputs.shape)}"
        )
    _checks.float_dtype(where, "outputs", outputs)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``x (B, T)`` over the steps where ``mask (B, T)`` is True."""
    total = jnp.sum(jnp.where(mask, x, jnp.zeros_like(x)))
    return total / jnp.maximum(jnp.sum(mask), 1).astype(x.dtype)


def at_mask(x: jax.Array, mask: jax.Array) -> jax.Array:
    """``x (B, T)`` read at the one masked step of each row: ``(B,)``."""
    return jnp.sum(jnp.where(mask, x, jnp.zeros_like(x)), axis=1)


def regression_task(name: str, *, sample, time_steps, baseline, tolerance: float, min_length: int) -> Task:
    """A :class:`Task` with MSE at the masked step and success ``|error| < tolerance`` per sequence."""

    def sq_error(outputs, batch):
        return jnp.square(outputs[..., 0] - batch.targets.astype(outputs.dtype))

    def loss(outputs, batch):
        check_outputs(f"tasks.{name}.loss", outputs, batch, 1)
        return masked_mean(sq_error(outputs, batch), batch.mask)

    def success(outputs, batch):
        check_outputs(f"tasks.{name}.success", outputs, batch, 1)
        return at_mask(sq_error(outputs, batch), batch.mask) < tolerance**2

    def metric(outputs, batch):
        return {"mse": loss(outputs, batch), "success_rate": jnp.mean(success(outputs, batch).astype(jnp.float32))}

    return Task(
        name, "regression", 2, 1, min_length, make_sampler(name, sample, min_length),
        length_checked(f"tasks.{name}.time_steps", time_steps), loss, metric, success,
        length_checked(f"tasks.{name}.baseline", baseline),
    )  # fmt: skip


def cross_entropy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Softmax cross-entropy of logits ``outputs (B, T, O)`` against int ``targets (B, T)``: ``(B, T)``."""
    logp = jax.nn.log_softmax(outputs, axis=-1)
    return -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def correct(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """``argmax(outputs) == targets`` per step: ``(B, T) bool``."""
    return jnp.argmax(outputs, axis=-1) == targets


def classification_task(
    name: str, *, sample, time_steps, baseline, input_size: int, output_size: int, min_length: int, success=None
) -> Task:
    """A :class:`Task` with softmax cross-entropy averaged over masked steps.

    ``success`` defaults to "argmax correct at the (one) masked step"; ``metric`` adds ``"accuracy"`` over masked
    steps.
    """

    def loss(outputs, batch):
        check_outputs(f"tasks.{name}.loss", outputs, batch, output_size)
        return masked_mean(cross_entropy(outputs, batch.targets), batch.mask)

    def default_success(outputs, batch):
        check_outputs(f"tasks.{name}.success", outputs, batch, output_size)
        return jnp.any(correct(outputs, batch.targets) & batch.mask, axis=1)

    success = default_success if success is None else success

    def metric(outputs, batch):
        ok = correct(outputs, batch.targets).astype(jnp.float32)
        return {
            "cross_entropy": loss(outputs, batch),
            "accuracy": masked_mean(ok, batch.mask),
            "success_rate": jnp.mean(success(outputs, batch).astype(jnp.float32)),
        }

    return Task(
        name, "classification", input_size, output_size, min_length, make_sampler(name, sample, min_length),
        length_checked(f"tasks.{name}.time_steps", time_steps), loss, metric, success,
        length_checked(f"tasks.{name}.baseline", baseline),
    )  # fmt: skip
