r"""Loading PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` weights into rnnlab params.

The converters read a state dict whose values are arrays: numpy arrays (``{k: v.detach().numpy()
for k, v in module.state_dict().items()}``), JAX arrays, or torch tensors themselves. This module
never imports torch: a value with a ``detach`` method is converted with ``.detach().cpu().numpy()``
by duck typing, so ``import rnnlab.interop.torch`` works where torch is not installed.

PyTorch stores ``weight_ih_l{k}`` with shape ``(G, I)`` and ``weight_hh_l{k}`` with ``(G, H)``
(``G = n_gates * H``, output rows first) and two biases ``bias_ih_l{k}``, ``bias_hh_l{k}`` of shape
``(G,)``; the reverse direction of a bidirectional module has the suffix ``_reverse``. rnnlab
kernels are ``(in, out)``, so the mapping is::

    input_kernel     = weight_ih.T                      (I, G)
    recurrent_kernel = weight_hh.T                      (H, G)
    bias             = bias_ih + bias_hh                (G,)   RNN and LSTM: the two are always summed

and for the GRU, whose candidate ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` keeps ``b_hn``
inside the reset product (rnnlab's ``gru(reset_after=True)``)::

    bias[:2H]        = bias_ih[:2H] + bias_hh[:2H]      r and z
    bias[2H:]        = bias_ih[2H:]                     b_in
    recurrent_bias   = bias_hh[2H:]                     b_hn

PyTorch's gate orders (LSTM ``i, f, g, o``; GRU ``r, z, n``) are rnnlab's, so the blocks keep
their places. A module built with ``bias=False`` has no bias keys; its biases load as zeros.

Final states: PyTorch's ``h_n`` (and ``c_n``) have shape ``(L * D, B, H)`` with row ``l * D + d``
for layer ``l`` and direction ``d`` (0 forward, 1 reverse); :func:`carry_from_torch` and
:func:`carry_to_torch` convert them to and from rnnlab carries. PyTorch modules are time-major
unless built with ``batch_first=True``: call :func:`rnnlab.unroll` with
``time_major=not module.batch_first``.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab.cells import Cell, ElmanParams, GRUParams, LSTMCarry, LSTMParams, RNNCarry, elman, gru, lstm
from rnnlab.layers import Bidirectional, BidirectionalCarry, BidirectionalParams, Stack, bidirectional, stack

_N_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_GATE_TEXT = {"rnn": "H", "lstm": "4*H", "gru": "3*H"}
_TORCH_KEY = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


def _to_numpy(value) -> np.ndarray:
    """``value`` as a numpy array; torch tensors are recognised by their ``detach`` method."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()  # numpy has no bfloat16; float32 holds every bfloat16 exactly
        value = value.numpy()
    return np.asarray(value)


def _suffix(where: str, layer, direction) -> str:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer < 0:
        raise ValueError(f"{where}: layer must be an int >= 0; got {layer!r}")
    if direction not in (0, 1) or isinstance(direction, bool):
        raise ValueError(
            f"{where}: direction must be 0 (forward) or 1 (reverse, keys ending in '_reverse'); got {direction!r}"
        )
    return f"_l{int(layer)}" + ("_reverse" if direction == 1 else "")


def _lookup(where: str, state_dict, key: str) -> np.ndarray:
    if key not in state_dict:
        torch_keys = sorted(k for k in state_dict if _TORCH_KEY.match(k.rsplit(".", 1)[-1]))
        raise ValueError(f"{where}: state_dict has no key {key!r}; its RNN weight keys are {torch_keys}")
    return _to_numpy(state_dict[key])


def _resolve_dtype(where: str, reference: np.ndarray, dtype):
    dtype = reference.dtype if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: params need a floating dtype; got {dtype} (pass dtype=jnp.float32)")
    return dtype


