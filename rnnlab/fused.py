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

On CPU the batch can also be split into independent lanes that advance side by side in the same loops
(``lanes``, see :func:`default_lanes`), so that one lane's pointwise math overlaps another's matmul.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnlab import precision
from rnnlab.cells import Cell


def supports(cell) -> bool:
    """Whether ``cell`` can run on the fused path: a :class:`Cell` with ``combine``."""
    return isinstance(cell, Cell) and cell.combine is not None


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def lane_sizes(batch: int, lanes: int) -> list[int]:
    """How :func:`fused_scan` splits ``batch`` rows over ``lanes`` lanes: as evenly as possible."""
    q, r = divmod(batch, lanes)
    return [q + (k < r) for k in range(lanes)]


def default_lanes(batch: int, hidden_size: int, gate_width: int, backend: str | None = None) -> int:
    """The lanes :func:`rnnlab.unroll` uses when not told: 2 on CPU for mid-sized steps, else 1.

    On XLA:CPU a step's small elementwise fusions run one after another on one core while the
    other idles; two independent half-batch recurrences in the same loop let one lane's pointwise
    math overlap the other's matmul. On a 2-core CPU (``bench/RESULTS.md``) the LSTM's training step
    gained 9-13% where the per-step recurrent matmul ``(B, H) @ (H, G)`` is 8-20 MFLOP (H = 256 at
    B = 16 and 32) and was within a few percent either way elsewhere, losing below (per-op overhead
    doubles: -20% at B = 16, H = 16) and above (the matmul alone keeps both cores busy); so two
    lanes are used for ``16 <= B`` and ``8e6 <= 2 B H G <= 2e7``.
    """
    backend = jax.default_backend() if backend is None else backend
    flops = 2 * batch * hidden_size * gate_width
    return 2 if backend == "cpu" and batch >= 16 and 8e6 <= flops <= 2e7 else 1


def default_prefetch(batch: int, hidden_size: int, gate_width: int, lanes: int = 1, backend: str | None = None) -> bool:
    """Whether :func:`fused_scan`'s forward steps carry the next step's input (``prefetch``) by default.

    A step that slices its own input from the scanned ``xs`` puts that slice on its critical path:
    XLA:CPU fuses it into the gate math when the projection is hoisted (17 us a step at size C
    against ~1.5 us for the same math on a carried array), and the per-step projection waits for
    it. Carried, the slice is done one step ahead. On a 2-core CPU (``bench/RESULTS.md``, medians)
    the forward alone at size C (B = 4, one lane) took 3.5 ms with the prefetch against 6.0-7.5
    without for the GRU, 4.4-4.7 against 5.4-5.9 for the LSTM, and at size B 74 against 81 ms for
    the GRU. But the carried input costs two small copies a step, which dominate a tiny step (the
    forward alone of an Elman RNN at B = 1, H = 8: 0.44 ms with the prefetch, 0.11 ms without;
    training steps there and at the headline size 0-10% faster without), and with two lanes one
    lane's slice overlaps the other's work anyway (size A: the LSTM's forward alone 22 -> 18 ms
    without it, the GRU's training step 2-7% faster, the LSTM's the same). So on CPU it is on only
    for one lane with a recurrent matmul ``2 B H G`` of at least 1 MFLOP; on other backends (not
    measured there) always.
    """
    backend = jax.default_backend() if backend is None else backend
    return backend != "cpu" or (lanes == 1 and 2 * batch * hidden_size * gate_width >= 1e6)


def _split(tree, sizes, axis: int) -> list:
    if len(sizes) == 1:
        return [tree]
    cuts = [sum(sizes[: k + 1]) for k in range(len(sizes) - 1)]
    leaves, treedef = jax.tree.flatten(tree)
    parts = [jnp.split(a, cuts, axis=axis) for a in leaves]
    return [treedef.unflatten([p[k] for p in parts]) for k in range(len(sizes))]


def _join(trees: list, axis: int):
    if len(trees) == 1:
        return trees[0]
    return jax.tree.map(lambda *a: jnp.concatenate(a, axis=axis), *trees)


