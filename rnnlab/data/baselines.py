r"""The forecasts a learned model has to beat, on :class:`~rnnlab.data.Windows` inputs.

Each takes ``inputs (N, L, F)`` and returns ``(N, horizon, F)``:

* :func:`persistence`: the last observed value, repeated, ``x_hat_{t+h} = x_t``.
* :func:`seasonal_naive`: the value one season earlier, ``x_hat_{t+h} = x_{t+h-m}`` (for ``h > m``
  the season repeats: ``x_{t+h-km}`` with the smallest ``k`` that lands in the input).
* :func:`linear_autoregressive`: ``x_hat_{t+1..t+H} = [x_{t-p+1..t}, 1] A`` fitted by least squares
  on training windows, one linear map per horizon step and feature from the last ``order`` inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnlab import _checks


def _inputs(where, inputs) -> np.ndarray:
    x = np.asarray(inputs, np.float64)
    if x.ndim != 3 or x.shape[1] == 0:
        raise ValueError(f"{where}: inputs must have shape (N, L, F) with L >= 1; got {x.shape}")
    return x


def persistence(inputs, horizon: int) -> np.ndarray:
    """The last input step repeated ``horizon`` times.

    Example:
        >>> persistence(np.arange(4.0).reshape(1, 4, 1), 2)[0, :, 0].tolist()
        [3.0, 3.0]
    """
    x = _inputs("persistence", inputs)
    horizon = _checks.positive_int("persistence", "horizon", horizon)
    return np.repeat(x[:, -1:], horizon, axis=1)


def seasonal_naive(inputs, horizon: int, season: int) -> np.ndarray:
    """The value one season before each target step (needs ``season <= L``).

    Example:
        >>> x = np.array([1.0, 2.0, 3.0, 1.1, 2.1, 3.1]).reshape(1, 6, 1)
        >>> seasonal_naive(x, 4, season=3)[0, :, 0].tolist()
        [1.1, 2.1, 3.1, 1.1]
    """
    where = "seasonal_naive"
    x = _inputs(where, inputs)
    horizon = _checks.positive_int(where, "horizon", horizon)
    season = _checks.positive_int(where, "season", season)
    length = x.shape[1]
    if season > length:
        raise ValueError(f"{where}: season ({season}) must be <= the input length ({length})")
    # Target step h (1-based) copies input position L - season + ((h - 1) mod season).
    pos = length - season + (np.arange(horizon) % season)
    return x[:, pos]


def linear_autoregressive(train_inputs, train_targets, order: int, ridge: float = 0.0) -> Callable:
    """Fits ``targets ~ [last `order` inputs, 1] @ A`` by least squares; returns ``predict(inputs)``.

    Args:
        train_inputs: ``(N, L, F)`` training windows (``order <= L``).
        train_targets: ``(N, H, F)``.
        order: how many of the most recent input steps the model reads (all features of each).
        ridge: optional L2 penalty on ``A`` (not on the intercept); 0 is ordinary least squares.

    Returns:
        ``predict(inputs (M, L', F)) -> (M, H, F)`` with ``L' >= order``.

    Example:
        >>> t = np.arange(50.0)                            # a line: x_{t+1} = 2 x_t - x_{t-1}
        >>> w_in = np.stack([t[k : k + 5] for k in range(40)])[..., None]
        >>> w_out = np.stack([t[k + 5 : k + 7] for k in range(40)])[..., None]
        >>> predict = linear_autoregressive(w_in, w_out, order=2)
        >>> np.round(predict(w_in[:1])[0, :, 0], 6).tolist()
        [5.0, 6.0]
    """
    where = "linear_autoregressive"
    x = _inputs(where, train_inputs)
    y = np.asarray(train_targets, np.float64)
    order = _checks.positive_int(where, "order", order)
    ridge = _checks.nonnegative(where, "ridge", ridge)
    if y.ndim != 3 or y.shape[0] != x.shape[0] or y.shape[2] != x.shape[2]:
        raise ValueError(f"{where}: train_targets must have shape (N={x.shape[0]}, H, F={x.shape[2]}); got {y.shape}")
    if order > x.shape[1]:
        raise ValueError(f"{where}: order ({order}) must be <= the input length ({x.shape[1]})")
    n, _, f = x.shape
    horizon = y.shape[1]

    def design(inp):
        flat = inp[:, -order:].reshape(inp.shape[0], order * f)
        return np.concatenate([flat, np.ones((inp.shape[0], 1))], axis=1)

    a = design(x)
    b = y.reshape(n, horizon * f)
    if ridge > 0:
        penalty = np.sqrt(ridge) * np.eye(a.shape[1])[:-1]  # no penalty on the intercept
        a, b = np.concatenate([a, penalty]), np.concatenate([b, np.zeros((penalty.shape[0], b.shape[1]))])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)

    def predict(inputs) -> np.ndarray:
        inp = _inputs(f"{where}.predict", inputs)
        if inp.shape[1] < order or inp.shape[2] != f:
            raise ValueError(f"{where}.predict: inputs must have shape (M, >= {order}, {f}); got {inp.shape}")
        return (design(inp) @ coef).reshape(inp.shape[0], horizon, f)

    return predict
