"""Cells by name, so experiments can select them from a config string."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from rnnlab.cells._base import Cell
from rnnlab.cells.elman import elman, irnn
from rnnlab.cells.gru import gru, mgu
from rnnlab.cells.lstm import lstm

REGISTRY: dict[str, Callable[..., Cell]] = {
    "elman": elman,
    "irnn": irnn,
    "lstm": lstm,
    "gru": gru,
    "mgu": mgu,
}


def register(name: str, factory: Callable[..., Cell]) -> None:
    """Adds a cell factory ``factory(hidden_size, **options) -> Cell`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register: name must be a non-empty string; got {name!r}")
    if name in REGISTRY:
        raise ValueError(f"register: a cell named {name!r} is already registered")
    REGISTRY[name] = factory


def make(name: str, hidden_size: int, **options) -> Cell:
    """Builds the cell registered as ``name``.

    Example:
        >>> from rnnlab import cells
        >>> cells.make("lstm", 16, forget_bias=5.0).name
        'lstm'
        >>> cells.make("lstn", 16)
        Traceback (most recent call last):
        ...
        ValueError: make: unknown cell 'lstn'; known cells: ['elman', 'gru', 'irnn', 'lstm', 'mgu']
    """
    if name not in REGISTRY:
        raise ValueError(f"make: unknown cell {name!r}; known cells: {sorted(REGISTRY)}")
    factory = REGISTRY[name]
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        known = [k for k, p in params.items() if p.kind is p.KEYWORD_ONLY]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"make: cell {name!r} has no option(s) {unknown}; its options are {known}")
    return factory(hidden_size, **options)
