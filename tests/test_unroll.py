"""The scan unroller against the plain-Python reference loop, option by option.

Every dimension has its own size (batch 3, time 7, input 5, hidden 6) so a transposed axis
cannot pass unnoticed; inputs, lengths and resets are random and non-trivial.
"""

import sys

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from rnnlab import cells

B, T, I, H = 3, 7, 5, 6
ATOL = 2e-6

CELLS = {
    "elman": cells.elman(H),
    "lstm": cells.lstm(H),
    "lstm_fgr": cells.lstm(H, variant="FGR"),
    "gru": cells.gru(H),
    "mgu": cells.mgu(H),
}


def _params(cell, key=0, input_size=I):
    return cell.init(jax.random.key(key), input_size)


XS = jax.random.normal(jax.random.key(10), (B, T, I))
LENGTHS = jnp.array([7, 3, 0])
RESETS = jnp.array(np.random.default_rng(0).random((B, T)) < 0.3)


def _close(a, b, atol=ATOL):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("hoist", [True, False], ids=["hoisted", "per-step"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize(
    "opts",
    [{}, {"lengths": LENGTHS}, {"resets": RESETS}, {"lengths": LENGTHS, "resets": RESETS}],
    ids=["plain", "lengths", "resets", "lengths+resets"],
)
def test_unroll_matches_reference(name, hoist, reverse, opts):
    cell = CELLS[name]
    p = _params(cell)
    c0 = jax.tree.map(lambda a: a + 0.1, cell.initial_carry(p, (B,)))
    fast = rnnlab.unroll(cell, p, XS, initial_carry=c0, reverse=reverse, return_carries=True, hoist_input=hoist, **opts)
    slow = rnnlab.reference_unroll(cell, p, XS, initial_carry=c0, reverse=reverse, return_carries=True, **opts)
    _close(fast, slow)


def test_lengths_zero_outputs_and_final_carry_at_own_last_step():
    cell = CELLS["lstm"]
    p = _params(cell)
    final, ys = rnnlab.unroll(cell, p, XS, lengths=LENGTHS)
    assert np.all(np.asarray(ys[1, 3:]) == 0) and np.all(np.asarray(ys[2]) == 0)
    # The final carry of sequence 1 is the carry after its own step 2, computed on the truncated input.
    short_final, short_ys = rnnlab.unroll(cell, p, XS[1:2, :3])
    _close(jax.tree.map(lambda a: a[1], final), jax.tree.map(lambda a: a[0], short_final))
    np.testing.assert_allclose(ys[1, :3], short_ys[0], atol=ATOL)
    # A zero-length sequence keeps its initial carry.
    _close(jax.tree.map(lambda a: a[2], final), jax.tree.map(lambda a: a[0], cell.initial_carry(p, (1,))))


def test_reverse_is_forward_on_the_flipped_valid_part():
    cell = CELLS["gru"]
    p = _params(cell)
    _, ys_rev = rnnlab.unroll(cell, p, XS, lengths=LENGTHS, reverse=True)
    for b, n in enumerate(np.asarray(LENGTHS)):
        if n == 0:
            continue
        _, ys_fwd = rnnlab.unroll(cell, p, XS[b, :n][::-1])
        np.testing.assert_allclose(ys_rev[b, :n], ys_fwd[::-1], atol=ATOL)
        assert np.all(np.asarray(ys_rev[b, n:]) == 0)


def test_resets_equal_separate_documents():
    cell = CELLS["lstm"]
    p = _params(cell)
    resets = jnp.zeros((B, T), bool).at[:, 4].set(True)
    _, ys = rnnlab.unroll(cell, p, XS, resets=resets)
    _, first = rnnlab.unroll(cell, p, XS[:, :4])
    _, second = rnnlab.unroll(cell, p, XS[:, 4:])
    np.testing.assert_allclose(ys, jnp.concatenate([first, second], axis=1), atol=ATOL)
    # Backwards, the same two documents are processed separately too.
    _, ys_rev = rnnlab.unroll(cell, p, XS, resets=resets, reverse=True)
    _, first_rev = rnnlab.unroll(cell, p, XS[:, :4], reverse=True)
    _, second_rev = rnnlab.unroll(cell, p, XS[:, 4:], reverse=True)
    np.testing.assert_allclose(ys_rev, jnp.concatenate([first_rev, second_rev], axis=1), atol=ATOL)


@pytest.mark.parametrize(
    "layer",
    [CELLS["lstm"], rnnlab.stack([cells.gru(H), cells.elman(4)])],
    ids=["cell", "stack"],
)
def test_stateful_windows_with_reset_carry_equal_one_pass(layer):
    """Two windows run statefully (the first's final carry passed on, resets back to zeros) equal one pass."""
    p = _params(layer)
    fresh = layer.initial_carry(p, (B,))
    carry, ys = rnnlab.unroll(layer, p, XS, resets=RESETS)
    c1, y1 = rnnlab.unroll(layer, p, XS[:, :3], resets=RESETS[:, :3])
    c2, y2 = rnnlab.unroll(layer, p, XS[:, 3:], resets=RESETS[:, 3:], initial_carry=c1, reset_carry=fresh)
    _close((carry, ys), (c2, jnp.concatenate([y1, y2], axis=1)))
    # Without reset_carry a reset goes back to initial_carry, the previous window's state: a different result.
    _, stale = rnnlab.unroll(layer, p, XS[:, 3:], resets=RESETS[:, 3:], initial_carry=c1)
    assert not np.allclose(stale, y2)


def test_reset_carry_reaches_both_directions_of_a_bidirectional_layer():
    layer = rnnlab.bidirectional(cells.gru(H))
    p = _params(layer)
    fresh = layer.initial_carry(p, (B,))
    plain = rnnlab.unroll(layer, p, XS, resets=RESETS)[1]
    _close(rnnlab.unroll(layer, p, XS, resets=RESETS, reset_carry=fresh)[1], plain)
    other = jax.tree.map(lambda a: a + 1.0, fresh)
    moved = np.asarray(rnnlab.unroll(layer, p, XS, resets=RESETS, reset_carry=other)[1]) != np.asarray(plain)
    assert moved[..., :H].any() and moved[..., H:].any()  # forward and backward outputs both see it


# A reset flag on every padding step: none of them may act.
PAD_RESETS = RESETS | (jnp.arange(T)[None, :] >= LENGTHS[:, None])


def _row(tree, b):
    return jax.tree.map(lambda a: a[b : b + 1], tree)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind", ["cell", "bidirectional"])
def test_reset_flags_in_padding_are_ignored(kind, reverse):
    """With ``reset_carry`` other than ``initial_carry``, flags past a sequence's length change nothing:
    each sequence equals its own run trimmed to its valid part. Walking backwards the first step
    processed is L - 1, whose segment boundary would be read from the padding flag at L (as in the
    backward half of a bidirectional layer)."""
    layer = CELLS["gru"] if kind == "cell" else rnnlab.bidirectional(cells.gru(H), cells.elman(H))
    p = _params(layer)
    fresh = layer.initial_carry(p, (B,))
    c0 = jax.tree.map(lambda a: a + 0.5, fresh)
    final, ys = rnnlab.unroll(
        layer, p, XS, lengths=LENGTHS, resets=PAD_RESETS, initial_carry=c0, reset_carry=fresh, reverse=reverse
    )
    for b, n in enumerate(np.asarray(LENGTHS)):
        assert np.all(np.asarray(ys[b, n:]) == 0)
        if n == 0:
            _close(_row(final, b), _row(c0, b))
            continue
        want_final, want_ys = rnnlab.unroll(
            layer,
            p,
            XS[b : b + 1, :n],
            resets=RESETS[b : b + 1, :n],
            initial_carry=_row(c0, b),
            reset_carry=_row(fresh, b),
            reverse=reverse,
        )
        _close((_row(final, b), ys[b : b + 1, :n]), (want_final, want_ys))

    def loss(p, c0, fresh, fused):
        kw = dict(lengths=LENGTHS, resets=PAD_RESETS, initial_carry=c0, reset_carry=fresh, reverse=reverse)
        final, ys = rnnlab.unroll(layer, p, XS, fused=fused, **kw)
        return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(final))

    grad = jax.grad(loss, argnums=(0, 1, 2))
    _close(grad(p, c0, fresh, None), grad(p, c0, fresh, False), atol=1e-5)


def test_empty_batch_with_lengths():
    cell = CELLS["lstm"]
    p = _params(cell)
    for reverse in (False, True):
        final, ys = rnnlab.unroll(cell, p, XS[:0], lengths=LENGTHS[:0], resets=RESETS[:0], reverse=reverse)
        assert ys.shape == (0, T, H) and final.hidden.shape == final.cell.shape == (0, H)


def test_reset_carry_needs_resets_and_the_carry_shape():
    cell = CELLS["gru"]
    p = _params(cell)
    with pytest.raises(ValueError, match="reset_carry.*pass resets"):
        rnnlab.unroll(cell, p, XS, reset_carry=cell.initial_carry(p, (B,)))
    with pytest.raises(ValueError, match=r"reset_carry leaves must have shape \(3, 6\); got \(2, 6\)"):
        rnnlab.unroll(cell, p, XS, resets=RESETS, reset_carry=cell.initial_carry(p, (2,)))


def test_time_major_and_unbatched_layouts():
    cell = CELLS["lstm"]
    p = _params(cell)
    final, ys, carries = rnnlab.unroll(cell, p, XS, lengths=LENGTHS, resets=RESETS, return_carries=True)
    final_tm, ys_tm, carries_tm = rnnlab.unroll(
        cell, p, jnp.swapaxes(XS, 0, 1), lengths=LENGTHS, resets=RESETS.T, time_major=True, return_carries=True
    )
    _close(final, final_tm)
    np.testing.assert_allclose(ys, jnp.swapaxes(ys_tm, 0, 1), atol=ATOL)
    _close(carries, jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), carries_tm))
    for b in range(B):
        f1, y1, c1 = rnnlab.unroll(cell, p, XS[b], lengths=LENGTHS[b], resets=RESETS[b], return_carries=True)
        _close(f1, jax.tree.map(lambda a, b=b: a[b], final))
        np.testing.assert_allclose(y1, ys[b], atol=ATOL)
        _close(c1, jax.tree.map(lambda a, b=b: a[b], carries))
    kw = dict(lengths=LENGTHS, resets=RESETS.T, time_major=True)
    _close(rnnlab.reference_unroll(cell, p, jnp.swapaxes(XS, 0, 1), **kw), (final_tm, ys_tm))


