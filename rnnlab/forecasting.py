r"""Recurrent forecasters on :class:`~rnnlab.data.Windows`: many-to-one and many-to-many, trained with early stopping.

A window gives the model ``L`` past steps ``x_{1..L}`` (``(B, L, F)``, standardized); the forecast
is the next ``H`` steps ``x_{L+1..L+H}`` (``(B, H, F)``), read from the model's output at the last
input step through an identity (linear) readout of width ``H * F``. The two mappings differ in what
the loss sees while training:

* ``"many_to_one"``: only the last step's output, against ``x_{L+1..L+H}``;
* ``"many_to_many"``: every step's output: at step ``t`` the model forecasts ``x_{t+1..t+H}``
  (known for every ``t < L`` from the window and its targets), a loss at every step of the
  sequence, as in sequence-to-sequence training with a horizon. The forecast is still the last step's.

With ``changes=True`` the readout gives the change from the current input, and the forecast at
step ``t`` is ``x_t + out_t`` (for each of the ``H`` steps): a network that outputs zeros forecasts
persistence, and one that reads windows shifted to start at zero can still forecast their level.

The forecast at step ``t`` must depend on ``x_{1..t}`` only, so the core must be causal: a
bidirectional core (or a stack ending in one) is refused, since its output at step ``t`` has read
the steps after ``t``, the targets of the many-to-many loss.

Both use the mean squared error; :func:`train_forecaster` trains ``seeds`` models at once with
:func:`rnnlab.fit.fit`, draws training windows at random, keeps each model's parameters at its
best validation MSE and stops a model after ``patience`` evaluations without improvement.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab import _checks
from rnnlab.fit import FitResult
from rnnlab.layers import Bidirectional
from rnnlab.models import last_layer, sequence_model
from rnnlab.supervised import FitSettings, fit_on_dataset

MAPPINGS = ("many_to_one", "many_to_many")


class WindowBatch(NamedTuple):
    """A batch of windows: ``inputs (B, L, F)``, ``targets (B, H, F)``."""

    inputs: jax.Array
    targets: jax.Array


@dataclasses.dataclass(frozen=True)
class ForecastSettings(FitSettings):
    """How :func:`train_forecaster` trains: the fields of :class:`~rnnlab.supervised.FitSettings` (``seeds``,
    ``batch_size`` windows, ``steps``, ``eval_every``, ``patience``, ``optimizer``)."""


def step_targets(inputs: jax.Array, targets: jax.Array) -> jax.Array:
    """The many-to-many targets: ``(B, L, H, F)`` with ``[:, t]`` = the ``H`` steps after input step ``t``.

    Example:
        >>> x = jnp.arange(4.0).reshape(1, 4, 1)           # x_1..x_4
        >>> y = jnp.array([[[4.0], [5.0]]])                # x_5, x_6
        >>> step_targets(x, y)[0, :, :, 0].tolist()
        [[1.0, 2.0], [2.0, 3.0], [3.0, 4.0], [4.0, 5.0]]
    """
    full = jnp.concatenate([inputs, targets], axis=1)  # (B, L + H, F)
    length, horizon = inputs.shape[1], targets.shape[1]
    idx = jnp.arange(length)[:, None] + 1 + jnp.arange(horizon)[None, :]  # (L, H)
    return full[:, idx]


class Forecaster(NamedTuple):
    """A cell with a linear readout of ``H * F`` values per step, and its losses.

    Attributes:
        init: ``init(key) -> params``.
        outputs: ``outputs(params, inputs (B, L, F), dropout_key=None) -> (B, L, H, F)``: every step's
            forecast (``inputs`` are cast to the parameters' dtype); a ``dropout_key`` turns on a
            :class:`~rnnlab.layers.Stack`'s dropout (training only).
        predict: ``predict(params, inputs) -> (B, H, F)``: the last step's forecast.
        loss: ``loss(params, batch: WindowBatch, dropout_key=None) -> scalar`` MSE of the mapping.
    """

    init: object
    outputs: object
    predict: object
    loss: object


def forecaster(cell, features: int, horizon: int, mapping: str, *, changes: bool = False) -> Forecaster:
    """The :class:`Forecaster` of ``cell`` for ``features`` series and a horizon of ``horizon`` steps.

    ``changes=True``: the readout forecasts the change from each step's input (module docstring).

    Example:
        >>> from rnnlab import cells
        >>> f = forecaster(cells.gru(4), features=1, horizon=2, mapping="many_to_one", changes=True)
        >>> params = f.init(jax.random.key(0))
        >>> zero = jax.tree.map(jnp.zeros_like, params)         # a readout of zeros: persistence
        >>> f.predict(zero, jnp.array([[[1.0], [3.0]]]))[0, :, 0].tolist()
        [3.0, 3.0]
    """
    where = "forecaster"
    if not isinstance(changes, bool):
        raise TypeError(f"{where}: changes must be a bool; got {changes!r}")
    features = _checks.positive_int(where, "features", features)
    horizon = _checks.positive_int(where, "horizon", horizon)
    _checks.choice(where, "mapping", mapping, MAPPINGS)
    model = sequence_model(cell, horizon * features)
    if isinstance(last_layer(cell), Bidirectional):
        raise ValueError(
            f"{where}: cell must be causal: a bidirectional layer's output at step t has read the steps after t, "
            f"the values a forecast from step t predicts; got a {type(cell).__name__} ending in a Bidirectional layer"
        )

    def outputs(params, inputs, dropout_key=None):
        # Windows come from numpy as float64; the model computes in its parameters' dtype.
        x = jnp.asarray(inputs, jax.tree.leaves(params)[0].dtype)
        out = model.apply(params, x, dropout_key=dropout_key)
        out = out.reshape(*out.shape[:-1], horizon, features)
        return out + x[..., None, :] if changes else out

    def predict(params, inputs):
        return outputs(params, inputs)[:, -1]

    def loss(params, batch, dropout_key=None):
        out = outputs(params, batch.inputs, dropout_key)
        if mapping == "many_to_one":
            return jnp.mean(jnp.square(out[:, -1] - batch.targets))
        return jnp.mean(jnp.square(out - step_targets(batch.inputs, batch.targets)))

    return Forecaster(lambda key: model.init(key, features), outputs, predict, loss)


def train_forecaster(
    cell, train, validation, settings: ForecastSettings, *, mapping: str, changes: bool = False, seed: int = 0,
    progress=True, label=None,
) -> tuple[Forecaster, FitResult]:  # fmt: skip
    """Trains ``settings.seeds`` forecasters of ``cell`` on ``train`` windows, early-stopped on ``validation``.

    Args:
        cell: a recurrent cell (or anything :func:`rnnlab.unroll` runs).
        train, validation: :class:`~rnnlab.data.Windows` (standardized); their horizons must agree.
        settings: see :class:`ForecastSettings`.
        mapping: ``"many_to_one"`` or ``"many_to_many"`` (module docstring).
        changes: forecast the change from each step's input (module docstring).
        seed: with the same seed, the same models and batches.

    Returns:
        ``(forecaster, fit_result)``; ``fit_result.params`` holds each seed's best parameters
        (leading axis N) and its history ``"eval/mse"`` the validation MSE of the last step's forecast.

    Example:
        >>> from rnnlab import cells, data
        >>> w = data.windows(np.sin(np.arange(200) / 4.0), input_length=12, horizon=2)
        >>> s = ForecastSettings(seeds=2, batch_size=8, steps=20, eval_every=10)
        >>> f, result = train_forecaster(cells.gru(8), w, w, s, mapping="many_to_many", progress=False)
        >>> f.predict(jax.tree.map(lambda a: a[0], result.params), w.inputs[:3]).shape
        (3, 2, 1)
    """
    where = "train_forecaster"
    if not isinstance(settings, ForecastSettings):
        raise TypeError(f"{where}: settings must be a ForecastSettings; got {type(settings).__name__}")
    x_train, y_train = (jnp.asarray(a, jnp.float32) for a in (train.inputs, train.targets))
    x_val, y_val = (jnp.asarray(a, jnp.float32) for a in (validation.inputs, validation.targets))
    if y_train.shape[1:] != y_val.shape[1:] or x_train.shape[2] != x_val.shape[2]:
        raise ValueError(
            f"{where}: train and validation windows must share horizon and features; got targets "
            f"{tuple(y_train.shape)} and {tuple(y_val.shape)}"
        )
    model = forecaster(cell, x_train.shape[2], y_train.shape[1], mapping, changes=changes)

    def metrics(params, batch):
        err = model.predict(params, batch.inputs) - batch.targets
        return {"mse": jnp.mean(jnp.square(err)), "mae": jnp.mean(jnp.abs(err))}

    result = fit_on_dataset(
        model.init, model.loss, metrics, WindowBatch(x_train, y_train), WindowBatch(x_val, y_val), settings,
        monitor="mse", seed=seed, progress=progress, label=label or f"{getattr(cell, 'name', 'cell')} {mapping}",
    )  # fmt: skip
    return model, result


def predict_seeds(model: Forecaster, params, inputs) -> np.ndarray:
    """Every seed's forecast: ``(N, B, H, F)`` for stacked ``params`` (leading axis N)."""
    return np.asarray(jax.jit(jax.vmap(model.predict, in_axes=(0, None)))(params, jnp.asarray(inputs, jnp.float32)))
