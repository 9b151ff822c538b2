"""Running a cell over a sequence: the scan-based :func:`unroll`.

Layout conventions: batch-major ``xs (B, T, I)`` by default, time-major ``(T, B, I)`` with
``time_major=True``, or an unbatched sequence ``(T, I)``. Outputs follow the input layout.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab import _checks, precision
from rnnlab.cells import Cell
from rnnlab.fused import default_lanes, fused_scan, supports
from rnnlab.layers import Bidirectional, BidirectionalCarry, Stack, check_params, input_size


class _Batch(NamedTuple):
    """Inputs normalized to time-major and batched, after every check has passed."""

    xs: jax.Array  # (T, B, I)
    carry: Any  # batched carry pytree
    reset_carry: Any  # batched carry pytree a reset sets back to; None: ``carry``
    lengths: jax.Array | None  # (B,) int
    resets: jax.Array | None  # (T, B) bool
    batched: bool
    time_major: bool


def _tree_where(mask: jax.Array, a, b):
    """``where(mask, a, b)`` per leaf, with ``mask (B,)`` broadcast over each leaf's trailing axes."""

    def pick(x, y):
        return jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)), x, y)

    return jax.tree.map(pick, a, b)


def _check(
    where, layer, params, xs, initial_carry, lengths, resets, time_major, truncation, unroll, reset_carry=None
) -> _Batch:
    if not isinstance(layer, (Cell, Bidirectional, Stack)):
        raise TypeError(f"{where}: cell must be a Cell, Bidirectional or Stack; got {type(layer).__name__}")
    if not hasattr(xs, "shape") or not hasattr(xs, "dtype"):
        raise TypeError(f"{where}: xs must be an array; got {type(xs).__name__}")
    n_in = input_size(layer, params)
    feat = "I" if n_in is None else str(n_in)
    if xs.ndim not in (2, 3):
        raise ValueError(
            f"{where}: xs must have shape (T, {feat}) unbatched, (B, T, {feat}) batch-major or (T, B, {feat}) "
            f"time-major; got shape {tuple(xs.shape)} (rank {xs.ndim})"
        )
    dtype = _checks.float_dtype(where, "xs", xs)
    p_leaves = jax.tree.leaves(params)
    if not p_leaves:
        raise ValueError(f"{where}: params holds no arrays; build them with cell.init(key, input_size)")
    check_params(where, layer, params, xs.shape[-1] if n_in is None else n_in)
    p_dtype = np.dtype(p_leaves[0].dtype)
    if dtype != p_dtype:
        raise TypeError(f"{where}: xs has dtype {dtype} but params have dtype {p_dtype}; cast one to match")
    if n_in is not None and xs.shape[-1] != n_in:
        raise ValueError(
            f"{where}: xs must have {n_in} features (last axis) to match params; got shape {tuple(xs.shape)}"
        )
    batched = xs.ndim == 3
    if batched:
        T, B = (xs.shape[0], xs.shape[1]) if time_major else (xs.shape[1], xs.shape[0])
        layout = "(T, B)" if time_major else "(B, T)"
    else:
        T, B, layout = xs.shape[0], 1, "(T,)"
    if T == 0:
        raise ValueError(f"{where}: xs must hold at least one timestep; got shape {tuple(xs.shape)}")
    seq_shape = (T, B) if time_major else (B, T)
    if not batched:
        seq_shape = (T,)

    if lengths is not None:
        lengths = _as_array(where, "lengths", lengths)
        want = (B,) if batched else ()
        if tuple(lengths.shape) != want:
            raise ValueError(f"{where}: lengths must have shape {want} (one per sequence); got {tuple(lengths.shape)}")
        if not jnp.issubdtype(lengths.dtype, jnp.integer):
            raise TypeError(f"{where}: lengths must have an integer dtype; got {lengths.dtype}")
        if _checks.is_concrete(lengths) and lengths.size:  # an empty batch has no values to check
            lo, hi = int(np.min(np.asarray(lengths))), int(np.max(np.asarray(lengths)))
            if lo < 0 or hi > T:
                raise ValueError(f"{where}: lengths must lie in [0, T={T}]; got values in [{lo}, {hi}]")
        # Values are checked above when concrete; under jit they cannot be, so clip rather than index out of range.
        lengths = jnp.clip(lengths.reshape(B), 0, T)
    if resets is not None:
        resets = _as_array(where, "resets", resets)
        if tuple(resets.shape) != seq_shape:
            raise ValueError(
                f"{where}: resets must have shape {layout} = {seq_shape}, one flag per step; got {tuple(resets.shape)}"
            )
        if resets.dtype != jnp.bool_:
            raise TypeError(f"{where}: resets must be boolean; got dtype {resets.dtype} (use resets.astype(bool))")
        resets = resets.reshape(T, 1) if not batched else (resets if time_major else resets.T)
    if truncation is not None:
        _checks.positive_int(where, "truncation", truncation)
    if unroll is not None:
        _checks.positive_int(where, "unroll", unroll)

    expected = jax.eval_shape(lambda: layer.initial_carry(params, (B,) if batched else ()))

    def carry_argument(name, value):
        got_def, want_def = jax.tree.structure(value), jax.tree.structure(expected)
        if got_def != want_def:
            raise ValueError(f"{where}: {name} must have the structure {want_def}; got {got_def}")
        for got, want in zip(jax.tree.leaves(value), jax.tree.leaves(expected)):
            if tuple(np.shape(got)) != tuple(want.shape):
                raise ValueError(f"{where}: {name} leaves must have shape {tuple(want.shape)}; got {np.shape(got)}")
            got_dtype = jax.dtypes.canonicalize_dtype(got.dtype if hasattr(got, "dtype") else np.result_type(got))
            if got_dtype != want.dtype:  # the scan would reject a carry whose dtype its step changes
                raise TypeError(f"{where}: {name} leaves must have dtype {want.dtype}, that of params; got {got_dtype}")
        return value if batched else jax.tree.map(lambda a: a[None], value)

    if initial_carry is None:
        carry = layer.initial_carry(params, (B,))
    else:
        carry = carry_argument("initial_carry", initial_carry)
    if reset_carry is not None:
        if resets is None:
            raise ValueError(f"{where}: reset_carry is what a reset sets the carry to; pass resets with it")
        reset_carry = carry_argument("reset_carry", reset_carry)

    xs_tm = xs[:, None] if not batched else (xs if time_major else jnp.swapaxes(xs, 0, 1))
    return _Batch(xs_tm, carry, reset_carry, lengths, resets, batched, time_major)