def _read(where: str, state_dict, kind: str, layer, direction, prefix: str, dtype):
    """Reads and checks one layer/direction; returns ``(w_ih.T, w_hh.T, b_ih, b_hh, H, dtype)`` in numpy."""
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise TypeError(f"{where}: state_dict must be a mapping from names to arrays; got {type(state_dict).__name__}")
    sfx = _suffix(where, layer, direction)
    n, gtext = _N_GATES[kind], _GATE_TEXT[kind]
    k_ih, k_hh = f"{prefix}weight_ih{sfx}", f"{prefix}weight_hh{sfx}"
    k_bih, k_bhh = f"{prefix}bias_ih{sfx}", f"{prefix}bias_hh{sfx}"
    if kind == "lstm" and f"{prefix}weight_hr{sfx}" in state_dict:
        shape = tuple(_to_numpy(state_dict[f"{prefix}weight_hr{sfx}"]).shape)
        raise ValueError(
            f"{where}: state_dict[{prefix + 'weight_hr' + sfx!r}] (shape {shape}) is the projection of an LSTM "
            f"built with proj_size > 0 (h_t = W_hr (o_t * tanh(c_t))); rnnlab's lstm has no output projection"
        )
    w_hh = _lookup(where, state_dict, k_hh)
    if w_hh.ndim != 2 or w_hh.shape[0] != n * w_hh.shape[1]:
        raise ValueError(
            f"{where}: state_dict[{k_hh!r}] must have shape ({gtext}, H) for the {kind.upper()}'s {n} gate "
            f"block(s); got {tuple(w_hh.shape)}"
        )
    H = w_hh.shape[1]
    w_ih = _lookup(where, state_dict, k_ih)
    if w_ih.ndim != 2 or w_ih.shape[0] != n * H:
        raise ValueError(
            f"{where}: state_dict[{k_ih!r}] must have shape ({gtext}, I) = ({n * H}, I) to match "
            f"{k_hh!r} {tuple(w_hh.shape)}; got {tuple(w_ih.shape)}"
        )
    dtype = _resolve_dtype(where, w_ih, dtype)
    present = [k for k in (k_bih, k_bhh) if k in state_dict]
    if len(present) == 1:
        missing = k_bhh if present[0] == k_bih else k_bih
        raise ValueError(
            f"{where}: state_dict has {present[0]!r} but no {missing!r}; a module has both biases (bias=True) "
            f"or neither (bias=False)"
        )
    if present:
        b_ih, b_hh = _lookup(where, state_dict, k_bih), _lookup(where, state_dict, k_bhh)
        for k, b in ((k_bih, b_ih), (k_bhh, b_hh)):
            if b.shape != (n * H,):
                raise ValueError(f"{where}: state_dict[{k!r}] must have shape ({gtext},) = ({n * H},); got {b.shape}")
    else:
        b_ih = b_hh = np.zeros((n * H,), w_ih.dtype)
    return w_ih.T, w_hh.T, b_ih, b_hh, H, dtype


def _j(a: np.ndarray, dtype) -> jax.Array:
    return jnp.asarray(np.ascontiguousarray(a), dtype=dtype)


def from_torch_rnn(state_dict, *, layer: int = 0, direction: int = 0, prefix: str = "", dtype=None) -> ElmanParams:
    """Converts one layer/direction of a PyTorch ``nn.RNN`` to params of :func:`rnnlab.cells.elman`.

    PyTorch: ``h' = phi(x W_ih^T + b_ih + h W_hh^T + b_hh)``; rnnlab: ``h' = phi(x W + h U + b)`` with
    ``W = W_ih^T (I, H)``, ``U = W_hh^T (H, H)``, ``b = b_ih + b_hh (H,)``. The activation is not part of
    the state dict: build the cell with ``cells.elman(H, activation=module.nonlinearity)``.

    Args:
        state_dict: mapping with ``weight_ih_l{k}`` ``(H, I)``, ``weight_hh_l{k}`` ``(H, H)`` and, unless
            the module has ``bias=False``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(H,)``; numpy arrays,
            JAX arrays or torch tensors.
        layer: k, the layer of a multi-layer module.
        direction: 0 forward, 1 the reverse direction of a bidirectional module (keys ``..._reverse``).
        prefix: prepended to every key, e.g. ``"encoder.rnn."`` for a submodule's entries.
        dtype: dtype of the returned arrays; default the dtype of ``weight_ih``.

    Returns:
        :class:`~rnnlab.cells.ElmanParams`.

    Raises:
        ValueError: a key is missing or an array has the wrong shape (the message names both).

    Example:
        >>> import numpy as np
        >>> from rnnlab.interop.torch import from_torch_rnn
        >>> sd = {"weight_ih_l0": np.ones((6, 5), np.float32), "weight_hh_l0": np.eye(6, dtype=np.float32),
        ...       "bias_ih_l0": np.full(6, 0.5, np.float32), "bias_hh_l0": np.full(6, 0.25, np.float32)}
        >>> p = from_torch_rnn(sd)
        >>> p.input_kernel.shape, p.recurrent_kernel.shape, float(p.bias[0])
        ((5, 6), (6, 6), 0.75)
    """
    w, u, b_ih, b_hh, _, dtype = _read("from_torch_rnn", state_dict, "rnn", layer, direction, prefix, dtype)
    return ElmanParams(_j(w, dtype), _j(u, dtype), _j(b_ih + b_hh, dtype))


