"""The Elman (simple) recurrent cell."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks, activations, initializers
from rnnlab.cells import _base
from rnnlab.cells._base import Cell, RNNCarry, check_init_args, lead, zeros_carry
from rnnlab.precision import matmul


class ElmanParams(NamedTuple):
    """Parameters of :func:`elman`.

    Attributes:
        input_kernel: W, shape ``(I, H)``.
        recurrent_kernel: U, shape ``(H, H)``.
        bias: b, shape ``(H,)``.
    """

    input_kernel: jax.Array
    recurrent_kernel: jax.Array
    bias: jax.Array


def elman(
    hidden_size: int,
    *,
    activation: str = "tanh",
    input_init="glorot_uniform",
    recurrent_init="orthogonal",
    spectral_radius: float | None = None,
) -> Cell:
    r"""The Elman RNN: ``h_t = phi(x_t W + h_{t-1} U + b)``, output ``y_t = h_t``.

    Shapes: ``x_t (..., I)``, ``h_t (..., H)``, ``W (I, H)``, ``U (H, H)``, ``b (H,)``.
    The carry is :class:`RNNCarry` ``(hidden,)``.

    Backpropagated error is multiplied by ``diag(phi'(a_t)) U^T`` at every step, so with
    ``sigma_max(U) * max|phi'| < 1`` it vanishes exponentially in the lag (Pascanu et al. 2013).

    Args:
        hidden_size: H > 0.
        activation: ``phi``: ``"tanh"`` (default), ``"relu"``, ``"sigmoid"``, ``"softsign"`` or
            ``"identity"`` (a linear RNN).
        input_init: initializer of W (name from :mod:`rnnlab.initializers` or a callable);
            default Glorot/Xavier uniform.
        recurrent_init: initializer of U: ``"orthogonal"`` (default; every singular value 1, so
            error neither grows nor shrinks through U alone), ``"glorot_uniform"``, ``"uniform"``
            (+-1/sqrt(H), PyTorch's default), ``"normal"`` or ``"identity"`` (IRNN with relu).
        spectral_radius: if given, U is rescaled to exactly this spectral radius after sampling
            (``recurrent_init="normal", spectral_radius=1.1`` is a scaled normal matrix).

    Returns:
        A :class:`Cell`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells
        >>> cell = cells.elman(4)
        >>> params = cell.init(jax.random.key(0), input_size=3)
        >>> carry, y = cell.apply(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
        >>> y.shape, carry.hidden.shape
        ((2, 4), (2, 4))
    """
    where = "elman"
    hidden_size = _checks.dimension(where, "hidden_size", hidden_size)
    phi = activations.get(activation, where)
    w_init = initializers.get(input_init, where, "input_init")
    u_init = _base.recurrent_init(where, recurrent_init, spectral_radius)

    def init(key, input_size, dtype=jnp.float32):
        input_size = check_init_args(where, input_size, dtype)
        k_w, k_u = jax.random.split(key)
        return ElmanParams(
            input_kernel=w_init(k_w, (input_size, hidden_size), dtype),
            recurrent_kernel=u_init(k_u, (hidden_size, hidden_size), dtype),
            bias=jnp.zeros((hidden_size,), dtype),
        )

    def project(params, x):
        xw = matmul(x, params.input_kernel)
        return xw + lead(params.bias, xw)

    def combine(params, carry, xp, rec):
        h = phi(xp + rec)
        return RNNCarry(h), h

    def step(params, carry, xp):
        return combine(params, carry, xp, matmul(carry.hidden, params.recurrent_kernel))

    options = dict(
        activation=activation, input_init=input_init, recurrent_init=recurrent_init, spectral_radius=spectral_radius
    )
    return Cell(
        _base.sampled_in_float32(init),
        zeros_carry(RNNCarry, 1, hidden_size),
        project,
        step,
        hidden_size,
        where,
        tuple(options.items()),
        combine=combine,
        additive=True,
    )


def irnn(hidden_size: int, *, scale: float = 1.0, input_init="glorot_uniform") -> Cell:
    """IRNN (Le, Jaitly & Hinton 2015): a relu Elman RNN whose U starts as ``scale * I``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells
        >>> p = cells.irnn(3).init(jax.random.key(0), 2)
        >>> bool(jnp.all(p.recurrent_kernel == jnp.eye(3)))
        True
    """
    scale = _checks.nonnegative("irnn", "scale", scale)
    return elman(
        hidden_size, activation="relu", input_init=input_init, recurrent_init="identity", spectral_radius=scale
    )
