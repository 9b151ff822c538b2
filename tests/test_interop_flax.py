"""Flax linen and NNX cells converted to rnnlab give the same outputs and carries; the NNX/linen wrappers.

Biases are drawn at random (Flax initializes them to zero), initial carries are random and every
dimension has its own size, so a misplaced bias, gate block or carry component changes the numbers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from flax import nnx

import rnnlab
from rnnlab import cells
from rnnlab.flax_module import RNN, LinenRNN
from rnnlab.interop.flax import (
    carry_from_flax,
    carry_to_flax,
    from_linen,
    from_linen_gru_cell,
    from_linen_lstm_cell,
    from_linen_simple_cell,
    from_nnx,
    from_nnx_gru_cell,
    from_nnx_lstm_cell,
)

B, T, I, H = 3, 7, 5, 6
ATOL = 1e-5
XS = jax.random.normal(jax.random.key(0), (B, T, I))
BIAS_INIT = nn.initializers.normal(0.5)


def _close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=ATOL, rtol=0)


def _flax_carry(is_lstm, seed=1):
    k1, k2 = jax.random.split(jax.random.key(seed))
    h = jax.random.normal(k1, (B, H))
    return (jax.random.normal(k2, (B, H)), h) if is_lstm else h


LINEN_CELLS = {
    "simple_tanh": lambda: nn.SimpleCell(H, bias_init=BIAS_INIT),
    "simple_relu": lambda: nn.SimpleCell(H, activation_fn=nn.relu, bias_init=BIAS_INIT),
    "simple_residual": lambda: nn.SimpleCell(H, residual=True, bias_init=BIAS_INIT),
    "lstm": lambda: nn.LSTMCell(H, bias_init=BIAS_INIT),
    "optimized_lstm": lambda: nn.OptimizedLSTMCell(H, bias_init=BIAS_INIT),
    "gru": lambda: nn.GRUCell(H, bias_init=BIAS_INIT),
}


@pytest.mark.parametrize("name", sorted(LINEN_CELLS))
def test_linen_cells_match(name):
    flax_cell = LINEN_CELLS[name]()
    is_lstm = "lstm" in name
    rnn = nn.RNN(flax_cell, return_carry=True)
    carry0 = _flax_carry(is_lstm)
    variables = rnn.init(jax.random.key(2), XS, initial_carry=carry0)
    flax_final, flax_ys = rnn.apply(variables, XS, initial_carry=carry0)
    cell, params = from_linen(flax_cell, variables)  # nn.RNN's {"params": {"cell": ...}} is accepted
    final, ys = rnnlab.unroll(cell, params, XS, initial_carry=carry_from_flax(carry0))
    _close(ys, flax_ys)
    _close(carry_to_flax(final), flax_final)


def test_linen_gru_seq_lengths_match():
    """Flax's ``seq_lengths`` and rnnlab's ``lengths`` agree on the final carry and on the valid outputs."""
    flax_cell = nn.GRUCell(H, bias_init=BIAS_INIT)
    rnn = nn.RNN(flax_cell, return_carry=True)
    lengths = jnp.array([4, 7, 1])
    variables = rnn.init(jax.random.key(3), XS)
    flax_final, flax_ys = rnn.apply(variables, XS, seq_lengths=lengths)
    final, ys = rnnlab.unroll(cells.gru(H), from_linen_gru_cell(variables), XS, lengths=lengths)
    _close(final.hidden, flax_final)
    valid = (jnp.arange(T)[None, :] < lengths[:, None])[..., None]
    _close(jnp.where(valid, ys, 0.0), jnp.where(valid, flax_ys, 0.0))


def test_linen_param_mapping():
    """Gate blocks land where rnnlab expects them (checked on the arrays, not only through outputs)."""
    lstm_vars = nn.LSTMCell(H, bias_init=BIAS_INIT).init(jax.random.key(4), (jnp.zeros(H), jnp.zeros(H)), XS[0, 0])
    p = from_linen_lstm_cell(lstm_vars)
    f = lstm_vars["params"]
    _close(p.input_kernel[:, H : 2 * H], f["if"]["kernel"])
    _close(p.recurrent_kernel[:, 3 * H :], f["ho"]["kernel"])
    _close(p.bias[2 * H : 3 * H], f["hg"]["bias"])
    gru_vars = nn.GRUCell(H, bias_init=BIAS_INIT).init(jax.random.key(5), jnp.zeros(H), XS[0, 0])
    g = from_linen_gru_cell(gru_vars["params"])  # the inner dict works too
    _close(g.bias[2 * H :], gru_vars["params"]["in"]["bias"])
    _close(g.recurrent_bias, gru_vars["params"]["hn"]["bias"])
    simple_vars = nn.SimpleCell(H, residual=True).init(jax.random.key(6), jnp.zeros(H), XS[0, 0])
    s = from_linen_simple_cell(simple_vars, residual=True)
    _close(s.recurrent_kernel, simple_vars["params"]["h"]["kernel"] + jnp.eye(H))


def _nnx_bias_init(key, shape, dtype=jnp.float32):
    return 0.5 * jax.random.normal(key, shape, dtype)


NNX_CELLS = {
    "simple": lambda r: nnx.SimpleCell(I, H, bias_init=_nnx_bias_init, rngs=r),
    "simple_residual_sigmoid": lambda r: nnx.SimpleCell(
        I, H, residual=True, activation_fn=jax.nn.sigmoid, bias_init=_nnx_bias_init, rngs=r
    ),
    "lstm": lambda r: nnx.LSTMCell(I, H, bias_init=_nnx_bias_init, rngs=r),
    "optimized_lstm": lambda r: nnx.OptimizedLSTMCell(I, H, bias_init=_nnx_bias_init, rngs=r),
    "gru": lambda r: nnx.GRUCell(I, H, bias_init=_nnx_bias_init, rngs=r),
    "gru_softsign": lambda r: nnx.GRUCell(I, H, activation_fn=jax.nn.soft_sign, bias_init=_nnx_bias_init, rngs=r),
}


@pytest.mark.parametrize("name", sorted(NNX_CELLS))
def test_nnx_cells_match(name):
    flax_cell = NNX_CELLS[name](nnx.Rngs(7))
    carry0 = _flax_carry("lstm" in name, seed=8)
    # A plain loop over the cell: the NNX cell is called eagerly, step by step.
    carry, flax_ys = carry0, []
    for t in range(T):
        carry, y = flax_cell(carry, XS[:, t])
        flax_ys.append(y)
    flax_ys = jnp.stack(flax_ys, axis=1)
    cell, params = from_nnx(flax_cell)
    final, ys = rnnlab.unroll(cell, params, XS, initial_carry=carry_from_flax(carry0))
    _close(ys, flax_ys)
    _close(carry_to_flax(final), carry)


def test_nnx_lstm_variants_agree():
    """nnx.LSTMCell and nnx.OptimizedLSTMCell hold the same weights in different layouts."""
    a = nnx.LSTMCell(I, H, bias_init=_nnx_bias_init, rngs=nnx.Rngs(9))
    b = nnx.OptimizedLSTMCell(I, H, rngs=nnx.Rngs(10))
    pa = from_nnx_lstm_cell(a)
    b.dense_i.kernel[...] = pa.input_kernel
    b.dense_h.kernel[...] = pa.recurrent_kernel
    b.dense_h.bias[...] = pa.bias
    _close(from_nnx_lstm_cell(b), pa)
    carry = _flax_carry(True)
    _close(a(carry, XS[:, 0]), b(carry, XS[:, 0]))


def test_nnx_gru_has_no_recurrent_bias():
    p = from_nnx_gru_cell(nnx.GRUCell(I, H, bias_init=_nnx_bias_init, rngs=nnx.Rngs(11)))
    assert float(jnp.abs(p.recurrent_bias).max()) == 0.0 and float(jnp.abs(p.bias).max()) > 0.0


# --- errors -------------------------------------------------------------------------------------


def test_unrepresentable_cells_rejected():
    x, h = XS[:, 0], jnp.zeros((B, H))
    hard = nn.LSTMCell(H, gate_fn=jax.nn.hard_sigmoid)
    with pytest.raises(ValueError, match=r"gates are logistic sigmoids.*hard_sigmoid"):
        from_linen(hard, hard.init(jax.random.key(0), (h, h), x))
    gelu = nn.GRUCell(H, activation_fn=jax.nn.gelu)
    with pytest.raises(ValueError, match=r"activation_fn=.*gelu.*no rnnlab counterpart"):
        from_linen(gelu, gelu.init(jax.random.key(0), h, x))
    mgu = nn.MGUCell(H)
    with pytest.raises(ValueError, match=r"MGUCell.*different cells"):
        from_linen(mgu, mgu.init(jax.random.key(0), h, x))
    with pytest.raises(ValueError, match=r"no rnnlab counterpart"):
        from_nnx(nnx.GRUCell(I, H, activation_fn=jax.nn.relu, rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match=r"module must be an nnx"):
        from_nnx(nnx.Linear(I, H, rngs=nnx.Rngs(0)))


def test_bad_param_dicts_rejected():
    variables = nn.GRUCell(H).init(jax.random.key(0), jnp.zeros(H), XS[0, 0])
    p = jax.tree.map(lambda a: a, dict(variables["params"]))
    with pytest.raises(ValueError, match=r"missing \['ii', 'if', 'ig', 'io', 'hi', 'hf', 'hg', 'ho'\]"):
        from_linen_lstm_cell(variables)
    p["in"] = {"kernel": p["in"]["kernel"][:3], "bias": p["in"]["bias"]}
    with pytest.raises(
        ValueError, match=r"params\['in'\]\['kernel'\] must have shape \(I, H\) = \(5, 6\); got \(3, 6\)"
    ):
        from_linen_gru_cell(p)
    with pytest.raises(ValueError, match=r"a pair \(c, h\)"):
        carry_from_flax((jnp.zeros(H),) * 3)
    with pytest.raises(ValueError, match=r"gate activations"):
        carry_to_flax(cells.LSTMCarry(jnp.zeros(H), jnp.zeros(H), jnp.zeros(3 * H)))


# --- the NNX and linen wrappers -----------------------------------------------------------------


def test_nnx_rnn_module_shapes():
    # Same cell sizes as the other tests, so the initializers compile once.
    layer = rnnlab.stack([rnnlab.bidirectional(cells.lstm(H)), cells.lstm(H)])
    model = RNN(layer, I, rngs=nnx.Rngs(0))
    assert type(model.params[0]).__name__ == "BidirectionalParams"
    assert isinstance(model.params[1].bias, nnx.Param) and model.params[1].peephole is None
    params = model.param_values()
    assert params[0].forward.input_kernel.shape == (I, 4 * H)
    assert params[1].input_kernel.shape == (2 * H, 4 * H)
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert n_params == sum(x.size for x in jax.tree.leaves(params))
    carry, ys = model(XS[:, :3], lengths=jnp.array([3, 1, 2]))
    assert ys.shape == (B, 3, H) and carry[1].hidden.shape == (B, H)
    assert carry[0].backward.cell.shape == (B, H)


def test_nnx_rnn_from_converted_params():
    flax_cell = nnx.GRUCell(I, H, bias_init=_nnx_bias_init, rngs=nnx.Rngs(1))
    cell, params = from_nnx(flax_cell)
    model = RNN(cell, params=params)
    h0 = jnp.zeros((B, H))
    _close(model(XS[:, :1])[1][:, 0], flax_cell(h0, XS[:, 0])[1])
    with pytest.raises(ValueError, match=r"input_size=4 but params expect 5"):
        RNN(cell, 4, params=params)
    with pytest.raises(ValueError, match=r"leaf has shape"):
        RNN(cells.gru(H + 1), params=params)
    with pytest.raises(ValueError, match=r"pass input_size and rngs"):
        RNN(cell, I)
    with pytest.raises(TypeError, match=r"cell must be an rnnlab"):
        RNN(flax_cell, I, rngs=nnx.Rngs(0))


class _Regressor(nnx.Module):
    def __init__(self, rngs):
        self.rnn = RNN(cells.lstm(H), I, rngs=rngs)
        self.head = nnx.Linear(H, 1, rngs=rngs)

    def __call__(self, xs):
        carry, _ = self.rnn(xs)
        return self.head(carry.hidden)[:, 0]


def _loss(model, xs, target):
    return jnp.mean((model(xs) - target) ** 2)


def test_nnx_rnn_trains_with_optimizer_and_jit():
    model = _Regressor(nnx.Rngs(2))
    target = jnp.array([1.0, -1.0, 0.5])
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    eager = _loss(model, XS, target)
    jitted = nnx.jit(_loss)(model, XS, target)
    np.testing.assert_allclose(float(eager), float(jitted), rtol=1e-6)

    @nnx.jit
    def train_step(model, optimizer, xs, target):
        loss, grads = nnx.value_and_grad(_loss)(model, xs, target)
        optimizer.update(model, grads)
        return loss, grads

    before = jax.tree.map(jnp.copy, model.rnn.param_values())
    loss0, grads = train_step(model, optimizer, XS, target)
    assert float(jnp.abs(grads["rnn"]["params"]["recurrent_kernel"][...]).max()) > 0
    after = model.rnn.param_values()
    assert type(after).__name__ == "LSTMParams"
    for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        assert float(jnp.abs(a - b).max()) > 0  # adam moves every leaf that has a gradient
    for _ in range(3):
        loss, _ = train_step(model, optimizer, XS, target)
    assert float(loss) < float(loss0)


def test_linen_rnn_module():
    layer = rnnlab.bidirectional(cells.lstm(H))
    model = LinenRNN(layer)
    xs = XS[:, :3]
    variables = model.init(jax.random.key(0), xs)
    params = variables["params"]["cell"]
    assert type(params).__name__ == "BidirectionalParams"
    carry, ys = jax.jit(model.apply)(variables, xs)
    assert ys.shape == (B, 3, 2 * H)
    _close((carry, ys), jax.jit(lambda p: rnnlab.unroll(layer, p, xs))(params))