def _as_array(where: str, name: str, value):
    """``value`` as an array (a list or a number is converted); anything else is a TypeError naming ``name``."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    if isinstance(value, (numbers.Number, list, tuple)):
        try:
            return jnp.asarray(np.asarray(value))
        except (ValueError, TypeError):  # ragged nesting, or items that are not numbers
            pass
    raise TypeError(f"{where}: {name} must be an array (or a list of numbers); got {value!r:.80}")


def _reverse_order(T: int, lengths: jax.Array | None, B: int):
    """Indices ``(T, B)`` that reverse each sequence's valid part and leave padding in place."""
    t = jnp.arange(T)[:, None]
    if lengths is None:
        return jnp.broadcast_to(T - 1 - t, (T, B))
    return jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _fused_ok(cell, b: _Batch, truncation, remat, return_carries, offsets) -> str | None:
    """``None`` when the fused path applies, else the reason it does not."""
    if not supports(cell):
        return f"the {getattr(cell, 'name', type(cell).__name__)} cell has no combine (a second h-dependent matmul)"
    for name, value in (
        ("lengths", b.lengths),
        ("resets", b.resets),
        ("truncation", truncation),
        ("carry_offsets", offsets),
    ):
        if value is not None:
            return f"{name} is given"
    if remat:
        return "remat=True"
    if return_carries:
        return "return_carries=True"
    return None


