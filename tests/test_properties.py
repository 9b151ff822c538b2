"""Property-based tests: malformed shapes, dtypes and configs thrown at the public API.

Each call either returns the right answer (shapes checked, and values against the plain-Python
reference for a few inputs) or raises a ValueError/TypeError whose message names the argument;
never another exception type (IndexError, AttributeError, an XLA error) and never a wrong shape.

Examples are derandomized, so every run sees the same inputs. Valid inputs go through jitted
functions cached per cell, so a shape seen twice compiles once; malformed ones must fail in the
checks, before anything is traced. ``--hypothesis-show-statistics`` shows how many of each kind
a test drew.
"""

import dataclasses
import functools
import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from experiment_module import load
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rnnlab
from rnnlab import cells, config, models, protocols, tasks, train
from rnnlab.train import OptimizerConfig

I, H = 2, 3
CELL_NAMES = sorted(cells.REGISTRY)
CELLS = {name: cells.make(name, H) for name in CELL_NAMES}
PARAMS = {name: cell.init(jax.random.key(0), I) for name, cell in CELLS.items()}
# The params hold float32, the only dtype unroll takes with them; cell.apply takes any float.
DTYPES = [np.float32, np.float16, np.float64, jnp.bfloat16, np.int32, np.int8, np.uint8, np.bool_, np.complex64]


def _settings(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def _outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # every exception is judged by _named
        return None, e


def _named(error: BaseException, *names: str) -> None:
    """``error`` is a ValueError/TypeError whose message names one of ``names``."""
    assert isinstance(error, (ValueError, TypeError)), f"{type(error).__name__}: {error}"
    message = str(error)
    assert any(re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", message) for n in names), (names, message)


def _array(shape, dtype):
    """A non-constant numpy array of ``shape`` and ``dtype``, as a user would pass one."""
    return np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)


@functools.cache
def _jit_unroll(name: str, time_major: bool):
    cell = CELLS[name]
    return jax.jit(lambda p, xs: rnnlab.unroll(cell, p, xs, time_major=time_major))


# Shapes of rank 0 to 4 with small axes (0 included); a third of them are (B, T, I) and a third (T, I).
small_axis = st.sampled_from([0, 1, 2])
shapes = st.one_of(
    st.lists(small_axis, min_size=0, max_size=4).map(tuple),
    st.tuples(small_axis, st.sampled_from([1, 2]), st.just(I)),
    st.tuples(st.sampled_from([1, 2]), st.just(I)),
)
dtypes = st.one_of(st.just(np.float32), st.sampled_from(DTYPES))


def _unroll_output_shape(shape, dtype, time_major):
    """The shape ``unroll`` must return for ``xs`` of ``shape``/``dtype``, or None if it must refuse it."""
    if len(shape) not in (2, 3) or np.dtype(dtype) != np.float32 or shape[-1] != I:
        return None
    steps = shape[0] if len(shape) == 2 or time_major else shape[1]
    return None if steps == 0 else (*shape[:-1], H)


@_settings(60)
@given(name=st.sampled_from(CELL_NAMES), shape=shapes, dtype=dtypes, time_major=st.booleans())
def test_unroll_gives_the_right_shape_or_names_xs(name, shape, dtype, time_major):
    xs = _array(shape, dtype)
    want = _unroll_output_shape(shape, dtype, time_major)
    event("refused" if want is None else "computed")
    if want is None:
        _, error = _outcome(rnnlab.unroll, CELLS[name], PARAMS[name], xs, time_major=time_major)
        assert error is not None, f"xs of shape {shape} and dtype {np.dtype(dtype)} was accepted"
        _named(error, "xs")
    else:
        result, error = _outcome(_jit_unroll(name, time_major), PARAMS[name], xs)
        assert error is None, error
        final, ys = result
        assert ys.shape == want and ys.dtype == np.float32
        batch = () if len(shape) == 2 else (shape[1],) if time_major else (shape[0],)
        assert all(leaf.shape[:-1] == batch for leaf in jax.tree.leaves(final))


@pytest.mark.parametrize("name", ["elman", "lstm", "gru"])
@_settings(4)
@given(data=st.data())
def test_unroll_matches_the_reference_loop(name, data):
    layout = data.draw(st.sampled_from(["unbatched", "batch", "time"]))
    steps, batch = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    shape = {"unbatched": (steps, I), "batch": (batch, steps, I), "time": (steps, batch, I)}[layout]
    floats = st.floats(-2, 2, width=32, allow_nan=False, allow_infinity=False)
    xs = data.draw(hnp.arrays(np.float32, shape, elements=floats))
    final, ys = _jit_unroll(name, layout == "time")(PARAMS[name], xs)
    as_batch = np.swapaxes(xs, 0, 1) if layout == "time" else xs
    ref_final, ref_ys = rnnlab.reference_unroll(CELLS[name], PARAMS[name], jnp.asarray(as_batch))
    ref_ys = np.swapaxes(ref_ys, 0, 1) if layout == "time" else ref_ys
    np.testing.assert_allclose(ys, ref_ys, atol=2e-5, rtol=0)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(ref_final)):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=0)