def fused_scan(
    cell: Cell,
    params,
    xs: jax.Array,
    carry0,
    *,
    hoist_input: bool,
    unroll: int = 1,
    lanes: int = 1,
    prefetch: bool | None = None,
):
    """Runs ``cell`` over time-major ``xs (T, B, I)`` from ``carry0``; returns ``(final_carry, ys (T, B, H))``.

    Same values as scanning ``cell.step``; differentiable in ``params``, ``xs`` and ``carry0`` with the
    fused backward pass described in the module docstring. ``hoist_input`` computes ``xp = project(xs)``
    for all steps before the loop (one GEMM); otherwise each step projects its own input.

    ``lanes`` splits the batch into that many independent recurrences (rows ``lane_sizes(B, lanes)``)
    that advance side by side in the same loops, each with its own matmuls and buffers, so that
    XLA can run one lane's pointwise math while another's matmul runs (see :func:`default_lanes`).
    Every row sees the same math as with one lane; only the matmul shapes, and so float rounding,
    differ.

    Called inside ``precision.matmul_dtype(dtype)`` (as :func:`rnnlab.unroll` does for its
    ``matmul_dtype``), the recurrent matmuls of both loops and the GEMMs after the backward loop
    round their operands to ``dtype`` (:mod:`rnnlab.precision`); the setting in force when the
    forward pass is traced also holds for the backward pass, which is traced later.

    ``prefetch`` makes each forward step read the next step's input at its end and carry it, instead
    of slicing its own input from ``xs`` (see :func:`default_prefetch`, the default); the values are
    the same either way.

    What the forward pass keeps for the backward pass, per step: the previous carry without its
    hidden state when the step's output ``y`` is its new hidden state (every built-in cell; then
    ``h_{t-1}`` is read back from ``ys``), and ``xp + rec`` for an ``additive`` cell, ``xp`` and
    ``rec`` otherwise. With ``hoist_input``, the saved ``xp`` is the projection itself, and an
    additive cell's ``xp + rec`` overwrites it in place step by step (with the prefetch and
    ``unroll=1``), so that the forward allocates no zero-filled ``(T, B, G)`` buffer for it (size B,
    LSTM on CPU, hoisted: 184 -> 132 MB of XLA temporaries, ``bench/RESULTS.md``). The backward loop writes
    each step's cotangents of those pre-activations over their residuals in place, so it allocates
    no ``(T, B, G)`` output buffer of its own.
    """
    additive = cell.additive
    y_is_hidden = []  # set while tracing the forward step; read by the backward pass
    sizes = lane_sizes(xs.shape[1], lanes)
    # The matmul dtype in force now, while the forward is traced; the backward pass is traced later
    # (when jax.grad transposes), outside the caller's ``precision.matmul_dtype`` block.
    low = precision.current()
    if prefetch is None:
        prefetch = default_prefetch(max(sizes), *params.recurrent_kernel.shape, len(sizes))

    def forward(params, xs, carry0, save: bool):
        kernel = params.recurrent_kernel if low is None else params.recurrent_kernel.astype(low)
        xp_all = cell.project(params, xs) if hoist_input else xs
        T = xp_all.shape[0]
        xp_lanes = _split(xp_all, sizes, 1)
        # Saving for the backward pass with the input hoisted, an additive cell's pre-activations
        # ``xp + rec`` overwrite the projection in place, step by step (the loop carries it), and a
        # non-additive cell's saved ``xp`` is the projection itself: neither needs a fresh (T, B, G)
        # output buffer, which XLA would zero-fill first. In place only with the prefetch, whose
        # read of the next input follows the write (a read of step t before the write to step t
        # made XLA copy the whole buffer every step: size B, LSTM on CPU, 1.0 s against 0.35 s),
        # and without unrolling (XLA then fuses step t+1's read into step t+1's gate math, which
        # follows the write, and copies the buffer per step again: size A, 124-144 against 105-109 ms).
        in_place = save and hoist_input and additive and prefetch and unroll == 1
        keep_xp = save and hoist_input and not additive

        # With prefetch, the scan runs over t and each step carries the next step's input
        # (default_prefetch says why); otherwise it runs over the lanes' inputs.
        def body(state, scanned):
            new_state, outs = [], []
            for k, ((carry, nxt, buf), xp_lane) in enumerate(zip(state, xp_lanes)):
                inp = nxt if prefetch else scanned[k]
                xp = inp if hoist_input else cell.project(params, inp)
                rec = precision.matmul(carry.hidden, kernel, low)
                new, y = cell.combine(params, carry, xp, rec)
                if in_place:
                    buf = jax.lax.dynamic_update_index_in_dim(buf, xp + rec, scanned, 0)
                if prefetch:  # read after the write, so that XLA keeps the update in place
                    src = buf if in_place else xp_lane
                    nxt = jax.lax.dynamic_index_in_dim(src, jnp.minimum(scanned + 1, T - 1), keepdims=False)
                new_state.append((new, nxt, buf))
                if not save:
                    outs.append((y, None))
                    continue
                if not y_is_hidden:
                    y_is_hidden.append(y is new.hidden)
                kept = carry._replace(hidden=None) if y_is_hidden[0] else carry
                pre = None if in_place else rec if keep_xp else xp + rec if additive else (xp, rec)
                outs.append((y, (kept, pre)))
            return tuple(new_state), tuple(outs)

        state0 = tuple(
            (c, x[0] if prefetch else None, x if in_place else None) for c, x in zip(_split(carry0, sizes, 0), xp_lanes)
        )
        finals, outs = jax.lax.scan(body, state0, jnp.arange(T) if prefetch else tuple(xp_lanes), unroll=unroll)
        saved = [s for _, s in outs]
        if in_place:
            saved = [(kept, buf) for (kept, _), (_, _, buf) in zip(saved, finals)]
        elif keep_xp:
            saved = [(kept, (xp, rec)) for (kept, rec), xp in zip(saved, xp_lanes)]
        return [final for final, _, _ in finals], [y for y, _ in outs], saved

    @jax.custom_vjp
    def run(params, xs, carry0):
        finals, ys, _ = forward(params, xs, carry0, save=False)
        return _join(finals, 0), _join(ys, 1)

    def run_fwd(params, xs, carry0):
        finals, ys, saved = forward(params, xs, carry0, save=True)
        if y_is_hidden[0]:
            h_prev = [jnp.concatenate([c.hidden[None], y[:-1]]) for c, y in zip(_split(carry0, sizes, 0), ys)]
        else:
            h_prev = [None] * len(sizes)
        return (_join(finals, 0), _join(ys, 1)), (params, xs, h_prev, saved)

    def run_bwd(res, cotangents):
        with precision.matmul_dtype(low):
            return backward(res, cotangents)

    def backward(res, cotangents):
        params, xs, h_prevs, saved = res
        carries, pres = [], []
        for h_prev, (lane_carries, pre) in zip(h_prevs, saved):
            carries.append(lane_carries if h_prev is None else lane_carries._replace(hidden=h_prev))
            pres.append(pre)
        d_final, dys = cotangents
        # Transposed once, outside the loop: on XLA:CPU a per-step dot that contracts U's gate axis
        # directly measured slower than one against this transposed copy.
        kernel_t = params.recurrent_kernel.T if low is None else params.recurrent_kernel.T.astype(low)
        T = dys.shape[0]

        def combine_additive(params, carry, z):
            return cell.combine(params, carry, z, jnp.zeros_like(z))

        def read(buf, t):
            return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, t, keepdims=False), buf)

        def read_slab(buf, start, k):
            return jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, k, 0), buf)

        def step_math(dcarry, pre_t, carry, dy):
            """``(dparams, dcarry_prev, cotangents of step t's residuals)`` for one step."""
            if additive:  # one cotangent serves both xp and rec
                _, vjp = jax.vjp(combine_additive, params, carry, pre_t)
                dp, dcarry_prev, dz = vjp((dcarry, dy))
                drec = out = dz
            else:
                _, vjp = jax.vjp(cell.combine, params, carry, *pre_t)
                dp, dcarry_prev, dxp, drec = vjp((dcarry, dy))
                out = (dxp, drec)
            dcarry_prev = dcarry_prev._replace(hidden=dcarry_prev.hidden + precision.matmul(drec, kernel_t, low))
            return dp, dcarry_prev, out

        def lane_step(dcarry, pre, pre_t, carry, dy, t):
            # ``pre`` rides in the carry and step t's cotangents overwrite step t's residuals in
            # place: the forward's (T, B, G) buffers are dead after this read, so the loop needs no
            # fresh, zero-filled output buffer of its own. Step t-1's residuals are read here, from
            # the buffers as updated, so that no read of the old buffers can follow the write (which
            # would make XLA copy whole buffers every step), and the next step's math reads a small
            # contiguous array instead of slicing a large one.
            dp, dcarry_prev, out = step_math(dcarry, pre_t, carry, dy)
            pre = jax.tree.map(lambda a, o: jax.lax.dynamic_update_index_in_dim(a, o, t, 0), pre, out)
            return dp, (dcarry_prev, pre, read(pre, jnp.maximum(t - 1, 0)))

        def slab_loop(lanes_acc, dparams, hi, count, k):
            """Steps ``hi - 1`` down to ``hi - count * k``, ``k`` per loop iteration, unrolled by hand.

            For cells with two residual buffers (``xp`` and ``rec``) under ``unroll > 1``: when XLA
            unrolls the one-step loop, it fuses step t-1's read of one buffer into step t-1's
            in-place write of the other, and then copies a whole buffer per step to keep the value
            that read needs (O(T^2) traffic). Here each iteration reads its ``k`` steps' residuals
            as one slab carried from the previous iteration and writes their cotangents as one slab
            at its end, so no read of a buffer can follow a write to it.
            """

            def body(acc, i):
                lanes_acc, dparams = acc
                base = hi - (i + 1) * k
                new = []
                for (dcarry, pre, slab), (lane_carries, lane_dys) in zip(lanes_acc, inputs_by_lane):
                    outs = [None] * k
                    for j in reversed(range(k)):
                        pre_t = jax.tree.map(lambda a, j=j: a[j], slab)
                        carry, dy = read(lane_carries, base + j), read(lane_dys, base + j)
                        dp, dcarry, outs[j] = step_math(dcarry, pre_t, carry, dy)
                        dparams = _add(dparams, dp)
                    stacked = jax.tree.map(lambda *o: jnp.stack(o), *outs)
                    pre = jax.tree.map(lambda a, o: jax.lax.dynamic_update_slice_in_dim(a, o, base, 0), pre, stacked)
                    new.append((dcarry, pre, read_slab(pre, jnp.maximum(base - k, 0), k)))
                return (tuple(new), dparams), None

            lanes_acc = tuple((d, pre, read_slab(pre, hi - k, k)) for d, pre, _ in lanes_acc)
            (lanes_acc, dparams), _ = jax.lax.scan(body, (lanes_acc, dparams), jnp.arange(count))
            return lanes_acc, dparams

        def body(acc, inp):
            lanes_acc, dparams = acc
            t = inp[-1]
            new = []
            for (dcarry, pre, pre_t), (carry, dy) in zip(lanes_acc, inp[:-1]):
                dp, lane_acc = lane_step(dcarry, pre, pre_t, carry, dy, t)
                dparams = _add(dparams, dp)
                new.append(lane_acc)
            return (tuple(new), dparams), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        inputs_by_lane = tuple(zip(carries, _split(dys, sizes, 1)))
        if additive or unroll == 1:
            init = (tuple((d, pre, read(pre, T - 1)) for d, pre in zip(_split(d_final, sizes, 0), pres)), zeros)
            inputs = inputs_by_lane + (jnp.arange(T),)
            (lanes_acc, dparams), _ = jax.lax.scan(body, init, inputs, reverse=True, unroll=unroll)
        else:  # see slab_loop: T // unroll iterations of unroll steps, then the rest one by one
            lanes_acc, dparams = tuple((d, pre, None) for d, pre in zip(_split(d_final, sizes, 0), pres)), zeros
            k = min(unroll, T)
            lanes_acc, dparams = slab_loop(lanes_acc, dparams, T, T // k, k)
            if T % k:
                lanes_acc, dparams = slab_loop(lanes_acc, dparams, T % k, T % k, 1)
        dxs = []
        for (_, outs, _), lane_carries, lane_xs in zip(lanes_acc, carries, _split(xs, sizes, 1)):
            dxps, drecs = (outs, outs) if additive else outs
            h_prev = lane_carries.hidden
            rows_t = precision.transposed(h_prev.reshape(-1, h_prev.shape[-1]))
            d_kernel = precision.matmul(rows_t, drecs.reshape(-1, drecs.shape[-1]), low)
            # Over (T * B, I) rows: XLA:CPU then contracts the rows in place (for 3-D operands it
            # copied a transposed dxps first).
            _, project_vjp = jax.vjp(cell.project, params, lane_xs.reshape(-1, lane_xs.shape[-1]))
            dp_project, lane_dxs = project_vjp(dxps.reshape(-1, dxps.shape[-1]))
            dxs.append(lane_dxs.reshape(lane_xs.shape))
            dparams = _add(dparams, dp_project)
            dparams = dparams._replace(recurrent_kernel=dparams.recurrent_kernel + d_kernel)
        return dparams, _join(dxs, 1), _join([acc[0] for acc in lanes_acc], 0)

    run.defvjp(run_fwd, run_bwd)
    return run(params, xs, carry0)