def _scan_cell(
    cell: Cell,
    params,
    b: _Batch,
    reverse,
    truncation,
    unroll,
    remat,
    return_carries,
    hoist_input,
    use_fused,
    lanes,
    offsets=None,
):
    T, B = b.xs.shape[0], b.xs.shape[1]
    if hoist_input is None:
        hoist_input = jax.default_backend() != "cpu"
    why_not = "fused=False" if use_fused is False else _fused_ok(cell, b, truncation, remat, return_carries, offsets)
    if why_not is None:
        if lanes is None:
            lanes = default_lanes(B, *params.recurrent_kernel.shape)
        xs = b.xs[::-1] if reverse else b.xs  # without lengths, reversing is a flip
        lanes = max(1, min(lanes, B))  # at most one lane per row (and one for an empty batch)
        final, ys = fused_scan(cell, params, xs, b.carry, hoist_input=hoist_input, unroll=unroll, lanes=lanes)
        return final, (ys[::-1] if reverse else ys), None
    if use_fused:
        raise ValueError(f"unroll: fused=True cannot run here: {why_not}; pass fused=None or False")
    if lanes not in (None, 1):
        raise ValueError(f"unroll: lanes={lanes} needs the fused path, which cannot run here: {why_not}")
    # Hoisted: one (T*B, I) @ (I, G) matmul before the loop; otherwise the projection runs per step.
    xp = cell.project(params, b.xs) if hoist_input else b.xs
    resets = b.resets
    order = None
    if reverse:
        order = _reverse_order(T, b.lengths, B)
        xp = jnp.take_along_axis(xp, order[..., None], axis=0)
        offsets = jax.tree.map(lambda o: jnp.take_along_axis(o, _expand(order, o), axis=0), offsets)
        if resets is not None:
            # A segment boundary before step t is, walking backwards, a reset before step t - 1.
            shifted = jnp.concatenate([resets[1:], jnp.zeros((1, resets.shape[1]), bool)], axis=0)
            if b.lengths is not None:
                # resets[L] lies in the padding of a sequence of length L: it must not reset step L - 1,
                # the first one processed, as it is ignored going forward.
                shifted = shifted & (jnp.arange(T)[:, None] + 1 < b.lengths[None, :])
            resets = jnp.take_along_axis(jnp.broadcast_to(shifted, (T, B)), order, axis=0)
    valid = None if b.lengths is None else jnp.arange(T)[:, None] < b.lengths[None, :]
    carry0 = b.carry
    fresh = carry0 if b.reset_carry is None else b.reset_carry
    step = cell.step if hoist_input else cell.apply
    step = jax.checkpoint(step) if remat else step

    def body(carry, inputs):
        t, xp_t, valid_t, reset_t, off_t = inputs
        if truncation is not None:
            cut = (t % truncation == 0) & (t > 0)
            if valid_t is None:
                carry = jax.tree.map(lambda c: jnp.where(cut, jax.lax.stop_gradient(c), c), carry)
            else:  # only inside a sequence: past its end the carry is its final one, and keeps its gradient
                carry = _tree_where(cut & valid_t, jax.tree.map(jax.lax.stop_gradient, carry), carry)
        start = carry if reset_t is None else _tree_where(jnp.broadcast_to(reset_t, (B,)), fresh, carry)
        new_carry, y = step(params, start, xp_t)
        if off_t is not None:  # zero perturbations whose gradient is dL/d(carry_t): see diagnostics
            new_carry = jax.tree.map(jnp.add, new_carry, off_t)
            y = new_carry.hidden
        if valid_t is not None:
            # Past its end a sequence keeps its carry, whatever reset flags its padding holds.
            new_carry = _tree_where(valid_t, new_carry, carry)
            y = jnp.where(valid_t[:, None], y, jnp.zeros((), y.dtype))
        return new_carry, (y, new_carry if return_carries else None)

    steps = jnp.arange(T) if truncation is not None else None  # the step index only matters to truncation
    final, (ys, carries) = jax.lax.scan(body, carry0, (steps, xp, valid, resets, offsets), unroll=unroll)
    if reverse:
        ys = jnp.take_along_axis(ys, order[..., None], axis=0)
        if return_carries:
            carries = jax.tree.map(lambda c: jnp.take_along_axis(c, _expand(order, c), axis=0), carries)
    return final, ys, carries


def _expand(order, like):
    """``order (T, B)`` with trailing unit axes to index ``like (T, B, ...)`` along time."""
    return order.reshape(order.shape + (1,) * (like.ndim - 2))


