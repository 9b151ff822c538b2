"""Argument checks shared by the public API.

Every check runs on Python values or on array *shapes and dtypes*, so it fires before
tracing and names the argument, the expected value and the actual one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import jax
import numpy as np


def positive_int(where: str, name: str, value) -> int:
    """Returns ``value`` as an int, raising if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be a positive int; got {value!r} of type {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{where}: {name} must be a positive int; got {value}")
    return int(value)


MAX_DIMENSION = 2**31


def dimension(where: str, name: str, value) -> int:
    """Returns ``value`` as an int, raising unless it is a positive int below ``2**31``: an array axis.

    Past that, the product of two axes can overflow XLA's int64 shape arithmetic, which aborts the process.
    """
    value = positive_int(where, name, value)
    if value >= MAX_DIMENSION:
        raise ValueError(f"{where}: {name} must be < 2**31 (an array axis); got {value}")
    return value


def choice(where: str, name: str, value, choices: Iterable):
    """Returns ``value`` if it is one of ``choices``, else raises a ValueError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{where}: {name} must be one of {sorted(map(str, choices))}; got {value!r}")
    return value


def real_number(where: str, name: str, value) -> float:
    """Returns ``value`` as a float, raising if it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number; got {value!r} of type {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range; its digits would swamp the message
        raise ValueError(
            f"{where}: {name} must be a real number in the float range; got an int of {int(value).bit_length()} bits"
        ) from None


def nonnegative(where: str, name: str, value) -> float:
    """Returns ``value`` as a float, raising unless it is a finite real number >= 0 (so not NaN)."""
    number = real_number(where, name, value)
    if not (number >= 0 and math.isfinite(number)):
        raise ValueError(f"{where}: {name} must be a finite number >= 0; got {value}")
    return number


def is_concrete(x) -> bool:
    """True when ``x`` holds values now (not a tracer inside ``jit``/``vmap``)."""
    return not isinstance(x, jax.core.Tracer)


def float_dtype(where: str, name: str, x) -> np.dtype:
    """Returns the dtype of ``x``, raising a TypeError unless it is a floating dtype."""
    dtype = np.dtype(x.dtype)
    if not jax.numpy.issubdtype(dtype, np.floating):  # numpy's own test says no to bfloat16
        raise TypeError(
            f"{where}: {name} must have a floating dtype (float16/bfloat16/float32/float64); got {dtype}. "
            f"Cast it first, e.g. {name}.astype(jnp.float32)."
        )
    return dtype