@pytest.mark.parametrize("factor", [1, 2, 3, T])
def test_unroll_factor_and_remat_do_not_change_results(factor):
    cell = CELLS["lstm"]
    p = _params(cell)

    def loss(p, **kw):
        _, ys = rnnlab.unroll(cell, p, XS, lengths=LENGTHS, **kw)
        return jnp.sum(jnp.sin(ys))

    base_val, base_grad = jax.value_and_grad(loss)(p)
    val, grad = jax.value_and_grad(lambda p: loss(p, unroll=factor, remat=factor % 2 == 1))(p)
    np.testing.assert_allclose(val, base_val, rtol=1e-6)
    _close(grad, base_grad, atol=1e-5)


def test_return_carries_holds_every_step():
    cell = CELLS["lstm"]
    p = _params(cell)
    final, ys, carries = rnnlab.unroll(cell, p, XS, return_carries=True)
    np.testing.assert_allclose(carries.hidden, ys, atol=0)
    _close(jax.tree.map(lambda a: a[:, -1], carries), final, atol=0)
    assert carries.cell.shape == (B, T, H)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_matches_reference_and_parts(merge):
    layer = rnnlab.bidirectional(cells.lstm(H), cells.gru(H), merge=merge)
    p = layer.init(jax.random.key(1), I)
    kw = dict(lengths=LENGTHS, resets=RESETS)
    fast = rnnlab.unroll(layer, p, XS, **kw)
    _close(fast, rnnlab.reference_unroll(layer, p, XS, **kw))
    _, fwd = rnnlab.unroll(layer.forward, p.forward, XS, **kw)
    _, bwd = rnnlab.unroll(layer.backward, p.backward, XS, reverse=True, **kw)
    expected = jnp.concatenate([fwd, bwd], -1) if merge == "concat" else fwd + bwd
    np.testing.assert_allclose(fast[1], expected, atol=ATOL)
    assert fast[1].shape == (B, T, layer.output_size)