def _run(layer, params, b: _Batch, reverse, dropout_key, opts, offsets=None):
    if isinstance(layer, Cell):
        return _scan_cell(layer, params, b, reverse, **opts, offsets=offsets)
    if isinstance(layer, Bidirectional):
        fresh = BidirectionalCarry(None, None) if b.reset_carry is None else b.reset_carry
        forward = b._replace(carry=b.carry.forward, reset_carry=fresh.forward)
        backward = b._replace(carry=b.carry.backward, reset_carry=fresh.backward)
        fwd = _scan_cell(layer.forward, params.forward, forward, reverse, **opts)
        bwd = _scan_cell(layer.backward, params.backward, backward, not reverse, **opts)
        ys = jnp.concatenate([fwd[1], bwd[1]], axis=-1) if layer.merge == "concat" else fwd[1] + bwd[1]
        carries = BidirectionalCarry(fwd[2], bwd[2]) if opts["return_carries"] else None
        return BidirectionalCarry(fwd[0], bwd[0]), ys, carries
    # Stack: layer by layer (as cuDNN does), so with hoist_input each layer projects all timesteps at once.
    finals, all_carries = [], []
    ys = b.xs
    valid = None if b.lengths is None else (jnp.arange(ys.shape[0])[:, None] < b.lengths[None, :])[..., None]
    fresh = (None,) * len(layer.layers) if b.reset_carry is None else b.reset_carry
    for l, (sub, p, c, r) in enumerate(zip(layer.layers, params, b.carry, fresh)):
        final, out, carries = _run(sub, p, b._replace(xs=ys, carry=c, reset_carry=r), reverse, None, opts)
        if layer.residual and l > 0:
            out = out + ys
            if valid is not None:
                out = jnp.where(valid, out, jnp.zeros((), out.dtype))
        if dropout_key is not None and layer.dropout > 0 and l < len(layer.layers) - 1:
            keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, l), 1.0 - layer.dropout, out.shape)
            out = jnp.where(keep, out / (1.0 - layer.dropout), jnp.zeros((), out.dtype))
        ys = out
        finals.append(final)
        all_carries.append(carries)
    return tuple(finals), ys, (tuple(all_carries) if opts["return_carries"] else None)


def _state_size(carry) -> int:
    """Elements of the carry's largest leaf (``B * H`` for a batched carry)."""
    return max((a.size for a in jax.tree.leaves(carry)), default=0)


def default_unroll(backend: str | None = None, state_size: int | None = None) -> int:
    """The scan unroll factor :func:`unroll` uses when not told: 1 on CPU; 8 on GPU and TPU, or 2
    there for a large step (``state_size``, the largest carry leaf's elements ``B * H``, >= 16384).

    On an accelerator each iteration of XLA's while loop costs microseconds of control flow
    (a kernel launch and a device-to-host check of the loop condition), which dominates a small
    recurrent step; unrolling 8 steps per iteration pays it once per 8 steps. On an H100
    (``bench/RESULTS.md``) unroll 8 against 1 made the LSTM's training step 1.3-2x faster at the
    benchmark's sizes A, C, D and the headline (``B * H`` from 8 to 8192), but at size B (``B * H =
    32768``) unroll 2 took 3.8 ms, 1 took 4.4 and 8 took 6.5 (GRU likewise), hence 2 there (TPUs
    follow the GPU's rule, unmeasured). On XLA:CPU an iteration costs about a microsecond and every
    unroll measured slower: the LSTM's training step at size A took 59, 70, 89 and 141 ms at unroll
    1, 2, 4 and 8, so CPU keeps 1.

    Example:
        >>> default_unroll("cpu"), default_unroll("gpu"), default_unroll("gpu", state_size=64 * 512)
        (1, 8, 2)
    """
    backend = jax.default_backend() if backend is None else backend
    if backend == "cpu":
        return 1
    return 2 if state_size is not None and state_size >= 16384 else 8


