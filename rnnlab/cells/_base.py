"""The cell protocol: a small immutable bundle of pure functions."""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab import _checks, initializers

Params = Any
Carry = Any


class Cell(NamedTuple):
    """A recurrent cell: pure functions and the static facts the unroller needs.

    A step of every cell is split in two so that the unroller can hoist the input-dependent part
    out of the time loop (one large matmul over all timesteps, as cuDNN does):

    * ``project(params, x) -> xp`` maps inputs ``(..., I)`` to the input part of every gate
      pre-activation ``(..., G)`` (``x @ W + b``). It has no time dependence.
    * ``step(params, carry, xp) -> (carry, y)`` is the recurrence: the recurrent matmul and the
      pointwise math, for one timestep of ``xp`` with shape ``(..., G)``.

    ``apply(params, carry, x) = step(params, carry, project(params, x))`` is one step in
    ``jax.lax.scan`` order.

    A gated cell also exposes its gates for diagnostics (:func:`rnnlab.diagnostics.gate_statistics`):

    * ``gates(params, carry, xp) -> dict[str, array]``: the gate activations of the step that
      ``step(params, carry, xp)`` computes, each ``(..., H)``, keyed by the names of the cell's
      equations (``"i"``, ``"f"``, ``"o"`` for the LSTM; ``"r"``, ``"z"`` for the GRU; ``"f"`` for
      the MGU). Built from the same function as ``step``, so the two cannot disagree; under ``jit``
      whatever one of them does not return is dead code and is eliminated.

    A cell whose step reads ``h_{t-1}`` through one matmul with ``params.recurrent_kernel`` also
    exposes the step after that matmul, which lets :func:`rnnlab.unroll` run its fused backward
    pass (all weight gradients as one GEMM over every timestep, see :mod:`rnnlab.fused`):

    * ``combine(params, carry, xp, rec) -> (carry, y)`` with ``rec = carry.hidden @
      params.recurrent_kernel`` of shape ``(..., G)``; ``step`` is defined through it, so
      ``step(params, carry, xp) == combine(params, carry, xp, carry.hidden @ U)``.

    Where ``combine`` reads ``xp`` and ``rec`` only through their sum ``xp + rec`` (the Elman
    cell, the LSTM without layer norm), the cell says so with ``additive=True``; the fused
    backward then keeps one ``(T, B, G)`` buffer where it would keep two.

    Attributes:
        init: ``init(key, input_size, dtype=jnp.float32) -> params``.
        initial_carry: ``initial_carry(params, batch_shape=()) -> carry`` (zeros).
        project: input projection, see above.
        step: recurrent step, see above.
        hidden_size: H, the width of the output ``y`` and of each carry component.
        name: the factory's name, e.g. ``"lstm"``.
        options: the resolved keyword options the cell was built with.
        gates: the gate activations, see above; ``None`` for a cell without gates (Elman).
        combine: the step after its recurrent matmul, see above; ``None`` where the cell has
            further matmuls that depend on h_{t-1} (the GRU with ``reset_after=False``, the MGU).
        additive: ``combine(params, carry, xp, rec)`` depends on ``xp`` and ``rec`` only through
            ``xp + rec``, see above.
    """

    init: Callable[..., Params]
    initial_carry: Callable[..., Carry]
    project: Callable[[Params, jax.Array], jax.Array]
    step: Callable[[Params, Carry, jax.Array], tuple[Carry, jax.Array]]
    hidden_size: int
    name: str
    options: tuple[tuple[str, Any], ...] = ()
    gates: Callable[[Params, Carry, jax.Array], dict[str, jax.Array]] | None = None
    combine: Callable[[Params, Carry, jax.Array, jax.Array], tuple[Carry, jax.Array]] | None = None
    additive: bool = False

    def apply(self, params: Params, carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
        """One step: ``(carry, x) -> (carry, y)``; ``x`` has shape ``(..., I)``, the carry ``(..., H)``.

        Raises:
            TypeError: ``x`` is not a floating array, ``params`` are not the NamedTuple this cell's
                ``init`` builds, or ``carry`` is not this cell's carry.
            ValueError: ``x`` has no feature axis or not the ``I`` features of ``params``, a field of
                ``params`` is missing, extra or of another shape than ``init`` gives (another hidden
                size or variant), or the carry's batch shape is not ``x.shape[:-1]`` (shapes are
                checked, so this holds under ``jit`` too, before anything is traced).
        """
        check_step(self, params, carry, x)
        return self.step(params, carry, self.project(params, x))

    @property
    def output_size(self) -> int:
        """The width of ``y``: ``hidden_size``."""
        return self.hidden_size


class RNNCarry(NamedTuple):
    """The carry of single-state cells (Elman, GRU, MGU): ``hidden`` is h_t, shape ``(..., H)``."""

    hidden: jax.Array


def check_step(cell: Cell, params: Params, carry: Carry, x) -> None:
    """The argument checks of :meth:`Cell.apply`: on types and static shapes only."""
    where = f"{cell.name}.apply"
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{where}: x must be an array of shape (..., I); got {type(x).__name__}")
    kernel = getattr(params, "input_kernel", None)
    n_in = "I" if kernel is None else kernel.shape[0]
    if x.ndim < 1 or (kernel is not None and x.shape[-1] != n_in):
        raise ValueError(f"{where}: x must have shape (..., {n_in}), features last; got shape {tuple(x.shape)}")
    _checks.float_dtype(where, "x", x)
    check_params(where, cell, params, x.shape[-1] if kernel is None else n_in)
    carry_type = getattr(cell.initial_carry, "carry_type", None)
    if carry_type is not None and not isinstance(carry, carry_type):
        raise TypeError(
            f"{where}: carry must be a {carry_type.__name__}, e.g. cell.initial_carry(params, batch_shape); "
            f"got {type(carry).__name__}"
        )
    batch = tuple(x.shape[:-1])
    for leaf in jax.tree.leaves(carry):
        shape = tuple(jnp.shape(leaf))
        if shape[:-1] != batch:
            raise ValueError(
                f"{where}: carry leaves must have shape (*batch, width) with batch {batch}, that of x "
                f"{tuple(x.shape)}; got a leaf of shape {shape}"
            )
    hidden = getattr(carry, "hidden", None)
    if hidden is not None and tuple(jnp.shape(hidden))[-1:] != (cell.hidden_size,):
        raise ValueError(
            f"{where}: carry.hidden must have shape {(*batch, cell.hidden_size)}; got {tuple(jnp.shape(hidden))}"
        )


# cell.init -> {(input_size, dtype): the params' ShapeDtypeStructs}. Tracing init for its shapes
# takes milliseconds, too slow to repeat at every step of a Python loop over cell.apply; keyed
# weakly on the init function, so the entry goes with the cell.
_PARAM_SHAPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def param_shapes(cell: Cell, input_size: int, dtype) -> Params:
    """``cell.init(key, input_size, dtype)`` as ``jax.ShapeDtypeStruct`` leaves, without running it."""
    key = (int(input_size), np.dtype(dtype))
    try:
        cache = _PARAM_SHAPES.setdefault(cell.init, {})
    except TypeError:  # an init that cannot be weakly referenced: not cached
        cache = {}
    if key not in cache:
        cache[key] = jax.eval_shape(lambda: cell.init(jax.random.key(0), *key))
    return cache[key]


def _describe(value) -> str:
    if value is None:
        return "None"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"an array of shape {tuple(value.shape)}"
    return type(value).__name__


def check_params(where: str, cell: Cell, params: Params, input_size: int, path: str = "params") -> None:
    """Raises unless ``params`` have the structure, shapes and dtypes of ``cell.init(key, input_size, dtype)``.

    Params of another cell type, hidden size or variant (peepholes, layer norm, CIFG, ...) would
    otherwise fail deep inside a matmul or split, or run silently; a leaf cast to another dtype than
    the rest would silently promote the step's math. ``dtype`` is the first leaf's. Only shapes and
    dtypes are compared (a ``ShapeDtypeStruct`` of ``cell.init``, traced once per cell, input size and
    dtype), so this runs on tracers under ``jit`` and ``vmap`` (where each leaf has its per-example
    shape) and does no device work. ``path`` names ``params`` in the messages (``params[1].forward``
    inside a stack).

    Raises:
        TypeError: ``params`` (or a part of them) is not the NamedTuple ``cell.init`` returns, or a
            leaf's dtype differs from what ``cell.init`` gives next to the first leaf's.
        ValueError: a field is missing, present where the cell has none, or of another shape.
    """
    leaves = jax.tree.leaves(params)
    if not leaves or not all(hasattr(a, "shape") and hasattr(a, "dtype") for a in leaves):
        raise TypeError(f"{where}: {path} must be a pytree of arrays, as from cell.init; got {_describe(params)}")
    if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral) or input_size < 1:
        return  # no input width to build the expected params for; the checks on xs report it
    want = param_shapes(cell, input_size, leaves[0].dtype)
    what = f"the {cell.name} cell (hidden_size={cell.hidden_size}, input size {input_size})"
    _match(where, what, path, params, want)


