"""The fused backward pass (:mod:`rnnlab.fused`) against autodiff through the plain scan.

``unroll`` takes the fused path by default wherever it applies, so ``test_gradients.py`` already
checks it against central finite differences for every cell. Here, in float64, its values and
gradients (params, inputs, initial carry) must equal those of ``fused=False`` for every cell with
``combine`` and every layout and option the fused path accepts; the fused path must really run
(a ``custom_vjp`` in the jaxpr); and it must step aside, or raise with ``fused=True``, where it
does not apply.
"""

import re

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import CASES, random_carry, randomize

import rnnlab
from rnnlab import cells, fused

B, T, I, H = 2, 5, 3, 4
FUSED_CASES = [k for k, c in CASES.items() if fused.supports(cells.make(c.factory, H, **c.options))]


def _setup(cell, seed=0, batch=(B,)):
    params = randomize(jax.eval_shape(lambda: cell.init(jax.random.key(seed), I, dtype=jnp.float64)), seed + 1)
    carry0 = random_carry(cell.initial_carry(params, batch), seed + 2)
    rng = np.random.default_rng(seed + 3)
    xs = jnp.asarray(rng.normal(0.0, 1.0, (*batch, T, I)))
    proj = jnp.asarray(rng.normal(0.0, 1.0, (*batch, T, H)))
    return params, carry0, xs, proj


def _grads(layer, params, xs, carry0, proj, use_fused, **kw):
    def loss(p, xs, c0):
        final, ys = rnnlab.unroll(layer, p, xs, initial_carry=c0, fused=use_fused, **kw)
        # The final carry enters the loss too, so its cotangent path is checked as well.
        return jnp.sum(ys * proj) + sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(final))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, xs, carry0)


def _assert_same(a, b):
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-12, err_msg=str(path))


def test_every_cell_with_combine_is_covered():
    names = {CASES[k].factory for k in FUSED_CASES}
    assert names == {"elman", "irnn", "lstm", "gru"}
    assert "gru-reset_before" not in FUSED_CASES and "mgu" not in FUSED_CASES
    assert any("layer_norm" in k for k in FUSED_CASES) and any("FGR" in k for k in FUSED_CASES)


@pytest.mark.parametrize("case_id", FUSED_CASES)
def test_fused_equals_autodiff(x64, case_id):
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    params, carry0, xs, proj = _setup(cell)
    _assert_same(_grads(cell, params, xs, carry0, proj, True), _grads(cell, params, xs, carry0, proj, False))


@pytest.mark.parametrize(
    "options",
    [
        dict(hoist_input=True),
        dict(hoist_input=False),
        dict(reverse=True),
        dict(unroll=2),
        dict(time_major=True),
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_fused_equals_autodiff_with_options(x64, options):
    cell = cells.lstm(H, variant="vanilla")
    params, carry0, xs, proj = _setup(cell)
    if options.get("time_major"):
        xs, proj = jnp.swapaxes(xs, 0, 1), jnp.swapaxes(proj, 0, 1)
    got = _grads(cell, params, xs, carry0, proj, True, **options)
    _assert_same(got, _grads(cell, params, xs, carry0, proj, False, **options))


@pytest.mark.parametrize("factory, unroll", [("gru", 2), ("gru", 3), ("gru", 8), ("lstm", 3)])
def test_fused_equals_autodiff_unrolled(x64, factory, unroll):
    """Unrolled backward loops: the GRU's (two residual buffers) steps ``unroll`` at a time and then
    the ``T % unroll`` rest one by one (T = 5: 2 + 2 + 1, 3 + 1 + 1, and 8 > T), the LSTM's
    unrolled by XLA."""
    cell = cells.make(factory, H)
    params, carry0, xs, proj = _setup(cell)
    want = _grads(cell, params, xs, carry0, proj, False, unroll=unroll)
    _assert_same(_grads(cell, params, xs, carry0, proj, True, unroll=unroll), want)


def test_fused_unbatched(x64):
    cell = cells.gru(H)
    params, carry0, xs, proj = _setup(cell, batch=())
    _assert_same(_grads(cell, params, xs, carry0, proj, True), _grads(cell, params, xs, carry0, proj, False))


@pytest.mark.parametrize("kind", ["stack", "bidirectional"])
def test_fused_in_stacks_and_bidirectional(x64, kind):
    if kind == "stack":
        layer = rnnlab.Stack((cells.lstm(H), cells.elman(H)), residual=True)
    else:
        layer = rnnlab.Bidirectional(cells.gru(H), cells.lstm(H))
    params = randomize(jax.eval_shape(lambda: layer.init(jax.random.key(0), I, dtype=jnp.float64)), 1)
    rng = np.random.default_rng(3)
    carry0 = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), layer.initial_carry(params, (B,)))
    xs = jnp.asarray(rng.normal(size=(B, T, I)))
    width = 2 * H if kind == "bidirectional" else H
    proj = jnp.asarray(rng.normal(size=(B, T, width)))
    _assert_same(_grads(layer, params, xs, carry0, proj, True), _grads(layer, params, xs, carry0, proj, False))


