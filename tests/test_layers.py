"""Bidirectional layers and stacks: construction checks, output sizes, and params that fit the layer.

Only shapes matter here, so params are zeros shaped by ``jax.eval_shape`` (no initializer runs) and
outputs are shapes from ``jax.eval_shape`` (nothing compiles); running layers is tested in test_unroll.py.
"""

import jax
import jax.numpy as jnp
import pytest

import rnnlab
from rnnlab import cells

B, T, I = 2, 3, 5
XS = jax.random.normal(jax.random.key(0), (B, T, I))


def _params(layer, input_size=I):
    shapes = jax.eval_shape(lambda: layer.init(jax.random.key(0), input_size))
    return jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)


def _ys_shape(layer, params, **kw):
    return jax.eval_shape(lambda: rnnlab.unroll(layer, params, XS, **kw)[1]).shape


def test_stack_params_and_carry_need_one_entry_per_layer():
    two = rnnlab.stack([cells.gru(4), cells.gru(4)])
    three = rnnlab.stack([cells.gru(4), cells.gru(4), cells.gru(4)])
    p2, p3 = _params(two), _params(three)
    for layer, params, n, got in ((three, p2, 3, 2), (two, p3, 2, 3)):
        pattern = rf"params must hold one entry per layer: the Stack has {n} layers; got {got} entries"
        with pytest.raises(ValueError, match=r"unroll: " + pattern):
            rnnlab.unroll(layer, params, XS)
        with pytest.raises(ValueError, match=r"Stack.initial_carry: " + pattern):
            layer.initial_carry(params, (B,))
    carry3 = three.initial_carry(p3, (B,))
    with pytest.raises(ValueError, match=r"Stack.apply: params must hold one entry per layer.*3 layers; got 2"):
        three.apply(p2, carry3, XS[:, 0])
    with pytest.raises(ValueError, match=r"Stack.apply: carry must hold one entry per layer.*2 layers; got 3"):
        two.apply(p2, carry3, XS[:, 0])


def test_params_inside_a_stack_are_named_by_their_path():
    deep = rnnlab.stack([rnnlab.bidirectional(cells.gru(4)), cells.lstm(8)])
    p = _params(deep)
    wrong_input = (p[0], _params(cells.lstm(8), 6))  # built for 6 inputs; layer 1 reads 8
    with pytest.raises(ValueError, match=r"params\[1\].input_kernel must have shape \(8, 32\).*got \(6, 32\)"):
        rnnlab.unroll(deep, wrong_input, XS)
    wrong_cell = (p[0]._replace(backward=_params(cells.gru(5))), p[1])
    with pytest.raises(ValueError, match=r"params\[0\].backward.input_kernel must have shape \(5, 12\)"):
        rnnlab.unroll(deep, wrong_cell, XS)
    with pytest.raises(TypeError, match=r"params\[0\] of a Bidirectional layer must be BidirectionalParams"):
        rnnlab.unroll(deep, (p[0].forward, p[1]), XS)


def test_bidirectional_output_size_is_the_sum_of_both_widths():
    bi = rnnlab.bidirectional(cells.gru(4), cells.lstm(6))
    assert bi.output_size == 10
    assert _ys_shape(bi, _params(bi)) == (B, T, 10)
    deep = rnnlab.stack([bi, cells.gru(3)])
    p = _params(deep)
    assert p[1].input_kernel.shape == (10, 9)
    assert _ys_shape(deep, p) == (B, T, 3)
    assert rnnlab.bidirectional(cells.gru(4), merge="sum").output_size == 4


def test_layers_are_pytrees_that_rebuild_through_their_checks():
    bi = rnnlab.Bidirectional(cells.gru(4), cells.elman(3))
    top = cells.gru(7)
    deep = rnnlab.Stack([bi, top], residual=False, dropout=0.25)
    assert type(deep.layers) is tuple and deep == rnnlab.stack([bi, top], dropout=0.25)
    for layer in (bi, deep):
        rebuilt = jax.tree.unflatten(jax.tree.structure(layer), jax.tree.leaves(layer))
        assert type(rebuilt) is type(layer) and rebuilt == layer
        assert jax.tree.map(lambda v: v, layer) == layer
    assert deep._replace(dropout=0.5).dropout == 0.5 and bi._replace(merge="concat") == bi
    with pytest.raises(ValueError, match=r"Stack: dropout must be in \[0, 1\); got 1.5"):
        deep._replace(dropout=1.5)
    with pytest.raises(ValueError, match=r"Bidirectional: merge='sum' needs equal hidden sizes; got 4 and 3"):
        bi._replace(merge="sum")
    assert _ys_shape(deep, _params(deep), dropout_key=jax.random.key(8)) == (B, T, 7)
