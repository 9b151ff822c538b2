"""Training: an optax chain from a typed config, a jitted train step, penalties, early stopping.

The optimizer is ``optax.chain(clip, optimizer(schedule))``; the train step returns
``(state, metrics)`` with the global gradient norm measured **before** clipping, so a run shows
when clipping was active.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import rnnlab
    >>> from rnnlab import train
    >>> cell = rnnlab.cells.lstm(8)
    >>> params = cell.init(jax.random.key(0), 2)
    >>> def loss_fn(params, batch, key):
    ...     _, ys = rnnlab.unroll(cell, params, batch["x"])
    ...     return jnp.mean((ys[:, -1, 0] - batch["y"]) ** 2)
    >>> config = train.OptimizerConfig("rmsprop", learning_rate=1e-3, clip="global_norm", clip_value=1.0)
    >>> step = train.make_train_step(loss_fn, train.make_optimizer(config))
    >>> state = train.init_state(params, train.make_optimizer(config))
    >>> batch = {"x": jnp.ones((4, 5, 2)), "y": jnp.ones(4)}
    >>> state, metrics = step(state, batch, jax.random.key(1))
    >>> sorted(metrics)
    ['grad_norm', 'loss', 'objective', 'penalty', 'update_norm']
    >>> int(state.step)
    1
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rnnlab import _checks

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw")
CLIPS = (None, "global_norm", "value")
SCHEDULES = ("constant", "cosine", "exponential", "warmup_cosine")
# (field, the names that read it, the config field that names the rule)
_USED_BY = (
    ("momentum", ("momentum", "nesterov"), "name"),
    ("decay", ("rmsprop",), "name"),
    ("weight_decay", ("adamw",), "name"),
    ("clip_value", ("global_norm", "value"), "clip"),
    ("total_steps", ("cosine", "exponential", "warmup_cosine"), "schedule"),
    ("warmup_steps", ("warmup_cosine",), "schedule"),
    ("decay_rate", ("exponential",), "schedule"),
)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Everything that defines the update rule; parsed from a config, never evaluated.

    Attributes:
        name: ``"sgd"``, ``"momentum"``, ``"nesterov"`` (Nesterov momentum), ``"rmsprop"``,
            ``"adagrad"``, ``"adam"`` or ``"adamw"``.
        learning_rate: peak learning rate > 0.
        momentum: for ``momentum``/``nesterov``; default 0.9.
        decay: rmsprop's squared-gradient decay; default 0.9.
        weight_decay: decoupled weight decay for ``adamw``, on the weight matrices only (fields
            named ``*kernel``; biases, peepholes and layer-norm gains are not decayed, as
            :func:`penalty` leaves them out).

        A field that the chosen optimizer, clip or schedule does not read (``momentum`` for
        ``adam``, ``clip_value`` with no clip, ``total_steps`` for the constant schedule,
        ``warmup_steps`` for ``cosine``, ...) must keep its default: a config that sets one is
        refused rather than run without it. :meth:`with_name` changes the rule and resets the
        fields the new one does not read.
        clip: ``None``, ``"global_norm"`` (rescale the gradient so its global L2 norm is at most
            ``clip_value``; Pascanu et al. 2013) or ``"value"`` (clip every component to
            ``[-clip_value, clip_value]``).
        clip_value: threshold of the clip, > 0.
        schedule: ``"constant"``, ``"cosine"`` (decay to 0 over ``total_steps``), ``"exponential"``
            (``decay_rate`` per ``total_steps``) or ``"warmup_cosine"`` (linear warm-up from 0 over
            ``warmup_steps``, then cosine to 0 at ``total_steps``; with no warm-up, the cosine
            schedule).
        total_steps, warmup_steps, decay_rate: schedule parameters.
    """

    name: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    decay: float = 0.9
    weight_decay: float = 0.0
    clip: str | None = "global_norm"
    clip_value: float = 1.0
    schedule: str = "constant"
    total_steps: int = 1000
    warmup_steps: int = 0
    decay_rate: float = 0.1

    def __post_init__(self):
        where = "OptimizerConfig"
        _checks.choice(where, "name", self.name, OPTIMIZERS)
        _checks.choice(where, "clip", self.clip, CLIPS)
        _checks.choice(where, "schedule", self.schedule, SCHEDULES)
        for field in ("learning_rate", "clip_value"):
            value = _checks.real_number(where, field, getattr(self, field))
            if not value > 0 or not math.isfinite(value):
                raise ValueError(f"{where}: {field} must be a finite number > 0; got {value}")
        for field in ("momentum", "decay"):
            value = _checks.real_number(where, field, getattr(self, field))
            if not 0 <= value < 1:
                raise ValueError(f"{where}: {field} must be in [0, 1); got {value}")
        value = _checks.real_number(where, "weight_decay", self.weight_decay)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{where}: weight_decay must be a finite number >= 0; got {value}")
        value = _checks.real_number(where, "decay_rate", self.decay_rate)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{where}: decay_rate must be a finite number > 0; got {value}")
        _checks.positive_int(where, "total_steps", self.total_steps)
        warmup = self.warmup_steps
        if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
            raise ValueError(f"{where}: warmup_steps must be an int >= 0; got {warmup!r}")
        if self.schedule == "warmup_cosine" and not warmup < self.total_steps:
            raise ValueError(
                f"{where}: warmup_steps ({warmup}) must be < total_steps ({self.total_steps}), which includes it"
            )
        # A field the chosen rule does not read would be ignored silently: it must keep its default.
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for field, used_by, chosen in _USED_BY:
            if getattr(self, chosen) not in used_by and getattr(self, field) != defaults[field]:
                raise ValueError(
                    f"{where}: {field}={getattr(self, field)!r} is used only with {chosen} in {used_by}; "
                    f"got {chosen}={getattr(self, chosen)!r}, which ignores it (leave {field} at {defaults[field]!r})"
                )

    def with_name(self, name: str) -> OptimizerConfig:
        """This config with update rule ``name``; the fields only other rules read go back to their defaults.

        For a sweep over update rules: ``decay`` set for ``rmsprop`` applies to the rmsprop runs
        and the adam runs get the default, which adam does not read anyway; ``momentum`` carries
        over between ``momentum`` and ``nesterov``, which both read it.

        Example:
            >>> from rnnlab import train
            >>> rms = train.OptimizerConfig("rmsprop", learning_rate=0.01, decay=0.95)
            >>> adam = rms.with_name("adam")
            >>> adam.name, adam.decay, adam.learning_rate
            ('adam', 0.9, 0.01)
        """
        _checks.choice("OptimizerConfig.with_name", "name", name, OPTIMIZERS)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        reset = {field: defaults[field] for field, users, chosen in _USED_BY if chosen == "name" and name not in users}
        return dataclasses.replace(self, name=name, **reset)

    @classmethod
    def from_dict(cls, config: dict) -> OptimizerConfig:
        """Builds a config from a plain dict (e.g. parsed JSON), checked by :func:`rnnlab.config.from_dict`:
        unknown keys are named with the valid ones, and every value's type is checked."""
        from rnnlab import config as config_files

        return config_files.from_dict(cls, config)


