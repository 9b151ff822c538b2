r"""The fused unroll: a scan whose backward pass computes the weight gradients after the loop.

Autodiff through ``lax.scan`` accumulates every weight gradient inside the reverse loop: each step
adds ``x_t^T dxp_t`` to dW and ``h_{t-1}^T drec_t`` to dU, four small matmuls and two
read-modify-writes of whole weight matrices per step. The gradients are sums over time, so
:func:`fused_scan` defers them: its reverse loop carries only what is sequential,

.. math::

    (dcarry_{t-1}, dxp_t, drec_t) = \mathrm{vjp}(combine)(dcarry_t + dy_t), \qquad
    dh_{t-1} \mathrel{+}= drec_t\, U^\top,

and after the loop one GEMM over all ``T * B`` rows gives ``dU = H_{prev}^\top dREC`` (shape
``(H, G)``), and the VJP of the input projection over the whole sequence gives ``dW``, ``db`` and
``dxs`` (two more GEMMs). Weights used inside ``combine`` (peepholes, layer-norm gains, the GRU's
recurrent bias) are small and stay accumulated in the loop.

It applies to any :class:`~rnnlab.cells.Cell` with ``combine`` (the step after its recurrent
matmul ``rec = carry.hidden @ params.recurrent_kernel``), and computes the same gradients as autodiff
through the plain scan, to float rounding; the test suite checks both against each other and against
finite differences for every such cell and option. Being a ``jax.custom_vjp``, it supports
reverse-mode differentiation only; forward mode (``jax.jvp``, ``jax.jacfwd``) needs
``unroll(..., fused=False)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnlab.cells import Cell


def supports(cell) -> bool:
    """Whether ``cell`` can run on the fused path: a :class:`Cell` with ``combine``."""
    return isinstance(cell, Cell) and cell.combine is not None


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def fused_scan(cell: Cell, params, xs: jax.Array, carry0, *, hoist_input: bool, unroll: int = 1):
    """Runs ``cell`` over time-major ``xs (T, B, I)`` from ``carry0``; returns ``(final_carry, ys (T, B, H))``.

    Same values as scanning ``cell.step``; differentiable in ``params``, ``xs`` and ``carry0`` with the
    fused backward pass described in the module docstring. ``hoist_input`` computes ``xp = project(xs)``
    for all steps before the loop (one GEMM); otherwise each step projects its own input.

    What the forward pass keeps for the backward pass, per step: the previous carry without its
    hidden state when the step's output ``y`` is its new hidden state (every built-in cell; then
    ``h_{t-1}`` is read back from ``ys``), and ``xp + rec`` for an ``additive`` cell, ``xp`` and
    ``rec`` otherwise. The backward loop writes each step's cotangents of those pre-activations over
    their residuals in place, so it allocates no ``(T, B, G)`` output buffer of its own.
    """
    additive = cell.additive
    y_is_hidden = []  # set while tracing the forward step; read by the backward pass

    def forward(params, xs, carry0, save: bool):
        kernel = params.recurrent_kernel
        xp_all = cell.project(params, xs) if hoist_input else xs

        T = xp_all.shape[0]

        # Each step reads the next step's input at its end and carries it. Scanning over xp_all
        # directly lets XLA:CPU fuse the per-step dynamic slice into the gate math, and that fused
        # loop measured 17 us a step at size C against ~1.5 us for the same math on a carried array.
        def body(state, t):
            carry, inp = state
            xp = inp if hoist_input else cell.project(params, inp)
            rec = carry.hidden @ kernel
            new, y = cell.combine(params, carry, xp, rec)
            nxt = jax.lax.dynamic_index_in_dim(xp_all, jnp.minimum(t + 1, T - 1), keepdims=False)
            if not save:
                return (new, nxt), (y, None)
            if not y_is_hidden:
                y_is_hidden.append(y is new.hidden)
            kept = carry._replace(hidden=None) if y_is_hidden[0] else carry
            return (new, nxt), (y, (kept, xp + rec if additive else (xp, rec)))

        (final, _), out = jax.lax.scan(body, (carry0, xp_all[0]), jnp.arange(T), unroll=unroll)
        return final, out

    @jax.custom_vjp
    def run(params, xs, carry0):
        final, (ys, _) = forward(params, xs, carry0, save=False)
        return final, ys

    def run_fwd(params, xs, carry0):
        final, (ys, saved) = forward(params, xs, carry0, save=True)
        h_prev = jnp.concatenate([carry0.hidden[None], ys[:-1]]) if y_is_hidden[0] else None
        return (final, ys), (params, xs, h_prev, saved)

    def run_bwd(res, cotangents):
        params, xs, h_prev, (carries, pre) = res
        if h_prev is not None:
            carries = carries._replace(hidden=h_prev)
        d_final, dys = cotangents
        # Transposed once, outside the loop: on XLA:CPU a per-step dot that contracts U's gate axis
        # directly measured slower than one against this transposed copy.
        kernel_t = params.recurrent_kernel.T
        T = dys.shape[0]

        def combine_additive(params, carry, z):
            return cell.combine(params, carry, z, jnp.zeros_like(z))

        def read(buf, t):
            return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, t, keepdims=False), buf)

        def body(acc, inp):
            # ``pre`` rides in the carry and step t's cotangents overwrite step t's residuals in
            # place: the forward's (T, B, G) buffers are dead after this read, so the loop needs no
            # fresh, zero-filled output buffer of its own. Step t-1's residuals are read here, from
            # the buffers as updated, so that no read of the old buffers can follow the write (which
            # would make XLA copy whole buffers every step), and the next step's math reads a small
            # contiguous array instead of slicing a large one.
            dcarry, dparams, pre, pre_t = acc
            carry, dy, t = inp
            if additive:  # one cotangent serves both xp and rec
                _, vjp = jax.vjp(combine_additive, params, carry, pre_t)
                dp, dcarry_prev, dz = vjp((dcarry, dy))
                drec = out = dz
            else:
                _, vjp = jax.vjp(cell.combine, params, carry, *pre_t)
                dp, dcarry_prev, dxp, drec = vjp((dcarry, dy))
                out = (dxp, drec)
            pre = jax.tree.map(lambda a, o: jax.lax.dynamic_update_index_in_dim(a, o, t, 0), pre, out)
            dcarry_prev = dcarry_prev._replace(hidden=dcarry_prev.hidden + drec @ kernel_t)
            return (dcarry_prev, _add(dparams, dp), pre, read(pre, jnp.maximum(t - 1, 0))), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        init = (d_final, zeros, pre, read(pre, T - 1))
        (dcarry0, dparams, outs, _), _ = jax.lax.scan(
            body, init, (carries, dys, jnp.arange(T)), reverse=True, unroll=unroll
        )
        dxps, drecs = (outs, outs) if additive else outs
        h_prev = carries.hidden
        d_kernel = h_prev.reshape(-1, h_prev.shape[-1]).T @ drecs.reshape(-1, drecs.shape[-1])
        # Over (T * B, I) rows: XLA:CPU then contracts the rows in place (for 3-D operands it
        # copied a transposed dxps first).
        _, project_vjp = jax.vjp(cell.project, params, xs.reshape(-1, xs.shape[-1]))
        dp_project, dxs = project_vjp(dxps.reshape(-1, dxps.shape[-1]))
        dxs = dxs.reshape(xs.shape)
        dparams = _add(dparams, dp_project)
        dparams = dparams._replace(recurrent_kernel=dparams.recurrent_kernel + d_kernel)
        return dparams, dxs, dcarry0

    run.defvjp(run_fwd, run_bwd)
    return run(params, xs, carry0)
