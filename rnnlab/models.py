"""A recurrent core with a linear readout at every step: the model behind the task experiments.

``outputs_t = y_t V + c`` where ``y_t`` is the core's output at step t (a cell, a stack or a
bidirectional layer run by :func:`rnnlab.unroll`). Many-to-one tasks read one step of ``outputs``
(the task's ``mask`` says which), many-to-many tasks read every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks, initializers
from rnnlab.unroll import unroll


class ReadoutParams(NamedTuple):
    """Linear readout: ``kernel (H, O)`` (Glorot uniform at init), ``bias (O,)`` (zeros)."""

    kernel: jax.Array
    bias: jax.Array


class ModelParams(NamedTuple):
    """Parameters of a :class:`SequenceModel`: the recurrent ``core`` and the ``readout``."""

    core: Any
    readout: ReadoutParams


class SequenceModel(NamedTuple):
    """A recurrent core followed by a per-step linear readout, as pure functions.

    Attributes:
        init: ``init(key, input_size, dtype=float32) -> ModelParams``.
        hidden: ``hidden(params, xs, **unroll_kwargs) -> (final_carry, ys)``, the core alone
            (:func:`rnnlab.unroll` arguments: ``lengths``, ``dropout_key``, ...).
        readout: ``readout(params, ys) -> outputs``: ``ys (..., H) -> (..., O)``.
        apply: ``apply(params, xs, **unroll_kwargs) -> outputs (B, T, O)``: ``readout(hidden(xs))``.
        core: the cell, stack or bidirectional layer.
        output_size: O.
    """

    init: Callable
    hidden: Callable
    readout: Callable
    apply: Callable
    core: Any
    output_size: int


def sequence_model(core, output_size: int) -> SequenceModel:
    """Wraps ``core`` (anything :func:`rnnlab.unroll` runs) with a linear readout of width ``output_size``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells, models
        >>> model = models.sequence_model(cells.lstm(8), output_size=1)
        >>> params = model.init(jax.random.key(0), input_size=2)
        >>> params.readout.kernel.shape
        (8, 1)
        >>> model.apply(params, jnp.ones((4, 10, 2)), lengths=jnp.array([10, 9, 3, 1])).shape
        (4, 10, 1)
    """
    output_size = _checks.dimension("sequence_model", "output_size", output_size)
    width = getattr(core, "output_size", None)
    if not isinstance(width, int):
        raise TypeError(f"sequence_model: core must be a Cell, Stack or Bidirectional; got {type(core).__name__}")

    def init(key, input_size, dtype=jnp.float32) -> ModelParams:
        k_core, k_out = jax.random.split(key)
        core_params = core.init(k_core, input_size, dtype)  # first: its checks name input_size and dtype
        kernel = initializers.glorot_uniform(k_out, (width, output_size), dtype)
        return ModelParams(core_params, ReadoutParams(kernel, jnp.zeros((output_size,), dtype)))

    def hidden(params: ModelParams, xs, **unroll_kwargs):
        return unroll(core, params.core, xs, **unroll_kwargs)

    def readout(params: ModelParams, ys):
        return ys @ params.readout.kernel + params.readout.bias.reshape((1,) * (ys.ndim - 1) + (-1,))

    def apply(params: ModelParams, xs, **unroll_kwargs):
        return readout(params, hidden(params, xs, **unroll_kwargs)[1])

    return SequenceModel(init, hidden, readout, apply, core, output_size)
