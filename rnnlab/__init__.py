"""rnnlab: recurrent networks as pure functions on JAX.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import rnnlab
    >>> cell = rnnlab.cells.gru(8)
    >>> params = cell.init(jax.random.key(0), input_size=2)
    >>> carry, ys = rnnlab.unroll(cell, params, jnp.zeros((3, 5, 2)))
    >>> ys.shape
    (3, 5, 8)
"""

from rnnlab import (
    activations,
    cells,
    checkpoint,
    config,
    diagnostics,
    distributed,
    fit,
    initializers,
    layers,
    models,
    precision,
    protocols,
    runs,
    sweep,
    tasks,
    train,
)
from rnnlab.cells import Cell
from rnnlab.layers import Bidirectional, Stack, bidirectional, stack
from rnnlab.reference import reference_unroll
from rnnlab.unroll import default_unroll, unroll

__version__ = "0.1.0"

__all__ = [
    "activations",
    "cells",
    "initializers",
    "layers",
    "train",
    "tasks",
    "diagnostics",
    "fit",
    "models",
    "precision",
    "protocols",
    "runs",
    "checkpoint",
    "config",
    "distributed",
    "sweep",
    "Cell",
    "Bidirectional",
    "Stack",
    "bidirectional",
    "stack",
    "unroll",
    "default_unroll",
    "reference_unroll",
]
