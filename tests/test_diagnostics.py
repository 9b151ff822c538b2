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


def test_gradient_norms_align_each_sequence_at_its_own_last_step(x64):
    # The loss reads every sequence's last valid h: with U = a * I its error at lag k (step L_b - 1 - k)
    # is a^k ||v|| in every sequence, so the curve is a^lag wherever a sequence reaches the lag. Counted
    # from the array's end instead, lag 0 would hold only the full-length sequences and the zeros of the others.
    a = 0.8
    cell, p = _linear(a)
    p = jax.tree.map(lambda v: v.astype(jnp.float64), p)
    xs = XS.astype(jnp.float64)
    v = jnp.asarray(np.random.default_rng(5).normal(size=H))
    lengths = jnp.array([T - 1, 6, 4])  # none fills the array: no sequence reaches lag T - 1
    norms = diagnostics.carry_gradient_norms(cell, p, xs, lambda ys, f: jnp.sum(f.hidden @ v), lengths=lengths)
    lags = T - 1 - np.arange(T)
    assert np.isnan(norms.hidden[0])  # lag T - 1: no sequence, no number (not a zero)
    np.testing.assert_allclose(norms.hidden[1:], a ** lags[1:] * np.linalg.norm(v), rtol=1e-12)
    np.testing.assert_array_equal(diagnostics.lag_counts(lengths, T), [0, 1, 1, 2, 2, 3, 3, 3, 3])


@pytest.mark.parametrize("layout", ["batch_major", "time_major", "reverse", "unbatched"])
def test_gradient_norms_by_lag_match_a_per_sequence_loop(layout):
    cell = cells.lstm(H)
    p = cell.init(jax.random.key(6), I)
    lengths = jnp.array([7, 0, 4])  # a sequence of length 0 reaches no lag

    def loss(ys, final):
        return jnp.sum(jnp.sin(final.hidden)) + jnp.sum(jnp.where(ys > 0, ys, 0.1 * ys) ** 2)

    kwargs = {"lengths": lengths, "reverse": layout == "reverse"}
    if layout == "unbatched":
        xs, kwargs["lengths"] = XS[0], lengths[0]
    elif layout == "time_major":
        xs, kwargs["time_major"] = jnp.swapaxes(XS, 0, 1), True
    else:
        xs = XS
    g = diagnostics.carry_gradients(cell, p, xs, loss, **kwargs)
    got = diagnostics.carry_gradient_norms(cell, p, xs, loss, **kwargs)
    ends = np.atleast_1d(np.asarray(kwargs["lengths"]))
    for leaf, want_leaf in zip(jax.tree.leaves(got), jax.tree.leaves(g)):
        per_step = np.linalg.norm(np.asarray(want_leaf, np.float64), axis=-1)  # (B, T)
        per_step = per_step.T if layout == "time_major" else np.atleast_2d(per_step)
        want = np.full(T, np.nan)
        for t in range(T):
            lag = t if layout == "reverse" else T - 1 - t
            # The reverse unroll ends every sequence at step 0: its lag k is step k.
            rows = [per_step[b, lag if layout == "reverse" else ends[b] - 1 - lag] for b in range(len(ends))
                    if ends[b] > lag]  # fmt: skip
            if rows:
                want[t] = np.mean(rows)
        np.testing.assert_allclose(leaf, want, rtol=1e-5, atol=1e-7)
        counts = diagnostics.lag_counts(kwargs["lengths"], T, reverse=layout == "reverse")
        np.testing.assert_array_equal(np.isnan(leaf), np.asarray(counts) == 0)


def test_gradient_norms_far_below_the_square_root_of_float32_s_smallest_normal_are_not_zero():
    # h_t = 1e-3 h_{t-1} + ...: dL/dh at lag k is 1e-3**k per unit, so its norm is sqrt(3) 1e-3**k, down to
    # 1.7e-33 at lag 11, whose squares (3e-66) underflow float32: the norm must not read them.
    cell = cells.elman(3, activation="identity")
    p = cell.init(jax.random.key(0), 1)._replace(recurrent_kernel=1e-3 * jnp.eye(3))
    norms = diagnostics.carry_gradient_norms(cell, p, jnp.ones((2, 12, 1)), lambda ys, final: jnp.sum(ys[:, -1]))
    np.testing.assert_allclose(norms.hidden[::-1], np.sqrt(3) * 1e-3 ** np.arange(12.0), rtol=1e-5)
    # A gradient that is itself 0, inf or NaN keeps that norm.
    g = jnp.array([[0.0, 0.0], [jnp.inf, 1.0], [jnp.nan, 1.0], [3e-30, 4e-30]])
    np.testing.assert_allclose(diagnostics._l2_norm(g), [0.0, np.inf, np.nan, 5e-30], rtol=1e-6)