def check_schedule_length(where: str, config: OptimizerConfig, steps: int) -> None:
    """Raises unless a schedule that decays to 0 at ``total_steps`` (cosine, warmup_cosine) ends with the run.

    A shorter schedule would leave the rest of the run at a learning rate of 0, a longer one would
    never finish its decay: settings that hold both an optimizer and a step count call this.

    Example:
        >>> from rnnlab import train
        >>> train.check_schedule_length("settings", train.OptimizerConfig(schedule="cosine", total_steps=500), 500)
        >>> train.check_schedule_length("settings", train.OptimizerConfig(schedule="cosine", total_steps=500), 2000)
        Traceback (most recent call last):
        ...
        ValueError: settings: the cosine schedule decays to 0 at optimizer.total_steps=500, ... set total_steps to 2000
    """
    if config.schedule in ("cosine", "warmup_cosine") and config.total_steps != steps:
        raise ValueError(
            f"{where}: the {config.schedule} schedule decays to 0 at optimizer.total_steps={config.total_steps}, "
            f"but the run has steps={steps}; set total_steps to {steps}"
        )


def make_schedule(config: OptimizerConfig) -> optax.Schedule:
    """The learning-rate schedule of ``config``."""
    lr, n = config.learning_rate, config.total_steps
    if config.schedule == "constant":
        return optax.constant_schedule(lr)
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(lr, n)
    if config.schedule == "exponential":
        return optax.exponential_decay(lr, n, config.decay_rate)
    if config.warmup_steps == 0:
        return optax.cosine_decay_schedule(lr, n)
    return optax.warmup_cosine_decay_schedule(0.0, lr, config.warmup_steps, n)


