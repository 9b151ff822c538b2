"""Every registered cell against the independent float64 numpy reference, and the initial distributions.

The cells run in float64 with every parameter (biases, peepholes, layer-norm gains included) and the
initial carry replaced by random nonzero values, so a dropped or misplaced term changes the result
far above the 1e-12 tolerance. Each dimension has its own size (batch 3, time 4, input 5, hidden 6)
so a transposed axis cannot pass. The init tests check what the factories' docstrings promise
(forget bias, chrono, orthogonal and identity recurrent blocks, exact spectral radius, variant shapes).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import CASES, GREFF_VARIANTS, LSTMSpec, random_carry, randomize, run, state_of

import rnnlab
from rnnlab import activations, cells

B, T, I, H = 3, 4, 5, 6
RTOL, ATOL = 1e-12, 1e-12


def _setup(case_id, seed=0):
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    with jax.enable_x64(True):
        params = cell.init(jax.random.key(seed), I, dtype=jnp.float64)
    params = randomize(params, seed + 1)
    carry0 = random_carry(cell.initial_carry(params, (B,)), seed + 2)
    xs = jnp.asarray(np.random.default_rng(seed + 3).normal(0.0, 1.0, (B, T, I)))
    return case, cell, params, carry0, xs


def _assert_carry(carry, state, what):
    assert set(carry._fields) == set(state), what
    for name in carry._fields:
        got, want = getattr(carry, name), state[name]
        if want is None:
            assert got is None, f"{what}: {name} should be None"
        else:
            np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL, err_msg=f"{what}: {name}")


# ----------------------------------------------------------------------------------------------- coverage


def test_cases_cover_the_registry():
    """A new registry entry, Elman activation or LSTM variant without a numpy case fails here."""
    factories = {c.factory for c in CASES.values()}
    assert factories == set(cells.REGISTRY), f"no numpy case for {set(cells.REGISTRY) - factories}"
    elman_acts = {c.options.get("activation", "tanh") for c in CASES.values() if c.factory == "elman"}
    assert elman_acts == set(activations.ACTIVATIONS)
    variants = {c.options["variant"] for c in CASES.values() if "variant" in c.options}
    assert variants == set(cells.LSTM_VARIANTS)


@pytest.mark.parametrize("variant", list(cells.LSTM_VARIANTS))
def test_variant_structure_matches_greff(variant):
    """rnnlab's variant table spells the structure of Greff et al. (2017) (restated in numpy_reference)."""
    opts = dict(cells.lstm(H, variant=variant).options)
    spec = GREFF_VARIANTS[variant]
    for field in dataclasses.fields(LSTMSpec):
        assert opts[field.name] == getattr(spec, field.name), f"{variant}: {field.name}"
    assert cells.gate_names(cells.lstm(H, variant=variant)) == spec.gates


# ----------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("case_id", list(CASES))
def test_apply_matches_numpy(x64, case_id):
    case, cell, p, carry, xs = _setup(case_id)
    state = state_of(carry)
    for t in range(T):
        carry, y = cell.apply(p, carry, xs[:, t])
        state, y_ref = case.step(p, state, np.asarray(xs[:, t]))
        assert y.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(y), y_ref, rtol=RTOL, atol=ATOL, err_msg=f"y at step {t}")
        _assert_carry(carry, state, f"carry at step {t}")
    assert np.abs(y_ref).mean() > 0.05, "degenerate test data"


@pytest.mark.parametrize("case_id", list(CASES))
def test_unroll_matches_numpy(x64, case_id):
    case, cell, p, carry0, xs = _setup(case_id, seed=10)

    @jax.jit
    def both(p, xs, carry0):
        kw = dict(initial_carry=carry0, return_carries=True)
        return [rnnlab.unroll(cell, p, xs, hoist_input=h, **kw) for h in (True, False)]

    states, ys_ref = run(case.step, p, state_of(carry0), np.asarray(xs))
    for hoist, (final, ys, carries) in zip((True, False), both(p, xs, carry0)):
        what = f"hoist_input={hoist}"
        assert ys.shape == (B, T, H)
        np.testing.assert_allclose(np.asarray(ys), ys_ref, rtol=RTOL, atol=ATOL, err_msg=what)
        _assert_carry(final, states[-1], f"{what}, final carry")
        for t in range(T):
            at_t = jax.tree.map(lambda c, t=t: c[:, t], carries)
            _assert_carry(at_t, states[t], f"{what}, carry {t}")