def test_gradient_norms_of_full_length_sequences_are_the_plain_batch_mean():
    cell = cells.gru(H)
    p = cell.init(jax.random.key(7), I)

    def loss(ys, final):
        return jnp.sum(ys[:, -1] ** 2)

    for lengths in (None, jnp.full(B, T)):  # a fixed-length task's batch carries lengths = T
        norms = diagnostics.carry_gradient_norms(cell, p, XS, loss, lengths=lengths)
        g = diagnostics.carry_gradients(cell, p, XS, loss, lengths=lengths)
        # Bit for bit the batch mean at every step: fixed-length curves are what they always were.
        np.testing.assert_array_equal(norms.hidden, jnp.mean(diagnostics._l2_norm(g.hidden), axis=0))
        np.testing.assert_allclose(norms.hidden, jnp.mean(jnp.linalg.norm(g.hidden, axis=-1), axis=0), rtol=1e-6)
        np.testing.assert_array_equal(diagnostics.lag_counts(jnp.full(B, T), T), np.full(T, B))


def test_spectral_radius_per_gate():
    cell = cells.lstm(H, recurrent_init="orthogonal")
    p = cell.init(jax.random.key(4), I)
    np.testing.assert_allclose(diagnostics.recurrent_spectral_radius(p), np.ones(4), rtol=1e-5)


def test_carry_offsets_shape_error():
    cell, p = _linear(0.5)
    with pytest.raises(ValueError, match=r"carry_offsets must match the carries' shapes"):
        rnnlab.unroll(cell, p, XS, carry_offsets=cells.RNNCarry(jnp.zeros((T, B, H))))


# ----------------------------------------------------------------------------------------------- gate statistics


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _numpy_forget_gates(p, xs, carry0, carries, resets=None, reset_carry=None):
    """f_t = sigmoid(x_t W_f + h_{t-1} U_f + b_f) step by step from the unroll's carries (vanilla LSTM,
    gate blocks i, f, g, o), with h_{t-1} the initial hidden state at t = 0 and the reset carry's
    (default the initial one) at a reset."""
    W, U, b = (np.asarray(a, np.float64)[..., H : 2 * H] for a in (p.input_kernel, p.recurrent_kernel, p.bias))
    xs, hs, h0 = np.asarray(xs, np.float64), np.asarray(carries.hidden, np.float64), np.asarray(carry0.hidden)
    f = np.zeros((B, T, H))
    for t in range(T):
        h_prev = h0 if t == 0 else hs[:, t - 1]
        if resets is not None:
            h_reset = h0 if reset_carry is None else np.asarray(reset_carry.hidden)
            h_prev = np.where(np.asarray(resets)[:, t, None], h_reset, h_prev)
        f[:, t] = _sigmoid(xs[:, t] @ W + h_prev @ U + b)
    return f


