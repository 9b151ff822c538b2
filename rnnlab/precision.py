r"""Mixed-precision matmuls: low-precision operands, products in the caller's float dtype.

Every matmul of the built-in cells goes through :func:`matmul`. By default it is ``a @ b``. Inside
``with matmul_dtype(jnp.bfloat16):`` (which :func:`rnnlab.unroll` enters for its
``matmul_dtype=`` argument) both operands are rounded to bfloat16 and the product is accumulated
and returned in ``a``'s dtype (float32):

.. math::

    \mathrm{matmul}(a, b) = \mathrm{fl}_{32}\big(\mathrm{bf16}(a)\, \mathrm{bf16}(b)\big),

and so are the two matmuls of its backward pass, ``da = \mathrm{bf16}(g)\, \mathrm{bf16}(b)^\top`` and
``db = \mathrm{bf16}(a)^\top \mathrm{bf16}(g)`` (summed over every row of ``a``), returned in
``a``'s and ``b``'s dtypes. The weights stay float32 (the optimizer updates float32 master weights), and so do the
carry, the gates and every pointwise operation: only the matmul operands lose precision (8
significant bits instead of 24). On CPUs with AVX512-BF16 and on GPUs with tensor cores the
matmuls then run at about twice the float32 rate.

Example:
    >>> import jax.numpy as jnp
    >>> from rnnlab import precision
    >>> a, b = jnp.full((2, 3), 1.0 + 2.0**-10), jnp.ones((3, 4))
    >>> float(precision.matmul(a, b)[0, 0])  # float32: 3 * (1 + 2**-10)
    3.0029296875
    >>> with precision.matmul_dtype(jnp.bfloat16):
    ...     float(precision.matmul(a, b)[0, 0])  # 1 + 2**-10 rounds to 1 in bfloat16
    3.0
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp
import numpy as np

_DTYPE: contextvars.ContextVar = contextvars.ContextVar("rnnlab_matmul_dtype", default=None)


def current():
    """The matmul operand dtype in force (a numpy dtype), or ``None`` for plain ``a @ b``."""
    return _DTYPE.get()


def check_dtype(where: str, dtype):
    """``dtype`` as a numpy floating dtype, or ``None``; a TypeError naming ``matmul_dtype`` otherwise."""
    if dtype is None:
        return None
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: matmul_dtype must be a floating dtype such as jnp.bfloat16; got {dtype!r}") from None
    if not jnp.issubdtype(dt, np.floating):
        raise TypeError(f"{where}: matmul_dtype must be a floating dtype such as jnp.bfloat16; got {dt}")
    return dt


@contextlib.contextmanager
def matmul_dtype(dtype):
    """Within the block (while tracing), :func:`matmul` rounds its operands to ``dtype``; ``None``: off."""
    token = _DTYPE.set(check_dtype("matmul_dtype", dtype))
    try:
        yield
    finally:
        _DTYPE.reset(token)


def transposed(a: jax.Array) -> jax.Array:
    """``a.T`` of a 2-D array as a transposed copy, for the GEMMs that contract rows (``A^T B``).

    XLA folds a plain transpose into the GEMM as a transposed operand, which XLA:CPU runs only in
    float32 (converting bfloat16 operands up first) and more slowly: at ``(3200, 256)^T (3200,
    1024)`` 9.7 ms in bfloat16 and 9.5 ms in float32, against 5.7 and 8.9 ms for this copy and an
    untransposed GEMM. Through a 3-D transpose the copy stays a copy.
    """
    m, n = a.shape
    return jnp.transpose(a.reshape(m, n, 1), (1, 0, 2)).reshape(n, m)


def matmul(a: jax.Array, b: jax.Array, dtype=None) -> jax.Array:
    """``a (..., K) @ b (K, N)``; with a matmul dtype (``dtype`` or the one in force) set and narrower
    than ``a``'s, in mixed precision as described in the module docstring."""
    dt = current() if dtype is None else jnp.dtype(dtype)
    if dt is None or jnp.finfo(dt).bits >= jnp.finfo(a.dtype).bits:
        return a @ b
    return _mixed(a, b, dt)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _mixed(a, b, dt):
    return jnp.matmul(a.astype(dt), b.astype(dt), preferred_element_type=a.dtype)


def _mixed_fwd(a, b, dt):
    a_low, b_low = a.astype(dt), b.astype(dt)
    # b's own dtype travels as a scalar: residuals must be arrays. (a's is the cotangent's.)
    return jnp.matmul(a_low, b_low, preferred_element_type=a.dtype), (a_low, b_low, jnp.zeros((), b.dtype))


def _mixed_bwd(dt, res, g):
    a_low, b_low, b_like = res
    b_dtype = b_like.dtype
    # Contracting b's second axis directly: written as ``g @ b.T``, XLA:CPU widened this GEMM to
    # float32 (converting both operands up first, 2.3x slower at (6400, 2048) x (2048, 128)).
    dims = (((g.ndim - 1,), (1,)), ((), ()))
    da = jax.lax.dot_general(g.astype(dt), b_low, dims, preferred_element_type=g.dtype)
    rows_a = a_low.reshape(-1, a_low.shape[-1])  # every leading axis of a is a row: db sums over them
    db = jnp.matmul(transposed(rows_a), g.reshape(-1, g.shape[-1]).astype(dt), preferred_element_type=b_dtype)
    return da, db


_mixed.defvjp(_mixed_fwd, _mixed_bwd)