def _has_custom_vjp(fn, *args) -> bool:
    return "custom_vjp" in str(jax.make_jaxpr(fn)(*args))


def test_default_takes_the_fused_path_and_falls_back():
    cell = cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))

    def run(**kw):
        return lambda p, x: rnnlab.unroll(cell, p, x, **kw)[1]

    assert _has_custom_vjp(run(), params, xs)
    assert not _has_custom_vjp(run(fused=False), params, xs)
    # Where it does not apply, the default quietly uses autodiff through the scan.
    assert not _has_custom_vjp(run(lengths=jnp.array([T, 2])), params, xs)
    assert not _has_custom_vjp(run(truncation=2), params, xs)
    mgu = cells.mgu(H)
    mgu_params = mgu.init(jax.random.key(0), I)
    assert not _has_custom_vjp(lambda p, x: rnnlab.unroll(mgu, p, x)[1], mgu_params, xs)


@pytest.mark.parametrize(
    "cell, kw, reason",
    [
        (cells.mgu(H), {}, "mgu cell has no combine"),
        (cells.gru(H, reset_after=False), {}, "gru cell has no combine"),
        (cells.lstm(H), dict(lengths=jnp.array([T, 2])), "lengths is given"),
        (cells.lstm(H), dict(remat=True), "remat=True"),
        (cells.lstm(H), dict(return_carries=True), "return_carries=True"),
    ],
)
def test_fused_true_raises_where_it_cannot_run(cell, kw, reason):
    params = cell.init(jax.random.key(0), I)
    with pytest.raises(ValueError, match=f"fused=True cannot run here: .*{reason}"):
        rnnlab.unroll(cell, params, jnp.ones((B, T, I)), fused=True, **kw)


def test_fused_must_be_bool_or_none():
    cell = cells.elman(H)
    params = cell.init(jax.random.key(0), I)
    with pytest.raises(TypeError, match="fused must be a bool or None; got 'yes'"):
        rnnlab.unroll(cell, params, jnp.ones((B, T, I)), fused="yes")


def test_step_is_combine_after_the_recurrent_matmul():
    for cell in (cells.elman(H), cells.lstm(H, variant="FGR"), cells.lstm(H, layer_norm=True), cells.gru(H)):
        params = cell.init(jax.random.key(1), I)
        carry = jax.tree.map(lambda a: a + 0.3, cell.initial_carry(params, (B,)))
        xp = cell.project(params, jnp.ones((B, I)))
        want = cell.step(params, carry, xp)
        got = cell.combine(params, carry, xp, carry.hidden @ params.recurrent_kernel)
        _assert_same(got, want)


def test_forward_mode_needs_fused_false(x64):
    cell = cells.elman(H)
    params, carry0, xs, _ = _setup(cell)

    def final(h, use_fused):
        return rnnlab.unroll(cell, params, xs, initial_carry=carry0._replace(hidden=h), fused=use_fused)[0].hidden

    jac = jax.jacfwd(lambda h: final(h, False))(carry0.hidden)
    np.testing.assert_allclose(jac, jax.jacrev(lambda h: final(h, None))(carry0.hidden), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case_id", FUSED_CASES)
def test_additive_cells_read_only_the_sum(x64, case_id):
    """A cell that declares ``additive`` must give the same step from ``(xp, rec)`` as from ``(xp + rec, 0)``;
    the layer-normalized LSTM and the GRU must not declare it (their step tells the two apart)."""
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    params, carry0, _, _ = _setup(cell)
    rng = np.random.default_rng(5)
    G = params.recurrent_kernel.shape[-1]
    xp, rec = (jnp.asarray(rng.normal(0.0, 1.0, (B, G))) for _ in range(2))
    got = cell.combine(params, carry0, xp + rec, jnp.zeros_like(rec))
    same = all(
        np.allclose(a, b, rtol=1e-12, atol=1e-12)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(cell.combine(params, carry0, xp, rec)))
    )
    assert cell.additive == same
    if cell.additive:
        assert case.factory in ("elman", "irnn", "lstm") and not case.options.get("layer_norm")