def global_norm(tree) -> jax.Array:
    """The global L2 norm ``sqrt(sum_i x_i^2)`` over every entry of ``tree``, finite where every entry is.

    It is ``optax.tree.norm(tree)``, except where the sum of squares overflows (a norm above about
    1.8e19 in float32) though every entry is finite: there it is ``m sqrt(sum_i (x_i / m)^2)``
    with ``m = max_i |x_i|``. A NaN entry gives NaN and an infinite one inf, as before.

    Example:
        >>> import jax.numpy as jnp
        >>> from rnnlab import train
        >>> float(train.global_norm({"a": jnp.array([3.0]), "b": jnp.array([[4.0]])}))
        5.0
        >>> x = jnp.array([3e30, 4e30])                  # float32: the squares overflow
        >>> float(jnp.sqrt(jnp.sum(x**2))), round(float(train.global_norm(x)) / 1e30, 4)
        (inf, 5.0)
    """
    plain = optax.tree.norm(tree)
    leaves = [x for x in jax.tree.leaves(tree) if jnp.size(x)]
    if not leaves:
        return plain
    peak = jnp.max(jnp.stack([jnp.max(jnp.abs(x)).astype(plain.dtype) for x in leaves]))
    scale = jnp.where((peak > 0) & jnp.isfinite(peak), peak, 1.0)
    scaled = scale * optax.tree.norm(jax.tree.map(lambda x: x / scale.astype(jnp.result_type(x)), tree))
    return jnp.where(jnp.isfinite(plain) | ~jnp.isfinite(peak), plain, scaled)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Rescales the update ``g`` to ``g max_norm / ||g||`` where ``||g|| > max_norm`` (Pascanu et al. 2013).

    ``optax.clip_by_global_norm``'s rule with :func:`global_norm`, so a finite gradient whose
    squares overflow is clipped to ``max_norm`` rather than zeroed by a norm of inf.

    Example:
        >>> import jax.numpy as jnp
        >>> from rnnlab import train
        >>> clip = train.clip_by_global_norm(1.0)
        >>> g, _ = clip.update(jnp.array([3e30, 4e30]), clip.init(None))
        >>> [round(float(v), 4) for v in g]
        [0.6, 0.8]
    """

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        inside = norm < max_norm
        return jax.tree.map(lambda t: jax.lax.select(inside, t, (t / norm.astype(t.dtype)) * max_norm), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """``optax.chain(clip, optimizer)`` for ``config``, with the peak learning rate injected.

    The chain is wrapped in ``optax.inject_hyperparams``: the optimizer state holds
    ``hyperparams["learning_rate"]``, the peak of the schedule, which :func:`init_seeds` can set
    per model to train a learning-rate grid in one compiled program.

    Example:
        >>> from rnnlab import train
        >>> opt = train.make_optimizer(train.OptimizerConfig("nesterov", learning_rate=0.01, clip="value"))
        >>> type(opt).__name__
        'GradientTransformationExtraArgs'
    """

    def chain(learning_rate):
        # Every schedule is linear in its peak, so the peak can be a traced per-model value.
        shape = make_schedule(dataclasses.replace(config, learning_rate=1.0))

        def lr_t(count):
            return learning_rate * shape(count)

        optimizer = {
            "sgd": lambda: optax.sgd(lr_t),
            "momentum": lambda: optax.sgd(lr_t, momentum=config.momentum),
            "nesterov": lambda: optax.sgd(lr_t, momentum=config.momentum, nesterov=True),
            "rmsprop": lambda: optax.rmsprop(lr_t, decay=config.decay),
            "adagrad": lambda: optax.adagrad(lr_t),
            "adam": lambda: optax.adam(lr_t),
            "adamw": lambda: optax.adamw(lr_t, weight_decay=config.weight_decay, mask=weight_mask),
        }[config.name]()
        clip = {
            None: optax.identity,
            "global_norm": lambda: clip_by_global_norm(config.clip_value),
            "value": lambda: optax.clip(config.clip_value),
        }[config.clip]()
        return optax.chain(clip, optimizer)

    # The peak learning rate lives in the optimizer state (optax.inject_hyperparams), so
    # models trained together in one vmapped program can each have their own (init_seeds).
    return optax.inject_hyperparams(chain)(learning_rate=config.learning_rate)


def _is_weight(path) -> bool:
    last = path[-1]
    name = getattr(last, "name", getattr(last, "key", ""))
    return isinstance(name, str) and name.endswith("kernel")


def weight_mask(params):
    """``params`` with True at the weight matrices (fields named ``*kernel``) and False elsewhere.

    Example:
        >>> import jax
        >>> from rnnlab import cells, train
        >>> train.weight_mask(cells.elman(2).init(jax.random.key(0), 3))
        ElmanParams(input_kernel=True, recurrent_kernel=True, bias=False)
    """
    return jax.tree_util.tree_map_with_path(lambda path, _: _is_weight(path), params)


def penalty(params, l1: float = 0.0, l2: float = 0.0) -> jax.Array:
    """``l1 * sum|w| + l2 * sum w^2 / 2`` over the weight matrices (fields named ``*kernel``).

    Biases, peepholes and layer-norm gains are not penalized.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells, train
        >>> p = cells.elman(2).init(jax.random.key(0), 2)
        >>> p = jax.tree.map(jnp.ones_like, p)  # 4 + 4 kernel entries, 2 bias entries
        >>> float(train.penalty(p, l1=1.0)), float(train.penalty(p, l2=1.0))
        (8.0, 4.0)
    """
    total = jnp.zeros(())
    if l1 == 0 and l2 == 0:
        return total
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if _is_weight(path):
            total = total + l1 * jnp.sum(jnp.abs(leaf)) + 0.5 * l2 * jnp.sum(jnp.square(leaf))
    return total


class TrainState(NamedTuple):
    """What changes during training: ``params``, ``opt_state`` and the ``step`` count (int32)."""

    params: Any
    opt_state: Any
    step: jax.Array


def init_state(params, optimizer: optax.GradientTransformation) -> TrainState:
    """A fresh :class:`TrainState` at step 0."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))


