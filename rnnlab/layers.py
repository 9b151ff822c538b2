"""Combinators over cells: bidirectional layers and stacks (deep RNNs).

They are not cells (a bidirectional layer cannot run one step at a time), but they share the
cell's ``init`` / ``initial_carry`` interface so :func:`rnnlab.unroll` runs them like a cell.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks
from rnnlab.cells import Cell, _base

Layer = Any  # Cell | Bidirectional


class BidirectionalParams(NamedTuple):
    """Parameters of a :class:`Bidirectional` layer: one set per direction."""

    forward: Any
    backward: Any


class BidirectionalCarry(NamedTuple):
    """Carry of a :class:`Bidirectional` layer: the final carry of each direction."""

    forward: Any
    backward: Any


def _check_bidirectional(where: str, forward, backward, merge) -> None:
    for name, c in (("forward", forward), ("backward", backward)):
        if not isinstance(c, Cell):
            raise TypeError(f"{where}: {name} must be a Cell; got {type(c).__name__}")
    _checks.choice(where, "merge", merge, ("concat", "sum"))
    if merge == "sum" and forward.hidden_size != backward.hidden_size:
        raise ValueError(
            f"{where}: merge='sum' needs equal hidden sizes; got {forward.hidden_size} and {backward.hidden_size}"
        )


class _BidirectionalFields(NamedTuple):
    forward: Cell
    backward: Cell
    merge: str = "concat"


class Bidirectional(_BidirectionalFields):
    """Two cells over the same sequence, one forward and one backward in time.

    Output at step t: ``concat(y_fwd_t, y_bwd_t)`` (``merge="concat"``, width ``H_fwd + H_bwd``) or
    ``y_fwd_t + y_bwd_t`` (``merge="sum"``, width H, equal sizes only). The backward direction is
    length-aware: it starts at each sequence's own last valid step.

    Constructing one checks its arguments as :func:`bidirectional` does (so does ``_replace``, and
    so does JAX rebuilding it as a pytree node from its leaves).

    Raises:
        TypeError: ``forward`` or ``backward`` is not a :class:`~rnnlab.cells.Cell`.
        ValueError: ``merge`` is not ``"concat"`` or ``"sum"``, or ``"sum"`` with unequal hidden sizes.
    """

    __slots__ = ()

    def __new__(cls, forward: Cell, backward: Cell, merge: str = "concat"):
        _check_bidirectional("Bidirectional", forward, backward, merge)
        return super().__new__(cls, forward, backward, merge)

    def _replace(self, **changes) -> Bidirectional:
        return type(self)(**{**self._asdict(), **changes})

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
        """``H_fwd + H_bwd`` with ``merge="concat"``, ``H`` with ``merge="sum"``."""
        if self.merge == "concat":
            return self.forward.hidden_size + self.backward.hidden_size
        return self.forward.hidden_size


def bidirectional(forward: Cell, backward: Cell | None = None, *, merge: str = "concat") -> Bidirectional:
    """Builds a :class:`Bidirectional` layer; ``backward`` defaults to the same cell type (own params).

    Example:
        >>> from rnnlab import cells, layers
        >>> layers.bidirectional(cells.gru(4)).output_size
        8
        >>> layers.bidirectional(cells.gru(4), cells.lstm(6)).output_size
        10
    """
    backward = forward if backward is None else backward
    _check_bidirectional("bidirectional", forward, backward, merge)
    return Bidirectional(forward, backward, merge)


def _check_stack(where: str, layers, residual, dropout) -> tuple[tuple, bool, float]:
    """The checked ``(layers, residual, dropout)`` of a stack: layers as a tuple, dropout as a float."""
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"{where}: layers must be a sequence of layers; got {type(layers).__name__}")
    layers = tuple(layers)
    if not layers:
        raise ValueError(f"{where}: layers must hold at least one layer; got none")
    for k, layer in enumerate(layers):
        if not isinstance(layer, (Cell, Bidirectional)):
            raise TypeError(f"{where}: layers[{k}] must be a Cell or Bidirectional; got {type(layer).__name__}")
    if not isinstance(residual, bool):
        raise TypeError(f"{where}: residual must be a bool; got {residual!r}")
    if residual:
        for k in range(1, len(layers)):
            if layers[k].output_size != layers[k - 1].output_size:
                raise ValueError(
                    f"{where}: residual=True adds layer {k}'s input to its output, so their widths must match; "
                    f"got input width {layers[k - 1].output_size} and output width {layers[k].output_size}"
                )
    dropout = _checks.real_number(where, "dropout", dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{where}: dropout must be in [0, 1); got {dropout}")
    if dropout > 0 and len(layers) == 1:
        raise ValueError(f"{where}: dropout acts between layers, and a one-layer stack has none; got dropout={dropout} "
                         f"with 1 layer")  # fmt: skip
    return layers, residual, dropout


def check_layer_count(where: str, stack: Stack, name: str, value) -> None:
    """Raises unless ``value`` (a stack's params or carry) is a tuple with one entry per layer.

    ``zip`` would otherwise pair layers with entries silently, dropping the extra ones.
    """
    n = len(stack.layers)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{where}: {name} of a {n}-layer Stack must be a tuple of {n}; got {type(value).__name__}")
    if len(value) != n:
        raise ValueError(
            f"{where}: {name} must hold one entry per layer: the Stack has {n} layers; got {len(value)} entries"
        )


class _StackFields(NamedTuple):
    layers: tuple
    residual: bool = False
    dropout: float = 0.0


class Stack(_StackFields):
    """A deep RNN: layer l reads the outputs of layer l-1.

    ``y^0 = x``; ``y^l = layer_l(y^{l-1}) [+ y^{l-1} if residual and l >= 2]``, and during training
    dropout with rate ``dropout`` is applied to ``y^l`` for ``l < L`` (between layers, Zaremba et
    al. 2014). Params and carries are tuples with one entry per layer.

    Constructing one checks its arguments as :func:`stack` does (so does ``_replace``, and so does
    JAX rebuilding it as a pytree node from its leaves); ``layers`` is stored as a tuple.

    Raises:
        TypeError / ValueError: see :func:`stack`.
    """

    __slots__ = ()

    def __new__(cls, layers, residual: bool = False, dropout: float = 0.0):
        return super().__new__(cls, *_check_stack("Stack", layers, residual, dropout))

    def _replace(self, **changes) -> Stack:
        return type(self)(**{**self._asdict(), **changes})

    def init(self, key, input_size, dtype=jnp.float32) -> tuple:
        keys = jax.random.split(key, len(self.layers))
        sizes = [input_size] + [layer.output_size for layer in self.layers[:-1]]
        return tuple(layer.init(k, n, dtype) for layer, k, n in zip(self.layers, keys, sizes))

    def initial_carry(self, params, batch_shape=()) -> tuple:
        check_layer_count("Stack.initial_carry", self, "params", params)
        return tuple(layer.initial_carry(p, batch_shape) for layer, p in zip(self.layers, params))

    def apply(self, params, carry, x):
        """One step through every layer (cells only; no dropout): ``(carry, x) -> (carry, y)``.

        ``params`` and ``carry`` are tuples with one entry per layer; ``x (..., I)``, ``y (..., H_L)``.
        """
        where = "Stack.apply"
        if not all(isinstance(layer, Cell) for layer in self.layers):
            raise TypeError(f"{where}: a stack with bidirectional layers cannot run one step at a time")
        check_layer_count(where, self, "params", params)
        check_layer_count(where, self, "carry", carry)
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
            when it is given a ``dropout_key``; 0 for a one-layer stack.

    Example:
        >>> from rnnlab import cells, layers
        >>> deep = layers.stack([cells.lstm(8), cells.lstm(8)], residual=True, dropout=0.1)
        >>> deep.output_size
        8
    """
    return Stack(*_check_stack("stack", layers, residual, dropout))


def check_params(where: str, layer, params, input_size: int, path: str = "params") -> None:
    """Raises unless ``params`` fit ``layer`` (a cell, :class:`Bidirectional` or :class:`Stack`) for
    inputs of width ``input_size``: one entry per stack layer, each cell's params with the structure
    and shapes of its ``init`` (see :func:`rnnlab.cells._base.check_params`). Shapes only: it runs
    before tracing, and on tracers under ``jit`` / ``vmap``.
    """
    if isinstance(layer, Stack):
        check_layer_count(where, layer, path, params)
        for k, (sub, p) in enumerate(zip(layer.layers, params)):
            check_params(where, sub, p, input_size, f"{path}[{k}]")
            input_size = sub.output_size
    elif isinstance(layer, Bidirectional):
        if not isinstance(params, BidirectionalParams):
            raise TypeError(
                f"{where}: {path} of a Bidirectional layer must be BidirectionalParams(forward, backward); "
                f"got {type(params).__name__}"
            )
        check_params(where, layer.forward, params.forward, input_size, f"{path}.forward")
        check_params(where, layer.backward, params.backward, input_size, f"{path}.backward")
    else:
        _base.check_params(where, layer, params, input_size, path)


def input_size(layer, params) -> int | None:
    """The input width ``params`` expect, when it can be read off them (else None)."""
    if isinstance(layer, Stack):
        return input_size(layer.layers[0], params[0]) if isinstance(params, tuple) and params else None
    if isinstance(layer, Bidirectional):
        return input_size(layer.forward, params.forward) if isinstance(params, BidirectionalParams) else None
    kernel = getattr(params, "input_kernel", None)
    return int(kernel.shape[0]) if getattr(kernel, "ndim", 0) >= 1 else None