def test_fused_when_the_output_is_not_the_hidden_state(x64):
    """The fused forward reads h_{t-1} back from ``ys`` only when ``y`` is the new hidden state; a cell
    whose output differs (here ``y = 2 h``) must keep its own carries and still get exact gradients."""
    base = cells.elman(H)

    def combine(params, carry, xp, rec):
        new, y = base.combine(params, carry, xp, rec)
        return new, 2.0 * y

    def step(params, carry, xp):
        return combine(params, carry, xp, carry.hidden @ params.recurrent_kernel)

    cell = base._replace(step=step, combine=combine)
    params, carry0, xs, proj = _setup(cell)
    _assert_same(_grads(cell, params, xs, carry0, proj, True), _grads(cell, params, xs, carry0, proj, False))


@pytest.mark.parametrize("factory", ["lstm", "gru"])
def test_one_forward_pulled_back_twice(x64, factory):
    """The backward loop overwrites its residual buffers with cotangents; pulling two different
    cotangents back through the same forward, in one jitted program, must still give each its own
    exact gradient (XLA must copy the residuals rather than let the first pull-back clobber them)."""
    cell = cells.make(factory, H)
    params, carry0, xs, proj = _setup(cell)

    def pullbacks(use_fused):
        def both(p, x):
            ys, vjp = jax.vjp(lambda p, x: rnnlab.unroll(cell, p, x, fused=use_fused)[1], p, x)
            return vjp(proj), vjp(jnp.cos(proj))

        return jax.jit(both)(params, xs)

    got, want = pullbacks(True), pullbacks(False)
    _assert_same(got, want)
    assert not np.allclose(got[0][1], got[1][1])


