"""Combinators over cells: bidirectional layers and stacks (deep RNNs).

They are not cells (a bidirectional layer cannot run one step at a time), but they share the
cell's ``init`` / ``initial_carry`` interface so :func:`rnnlab.unroll` runs them like a cell.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks
from rnnlab.cells import Cell

Layer = Any  # Cell | Bidirectional


class BidirectionalParams(NamedTuple):
    """Parameters of a :class:`Bidirectional` layer: one set per direction."""

    forward: Any
    backward: Any


class BidirectionalCarry(NamedTuple):
    """Carry of a :class:`Bidirectional` layer: the final carry of each direction."""

    forward: Any
    backward: Any


class Bidirectional(NamedTuple):
    """Two cells over the same sequence, one forward and one backward in time.

    Output at step t: ``concat(y_fwd_t, y_bwd_t)`` (``merge="concat"``, width 2H) or
    ``y_fwd_t + y_bwd_t`` (``merge="sum"``, width H). The backward direction is length-aware: it
    starts at each sequence's own last valid step.
    """

    forward: Cell
    backward: Cell
    merge: str = "concat"

    def init(self, key, input_size, dtype=jnp.float32) -> BidirectionalParams:
        k_f, k_b = jax.random.split(key)
        return BidirectionalParams(
            self.forward.init(k_f, input_size, dtype), self.backward.init(k_b, input_size, dtype)
        )

    def initial_carry(self, params, batch_shape=()) -> BidirectionalCarry:
        return BidirectionalCarry(
            self.forward.initial_carry(params.forward, batch_shape),
            self.backward.initial_carry(params.backward, batch_shape),
        )

    @property
    def output_size(self) -> int:
        return self.forward.hidden_size * (2 if self.merge == "concat" else 1)


def bidirectional(forward: Cell, backward: Cell | None = None, *, merge: str = "concat") -> Bidirectional:
    """Builds a :class:`Bidirectional` layer; ``backward`` defaults to the same cell type (own params).

    Example:
        >>> from rnnlab import cells, layers
        >>> layers.bidirectional(cells.gru(4)).output_size
        8
    """
    backward = forward if backward is None else backward
    for name, c in (("forward", forward), ("backward", backward)):
        if not isinstance(c, Cell):
            raise TypeError(f"bidirectional: {name} must be a Cell; got {type(c).__name__}")
    _checks.choice("bidirectional", "merge", merge, ("concat", "sum"))
    if merge == "sum" and forward.hidden_size != backward.hidden_size:
        raise ValueError(
            f"bidirectional: merge='sum' needs equal hidden sizes; got {forward.hidden_size} and {backward.hidden_size}"
        )
    return Bidirectional(forward, backward, merge)


class Stack(NamedTuple):
    """A deep RNN: layer l reads the outputs of layer l-1.

    ``y^0 = x``; ``y^l = layer_l(y^{l-1}) [+ y^{l-1} if residual and l >= 2]``, and during training
    dropout with rate ``dropout`` is applied to ``y^l`` for ``l < L`` (between layers, Zaremba et
    al. 2014). Params and carries are tuples with one entry per layer.
    """

    layers: tuple
    residual: bool = False
    dropout: float = 0.0

    def init(self, key, input_size, dtype=jnp.float32) -> tuple:
        keys = jax.random.split(key, len(self.layers))
        sizes = [input_size] + [layer.output_size for layer in self.layers[:-1]]
        return tuple(layer.init(k, n, dtype) for layer, k, n in zip(self.layers, keys, sizes))

    def initial_carry(self, params, batch_shape=()) -> tuple:
        return tuple(layer.initial_carry(p, batch_shape) for layer, p in zip(self.layers, params))

    def apply(self, params, carry, x):
        """One step through every layer (cells only; no dropout): ``(carry, x) -> (carry, y)``."""
        if not all(isinstance(layer, Cell) for layer in self.layers):
            raise TypeError("Stack.apply: a stack with bidirectional layers cannot run one step at a time")
        new_carry = []
        y = x
        for l, (layer, p, c) in enumerate(zip(self.layers, params, carry)):
            c, out = layer.apply(p, c, y)
            y = out + y if (self.residual and l > 0) else out
            new_carry.append(c)
        return tuple(new_carry), y

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    @property
    def hidden_size(self) -> int:
        return self.output_size


def stack(layers, *, residual: bool = False, dropout: float = 0.0) -> Stack:
    """Builds a :class:`Stack` from cells and/or :class:`Bidirectional` layers.

    Args:
        layers: a non-empty sequence of layers.
        residual: add each layer's input to its output, for every layer after the first; their
            widths must match.
        dropout: rate in [0, 1) of dropout between layers, applied by :func:`rnnlab.unroll` only
            when it is given a ``dropout_key``.

    Example:
        >>> from rnnlab import cells, layers
        >>> deep = layers.stack([cells.lstm(8), cells.lstm(8)], residual=True, dropout=0.1)
        >>> deep.output_size
        8
    """
    layers = tuple(layers)
    if not layers:
        raise ValueError("stack: layers must hold at least one layer; got none")
    for k, layer in enumerate(layers):
        if not isinstance(layer, (Cell, Bidirectional)):
            raise TypeError(f"stack: layers[{k}] must be a Cell or Bidirectional; got {type(layer).__name__}")
    if not isinstance(residual, bool):
        raise TypeError(f"stack: residual must be a bool; got {residual!r}")
    if residual:
        for k in range(1, len(layers)):
            if layers[k].output_size != layers[k - 1].output_size:
                raise ValueError(
                    f"stack: residual=True adds layer {k}'s input to its output, so their widths must match; "
                    f"got input width {layers[k - 1].output_size} and output width {layers[k].output_size}"
                )
    dropout = _checks.real_number("stack", "dropout", dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"stack: dropout must be in [0, 1); got {dropout}")
    return Stack(layers, residual, dropout)


def input_size(layer, params) -> int | None:
    """The input width ``params`` expect, when it can be read off them (else None)."""
    if isinstance(layer, Stack):
        return input_size(layer.layers[0], params[0])
    if isinstance(layer, Bidirectional):
        return input_size(layer.forward, params.forward)
    kernel = getattr(params, "input_kernel", None)
    return None if kernel is None else int(kernel.shape[0])
