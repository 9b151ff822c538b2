"""Gradients of ``rnnlab.unroll`` against central finite differences, and truncated BPTT.

The gradient experiments measure ``dL/dh_t`` and ``dL/dx_t``, so autodiff through the scan must be
right for every cell: the loss ``sum(ys * proj)`` (a fixed random projection of all outputs) is
differentiated in float64 w.r.t. every params leaf, the inputs and the initial carry, and each
gradient is checked along random directions against ``(L(p + eps d) - L(p - eps d)) / (2 eps)``.
Truncation is checked against ``rnnlab.reference_unroll`` and against its definition: the gradient
of an input sees only the outputs of its own window, and the forward values do not change.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import CASES, random_carry, randomize

import rnnlab
from rnnlab import cells

B, T, I, H = 2, 3, 3, 4
EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-9


def _setup(case_id, seed=0, steps=T):
    case = CASES[case_id]
    cell = cells.make(case.factory, H, **case.options)
    # Only the structure and dtypes of the params are needed (every value is replaced): eval_shape
    # runs no initializer, which keeps the test fast.
    params = randomize(jax.eval_shape(lambda: cell.init(jax.random.key(seed), I, dtype=jnp.float64)), seed + 1)
    carry0 = random_carry(cell.initial_carry(params, (B,)), seed + 2)
    rng = np.random.default_rng(seed + 3)
    xs = jnp.asarray(rng.normal(0.0, 1.0, (B, steps, I)))
    proj = jnp.asarray(rng.normal(0.0, 1.0, (B, steps, H)))
    return cell, params, carry0, xs, proj


@pytest.mark.parametrize("case_id", list(CASES))
def test_gradient_matches_central_differences(x64, case_id):
    cell, params, carry0, xs, proj = _setup(case_id)

    def loss(p, xs, c0):
        return jnp.sum(rnnlab.unroll(cell, p, xs, initial_carry=c0)[1] * proj)

    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    args = (params, xs, carry0)
    _, grads = value_and_grad(*args)
    named, treedef = jax.tree_util.tree_flatten_with_path(args)
    names = [jax.tree_util.keystr(path) for path, _ in named]
    base = [np.asarray(a) for _, a in named]
    g = [np.asarray(a) for a in jax.tree.leaves(grads)]
    assert [a.shape for a in g] == [a.shape for a in base]

    def L(leaves):
        return float(value_and_grad(*jax.tree.unflatten(treedef, [jnp.asarray(a) for a in leaves]))[0])

    rng = np.random.default_rng(7)
    directions = []  # (what, direction per leaf)
    for k, name in enumerate(names):
        # Every leaf must matter: a zero gradient would mean a term of the equations is missing.
        assert np.abs(g[k]).max() > 1e-8, f"{name}: gradient is zero"
        for _ in range(2):
            d = [np.zeros_like(a) for a in base]
            d[k] = rng.normal(size=base[k].shape)
            directions.append((name, d))
    directions.append(("all leaves", [rng.normal(size=a.shape) for a in base]))
    for what, d in directions:
        fd = (L([a + EPS * v for a, v in zip(base, d)]) - L([a - EPS * v for a, v in zip(base, d)])) / (2 * EPS)
        ad = sum(float(np.vdot(gk, dk)) for gk, dk in zip(g, d))
        assert abs(fd - ad) <= RTOL * abs(ad) + ATOL, f"{what}: finite difference {fd!r} vs autodiff {ad!r}"


TRUNCATION_CASES = ["elman-tanh", "lstm-vanilla", "gru-reset_after"]


@pytest.mark.parametrize("case_id", TRUNCATION_CASES)
def test_truncated_gradient(x64, case_id):
    steps, k = 5, 2  # windows [0, 2), [2, 4), [4, 5)
    cell, params, carry0, xs, proj = _setup(case_id, seed=20, steps=steps)

    def loss(run, p, xs, c0, truncation=None, window=slice(None)):
        ys = run(cell, p, xs, initial_carry=c0, truncation=truncation)[1]
        return jnp.sum(ys[:, window] * proj[:, window])

    grad = jax.grad(loss, argnums=(1, 2, 3))
    windows = [slice(start, min(start + k, steps)) for start in range(0, steps, k)]

    @jax.jit
    def fast(p, xs, c0):
        return (
            grad(rnnlab.unroll, p, xs, c0, truncation=k),
            grad(rnnlab.unroll, p, xs, c0)[1],
            [grad(rnnlab.unroll, p, xs, c0, window=w)[1] for w in windows],
            rnnlab.unroll(cell, p, xs, initial_carry=c0, truncation=k)[1],
            rnnlab.unroll(cell, p, xs, initial_carry=c0)[1],
        )

    truncated, full_x, window_x, ys_truncated, ys = fast(params, xs, carry0)
    reference = jax.jit(lambda p, xs, c0: grad(rnnlab.reference_unroll, p, xs, c0, truncation=k))(params, xs, carry0)
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(truncated)[0], jax.tree.leaves(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13, err_msg=jax.tree_util.keystr(path))

    # Truncation leaves the forward pass alone.
    np.testing.assert_array_equal(ys_truncated, ys)

    # By definition: the truncated gradient of x_t is the full gradient of the outputs in t's window.
    g_x, full_x = np.asarray(truncated[1]), np.asarray(full_x)
    for w, g_w in zip(windows, window_x):
        np.testing.assert_allclose(g_x[:, w], np.asarray(g_w)[:, w], rtol=1e-12, atol=1e-13, err_msg=f"window {w}")
    # ... which differs from the untruncated gradient before the last window, and equals it in it.
    for t in range(windows[-1].start):
        assert np.abs(g_x[:, t] - full_x[:, t]).max() > 1e-3 * np.abs(full_x[:, t]).max(), f"step {t}"
    np.testing.assert_allclose(g_x[:, windows[-1]], full_x[:, windows[-1]], rtol=1e-12, atol=1e-13)
