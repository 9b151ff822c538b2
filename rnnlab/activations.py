"""Pointwise activations selectable by name.

``softsign(x) = x / (1 + |x|)`` is offered beside ``tanh``: it saturates polynomially rather than
exponentially, so its derivative ``1 / (1 + |x|)^2`` stays larger far from zero.

Example:
    >>> import jax.numpy as jnp
    >>> from rnnlab.activations import get
    >>> get("softsign")(jnp.array([-3.0, 0.0, 1.0])).tolist()
    [-0.75, 0.0, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from rnnlab import _checks


def softsign(x: jax.Array) -> jax.Array:
    """``x / (1 + |x|)``, a tanh-like squashing function with polynomial tails."""
    return x / (1 + jnp.abs(x))


def identity(x: jax.Array) -> jax.Array:
    """Returns ``x`` unchanged."""
    return x


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "softsign": softsign,
    "identity": identity,
}


def get(name: str, where: str = "activation", allowed: tuple[str, ...] | None = None) -> Callable:
    """Returns the activation called ``name``, raising a ValueError naming the choices."""
    _checks.choice(where, "activation", name, allowed if allowed is not None else ACTIVATIONS)
    return ACTIVATIONS[name]