@pytest.mark.parametrize("residual", [False, True])
def test_stack_matches_step_by_step_reference(residual):
    deep = rnnlab.stack([cells.lstm(H), cells.gru(H), cells.elman(H)], residual=residual)
    p = deep.init(jax.random.key(2), I)
    kw = dict(lengths=LENGTHS, resets=RESETS, return_carries=True)
    _close(rnnlab.unroll(deep, p, XS, **kw), rnnlab.reference_unroll(deep, p, XS, **kw))
    # Reverse and time-major go through the same layer loop.
    _close(
        rnnlab.unroll(deep, p, XS, reverse=True, lengths=LENGTHS),
        rnnlab.reference_unroll(deep, p, XS, reverse=True, lengths=LENGTHS),
    )


def test_stack_of_bidirectional_layers_matches_reference():
    deep = rnnlab.stack([rnnlab.bidirectional(cells.gru(H)), rnnlab.bidirectional(cells.lstm(H))], residual=True)
    p = deep.init(jax.random.key(3), I)
    _close(rnnlab.unroll(deep, p, XS, lengths=LENGTHS), rnnlab.reference_unroll(deep, p, XS, lengths=LENGTHS))


def test_stack_dropout_only_with_a_key_and_between_layers():
    deep = rnnlab.stack([cells.lstm(H), cells.lstm(H)], dropout=0.5)
    p = deep.init(jax.random.key(4), I)
    _, eval_ys = rnnlab.unroll(deep, p, XS)
    _, ref_ys = rnnlab.reference_unroll(deep, p, XS)
    np.testing.assert_allclose(eval_ys, ref_ys, atol=ATOL)
    key = jax.random.key(5)
    _, train_ys = rnnlab.unroll(deep, p, XS, dropout_key=key)
    assert not np.allclose(train_ys, eval_ys)
    # By hand: layer 1, the same mask the unroller draws for layer index 0, then layer 2.
    _, h1 = rnnlab.unroll(deep.layers[0], p[0], XS)
    keep = jax.random.bernoulli(jax.random.fold_in(key, 0), 0.5, jnp.swapaxes(h1, 0, 1).shape)
    h1 = jnp.where(jnp.swapaxes(keep, 0, 1), h1 / 0.5, 0.0)
    _, by_hand = rnnlab.unroll(deep.layers[1], p[1], h1)
    np.testing.assert_allclose(train_ys, by_hand, atol=ATOL)