@pytest.mark.parametrize("unroll", [1, 8])
@pytest.mark.parametrize("factory", ["lstm", "gru"])
def test_backward_loop_copies_no_residual_buffer(factory, unroll):
    """The backward loop overwrites the residual buffers in place. If a read of a buffer's old
    value were left after the write, XLA would copy the whole ``(T, B, G)`` buffer every step (it
    did, for the GRU's two buffers, before step t-1's residuals were read from the updated
    buffers, and again under ``unroll > 1`` until those steps were unrolled by hand): a silent
    O(T^2) slowdown that only the compiled program shows."""
    if jax.default_backend() != "cpu":  # the HLO's structure (loop bodies before ENTRY) is XLA:CPU's
        pytest.skip("reads XLA:CPU's compiled program; GPU wraps loops in other computations")
    steps, batch = 37, 3  # odd sizes, so that no other array has this shape by chance
    cell = cells.make(factory, H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((batch, steps, I))

    def loss(p, x):
        return jnp.mean(rnnlab.unroll(cell, p, x, fused=True, unroll=unroll)[1] ** 2)

    hlo = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(params, xs).compile().as_text()
    loops = hlo.split("\nENTRY")[0]  # every computation but the entry one: loop bodies, fusions
    assert "dynamic-update-slice" in loops  # the loops were found
    G = params.recurrent_kernel.shape[-1]
    buffer_copy = re.compile(rf"= f32\[{steps},{batch},{G}\]\S* copy\(")
    assert not buffer_copy.search(loops), buffer_copy.search(loops)


@pytest.mark.parametrize("case_id", FUSED_CASES)
def test_lanes_equal_autodiff(x64, case_id):
    """Splitting the batch into lanes (here 5 rows into 3 + 2) changes only the matmul shapes: values
    and gradients must equal autodiff through the plain scan."""
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    params, carry0, xs, proj = _setup(cell, batch=(5,))
    want = _grads(cell, params, xs, carry0, proj, False)
    _assert_same(_grads(cell, params, xs, carry0, proj, True, lanes=2), want)


@pytest.mark.parametrize(
    "options",
    [dict(hoist_input=True), dict(reverse=True, time_major=True), dict(unroll=2), dict(lanes=4)],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_lanes_with_options(x64, options):
    """Lanes with the other options, and one lane per row (``lanes=4`` for 4 rows)."""
    cell = cells.gru(H)
    params, carry0, xs, proj = _setup(cell, batch=(4,))
    if options.get("time_major"):
        xs, proj = jnp.swapaxes(xs, 0, 1), jnp.swapaxes(proj, 0, 1)
    options = {"lanes": 2, **options}
    want = _grads(cell, params, xs, carry0, proj, False, **{k: v for k, v in options.items() if k != "lanes"})
    _assert_same(_grads(cell, params, xs, carry0, proj, True, **options), want)


def test_lanes_really_split_the_loop():
    """Two lanes are two recurrences in one loop: the compiled forward loop holds two recurrent
    matmuls of half the batch each, not one of the whole batch."""
    cell = cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((6, T, I))

    def recurrent_dots(lanes):
        fn = jax.jit(lambda p, x: rnnlab.unroll(cell, p, x, lanes=lanes, unroll=1)[1])  # one step per body
        text = fn.lower(params, xs).as_text()
        return re.findall(rf"tensor<(\d+)x{H}xf32>, tensor<{H}x{4 * H}xf32>\) -> tensor<\d+x{4 * H}xf32>", text)

    assert recurrent_dots(1) == ["6"]
    assert sorted(recurrent_dots(2)) == ["3", "3"]
    assert sorted(recurrent_dots(4)) == ["1", "1", "2", "2"]


def test_lanes_checked_and_chosen():
    cell = cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((2, T, I))
    for bad in (0, -1, 1.5, True):
        with pytest.raises((TypeError, ValueError), match="lanes"):
            rnnlab.unroll(cell, params, xs, lanes=bad)
    with pytest.raises(ValueError, match="lanes=2 needs the fused path.*lengths is given"):
        rnnlab.unroll(cell, params, xs, lengths=jnp.array([5, 3]), lanes=2)
    with pytest.raises(ValueError, match="lanes=2 needs the fused path.*fused=False"):
        rnnlab.unroll(cell, params, xs, fused=False, lanes=2)
    rnnlab.unroll(cell, params, xs, fused=False, lanes=1)  # one lane is the plain scan
    # More lanes than rows: one lane per row.
    np.testing.assert_allclose(
        rnnlab.unroll(cell, params, xs, lanes=8)[1], rnnlab.unroll(cell, params, xs, lanes=1)[1], rtol=1e-6, atol=1e-7
    )
    assert fused.lane_sizes(5, 2) == [3, 2] and fused.lane_sizes(4, 4) == [1, 1, 1, 1]
    # The default: two lanes only on CPU, only for mid-sized steps (bench/RESULTS.md).
    assert fused.default_lanes(32, 256, 1024, "cpu") == 2
    assert fused.default_lanes(32, 256, 1024, "gpu") == 1
    assert fused.default_lanes(16, 16, 64, "cpu") == 1  # tiny: the split's overhead dominates
    assert fused.default_lanes(128, 1024, 4096, "cpu") == 1  # large: the matmul fills both cores
    assert fused.default_lanes(4, 1024, 4096, "cpu") == 1  # too few rows to split


@pytest.fixture
def prefetch(request, monkeypatch):
    """Forces the fused forward's input prefetch on or off (``fused.default_prefetch``)."""
    monkeypatch.setattr(fused, "default_prefetch", lambda *args, **kwargs: request.param)
    return request.param


@pytest.mark.parametrize("prefetch", [True], indirect=True)
@pytest.mark.parametrize("hoist_input", [False, True])
@pytest.mark.parametrize("case_id", FUSED_CASES)
def test_prefetched_forward_equals_autodiff(x64, prefetch, case_id, hoist_input):
    """The tiny shapes of this file take the forward without the prefetch by default (the tests
    above); here every cell with it, also hoisted (where an additive cell's residuals overwrite the
    projection in place)."""
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    params, carry0, xs, proj = _setup(cell)
    got = _grads(cell, params, xs, carry0, proj, True, hoist_input=hoist_input)
    _assert_same(got, _grads(cell, params, xs, carry0, proj, False, hoist_input=hoist_input))


@pytest.mark.parametrize("prefetch", [True, False], indirect=True)
@pytest.mark.parametrize(
    "options",
    [dict(hoist_input=True), dict(reverse=True, time_major=True), dict(unroll=3, lanes=2)],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_prefetch_with_options(x64, prefetch, options):
    cell = cells.gru(H)
    params, carry0, xs, proj = _setup(cell, batch=(3,))
    if options.get("time_major"):
        xs, proj = jnp.swapaxes(xs, 0, 1), jnp.swapaxes(proj, 0, 1)
    want = _grads(cell, params, xs, carry0, proj, False, **{k: v for k, v in options.items() if k != "lanes"})
    _assert_same(_grads(cell, params, xs, carry0, proj, True, **options), want)


@pytest.mark.parametrize("prefetch", [True, False], indirect=True)
def test_prefetch_carries_the_next_input(prefetch):
    """With the prefetch the forward loop runs over the step index and carries a ``(B, I)`` input;
    without it, it runs over the inputs. (The input projection stays in the loop here, as on CPU by
    default; hoisted, the carried input would be the ``(B, G)`` projection.)"""
    cell = cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((T, 2, I))
    run = lambda p, x: rnnlab.unroll(cell, p, x, time_major=True, hoist_input=False)[1]  # noqa: E731
    jaxpr = jax.make_jaxpr(run)(params, xs).jaxpr
    (fused_call,) = [e for e in jaxpr.eqns if e.primitive.name == "custom_vjp_call"]
    (scan,) = [e for e in fused_call.params["call_jaxpr"].eqns if e.primitive.name == "scan"]
    carried, _ = _loop_outputs(scan)
    assert carried.count((2, I)) == (1 if prefetch else 0)


def _scans(jaxpr):
    """Every ``scan`` equation in ``jaxpr``, nested ones included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            yield eqn
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _scans(sub)


def _loop_outputs(scan):
    """``(carried, stacked)``: the shapes of a ``scan`` equation's loop-carried values and of its
    stacked outputs.

    Told apart by comparing each output with the body's: a carry keeps its shape, a stacked output
    gains the leading time axis. (JAX 0.11 replaced the ``num_consts``/``num_carry`` parameters
    that said this directly, so the tests do not read them.)
    """
    (body,) = jax.extend.core.jaxprs_in_params(scan.params)
    assert len(body.outvars) == len(scan.outvars)
    pairs = [(outer.aval.shape, inner.aval.shape) for outer, inner in zip(scan.outvars, body.outvars)]
    return [o for o, i in pairs if o == i], [o for o, i in pairs if o != i]


@pytest.mark.parametrize("prefetch", [True, False], indirect=True)
@pytest.mark.parametrize("factory, unroll", [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 2)])
def test_hoisted_forward_saves_no_copy_of_the_projection(prefetch, factory, unroll):
    """Hoisted and saving for the backward pass, the forward loop stacks no ``(T, B, G)`` copy of
    the projection: an additive cell (LSTM) writes ``xp + rec`` over it in place (with the prefetch
    and without unrolling; otherwise it stacks the sum), a GRU keeps the projection itself and
    stacks only ``rec``."""
    cell = cells.make(factory, H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((T, 2, I))
    G = params.recurrent_kernel.shape[1]

    def loss(p, x):
        return jnp.sum(rnnlab.unroll(cell, p, x, time_major=True, hoist_input=True, unroll=unroll)[1])

    jaxpr = jax.make_jaxpr(jax.grad(loss))(params, xs).jaxpr
    (forward, *_) = [e for e in _scans(jaxpr) if not e.params["reverse"]]
    carried, stacked = _loop_outputs(forward)
    in_place = factory == "lstm" and prefetch and unroll == 1
    assert carried.count((T, 2, G)) == (1 if in_place else 0)
    assert stacked.count((T, 2, G)) == (0 if in_place else 1)


def test_default_prefetch():
    # bench/RESULTS.md: on CPU only for one lane with 2 B H G >= 1 MFLOP; always elsewhere.
    assert not fused.default_prefetch(1, 8, 32, backend="cpu") and not fused.default_prefetch(16, 16, 64, backend="cpu")
    assert not fused.default_prefetch(4, 256, 256, backend="cpu")  # the Elman RNN at size C: 0.5 MFLOP
    assert fused.default_prefetch(4, 256, 768, backend="cpu") and fused.default_prefetch(64, 512, 2048, backend="cpu")
    assert not fused.default_prefetch(16, 256, 1024, lanes=2, backend="cpu")  # size A's LSTM, two lanes
    assert fused.default_prefetch(1, 8, 32, lanes=2, backend="gpu")