XS = _array((2, 3, I), np.float32)


@functools.cache
def _jit_unroll_with(option: str):
    cell = CELLS["lstm"]
    return jax.jit(lambda p, xs, value: rnnlab.unroll(cell, p, xs, **{option: value}))


@_settings(30)
@given(
    shape=st.one_of(st.just((2,)), st.sampled_from([(), (1,), (3,), (2, 1), (2, 3), (3, 2)])),
    dtype=st.one_of(st.just(np.int32), st.sampled_from([np.int64, np.uint8, np.float32, np.bool_])),
    value=st.one_of(st.integers(0, 3), st.sampled_from([-1, 4])),
    as_list=st.booleans(),
)
def test_unroll_lengths_are_checked(shape, dtype, value, as_list):
    lengths = np.full(shape, value).astype(dtype)
    valid = shape == (2,) and jnp.issubdtype(dtype, jnp.integer) and 0 <= int(lengths[0]) <= 3
    event("computed" if valid else "refused")
    if valid:
        result, error = _outcome(_jit_unroll_with("lengths"), PARAMS["lstm"], XS, lengths)
        assert error is None, error
        ys = np.asarray(result[1])
        assert ys.shape == (2, 3, H) and not ys[:, int(lengths[0]) :].any()  # zero past each length
    else:
        lengths = lengths.tolist() if as_list else lengths
        _, error = _outcome(rnnlab.unroll, CELLS["lstm"], PARAMS["lstm"], XS, lengths=lengths)
        assert error is not None, f"lengths {lengths!r} was accepted"
        _named(error, "lengths")


@_settings(25)
@given(
    shape=st.one_of(st.just((2, 3)), st.sampled_from([(3, 2), (2,), (2, 3, 1), ()])),
    dtype=st.one_of(st.just(np.bool_), st.sampled_from([np.int32, np.float32])),
    as_list=st.booleans(),
)
def test_unroll_resets_are_checked(shape, dtype, as_list):
    resets = (np.arange(math.prod(shape)).reshape(shape) % 2).astype(dtype)
    valid = shape == (2, 3) and dtype == np.bool_
    event("computed" if valid else "refused")
    resets = resets.tolist() if as_list else resets
    if valid:
        result, error = _outcome(_jit_unroll_with("resets"), PARAMS["lstm"], XS, np.asarray(resets))
        assert error is None and result[1].shape == (2, 3, H), error
    else:
        _, error = _outcome(rnnlab.unroll, CELLS["lstm"], PARAMS["lstm"], XS, resets=resets)
        assert error is not None, f"resets {resets!r} was accepted"
        _named(error, "resets")


@_settings(30)
@given(
    kind=st.one_of(st.just("LSTMCarry"), st.sampled_from(["RNNCarry", "tuple", "array"])),
    shape=st.one_of(st.just((2, H)), st.sampled_from([(3, H), (2, H + 1), (H,), (1, H), (2, 1, H)])),
    dtype=st.one_of(st.just(np.float32), st.sampled_from([np.float16, np.int32])),
)
def test_unroll_initial_carry_is_checked(kind, shape, dtype):
    leaf = np.zeros(shape, dtype)
    carry = {
        "LSTMCarry": cells.LSTMCarry(leaf, leaf, None),
        "RNNCarry": cells.RNNCarry(leaf),
        "tuple": (leaf, leaf),
        "array": leaf,
    }[kind]
    valid = kind == "LSTMCarry" and shape == (2, H) and dtype == np.float32
    event("computed" if valid else "refused")
    if valid:
        result, error = _outcome(_jit_unroll_with("initial_carry"), PARAMS["lstm"], XS, carry)
        assert error is None and result[1].shape == (2, 3, H), error
    else:
        _, error = _outcome(rnnlab.unroll, CELLS["lstm"], PARAMS["lstm"], XS, initial_carry=carry)
        assert error is not None, f"initial_carry {kind} {shape} {np.dtype(dtype)} was accepted"
        _named(error, "initial_carry")


