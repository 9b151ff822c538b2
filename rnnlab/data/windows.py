r"""From one series to supervised forecasting examples, without looking at the future.

* :func:`chronological_split` cuts a series into contiguous train / validation / test parts, in
  time order (the test part is the held-out tail).
* :class:`Standardizer` is fitted on the training part only and applied to every part:
  ``z = (x - mean_train) / std_train`` per feature.
* :func:`windows` makes examples: ``input_length`` past steps -> the next ``horizon`` steps. With
  ``horizon = 1`` that is many-to-one; with ``horizon > 1`` a sequence-to-sequence horizon
  (many-to-many).
* :func:`errors` scores forecasts in the units of the data: RMSE and MAE.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnlab import _checks


def _as_2d(where: str, series) -> np.ndarray:
    x = np.asarray(series, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{where}: series must have shape (T,) or (T, F) with T >= 1; got {np.shape(series)}")
    return x


class Splits(NamedTuple):
    """Contiguous parts of a series in time order, each ``(T_part, F)`` (or ``(T_part,)`` as given)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def chronological_split(series, fractions=(0.7, 0.15, 0.15)) -> Splits:
    """Cuts ``series`` (``(T,)`` or ``(T, F)``) into train, validation and test parts of the given fractions.

    Raises:
        ValueError: fractions that are not three numbers >= 0 summing to 1, or a part that would be empty.

    Example:
        >>> s = chronological_split(np.arange(10.0), (0.6, 0.2, 0.2))
        >>> s.train.tolist(), s.validation.tolist(), s.test.tolist()
        ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0], [8.0, 9.0])
    """
    where = "chronological_split"
    x = np.asarray(series)
    f = np.asarray(fractions, np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"{where}: fractions must be three numbers >= 0 summing to 1; got {fractions!r}")
    n = x.shape[0]
    a, b = round(n * f[0]), round(n * (f[0] + f[1]))
    parts = Splits(x[:a], x[a:b], x[b:])
    empty = [name for name, p in zip(Splits._fields, parts) if p.shape[0] == 0]
    if empty:
        raise ValueError(f"{where}: a series of {n} steps gives an empty {empty} part with fractions {tuple(f)}")
    return parts


class Standardizer(NamedTuple):
    """Per-feature ``z = (x - mean) / std`` with statistics from the data it was fitted on.

    Attributes:
        mean: ``(F,)`` means of the fitting data.
        std: ``(F,)`` standard deviations (1 where a feature is constant, so it maps to 0).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train) -> Standardizer:
        """Statistics of ``train`` (``(T,)`` or ``(T, F)``), the training split only.

        Example:
            >>> s = Standardizer.fit([1.0, 2.0, 3.0])
            >>> z = s.transform([2.0, 4.0])                      # mean 2, std sqrt(2/3)
            >>> np.round(z, 4).tolist(), np.round(s.inverse(z), 12).tolist()
            ([0.0, 2.4495], [2.0, 4.0])
        """
        x = _as_2d("Standardizer.fit", train)
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, x) -> np.ndarray:
        """Standardizes ``x`` of shape ``(..., F)`` (or ``(T,)`` for one feature); same shape back."""
        x = np.asarray(x, np.float64)
        return (x - self._fit(x, self.mean)) / self._fit(x, self.std)

    def inverse(self, z) -> np.ndarray:
        """Back to the data's units: ``z * std + mean``."""
        z = np.asarray(z, np.float64)
        return z * self._fit(z, self.std) + self._fit(z, self.mean)

    @staticmethod
    def _fit(x, v):
        # A 1-D series is one feature: it takes the (1,) statistics as scalars; anything else has F on its last axis.
        if x.ndim == 1 and v.shape[0] == 1:
            return v[0]
        if x.ndim == 0 or x.shape[-1] != v.shape[0]:
            got = "a 1-D series (one feature)" if x.ndim == 1 else f"shape {x.shape}"
            raise ValueError(f"Standardizer: data must have the {v.shape[0]} fitted features on its last axis; "
                             f"got {got}")  # fmt: skip
        return v


class Windows(NamedTuple):
    """Forecasting examples: ``inputs (N, input_length, F)`` -> ``targets (N, horizon, F)``.

    ``start[k]`` is the index in the source series of example k's first input step.
    """

    inputs: np.ndarray
    targets: np.ndarray
    start: np.ndarray


def windows(series, input_length: int, horizon: int = 1, stride: int = 1) -> Windows:
    """Every ``input_length`` consecutive steps of ``series`` with the ``horizon`` steps that follow.

    Args:
        series: ``(T,)`` or ``(T, F)``.
        input_length: steps the model reads (>= 1).
        horizon: steps it predicts (>= 1); 1 is many-to-one.
        stride: steps between the starts of consecutive examples.

    Raises:
        ValueError: non-positive sizes, or a series shorter than ``input_length + horizon``.

    Example:
        >>> w = windows(np.arange(6.0), input_length=3, horizon=2)
        >>> w.inputs[..., 0].tolist(), w.targets[..., 0].tolist()
        ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], [[3.0, 4.0], [4.0, 5.0]])
    """
    where = "windows"
    x = _as_2d(where, series)
    for name, value in (("input_length", input_length), ("horizon", horizon), ("stride", stride)):
        _checks.positive_int(where, name, value)
    need = input_length + horizon
    if x.shape[0] < need:
        raise ValueError(
            f"{where}: series has {x.shape[0]} steps; input_length + horizon = {need} needs at least that many"
        )
    start = np.arange(0, x.shape[0] - need + 1, stride)
    idx = start[:, None] + np.arange(need)[None, :]
    both = x[idx]  # (N, need, F)
    return Windows(both[:, :input_length], both[:, input_length:], start)


def errors(predictions, targets) -> dict[str, float]:
    """RMSE and MAE over every element (same shapes).

    Example:
        >>> errors([1.0, 2.0], [1.0, 4.0])
        {'rmse': 1.4142135623730951, 'mae': 1.0}
    """
    p, t = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
    if p.shape != t.shape:
        raise ValueError(f"errors: predictions and targets must have the same shape; got {p.shape} and {t.shape}")
    d = p - t
    return {"rmse": float(np.sqrt(np.mean(d * d))), "mae": float(np.mean(np.abs(d)))}