def from_torch_lstm(state_dict, *, layer: int = 0, direction: int = 0, prefix: str = "", dtype=None) -> LSTMParams:
    """Converts one layer/direction of a PyTorch ``nn.LSTM`` to params of :func:`rnnlab.cells.lstm`.

    Both use the gate order ``i, f, g, o`` and the same equations (no peepholes), so
    ``input_kernel = weight_ih^T (I, 4H)``, ``recurrent_kernel = weight_hh^T (H, 4H)`` and
    ``bias = bias_ih + bias_hh (4H,)``. Use with ``cells.lstm(H)`` (default structure; its
    ``forget_bias`` only affects ``init`` and does not matter for loaded weights).

    Args:
        state_dict: mapping with ``weight_ih_l{k}`` ``(4H, I)``, ``weight_hh_l{k}`` ``(4H, H)`` and,
            unless ``bias=False``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(4H,)``.
        layer, direction, prefix, dtype: as in :func:`from_torch_rnn`.

    Returns:
        :class:`~rnnlab.cells.LSTMParams` (without peepholes, gate recurrence or layer norm).

    Raises:
        ValueError: a key is missing, a shape is wrong, or the module has ``proj_size > 0``
            (key ``weight_hr_l{k}``), which rnnlab's LSTM cannot represent.

    Example:
        >>> import numpy as np
        >>> from rnnlab.interop.torch import from_torch_lstm
        >>> sd = {"weight_ih_l0": np.zeros((24, 5), np.float32), "weight_hh_l0": np.zeros((24, 6), np.float32)}
        >>> p = from_torch_lstm(sd)  # a module built with bias=False
        >>> p.input_kernel.shape, p.recurrent_kernel.shape, p.bias.shape, float(abs(p.bias).max())
        ((5, 24), (6, 24), (24,), 0.0)
    """
    w, u, b_ih, b_hh, _, dtype = _read("from_torch_lstm", state_dict, "lstm", layer, direction, prefix, dtype)
    return LSTMParams(_j(w, dtype), _j(u, dtype), _j(b_ih + b_hh, dtype))


def from_torch_gru(state_dict, *, layer: int = 0, direction: int = 0, prefix: str = "", dtype=None) -> GRUParams:
    """Converts one layer/direction of a PyTorch ``nn.GRU`` to params of ``rnnlab.cells.gru(H, reset_after=True)``.

    PyTorch's GRU::

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h' = (1 - z) * n + z * h

    is rnnlab's ``reset_after=True`` form with ``input_kernel = weight_ih^T (I, 3H)``,
    ``recurrent_kernel = weight_hh^T (H, 3H)``, ``bias = [b_ir + b_hr, b_iz + b_hz, b_in] (3H,)`` and
    ``recurrent_bias = b_hn (H,)``.

    Args:
        state_dict: mapping with ``weight_ih_l{k}`` ``(3H, I)``, ``weight_hh_l{k}`` ``(3H, H)`` and,
            unless ``bias=False``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(3H,)``.
        layer, direction, prefix, dtype: as in :func:`from_torch_rnn`.

    Returns:
        :class:`~rnnlab.cells.GRUParams` with ``recurrent_bias`` set.

    Example:
        >>> import numpy as np
        >>> from rnnlab.interop.torch import from_torch_gru
        >>> sd = {"weight_ih_l0": np.zeros((9, 2), np.float32), "weight_hh_l0": np.zeros((9, 3), np.float32),
        ...       "bias_ih_l0": np.ones(9, np.float32), "bias_hh_l0": np.full(9, 2.0, np.float32)}
        >>> p = from_torch_gru(sd)
        >>> p.bias.tolist(), p.recurrent_bias.tolist()
        ([3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    """
    w, u, b_ih, b_hh, H, dtype = _read("from_torch_gru", state_dict, "gru", layer, direction, prefix, dtype)
    bias = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
    return GRUParams(_j(w, dtype), _j(u, dtype), _j(bias, dtype), _j(b_hh[2 * H :], dtype))