@_settings(60)
@given(
    name=st.sampled_from(CELL_NAMES),
    x_shape=shapes,
    dtype=dtypes,
    carry_batch=st.one_of(st.none(), st.sampled_from([(), (1,), (2,), (0,), (2, 1)])),
    wrong_carry_type=st.sampled_from([False, False, True]),
)
def test_cell_apply_gives_the_right_shape_or_names_its_argument(name, x_shape, dtype, carry_batch, wrong_carry_type):
    cell, params = CELLS[name], PARAMS[name]
    x = _array(x_shape, dtype)
    carry_batch = tuple(x_shape[:-1]) if carry_batch is None else carry_batch  # None: x's own batch shape
    carry = cell.initial_carry(params, carry_batch)
    if wrong_carry_type:  # the other family's carry: an LSTM gets an RNNCarry and the rest an LSTMCarry
        carry = cells.RNNCarry(carry.hidden) if name == "lstm" else cells.LSTMCarry(carry.hidden, carry.hidden)
    bad_x = len(x_shape) < 1 or x_shape[-1] != I or not jnp.issubdtype(dtype, jnp.floating)
    bad_carry = wrong_carry_type or tuple(x_shape[:-1]) != carry_batch
    event("refused" if bad_x or bad_carry else "computed")
    result, error = _outcome(cell.apply, params, carry, x)
    if bad_x or bad_carry:
        assert error is not None, f"x {x_shape} {np.dtype(dtype)} with a carry for {carry_batch} was accepted"
        _named(error, "x" if bad_x else "carry")
    else:
        assert error is None, error
        new_carry, y = result
        assert y.shape == (*carry_batch, H) and type(new_carry) is type(carry)
        assert jax.tree.map(jnp.shape, new_carry) == jax.tree.map(jnp.shape, carry)


# Values of the wrong kind for any argument (huge ints included: they overflowed float conversions).
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
)


@_settings(40)
@given(
    name=st.sampled_from(CELL_NAMES),
    input_size=st.one_of(st.integers(1, 3), st.integers(-2, 0), st.just(np.int64(2)), st.just(2**62), junk),
    dtype=st.sampled_from([jnp.float32, jnp.float16, jnp.bfloat16, jnp.int32, jnp.bool_, jnp.complex64]),
)
def test_cell_init_builds_params_or_names_its_argument(name, input_size, dtype):
    good_size = isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool)
    good_size = good_size and 0 < input_size < 2**31
    valid = good_size and jnp.issubdtype(dtype, jnp.floating)
    event("computed" if valid else "refused")
    result, error = _outcome(CELLS[name].init, jax.random.key(0), input_size, dtype)
    if not valid:
        assert error is not None, f"input_size={input_size!r}, dtype={dtype} was accepted"
        _named(error, "dtype" if good_size else "input_size")
    else:
        assert error is None, error
        assert result.input_kernel.shape == (input_size, result.input_kernel.shape[1])
        assert {leaf.dtype for leaf in jax.tree.leaves(result)} == {jnp.dtype(dtype)}


@functools.cache
def _model():
    model = models.sequence_model(CELLS["gru"], 4)
    return model, model.init(jax.random.key(1), I), jax.jit(model.apply)


@_settings(40)
@given(shape=shapes, dtype=dtypes)
def test_sequence_model_apply_gives_the_right_shape_or_names_xs(shape, dtype):
    model, params, jitted = _model()
    want = _unroll_output_shape(shape, dtype, time_major=False)
    event("refused" if want is None else "computed")
    xs = _array(shape, dtype)
    result, error = _outcome(jitted if want is not None else model.apply, params, xs)
    if want is None:
        assert error is not None, f"xs of shape {shape} and dtype {np.dtype(dtype)} was accepted"
        _named(error, "xs")
    else:
        assert error is None, error
        assert result.shape == (*want[:-1], model.output_size)