def unroll(
    cell,
    params,
    xs: jax.Array,
    *,
    initial_carry=None,
    lengths: jax.Array | None = None,
    resets: jax.Array | None = None,
    reset_carry=None,
    time_major: bool = False,
    reverse: bool = False,
    truncation: int | None = None,
    unroll: int | None = None,
    remat: bool = False,
    return_carries: bool = False,
    dropout_key: jax.Array | None = None,
    hoist_input: bool | None = None,
    carry_offsets=None,
    fused: bool | None = None,
    lanes: int | None = None,
    matmul_dtype=None,
):
    """Runs ``cell`` over the sequence ``xs`` with ``jax.lax.scan``.

    With ``hoist_input`` the input projection ``x_t W + b`` of every timestep is computed before the
    loop as one matmul over ``(T * B, I)``, and the scanned body holds only the recurrent matmul and
    pointwise math (as cuDNN does). Inside ``jit`` the whole call compiles to a single loop.

    Args:
        cell: a :class:`~rnnlab.cells.Cell`, :class:`~rnnlab.layers.Bidirectional` or
            :class:`~rnnlab.layers.Stack`.
        params: the matching params (from ``cell.init``): their structure and shapes are checked
            against what ``cell.init`` builds for the cell's hidden size and variant, and for a
            :class:`~rnnlab.layers.Stack` there must be one entry per layer.
        xs: ``(B, T, I)``, or ``(T, B, I)`` with ``time_major=True``, or ``(T, I)`` unbatched.
        initial_carry: carry before the first step, batched like ``xs``; default zeros.
        lengths: ``(B,)`` integers in [0, T] (a scalar when unbatched). Steps at or past a sequence's
            length do not update its carry and output zeros, so the final carry is the one after each
            sequence's own last step. Values outside [0, T] raise when ``lengths`` is concrete; traced
            inside ``jit`` they cannot be checked and are clipped to [0, T].
        resets: booleans shaped like ``xs`` without its feature axis. ``resets[t]`` marks ``x_t`` as
            the first step of a new segment (document, episode): the carry is set back to
            ``reset_carry`` before step t. Segments stay the same with ``reverse``.
        reset_carry: what a reset sets the carry to, batched like ``initial_carry``; default
            ``initial_carry``. Stateful training over consecutive windows of a stream passes the
            previous window's final carry as ``initial_carry`` and the fresh carry
            (``cell.initial_carry(params, (B,))``) here, so a document that starts inside the
            window starts from scratch (see :mod:`rnnlab.language_model`).
        time_major: layout of ``xs``, outputs and carries.
        reverse: process each sequence from its last valid step to its first. Outputs stay aligned
            with the inputs (``ys[t]`` is the output after reading ``x_t``).
        truncation: truncated BPTT: the gradient is stopped on the carry every ``truncation`` steps
            (counted in processing order; with ``lengths``, only at steps inside a sequence, so its
            final carry keeps its gradient back to its last cut); the forward values are unchanged.
        unroll: how many steps ``lax.scan`` unrolls per loop iteration; ``None`` (default):
            :func:`default_unroll` for the backend and the carry's size (1 on CPU; 8 on GPU and
            TPU, 2 there when the carry's largest leaf has ``B * H >= 16384`` elements).
        remat: rematerialize each step in the backward pass (``jax.checkpoint``) to save memory.
        return_carries: also return the carry after every step (for gradient diagnostics).
        dropout_key: a PRNG key turns on the dropout between the layers of a :class:`Stack`;
            ``None`` (the default) runs deterministically, as at evaluation.
        hoist_input: compute the input projection before the loop (True) or inside each step
            (False). ``None`` (default) hoists except on CPU, where XLA measured the per-step
            projection faster (``bench/RESULTS.md``). Results agree to float rounding.
        carry_offsets: for gradient diagnostics (cells only): a pytree shaped like ``carries``
            (see ``return_carries``) added to the carry after every step. Pass zeros and
            differentiate with respect to it: the gradient at step t is ``dL/d(carry_t)``, the
            error arriving at step t from every later step. The output ``y_t`` is taken to be the
            perturbed ``carry.hidden``, as it is for every built-in cell. See :mod:`rnnlab.diagnostics`.
        fused: the backward pass. ``None`` (default) uses the fused backward of :mod:`rnnlab.fused`
            (weight gradients as one GEMM after the reverse loop) wherever it applies: cells with
            ``combine`` (Elman, LSTM and its variants, GRU with ``reset_after``) run without
            ``lengths``, ``resets``, ``truncation``, ``remat``, ``return_carries`` or
            ``carry_offsets``; elsewhere plain autodiff through the scan. ``False`` always uses
            autodiff; ``True`` requires the fused path and raises where it does not apply. Both
            give the same values and gradients to float rounding. The fused path is reverse-mode
            only (a ``jax.custom_vjp``): for ``jax.jvp``, ``jax.jacfwd`` or ``jax.hessian`` pass
            ``fused=False``.
        lanes: on the fused path, split the batch into this many independent recurrences that
            advance side by side in one loop (see :func:`rnnlab.fused.fused_scan`); at most the
            batch size is used. ``None`` (default) picks per backend and size
            (:func:`rnnlab.fused.default_lanes`: 2 for mid-sized batches on CPU, else 1). Results
            agree to float rounding. Any value other than 1 requires the fused path.
        matmul_dtype: mixed precision: e.g. ``jnp.bfloat16`` rounds the operands of every matmul
            (input projection, recurrent matmul, and those of the backward pass) to that dtype and
            accumulates the products in float32; the weights, the carry, the gates and every
            pointwise operation stay float32 (:mod:`rnnlab.precision`). About twice the matmul rate
            on CPUs with AVX512-BF16 and on GPUs; the measured error is stated in
            ``bench/RESULTS.md``. ``None`` (default): the matmuls run in the params' dtype.

    Returns:
        ``(final_carry, ys)``, with ``ys`` shaped like ``xs`` but with the output width last; with
        ``return_carries``, ``(final_carry, ys, carries)`` where each carry leaf gains a time axis
        placed as in ``ys`` (past a sequence's length it holds the final carry).

    Raises:
        TypeError / ValueError: before tracing, naming the argument with the expected and actual
        shape, dtype or value.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rnnlab
        >>> cell = rnnlab.cells.lstm(16)
        >>> params = cell.init(jax.random.key(0), input_size=3)
        >>> xs = jnp.ones((2, 10, 3))  # (B, T, I)
        >>> carry, ys = rnnlab.unroll(cell, params, xs, lengths=jnp.array([10, 4]))
        >>> ys.shape, carry.hidden.shape
        ((2, 10, 16), (2, 16))
        >>> bool(jnp.all(ys[1, 4:] == 0))
        True
    """
    where = "unroll"
    for name, flag in (
        ("time_major", time_major),
        ("reverse", reverse),
        ("remat", remat),
        ("return_carries", return_carries),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"{where}: {name} must be a bool; got {flag!r}")
    b = _check(where, cell, params, xs, initial_carry, lengths, resets, time_major, truncation, unroll, reset_carry)
    if hoist_input is not None and not isinstance(hoist_input, bool):
        raise TypeError(f"{where}: hoist_input must be a bool or None; got {hoist_input!r}")
    if fused is not None and not isinstance(fused, bool):
        raise TypeError(f"{where}: fused must be a bool or None; got {fused!r}")
    if lanes is not None:
        _checks.positive_int(where, "lanes", lanes)
    low = precision.check_dtype(where, matmul_dtype)
    opts = dict(
        truncation=truncation,
        unroll=default_unroll(state_size=_state_size(b.carry)) if unroll is None else unroll,
        remat=remat,
        return_carries=return_carries,
        hoist_input=hoist_input,
        use_fused=fused,
        lanes=lanes,
    )
    offsets = None
    if carry_offsets is not None:
        if not isinstance(cell, Cell):
            raise TypeError(f"{where}: carry_offsets works on a single Cell; got {type(cell).__name__}")
        want = jax.eval_shape(lambda: jax.tree.map(lambda a: jnp.zeros(a.shape[1:]), b.carry))
        T, B = b.xs.shape[0], b.xs.shape[1]
        lead = (T,) if not b.batched else ((T, B) if time_major else (B, T))
        if jax.tree.structure(carry_offsets) != jax.tree.structure(want) or any(
            tuple(o.shape) != lead + tuple(w.shape)
            for o, w in zip(jax.tree.leaves(carry_offsets), jax.tree.leaves(want))
        ):
            shapes = jax.tree.map(lambda w: lead + tuple(w.shape), want)
            raise ValueError(
                f"{where}: carry_offsets must match the carries' shapes {shapes}; got "
                f"{jax.tree.map(lambda o: tuple(o.shape), carry_offsets)}"
            )
        if not b.batched:
            offsets = jax.tree.map(lambda o: o[:, None], carry_offsets)
        else:
            offsets = carry_offsets if time_major else jax.tree.map(lambda o: jnp.swapaxes(o, 0, 1), carry_offsets)
    with precision.matmul_dtype(low) if low is not None else contextlib.nullcontext():
        final, ys, carries = _run(cell, params, b, reverse, dropout_key, opts, offsets)
    if not b.batched:
        final = jax.tree.map(lambda a: a[0], final)
        ys = ys[:, 0]
        carries = jax.tree.map(lambda a: a[:, 0], carries)
    elif not b.time_major:
        ys = jnp.swapaxes(ys, 0, 1)
        carries = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), carries)
    return (final, ys, carries) if return_carries else (final, ys)