def test_truncation_keeps_forward_values_and_matches_reference_gradient():
    cell = CELLS["elman"]
    p = _params(cell)

    def loss(xs, fn, **kw):
        final, ys = fn(cell, p, xs, **kw)
        return jnp.sum(ys[:, -1] ** 2) + jnp.sum(jnp.sin(final.hidden))

    # The final carry of a sequence that ends before a cut (length 3, cut at step 3) keeps its gradient.
    for kw in ({}, {"lengths": LENGTHS}, {"reverse": True, "lengths": LENGTHS}):
        full = loss(XS, rnnlab.unroll, **kw)
        cut = loss(XS, rnnlab.unroll, truncation=3, **kw)
        np.testing.assert_allclose(full, cut, rtol=1e-6)
        g_fast = jax.grad(loss)(XS, rnnlab.unroll, truncation=3, **kw)
        g_ref = jax.grad(loss)(XS, rnnlab.reference_unroll, truncation=3, **kw)
        np.testing.assert_allclose(g_fast, g_ref, atol=1e-6)
    # Without lengths, a loss on the last step reaches back only to the start of its chunk (steps 6..6 of 0..6).
    g = jax.grad(loss)(XS, rnnlab.unroll, truncation=3)
    assert np.all(np.asarray(g[:, :6]) == 0) and np.any(np.asarray(g[:, 6]) != 0)


