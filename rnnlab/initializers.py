"""Weight initializers for recurrent cells.

Every initializer has the signature ``init(key, shape, dtype) -> array`` (as ``jax.nn.initializers``),
and :func:`get` selects one by name. Recurrent matrices are initialized one ``(H, H)`` block per gate.

============== ================================================================================
name           distribution
============== ================================================================================
orthogonal     a random orthogonal matrix (Saxe et al. 2014); every singular value is 1
glorot_uniform U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010, "Xavier")
uniform        U(-1/sqrt(H), 1/sqrt(H)), H = fan_out (the PyTorch default for recurrent layers)
normal         N(0, 1/fan_in); its spectral radius tends to 1 as H grows (circular law)
identity       the identity matrix (Le, Jaitly & Hinton 2015, "IRNN")
zeros          all zeros
============== ================================================================================

:func:`with_spectral_radius` rescales any square initializer to an exact spectral radius
(``max |eigenvalue|``), e.g. a scaled normal matrix with radius 1.1 for an echo-state-style RNN.

Example:
    >>> import jax, numpy as np
    >>> from rnnlab import initializers
    >>> w = initializers.with_spectral_radius(initializers.get("normal"), 0.9)(jax.random.key(0), (8, 8))
    >>> round(float(np.max(np.abs(np.linalg.eigvals(np.asarray(w))))), 5)
    0.9
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab import _checks

Initializer = Callable[..., jax.Array]


def orthogonal(key, shape, dtype=jnp.float32):
    """A random (semi-)orthogonal matrix."""
    return jax.nn.initializers.orthogonal()(key, shape, dtype)


def glorot_uniform(key, shape, dtype=jnp.float32):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    return jax.nn.initializers.glorot_uniform()(key, shape, dtype)


def uniform(key, shape, dtype=jnp.float32):
    """U(-1/sqrt(H), 1/sqrt(H)) with H = shape[-1], as PyTorch initializes nn.RNN/LSTM/GRU."""
    bound = 1.0 / np.sqrt(shape[-1])
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def normal(key, shape, dtype=jnp.float32):
    """N(0, 1/fan_in): a square matrix of this law has spectral radius near 1 for large fan_in."""
    return jax.random.normal(key, shape, dtype) / float(np.sqrt(shape[0]))  # a Python float keeps the dtype


def identity(key, shape, dtype=jnp.float32):
    """The identity matrix (IRNN); ``key`` is unused."""
    del key
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"identity initializer: shape must be square (n, n); got {shape}")
    return jnp.eye(shape[0], dtype=dtype)


def zeros(key, shape, dtype=jnp.float32):
    """All zeros; ``key`` is unused."""
    del key
    return jnp.zeros(shape, dtype)


INITIALIZERS: dict[str, Initializer] = {
    "orthogonal": orthogonal,
    "glorot_uniform": glorot_uniform,
    "xavier_uniform": glorot_uniform,
    "uniform": uniform,
    "normal": normal,
    "identity": identity,
    "zeros": zeros,
}


def get(init: str | Initializer, where: str = "init", name: str = "init") -> Initializer:
    """Resolves an initializer given by name or passed as a callable ``(key, shape, dtype)``."""
    if callable(init):
        return init
    _checks.choice(where, name, init, INITIALIZERS)
    return INITIALIZERS[init]


def _spectral_radius_host(w: np.ndarray) -> np.ndarray:
    return np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64)))).astype(w.dtype)


def spectral_radius(w: jax.Array) -> jax.Array:
    """``max |eig(w)|`` of a square matrix; works under ``jit`` and ``vmap`` on every backend.

    The eigenvalues of a non-symmetric matrix are computed on the host with numpy, because
    ``jnp.linalg.eigvals`` exists only on CPU: directly when ``w`` holds values, and through
    ``jax.pure_callback`` when it is traced.
    """
    if _checks.is_concrete(w):
        return jnp.asarray(_spectral_radius_host(np.asarray(w)))
    out = jax.ShapeDtypeStruct((), w.dtype)
    return jax.pure_callback(_spectral_radius_host, out, w, vmap_method="sequential")


def with_spectral_radius(init: Initializer, radius: float) -> Initializer:
    """Wraps a square initializer so its samples have spectral radius exactly ``radius``."""
    radius = _checks.nonnegative("with_spectral_radius", "radius", radius)  # inf or NaN: inf/NaN weights

    def scaled(key, shape, dtype=jnp.float32):
        w = init(key, shape, dtype)
        rho = spectral_radius(w)
        return w * (radius / jnp.maximum(rho, jnp.finfo(dtype).tiny))

    return scaled


def blocks(init: Initializer, key: jax.Array, rows: int, cols: int, n_blocks: int, dtype) -> jax.Array:
    """Stacks ``n_blocks`` independent ``(rows, cols)`` samples side by side: ``(rows, n_blocks * cols)``.

    Gated cells fuse their gates into one matrix, but each gate's block is initialized as if it
    were its own ``(rows, cols)`` layer, so fan-in/fan-out and orthogonality are per gate.
    """
    if n_blocks == 0:
        return jnp.zeros((rows, 0), dtype)
    keys = jax.random.split(key, n_blocks)
    return jnp.concatenate([init(k, (rows, cols), dtype) for k in keys], axis=1)