def _match(where: str, what: str, path: str, got, want) -> None:
    if isinstance(want, jax.ShapeDtypeStruct):
        if not (hasattr(got, "shape") and hasattr(got, "dtype")):
            raise ValueError(
                f"{where}: {path} must be an array of shape {tuple(want.shape)} for {what}; got {_describe(got)}. "
                "Build params with this cell's init."
            )
        if tuple(got.shape) != tuple(want.shape):
            raise ValueError(
                f"{where}: {path} must have shape {tuple(want.shape)} for {what}; got {tuple(got.shape)}. "
                "Build params with this cell's init."
            )
        if np.dtype(got.dtype) != np.dtype(want.dtype):
            raise TypeError(
                f"{where}: {path} must have dtype {np.dtype(want.dtype)}, as this cell's init builds them next to "
                f"the first parameter's; got {np.dtype(got.dtype)}. Cast all params to one dtype, e.g. "
                "jax.tree.map(lambda a: a.astype(jnp.float32), params)."
            )
    elif want is None:
        if got is not None:
            raise ValueError(
                f"{where}: {path} must be None: {what} has no such parameters; got {_describe(got)}. "
                "Build params with this cell's init."
            )
    elif isinstance(want, tuple) and hasattr(want, "_fields"):
        if type(got) is not type(want):
            raise TypeError(
                f"{where}: {path} must be {type(want).__name__}, as {what} builds with its init; got {_describe(got)}"
            )
        for field in want._fields:
            _match(where, what, f"{path}.{field}", getattr(got, field), getattr(want, field))
    else:  # a custom cell's own containers: compare structure, then shapes leaf by leaf
        if jax.tree.structure(got) != jax.tree.structure(want):
            raise TypeError(
                f"{where}: {path} must have the structure {jax.tree.structure(want)} of {what}; "
                f"got {jax.tree.structure(got)}"
            )
        for (key, g), w in zip(jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(want)):
            _match(where, what, path + jax.tree_util.keystr(key), g, w)


