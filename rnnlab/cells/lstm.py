"""Long short-term memory cells and the variants of Greff et al. (2017)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnlab import _checks, activations, initializers
from rnnlab.cells import _base
from rnnlab.cells._base import Cell, batch_shape_tuple, check_init_args, lead, params_dtype
from rnnlab.precision import matmul

LAYER_NORM_EPSILON = 1e-5


class LSTMCarry(NamedTuple):
    """The carry of :func:`lstm`.

    Attributes:
        hidden: h_t, shape ``(..., H)``.
        cell: c_t, shape ``(..., H)``.
        gates: the previous sigmoid gate activations ``(..., S*H)``, only with
            ``full_gate_recurrence``; ``None`` otherwise.
    """

    hidden: jax.Array
    cell: jax.Array
    gates: jax.Array | None = None


class LayerNormParams(NamedTuple):
    """Gains of the layer-normalized LSTM (Ba, Kiros & Hinton 2016), shapes ``(G,)``, ``(G,)``, ``(H,)``, ``(H,)``."""

    input_gain: jax.Array
    recurrent_gain: jax.Array
    cell_gain: jax.Array
    cell_bias: jax.Array


class LSTMParams(NamedTuple):
    """Parameters of :func:`lstm`; gates are fused in the order ``i, f, g, o`` (PyTorch's order),
    keeping only the gates the variant has, so ``G = n_gates * H``.

    Attributes:
        input_kernel: W, shape ``(I, G)``.
        recurrent_kernel: U, shape ``(H, G)``.
        bias: b, shape ``(G,)``.
        peephole: diagonal peephole weights ``(P, H)`` for the gates ``i, f, o`` that exist, or None.
        gate_recurrent_kernel: ``(S*H, S*H)`` from the previous sigmoid gates to their
            pre-activations (full gate recurrence), or None.
        layer_norm: :class:`LayerNormParams` or None.
    """

    input_kernel: jax.Array
    recurrent_kernel: jax.Array
    bias: jax.Array
    peephole: jax.Array | None = None
    gate_recurrent_kernel: jax.Array | None = None
    layer_norm: LayerNormParams | None = None


# Structural options of each named variant. Greff et al. (2017) define their eight variants
# relative to a "vanilla" LSTM that has peephole connections.
VARIANTS: dict[str, dict] = {
    "vanilla": dict(peepholes=True),
    "NIG": dict(peepholes=True, input_gate=False),
    "NFG": dict(peepholes=True, forget_gate=False),
    "NOG": dict(peepholes=True, output_gate=False),
    "NIAF": dict(peepholes=True, input_activation="identity"),
    "NOAF": dict(peepholes=True, output_activation="identity"),
    "NP": dict(peepholes=False),
    "CIFG": dict(peepholes=True, coupled=True),
    "FGR": dict(peepholes=True, full_gate_recurrence=True),
    "original": dict(forget_gate=False),
}

_STRUCTURE_DEFAULTS = dict(
    input_gate=True,
    forget_gate=True,
    output_gate=True,
    peepholes=False,
    coupled=False,
    full_gate_recurrence=False,
    input_activation="tanh",
    output_activation="tanh",
)

_ACTIVATION_CHOICES = ("tanh", "softsign", "identity")


def _layer_norm(z: jax.Array) -> jax.Array:
    mean = jnp.mean(z, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(z - mean), axis=-1, keepdims=True)
    return (z - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPSILON)


def lstm(
    hidden_size: int,
    *,
    forget_bias: float = 1.0,
    chrono_t_max: float | None = None,
    variant: str | None = None,
    input_gate: bool | None = None,
    forget_gate: bool | None = None,
    output_gate: bool | None = None,
    peepholes: bool | None = None,
    coupled: bool | None = None,
    full_gate_recurrence: bool | None = None,
    input_activation: str | None = None,
    output_activation: str | None = None,
    layer_norm: bool = False,
    input_init="glorot_uniform",
    recurrent_init="orthogonal",
    gate_recurrent_init="orthogonal",
) -> Cell:
    r"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

    With every option at its default::

        i_t = sigmoid(x_t W_i + h_{t-1} U_i + b_i)            input gate
        f_t = sigmoid(x_t W_f + h_{t-1} U_f + b_f)            forget gate
        g_t = tanh(x_t W_g + h_{t-1} U_g + b_g)               cell input ("input activation")
        o_t = sigmoid(x_t W_o + h_{t-1} U_o + b_o)            output gate
        c_t = f_t * c_{t-1} + i_t * g_t                       additive cell update
        h_t = o_t * tanh(c_t)                                 ("output activation")

    and ``y_t = h_t``. Shapes: ``x_t (..., I)``, ``h_t, c_t (..., H)``; see :class:`LSTMParams`.
    Along the cell path ``dc_t/dc_{t-1} = diag(f_t)``: with ``f`` near 1 error is carried over long
    lags (the constant error carousel).

    Options that change the structure:

    * ``peepholes``: ``+ p_i * c_{t-1}`` and ``+ p_f * c_{t-1}`` in the i and f pre-activations,
      ``+ p_o * c_t`` in o (Gers & Schmidhuber 2000).
    * ``input_gate=False``: i = 1. ``forget_gate=False``: f = 1. ``output_gate=False``: o = 1.
    * ``coupled`` (CIFG): ``i_t = 1 - f_t``, no input-gate parameters. (Greff et al. write the
      coupling as ``f = 1 - i``; the two are the same family. Here the forget gate owns the weights,
      so ``forget_bias`` and chrono initialize it.)
    * ``full_gate_recurrence`` (FGR): the previous activations of the sigmoid gates feed every
      sigmoid gate's pre-activation through a matrix ``(S*H, S*H)``.
    * ``input_activation`` / ``output_activation``: ``"tanh"``, ``"softsign"`` or ``"identity"``.
    * ``layer_norm`` (Ba et al. 2016): pre-activations ``LN(x W) * a_x + LN(h U) * a_h + b`` and
      ``h_t = o_t * tanh(LN(c_t) * a_c + b_c)``.
    * ``variant``: one of Greff et al.'s (2017) ``"vanilla"`` (with peepholes), ``"NIG"``,
      ``"NFG"``, ``"NOG"``, ``"NIAF"``, ``"NOAF"``, ``"NP"``, ``"CIFG"``, ``"FGR"``, or
      ``"original"`` (1997: no forget gate, no peepholes). A variant fixes the structural options;
      passing one of them as well raises.

    Args:
        hidden_size: H > 0.
        forget_bias: initial b_f, default 1.0. With zero bias and small weights f ~ 0.5 and error
            along the cell path halves every step; a bias of 1 (Gers et al. 2000; Jozefowicz et
            al. 2015, who found it closes the gap to the GRU) starts f ~ 0.73 so early gradients
            reach further back. Gers et al. also used 5 for very long lags.
        chrono_t_max: if given, chrono initialization (Tallec & Ollivier 2018):
            ``b_f ~ log(U[1, T_max - 1])`` and ``b_i = -b_f``, so unit timescales spread over
            ``[1, T_max]``; ``forget_bias`` is then unused. Needs T_max >= 2 and a forget gate.
        layer_norm: see above.
        input_init: initializer of each ``(I, H)`` gate block of W; default Glorot uniform.
        recurrent_init: initializer of each ``(H, H)`` gate block of U; default orthogonal.
        gate_recurrent_init: initializer of each ``(S*H, H)`` block of the full-gate-recurrence
            matrix; default orthogonal (columns orthonormal). Unused without FGR.
        Other arguments: see the structural options above (None means the default/variant's value).

    Returns:
        A :class:`Cell` whose carry is :class:`LSTMCarry`. Its ``gates`` returns the sigmoid gates
        the variant has, of ``"i"`` (also for CIFG, as ``1 - f``), ``"f"`` and ``"o"``.

    Raises:
        ValueError: unknown variant or activation, contradictory options, bad sizes, a non-finite
            ``forget_bias`` or ``chrono_t_max``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rnnlab import cells
        >>> cell = cells.lstm(8, variant="CIFG")
        >>> params = cell.init(jax.random.key(0), input_size=3)
        >>> params.input_kernel.shape  # f, g, o: CIFG has no input-gate parameters
        (3, 24)
        >>> carry, y = cell.apply(params, cell.initial_carry(params), jnp.ones(3))
        >>> y.shape
        (8,)
    """
    where = "lstm"
    hidden_size = _checks.dimension(where, "hidden_size", hidden_size)
    forget_bias = _base.finite_number(where, "forget_bias", forget_bias)
    given = dict(
        input_gate=input_gate,
        forget_gate=forget_gate,
        output_gate=output_gate,
        peepholes=peepholes,
        coupled=coupled,
        full_gate_recurrence=full_gate_recurrence,
        input_activation=input_activation,
        output_activation=output_activation,
    )
    opts = dict(_STRUCTURE_DEFAULTS)
    if variant is not None:
        _checks.choice(where, "variant", variant, VARIANTS)
        clash = sorted(k for k, v in given.items() if v is not None)
        if clash:
            raise ValueError(f"{where}: variant={variant!r} fixes the structural options; do not also pass {clash}")
        opts.update(VARIANTS[variant])
    else:
        opts.update({k: v for k, v in given.items() if v is not None})
    for k in ("input_gate", "forget_gate", "output_gate", "peepholes", "coupled", "full_gate_recurrence"):
        if not isinstance(opts[k], bool):
            raise TypeError(f"{where}: {k} must be a bool; got {opts[k]!r}")
    act_in = activations.get(opts["input_activation"], f"{where}: input_activation", _ACTIVATION_CHOICES)
    act_out = activations.get(opts["output_activation"], f"{where}: output_activation", _ACTIVATION_CHOICES)
    if opts["coupled"] and not opts["forget_gate"]:
        raise ValueError(f"{where}: coupled=True (i = 1 - f) needs a forget gate; got forget_gate=False")
    if opts["coupled"] and not opts["input_gate"]:
        raise ValueError(f"{where}: coupled=True derives the input gate from f; input_gate=False contradicts it")
    if chrono_t_max is not None:
        chrono_t_max = _base.finite_number(where, "chrono_t_max", chrono_t_max)
        if chrono_t_max < 2:
            raise ValueError(f"{where}: chrono_t_max must be >= 2 (b_f ~ log U[1, T_max - 1]); got {chrono_t_max}")
        if not opts["forget_gate"]:
            raise ValueError(f"{where}: chrono_t_max initializes the forget gate, but this LSTM has none")
    if not isinstance(layer_norm, bool):
        raise TypeError(f"{where}: layer_norm must be a bool; got {layer_norm!r}")
    w_init = initializers.get(input_init, where, "input_init")
    u_init = _base.recurrent_init(where, recurrent_init, None)
    r_init = initializers.get(gate_recurrent_init, where, "gate_recurrent_init")

    layout = _gate_layout(opts)
    has_i, has_f, has_o = "i" in layout, "f" in layout, "o" in layout
    sigmoid_gates = tuple(g for g in layout if g != "g")
    H = hidden_size
    G = len(layout) * H
    S = len(sigmoid_gates)
    offset = {g: k * H for k, g in enumerate(layout)}
    peep_row = {g: k for k, g in enumerate(sigmoid_gates)}
    fgr = opts["full_gate_recurrence"] and S > 0
    use_peep = opts["peepholes"] and S > 0

    def init(key, input_size, dtype=jnp.float32):
        input_size = check_init_args(where, input_size, dtype)
        k_w, k_u, k_b, k_r = jax.random.split(key, 4)
        bias = jnp.zeros((G,), dtype)
        if has_f:
            if chrono_t_max is not None:
                b_f = jnp.log(jax.random.uniform(k_b, (H,), dtype, 1.0, chrono_t_max - 1.0))
            else:
                b_f = jnp.full((H,), forget_bias, dtype)
            bias = bias.at[offset["f"] : offset["f"] + H].set(b_f)
            if chrono_t_max is not None and has_i:
                bias = bias.at[offset["i"] : offset["i"] + H].set(-b_f)
        return LSTMParams(
            input_kernel=initializers.blocks(w_init, k_w, input_size, H, len(layout), dtype),
            recurrent_kernel=initializers.blocks(u_init, k_u, H, H, len(layout), dtype),
            bias=bias,
            peephole=jnp.zeros((S, H), dtype) if use_peep else None,
            gate_recurrent_kernel=initializers.blocks(r_init, k_r, S * H, H, S, dtype) if fgr else None,
            layer_norm=LayerNormParams(
                jnp.ones((G,), dtype), jnp.ones((G,), dtype), jnp.ones((H,), dtype), jnp.zeros((H,), dtype)
            )
            if layer_norm
            else None,
        )

    def initial_carry(params, batch_shape=()):
        batch_shape = batch_shape_tuple("initial_carry", batch_shape)
        z = jnp.zeros((*batch_shape, H), params_dtype(params))
        gz = jnp.zeros((*batch_shape, S * H), z.dtype) if fgr else None
        return LSTMCarry(z, z, gz)

    initial_carry.carry_type = LSTMCarry  # what Cell.apply checks its carry against

    def project(params, x):
        xw = matmul(x, params.input_kernel)
        if layer_norm:
            xw = _layer_norm(xw) * lead(params.layer_norm.input_gain, xw)
        return xw + lead(params.bias, xw)

    def forward(params, carry, xp, rec=None):
        """One step: ``(new carry, y, gates)``, the single copy of the math behind ``step``, ``gates``
        and ``combine`` (which passes ``rec = h @ U``)."""
        c_prev = carry.cell
        rec = matmul(carry.hidden, params.recurrent_kernel) if rec is None else rec
        if layer_norm:
            rec = _layer_norm(rec) * lead(params.layer_norm.recurrent_gain, rec)
        z = xp + rec
        gate_rec = matmul(carry.gates, params.gate_recurrent_kernel) if fgr else None
        # One split rather than one slice per gate: its transpose is a single concatenate, which
        # XLA:CPU emits far faster than the sum of padded slices that separate slices transpose to.
        z_parts = dict(zip(layout, jnp.split(z, len(layout), axis=-1)))
        gate_rec_parts = jnp.split(gate_rec, S, axis=-1) if fgr else None

        def pre(g):
            a = z_parts[g]
            if fgr and g != "g":
                a = a + gate_rec_parts[peep_row[g]]
            return a

        def peep(g, c):
            return lead(params.peephole[peep_row[g]], c) * c if use_peep else 0.0

        f = jax.nn.sigmoid(pre("f") + peep("f", c_prev)) if has_f else None
        if opts["coupled"]:
            i = 1.0 - f
        else:
            i = jax.nn.sigmoid(pre("i") + peep("i", c_prev)) if has_i else None
        g = act_in(pre("g"))
        c = (c_prev if f is None else f * c_prev) + (g if i is None else i * g)
        c_out = c
        if layer_norm:
            ln = params.layer_norm
            c_out = _layer_norm(c) * lead(ln.cell_gain, c) + lead(ln.cell_bias, c)
        o = jax.nn.sigmoid(pre("o") + peep("o", c)) if has_o else None
        h = act_out(c_out) if o is None else o * act_out(c_out)
        # i is present for CIFG as well (i = 1 - f); a gate fixed at 1 by the variant is absent.
        values = {k: v for k, v in (("i", i), ("f", f), ("o", o)) if v is not None}
        new_gates = jnp.concatenate([values[s] for s in sigmoid_gates], axis=-1) if fgr else None
        return LSTMCarry(h, c, new_gates), h, values

    def step(params, carry, xp):
        return forward(params, carry, xp)[:2]

    def gates(params, carry, xp):
        return forward(params, carry, xp)[2]

    def combine(params, carry, xp, rec):
        return forward(params, carry, xp, rec)[:2]

    options = dict(
        forget_bias=forget_bias,
        chrono_t_max=chrono_t_max,
        variant=variant,
        layer_norm=layer_norm,
        input_init=input_init,
        recurrent_init=recurrent_init,
        gate_recurrent_init=gate_recurrent_init,
        **opts,
    )
    # z = xp + rec is all combine reads of the two, unless layer norm normalizes rec on its own.
    additive = not layer_norm
    init = _base.sampled_in_float32(init)
    return Cell(
        init, initial_carry, project, step, hidden_size, where, tuple(options.items()), gates, combine, additive
    )


def _gate_layout(opts: dict) -> tuple[str, ...]:
    """The gates present, in fused order: ``i`` (own input gate), ``f``, ``g``, ``o``."""
    present = (
        ("i", opts["input_gate"] and not opts["coupled"]),
        ("f", opts["forget_gate"]),
        ("g", True),
        ("o", opts["output_gate"]),
    )
    return tuple(g for g, p in present if p)


def gate_names(cell: Cell) -> tuple[str, ...]:
    """The fused gate order of an :func:`lstm` cell's kernels, e.g. ``("i", "f", "g", "o")``.

    Example:
        >>> from rnnlab import cells
        >>> cells.gate_names(cells.lstm(4, variant="CIFG"))
        ('f', 'g', 'o')
    """
    if cell.name != "lstm":
        raise ValueError(f"gate_names: cell must be an lstm cell; got {cell.name!r}")
    return _gate_layout(dict(cell.options))