def make_train_step(
    loss_fn: Callable,
    optimizer: optax.GradientTransformation,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    jit: bool = True,
    watch: Callable | None = None,
    has_aux: bool = False,
    skip_nonfinite: bool = False,
) -> Callable:
    """Builds ``step(state, batch, key) -> (state, metrics)``.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> loss`` (a scalar); ``key`` is for dropout.
        optimizer: e.g. from :func:`make_optimizer`.
        l1, l2: penalties on the weight matrices (see :func:`penalty`), added to the objective.
        jit: compile the step (default).
        watch: ``watch(params) -> {name: scalar}``, added to ``metrics``; it sees the parameters
            the step's gradient is taken at (before the update), e.g. the largest singular value
            of the recurrent matrix next to ``grad_norm``.
        has_aux: ``loss_fn`` returns ``(loss, aux)`` and the step ``(state, metrics, aux)``, e.g.
            the final carry that stateful truncated BPTT passes to the next window.
        skip_nonfinite: when the loss or the gradient is not finite, keep the parameters and the
            optimizer state as they were (the step count still advances, so the data moves on);
            ``metrics["skipped"]`` is 1.0 for such a step, else 0.0. Without it a non-finite
            gradient is applied like any other (and the model's parameters become NaN).

    Returns:
        The step function. ``metrics`` holds ``loss`` (without penalty), ``penalty``,
        ``objective`` (their sum, what is differentiated), ``grad_norm`` (global L2 norm of the
        gradient *before* clipping) and ``update_norm`` (global norm of the applied update), and
        what ``watch`` returns.
    """
    for name, value in (("l1", l1), ("l2", l2)):
        _checks.nonnegative("make_train_step", name, value)

    def objective(params, batch, key):
        loss, aux = loss_fn(params, batch, key) if has_aux else (loss_fn(params, batch, key), None)
        pen = penalty(params, l1, l2)
        return loss + pen, (loss, pen, aux)

    def step(state: TrainState, batch, key):
        (obj, (loss, pen, aux)), grads = jax.value_and_grad(objective, has_aux=True)(state.params, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        grad_norm = global_norm(grads)
        metrics = {
            "loss": loss,
            "penalty": pen,
            "objective": obj,
            "grad_norm": grad_norm,
            "update_norm": global_norm(updates),
        }
        if skip_nonfinite:
            # The norm of a gradient with any NaN or inf leaf is itself NaN or inf.
            ok = jnp.isfinite(obj) & jnp.isfinite(grad_norm)
            params, opt_state = jax.tree.map(
                lambda new, old: jnp.where(ok, new, old), (params, opt_state), (state.params, state.opt_state)
            )
            metrics["update_norm"] = jnp.where(ok, metrics["update_norm"], 0.0)
            metrics["skipped"] = jnp.where(ok, 0.0, 1.0).astype(jnp.result_type(loss))
        if watch is not None:
            watched = watch(state.params)
            clash = sorted(set(watched) & set(metrics))
            if clash:
                raise ValueError(f"make_train_step: watch returned {clash}, names the step's own metrics use")
            metrics.update(watched)
        new_state = TrainState(params, opt_state, state.step + 1)
        return (new_state, metrics, aux) if has_aux else (new_state, metrics)

    return jax.jit(step) if jit else step


class EarlyStopping(NamedTuple):
    """Early stopping on a held-out metric (lower is better).

    ``update`` returns the new state; stop when ``should_stop``. ``best_step`` tells which
    evaluation produced ``best`` so its parameters can be kept.

    Example:
        >>> from rnnlab.train import EarlyStopping
        >>> es = EarlyStopping.create(patience=2)
        >>> for step, value in enumerate([1.0, 0.5, 0.6, 0.55, 0.7]):
        ...     es = es.update(value, step)
        >>> es.best, es.best_step, es.should_stop
        (0.5, 1, True)
    """

    patience: int
    min_delta: float
    best: float
    best_step: int
    bad_evals: int

    @classmethod
    def create(cls, patience: int, min_delta: float = 0.0) -> EarlyStopping:
        _checks.positive_int("EarlyStopping", "patience", patience)
        return cls(patience, _checks.nonnegative("EarlyStopping", "min_delta", min_delta), math.inf, -1, 0)

    def update(self, value: float, step: int) -> EarlyStopping:
        value = float(value)
        if value < self.best - self.min_delta:
            return self._replace(best=value, best_step=int(step), bad_evals=0)
        return self._replace(bad_evals=self.bad_evals + 1)

    @property
    def should_stop(self) -> bool:
        return self.bad_evals >= self.patience


def init_seeds(
    init_fn: Callable,
    keys: jax.Array,
    optimizer: optax.GradientTransformation,
    *,
    learning_rates=None,
) -> TrainState:
    """Independently initialized models, stacked: every leaf of the result has a leading seed axis.

    Args:
        init_fn: ``init_fn(key) -> params``, e.g. ``lambda k: cell.init(k, input_size)``.
        keys: ``(N,)`` PRNG keys, one per seed.
        optimizer: the optimizer whose state is initialized for each seed.
        learning_rates: optional ``(N,)`` peak learning rates, one per model, replacing the
            config's (the optimizer must come from :func:`make_optimizer`). Pair it with repeated
            keys to train a grid of learning rates x seeds in one program.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells, train
        >>> cell = cells.elman(4)
        >>> opt = train.make_optimizer(train.OptimizerConfig("sgd"))
        >>> keys = jnp.repeat(jax.random.split(jax.random.key(0), 2), 3, axis=0)   # 2 seeds x 3 rates
        >>> lrs = jnp.tile(jnp.array([1e-3, 1e-2, 1e-1]), 2)
        >>> states = train.init_seeds(lambda k: cell.init(k, 2), keys, opt, learning_rates=lrs)
        >>> states.opt_state.hyperparams["learning_rate"].shape
        (6,)
    """
    if not hasattr(keys, "shape") or keys.ndim != 1:
        raise ValueError(f"init_seeds: keys must be a (N,) array of PRNG keys; got {getattr(keys, 'shape', keys)!r}")
    states = jax.vmap(lambda k: init_state(init_fn(k), optimizer))(keys)
    if learning_rates is None:
        return states
    hyper = getattr(states.opt_state, "hyperparams", None)
    if not isinstance(hyper, dict) or "learning_rate" not in hyper:
        raise ValueError("init_seeds: learning_rates needs an optimizer from train.make_optimizer (lr injected)")
    lrs = jnp.asarray(learning_rates, hyper["learning_rate"].dtype)
    if lrs.shape != keys.shape:
        raise ValueError(
            f"init_seeds: learning_rates must have shape {tuple(keys.shape)} (one per key); got {lrs.shape}"
        )
    if _checks.is_concrete(lrs) and not bool(jnp.all(lrs > 0)):
        raise ValueError(f"init_seeds: learning_rates must all be > 0; got {lrs}")
    return states._replace(opt_state=states.opt_state._replace(hyperparams={**hyper, "learning_rate": lrs}))


def make_seeds_train_step(
    loss_fn: Callable,
    optimizer: optax.GradientTransformation,
    *,
    shared_batch: bool = True,
    l1: float = 0.0,
    l2: float = 0.0,
) -> Callable:
    """:func:`make_train_step` for N seeds at once, in one compiled program (``jax.vmap``).

    ``step(states, batch, keys) -> (states, metrics)`` where ``states`` comes from
    :func:`init_seeds`, ``keys`` is ``(N,)`` and every metric has shape ``(N,)``. With
    ``shared_batch`` all seeds see the same batch; otherwise ``batch`` has a leading ``(N,)`` axis.
    Each seed's result equals what :func:`make_train_step` gives for that seed alone.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import rnnlab
        >>> from rnnlab import train
        >>> cell = rnnlab.cells.gru(4)
        >>> opt = train.make_optimizer(train.OptimizerConfig("adam"))
        >>> states = train.init_seeds(lambda k: cell.init(k, 2), jax.random.split(jax.random.key(0), 5), opt)
        >>> def loss_fn(p, batch, key):
        ...     return jnp.mean(rnnlab.unroll(cell, p, batch)[1] ** 2)
        >>> step = train.make_seeds_train_step(loss_fn, opt)
        >>> states, metrics = step(states, jnp.ones((3, 7, 2)), jax.random.split(jax.random.key(1), 5))
        >>> metrics["loss"].shape
        (5,)
    """
    single = make_train_step(loss_fn, optimizer, l1=l1, l2=l2, jit=False)
    return jax.jit(jax.vmap(single, in_axes=(0, None if shared_batch else 0, 0)))
