"""Training on a fixed dataset: the settings and the loop set-up that classifiers and forecasters share.

:func:`fit_on_dataset` trains ``settings.seeds`` models side by side with :func:`rnnlab.fit.fit` on
batches of ``settings.batch_size`` rows drawn with replacement from a fixed training set (a pytree
of arrays with ``R`` rows each), evaluating them on a fixed validation set. The task modules
(:mod:`rnnlab.classification`, :mod:`rnnlab.forecasting`) build the model, check their data and
call it with their settings, which extend :class:`FitSettings`.

Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.linspace(-1.0, 1.0, 32)
    >>> data = {"x": x, "y": 3.0 * x}
    >>> def loss(p, batch, dropout_key=None):              # no dropout in this model
    ...     return jnp.mean((batch["x"] * p["w"] - batch["y"]) ** 2)
    >>> def metrics(p, batch):
    ...     return {"mse": loss(p, batch)}
    >>> def init(key):
    ...     return {"w": jax.random.normal(key, ())}
    >>> s = FitSettings(seeds=2, batch_size=8, steps=200, eval_every=50, optimizer=OptimizerConfig("adam", 0.1))
    >>> result = fit_on_dataset(init, loss, metrics, data, data, s, monitor="mse", progress=False)
    >>> result.params["w"].shape, bool(jnp.allclose(result.params["w"], 3.0, atol=0.05))
    ((2,), True)
    >>> fit_on_dataset(init, loss, metrics, {"x": x, "y": x[:10]}, data, s, monitor="mse")
    Traceback (most recent call last):
    ...
    ValueError: fit_on_dataset: every array of train must have the same rows ... {'x': (32,), 'y': (10,)}
    >>> fit_on_dataset(init, loss, metrics, data, {"x": x, "y": x[:1]}, s, monitor="mse")
    Traceback (most recent call last):
    ...
    ValueError: fit_on_dataset: every array of validation must have the same rows ... {'x': (32,), 'y': (1,)}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from rnnlab import _checks
from rnnlab.fit import FitResult, fit
from rnnlab.train import OptimizerConfig, check_schedule_length, init_seeds, make_optimizer


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How :func:`fit_on_dataset` trains.

    Attributes:
        seeds: models trained side by side.
        batch_size: training rows per step, drawn at random with replacement.
        steps: the most training steps.
        eval_every: steps between validation evaluations.
        patience: evaluations without improvement after which a model stops.
        optimizer: the update rule.
    """

    seeds: int = 3
    batch_size: int = 32
    steps: int = 2000
    eval_every: int = 50
    patience: int = 10
    optimizer: OptimizerConfig = OptimizerConfig("adam", learning_rate=3e-3, clip="global_norm", clip_value=1.0)

    def __post_init__(self):
        for name in ("seeds", "batch_size", "steps", "eval_every", "patience"):
            _checks.positive_int(type(self).__name__, name, getattr(self, name))


def _rows(where: str, name: str, data) -> int:
    """The common row count (leading axis) of the arrays of ``data``; raises if they disagree."""
    counts = {a.shape[0] if a.ndim else None for a in jax.tree.leaves(data)}
    if len(counts) != 1 or None in counts:
        raise ValueError(f"{where}: every array of {name} must have the same rows (leading axis); got row counts "
                         f"{jax.tree.map(lambda a: a.shape[:1], data)}")  # fmt: skip
    return counts.pop()


def fit_on_dataset(
    init: Callable,
    loss: Callable,
    metrics: Callable,
    train,
    validation,
    settings: FitSettings,
    *,
    monitor: str,
    seed: int = 0,
    progress: bool = True,
    label: str = "fit",
) -> FitResult:
    """Trains ``settings.seeds`` models from ``init(key)`` on ``train``; returns the :class:`~rnnlab.fit.FitResult`.

    Args:
        init: ``init(key) -> params`` of one model.
        loss: ``loss(params, batch, dropout_key) -> scalar``, batch a subset of ``train``'s rows and
            ``dropout_key`` a fresh PRNG key at every step, for the model's dropout.
        metrics: ``metrics(params, batch) -> dict`` of scalars, holding ``monitor``.
        train, validation: pytrees of arrays whose leading axis is the row.
        settings: see :class:`FitSettings`.
        monitor: the validation metric that keeps each model's best parameters and stops it.
        seed: with the same seed, the same models and batches (model ``n`` from
            ``split(key(seed), seeds)[n]``).
        progress, label: :func:`rnnlab.fit.fit`'s progress lines.
    """
    where = "fit_on_dataset"
    if not isinstance(settings, FitSettings):
        raise TypeError(f"{where}: settings must be a FitSettings; got {type(settings).__name__}")
    check_schedule_length(where, settings.optimizer, settings.steps)
    rows = _rows(where, "train", train)
    _rows(where, "validation", validation)
    optimizer = make_optimizer(settings.optimizer)
    keys = jax.random.split(jax.random.key(seed), settings.seeds)
    states = init_seeds(init, keys, optimizer)

    def sample(key):
        idx = jax.random.randint(key, (settings.batch_size,), 0, rows)
        return jax.tree.map(lambda a: a[idx], train)

    return fit(
        loss, metrics, sample, validation, states, keys, optimizer, steps=settings.steps,
        eval_every=settings.eval_every, monitor=monitor, patience=settings.patience, progress=progress, label=label,
    )  # fmt: skip