# ----------------------------------------------------------------------------------------------- init


def _gate_blocks(m, spec):
    return {g: m[..., k * H : (k + 1) * H] for k, g in enumerate(spec.gates)}


LSTM_WITH_FORGET = ["lstm"] + [f"lstm-{v}" for v, s in GREFF_VARIANTS.items() if s.forget_gate]


@pytest.mark.parametrize("case_id", LSTM_WITH_FORGET)
@pytest.mark.parametrize("forget_bias", [None, 5.0], ids=["bias_default", "bias_5"])
def test_forget_bias_sits_in_the_forget_block(x64, case_id, forget_bias):
    options = dict(CASES[case_id].options)
    spec = GREFF_VARIANTS.get(options.get("variant"), LSTMSpec())
    if forget_bias is not None:
        options["forget_bias"] = forget_bias
    p = cells.lstm(H, **options).init(jax.random.key(0), I, dtype=jnp.float64)
    blocks = _gate_blocks(np.asarray(p.bias), spec)
    np.testing.assert_array_equal(blocks.pop("f"), np.full(H, 1.0 if forget_bias is None else forget_bias))
    for g, b in blocks.items():
        np.testing.assert_array_equal(b, np.zeros(H), err_msg=f"bias of gate {g}")


@pytest.mark.parametrize("variant", [None, "vanilla", "CIFG"])
def test_chrono_init(x64, variant):
    t_max, width = 50.0, 512
    kw = {} if variant is None else {"variant": variant}
    spec = GREFF_VARIANTS.get(variant, LSTMSpec())
    # Zero kernels: only the bias is under test, and large orthogonal blocks are slow to sample.
    cell = cells.lstm(width, chrono_t_max=t_max, input_init="zeros", recurrent_init="zeros", **kw)
    p = cell.init(jax.random.key(3), I, dtype=jnp.float64)
    blocks = {g: np.asarray(p.bias)[k * width : (k + 1) * width] for k, g in enumerate(spec.gates)}
    b_f = blocks.pop("f")
    assert np.all(b_f >= 0.0) and np.all(b_f <= np.log(t_max - 1.0))
    # exp(b_f) ~ U[1, T_max - 1]: spread over the whole range, not a constant.
    u = np.exp(b_f)
    assert u.min() < 1.0 + 0.05 * (t_max - 2) and u.max() > t_max - 1.0 - 0.05 * (t_max - 2)
    np.testing.assert_allclose(u.mean(), t_max / 2.0, rtol=0.05)
    if "i" in blocks:
        np.testing.assert_array_equal(blocks.pop("i"), -b_f)
    for g, b in blocks.items():
        np.testing.assert_array_equal(b, np.zeros(width), err_msg=f"bias of gate {g}")


def _n_blocks(case_id):
    case = CASES[case_id]
    if case.factory == "lstm":
        return len(GREFF_VARIANTS.get(case.options.get("variant"), LSTMSpec()).gates)
    return {"elman": 1, "irnn": 1, "gru": 3, "mgu": 2}[case.factory]


ORTHOGONAL_CASES = [c for c in CASES if CASES[c].factory != "irnn"]


