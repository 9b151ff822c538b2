"""Flax modules around rnnlab layers: :class:`RNN` for NNX and :class:`LinenRNN` for linen.

They hold the params of any rnnlab :class:`~rnnlab.cells.Cell`, :class:`~rnnlab.layers.Bidirectional`
or :class:`~rnnlab.layers.Stack`, keeping rnnlab's NamedTuple structure (each array leaf becomes
an ``nnx.Param``; in linen the whole pytree is one param entry), and run them with
:func:`rnnlab.unroll`. The cell itself stays a pure function bundle; the module only owns the
arrays, so Flax optimizers, ``nnx.grad``, ``nnx.jit``, checkpointing and sharding see ordinary params.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen, nnx

from rnnlab.cells import Cell
from rnnlab.layers import Bidirectional, Stack, input_size
from rnnlab.unroll import unroll


def _check_layer(where: str, cell) -> None:
    if not isinstance(cell, (Cell, Bidirectional, Stack)):
        raise TypeError(f"{where}: cell must be an rnnlab Cell, Bidirectional or Stack; got {type(cell).__name__}")


def _is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


class RNN(nnx.Module):
    """An NNX module that runs an rnnlab layer over sequences.

    ``self.params`` has the structure of ``cell.init(...)`` (e.g. :class:`~rnnlab.cells.LSTMParams`,
    or a tuple of them for a stack) with every array wrapped in an ``nnx.Param``;
    :meth:`param_values` unwraps them. Calling the module is ``rnnlab.unroll(cell, params, xs, ...)``.

    Args:
        cell: an rnnlab ``Cell``, ``Bidirectional`` or ``Stack``.
        input_size: I, the width of the inputs; needed unless ``params`` is given.
        rngs: ``nnx.Rngs``; the params are drawn with ``cell.init(rngs.params(), input_size, dtype)``.
        dtype: the params' dtype (inputs must have the same dtype).
        params: existing rnnlab params to hold instead of initializing, e.g. weights converted by
            :mod:`rnnlab.interop`; ``rngs`` is then not needed.

    Example:
        A GRU encoder with a linear head, trained for one step with ``nnx.grad`` and ``nnx.Optimizer``:

        >>> import jax, jax.numpy as jnp, optax, rnnlab
        >>> from flax import nnx
        >>> from rnnlab.flax_module import RNN
        >>> class Classifier(nnx.Module):
        ...     def __init__(self, rngs):
        ...         self.rnn = RNN(rnnlab.cells.gru(8), input_size=3, rngs=rngs)
        ...         self.head = nnx.Linear(8, 2, rngs=rngs)
        ...     def __call__(self, xs, lengths):
        ...         carry, _ = self.rnn(xs, lengths=lengths)
        ...         return self.head(carry.hidden)
        >>> model = Classifier(nnx.Rngs(0))
        >>> type(model.rnn.params).__name__, model.rnn.params.input_kernel.shape
        ('GRUParams', (3, 24))
        >>> xs = jax.random.normal(jax.random.key(1), (4, 5, 3))
        >>> lengths, labels = jnp.array([5, 3, 2, 5]), jnp.array([0, 1, 1, 0])
        >>> def loss_fn(model):
        ...     logits = model(xs, lengths)
        ...     return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        >>> optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
        >>> @nnx.jit
        ... def train_step(model, optimizer):
        ...     loss, grads = nnx.value_and_grad(loss_fn)(model)
        ...     optimizer.update(model, grads)
        ...     return loss
        >>> before = model.rnn.params.recurrent_kernel[...]
        >>> loss0 = train_step(model, optimizer)
        >>> bool(jnp.any(model.rnn.params.recurrent_kernel[...] != before))
        True
        >>> bool(loss_fn(model) < loss0)
        True
    """

    def __init__(
        self,
        cell,
        input_size: int | None = None,
        *,
        rngs: nnx.Rngs | None = None,
        dtype=jnp.float32,
        params: Any = None,
    ):
        where = "RNN"
        _check_layer(where, cell)
        if params is None:
            if input_size is None or rngs is None:
                raise ValueError(f"{where}: pass input_size and rngs to initialize params, or params to load them")
            params = cell.init(rngs.params(), input_size, dtype)
        else:
            leaves = jax.tree.leaves(params)
            if not leaves or any(not hasattr(a, "shape") for a in leaves):
                raise ValueError(
                    f"{where}: params must be a pytree of arrays, as from cell.init; got {type(params).__name__}"
                )
            n_in = _width(cell, params)
            if input_size is not None and input_size != n_in:
                raise ValueError(f"{where}: input_size={input_size} but params expect {n_in} input features")
            want = jax.eval_shape(lambda: cell.init(jax.random.key(0), n_in, leaves[0].dtype))
            if jax.tree.structure(want) != jax.tree.structure(params):
                raise ValueError(
                    f"{where}: params must have the structure of cell.init(...) {jax.tree.structure(want)}; "
                    f"got {jax.tree.structure(params)}"
                )
            for got, exp in zip(jax.tree.leaves(params), jax.tree.leaves(want)):
                if tuple(got.shape) != tuple(exp.shape):
                    raise ValueError(
                        f"{where}: params do not fit the cell: a leaf has shape {tuple(got.shape)} where "
                        f"cell.init gives {tuple(exp.shape)}"
                    )
        self.cell = cell
        self.params = nnx.data(jax.tree.map(nnx.Param, params))

    def param_values(self):
        """The params as plain arrays, in the structure of ``cell.init``."""
        return jax.tree.map(lambda v: v[...], self.params, is_leaf=_is_variable)

    def initial_carry(self, batch_shape: tuple[int, ...] = ()):
        """Zero carry of the layer for ``batch_shape``."""
        return self.cell.initial_carry(self.param_values(), batch_shape)

    def __call__(self, xs: jax.Array, **unroll_kwargs):
        """``rnnlab.unroll(cell, params, xs, **unroll_kwargs)``: returns ``(final_carry, ys)``."""
        return unroll(self.cell, self.param_values(), xs, **unroll_kwargs)


def _width(cell, params) -> int:
    n_in = input_size(cell, params)
    if n_in is None:
        raise ValueError(f"RNN: cannot read the input width off params of type {type(params).__name__}")
    return n_in


class LinenRNN(linen.Module):
    """A linen module that runs an rnnlab layer over sequences.

    The rnnlab params live under the single param name ``"cell"`` with their NamedTuple structure;
    the input width is read off ``xs`` at ``init``.

    Attributes:
        cell: an rnnlab ``Cell``, ``Bidirectional`` or ``Stack``.
        dtype: the params' dtype.

    Example:
        >>> import jax, jax.numpy as jnp, rnnlab
        >>> from rnnlab.flax_module import LinenRNN
        >>> model = LinenRNN(rnnlab.stack([rnnlab.cells.lstm(4), rnnlab.cells.lstm(4)]))
        >>> xs = jnp.ones((2, 5, 3))
        >>> variables = model.init(jax.random.key(0), xs)
        >>> variables["params"]["cell"][1].recurrent_kernel.shape
        (4, 16)
        >>> carry, ys = model.apply(variables, xs, lengths=jnp.array([5, 2]))
        >>> ys.shape
        (2, 5, 4)
    """

    cell: Any
    dtype: Any = jnp.float32

    @linen.compact
    def __call__(self, xs: jax.Array, **unroll_kwargs):
        """``rnnlab.unroll(cell, params, xs, **unroll_kwargs)``: returns ``(final_carry, ys)``."""
        _check_layer("LinenRNN", self.cell)
        params = self.param("cell", lambda key: self.cell.init(key, xs.shape[-1], self.dtype))
        return unroll(self.cell, params, xs, **unroll_kwargs)
