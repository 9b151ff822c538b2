"""Gated recurrent unit (Cho et al. 2014) and minimal gated unit (Zhou et al. 2016)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks, activations, initializers
from rnnlab.cells import _base
from rnnlab.cells._base import Cell, RNNCarry, check_init_args, lead, zeros_carry
from rnnlab.precision import matmul

_ACTIVATION_CHOICES = ("tanh", "softsign")


class GRUParams(NamedTuple):
    """Parameters of :func:`gru`; gates fused in the order ``r, z, n`` (PyTorch's order).

    Attributes:
        input_kernel: W, shape ``(I, 3H)``.
        recurrent_kernel: U, shape ``(H, 3H)``.
        bias: b, shape ``(3H,)`` (added to the input part of every gate).
        recurrent_bias: b_hn, shape ``(H,)``, inside the reset product; only with ``reset_after``.
    """

    input_kernel: jax.Array
    recurrent_kernel: jax.Array
    bias: jax.Array
    recurrent_bias: jax.Array | None = None


class MGUParams(NamedTuple):
    """Parameters of :func:`mgu`; gates fused in the order ``f, n``.

    Attributes:
        input_kernel: W, shape ``(I, 2H)``.
        recurrent_kernel: U, shape ``(H, 2H)``.
        bias: b, shape ``(2H,)``.
    """

    input_kernel: jax.Array
    recurrent_kernel: jax.Array
    bias: jax.Array


def gru(
    hidden_size: int,
    *,
    reset_after: bool = True,
    activation: str = "tanh",
    input_init="glorot_uniform",
    recurrent_init="orthogonal",
) -> Cell:
    r"""Gated recurrent unit, in either published form.

    ::

        r_t = sigmoid(x_t W_r + h_{t-1} U_r + b_r)                         reset gate
        z_t = sigmoid(x_t W_z + h_{t-1} U_z + b_z)                         update gate
        n_t = phi(x_t W_n + b_n + r_t * (h_{t-1} U_n + b_hn))              reset_after=True
        n_t = phi(x_t W_n + b_n + (r_t * h_{t-1}) U_n)                     reset_after=False
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    and ``y_t = h_t``. ``reset_after=False`` is the form of Cho et al. (2014); ``reset_after=True``
    (the default) applies the reset after the recurrent matmul, as cuDNN, PyTorch and Flax do, which
    lets all three recurrent matmuls run as one. Shapes: ``x_t (..., I)``, ``h_t (..., H)``; see
    :class:`GRUParams`. The carry is :class:`RNNCarry`; the cell's ``gates`` returns ``r`` and ``z``.
    The update gate ``z`` is the share of ``h_{t-1}`` kept: the GRU's memory ("retain") gate.

    Args:
        hidden_size: H > 0.
        reset_after: which form, see above.
        activation: ``phi``, ``"tanh"`` (default) or ``"softsign"``.
        input_init: initializer of each ``(I, H)`` block of W; default Glorot uniform.
        recurrent_init: initializer of each ``(H, H)`` block of U; default orthogonal.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells
        >>> cell = cells.gru(5, reset_after=False)
        >>> params = cell.init(jax.random.key(0), input_size=2)
        >>> params.recurrent_bias is None
        True
        >>> cell.apply(params, cell.initial_carry(params, (4,)), jnp.ones((4, 2)))[1].shape
        (4, 5)
    """
    where = "gru"
    H = _checks.dimension(where, "hidden_size", hidden_size)
    if not isinstance(reset_after, bool):
        raise TypeError(f"{where}: reset_after must be a bool; got {reset_after!r}")
    phi = activations.get(activation, where, _ACTIVATION_CHOICES)
    w_init = initializers.get(input_init, where, "input_init")
    u_init = _base.recurrent_init(where, recurrent_init, None)

    def init(key, input_size, dtype=jnp.float32):
        input_size = check_init_args(where, input_size, dtype)
        k_w, k_u = jax.random.split(key)
        return GRUParams(
            input_kernel=initializers.blocks(w_init, k_w, input_size, H, 3, dtype),
            recurrent_kernel=initializers.blocks(u_init, k_u, H, H, 3, dtype),
            bias=jnp.zeros((3 * H,), dtype),
            recurrent_bias=jnp.zeros((H,), dtype) if reset_after else None,
        )

    def project(params, x):
        xw = matmul(x, params.input_kernel)
        return xw + lead(params.bias, xw)

    def forward(params, carry, xp, hu=None):
        """One step: ``(new carry, y, gates)``, the single copy of the math behind ``step``, ``gates``
        and ``combine`` (which passes ``hu = h @ U``)."""
        h = carry.hidden
        # jnp.split, not slices: its transpose is one concatenate, which XLA:CPU emits far faster
        # than the sum of padded slices that separate slices transpose to.
        x_r, x_z, x_n = jnp.split(xp, 3, axis=-1)
        if reset_after:
            hu = matmul(h, params.recurrent_kernel) if hu is None else hu
            h_r, h_z, h_n = jnp.split(hu, 3, axis=-1)
            r = jax.nn.sigmoid(x_r + h_r)
            z = jax.nn.sigmoid(x_z + h_z)
            n = phi(x_n + r * (h_n + lead(params.recurrent_bias, hu)))
        else:
            h_r, h_z = jnp.split(matmul(h, params.recurrent_kernel[:, : 2 * H]), 2, axis=-1)
            r = jax.nn.sigmoid(x_r + h_r)
            z = jax.nn.sigmoid(x_z + h_z)
            n = phi(x_n + matmul(r * h, params.recurrent_kernel[:, 2 * H :]))
        h_new = (1.0 - z) * n + z * h
        return RNNCarry(h_new), h_new, {"r": r, "z": z}

    def step(params, carry, xp):
        return forward(params, carry, xp)[:2]

    def gates(params, carry, xp):
        return forward(params, carry, xp)[2]

    def combine(params, carry, xp, rec):
        return forward(params, carry, xp, rec)[:2]

    options = dict(reset_after=reset_after, activation=activation, input_init=input_init, recurrent_init=recurrent_init)
    return Cell(
        _base.sampled_in_float32(init),
        zeros_carry(RNNCarry, 1, H),
        project,
        step,
        H,
        where,
        tuple(options.items()),
        gates,
        combine if reset_after else None,
    )


def mgu(
    hidden_size: int,
    *,
    activation: str = "tanh",
    input_init="glorot_uniform",
    recurrent_init="orthogonal",
) -> Cell:
    r"""Minimal gated unit (Zhou, Wu, Zhang & Zhou 2016): a GRU with a single gate.

    ::

        f_t = sigmoid(x_t W_f + h_{t-1} U_f + b_f)
        n_t = phi(x_t W_n + (f_t * h_{t-1}) U_n + b_n)
        h_t = (1 - f_t) * h_{t-1} + f_t * n_t

    and ``y_t = h_t``. Shapes: ``x_t (..., I)``, ``h_t (..., H)``; see :class:`MGUParams`. The cell's
    ``gates`` returns ``f``; note that here ``f`` is the share of ``h_{t-1}`` *replaced* (the share kept
    is ``1 - f``), the opposite of the LSTM's forget gate.

    Args:
        hidden_size: H > 0.
        activation: ``phi``, ``"tanh"`` (default) or ``"softsign"``.
        input_init: initializer of each ``(I, H)`` block of W; default Glorot uniform.
        recurrent_init: initializer of each ``(H, H)`` block of U; default orthogonal.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells
        >>> cell = cells.mgu(3)
        >>> params = cell.init(jax.random.key(1), input_size=2)
        >>> params.recurrent_kernel.shape
        (3, 6)
    """
    where = "mgu"
    H = _checks.dimension(where, "hidden_size", hidden_size)
    phi = activations.get(activation, where, _ACTIVATION_CHOICES)
    w_init = initializers.get(input_init, where, "input_init")
    u_init = _base.recurrent_init(where, recurrent_init, None)

    def init(key, input_size, dtype=jnp.float32):
        input_size = check_init_args(where, input_size, dtype)
        k_w, k_u = jax.random.split(key)
        return MGUParams(
            input_kernel=initializers.blocks(w_init, k_w, input_size, H, 2, dtype),
            recurrent_kernel=initializers.blocks(u_init, k_u, H, H, 2, dtype),
            bias=jnp.zeros((2 * H,), dtype),
        )

    def project(params, x):
        xw = matmul(x, params.input_kernel)
        return xw + lead(params.bias, xw)

    def forward(params, carry, xp):
        """One step: ``(new carry, y, gates)``, the single copy of the math behind ``step`` and ``gates``."""
        h = carry.hidden
        f = jax.nn.sigmoid(xp[..., :H] + matmul(h, params.recurrent_kernel[:, :H]))
        n = phi(xp[..., H:] + matmul(f * h, params.recurrent_kernel[:, H:]))
        h_new = (1.0 - f) * h + f * n
        return RNNCarry(h_new), h_new, {"f": f}

    def step(params, carry, xp):
        return forward(params, carry, xp)[:2]

    def gates(params, carry, xp):
        return forward(params, carry, xp)[2]

    options = dict(activation=activation, input_init=input_init, recurrent_init=recurrent_init)
    init = _base.sampled_in_float32(init)
    return Cell(init, zeros_carry(RNNCarry, 1, H), project, step, H, where, tuple(options.items()), gates)
