"""Bad input raises a readable error naming the argument, the expected and the actual value."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from rnnlab import cells

B, T, I, H = 3, 4, 5, 6
CELL = cells.lstm(H)
PARAMS = CELL.init(jax.random.key(0), I)
XS = jnp.ones((B, T, I))


def _raises(exc, pattern, fn, *args, **kwargs):
    with pytest.raises(exc, match=pattern):
        fn(*args, **kwargs)


@pytest.mark.parametrize(
    "xs, exc, pattern",
    [
        (jnp.ones((I,)), ValueError, r"xs must have shape \(T, 5\).*got shape \(5,\) \(rank 1\)"),
        (jnp.ones((2, B, T, I)), ValueError, r"got shape \(2, 3, 4, 5\) \(rank 4\)"),
        (jnp.ones((B, T, I + 1)), ValueError, r"xs must have 5 features.*got shape \(3, 4, 6\)"),
        (jnp.ones((B, T, I), jnp.int32), TypeError, r"xs must have a floating dtype.*got int32"),
        (jnp.ones((B, 0, I)), ValueError, r"at least one timestep"),
        (np.ones((B, T, I), np.float16), TypeError, r"xs has dtype float16 but params have dtype float32"),
    ],
    ids=["rank1", "rank4", "features", "int", "empty", "dtype-mismatch"],
)
def test_bad_xs(xs, exc, pattern):
    _raises(exc, pattern, rnnlab.unroll, CELL, PARAMS, xs)


def test_xs_not_an_array():
    _raises(TypeError, r"xs must be an array; got list", rnnlab.unroll, CELL, PARAMS, [[1.0]])


@pytest.mark.parametrize(
    "lengths, exc, pattern",
    [
        (jnp.array([1, 2]), ValueError, r"lengths must have shape \(3,\).*got \(2,\)"),
        (jnp.array([[1, 2, 3]]), ValueError, r"lengths must have shape \(3,\).*got \(1, 3\)"),
        (jnp.array([1.0, 2.0, 3.0]), TypeError, r"lengths must have an integer dtype; got float32"),
        (jnp.array([1, 5, 2]), ValueError, r"lengths must lie in \[0, T=4\]; got values in \[1, 5\]"),
        (jnp.array([-1, 2, 2]), ValueError, r"lengths must lie in \[0, T=4\]; got values in \[-1, 2\]"),
    ],
    ids=["short", "rank2", "float", "above-T", "negative"],
)
def test_bad_lengths(lengths, exc, pattern):
    _raises(exc, pattern, rnnlab.unroll, CELL, PARAMS, XS, lengths=lengths)


def test_lengths_shape_checked_inside_jit():
    fn = jax.jit(lambda xs, n: rnnlab.unroll(CELL, PARAMS, xs, lengths=n)[1])
    _raises(ValueError, r"lengths must have shape \(3,\)", fn, XS, jnp.array([1, 2]))


@pytest.mark.parametrize(
    "resets, time_major, exc, pattern",
    [
        (jnp.zeros((T, B), bool), False, ValueError, r"resets must have shape \(B, T\) = \(3, 4\).*got \(4, 3\)"),
        (jnp.zeros((B, T), bool), True, ValueError, r"resets must have shape \(T, B\) = \(4, 3\).*got \(3, 4\)"),
        (jnp.zeros((B, T), jnp.int32), False, TypeError, r"resets must be boolean; got dtype int32"),
    ],
    ids=["transposed", "time-major", "int"],
)
def test_bad_resets(resets, time_major, exc, pattern):
    xs = jnp.swapaxes(XS, 0, 1) if time_major else XS
    _raises(exc, pattern, rnnlab.unroll, CELL, PARAMS, xs, resets=resets, time_major=time_major)


def test_bad_initial_carry():
    carry = CELL.initial_carry(PARAMS, (B + 1,))
    _raises(
        ValueError,
        r"initial_carry leaves must have shape \(3, 6\); got \(4, 6\)",
        rnnlab.unroll,
        CELL,
        PARAMS,
        XS,
        initial_carry=carry,
    )
    _raises(
        ValueError,
        r"initial_carry must have the structure",
        rnnlab.unroll,
        CELL,
        PARAMS,
        XS,
        initial_carry=jnp.zeros((B, H)),
    )


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"truncation": 0}, ValueError, r"truncation must be a positive int; got 0"),
        ({"truncation": 2.5}, TypeError, r"truncation must be a positive int; got 2.5"),
        ({"unroll": 0}, ValueError, r"unroll must be a positive int; got 0"),
        ({"reverse": 1}, TypeError, r"reverse must be a bool; got 1"),
    ],
)
def test_bad_unroll_options(kwargs, exc, pattern):
    _raises(exc, pattern, rnnlab.unroll, CELL, PARAMS, XS, **kwargs)


def test_not_a_cell():
    _raises(
        TypeError, r"cell must be a Cell, Bidirectional or Stack; got function", rnnlab.unroll, lambda: 0, PARAMS, XS
    )


@pytest.mark.parametrize("factory", [cells.elman, cells.irnn, cells.lstm, cells.gru, cells.mgu])
@pytest.mark.parametrize("size, exc", [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_hidden_size(factory, size, exc):
    _raises(exc, rf"hidden_size must be a positive int; got {re.escape(repr(size))}", factory, size)


def test_bad_input_size_at_init():
    _raises(ValueError, r"lstm: input_size must be a positive int; got 0", CELL.init, jax.random.key(0), 0)
    _raises(TypeError, r"dtype must be a floating dtype; got int32", CELL.init, jax.random.key(0), 3, jnp.int32)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: cells.make("lstn", 4), ValueError, r"unknown cell 'lstn'; known cells: \['elman', 'gru'"),
        (
            lambda: cells.make("lstm", 4, forget_bais=1.0),
            TypeError,
            r"cell 'lstm' has no option\(s\) \['forget_bais'\]",
        ),
        (lambda: cells.lstm(4, variant="LSTM-X"), ValueError, r"variant must be one of .*'CIFG'.*got 'LSTM-X'"),
        (lambda: cells.lstm(4, variant="CIFG", peepholes=False), ValueError, r"variant='CIFG' fixes .*\['peepholes'\]"),
        (lambda: cells.lstm(4, input_activation="relu"), ValueError, r"input_activation.*one of.*got 'relu'"),
        (lambda: cells.lstm(4, coupled=True, forget_gate=False), ValueError, r"coupled=True .* needs a forget gate"),
        (lambda: cells.lstm(4, chrono_t_max=1), ValueError, r"chrono_t_max must be >= 2.*got 1.0"),
        (lambda: cells.lstm(4, variant="NFG", chrono_t_max=100), ValueError, r"chrono_t_max .* has none"),
        (lambda: cells.lstm(4, peepholes="yes"), TypeError, r"peepholes must be a bool; got 'yes'"),
        (lambda: cells.elman(4, activation="gelu"), ValueError, r"activation must be one of .*got 'gelu'"),
        (lambda: cells.elman(4, recurrent_init="he"), ValueError, r"recurrent_init must be one of .*got 'he'"),
        (lambda: cells.gru(4, reset_after="no"), TypeError, r"reset_after must be a bool"),
        (lambda: cells.gru(4, activation="relu"), ValueError, r"activation must be one of \['softsign', 'tanh'\]"),
        (lambda: rnnlab.stack([]), ValueError, r"stack: layers must hold at least one layer"),
        (lambda: rnnlab.stack([cells.lstm(4), cells.lstm(5)], residual=True), ValueError, r"widths must match.*4.*5"),
        (lambda: rnnlab.stack([cells.lstm(4)], dropout=1.0), ValueError, r"dropout must be in \[0, 1\); got 1.0"),
        (lambda: rnnlab.bidirectional(cells.lstm(4), merge="avg"), ValueError, r"merge must be one of"),
        (lambda: rnnlab.bidirectional(cells.lstm(4), cells.gru(3), merge="sum"), ValueError, r"equal hidden sizes"),
        # The exported classes check what the factories check.
        (lambda: rnnlab.Bidirectional(cells.gru(4), cells.gru(4), merge="Concat"), ValueError, r"merge must be one of"),
        (lambda: rnnlab.Bidirectional(cells.gru(4), cells.gru(3), "sum"), ValueError, r"equal hidden sizes"),
        (lambda: rnnlab.Bidirectional(cells.gru(4), None), TypeError, r"backward must be a Cell; got NoneType"),
        (lambda: rnnlab.Stack((cells.gru(4),), dropout=1.5), ValueError, r"Stack: dropout must be in .*got 1.5"),
        (lambda: rnnlab.stack([cells.gru(4)], dropout=0.5), ValueError,
         r"stack: dropout acts between layers, and a one-layer stack has none; got dropout=0.5 with 1 layer"),
        (lambda: rnnlab.Stack((cells.gru(4), cells.gru(4)), dropout=0.5)._replace(layers=(cells.gru(4),)), ValueError,
         r"Stack: dropout acts between layers"),
        (lambda: rnnlab.Stack(()), ValueError, r"Stack: layers must hold at least one layer"),
        (lambda: rnnlab.Stack((cells.gru(4), cells.gru(5)), True), ValueError, r"widths must match.*4.*5"),
        (lambda: rnnlab.Stack((cells.gru(4),), residual=1), TypeError, r"residual must be a bool; got 1"),
        (lambda: rnnlab.bidirectional(cells.gru(4))._replace(merge="avg"), ValueError, r"merge must be one of"),
        # Non-finite options would put inf/NaN into the weights.
        (lambda: cells.lstm(4, forget_bias=float("nan")), ValueError, r"forget_bias must be a finite number; got nan"),
        (lambda: cells.lstm(4, chrono_t_max=float("inf")), ValueError, r"chrono_t_max must be a finite .*got inf"),
        (lambda: cells.lstm(4, chrono_t_max=float("nan")), ValueError, r"chrono_t_max must be a finite .*got nan"),
        (lambda: cells.elman(4, spectral_radius=float("nan")), ValueError, r"elman: spectral_radius must be a finite"),
        (lambda: cells.elman(4, spectral_radius=float("inf")), ValueError, r"spectral_radius must be a finite .*inf"),
        (lambda: cells.irnn(4, scale=float("nan")), ValueError, r"irnn: scale must be a finite number >= 0; got nan"),
        (lambda: cells.irnn(4, scale=-1.0), ValueError, r"irnn: scale must be a finite number >= 0; got -1.0"),
    ],
    ids=lambda v: "" if callable(v) else None,
)
def test_bad_cell_options(call, exc, pattern):
    _raises(exc, pattern, call)


P8 = cells.lstm(8).init(jax.random.key(0), I)


@pytest.mark.parametrize(
    "cell, params, exc, pattern",
    [
        (cells.lstm(16), P8, ValueError, r"params.input_kernel must have shape \(5, 64\) .*size=16.*got \(5, 32\)"),
        (cells.lstm(8, variant="CIFG"), P8, ValueError, r"params.input_kernel must have shape \(5, 24\).*\(5, 32\)"),
        (cells.lstm(8, variant="vanilla"), P8, ValueError, r"params.peephole must be an array of shape \(3, 8\).*None"),
        (cells.lstm(8), cells.lstm(8, layer_norm=True).init(jax.random.key(0), I), ValueError,
         r"params.layer_norm must be None: the lstm cell .*has no such parameters; got LayerNormParams"),
        (cells.gru(8), P8, TypeError, r"params must be GRUParams, as the gru cell .* its init; got LSTMParams"),
        (cells.elman(8), P8, TypeError, r"params must be ElmanParams.*got LSTMParams"),
        (cells.gru(4, reset_after=False), cells.gru(4).init(jax.random.key(0), I), ValueError,
         r"params.recurrent_bias must be None.*got an array of shape \(4,\)"),
        (cells.gru(4), cells.gru(4, reset_after=False).init(jax.random.key(0), I), ValueError,
         r"params.recurrent_bias must be an array of shape \(4,\).*got None"),
        (cells.lstm(8), P8._asdict(), TypeError, r"params must be LSTMParams.*got dict"),
        (cells.lstm(8), P8._replace(bias=P8.bias.astype(jnp.float16)), TypeError,
         r"params.bias must have dtype float32, as this cell's init builds them next to the first parameter's; "
         r"got float16"),
    ],
    ids=["hidden-size", "cifg", "peepholes", "layer-norm", "gru-lstm", "elman-lstm", "reset-after", "reset-before",
         "dict", "mixed-dtypes"],
)  # fmt: skip
def test_params_that_do_not_fit_the_cell(cell, params, exc, pattern):
    """Checked on shapes before tracing, in unroll (eager and under jit, either backward) and in cell.apply."""
    _raises(exc, r"unroll: " + pattern, rnnlab.unroll, cell, params, XS)
    _raises(exc, pattern, rnnlab.unroll, cell, params, XS, fused=False)
    _raises(exc, pattern, jax.jit(lambda p: rnnlab.unroll(cell, p, XS)), params)
    _raises(exc, rf"{cell.name}.apply: " + pattern, cell.apply, params, cell.initial_carry(params, (B,)), XS[:, 0])