_CONVERTERS = {"rnn": from_torch_rnn, "lstm": from_torch_lstm, "gru": from_torch_gru}


def from_torch_layers(state_dict, kind: str, *, prefix: str = "", dtype=None) -> tuple:
    """Converts a whole (multi-layer, possibly bidirectional) PyTorch RNN state dict.

    The number of layers is read off the keys ``weight_ih_l0, weight_ih_l1, ...``, and the module
    is bidirectional when ``weight_ih_l0_reverse`` exists. Entry ``k`` of the result holds layer
    ``k``'s params: cell params, or :class:`~rnnlab.layers.BidirectionalParams` ``(forward, backward)``
    for a bidirectional module. The tuple is the params of
    ``rnnlab.stack([layer_0, layer_1, ...])``; its single entry for a one-layer module is the params
    of the cell or of ``rnnlab.bidirectional(cell)``.

    Args:
        state_dict: the module's state dict (values as arrays or tensors).
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        prefix: prepended to every key, e.g. ``"rnn."`` for a submodule's entries.
        dtype: dtype of the returned arrays; default that of ``weight_ih_l0``.

    Returns:
        A tuple with one entry per layer.

    Raises:
        ValueError: no ``weight_ih_l0``, an inconsistent set of keys (a layer with only one
            direction, unexpected RNN keys), or a wrong shape.

    Example:
        >>> import numpy as np
        >>> from rnnlab.interop.torch import from_torch_layers
        >>> z = lambda *s: np.zeros(s, np.float32)
        >>> sd = {"weight_ih_l0": z(9, 2), "weight_hh_l0": z(9, 3), "weight_ih_l0_reverse": z(9, 2),
        ...       "weight_hh_l0_reverse": z(9, 3), "weight_ih_l1": z(9, 6), "weight_hh_l1": z(9, 3),
        ...       "weight_ih_l1_reverse": z(9, 6), "weight_hh_l1_reverse": z(9, 3)}
        >>> params = from_torch_layers(sd, "gru")  # nn.GRU(2, 3, num_layers=2, bidirectional=True, bias=False)
        >>> len(params), type(params[1]).__name__, params[1].backward.input_kernel.shape
        (2, 'BidirectionalParams', (6, 9))
    """
    where = "from_torch_layers"
    if kind not in _CONVERTERS:
        raise ValueError(f"{where}: kind must be one of {sorted(_CONVERTERS)}; got {kind!r}")
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"{where}: state_dict must be a mapping from names to arrays; got {type(state_dict).__name__}")
    if f"{prefix}weight_ih_l0" not in state_dict:
        _lookup(where, state_dict, f"{prefix}weight_ih_l0")
    n_layers = 0
    while f"{prefix}weight_ih_l{n_layers}" in state_dict:
        n_layers += 1
    bidir = f"{prefix}weight_ih_l0_reverse" in state_dict
    convert = _CONVERTERS[kind]
    out = []
    for k in range(n_layers):
        has_rev = f"{prefix}weight_ih_l{k}_reverse" in state_dict
        if has_rev != bidir:
            raise ValueError(
                f"{where}: layer 0 is {'bi' if bidir else 'uni'}directional but layer {k} "
                f"{'has' if has_rev else 'lacks'} the key {prefix}weight_ih_l{k}_reverse"
            )
        fwd = convert(state_dict, layer=k, direction=0, prefix=prefix, dtype=dtype)
        out.append(
            BidirectionalParams(fwd, convert(state_dict, layer=k, direction=1, prefix=prefix, dtype=dtype))
            if bidir
            else fwd
        )
    # Keys that belong to an RNN but were not read would be silently dropped weights.
    d = 2 if bidir else 1
    unused = []
    for key in state_dict:
        if not key.startswith(prefix):
            continue
        m = _TORCH_KEY.match(key[len(prefix) :])
        if m and (int(m.group(3)) >= n_layers or (m.group(4) and d == 1) or m.group(2) == "hr"):
            unused.append(key)
    if unused:
        raise ValueError(
            f"{where}: state_dict has RNN keys that a {n_layers}-layer {'bi' if bidir else 'uni'}directional "
            f"{kind.upper()} does not use: {sorted(unused)}"
        )
    return tuple(out)


