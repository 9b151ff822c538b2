r"""Loading Flax recurrent cells (linen and NNX) into rnnlab params.

Flax kernels are ``(in, out)`` like rnnlab's, so weights are only concatenated, never transposed.
Each Flax gate is a sum of an input ``Dense``/``Linear`` and a recurrent one, and only one of the
two carries a bias; the mapping per cell (``H`` hidden, ``I`` input features):

============================  =========================================================================
Flax cell                     rnnlab params
============================  =========================================================================
``SimpleCell``                ``elman``: ``W = i.kernel``, ``U = h.kernel`` (``+ eye(H)`` when
                              ``residual=True``, since ``h U + h = h (U + I)``), ``b = i.bias``
``LSTMCell``,                 ``lstm``: ``W = [ii|if|ig|io].kernel``, ``U = [hi|hf|hg|ho].kernel``,
``OptimizedLSTMCell``         ``b = [hi|hf|hg|ho].bias`` (NNX ``OptimizedLSTMCell``: ``dense_i.kernel``,
                              ``dense_h.kernel``, ``dense_h.bias``, already fused as ``i, f, g, o``)
``GRUCell`` (linen)           ``gru(reset_after=True)``: ``W = [ir|iz|in].kernel``, ``U = [hr|hz|hn].kernel``,
                              ``b = [ir|iz|in].bias``, ``recurrent_bias = hn.bias``
``GRUCell`` (NNX)             as linen, fused: ``W = dense_i.kernel``, ``U = dense_h.kernel``,
                              ``b = dense_i.bias``; ``dense_h`` has no bias, so ``recurrent_bias = 0``
============================  =========================================================================

Both GRUs compute ``n = tanh(x W_n + b_n + r * (h U_n + b_hn))`` (with ``b_hn = 0`` in NNX), which
is rnnlab's ``reset_after=True`` form exactly. Flax's ``MGUCell`` applies its gate after the
recurrent matmul while rnnlab's :func:`~rnnlab.cells.mgu` applies it before, and ``ConvLSTMCell``
convolves: neither has an rnnlab counterpart, and converting them raises.

Carries: Flax's LSTM carry is ``(c, h)``, rnnlab's :class:`~rnnlab.cells.LSTMCarry` is
``(hidden, cell)``; :func:`carry_from_flax` and :func:`carry_to_flax` convert between them.

The ``from_linen_*`` functions read a params dict, which does not record ``gate_fn`` /
``activation_fn``; :func:`from_linen` also reads the module and checks them. The ``from_nnx_*``
functions read the module and check them. A Flax ``dtype`` (computation dtype) different from the
param dtype is not reproduced: rnnlab computes in the params' dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen, nnx

from rnnlab import activations
from rnnlab.cells import Cell, ElmanParams, GRUParams, LSTMCarry, LSTMParams, RNNCarry, elman, gru, lstm

# Pointwise functions Flax users pass as gate_fn / activation_fn, by identity.
_KNOWN_FNS = (
    (jnp.tanh, "tanh"),
    (jax.nn.tanh, "tanh"),
    (jax.nn.relu, "relu"),
    (jax.nn.sigmoid, "sigmoid"),
    (jax.nn.soft_sign, "softsign"),
    (activations.softsign, "softsign"),
    (activations.identity, "identity"),
)


def _fn_name(fn) -> str | None:
    for known, name in _KNOWN_FNS:
        if fn is known:
            return name
    return None


def _activation(where: str, module, allowed: tuple[str, ...], gated: bool) -> str:
    """The rnnlab name of ``module.activation_fn``; checks ``module.gate_fn`` is the sigmoid."""
    if gated and _fn_name(module.gate_fn) != "sigmoid":
        raise ValueError(
            f"{where}: rnnlab's gates are logistic sigmoids; the Flax cell has gate_fn={module.gate_fn!r}, which "
            f"cannot be represented"
        )
    name = _fn_name(module.activation_fn)
    if name not in allowed:
        raise ValueError(
            f"{where}: activation_fn={module.activation_fn!r} has no rnnlab counterpart for this cell; "
            f"supported: {list(allowed)}"
        )
    return name


def _as_params(where: str, variables, names: tuple[str, ...]) -> Mapping:
    """The cell's params mapping from ``variables`` (``{"params": ...}``, an ``nn.RNN``'s ``{"cell": ...}``
    or the params themselves)."""
    if not isinstance(variables, Mapping):
        raise TypeError(f"{where}: variables must be a dict of Flax params; got {type(variables).__name__}")
    p = variables
    for wrapper in ("params", "cell"):
        if wrapper in p and not any(n in p for n in names):
            p = p[wrapper]
    missing = [n for n in names if n not in p]
    if missing:
        raise ValueError(f"{where}: params must hold the submodules {list(names)}; missing {missing}, got {sorted(p)}")
    return p


def _array(where: str, p: Mapping, module: str, leaf: str, shape: tuple, text: str) -> np.ndarray:
    if leaf not in p[module]:
        raise ValueError(f"{where}: params[{module!r}] has no {leaf!r}; got {sorted(p[module])}")
    a = p[module][leaf]
    if tuple(a.shape) != shape:
        raise ValueError(
            f"{where}: params[{module!r}][{leaf!r}] must have shape {text} = {shape}; got {tuple(a.shape)}"
        )
    return a


def _dtype(where: str, reference, dtype):
    dtype = jnp.dtype(reference.dtype if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: params need a floating dtype; got {dtype}")
    return dtype


def _cat(arrays, dtype) -> jax.Array:
    return jnp.concatenate([jnp.asarray(a, dtype) for a in arrays], axis=-1)


def _sizes(where: str, p: Mapping, i_name: str, h_name: str) -> tuple[int, int]:
    """``(I, H)`` read off the kernels ``p[i_name]`` ``(I, H)`` and ``p[h_name]`` ``(H, H)``."""
    for name in (i_name, h_name):
        if "kernel" not in p[name] or len(p[name]["kernel"].shape) != 2:
            raise ValueError(f"{where}: params[{name!r}] must hold a 2-D 'kernel'")
    H = int(p[h_name]["kernel"].shape[1])
    return int(p[i_name]["kernel"].shape[0]), H


def from_linen_simple_cell(variables, *, residual: bool = False, dtype=None) -> ElmanParams:
    """Converts the params of ``flax.linen.SimpleCell`` to params of :func:`rnnlab.cells.elman`.

    Flax: ``h' = phi(x W_i + b_i + h W_h [+ h])``; rnnlab: ``h' = phi(x W + h U + b)`` with
    ``W = i.kernel (I, H)``, ``b = i.bias (H,)`` and ``U = h.kernel (H, H)``, plus the identity when
    the cell was built with ``residual=True`` (the dict does not record it: pass it here). Build the
    rnnlab cell with the same activation, e.g. ``cells.elman(H, activation="tanh")``.

    Args:
        variables: ``{"params": {"i": ..., "h": ...}}``, its ``"params"`` entry, or the variables of an
            ``nn.RNN`` wrapping the cell.
        residual: the Flax cell's ``residual`` attribute.
        dtype: dtype of the returned arrays; default the Flax params' dtype.

    Returns:
        :class:`~rnnlab.cells.ElmanParams`.

    Example:
        >>> import jax, jax.numpy as jnp, flax.linen as nn, rnnlab
        >>> from rnnlab.interop.flax import from_linen_simple_cell
        >>> flax_cell = nn.SimpleCell(features=4)
        >>> x, h = jnp.ones((2, 3)), jnp.full((2, 4), 0.5)
        >>> variables = flax_cell.init(jax.random.key(0), h, x)
        >>> cell, params = rnnlab.cells.elman(4), from_linen_simple_cell(variables)
        >>> y_flax = flax_cell.apply(variables, h, x)[1]
        >>> y = cell.apply(params, rnnlab.cells.RNNCarry(h), x)[1]
        >>> bool(jnp.allclose(y, y_flax, atol=1e-6))
        True
    """
    where = "from_linen_simple_cell"
    p = _as_params(where, variables, ("i", "h"))
    I, H = _sizes(where, p, "i", "h")
    w = _array(where, p, "i", "kernel", (I, H), "(I, H)")
    u = _array(where, p, "h", "kernel", (H, H), "(H, H)")
    b = _array(where, p, "i", "bias", (H,), "(H,)")
    dtype = _dtype(where, w, dtype)
    u = jnp.asarray(u, dtype)
    if residual:
        u = u + jnp.eye(H, dtype=dtype)
    return ElmanParams(jnp.asarray(w, dtype), u, jnp.asarray(b, dtype))


def from_linen_lstm_cell(variables, *, dtype=None) -> LSTMParams:
    """Converts the params of ``flax.linen.LSTMCell`` or ``OptimizedLSTMCell`` to params of :func:`rnnlab.cells.lstm`.

    Both Flax cells name their params ``ii, if, ig, io`` (input kernels ``(I, H)``, no bias) and
    ``hi, hf, hg, ho`` (recurrent kernels ``(H, H)`` and biases ``(H,)``); the rnnlab params fuse them
    in the same gate order ``i, f, g, o``: ``input_kernel (I, 4H)``, ``recurrent_kernel (H, 4H)``,
    ``bias (4H,)``. The equations are those of ``cells.lstm(H)`` with its default structure.

    Args:
        variables: ``{"params": {...}}``, its ``"params"`` entry, or the variables of an ``nn.RNN``.
        dtype: dtype of the returned arrays; default the Flax params' dtype.

    Returns:
        :class:`~rnnlab.cells.LSTMParams`.

    Example:
        >>> import jax, jax.numpy as jnp, flax.linen as nn, rnnlab
        >>> from rnnlab.interop.flax import carry_from_flax, from_linen_lstm_cell
        >>> flax_cell = nn.OptimizedLSTMCell(features=4)
        >>> x = jnp.ones((2, 3))
        >>> flax_carry = (jnp.full((2, 4), 0.3), jnp.full((2, 4), -0.2))  # (c, h)
        >>> variables = flax_cell.init(jax.random.key(0), flax_carry, x)
        >>> params = from_linen_lstm_cell(variables)
        >>> params.input_kernel.shape, params.recurrent_kernel.shape
        ((3, 16), (4, 16))
        >>> y = rnnlab.cells.lstm(4).apply(params, carry_from_flax(flax_carry), x)[1]
        >>> bool(jnp.allclose(y, flax_cell.apply(variables, flax_carry, x)[1], atol=1e-6))
        True
    """
    where = "from_linen_lstm_cell"
    gates = ("i", "f", "g", "o")
    p = _as_params(where, variables, tuple(f"i{g}" for g in gates) + tuple(f"h{g}" for g in gates))
    I, H = _sizes(where, p, "ii", "hi")
    ws = [_array(where, p, f"i{g}", "kernel", (I, H), "(I, H)") for g in gates]
    us = [_array(where, p, f"h{g}", "kernel", (H, H), "(H, H)") for g in gates]
    bs = [_array(where, p, f"h{g}", "bias", (H,), "(H,)") for g in gates]
    dtype = _dtype(where, ws[0], dtype)
    return LSTMParams(_cat(ws, dtype), _cat(us, dtype), _cat(bs, dtype))


def from_linen_gru_cell(variables, *, dtype=None) -> GRUParams:
    """Converts the params of ``flax.linen.GRUCell`` to params of ``rnnlab.cells.gru(H, reset_after=True)``.

    Flax::

        r = sigmoid(x W_ir + b_ir + h W_hr)
        z = sigmoid(x W_iz + b_iz + h W_hz)
        n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
        h' = (1 - z) * n + z * h

    maps to ``input_kernel = [ir|iz|in].kernel (I, 3H)``, ``recurrent_kernel = [hr|hz|hn].kernel
    (H, 3H)``, ``bias = [ir|iz|in].bias (3H,)`` and ``recurrent_bias = hn.bias (H,)``.

    Args:
        variables: ``{"params": {...}}``, its ``"params"`` entry, or the variables of an ``nn.RNN``.
        dtype: dtype of the returned arrays; default the Flax params' dtype.

    Returns:
        :class:`~rnnlab.cells.GRUParams`.

    Example:
        >>> import jax, jax.numpy as jnp, flax.linen as nn
        >>> from rnnlab.interop.flax import from_linen_gru_cell
        >>> variables = nn.GRUCell(features=4).init(jax.random.key(0), jnp.zeros((4,)), jnp.ones((3,)))
        >>> p = from_linen_gru_cell(variables)
        >>> p.input_kernel.shape, p.recurrent_kernel.shape, p.bias.shape, p.recurrent_bias.shape
        ((3, 12), (4, 12), (12,), (4,))
    """
    where = "from_linen_gru_cell"
    gates = ("r", "z", "n")
    p = _as_params(where, variables, tuple(f"i{g}" for g in gates) + tuple(f"h{g}" for g in gates))
    I, H = _sizes(where, p, "ir", "hr")
    ws = [_array(where, p, f"i{g}", "kernel", (I, H), "(I, H)") for g in gates]
    bs = [_array(where, p, f"i{g}", "bias", (H,), "(H,)") for g in gates]
    us = [_array(where, p, f"h{g}", "kernel", (H, H), "(H, H)") for g in gates]
    b_hn = _array(where, p, "hn", "bias", (H,), "(H,)")
    dtype = _dtype(where, ws[0], dtype)
    return GRUParams(_cat(ws, dtype), _cat(us, dtype), _cat(bs, dtype), jnp.asarray(b_hn, dtype))


def _value(v):
    """The array inside an NNX variable."""
    return v[...] if isinstance(v, nnx.Variable) else v


def _linear(where: str, module, name: str, out: int, bias: bool) -> tuple[jax.Array, jax.Array | None]:
    lin = getattr(module, name, None)
    if lin is None or not hasattr(lin, "kernel"):
        raise ValueError(f"{where}: the module has no Linear attribute {name!r}")
    k = _value(lin.kernel)
    if k.ndim != 2 or k.shape[1] != out:
        raise ValueError(f"{where}: {name}.kernel must have shape (in, {out}); got {tuple(k.shape)}")
    b = getattr(lin, "bias", None)
    b = None if b is None else _value(b)
    if bias and (b is None or tuple(b.shape) != (out,)):
        got = None if b is None else tuple(b.shape)
        raise ValueError(f"{where}: {name}.bias must have shape ({out},); got {got}")
    return k, b


def _check_type(where: str, module, *names: str):
    types = tuple(getattr(nnx, n) for n in names if hasattr(nnx, n))
    if not isinstance(module, types):
        raise TypeError(f"{where}: module must be an nnx.{' or nnx.'.join(names)}; got {type(module).__name__}")


def from_nnx_simple_cell(module, *, dtype=None) -> ElmanParams:
    """Converts an ``nnx.SimpleCell`` to params of ``rnnlab.cells.elman(H, activation=...)``.

    ``W = dense_i.kernel (I, H)``, ``b = dense_i.bias (H,)``, ``U = dense_h.kernel (H, H)``, plus
    ``eye(H)`` when ``module.residual``. The activation must be one rnnlab has (tanh, relu, sigmoid,
    softsign); :func:`from_nnx` also returns the matching cell.

    Args:
        module: the NNX cell.
        dtype: dtype of the returned arrays; default the module's param dtype.

    Returns:
        :class:`~rnnlab.cells.ElmanParams`.

    Example:
        >>> from flax import nnx
        >>> from rnnlab.interop.flax import from_nnx_simple_cell
        >>> p = from_nnx_simple_cell(nnx.SimpleCell(3, 4, rngs=nnx.Rngs(0)))
        >>> p.input_kernel.shape, p.recurrent_kernel.shape, p.bias.shape
        ((3, 4), (4, 4), (4,))
    """
    where = "from_nnx_simple_cell"
    _check_type(where, module, "SimpleCell")
    _activation(where, module, tuple(activations.ACTIVATIONS), gated=False)
    H = int(module.hidden_features)
    w, b = _linear(where, module, "dense_i", H, bias=True)
    u, _ = _linear(where, module, "dense_h", H, bias=False)
    dtype = _dtype(where, w, dtype)
    u = jnp.asarray(u, dtype)
    if module.residual:
        u = u + jnp.eye(H, dtype=dtype)
    return ElmanParams(jnp.asarray(w, dtype), u, jnp.asarray(b, dtype))


def from_nnx_lstm_cell(module, *, dtype=None) -> LSTMParams:
    """Converts an ``nnx.LSTMCell`` or ``nnx.OptimizedLSTMCell`` to params of ``rnnlab.cells.lstm(H)``.

    ``nnx.LSTMCell`` keeps one ``Linear`` per gate (``ii, if_, ig, io`` without bias, ``hi, hf, hg,
    ho`` with bias), fused here in the order ``i, f, g, o``; ``nnx.OptimizedLSTMCell`` keeps them
    fused already (``dense_i (I, 4H)``, ``dense_h (H, 4H)`` with bias ``(4H,)``). ``gate_fn`` must be
    the sigmoid and ``activation_fn`` tanh or softsign (rnnlab's ``input_activation`` and
    ``output_activation`` both; :func:`from_nnx` builds the matching cell).

    Args:
        module: the NNX cell.
        dtype: dtype of the returned arrays; default the module's param dtype.

    Returns:
        :class:`~rnnlab.cells.LSTMParams`.

    Example:
        >>> from flax import nnx
        >>> from rnnlab.interop.flax import from_nnx_lstm_cell
        >>> from_nnx_lstm_cell(nnx.LSTMCell(3, 4, rngs=nnx.Rngs(0))).recurrent_kernel.shape
        (4, 16)
    """
    where = "from_nnx_lstm_cell"
    _check_type(where, module, "LSTMCell", "OptimizedLSTMCell")
    _activation(where, module, ("tanh", "softsign", "identity"), gated=True)
    H = int(module.hidden_features)
    if hasattr(module, "dense_i"):
        w, _ = _linear(where, module, "dense_i", 4 * H, bias=False)
        u, b = _linear(where, module, "dense_h", 4 * H, bias=True)
        dtype = _dtype(where, w, dtype)
        return LSTMParams(jnp.asarray(w, dtype), jnp.asarray(u, dtype), jnp.asarray(b, dtype))
    ws = [_linear(where, module, n, H, bias=False)[0] for n in ("ii", "if_", "ig", "io")]
    hs = [_linear(where, module, n, H, bias=True) for n in ("hi", "hf", "hg", "ho")]
    dtype = _dtype(where, ws[0], dtype)
    return LSTMParams(_cat(ws, dtype), _cat([u for u, _ in hs], dtype), _cat([b for _, b in hs], dtype))


def from_nnx_gru_cell(module, *, dtype=None) -> GRUParams:
    """Converts an ``nnx.GRUCell`` to params of ``rnnlab.cells.gru(H, reset_after=True)``.

    NNX's GRU computes ``n = tanh(x W_n + b_n + r * (h U_n))``: its recurrent ``Linear`` has no bias,
    unlike linen's ``hn``. So ``input_kernel = dense_i.kernel (I, 3H)``, ``bias = dense_i.bias (3H,)``,
    ``recurrent_kernel = dense_h.kernel (H, 3H)`` and ``recurrent_bias = 0 (H,)``.

    Args:
        module: the NNX cell.
        dtype: dtype of the returned arrays; default the module's param dtype.

    Returns:
        :class:`~rnnlab.cells.GRUParams`.

    Example:
        >>> from flax import nnx
        >>> from rnnlab.interop.flax import from_nnx_gru_cell
        >>> p = from_nnx_gru_cell(nnx.GRUCell(3, 4, rngs=nnx.Rngs(0)))
        >>> p.input_kernel.shape, p.recurrent_bias.tolist()
        ((3, 12), [0.0, 0.0, 0.0, 0.0])
    """
    where = "from_nnx_gru_cell"
    _check_type(where, module, "GRUCell")
    _activation(where, module, ("tanh", "softsign"), gated=True)
    H = int(module.hidden_features)
    w, b = _linear(where, module, "dense_i", 3 * H, bias=True)
    u, b_h = _linear(where, module, "dense_h", 3 * H, bias=False)
    dtype = _dtype(where, w, dtype)
    # Flax's dense_h has no bias; should it ever gain one, its r and z parts add to b and its n part is b_hn.
    b = jnp.asarray(b, dtype)
    b_hn = jnp.zeros((H,), dtype)
    if b_h is not None:
        b_h = jnp.asarray(b_h, dtype)
        b = b.at[: 2 * H].add(b_h[: 2 * H])
        b_hn = b_h[2 * H :]
    return GRUParams(jnp.asarray(w, dtype), jnp.asarray(u, dtype), b, b_hn)


def _cell_for(kind: str, H: int, act: str) -> Cell:
    if kind == "simple":
        return elman(H, activation=act)
    if kind == "lstm":
        return lstm(H, input_activation=act, output_activation=act)
    return gru(H, reset_after=True, activation=act)


def from_linen(module, variables, *, dtype=None) -> tuple[Cell, Any]:
    """Builds the rnnlab cell equivalent to a linen cell and converts its params.

    Reads ``gate_fn``, ``activation_fn`` and ``residual`` off ``module`` (a ``nn.SimpleCell``,
    ``nn.LSTMCell``, ``nn.OptimizedLSTMCell`` or ``nn.GRUCell``) and raises where rnnlab cannot
    represent the cell exactly (another gate function, an activation rnnlab lacks, ``nn.MGUCell``,
    ``nn.ConvLSTMCell``).

    Args:
        module: the linen cell.
        variables: its variables, as from ``module.init``.
        dtype: dtype of the returned arrays; default the Flax params' dtype.

    Returns:
        ``(cell, params)``.

    Example:
        >>> import jax, jax.numpy as jnp, flax.linen as nn
        >>> from rnnlab.interop.flax import from_linen
        >>> flax_cell = nn.SimpleCell(features=4, activation_fn=nn.relu)
        >>> variables = flax_cell.init(jax.random.key(0), jnp.zeros((4,)), jnp.ones((3,)))
        >>> cell, params = from_linen(flax_cell, variables)
        >>> cell.name, dict(cell.options)["activation"]
        ('elman', 'relu')
    """
    where = "from_linen"
    if isinstance(module, linen.MGUCell):
        raise ValueError(
            f"{where}: linen.MGUCell computes n = tanh(x W_n + b_n + f * (h U_n + b_hn)) (gate after the matmul), "
            f"rnnlab's mgu n = tanh(x W_n + (f * h) U_n + b_n) (gate before); they are different cells"
        )
    if isinstance(module, linen.SimpleCell):
        act = _activation(where, module, tuple(activations.ACTIVATIONS), gated=False)
        params = from_linen_simple_cell(variables, residual=bool(module.residual), dtype=dtype)
        return _cell_for("simple", int(module.features), act), params
    if isinstance(module, (linen.LSTMCell, linen.OptimizedLSTMCell)):
        act = _activation(where, module, ("tanh", "softsign", "identity"), gated=True)
        return _cell_for("lstm", int(module.features), act), from_linen_lstm_cell(variables, dtype=dtype)
    if isinstance(module, linen.GRUCell):
        act = _activation(where, module, ("tanh", "softsign"), gated=True)
        return _cell_for("gru", int(module.features), act), from_linen_gru_cell(variables, dtype=dtype)
    raise TypeError(
        f"{where}: module must be a linen SimpleCell, LSTMCell, OptimizedLSTMCell or GRUCell; "
        f"got {type(module).__name__}"
    )


def from_nnx(module, *, dtype=None) -> tuple[Cell, Any]:
    """Builds the rnnlab cell equivalent to an NNX cell and converts its params.

    Supports ``nnx.SimpleCell``, ``nnx.LSTMCell``, ``nnx.OptimizedLSTMCell`` and ``nnx.GRUCell``; the
    activation is read off the module and must have an rnnlab counterpart.

    Args:
        module: the NNX cell.
        dtype: dtype of the returned arrays; default the module's param dtype.

    Returns:
        ``(cell, params)``.

    Example:
        >>> import jax, jax.numpy as jnp, rnnlab
        >>> from flax import nnx
        >>> from rnnlab.interop.flax import from_nnx
        >>> flax_cell = nnx.GRUCell(3, 4, rngs=nnx.Rngs(0))
        >>> cell, params = from_nnx(flax_cell)
        >>> h, x = jnp.full((2, 4), 0.5), jnp.ones((2, 3))
        >>> y = cell.apply(params, rnnlab.cells.RNNCarry(h), x)[1]
        >>> bool(jnp.allclose(y, flax_cell(h, x)[1], atol=1e-6))
        True
    """
    where = "from_nnx"
    if isinstance(module, nnx.SimpleCell):
        act = _activation(where, module, tuple(activations.ACTIVATIONS), gated=False)
        return _cell_for("simple", int(module.hidden_features), act), from_nnx_simple_cell(module, dtype=dtype)
    lstm_types = tuple(getattr(nnx, n) for n in ("LSTMCell", "OptimizedLSTMCell") if hasattr(nnx, n))
    if isinstance(module, lstm_types):
        act = _activation(where, module, ("tanh", "softsign", "identity"), gated=True)
        return _cell_for("lstm", int(module.hidden_features), act), from_nnx_lstm_cell(module, dtype=dtype)
    if isinstance(module, nnx.GRUCell):
        act = _activation(where, module, ("tanh", "softsign"), gated=True)
        return _cell_for("gru", int(module.hidden_features), act), from_nnx_gru_cell(module, dtype=dtype)
    raise TypeError(
        f"{where}: module must be an nnx SimpleCell, LSTMCell, OptimizedLSTMCell or GRUCell; "
        f"got {type(module).__name__}"
    )


def carry_from_flax(carry):
    """Converts a Flax cell carry to an rnnlab carry.

    A Flax LSTM carry ``(c, h)`` becomes ``LSTMCarry(hidden=h, cell=c)``; the single array carried by
    ``SimpleCell`` and ``GRUCell`` becomes ``RNNCarry(hidden)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from rnnlab.interop.flax import carry_from_flax, carry_to_flax
        >>> c, h = jnp.zeros(3), jnp.ones(3)
        >>> carry = carry_from_flax((c, h))
        >>> carry.hidden.tolist(), carry.cell.tolist()
        ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
        >>> carry_to_flax(carry)[1].tolist()
        [1.0, 1.0, 1.0]
    """
    if isinstance(carry, (LSTMCarry, RNNCarry)):
        raise TypeError(f"carry_from_flax: the carry is already an rnnlab {type(carry).__name__}")
    if isinstance(carry, (tuple, list)):
        if len(carry) != 2:
            raise ValueError(f"carry_from_flax: a Flax LSTM carry is a pair (c, h); got {len(carry)} entries")
        c, h = carry
        if tuple(c.shape) != tuple(h.shape):
            raise ValueError(f"carry_from_flax: c and h must have the same shape; got {c.shape} and {h.shape}")
        return LSTMCarry(hidden=h, cell=c)
    if not hasattr(carry, "shape"):
        raise TypeError(f"carry_from_flax: expected an array or a pair (c, h); got {type(carry).__name__}")
    return RNNCarry(carry)


def carry_to_flax(carry):
    """Converts an rnnlab carry to a Flax cell carry: ``LSTMCarry`` to ``(c, h)``, ``RNNCarry`` to ``h``."""
    if isinstance(carry, LSTMCarry):
        if carry.gates is not None:
            raise ValueError("carry_to_flax: an LSTMCarry with gate activations has no Flax counterpart")
        return (carry.cell, carry.hidden)
    if isinstance(carry, RNNCarry):
        return carry.hidden
    raise TypeError(f"carry_to_flax: expected an LSTMCarry or RNNCarry; got {type(carry).__name__}")
