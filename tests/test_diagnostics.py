"""Gradient-flow diagnostics on the analytic cases and against an explicit Jacobian."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from rnnlab import cells, diagnostics

B, T, I, H = 3, 9, 5, 6
XS = jax.random.normal(jax.random.key(0), (B, T, I))


def _linear(a):
    cell = cells.elman(H, activation="identity")
    p = cell.init(jax.random.key(1), I)
    return cell, p._replace(recurrent_kernel=a * jnp.eye(H))


@pytest.mark.parametrize("a", [0.9, 1.1])
def test_linear_rnn_error_decays_as_a_to_the_lag(x64, a):
    cell, p = _linear(a)
    p = jax.tree.map(lambda v: v.astype(jnp.float64), p)
    xs = XS.astype(jnp.float64)
    v = jnp.asarray(np.random.default_rng(0).normal(size=H))
    norms = diagnostics.carry_gradient_norms(cell, p, xs, lambda ys, final: jnp.sum(final.hidden @ v))
    lags = T - 1 - np.arange(T)
    np.testing.assert_allclose(norms.hidden, a**lags * np.linalg.norm(v), rtol=1e-12)
    jac = diagnostics.hidden_jacobian_norms(cell, p, xs[0])
    np.testing.assert_allclose(jac, a**lags, rtol=1e-12)


def test_lstm_with_forget_gate_one_carries_error_unchanged_along_c(x64):
    # f = 1 structurally (no forget gate) and U = 0 (h does not feed back): c_T = c_t + sum of later
    # inputs, so dL/dc_t is the same vector for every t.
    cell = cells.lstm(H, variant="original")
    p = cell.init(jax.random.key(2), I, dtype=jnp.float64)
    p = p._replace(recurrent_kernel=jnp.zeros_like(p.recurrent_kernel))
    g = diagnostics.carry_gradients(cell, p, XS.astype(jnp.float64), lambda ys, final: jnp.sum(ys[:, -1] ** 2))
    np.testing.assert_allclose(g.cell[:, :-1], jnp.broadcast_to(g.cell[:, -2:-1], g.cell[:, :-1].shape), rtol=1e-12)
    assert np.all(np.asarray(g.cell[:, -1]) == 0)  # h_T is computed inside the last step: c_T reaches nothing after
    assert np.all(np.abs(np.asarray(g.cell[:, 0])) > 0)
    assert np.all(np.asarray(g.hidden[:, :-1]) == 0)  # with U = 0, h_t reaches the loss only at the last step


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
def test_carry_gradients_match_an_explicit_restart(name):
    # Independent route: restart the unroll at step t+1 from carry_t and differentiate the loss
    # with respect to that initial carry.
    cell = cells.make(name, H)
    p = cell.init(jax.random.key(3), I)
    lengths = jnp.array([T, 6, 4])

    def loss(ys, final):
        return jnp.sum(jnp.sin(final.hidden)) + jnp.sum(ys**2)

    g = diagnostics.carry_gradients(cell, p, XS, loss, lengths=lengths)
    _, ys, carries = rnnlab.unroll(cell, p, XS, lengths=lengths, return_carries=True)
    for t in (0, 3, T - 2):
        c_t = jax.tree.map(lambda c, t=t: c[:, t], carries)

        def restarted(c, t=t):
            final, rest = rnnlab.unroll(
                cell, p, XS[:, t + 1 :], initial_carry=c, lengths=jnp.maximum(lengths - t - 1, 0)
            )
            return loss(jnp.concatenate([jax.lax.stop_gradient(ys[:, : t + 1]), rest], axis=1), final)

        expected = jax.grad(restarted)(c_t)
        # The direct path: the loss reads y_t = h_t (while t is inside the sequence).
        direct = jnp.where((t < lengths)[:, None], 2 * ys[:, t], 0.0)
        expected = expected._replace(hidden=expected.hidden + direct)
        # Past a sequence's end there is no step t: its gradient is zero by definition.
        expected = jax.tree.map(lambda e, t=t: jnp.where((t < lengths)[:, None], e, 0.0), expected)
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x, t=t: x[:, t], g)), jax.tree.leaves(expected)):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_spectral_radius_per_gate():
    cell = cells.lstm(H, recurrent_init="orthogonal")
    p = cell.init(jax.random.key(4), I)
    np.testing.assert_allclose(diagnostics.recurrent_spectral_radius(p), np.ones(4), rtol=1e-5)


def test_carry_offsets_shape_error():
    cell, p = _linear(0.5)
    with pytest.raises(ValueError, match=r"carry_offsets must match the carries' shapes"):
        rnnlab.unroll(cell, p, XS, carry_offsets=cells.RNNCarry(jnp.zeros((T, B, H))))