def from_torch_module(module, *, dtype=None) -> tuple[Any, Any]:
    """Builds the rnnlab layer equivalent to a PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and its params.

    The module is read by duck typing (``mode``, ``hidden_size``, ``num_layers``, ``bidirectional``,
    ``proj_size``, ``dropout``, ``state_dict()``), so torch is not imported here.

    Returns a :class:`~rnnlab.cells.Cell` (one layer, one direction), a
    :class:`~rnnlab.layers.Bidirectional` (one bidirectional layer) or a
    :class:`~rnnlab.layers.Stack` (several layers, with the module's inter-layer ``dropout``, which
    :func:`rnnlab.unroll` applies only when given a ``dropout_key``). Run it with
    ``rnnlab.unroll(layer, params, xs, time_major=not module.batch_first)``.

    Args:
        module: a ``torch.nn.RNN``, ``torch.nn.LSTM`` or ``torch.nn.GRU``.
        dtype: dtype of the returned arrays; default that of the weights.

    Returns:
        ``(layer, params)``.

    Raises:
        ValueError: an unknown ``mode`` or ``proj_size > 0``.
    """
    where = "from_torch_module"
    mode = getattr(module, "mode", None)
    kinds = {"RNN_TANH": ("rnn", "tanh"), "RNN_RELU": ("rnn", "relu"), "LSTM": ("lstm", None), "GRU": ("gru", None)}
    if mode not in kinds:
        raise ValueError(
            f"{where}: module must be a torch nn.RNN, nn.LSTM or nn.GRU (mode in {sorted(kinds)}); "
            f"got {type(module).__name__} with mode {mode!r}"
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(f"{where}: LSTMs with proj_size > 0 are not supported; got proj_size={module.proj_size}")
    kind, activation = kinds[mode]
    H = int(module.hidden_size)
    cell = {"rnn": lambda: elman(H, activation=activation), "lstm": lambda: lstm(H), "gru": lambda: gru(H)}[kind]()
    layer = bidirectional(cell) if module.bidirectional else cell
    params = from_torch_layers(module.state_dict(), kind, dtype=dtype)
    if len(params) == 1:
        return layer, params[0]
    return stack([layer] * len(params), dropout=float(module.dropout)), params


def _carry_slots(where: str, layer) -> list[tuple[Cell, tuple]]:
    """The (cell, path) pairs of a layer in PyTorch's ``h_n`` row order (layer-major, forward first)."""
    if isinstance(layer, Cell):
        return [(layer, ())]
    if isinstance(layer, Bidirectional):
        return [(layer.forward, ("forward",)), (layer.backward, ("backward",))]
    if isinstance(layer, Stack):
        return [(c, (k, *path)) for k, sub in enumerate(layer.layers) for c, path in _carry_slots(where, sub)]
    raise TypeError(f"{where}: layer must be a Cell, Bidirectional or Stack; got {type(layer).__name__}")


def carry_from_torch(layer, h_n, c_n=None):
    """Converts PyTorch final/initial states ``h_n`` (and ``c_n``) into the carry of an rnnlab ``layer``.

    Row ``l * D + d`` of ``h_n`` ``(L * D, B, H)`` (or ``(L * D, H)`` unbatched) is the state of
    layer ``l``, direction ``d``; the result has the structure of ``layer.initial_carry``: an
    :class:`~rnnlab.cells.RNNCarry` or :class:`~rnnlab.cells.LSTMCarry` per cell, a
    :class:`~rnnlab.layers.BidirectionalCarry` per bidirectional layer, a tuple for a stack.

    Args:
        layer: the rnnlab layer (e.g. from :func:`from_torch_module`) made of ``elman``, ``gru`` or
            ``lstm`` cells.
        h_n: hidden states, array or tensor.
        c_n: cell states of an LSTM (same shape as ``h_n``); must be None otherwise.

    Returns:
        The carry, usable as ``initial_carry`` of :func:`rnnlab.unroll` or to compare with its final carry.

    Example:
        >>> import numpy as np, rnnlab
        >>> from rnnlab.interop.torch import carry_from_torch
        >>> layer = rnnlab.bidirectional(rnnlab.cells.lstm(3))
        >>> carry = carry_from_torch(layer, np.zeros((2, 4, 3), np.float32), np.ones((2, 4, 3), np.float32))
        >>> carry.backward.cell.shape, float(carry.backward.cell[0, 0])
        ((4, 3), 1.0)
    """
    where = "carry_from_torch"
    slots = _carry_slots(where, layer)
    h = _to_numpy(h_n)
    c = None if c_n is None else _to_numpy(c_n)
    is_lstm = [cell.name == "lstm" for cell, _ in slots]
    for cell, _ in slots:
        if cell.name not in ("lstm", "gru", "elman"):
            raise ValueError(f"{where}: PyTorch has no counterpart of an rnnlab {cell.name!r} cell")
        if cell.name == "lstm" and dict(cell.options).get("full_gate_recurrence"):
            raise ValueError(f"{where}: an lstm with full_gate_recurrence carries gate activations PyTorch lacks")
    if h.ndim not in (2, 3) or h.shape[0] != len(slots):
        raise ValueError(
            f"{where}: h_n must have shape (L*D, B, H) or (L*D, H) with L*D = {len(slots)} for this layer; "
            f"got {tuple(h.shape)}"
        )
    if any(is_lstm) and c is None:
        raise ValueError(f"{where}: the layer has LSTM cells, so c_n is needed besides h_n")
    if not any(is_lstm) and c is not None:
        raise ValueError(f"{where}: c_n was given but the layer has no LSTM cell")
    if c is not None and c.shape != h.shape:
        raise ValueError(f"{where}: c_n must have the shape of h_n {tuple(h.shape)}; got {tuple(c.shape)}")

    def piece(row, cell):
        if cell.name == "lstm":
            return LSTMCarry(jnp.asarray(h[row]), jnp.asarray(c[row]))
        return RNNCarry(jnp.asarray(h[row]))

    pieces = iter(piece(row, cell) for row, (cell, _) in enumerate(slots))

    def build(sub):
        if isinstance(sub, Cell):
            return next(pieces)
        if isinstance(sub, Bidirectional):
            return BidirectionalCarry(next(pieces), next(pieces))
        return tuple(build(s) for s in sub.layers)

    return build(layer)


def carry_to_torch(carry):
    """Converts an rnnlab carry into PyTorch's ``h_n`` (and ``c_n`` for LSTM carries).

    The inverse of :func:`carry_from_torch`: cells are visited layer by layer, forward before
    backward, and their states stacked on a new leading axis ``(L * D, ...)``.

    Args:
        carry: an :class:`~rnnlab.cells.RNNCarry`, :class:`~rnnlab.cells.LSTMCarry`,
            :class:`~rnnlab.layers.BidirectionalCarry` or a tuple of them (a stack's carry).

    Returns:
        ``h_n``, or ``(h_n, c_n)`` when the carry holds LSTM states.

    Example:
        >>> import jax.numpy as jnp
        >>> from rnnlab.cells import LSTMCarry
        >>> from rnnlab.interop.torch import carry_to_torch
        >>> h_n, c_n = carry_to_torch((LSTMCarry(jnp.zeros((4, 3)), jnp.ones((4, 3))),) * 2)
        >>> h_n.shape, c_n.shape
        ((2, 4, 3), (2, 4, 3))
    """
    where = "carry_to_torch"
    hs, cs = [], []

    def visit(node):
        if isinstance(node, LSTMCarry):
            if node.gates is not None:
                raise ValueError(f"{where}: an LSTMCarry with gate activations has no PyTorch counterpart")
            hs.append(node.hidden)
            cs.append(node.cell)
        elif isinstance(node, RNNCarry):
            hs.append(node.hidden)
        elif isinstance(node, BidirectionalCarry):
            visit(node.forward)
            visit(node.backward)
        elif isinstance(node, tuple) and not hasattr(node, "_fields"):
            for sub in node:
                visit(sub)
        else:
            raise TypeError(f"{where}: expected RNNCarry, LSTMCarry, BidirectionalCarry or a tuple; got {type(node)}")

    visit(carry)
    if cs and len(cs) != len(hs):
        raise ValueError(f"{where}: the carry mixes LSTM and single-state cells; PyTorch modules do not")
    h_n = jnp.stack(hs)
    return (h_n, jnp.stack(cs)) if cs else h_n
