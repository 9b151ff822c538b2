"""Gradient-flow diagnostics: how much error reaches step t from a loss at the end.

All of them run inside ``jit`` with one backward pass: :func:`rnnlab.unroll` adds a zero
perturbation ``e_t`` to the carry after every step, and ``dL/de_t = dL/d(carry_t)`` is the total
error arriving at step t (for an LSTM, separately along h and along c). The output ``y_t = h_t``
sees the perturbation of ``h_t``; ``c_t`` reaches the loss only through later steps, because
``h_t`` is computed from ``c_t`` inside step t (so ``dL/dc_T`` of the last step is zero).

Example:
    >>> import jax, jax.numpy as jnp
    >>> import rnnlab
    >>> from rnnlab import diagnostics
    >>> cell = rnnlab.cells.elman(8)
    >>> params = cell.init(jax.random.key(0), 2)
    >>> xs = jax.random.normal(jax.random.key(1), (4, 30, 2))
    >>> norms = diagnostics.carry_gradient_norms(cell, params, xs, lambda ys, final: jnp.sum(ys[:, -1]))
    >>> norms.hidden.shape  # (T,), averaged over the batch
    (30,)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rnnlab import initializers
from rnnlab.cells import Cell
from rnnlab.unroll import unroll


def carry_gradients(cell: Cell, params, xs: jax.Array, loss_fn: Callable, **unroll_kwargs):
    """``dL/d(carry_t)`` for every step t, shaped like the carries of ``unroll(..., return_carries=True)``.

    Args:
        cell: a :class:`~rnnlab.cells.Cell` whose output is its carry's ``hidden``.
        params: its params.
        xs: inputs, as for :func:`rnnlab.unroll`.
        loss_fn: ``loss_fn(ys, final_carry) -> scalar``.
        **unroll_kwargs: passed to :func:`rnnlab.unroll` (``lengths``, ``time_major``, ...).

    Returns:
        A carry pytree whose leaves have the time axis of ``ys``: e.g. ``LSTMCarry(hidden (B, T, H),
        cell (B, T, H))``: ``hidden[:, t]`` is dL/dh_t and ``cell[:, t]`` is dL/dc_t. Past a
        sequence's length (``lengths``) there is no step t and the gradient is zero.
    """
    carries = jax.eval_shape(lambda: unroll(cell, params, xs, return_carries=True, **unroll_kwargs)[2])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), carries)

    def loss_of_offsets(offsets):
        final, ys = unroll(cell, params, xs, carry_offsets=offsets, **unroll_kwargs)
        return loss_fn(ys, final)

    return jax.grad(loss_of_offsets)(zeros)


def carry_gradient_norms(cell: Cell, params, xs: jax.Array, loss_fn: Callable, **unroll_kwargs):
    """``||dL/d(carry_t)||`` (L2 over units) averaged over the batch: each leaf has shape ``(T,)``.

    Index t is the step; the lag from the last step is ``T - 1 - t`` (reverse the array to plot
    against the lag).
    """
    grads = carry_gradients(cell, params, xs, loss_fn, **unroll_kwargs)
    time_axis = 0 if (xs.ndim == 2 or unroll_kwargs.get("time_major", False)) else 1

    def norms(g):
        n = jnp.linalg.norm(g, axis=-1)
        return n if n.ndim == 1 else jnp.mean(n, axis=1 - time_axis)

    return jax.tree.map(norms, grads)


def hidden_jacobian_norms(cell: Cell, params, xs: jax.Array, **unroll_kwargs) -> jax.Array:
    """``||dh_T/dh_t||_2`` (largest singular value) for every t of one unbatched sequence ``xs (T, I)``.

    The Jacobian is taken with respect to a perturbation of ``h_t`` alone (for an LSTM, ``c_t``
    held fixed), so it is the product of the step Jacobians along the hidden path:
    ``dh_T/dh_t = prod_{k=t+1..T} dh_k/dh_{k-1}``. The last entry is 1 (``dh_T/dh_T = I``).

    Returns:
        ``(T,)`` norms.
    """
    if xs.ndim != 2:
        raise ValueError(f"hidden_jacobian_norms: xs must be one sequence (T, I); got shape {tuple(xs.shape)}")
    carries = jax.eval_shape(lambda: unroll(cell, params, xs, return_carries=True, **unroll_kwargs)[2])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), carries)

    def last_hidden(hidden_offsets):
        final, _ = unroll(cell, params, xs, carry_offsets=zeros._replace(hidden=hidden_offsets), **unroll_kwargs)
        return final.hidden

    jac = jax.jacrev(last_hidden)(zeros.hidden)  # (H, T, H): d h_T[i] / d h_t[j]
    return jnp.linalg.norm(jnp.moveaxis(jac, 1, 0), ord=2, axis=(1, 2))


def recurrent_spectral_radius(params) -> jax.Array:
    """Spectral radius of each ``(H, H)`` gate block of ``params.recurrent_kernel``: ``(n_gates,)``."""
    u = params.recurrent_kernel
    h = u.shape[0]
    return jnp.stack([initializers.spectral_radius(u[:, k * h : (k + 1) * h]) for k in range(u.shape[1] // h)])
