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
from rnnlab.layers import Bidirectional, Stack
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


def last_layer(core):
    """The layer whose outputs ``core`` returns: the last layer of a :class:`~rnnlab.layers.Stack`, else ``core``."""
    return core.layers[-1] if isinstance(core, Stack) else core


def check_summary_read(where: str, core) -> None:
    """Raises unless :func:`read_summary` can read ``core``'s outputs: a last layer that is
    :class:`~rnnlab.layers.Bidirectional` must concatenate its directions (``merge="concat"``), since a
    summed output cannot be split back into its forward and backward halves.
    """
    layer = last_layer(core)
    if isinstance(layer, Bidirectional) and layer.merge != "concat":
        raise ValueError(
            f"{where}: a bidirectional last layer must have merge='concat' to be read many-to-one (the forward half "
            f"at the read step, the backward half at step 0); got merge={layer.merge!r}"
        )


def read_summary(core, ys, steps=None):
    """The many-to-one read of ``core``'s outputs ``ys (B, T, O)`` at ``steps (B,)`` (default: the last step).

    ``ys[b, steps[b]]``, except for a bidirectional last layer (``merge="concat"``): its forward half
    is read at ``steps[b]`` and its backward half at step 0, the step where the backward direction
    has read the whole sequence (at ``steps[b]`` it has read only the steps from there on).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells, layers
        >>> ys = jnp.arange(2 * 3 * 4.0).reshape(2, 3, 4)
        >>> read_summary(cells.elman(4), ys, jnp.array([2, 1])).tolist()
        [[8.0, 9.0, 10.0, 11.0], [16.0, 17.0, 18.0, 19.0]]
        >>> read_summary(layers.bidirectional(cells.elman(2)), ys, jnp.array([2, 1])).tolist()
        [[8.0, 9.0, 2.0, 3.0], [16.0, 17.0, 14.0, 15.0]]
        >>> read_summary(layers.bidirectional(cells.elman(2)), ys).tolist()
        [[8.0, 9.0, 2.0, 3.0], [20.0, 21.0, 14.0, 15.0]]
    """
    last = ys[:, -1] if steps is None else jnp.take_along_axis(ys, steps[:, None, None], axis=1)[:, 0]
    layer = last_layer(core)
    if not isinstance(layer, Bidirectional):
        return last
    width = layer.forward.hidden_size
    return jnp.concatenate([last[:, :width], ys[:, 0, width:]], axis=-1)