@pytest.mark.parametrize("masking", ["none", "lengths", "lengths_and_resets", "reset_carry"])
def test_gate_statistics_match_a_numpy_loop(x64, masking):
    cell = cells.lstm(H)
    p = cell.init(jax.random.key(5), I, dtype=jnp.float64)
    # A spread of forget biases, so that some units saturate above 0.9 and some below 0.1.
    p = p._replace(bias=p.bias.at[H : 2 * H].set(jnp.linspace(-3.0, 3.0, H)))
    xs = XS.astype(jnp.float64)
    rng = np.random.default_rng(6)
    carry0 = cells.LSTMCarry(*(jnp.asarray(rng.normal(0.0, 0.5, (B, H))) for _ in range(2)))
    lengths = None if masking == "none" else jnp.array([T, 5, 1])
    resets = None
    if masking in ("lengths_and_resets", "reset_carry"):
        resets = jnp.zeros((B, T), bool).at[0, 4].set(True).at[1, 2].set(True)
    kwargs = dict(initial_carry=carry0, resets=resets)
    if masking == "reset_carry":  # a reset restores this carry, not the initial one
        kwargs["reset_carry"] = cells.LSTMCarry(*(jnp.asarray(rng.normal(0.0, 0.5, (B, H))) for _ in range(2)))
    stats = diagnostics.gate_statistics(cell, p, xs, lengths=lengths, saturation=(0.2, 0.8), **kwargs)
    _, _, carries = rnnlab.unroll(cell, p, xs, lengths=lengths, return_carries=True, **kwargs)

    f = _numpy_forget_gates(p, xs, carry0, carries, resets, kwargs.get("reset_carry"))
    n = np.full(B, T) if lengths is None else np.asarray(lengths)
    valid = np.arange(T)[None, :] < n[:, None]  # (B, T)
    f_valid = f[valid]  # (N, H): the padded steps are dropped
    assert f_valid.shape == (int(n.sum()), H)
    np.testing.assert_allclose(stats.mean["f"], f_valid.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.frac_below_per_unit["f"], (f_valid < 0.2).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.frac_above_per_unit["f"], (f_valid > 0.8).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.frac_below["f"], (f_valid < 0.2).mean(), rtol=1e-12)
    np.testing.assert_allclose(stats.frac_above["f"], (f_valid > 0.8).mean(), rtol=1e-12)
    assert 0 < float(stats.frac_below["f"]) and 0 < float(stats.frac_above["f"])  # both thresholds matter
    np.testing.assert_allclose(stats.retain, f_valid.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.mean_retain, f_valid.mean(), rtol=1e-12)
    np.testing.assert_allclose(stats.timescale, -1.0 / np.log(f_valid.mean(axis=0)), rtol=1e-12)
    if masking != "none":  # the masking matters: counting the padding gives another answer
        assert not np.allclose(stats.mean["f"], f.reshape(B * T, H).mean(axis=0))
    assert sorted(stats.mean) == ["f", "i", "o"]
    for name in ("i", "o"):
        assert stats.mean[name].shape == stats.frac_above_per_unit[name].shape == (H,)
        assert stats.frac_below[name].shape == ()