def test_jit_matches_eager_and_traces_once():
    cell = CELLS["lstm"]
    p = _params(cell)
    traces = []

    @jax.jit
    def run(p, xs, lengths):
        traces.append(1)
        return rnnlab.unroll(cell, p, xs, lengths=lengths)

    eager = rnnlab.unroll(cell, p, XS, lengths=LENGTHS)
    _close(run(p, XS, LENGTHS), eager, atol=1e-6)
    run(p, XS + 1.0, jnp.array([1, 2, 3]))
    assert len(traces) == 1
    run(p, XS[:, :4], jnp.array([1, 2, 3]))
    assert len(traces) == 2


def test_vmap_over_params_matches_a_loop():
    cell = CELLS["gru"]
    keys = jax.random.split(jax.random.key(7), 4)
    ps = jax.vmap(lambda k: cell.init(k, I))(keys)
    ys = jax.vmap(lambda p: rnnlab.unroll(cell, p, XS)[1])(ps)
    for k in range(4):
        np.testing.assert_allclose(ys[k], rnnlab.unroll(cell, cell.init(keys[k], I), XS)[1], atol=ATOL)


def test_unbatched_stack_with_bidirectional_layer_and_length():
    deep = rnnlab.stack([rnnlab.bidirectional(cells.gru(4)), cells.lstm(8)], residual=True)
    p = deep.init(jax.random.key(8), I)
    single, ys = rnnlab.unroll(deep, p, XS[0], lengths=4)
    batched, ys_b = rnnlab.unroll(deep, p, XS[:1], lengths=jnp.array([4]))
    np.testing.assert_allclose(ys, ys_b[0], atol=0)
    _close(single, jax.tree.map(lambda a: a[0], batched), atol=0)
    _close((single, ys), rnnlab.reference_unroll(deep, p, XS[0], lengths=4))


def test_traced_lengths_out_of_range_are_clipped():
    cell = CELLS["gru"]
    p = _params(cell)
    run = jax.jit(lambda n: rnnlab.unroll(cell, p, XS, lengths=n, reverse=True))
    _close(run(jnp.array([T + 5, -2, 3])), rnnlab.unroll(cell, p, XS, lengths=jnp.array([T, 0, 3]), reverse=True))


def _scan_unrolls(fn, *args):
    """The ``unroll`` of every ``scan`` in ``fn``'s jaxpr, nested ones included."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "scan":
                found.append(eqn.params["unroll"])
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_unroll_defaults_per_backend(monkeypatch):
    unroll_module = sys.modules["rnnlab.unroll"]  # the module: ``rnnlab.unroll`` is the function
    assert rnnlab.default_unroll("cpu") == 1 == rnnlab.default_unroll("cpu", state_size=10**6)
    assert rnnlab.default_unroll("gpu") == rnnlab.default_unroll("tpu") == 8
    assert rnnlab.default_unroll("gpu", state_size=16383) == 8  # B * H below 16384: a small step
    assert rnnlab.default_unroll("gpu", state_size=16384) == rnnlab.default_unroll("tpu", state_size=64 * 512) == 2
    here = 1 if jax.default_backend() == "cpu" else 8  # what this backend uses for the small step below
    cell = cells.lstm(3)
    params = cell.init(jax.random.key(0), 2)
    xs = jnp.ones((2, 5, 2))
    for fused in (True, False):

        def ys(x, fused=fused, **kw):
            return rnnlab.unroll(cell, params, x, fused=fused, **kw)[1]

        assert set(_scan_unrolls(ys, xs)) == {here}
        assert set(_scan_unrolls(lambda x, ys=ys: ys(x, unroll=3), xs)) == {3}
    asked = []

    def fake(backend=None, state_size=None):  # as on an accelerator, say
        asked.append(state_size)
        return 4

    monkeypatch.setattr(unroll_module, "default_unroll", fake)
    assert set(_scan_unrolls(lambda x: rnnlab.unroll(cell, params, x)[1], xs)) == {4}
    assert set(asked) == {2 * 3}  # the carry's largest leaf: B * H elements
    with pytest.raises(ValueError, match="unroll must be a positive int; got 0"):
        rnnlab.unroll(cell, params, xs, unroll=0)