# A valid sample compiles once per (task, batch_size, length): only two tasks are sampled for real.
SAMPLED = ("adding", "copy")
BAD_KEYS = {
    "key array": lambda: jax.random.split(jax.random.key(0), 2),
    "int": lambda: 0,
    "uint32 scalar": lambda: np.uint32(0),
    "float": lambda: np.zeros(2, np.float32),
    "3 words": lambda: np.zeros((3,), np.uint32),
}


@_settings(60)
@given(
    name=st.one_of(st.sampled_from(SAMPLED), st.sampled_from(sorted(tasks.TASKS))),
    legacy_key=st.booleans(),
    batch_size=st.sampled_from([1, 2]),
    malformed=st.one_of(
        st.none(),
        st.tuples(st.just("key"), st.sampled_from(sorted(BAD_KEYS))),
        st.tuples(st.just("batch_size"), st.one_of(st.integers(-2, 0), st.just(2**31), junk)),
        st.tuples(st.just("length"), st.sampled_from([-1, 0, 2**30, 2.5, "10"])),
    ),
)
def test_task_sample_gives_a_batch_or_names_its_argument(name, legacy_key, batch_size, malformed):
    task = tasks.get(name)
    args = {
        "key": jax.random.PRNGKey(0) if legacy_key else jax.random.key(0),
        "batch_size": batch_size,
        "length": task.min_length,
    }
    bad = None
    if malformed is not None:
        bad, value = malformed
        if bad == "key":
            value = BAD_KEYS[value]()
        elif bad == "length" and value in (-1, 0):
            value = task.min_length + value - 1  # just below the protocol's minimum
        args[bad] = value
        if bad == "batch_size" and type(value) is int and 0 < value < 2**31:
            bad = None  # a valid batch size after all
    assume(bad is not None or name in SAMPLED)
    event("refused" if bad else "computed")
    result, error = _outcome(task.sample, **args)
    if bad is not None:
        assert error is not None, f"{bad}={args[bad]!r} was accepted"
        _named(error, bad)
    else:
        assert error is None, error
        steps = task.time_steps(args["length"])
        b = args["batch_size"]
        assert result.inputs.shape == (b, steps, task.input_size) and result.inputs.dtype == jnp.float32
        assert result.targets.shape == result.mask.shape == (b, steps)
        assert result.lengths.shape == (b,) and int(result.lengths.max()) <= steps


# -- configs: a valid draw, then at most one field replaced by a malformed value ----------------------


def _one_malformed(valid_kwargs, fields, bad_values):
    """``(kwargs, bad field or None)``: half the draws have one field replaced from ``bad_values``."""
    replace = st.one_of(st.none(), st.tuples(st.sampled_from(fields), bad_values))
    return st.tuples(valid_kwargs, replace).map(
        lambda t: ({**t[0], t[1][0]: t[1][1]}, t[1][0]) if t[1] else (t[0], None)
    )


OPT_FIELDS = [f.name for f in dataclasses.fields(OptimizerConfig)]
OPT_VALID = {
    "name": st.sampled_from(train.OPTIMIZERS),
    "clip": st.sampled_from(train.CLIPS),
    "schedule": st.sampled_from(train.SCHEDULES),
    "learning_rate": st.floats(1e-5, 1.0),
    "clip_value": st.floats(0.1, 10.0),
    "momentum": st.floats(0.0, 0.99),
    "decay": st.floats(0.0, 0.99),
    "weight_decay": st.floats(0.0, 0.1),
    "decay_rate": st.floats(0.01, 1.0),
    "total_steps": st.integers(1, 10_000),
    "warmup_steps": st.integers(0, 100),
}