def sampled_in_float32(init: Callable[..., Params]) -> Callable[..., Params]:
    """``init`` that also serves float16/bfloat16: it samples in float32, then casts.

    The orthogonal initializer takes a QR decomposition, which has no half-precision kernel.
    """

    def wrapped(key, input_size, dtype=jnp.float32):
        if isinstance(dtype, (type, np.dtype, str)) and jnp.issubdtype(dtype, jnp.floating):
            if jnp.finfo(dtype).bits < 32:
                return jax.tree.map(lambda a: a.astype(dtype), init(key, input_size, jnp.float32))
        return init(key, input_size, dtype)

    return wrapped


def batch_shape_tuple(where: str, batch_shape) -> tuple[int, ...]:
    """``batch_shape`` as a tuple of ints >= 0, raising a TypeError/ValueError that names it otherwise."""
    if isinstance(batch_shape, (str, bytes)) or not isinstance(batch_shape, (tuple, list)):
        raise TypeError(f"{where}: batch_shape must be a tuple of ints, e.g. (B,) or (); got {batch_shape!r}")
    for n in batch_shape:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"{where}: batch_shape must be a tuple of ints >= 0; got {tuple(batch_shape)!r}")
    if math.prod(batch_shape) >= _checks.MAX_DIMENSION:
        raise ValueError(f"{where}: batch_shape must hold fewer than 2**31 elements; got {tuple(batch_shape)!r}")
    return tuple(int(n) for n in batch_shape)


def params_dtype(params: Params):
    """The dtype of the first array in ``params``."""
    return jax.tree.leaves(params)[0].dtype


def zeros_carry(carry_type, n_fields: int, hidden_size: int):
    """An ``initial_carry`` that fills ``n_fields`` fields of ``carry_type`` with zeros ``(*batch, H)``."""

    def initial_carry(params: Params, batch_shape: tuple[int, ...] = ()):
        batch_shape = batch_shape_tuple("initial_carry", batch_shape)
        z = jnp.zeros((*batch_shape, hidden_size), params_dtype(params))
        return carry_type(*([z] * n_fields))

    initial_carry.carry_type = carry_type  # what Cell.apply checks its carry against
    return initial_carry


def recurrent_init(where: str, recurrent_init, spectral_radius):
    """Resolves the recurrent initializer, optionally rescaled to an exact spectral radius."""
    init = initializers.get(recurrent_init, where, "recurrent_init")
    if spectral_radius is not None:
        init = initializers.with_spectral_radius(init, _checks.nonnegative(where, "spectral_radius", spectral_radius))
    return init


def finite_number(where: str, name: str, value) -> float:
    """Returns ``value`` as a float, raising unless it is a finite real number: an infinite or NaN
    option would put inf/NaN into the weights ``init`` draws."""
    number = _checks.real_number(where, name, value)
    if not math.isfinite(number):
        raise ValueError(f"{where}: {name} must be a finite number; got {number}")
    return number


def check_init_args(where: str, input_size, dtype) -> int:
    input_size = _checks.dimension(where, "input_size", input_size)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: dtype must be a floating dtype; got {jnp.dtype(dtype)}")
    return input_size


def lead(v: jax.Array, like: jax.Array) -> jax.Array:
    """``v`` with leading unit axes so it has the rank of ``like``: explicit broadcasting, which
    keeps the cells usable under ``jax_numpy_rank_promotion="raise"``."""
    return v.reshape((1,) * (like.ndim - v.ndim) + v.shape)
