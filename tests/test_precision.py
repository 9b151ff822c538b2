"""Mixed-precision matmuls (:mod:`rnnlab.precision`, ``unroll(matmul_dtype=...)``).

``precision.matmul`` and both of its gradients are checked against numpy with the operands rounded
to bfloat16 by ``ml_dtypes`` and the products taken in float64; ``unroll`` in bfloat16 must stay
close to float32 for every cell (one case per matmul structure), give the same gradients on the
fused path as autodiff through the scan (the same roundings, summed in another order), and really
run bfloat16 GEMMs.
"""

import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from numpy_reference import CASES, randomize

import rnnlab
from rnnlab import cells, fused, precision

B, T, I, H = 3, 6, 5, 8


def _bf16(a):
    """float64 values of ``a`` rounded to bfloat16 (round to nearest even), independently of jax."""
    return np.asarray(a, np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)


def test_matmul_and_its_gradients_against_numpy():
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(2, 4, 7)), jnp.float32)  # leading axes are rows
    b = jnp.asarray(rng.normal(size=(7, 5)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(2, 4, 5)), jnp.float32)
    with precision.matmul_dtype(jnp.bfloat16):
        out, vjp = jax.vjp(precision.matmul, a, b)
    da, db = vjp(g)
    assert out.dtype == da.dtype == db.dtype == jnp.float32
    np.testing.assert_allclose(out, _bf16(a) @ _bf16(b), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(da, _bf16(g) @ _bf16(b).T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(db, _bf16(a).reshape(-1, 7).T @ _bf16(g).reshape(-1, 5), rtol=1e-6, atol=1e-6)
    # Outside the block, and for operands already that narrow, it is the plain product.
    np.testing.assert_array_equal(precision.matmul(a, b), a @ b)
    a16, b16 = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
    with precision.matmul_dtype(jnp.bfloat16):
        assert precision.matmul(a16, b16).dtype == jnp.bfloat16
    assert precision.current() is None


def test_transposed_is_the_transpose():
    a = jnp.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(precision.transposed(a), a.T)


def _loss(cell, params, xs, **kw):
    def loss(p, x):
        ys = rnnlab.unroll(cell, p, x, **kw)[1]
        return jnp.sum(jnp.sin(ys)), ys

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, xs)


# One case per matmul structure: Elman; the LSTM; its full gate recurrence (a second recurrent matmul) with
# layer norm (which normalizes the matmul products); the GRU with the reset after and before its recurrent
# matmul (one matmul, or two on the fall-back path); the MGU.
MATMUL_CASES = ["elman-tanh", "lstm", "lstm-FGR-layer_norm", "gru-reset_after", "gru-reset_before", "mgu"]


def test_matmul_cases_exist():
    assert set(MATMUL_CASES) <= set(CASES)
    assert {CASES[k].factory for k in MATMUL_CASES} == {CASES[k].factory for k in CASES} - {"irnn"}


@pytest.mark.parametrize("case_id", MATMUL_CASES)
def test_bfloat16_unroll_is_close_to_float32(case_id):
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    params = randomize(jax.eval_shape(lambda: cell.init(jax.random.key(0), I)), 1, scale=0.5)
    xs = jnp.asarray(np.random.default_rng(2).normal(size=(B, T, I)), jnp.float32)
    (_, ys32), g32 = _loss(cell, params, xs)
    (_, ys16), g16 = _loss(cell, params, xs, matmul_dtype=jnp.bfloat16)
    assert ys16.dtype == jnp.float32 and all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(g16))
    # bfloat16 keeps 8 significant bits: operands are off by up to 2**-9 relative, so a few 1e-3.
    assert float(jnp.max(jnp.abs(ys16 - ys32))) < 3e-2
    assert float(jnp.max(jnp.abs(ys16 - ys32))) > 0  # it did round
    for got, want in zip(jax.tree.leaves(g16), jax.tree.leaves(g32)):
        assert float(jnp.linalg.norm(got - want)) <= 5e-2 * float(jnp.linalg.norm(want)) + 1e-6
    if fused.supports(cell):  # the fused backward: the same roundings as autodiff, summed differently
        (_, ys_auto), g_auto = _loss(cell, params, xs, matmul_dtype=jnp.bfloat16, fused=False)
        np.testing.assert_allclose(ys16, ys_auto, rtol=1e-5, atol=1e-6)
        for got, want in zip(jax.tree.leaves(g16), jax.tree.leaves(g_auto)):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("use_fused", [None, False])
def test_bfloat16_gemms_really_run(use_fused):
    """Forward and backward matmuls take bfloat16 operands and give float32 products."""
    cell = cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))

    def loss(p, x):
        return jnp.sum(rnnlab.unroll(cell, p, x, matmul_dtype="bfloat16", fused=use_fused)[1])

    text = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(params, xs).as_text()
    mixed = re.findall(r"dot_general.*\(tensor<[^>]*bf16>, tensor<[^>]*bf16>\) -> tensor<[^>]*f32>", text)
    # forward: projection and recurrence; backward: the recurrence's input gradient, and the
    # weight and input gradients of both matmuls
    assert len(mixed) >= 6, text
    assert not re.search(r"dot_general.*\(tensor<[^>]*f32>, tensor<[^>]*f32>\)", text)


def test_float64_params_and_checks():
    cell = cells.gru(H)
    with jax.enable_x64(True):
        params = cell.init(jax.random.key(0), I, dtype=jnp.float64)
        xs = jnp.ones((B, T, I), jnp.float64)
        ys = rnnlab.unroll(cell, params, xs, matmul_dtype=jnp.bfloat16)[1]
        assert ys.dtype == jnp.float64
    params = cell.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))
    for bad in (jnp.int8, "int32", "nonsense", 3):
        with pytest.raises(TypeError, match="matmul_dtype"):
            rnnlab.unroll(cell, params, xs, matmul_dtype=bad)
    assert precision.current() is None