def _consistent(kwargs: dict) -> dict:
    """``kwargs`` without the fields its optimizer and schedule ignore (which OptimizerConfig refuses to set)."""
    name, schedule = kwargs.get("name", "adam"), kwargs.get("schedule", "constant")
    clip = kwargs.get("clip", "global_norm")
    kept = {
        k: v for k, v in kwargs.items() if all(k != field or rule in used_by for field, used_by, rule in [
            ("momentum", ("momentum", "nesterov"), name), ("decay", ("rmsprop",), name),
            ("weight_decay", ("adamw",), name), ("clip_value", ("global_norm", "value"), clip),
            ("total_steps", ("cosine", "exponential", "warmup_cosine"), schedule),
            ("warmup_steps", ("warmup_cosine",), schedule), ("decay_rate", ("exponential",), schedule),
        ])
    }  # fmt: skip
    if "warmup_steps" in kept:  # the warm-up is part of total_steps
        kept["total_steps"] = max(kept.get("total_steps", 1000), kept["warmup_steps"] + 1)
    return kept


# A field added later has no valid strategy here: it keeps its default.
opt_valid = st.fixed_dictionaries({}, optional={f: s for f, s in OPT_VALID.items() if f in OPT_FIELDS}).map(
    _consistent
)


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_optimizer(c: OptimizerConfig) -> None:
    """The documented range of every field :class:`OptimizerConfig` checks."""
    assert c.name in train.OPTIMIZERS and c.clip in train.CLIPS and c.schedule in train.SCHEDULES
    assert _finite_number(c.learning_rate) and c.learning_rate > 0
    assert _finite_number(c.clip_value) and c.clip_value > 0
    assert 0 <= c.momentum < 1 and 0 <= c.decay < 1
    assert not c.weight_decay < 0
    assert type(c.total_steps) is int and c.total_steps > 0
    assert type(c.warmup_steps) is int and c.warmup_steps >= 0


@_settings(80)
@given(drawn=_one_malformed(opt_valid, OPT_FIELDS, junk))
def test_optimizer_config_is_valid_or_names_the_field(drawn):
    kwargs, bad = drawn
    result, error = _outcome(OptimizerConfig, **kwargs)
    event("refused" if error else "built")
    if error is not None:
        assert bad is not None, error  # valid fields alone never fail
        _named(error, bad)
    else:
        _check_optimizer(result)


@pytest.mark.parametrize(
    "kwargs", [{"weight_decay": math.nan}, {"weight_decay": math.inf}, {"decay_rate": "fast"}, {"decay_rate": -1.0}]
)
def test_optimizer_config_refuses_non_finite_weight_decay_and_bad_decay_rate(kwargs):
    with pytest.raises((ValueError, TypeError)):
        OptimizerConfig(**kwargs)


SETTINGS_FIELDS = [f.name for f in dataclasses.fields(protocols.TrainSettings)]
SETTINGS_VALID = {
    **{f: st.integers(1, 64) for f in ("seeds", "batch_size", "steps", "eval_every")},
    # Any mix of these and the defaults (512, 1024, 64) keeps test_size % eval_size == 0 and grad_size <= eval_size.
    "eval_size": st.sampled_from([64, 512]),
    "test_size": st.sampled_from([512, 1024, 2048]),
    "grad_size": st.sampled_from([1, 64]),
    "solve_fraction": st.floats(0.01, 1.0),
    "stop_fraction": st.floats(0.01, 1.0),
    "patience": st.one_of(st.none(), st.integers(1, 10)),
    "optimizer": opt_valid.map(lambda kw: OptimizerConfig(**kw)),
}
stop_rule = st.one_of(st.just({}), st.floats(0.0, 1.0).map(lambda t: {"stop_metric": "error_rate", "stop_target": t}))
settings_valid = st.tuples(
    st.fixed_dictionaries({}, optional={f: s for f, s in SETTINGS_VALID.items() if f in SETTINGS_FIELDS}), stop_rule
).map(lambda t: {**t[0], **t[1]})


@_settings(80)
@given(drawn=_one_malformed(settings_valid, SETTINGS_FIELDS, st.one_of(junk, st.just({"name": "adam"}))))
def test_train_settings_are_valid_or_name_the_field(drawn):
    kwargs, bad = drawn
    result, error = _outcome(protocols.TrainSettings, **kwargs)
    event("refused" if error else "built")
    if error is not None:
        assert bad is not None, error
        _named(error, bad)
        return
    for name in ("seeds", "batch_size", "steps", "eval_every", "eval_size", "test_size", "grad_size"):
        value = getattr(result, name)
        assert type(value) is int and value > 0, (name, value)
    assert result.test_size % result.eval_size == 0 and result.grad_size <= result.eval_size
    assert 0 < result.solve_fraction <= 1 and 0 < result.stop_fraction <= 1
    assert result.patience is None or (type(result.patience) is int and result.patience > 0)
    assert isinstance(result.optimizer, OptimizerConfig)
    assert (result.stop_metric is None) == (result.stop_target is None)