@pytest.mark.parametrize("case_id", ORTHOGONAL_CASES)
def test_recurrent_blocks_are_orthogonal_and_input_blocks_glorot(x64, case_id):
    case = CASES[case_id]
    p = cells.make(case.factory, H, **case.options).init(jax.random.key(1), I, dtype=jnp.float64)
    U, W = np.asarray(p.recurrent_kernel), np.asarray(p.input_kernel)
    n = _n_blocks(case_id)
    assert U.shape == (H, n * H) and W.shape == (I, n * H)
    blocks = [U[:, k * H : (k + 1) * H] for k in range(n)]
    for k, u in enumerate(blocks):
        np.testing.assert_allclose(u.T @ u, np.eye(H), atol=1e-12, err_msg=f"U block {k}")
        np.testing.assert_allclose(u @ u.T, np.eye(H), atol=1e-12, err_msg=f"U block {k}")
        for j in range(k):
            assert not np.allclose(u, blocks[j]), f"U blocks {j} and {k} are the same sample"
    # Glorot per gate: U(-a, a) with a from the block's fans (I, H), not from the fused (I, nH).
    bound = np.sqrt(6.0 / (I + H))
    for k in range(n):
        w = W[:, k * H : (k + 1) * H]
        assert np.abs(w).max() <= bound
        if n > 1:
            assert np.abs(w).max() > np.sqrt(6.0 / (I + n * H)), f"W block {k} looks scaled for the fused shape"
    if isinstance(p, cells.LSTMParams) and p.gate_recurrent_kernel is not None:
        S = len(GREFF_VARIANTS[case.options["variant"]].sigmoid_gates)
        R = np.asarray(p.gate_recurrent_kernel)
        assert R.shape == (S * H, S * H)
        for k in range(S):
            r = R[:, k * H : (k + 1) * H]  # (S*H, H): orthonormal columns
            np.testing.assert_allclose(r.T @ r, np.eye(H), atol=1e-12, err_msg=f"FGR block {k}")


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_irnn_identity_init(x64, scale):
    p = cells.irnn(H, scale=scale).init(jax.random.key(0), I, dtype=jnp.float64)
    np.testing.assert_array_equal(np.asarray(p.recurrent_kernel), scale * np.eye(H))
    np.testing.assert_array_equal(np.asarray(p.bias), np.zeros(H))
    assert dict(cells.irnn(H).options)["activation"] == "relu"


@pytest.mark.parametrize("recurrent_init", ["normal", "orthogonal", "glorot_uniform", "uniform"])
@pytest.mark.parametrize("radius", [0.9, 1.1])
def test_spectral_radius_is_exact(x64, recurrent_init, radius):
    cell = cells.elman(H, recurrent_init=recurrent_init, spectral_radius=radius)
    for seed in range(3):
        U = np.asarray(cell.init(jax.random.key(seed), I, dtype=jnp.float64).recurrent_kernel)
        np.testing.assert_allclose(np.abs(np.linalg.eigvals(U)).max(), radius, rtol=1e-12)


def test_spectral_radius_float32():
    U = cells.elman(H, recurrent_init="normal", spectral_radius=1.1).init(jax.random.key(0), I).recurrent_kernel
    assert U.dtype == jnp.float32
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(np.asarray(U, np.float64))).max(), 1.1, rtol=1e-6)


@pytest.mark.parametrize("init", ["normal", "orthogonal", "glorot_uniform", "uniform", "identity", "zeros"])
def test_every_initializer_returns_the_dtype_asked_for(x64, init):
    # With 64-bit floats on, a float64 constant in an initializer would promote a float32 sample.
    f = rnnlab.initializers.get(init)
    for dtype in (jnp.float32, jnp.float16) if init != "orthogonal" else (jnp.float32,):
        assert f(jax.random.key(0), (4, 4), dtype).dtype == dtype
    kernels = cells.lstm(H, input_init=init, recurrent_init=init).init(jax.random.key(0), H)
    assert {str(a.dtype) for a in jax.tree.leaves(kernels)} == {"float32"}


# (gate blocks, peephole rows, FGR width in units of H) per Greff et al. (2017) variant.
VARIANT_SHAPES = {
    "vanilla": (4, 3, None),
    "NIG": (3, 2, None),
    "NFG": (3, 2, None),
    "NOG": (3, 2, None),
    "NIAF": (4, 3, None),
    "NOAF": (4, 3, None),
    "NP": (4, None, None),
    "CIFG": (3, 2, None),
    "FGR": (4, 3, 3),
    "original": (3, None, None),
}


