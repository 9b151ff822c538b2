"""Gradient-flow diagnostics: how much error reaches step t from a loss at the end.

All of them run inside ``jit`` with one backward pass: :func:`rnnlab.unroll` adds a zero
perturbation ``e_t`` to the carry after every step, and ``dL/de_t = dL/d(carry_t)`` is the total
error arriving at step t (for an LSTM, separately along h and along c). The output ``y_t = h_t``
sees the perturbation of ``h_t``; ``c_t`` reaches the loss only through later steps, because
``h_t`` is computed from ``c_t`` inside step t (so ``dL/dc_T`` of the last step is zero).

:func:`gate_statistics` looks at the forward pass instead: how open the gates of a gated cell are,
how often they saturate, and the memory timescale of every unit.

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
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks, initializers
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


def _l2_norm(g: jax.Array) -> jax.Array:
    """``||g||_2`` over the last axis, computed as ``m ||g / m||`` with ``m = max |g_i|``.

    Squaring first would read a norm below about 1e-19 in float32 as 0 (the squares fall under
    the smallest normal number, 1.2e-38, which XLA flushes to zero on CPU), where the gradient
    itself is still far from underflowing. A NaN or inf entry gives NaN or inf, as unscaled.
    """
    peak = jnp.max(jnp.abs(g), axis=-1, keepdims=True)
    scale = jnp.where((peak > 0) & jnp.isfinite(peak), peak, jnp.ones((), g.dtype))
    return scale[..., 0] * jnp.linalg.norm(g / scale, axis=-1)


def carry_gradient_norms(cell: Cell, params, xs: jax.Array, loss_fn: Callable, **unroll_kwargs):
    r"""``||dL/d(carry_t)||`` (L2 over units) by lag from each sequence's last step, averaged over the batch.

    With ``g_b(s) = ||dL/d(carry_s)||`` of sequence b at its step s, ``L_b`` its length (``T`` without
    ``lengths``) and ``T`` the array's number of steps, entry t of each leaf is lag ``k = T - 1 - t``
    counted back from every sequence's *own* last valid step ``L_b - 1``, where a loss that reads
    the last output sits::

        out[t] = (1 / n_k) * sum_{b : L_b > k} g_b(L_b - 1 - k),      n_k = #{b : L_b > k},  k = T - 1 - t

    A sequence shorter than ``k + 1`` steps has no lag k and is left out of that entry's mean; an
    entry no sequence reaches (``n_k = 0``) is ``nan``, never a zero. The norm is scaled by its
    largest entry, so a 0 means the gradient itself underflowed (every entry below float32's
    smallest normal number, about 1.2e-38), not just its squares. :func:`lag_counts` gives
    ``n_k``. For fixed-length sequences this is the batch mean at step t (lag ``T - 1 - t``), so
    ``out[::-1]`` is the curve by lag 0..T-1. With ``reverse=True`` every sequence ends at step 0:
    entry t is lag t, the mean over the sequences with ``L_b > t``. ``resets`` are not taken into
    account (the lag is from the sequence's end, not from a segment's).

    Args:
        cell: a :class:`~rnnlab.cells.Cell` whose output is its carry's ``hidden``.
        params: its params.
        xs: ``(B, T, I)``, ``(T, B, I)`` with ``time_major=True``, or one sequence ``(T, I)``.
        loss_fn: ``loss_fn(ys, final_carry) -> scalar``.
        **unroll_kwargs: passed to :func:`rnnlab.unroll` (``lengths``, ``time_major``, ...).

    Returns:
        A carry pytree whose leaves have shape ``(T,)`` (e.g. ``LSTMCarry(hidden (T,), cell (T,))``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rnnlab
        >>> from rnnlab import diagnostics
        >>> cell = rnnlab.cells.elman(2, activation="identity")
        >>> p = cell.init(jax.random.key(0), 1)._replace(recurrent_kernel=0.5 * jnp.eye(2))
        >>> loss = lambda ys, final: jnp.sum(final.hidden)  # the last valid step's h of every sequence
        >>> norms = diagnostics.carry_gradient_norms(cell, p, jnp.ones((2, 4, 1)), loss, lengths=jnp.array([4, 2]))
        >>> (norms.hidden[::-1] / norms.hidden[-1]).round(4)  # by lag 0..3: 0.5 ** lag (lags 2, 3: 1st sequence)
        Array([1.   , 0.5  , 0.25 , 0.125], dtype=float32)
        >>> diagnostics.lag_counts(jnp.array([4, 2]), 4)[::-1]  # sequences averaged at lag 0..3
        Array([2, 2, 1, 1], dtype=int32)
    """
    grads = carry_gradients(cell, params, xs, loss_fn, **unroll_kwargs)
    batched, time_major = xs.ndim == 3, unroll_kwargs.get("time_major", False)
    lengths, reverse = unroll_kwargs.get("lengths"), unroll_kwargs.get("reverse", False)

    def norms(g):
        n = _l2_norm(g)
        n = (n.T if time_major else n) if batched else n[None]  # (B, T)
        if lengths is None:
            return jnp.mean(n, axis=0)
        B, T = n.shape
        ends = jnp.clip(jnp.asarray(lengths).reshape(B), 0, T)
        t = jnp.arange(T)
        # The step of sequence b that entry t shows: its step L_b - 1 - k for lag k = T - 1 - t (forward).
        step = jnp.broadcast_to(t[None, :], (B, T)) if reverse else t[None, :] - (T - ends)[:, None]
        valid = (step >= 0) & (step < ends[:, None])
        shown = jnp.take_along_axis(n, jnp.clip(step, 0, T - 1), axis=1)
        count = jnp.sum(valid, axis=0)
        total = jnp.sum(jnp.where(valid, shown, jnp.zeros((), n.dtype)), axis=0)
        aligned = jnp.where(count > 0, total / jnp.maximum(count, 1).astype(n.dtype), jnp.nan)
        # Sequences that all fill the array need no shift: the plain batch mean, bit for bit.
        return jnp.where(jnp.all(ends == T), jnp.mean(n, axis=0), aligned)

    return jax.tree.map(norms, grads)


def lag_counts(lengths, steps: int, *, reverse: bool = False) -> jax.Array:
    """How many sequences each entry of :func:`carry_gradient_norms` averages over: ``(steps,)`` ints.

    Entry t counts the sequences that reach lag ``k = steps - 1 - t`` (``k = t`` with ``reverse``),
    ``n_k = #{b : lengths[b] > k}``; 0 marks an entry that is ``nan`` there.

    Args:
        lengths: ``(B,)`` sequence lengths (a scalar for one sequence), clipped to [0, steps].
        steps: ``T``, the array's number of steps.
        reverse: as the unroll's ``reverse``.

    Example:
        >>> import jax.numpy as jnp
        >>> from rnnlab import diagnostics
        >>> diagnostics.lag_counts(jnp.array([5, 3, 4]), 6)  # by step; lag 5 (entry 0) no sequence reaches
        Array([0, 1, 2, 3, 3, 3], dtype=int32)
    """
    ends = jnp.clip(jnp.asarray(lengths).reshape(-1), 0, steps)
    lag = jnp.arange(steps) if reverse else steps - 1 - jnp.arange(steps)
    return jnp.sum(ends[:, None] > lag[None, :], axis=0, dtype=jnp.int32)


def hidden_jacobian_singular_values(cell: Cell, params, xs: jax.Array, **unroll_kwargs) -> jax.Array:
    """All singular values of ``dh_T/dh_t`` for every t of one unbatched sequence ``xs (T, I)``, descending.

    The Jacobian is taken with respect to a perturbation of ``h_t`` alone (for an LSTM, ``c_t``
    held fixed), so it is the product of the step Jacobians along the hidden path:
    ``dh_T/dh_t = prod_{k=t+1..T} dh_k/dh_{k-1}``. The spread of the singular values shows whether
    the error vanishes in every direction or survives in a few; with ``U = a * Q`` (Q orthogonal) a
    linear RNN has every singular value ``a^(T-1-t)`` (0-based t). The last row is all ones
    (``dh_T/dh_T = I``).

    Args:
        cell: a :class:`~rnnlab.cells.Cell` whose output is its carry's ``hidden``.
        params: its params.
        xs: one sequence ``(T, I)``.
        **unroll_kwargs: passed to :func:`rnnlab.unroll`.

    Returns:
        ``(T, H)``: row t holds the singular values of ``dh_T/dh_t``, largest first.

    Raises:
        ValueError: ``xs`` is not rank 2.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rnnlab
        >>> from rnnlab import diagnostics
        >>> cell = rnnlab.cells.elman(3, activation="identity")
        >>> p = cell.init(jax.random.key(0), 2)._replace(recurrent_kernel=0.5 * jnp.eye(3))
        >>> diagnostics.hidden_jacobian_singular_values(cell, p, jnp.ones((4, 2)))
        Array([[0.125, 0.125, 0.125],
               [0.25 , 0.25 , 0.25 ],
               [0.5  , 0.5  , 0.5  ],
               [1.   , 1.   , 1.   ]], dtype=float32)
    """
    if xs.ndim != 2:
        raise ValueError(
            f"hidden_jacobian_singular_values: xs must be one sequence (T, I); got shape {tuple(xs.shape)}"
        )
    carries = jax.eval_shape(lambda: unroll(cell, params, xs, return_carries=True, **unroll_kwargs)[2])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), carries)

    def last_hidden(hidden_offsets):
        final, _ = unroll(cell, params, xs, carry_offsets=zeros._replace(hidden=hidden_offsets), **unroll_kwargs)
        return final.hidden

    jac = jax.jacrev(last_hidden)(zeros.hidden)  # (H, T, H): d h_T[i] / d h_t[j]
    return jnp.linalg.svd(jnp.moveaxis(jac, 1, 0), compute_uv=False)


def hidden_jacobian_norms(cell: Cell, params, xs: jax.Array, **unroll_kwargs) -> jax.Array:
    """``||dh_T/dh_t||_2`` (largest singular value) for every t of one unbatched sequence ``xs (T, I)``.

    The first column of :func:`hidden_jacobian_singular_values`; see there. The last entry is 1.

    Returns:
        ``(T,)`` norms.
    """
    if xs.ndim != 2:
        raise ValueError(f"hidden_jacobian_norms: xs must be one sequence (T, I); got shape {tuple(xs.shape)}")
    return hidden_jacobian_singular_values(cell, params, xs, **unroll_kwargs)[:, 0]


def error_ratios(norms):
    """Pascanu et al. (2013)'s per-step ratio ``||dL/dh_k|| / ||dL/dh_{k+1}||`` from a gradient-norm curve.

    A ratio below 1 at step k means the error shrank while flowing back from step k+1 to step k
    (vanishing), above 1 that it grew (exploding); a linear RNN with ``U = a * Q`` (Q orthogonal)
    gives ``a`` at every step. Where ``||dL/dh_{k+1}||`` is zero the ratio is ``inf`` or ``nan``
    (for an LSTM, ``dL/dc_T`` of the last step is always zero, see the module docstring).

    Args:
        norms: ``(..., T)`` norms per step along the last axis, e.g. a leaf of
            :func:`carry_gradient_norms`, or a pytree of them (the whole result).

    Returns:
        ``(..., T - 1)``: entry k is ``norms[k] / norms[k + 1]`` (a pytree for a pytree).

    Raises:
        ValueError: a curve with fewer than two steps.

    Example:
        >>> import jax.numpy as jnp
        >>> from rnnlab import diagnostics
        >>> diagnostics.error_ratios(jnp.array([0.125, 0.25, 0.5, 1.0]))
        Array([0.5, 0.5, 0.5], dtype=float32)
    """

    def ratios(n):
        n = jnp.asarray(n)
        if n.ndim < 1 or n.shape[-1] < 2:
            raise ValueError(f"error_ratios: norms must have shape (..., T) with T >= 2; got {tuple(n.shape)}")
        return n[..., :-1] / n[..., 1:]

    return jax.tree.map(ratios, norms)


def recurrent_spectral_radius(params) -> jax.Array:
    """Spectral radius of each ``(H, H)`` gate block of ``params.recurrent_kernel``: ``(n_gates,)``.

    Works for every built-in cell: Elman ``(1,)``, LSTM ``(n_gates,)`` in its fused order (see
    :func:`rnnlab.cells.gate_names`), GRU ``(3,)`` (r, z, n), MGU ``(2,)`` (f, n). Runs under ``jit``.

    Raises:
        ValueError: ``params`` has no ``recurrent_kernel`` of shape ``(H, k*H)``.

    Example:
        >>> import jax
        >>> from rnnlab import cells, diagnostics
        >>> p = cells.gru(4).init(jax.random.key(0), 2)  # orthogonal U blocks: radius 1
        >>> diagnostics.recurrent_spectral_radius(p).round(4)
        Array([1., 1., 1.], dtype=float32)
    """
    u = getattr(params, "recurrent_kernel", None)
    if u is None or u.ndim != 2 or u.shape[0] == 0 or u.shape[1] % u.shape[0] != 0:
        got = type(params).__name__ if u is None else f"recurrent_kernel of shape {tuple(u.shape)}"
        raise ValueError(
            "recurrent_spectral_radius: params must be a cell's params with a recurrent_kernel of shape "
            f"(H, k*H) (k gate blocks); got {got}"
        )
    h = u.shape[0]
    return jnp.stack([initializers.spectral_radius(u[:, k * h : (k + 1) * h]) for k in range(u.shape[1] // h)])


# ----------------------------------------------------------------------------------------------- gates


class GateStatistics(NamedTuple):
    """What :func:`gate_statistics` returns. Dicts are keyed by gate name (``cell.gates``' keys).

    Attributes:
        mean: mean activation of each gate per unit, ``{name: (H,)}``.
        frac_below: fraction of a gate's values below ``saturation[0]``, ``{name: ()}``.
        frac_above: fraction above ``saturation[1]``, ``{name: ()}``.
        frac_below_per_unit: the same per unit, ``{name: (H,)}``.
        frac_above_per_unit: the same per unit, ``{name: (H,)}``.
        retain: mean of the retain gate per unit ``(H,)``: the share of the memory kept per step.
        mean_retain: its mean over units ``()``.
        timescale: ``-1 / log(retain)`` per unit ``(H,)``, in steps; ``inf`` where retain is 1.
    """

    mean: dict[str, jax.Array]
    frac_below: dict[str, jax.Array]
    frac_above: dict[str, jax.Array]
    frac_below_per_unit: dict[str, jax.Array]
    frac_above_per_unit: dict[str, jax.Array]
    retain: jax.Array | None
    mean_retain: jax.Array | None
    timescale: jax.Array | None


# The memory ("retain") gate of each gated cell: the factor on the previous memory in its update.
# ``ones`` stands in for a gate the variant fixes at 1 (an LSTM without forget gate keeps its cell).
_RETAIN: dict[str, Callable] = {
    "lstm": lambda gates, ones: gates.get("f", ones),  # c_t = f * c_{t-1} + i * g
    "gru": lambda gates, ones: gates["z"],  # h_t = (1 - z) * n + z * h_{t-1}
    "mgu": lambda gates, ones: 1.0 - gates["f"],  # h_t = (1 - f) * h_{t-1} + f * n
}

_GATE_STATISTICS_OWN = ("return_carries", "carry_offsets", "reverse")


def gate_statistics(
    cell: Cell,
    params,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    saturation: tuple[float, float] = (0.1, 0.9),
    **unroll_kwargs,
) -> GateStatistics:
    r"""Gate activations of a gated cell over a batch of sequences: means, saturation and memory timescales.

    The sequences are unrolled once with ``return_carries=True``; the gates of every step are then
    recomputed in one vectorized call ``cell.gates(params, carry_{t-1}, project(x_t))`` over all
    ``(t, b)``, where ``carry_{t-1}`` is the initial carry for t = 0 (and at a reset) and the carry
    after step t - 1 otherwise. Steps at or past a sequence's length are left out of every average.

    With N the number of valid steps over the batch, for each gate ``a`` (values in [0, 1]) and unit j::

        mean[a][j]                = (1/N) sum_{b,t valid} a_{b,t,j}
        frac_below_per_unit[a][j] = (1/N) #{b,t valid: a_{b,t,j} < saturation[0]}
        frac_above_per_unit[a][j] = (1/N) #{b,t valid: a_{b,t,j} > saturation[1]}
        frac_below[a]             = mean_j frac_below_per_unit[a][j]   (and frac_above alike)

    The retain gate ``r`` is the factor on the previous memory in the cell's update: ``f`` for the LSTM
    (``c_t = f * c_{t-1} + i * g``; 1 for a variant without a forget gate), ``z`` for the GRU
    (``h_t = (1 - z) * n + z * h_{t-1}``), ``1 - f`` for the MGU (``h_t = (1 - f) * h_{t-1} + f * n``).
    A unit that keeps a share ``r`` per step forgets as ``r^k = exp(-k / tau)`` after k steps, with the
    characteristic time (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?")::

        retain[j]    = (1/N) sum_{b,t valid} r_{b,t,j}
        timescale[j] = -1 / log(retain[j])                  (inf where retain[j] = 1)
        mean_retain  = mean_j retain[j]

    For a gated cell whose retain gate is not known here (a registered cell other than ``lstm``,
    ``gru``, ``mgu``), ``retain``, ``mean_retain`` and ``timescale`` are ``None``. With no valid step
    at all (every length 0) the averages are ``nan``.

    Jittable with ``cell`` static, ``jax.jit(gate_statistics, static_argnums=0)``, and any boolean
    option of :func:`rnnlab.unroll` static too (``static_argnames=("time_major",)``).

    Args:
        cell: a :class:`~rnnlab.cells.Cell` with ``gates`` (LSTM, GRU, MGU).
        params: its params.
        xs: ``(B, T, I)``, ``(T, B, I)`` with ``time_major=True``, or one sequence ``(T, I)``.
        lengths: as for :func:`rnnlab.unroll`: ``(B,)`` (a scalar when unbatched); padded steps do
            not count.
        saturation: ``(low, high)`` thresholds with ``0 <= low <= high <= 1``.
        **unroll_kwargs: passed to :func:`rnnlab.unroll`: ``initial_carry``, ``resets``,
            ``reset_carry``, ``time_major``, ``hoist_input``, ``unroll``, ``remat``, ``truncation``.

    Returns:
        A :class:`GateStatistics`.

    Raises:
        TypeError: ``cell`` is not a single :class:`~rnnlab.cells.Cell`.
        ValueError: the cell has no gates (e.g. Elman), a bad ``saturation``, ``reverse=True``, or
            anything :func:`rnnlab.unroll` rejects. All before tracing.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rnnlab
        >>> from rnnlab import diagnostics
        >>> cell = rnnlab.cells.lstm(4, forget_bias=5.0)
        >>> p = cell.init(jax.random.key(0), 2)
        >>> p = p._replace(recurrent_kernel=jnp.zeros_like(p.recurrent_kernel))
        >>> p = p._replace(input_kernel=p.input_kernel.at[:, 4:8].set(0.0))  # f = sigmoid(5) exactly
        >>> stats = diagnostics.gate_statistics(cell, p, jnp.ones((3, 10, 2)), lengths=jnp.array([10, 5, 2]))
        >>> sorted(stats.mean)
        ['f', 'i', 'o']
        >>> bool(jnp.allclose(stats.mean["f"], jax.nn.sigmoid(5.0)))
        True
        >>> float(stats.frac_above["f"])  # every valid f is above 0.9
        1.0
        >>> stats.timescale.round().astype(int)  # -1 / log(sigmoid(5)) ~ exp(5) steps
        Array([149, 149, 149, 149], dtype=int32)
    """
    where = "gate_statistics"
    if not isinstance(cell, Cell):
        raise TypeError(
            f"{where}: cell must be a single Cell (not a Stack or Bidirectional); got {type(cell).__name__}"
        )
    if cell.gates is None:
        raise ValueError(
            f"{where}: cell {cell.name!r} has no gates (cell.gates is None); gate statistics need a gated cell "
            "such as lstm, gru or mgu"
        )
    bad = sorted(k for k in _GATE_STATISTICS_OWN if unroll_kwargs.get(k) is not None and unroll_kwargs[k] is not False)
    if bad:
        raise ValueError(f"{where}: {bad} cannot be used here; gate_statistics unrolls forward with its own carries")
    unroll_kwargs = {k: v for k, v in unroll_kwargs.items() if k not in _GATE_STATISTICS_OWN}
    if not isinstance(saturation, (tuple, list)) or len(saturation) != 2:
        raise ValueError(f"{where}: saturation must be a pair (low, high); got {saturation!r}")
    low, high = saturation
    if _checks.is_concrete(low) and _checks.is_concrete(high) and not 0.0 <= float(low) <= float(high) <= 1.0:
        raise ValueError(f"{where}: saturation must satisfy 0 <= low <= high <= 1; got {tuple(saturation)}")

    # Validates every argument (shapes, dtypes, lengths, carry) before anything below is traced.
    _, _, carries = unroll(cell, params, xs, lengths=lengths, return_carries=True, **unroll_kwargs)

    # Everything time-major and batched: (T, B, ...).
    batched, time_major = xs.ndim == 3, unroll_kwargs.get("time_major", False)

    def to_tb(a):
        return a[:, None] if not batched else (a if time_major else jnp.swapaxes(a, 0, 1))

    xs_tb = to_tb(xs)
    carries = jax.tree.map(to_tb, carries)
    T, B = xs_tb.shape[0], xs_tb.shape[1]
    carry0 = unroll_kwargs.get("initial_carry")
    if carry0 is None:
        carry0 = cell.initial_carry(params, (B,))
    elif not batched:
        carry0 = jax.tree.map(lambda a: a[None], carry0)
    fresh = unroll_kwargs.get("reset_carry")
    if fresh is None:
        fresh = carry0
    elif not batched:
        fresh = jax.tree.map(lambda a: a[None], fresh)
    # The carry entering step t: carry0 at t = 0, reset_carry (default carry0) at a reset, the carry
    # after step t - 1 otherwise.
    before = jax.tree.map(lambda c0, c: jnp.concatenate([c0[None], c[:-1]], axis=0), carry0, carries)
    if unroll_kwargs.get("resets") is not None:
        r = to_tb(unroll_kwargs["resets"])[..., None]
        before = jax.tree.map(lambda f, c: jnp.where(r, jnp.broadcast_to(f[None], c.shape), c), fresh, before)
    gates = cell.gates(params, before, cell.project(params, xs_tb))  # {name: (T, B, H)}

    if lengths is None:
        valid = jnp.ones((T, B, 1), bool)
    else:
        valid = (jnp.arange(T)[:, None] < jnp.clip(jnp.asarray(lengths).reshape(B), 0, T)[None, :])[..., None]
    # Averages in at least float32, so that long bfloat16 runs still count exactly.
    acc = jnp.promote_types(carries.hidden.dtype, jnp.float32)
    count = jnp.sum(valid, axis=(0, 1)).astype(acc)  # (1,)

    def per_unit(v):
        return jnp.sum(jnp.where(valid, v.astype(acc), jnp.zeros((), acc)), axis=(0, 1)) / count

    mean = {k: per_unit(a) for k, a in gates.items()}
    below = {k: per_unit(a < low) for k, a in gates.items()}
    above = {k: per_unit(a > high) for k, a in gates.items()}
    retain = mean_retain = timescale = None
    if cell.name in _RETAIN:
        retain = per_unit(_RETAIN[cell.name](gates, jnp.ones((T, B, cell.hidden_size), acc)))
        mean_retain = jnp.mean(retain)
        # r^k = exp(-k / tau); a unit that keeps everything (r = 1) never forgets. nan stays nan.
        timescale = jnp.where(retain >= 1.0, jnp.inf, -1.0 / jnp.log(retain))
    return GateStatistics(
        mean=mean,
        frac_below={k: jnp.mean(v) for k, v in below.items()},
        frac_above={k: jnp.mean(v) for k, v in above.items()},
        frac_below_per_unit=below,
        frac_above_per_unit=above,
        retain=retain,
        mean_retain=mean_retain,
        timescale=timescale,
    )
