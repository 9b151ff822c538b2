"""A plain-Python reference unroller, written for clarity and used to test :func:`rnnlab.unroll`.

It loops over sequences one at a time and over their steps with ``cell.apply`` (no hoisting, no
scan, no masking tricks), so it shares no code path with the fast unroller except the cell itself.
It is differentiable, slow, and not meant for training.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab.cells import Cell
from rnnlab.layers import Bidirectional, BidirectionalCarry, Stack


def _one_sequence(layer, params, xs, carry0, length, resets, reverse, truncation):
    """Runs one unbatched sequence ``xs (T, I)``; returns (final carry, ys (T, H), carries list)."""
    T = xs.shape[0]
    order = list(range(length))
    if reverse:
        order = order[::-1]
    ys = [None] * T
    carries = [None] * T
    carry = carry0
    for n, t in enumerate(order):
        if truncation is not None and n > 0 and n % truncation == 0:
            carry = jax.lax.stop_gradient(carry)
        # A segment starts at every t with resets[t]; walking backwards it ends after t.
        boundary = resets is not None and (
            bool(resets[t + 1]) if reverse and t + 1 < length else (not reverse and bool(resets[t]))
        )
        if boundary:
            carry = carry0
        carry, y = layer.apply(params, carry, xs[t])
        ys[t] = y
        carries[t] = carry
    width = layer.output_size
    for t in range(T):
        if ys[t] is None:  # past the sequence's end
            ys[t] = jnp.zeros((width,), xs.dtype)
            carries[t] = carry
    return carry, jnp.stack(ys), carries


def _stack_carries(carries):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *carries)


def _layerwise(layer, params, xs, carry, lengths, resets, reverse, truncation):
    """Reference for layers that cannot step (bidirectional, stacks holding them): layer by layer."""
    if isinstance(layer, Bidirectional):
        f_final, f_ys, f_c = _batched(
            layer.forward, params.forward, xs, carry.forward, lengths, resets, reverse, truncation
        )
        b_final, b_ys, b_c = _batched(
            layer.backward, params.backward, xs, carry.backward, lengths, resets, not reverse, truncation
        )
        ys = jnp.concatenate([f_ys, b_ys], -1) if layer.merge == "concat" else f_ys + b_ys
        return BidirectionalCarry(f_final, b_final), ys, BidirectionalCarry(f_c, b_c)
    finals, all_c = [], []
    y = xs
    for l, (sub, p, c) in enumerate(zip(layer.layers, params, carry)):
        final, out, cs = _batched(sub, p, y, c, lengths, resets, reverse, truncation)
        if layer.residual and l > 0:
            out = out + jnp.where(_valid_mask(y.shape[:2], lengths)[..., None], y, 0)
        finals.append(final)
        all_c.append(cs)
        y = out
    return tuple(finals), y, tuple(all_c)


def _valid_mask(bt_shape, lengths):
    B, T = bt_shape
    L = np.full(B, T) if lengths is None else np.asarray(lengths)
    return jnp.asarray(np.arange(T)[None, :] < L[:, None])


def _batched(layer, params, xs, carry, lengths, resets, reverse, truncation):
    """``xs (B, T, I)``: loops over the batch; returns (final carry, ys (B, T, H), carries)."""
    steppable = isinstance(layer, Cell) or (isinstance(layer, Stack) and all(isinstance(s, Cell) for s in layer.layers))
    if not steppable:
        return _layerwise(layer, params, xs, carry, lengths, resets, reverse, truncation)
    B, T = xs.shape[0], xs.shape[1]
    finals, ys, carries = [], [], []
    for b in range(B):
        c0 = jax.tree.map(lambda a, b=b: a[b], carry)
        length = T if lengths is None else int(lengths[b])
        final, y, cs = _one_sequence(
            layer, params, xs[b], c0, length, None if resets is None else resets[b], reverse, truncation
        )
        finals.append(final)
        ys.append(y)
        carries.append(_stack_carries(cs))
    return _stack_carries(finals), jnp.stack(ys), _stack_carries(carries)


def reference_unroll(
    cell,
    params,
    xs,
    *,
    initial_carry=None,
    lengths=None,
    resets=None,
    time_major: bool = False,
    reverse: bool = False,
    truncation: int | None = None,
    return_carries: bool = False,
):
    """The same contract as :func:`rnnlab.unroll` (without ``unroll``, ``remat`` or dropout),
    computed step by step in Python.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rnnlab
        >>> cell = rnnlab.cells.elman(3)
        >>> p = cell.init(jax.random.key(0), 2)
        >>> xs = jax.random.normal(jax.random.key(1), (4, 2))
        >>> fast = rnnlab.unroll(cell, p, xs)[1]
        >>> slow = rnnlab.reference_unroll(cell, p, xs)[1]
        >>> bool(jnp.allclose(fast, slow, atol=1e-6))
        True
    """
    batched = xs.ndim == 3
    if not batched:
        xs = xs[None]
        resets = None if resets is None else resets[None]
        lengths = None if lengths is None else jnp.reshape(lengths, (1,))
        initial_carry = None if initial_carry is None else jax.tree.map(lambda a: a[None], initial_carry)
    elif time_major:
        xs = jnp.swapaxes(xs, 0, 1)
        resets = None if resets is None else resets.T
    if resets is not None:
        resets = np.asarray(resets)
    if initial_carry is None:
        initial_carry = cell.initial_carry(params, (xs.shape[0],))
    final, ys, carries = _batched(cell, params, xs, initial_carry, lengths, resets, reverse, truncation)
    if not batched:
        final = jax.tree.map(lambda a: a[0], final)
        ys = ys[0]
        carries = jax.tree.map(lambda a: a[0], carries)
    elif time_major:
        ys = jnp.swapaxes(ys, 0, 1)
        carries = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), carries)
    return (final, ys, carries) if return_carries else (final, ys)
