"""Cases with a known exact answer, and the jit contract of ``rnnlab.unroll``.

* A linear RNN with ``U = a * Q`` (Q orthogonal, e.g. the identity) has ``dh_T/dh_t = (U^(T-t))^T``,
  every singular value ``a^(T-t)``: the vanishing (a < 1) and exploding (a > 1) regimes of Pascanu et
  al. (2013) with no approximation. The Jacobian is taken by unrolling from step t.
* An LSTM whose forget gate is exactly 1 and whose h does not feed back has ``dc_T/dc_t = I``: the
  constant error carousel of Hochreiter & Schmidhuber (1997). With f < 1 it is ``diag(prod f)``.
* ``jax.jit(unroll)`` gives the eager result for every cell, traces once per input shape and
  re-traces for a new one (so a training loop does not recompile every step).

Every dimension has its own size (batch 3, time 4, input 5, hidden 6) and inputs are nonzero.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import CASES, random_carry, randomize, sigmoid

import rnnlab
from rnnlab import cells

B, T, I, H = 3, 4, 5, 6


def _params(cell, seed, dtype=jnp.float64):
    """Random values in the structure of ``cell.init`` (eval_shape: no initializer runs)."""
    return randomize(jax.eval_shape(lambda: cell.init(jax.random.key(seed), I, dtype=dtype)), seed)


def _xs(seed, dtype=np.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(0.0, 1.0, (B, T, I)).astype(dtype))


def _carry_before(carry0, carries, t):
    """The carry entering step t: the initial one, or the one after step t - 1."""
    return carry0 if t == 0 else jax.tree.map(lambda c: c[:, t - 1], carries)


# ----------------------------------------------------------------------------------------------- linear RNN


@pytest.mark.parametrize("a", [0.9, 1.1])
@pytest.mark.parametrize("kernel", ["identity", "orthogonal"])
def test_linear_rnn_jacobian_norm_is_a_to_the_lag(x64, a, kernel):
    cell = cells.elman(H, activation="identity")
    rng = np.random.default_rng(0)
    Q = np.eye(H) if kernel == "identity" else np.linalg.qr(rng.normal(size=(H, H)))[0]
    U = a * Q
    p = _params(cell, 1)._replace(recurrent_kernel=jnp.asarray(U))
    xs = _xs(2)
    carry0 = random_carry(cell.initial_carry(p, (B,)), 3)

    @jax.jit  # one compilation for all lags
    def jacobians(p, xs, carry0):
        _, _, carries = rnnlab.unroll(cell, p, xs, initial_carry=carry0, return_carries=True)

        def final_hidden(h, t):
            return rnnlab.unroll(cell, p, xs[:, t:], initial_carry=cells.RNNCarry(h))[0].hidden

        return [jax.jacobian(final_hidden)(_carry_before(carry0, carries, t).hidden, t) for t in range(T)]

    for t, J in enumerate(jacobians(p, xs, carry0)):
        lag = T - t
        J = np.asarray(J).reshape(B * H, B * H)
        np.testing.assert_allclose(np.linalg.norm(J, 2), a**lag, rtol=1e-12, err_msg=f"||dh_T/dh_{t}||")
        np.testing.assert_allclose(np.linalg.svd(J, compute_uv=False), a**lag, rtol=1e-12)
        # h_T = h_t U^lag + (input terms), row vectors; sequences in the batch do not interact.
        want = np.kron(np.eye(B), np.linalg.matrix_power(U, lag).T)
        np.testing.assert_allclose(J, want, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------- LSTM carousel


def _lstm_without_feedback(options, seed):
    """An LSTM with U = 0 (h never feeds back into the gates) and, if it has any, zero peepholes
    (c does not feed into the gates): c_T then depends on c_t only through the cell path."""
    cell = cells.lstm(H, **options)
    p = _params(cell, seed)
    p = p._replace(recurrent_kernel=jnp.zeros_like(p.recurrent_kernel))
    if p.peephole is not None:
        p = p._replace(peephole=jnp.zeros_like(p.peephole))
    return cell, p


def _cell_jacobians(cell, p, xs, carry0):
    """``dc_T/dc_t`` for every t (each ``(B*H, B*H)``), computed by unrolling from step t."""

    @jax.jit  # one compilation for all t
    def jacobians(p, xs, carry0):
        _, _, carries = rnnlab.unroll(cell, p, xs, initial_carry=carry0, return_carries=True)

        def final_cell(c, start, t):
            return rnnlab.unroll(cell, p, xs[:, t:], initial_carry=start._replace(cell=c))[0].cell

        out = []
        for t in range(T):
            start = _carry_before(carry0, carries, t)
            out.append(jax.jacobian(final_cell)(start.cell, start, t))
        return out

    return [np.asarray(J).reshape(B * H, B * H) for J in jacobians(p, xs, carry0)]


@pytest.mark.parametrize("pin", ["original", "NFG", "forget_bias_50"])
def test_lstm_with_unit_forget_gate_carries_error_unchanged(x64, pin):
    """With f == 1 exactly and no feedback through h or peepholes, c_T = c_t + sum_s i_s * g_s where
    i_s and g_s depend on x_s alone, so dc_T/dc_t is exactly the identity (autodiff only adds zeros).

    * original / NFG: no forget gate, f = 1 structurally (NFG's peepholes are zeroed, see above).
    * forget_bias_50: the default LSTM with W_f = 0 and b_f = 50, so f = sigmoid(50) = 1/(1 + 2e-22),
      which rounds to exactly 1.0 in float64.
    """
    if pin == "forget_bias_50":
        cell, p = _lstm_without_feedback({}, 4)
        f = slice(H, 2 * H)  # gate order i, f, g, o
        p = p._replace(
            input_kernel=p.input_kernel.at[:, f].set(0.0),
            bias=p.bias.at[f].set(50.0),
        )
        assert float(jax.nn.sigmoid(jnp.float64(50.0))) == 1.0
    else:
        cell, p = _lstm_without_feedback({"variant": pin}, 4)
    xs = _xs(5)
    carry0 = random_carry(cell.initial_carry(p, (B,)), 6)
    for t, J in enumerate(_cell_jacobians(cell, p, xs, carry0)):
        np.testing.assert_array_equal(J, np.eye(B * H), err_msg=f"dc_T/dc_{t}")


def test_lstm_forget_gate_below_one_decays_the_cell_path(x64):
    """Same setting with a random forget bias: dc_T/dc_t = diag(prod_{s>=t} f_s), f_s = sigmoid(x_s W_f + b_f)."""
    cell, p = _lstm_without_feedback({}, 7)
    xs = _xs(8)
    carry0 = random_carry(cell.initial_carry(p, (B,)), 9)
    f = sigmoid(np.asarray(xs) @ np.asarray(p.input_kernel)[:, H : 2 * H] + np.asarray(p.bias)[H : 2 * H])
    for t, J in enumerate(_cell_jacobians(cell, p, xs, carry0)):
        want = np.diag(np.prod(f[:, t:], axis=1).reshape(B * H))
        np.testing.assert_allclose(J, want, rtol=1e-12, atol=1e-15, err_msg=f"dc_T/dc_{t}")
        assert np.diag(J).max() < 1.0


# ----------------------------------------------------------------------------------------------- jit


@pytest.mark.parametrize("case_id", list(CASES))
def test_jit_matches_eager(case_id):
    """Float32, as used in training. On CPU both paths run the same compiled scan body and agree to the
    bit; elsewhere XLA may fuse the jitted program differently, so only to float32 rounding."""
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    p = _params(cell, 11, jnp.float32)
    xs = _xs(12, np.float32)
    carry0 = random_carry(cell.initial_carry(p, (B,)), 13)

    def run(p, xs, c0):
        return rnnlab.unroll(cell, p, xs, initial_carry=c0, return_carries=True)

    eager = run(p, xs, carry0)
    jitted = jax.jit(run)(p, xs, carry0)
    assert jax.tree.structure(eager) == jax.tree.structure(jitted)
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(eager)[0], jax.tree.leaves(jitted)):
        assert a.dtype == b.dtype == jnp.float32
        if jax.default_backend() == "cpu":
            np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("case_id", ["elman-tanh", "lstm-FGR", "gru-reset_after"])
def test_jitted_unroll_traces_once_per_shape(case_id):
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    traces = []

    @jax.jit
    def run(p, xs):
        traces.append(xs.shape)
        return rnnlab.unroll(cell, p, xs)[1]

    p, q = _params(cell, 14, jnp.float32), _params(cell, 15, jnp.float32)
    xs = _xs(16, np.float32)
    run(p, xs)
    run(q, 2.0 * xs)  # new values, same shapes
    run(p, xs + 1.0)
    assert traces == [(B, T, I)]
    run(p, xs[:, :2])  # a new length
    run(p, xs[:2])  # a new batch size
    run(q, xs[:, :2])
    assert traces == [(B, T, I), (B, 2, I), (2, T, I)]

    # The same contract as chex states it for a train step.
    chex.clear_trace_counter()
    counted = jax.jit(chex.assert_max_traces(lambda p, xs: rnnlab.unroll(cell, p, xs)[1], n=1))
    counted(p, xs)
    counted(q, xs - 1.0)
    with pytest.raises(AssertionError):
        counted(p, xs[:, :3])
