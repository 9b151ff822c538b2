"""Recurrent cells as pure functions: ``cell = factory(hidden_size, **options)``.

A :class:`Cell` bundles ``init``, ``initial_carry``, ``project`` and ``step`` (with
``apply = step o project``). Params and carries are NamedTuples of arrays.
"""

from rnnlab.cells._base import Cell, RNNCarry
from rnnlab.cells.elman import ElmanParams, elman, irnn
from rnnlab.cells.gru import GRUParams, MGUParams, gru, mgu
from rnnlab.cells.lstm import VARIANTS as LSTM_VARIANTS
from rnnlab.cells.lstm import LayerNormParams, LSTMCarry, LSTMParams, gate_names, lstm
from rnnlab.cells.registry import REGISTRY, make, register

__all__ = [
    "Cell",
    "RNNCarry",
    "LSTMCarry",
    "ElmanParams",
    "LSTMParams",
    "LayerNormParams",
    "GRUParams",
    "MGUParams",
    "LSTM_VARIANTS",
    "elman",
    "irnn",
    "lstm",
    "gru",
    "mgu",
    "gate_names",
    "REGISTRY",
    "make",
    "register",
]