@pytest.mark.parametrize("variant", list(VARIANT_SHAPES))
@pytest.mark.parametrize("layer_norm", [False, True], ids=["no_ln", "layer_norm"])
def test_lstm_variant_param_shapes(variant, layer_norm):
    n, peep, fgr = VARIANT_SHAPES[variant]
    p = cells.lstm(H, variant=variant, layer_norm=layer_norm).init(jax.random.key(0), I)
    assert p.input_kernel.shape == (I, n * H)
    assert p.recurrent_kernel.shape == (H, n * H)
    assert p.bias.shape == (n * H,)
    assert (None if p.peephole is None else p.peephole.shape) == (None if peep is None else (peep, H))
    want_fgr = None if fgr is None else (fgr * H, fgr * H)
    assert (None if p.gate_recurrent_kernel is None else p.gate_recurrent_kernel.shape) == want_fgr
    if layer_norm:
        assert [a.shape for a in p.layer_norm] == [(n * H,), (n * H,), (H,), (H,)]
        np.testing.assert_array_equal(np.asarray(p.layer_norm.input_gain), np.ones(n * H))
        np.testing.assert_array_equal(np.asarray(p.layer_norm.cell_bias), np.zeros(H))
    else:
        assert p.layer_norm is None
    if peep is not None:
        np.testing.assert_array_equal(np.asarray(p.peephole), np.zeros((peep, H)))
    carry = cells.lstm(H, variant=variant).initial_carry(p, (B,))
    assert carry.hidden.shape == carry.cell.shape == (B, H)
    assert (None if carry.gates is None else carry.gates.shape) == (None if fgr is None else (B, fgr * H))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_and_mgu_param_shapes(reset_after):
    p = cells.gru(H, reset_after=reset_after).init(jax.random.key(0), I)
    assert (p.input_kernel.shape, p.recurrent_kernel.shape, p.bias.shape) == ((I, 3 * H), (H, 3 * H), (3 * H,))
    assert (p.recurrent_bias.shape if reset_after else p.recurrent_bias) == ((H,) if reset_after else None)
    q = cells.mgu(H).init(jax.random.key(0), I)
    assert (q.input_kernel.shape, q.recurrent_kernel.shape, q.bias.shape) == ((I, 2 * H), (H, 2 * H), (2 * H,))


def test_fgr_takes_any_square_recurrent_init():
    # The gate-to-gate matrix has its own initializer, so a square-only U init (IRNN-style) works.
    p = cells.lstm(H, variant="FGR", recurrent_init="identity").init(jax.random.key(0), I)
    np.testing.assert_array_equal(np.asarray(p.recurrent_kernel), np.tile(np.eye(H), (1, 4)))
    assert p.gate_recurrent_kernel.shape == (3 * H, 3 * H)


def _shapes(params):
    return jax.tree.structure(params), [a.shape for a in jax.tree.leaves(params)]


@functools.cache
def _params_of_every_case():
    """Zeros shaped like each case's params (only shapes matter; no initializer runs)."""
    shapes = {
        k: jax.eval_shape(lambda c=c: cells.make(c.factory, H, **c.options).init(jax.random.key(0), I))
        for k, c in CASES.items()
    }
    return jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)


@pytest.mark.parametrize("case_id", list(CASES))
def test_params_of_another_cell_are_refused_before_tracing(case_id):
    """Params built by every other case (another cell, variant, option) whose structure or shapes
    differ from this cell's are refused by ``unroll`` and ``cell.apply`` with an error naming params;
    its own params, and those of cases with the same shapes, pass."""
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    xs = jnp.ones((B, T, I))
    own = _shapes(jax.eval_shape(lambda: cell.init(jax.random.key(0), I)))
    for params in _params_of_every_case().values():
        carry = cell.initial_carry(params, (B,))
        if _shapes(params) == own:
            cell.apply(params, carry, xs[:, 0])
            continue
        with pytest.raises((TypeError, ValueError), match=r"^unroll: params"):
            rnnlab.unroll(cell, params, xs)
        with pytest.raises((TypeError, ValueError), match=rf"^{cell.name}.apply: params"):
            cell.apply(params, carry, xs[:, 0])