def test_gate_statistics_is_jittable_and_accepts_every_layout():
    cell = cells.gru(H)
    p = cell.init(jax.random.key(7), I)
    lengths = jnp.array([T, 6, 2])
    jitted = jax.jit(diagnostics.gate_statistics, static_argnums=0)(cell, p, XS, lengths=lengths)
    # Eager and time-major, against jitted and batch-major.
    tm = diagnostics.gate_statistics(cell, p, jnp.swapaxes(XS, 0, 1), lengths=lengths, time_major=True)
    assert jax.tree.structure(tm) == jax.tree.structure(jitted)
    for a, b in zip(jax.tree.leaves(tm), jax.tree.leaves(jitted)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # One unbatched sequence equals a batch of one.
    one = diagnostics.gate_statistics(cell, p, XS[1], lengths=jnp.array(6))
    batch_of_one = diagnostics.gate_statistics(cell, p, XS[1:2], lengths=jnp.array([6]))
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(batch_of_one)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _pinned(cell, p, gate_block, bias, n_blocks):
    """``p`` with the input and recurrent weights of gate block ``gate_block`` zeroed and its bias set:
    that gate is ``sigmoid(bias)`` at every step, whatever the input."""
    k = slice(gate_block * H, (gate_block + 1) * H)
    assert p.recurrent_kernel.shape == (H, n_blocks * H)
    return p._replace(
        input_kernel=p.input_kernel.at[:, k].set(0.0),
        recurrent_kernel=p.recurrent_kernel.at[:, k].set(0.0),
        bias=p.bias.at[k].set(bias),
    )


@pytest.mark.parametrize("b", [-1.5, 0.5, 5.0])
def test_lstm_pinned_forget_gate(x64, b):
    cell = cells.lstm(H)  # gate blocks i, f, g, o
    p = _pinned(cell, cell.init(jax.random.key(8), I, dtype=jnp.float64), 1, b, 4)
    stats = diagnostics.gate_statistics(cell, p, XS.astype(jnp.float64), lengths=jnp.array([T, 4, 7]))
    f = 1.0 / (1.0 + np.exp(-b))
    np.testing.assert_allclose(stats.mean["f"], np.full(H, f), rtol=1e-14)
    np.testing.assert_allclose(stats.mean_retain, f, rtol=1e-14)
    np.testing.assert_allclose(stats.timescale, np.full(H, -1.0 / np.log(f)), rtol=1e-12)
    np.testing.assert_array_equal(stats.frac_above["f"], 1.0 if f > 0.9 else 0.0)
    np.testing.assert_array_equal(stats.frac_below["f"], 0.0)
    if b == 5.0:
        np.testing.assert_allclose(stats.timescale, 1.0 / np.log1p(np.exp(-5.0)), rtol=1e-12)  # ~ e^5


@pytest.mark.parametrize("variant", ["original", "NFG", "CIFG"])
def test_lstm_variants_gates_and_retain(variant):
    cell = cells.lstm(H, variant=variant)
    p = cell.init(jax.random.key(9), I)
    stats = diagnostics.gate_statistics(cell, p, XS)
    if variant == "CIFG":
        assert sorted(stats.mean) == ["f", "i", "o"]
        np.testing.assert_allclose(stats.mean["i"], 1.0 - stats.mean["f"], rtol=1e-5)
        np.testing.assert_allclose(stats.retain, stats.mean["f"], rtol=1e-6)
        assert np.all(np.isfinite(np.asarray(stats.timescale)))
    else:  # no forget gate: the cell is kept whole, f = 1
        assert sorted(stats.mean) == ["i", "o"]
        np.testing.assert_array_equal(stats.retain, np.ones(H))
        np.testing.assert_array_equal(stats.mean_retain, 1.0)
        np.testing.assert_array_equal(stats.timescale, np.full(H, np.inf))


def test_gru_retain_gate_is_the_update_gate(x64):
    cell = cells.gru(H)  # gate blocks r, z, n
    p = cell.init(jax.random.key(10), I, dtype=jnp.float64)
    p = _pinned(cell, _pinned(cell, p, 0, -2.0, 3), 1, 1.5, 3)  # r = sigmoid(-2), z = sigmoid(1.5)
    stats = diagnostics.gate_statistics(cell, p, XS.astype(jnp.float64))
    r, z = _sigmoid(-2.0), _sigmoid(1.5)
    assert sorted(stats.mean) == ["r", "z"]
    np.testing.assert_allclose(stats.mean["r"], np.full(H, r), rtol=1e-14)
    np.testing.assert_allclose(stats.mean["z"], np.full(H, z), rtol=1e-14)
    np.testing.assert_allclose(stats.retain, np.full(H, z), rtol=1e-14)
    np.testing.assert_allclose(stats.timescale, np.full(H, -1.0 / np.log(z)), rtol=1e-12)


def test_mgu_retain_gate_is_one_minus_f(x64):
    cell = cells.mgu(H)  # gate blocks f, n
    p = _pinned(cell, cells.mgu(H).init(jax.random.key(11), I, dtype=jnp.float64), 0, -2.5, 2)
    stats = diagnostics.gate_statistics(cell, p, XS.astype(jnp.float64))
    f = _sigmoid(-2.5)
    assert sorted(stats.mean) == ["f"]
    np.testing.assert_allclose(stats.mean["f"], np.full(H, f), rtol=1e-14)
    np.testing.assert_allclose(stats.retain, np.full(H, 1.0 - f), rtol=1e-14)
    np.testing.assert_allclose(stats.mean_retain, 1.0 - f, rtol=1e-14)
    np.testing.assert_allclose(stats.timescale, np.full(H, -1.0 / np.log(1.0 - f)), rtol=1e-12)
    np.testing.assert_array_equal(stats.frac_below["f"], 1.0)  # f = 0.076 < 0.1


@pytest.mark.parametrize("name", ["lstm", "gru", "mgu"])
def test_cell_gates_are_the_gates_of_step(name):
    # The gates of a GRU/MGU step determine its update: h_t = z h + (1 - z) n, h_t = (1 - f) h + f n.
    # Check that cell.gates agrees with the step on the same carry, by rebuilding h_t from the gates
    # for the cells where that is possible without n, and by shape for the LSTM.
    cell = cells.make(name, H)
    p = cell.init(jax.random.key(12), I)
    carry = jax.tree.map(lambda a: a + 0.3, cell.initial_carry(p, (B,)))
    xp = cell.project(p, XS[:, 0])
    gates = cell.gates(p, carry, xp)
    new, _ = cell.step(p, carry, xp)
    assert all(g.shape == (B, H) for g in gates.values())
    if name == "lstm":
        # c_t = f c + i g  with  g = tanh(x W_g + h U_g + b_g)
        g = jnp.tanh(xp[:, 2 * H : 3 * H] + carry.hidden @ p.recurrent_kernel[:, 2 * H : 3 * H])
        np.testing.assert_allclose(new.cell, gates["f"] * carry.cell + gates["i"] * g, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new.hidden, gates["o"] * jnp.tanh(new.cell), rtol=1e-5, atol=1e-6)
    elif name == "mgu":
        n = jnp.tanh(xp[:, H:] + (gates["f"] * carry.hidden) @ p.recurrent_kernel[:, H:])
        np.testing.assert_allclose(new.hidden, (1 - gates["f"]) * carry.hidden + gates["f"] * n, rtol=1e-5, atol=1e-6)
    else:
        hu = carry.hidden @ p.recurrent_kernel
        n = jnp.tanh(xp[:, 2 * H :] + gates["r"] * (hu[:, 2 * H :] + p.recurrent_bias[None]))
        np.testing.assert_allclose(new.hidden, (1 - gates["z"]) * n + gates["z"] * carry.hidden, rtol=1e-5, atol=1e-6)


def test_gate_statistics_errors():
    elman = cells.elman(H)
    p = elman.init(jax.random.key(13), I)
    with pytest.raises(ValueError, match=r"gate_statistics: cell 'elman' has no gates"):
        diagnostics.gate_statistics(elman, p, XS)
    with pytest.raises(ValueError, match=r"cell 'elman' has no gates"):  # raised before tracing
        jax.jit(diagnostics.gate_statistics, static_argnums=0)(elman, p, XS)
    lstm = cells.lstm(H)
    q = lstm.init(jax.random.key(14), I)
    with pytest.raises(TypeError, match=r"gate_statistics: cell must be a single Cell"):
        diagnostics.gate_statistics(rnnlab.stack([lstm, lstm]), None, XS)
    with pytest.raises(ValueError, match=r"saturation must satisfy 0 <= low <= high <= 1; got \(0.9, 0.1\)"):
        diagnostics.gate_statistics(lstm, q, XS, saturation=(0.9, 0.1))
    with pytest.raises(ValueError, match=r"\['reverse'\] cannot be used here"):
        diagnostics.gate_statistics(lstm, q, XS, reverse=True)
    with pytest.raises(ValueError, match=r"unroll: xs must have 5 features"):
        diagnostics.gate_statistics(lstm, q, XS[..., :3])


# ----------------------------------------------------------------------------------------------- Jacobian spectrum


@pytest.mark.parametrize("a", [0.8, 1.2])
def test_linear_rnn_jacobian_singular_values_are_a_to_the_lag(x64, a):
    cell = cells.elman(H, activation="identity")
    Q = np.linalg.qr(np.random.default_rng(15).normal(size=(H, H)))[0]
    p = cell.init(jax.random.key(16), I, dtype=jnp.float64)._replace(recurrent_kernel=jnp.asarray(a * Q))
    sv = diagnostics.hidden_jacobian_singular_values(cell, p, XS[0].astype(jnp.float64))
    lags = T - 1 - np.arange(T)
    assert sv.shape == (T, H)
    np.testing.assert_allclose(sv, np.broadcast_to((a**lags)[:, None], (T, H)), rtol=1e-12)
    np.testing.assert_allclose(
        diagnostics.hidden_jacobian_norms(cell, p, XS[0].astype(jnp.float64)), a**lags, rtol=1e-12
    )


@pytest.mark.parametrize("name", ["elman", "lstm"])
def test_jacobian_singular_values_match_an_explicit_restart(x64, name):
    # Independent route: restart the unroll after step t from h_t (for the LSTM with c_t as the
    # unroll left it) and take the forward-mode Jacobian of h_T.
    cell = cells.make(name, H)
    p = cell.init(jax.random.key(17), I, dtype=jnp.float64)
    p = p._replace(recurrent_kernel=2.0 * p.recurrent_kernel)  # a tanh RNN out of the linear regime
    xs = XS[1].astype(jnp.float64)
    sv = diagnostics.hidden_jacobian_singular_values(cell, p, xs)
    _, _, carries = rnnlab.unroll(cell, p, xs, return_carries=True)
    for t in (0, 3, T - 2):
        c_t = jax.tree.map(lambda c, t=t: c[t], carries)

        def final_hidden(h, t=t, c_t=c_t):
            # fused=False: forward-mode autodiff needs the plain scan (the fused path is reverse-mode only).
            restart = c_t._replace(hidden=h)
            return rnnlab.unroll(cell, p, xs[t + 1 :], initial_carry=restart, fused=False)[0].hidden

        J = np.asarray(jax.jacfwd(final_hidden)(c_t.hidden))
        want = np.linalg.svd(J, compute_uv=False)
        np.testing.assert_allclose(sv[t], want, rtol=1e-10, atol=1e-14)
        assert np.all(np.diff(np.asarray(sv[t])) <= 0)  # descending
        assert want[0] / want[-1] > 1.5  # a spread of singular values, not one repeated number
    np.testing.assert_allclose(sv[-1], np.ones(H), rtol=1e-12)


@pytest.mark.parametrize("a", [0.7, 1.3])
def test_error_ratios_of_the_linear_rnn_are_a(x64, a):
    cell = cells.elman(H, activation="identity")
    Q = np.linalg.qr(np.random.default_rng(18).normal(size=(H, H)))[0]
    p = cell.init(jax.random.key(19), I, dtype=jnp.float64)._replace(recurrent_kernel=jnp.asarray(a * Q))
    v = jnp.asarray(np.random.default_rng(20).normal(size=H))
    norms = diagnostics.carry_gradient_norms(cell, p, XS.astype(jnp.float64), lambda ys, f: jnp.sum(f.hidden @ v))
    ratios = diagnostics.error_ratios(norms.hidden)
    assert ratios.shape == (T - 1,)
    np.testing.assert_allclose(ratios, np.full(T - 1, a), rtol=1e-12)
    np.testing.assert_allclose(diagnostics.error_ratios(norms).hidden, ratios)  # a pytree of curves
    with pytest.raises(ValueError, match=r"error_ratios: norms must have shape \(..., T\) with T >= 2; got \(1,\)"):
        diagnostics.error_ratios(jnp.ones(1))


# ----------------------------------------------------------------------------------------------- spectral radius


@pytest.mark.parametrize(
    "name, options, n_blocks",
    [
        ("elman", {}, 1),
        ("irnn", {}, 1),
        ("lstm", {}, 4),
        ("lstm", {"variant": "CIFG"}, 3),
        ("gru", {}, 3),
        ("mgu", {}, 2),
    ],
)
def test_spectral_radius_of_every_cell(name, options, n_blocks):
    cell = cells.make(name, H, **options)
    p = cell.init(jax.random.key(21), I)
    radii = np.linspace(0.5, 1.5, n_blocks)
    rng = np.random.default_rng(22)
    blocks = []
    for r in radii:
        m = rng.normal(size=(H, H))
        blocks.append(r * m / np.max(np.abs(np.linalg.eigvals(m))))
    p = p._replace(recurrent_kernel=jnp.asarray(np.concatenate(blocks, axis=1), jnp.float32))
    np.testing.assert_allclose(diagnostics.recurrent_spectral_radius(p), radii, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(diagnostics.recurrent_spectral_radius)(p), radii, rtol=1e-5)


def test_spectral_radius_error():
    with pytest.raises(ValueError, match=r"recurrent_spectral_radius: params must be .* got recurrent_kernel of shape"):
        diagnostics.recurrent_spectral_radius(cells.ElmanParams(jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.ones(3)))
    with pytest.raises(ValueError, match=r"got tuple"):
        diagnostics.recurrent_spectral_radius((1, 2))