@pytest.mark.parametrize(
    "kwargs", [{"stop_metric": 5, "stop_target": 0.0}, {"stop_metric": "m", "stop_target": math.nan}]
)
def test_train_settings_refuse_a_non_str_stop_metric_and_a_nan_stop_target(kwargs):
    with pytest.raises((ValueError, TypeError)):
        protocols.TrainSettings(**kwargs)


# What a JSON or TOML parser can give: scalars (ints beyond the float range too), lists and tables.
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**400), 10**400), st.floats(), st.text(max_size=3)),
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=3), inner, max_size=2)),
    max_leaves=4,
)


def _as_file(kwargs: dict) -> dict:
    """Settings keyword arguments as a parsed config file holds them (the optimizer as a table)."""
    return {k: config.to_dict(v) if isinstance(v, OptimizerConfig) else v for k, v in kwargs.items()}


def _malformed_file(data: st.DrawFn, valid: dict) -> tuple[dict, str | None]:
    where = data(st.sampled_from(["none", "top", "optimizer", "typo", "optimizer typo"]))
    out = {**valid, "optimizer": dict(valid.get("optimizer", {}))}
    if where == "none":
        return out, None
    if where in ("top", "typo"):
        key = data(st.sampled_from(SETTINGS_FIELDS if where == "top" else ["step", "Seeds", "lerning_rate"]))
        out[key] = data(json_values)
        return out, key
    key = data(st.sampled_from(OPT_FIELDS if where == "optimizer" else ["lerning_rate", "Name"]))
    out["optimizer"][key] = data(json_values)
    return out, f"optimizer.{key}"


def _same(a, b) -> bool:
    """``a == b`` for parsed values: nested, ints equal to the floats they became, nan equal to nan."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return a == b or (math.isnan(a) and isinstance(b, float) and math.isnan(b))
    return type(a) is type(b) and a == b


@_settings(100)
@given(valid=settings_valid, data=st.data())
def test_from_dict_builds_the_settings_or_names_the_key(valid, data):
    parsed, bad = _malformed_file(data.draw, _as_file(valid))
    result, error = _outcome(config.from_dict, protocols.TrainSettings, parsed)
    event(f"refused: {type(error).__name__}" if error else "built")
    if error is not None:
        assert bad is not None, error
        _named(error, bad, bad.split(".")[-1])
        return
    built = json.loads(json.dumps(config.to_dict(result)))
    assert _same(config.to_dict(config.from_dict(protocols.TrainSettings, built)), built)
    for key, value in parsed.items():  # every value read is the value built
        if key == "optimizer":
            assert all(_same(built[key][k], v) for k, v in value.items()), (built[key], value)
        else:
            assert _same(built[key], value), (key, built[key], value)


@functools.cache
def _preset():
    return load("vanishing_gradient").PRESETS["tiny"]


@_settings(40)
@given(
    overrides=st.dictionaries(
        st.sampled_from(["name", "seed", "hidden_size", "cells", "lengths", "train", "celss"]),
        st.one_of(
            json_values,
            st.just({"adding": [30]}),
            st.just({"adding": []}),
            st.just({"copy": [0]}),
            st.just(["tanh", "gru"]),
            st.just({"optimizer": {"learning_rate": 0}}),
            st.just({"steps": 3, "optimizer": {"name": "sgd"}}),
            st.just(8),
            st.just("renamed"),
        ),
        max_size=3,
    )
)
def test_merge_into_an_experiment_preset_is_valid_or_names_the_key(overrides):
    preset = _preset()
    result, error = _outcome(config.merge, preset, overrides)
    event(f"refused: {type(error).__name__}" if error else "built")
    if error is not None:
        _named(error, *overrides)
    else:
        assert type(result) is type(preset)
        assert config.from_dict(type(result), json.loads(json.dumps(config.to_dict(result)))) == result
