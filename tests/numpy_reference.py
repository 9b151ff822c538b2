"""An independent float64 numpy reference of every cell's step, written from the published equations.

Nothing here calls rnnlab. The functions only read the arrays of an rnnlab params NamedTuple (by
field name, converted with ``np.asarray(..., np.float64)``), so a cell that computes something
other than its equations disagrees with this module however its code is organized. The fused
layouts (which columns belong to which gate) are restated here from the rnnlab docstrings.

A reference state is a dict keyed like the rnnlab carry's fields (``hidden``, ``cell``, ``gates``);
every ``*_step(params, state, x, ...)`` returns ``(new_state, y)`` for a batch ``x (B, I)``.

Sources: Elman (1990); Le, Jaitly & Hinton 2015 (IRNN); Hochreiter & Schmidhuber 1997 and Gers et
al. 2000 (LSTM); Greff et al. 2017, "LSTM: A Search Space Odyssey", section 2 and the variant list of
section 3 (peepholes, NIG ... FGR); Ba, Kiros & Hinton 2016 eqs. (20)-(22) (layer-normalized LSTM);
Cho et al. 2014 and the cuDNN/PyTorch "reset after" form (GRU); Zhou et al. 2016 (MGU).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

LN_EPSILON = 1e-5


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def softsign(a):
    return a / (1.0 + np.abs(a))


ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "sigmoid": sigmoid,
    "softsign": softsign,
    "identity": lambda a: a,
}


def layer_norm(a):
    """Ba et al. (2016) eq. (4) over the last axis (population variance), without gain or bias."""
    mu = a.mean(axis=-1, keepdims=True)
    var = ((a - mu) ** 2).mean(axis=-1, keepdims=True)
    return (a - mu) / np.sqrt(var + LN_EPSILON)


def _block(m, k, H):
    """The k-th ``H``-wide block of the last axis."""
    return m[..., k * H : (k + 1) * H]


# ---------------------------------------------------------------------------------------------
# Elman / IRNN:  h_t = phi(x_t W + h_{t-1} U + b)


def elman_step(p, state, x, activation="tanh"):
    W, U, b = f64(p.input_kernel), f64(p.recurrent_kernel), f64(p.bias)
    h = ACTIVATIONS[activation](x @ W + state["hidden"] @ U + b)
    return {"hidden": h}, h


# ---------------------------------------------------------------------------------------------
# LSTM (Greff et al. 2017 notation: z = input activation, y = output):
#   i_t = sigma(x W_i + h_{t-1} R_i + p_i * c_{t-1} + b_i)      (i = 1 without input gate; i = 1 - f for CIFG)
#   f_t = sigma(x W_f + h_{t-1} R_f + p_f * c_{t-1} + b_f)      (f = 1 without forget gate)
#   g_t = act_in(x W_g + h_{t-1} R_g + b_g)
#   c_t = f_t * c_{t-1} + i_t * g_t
#   o_t = sigma(x W_o + h_{t-1} R_o + p_o * c_t + b_o)          (o = 1 without output gate; note c_t, not c_{t-1})
#   h_t = o_t * act_out(c_t)
# FGR adds, to every sigmoid gate's pre-activation, sum over sigmoid gates s of s_{t-1} R_{s->gate}.
# Layer norm (Ba et al. 2016): the fused pre-activations are LN(x W) * a_x + LN(h U) * a_h + b (each LN
# over the whole fused vector of every gate), and h_t = o_t * act_out(LN(c_t) * a_c + b_c).
#
# Layout restated from rnnlab's LSTMParams / LSTMCarry docstrings: gate blocks are fused in the
# order i, f, g, o keeping only the gates that have parameters (CIFG has no i block); peephole rows
# and the FGR blocks follow the order of the sigmoid gates with parameters (i, f, o). The FGR kernel
# is (S*H, S*H): row block = source gate's previous activation, column block = target gate.


@dataclasses.dataclass(frozen=True)
class LSTMSpec:
    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    peepholes: bool = False
    coupled: bool = False
    full_gate_recurrence: bool = False
    input_activation: str = "tanh"
    output_activation: str = "tanh"
    layer_norm: bool = False

    @property
    def gates(self) -> tuple[str, ...]:
        present = {
            "i": self.input_gate and not self.coupled,
            "f": self.forget_gate,
            "g": True,
            "o": self.output_gate,
        }
        return tuple(g for g in "ifgo" if present[g])

    @property
    def sigmoid_gates(self) -> tuple[str, ...]:
        return tuple(g for g in self.gates if g != "g")


# Greff et al. (2017), section 3: every variant is the vanilla LSTM (which has peepholes) with one change.
# "original" is the 1997 LSTM: no forget gate (and no peepholes, which came later).
_VANILLA = LSTMSpec(peepholes=True)
GREFF_VARIANTS = {
    "vanilla": _VANILLA,
    "NIG": dataclasses.replace(_VANILLA, input_gate=False),
    "NFG": dataclasses.replace(_VANILLA, forget_gate=False),
    "NOG": dataclasses.replace(_VANILLA, output_gate=False),
    "NIAF": dataclasses.replace(_VANILLA, input_activation="identity"),
    "NOAF": dataclasses.replace(_VANILLA, output_activation="identity"),
    "NP": dataclasses.replace(_VANILLA, peepholes=False),
    "CIFG": dataclasses.replace(_VANILLA, coupled=True),
    "FGR": dataclasses.replace(_VANILLA, full_gate_recurrence=True),
    "original": LSTMSpec(forget_gate=False),
}


def lstm_step(p, state, x, spec: LSTMSpec = LSTMSpec()):
    h_prev, c_prev = state["hidden"], state["cell"]
    H = h_prev.shape[-1]
    gates = spec.gates
    sig = spec.sigmoid_gates
    xw = x @ f64(p.input_kernel)
    hu = h_prev @ f64(p.recurrent_kernel)
    if spec.layer_norm:
        xw = layer_norm(xw) * f64(p.layer_norm.input_gain)
        hu = layer_norm(hu) * f64(p.layer_norm.recurrent_gain)
    a = xw + hu + f64(p.bias)
    pre = {g: _block(a, k, H) for k, g in enumerate(gates)}
    if spec.full_gate_recurrence and sig:
        gate_in = state["gates"] @ f64(p.gate_recurrent_kernel)
        for k, g in enumerate(sig):
            pre[g] = pre[g] + _block(gate_in, k, H)
    if spec.peepholes and sig:
        P = f64(p.peephole)
        peep = {g: P[k] for k, g in enumerate(sig)}
    else:
        peep = {}

    f = sigmoid(pre["f"] + peep.get("f", 0.0) * c_prev) if spec.forget_gate else 1.0
    if spec.coupled:
        i = 1.0 - f
    elif spec.input_gate:
        i = sigmoid(pre["i"] + peep.get("i", 0.0) * c_prev)
    else:
        i = 1.0
    g = ACTIVATIONS[spec.input_activation](pre["g"])
    c = f * c_prev + i * g
    o = sigmoid(pre["o"] + peep.get("o", 0.0) * c) if spec.output_gate else 1.0
    c_hat = c
    if spec.layer_norm:
        c_hat = layer_norm(c) * f64(p.layer_norm.cell_gain) + f64(p.layer_norm.cell_bias)
    h = o * ACTIVATIONS[spec.output_activation](c_hat)
    new = {"hidden": h, "cell": c, "gates": None}
    if spec.full_gate_recurrence and sig:
        values = {"i": i, "f": f, "o": o}
        new["gates"] = np.concatenate([values[s] for s in sig], axis=-1)
    return new, h


# ---------------------------------------------------------------------------------------------
# GRU, blocks r, z, n:
#   r = sigma(x W_r + h U_r + b_r);  z = sigma(x W_z + h U_z + b_z)
#   n = phi(x W_n + b_n + (r * h) U_n)             Cho et al. 2014 (reset_after=False)
#   n = phi(x W_n + b_n + r * (h U_n + b_hn))      cuDNN / PyTorch (reset_after=True)
#   h' = (1 - z) * n + z * h


def gru_step(p, state, x, reset_after=True, activation="tanh"):
    h = state["hidden"]
    H = h.shape[-1]
    W, U, b = f64(p.input_kernel), f64(p.recurrent_kernel), f64(p.bias)
    Wr, Wz, Wn = (_block(W, k, H) for k in range(3))
    Ur, Uz, Un = (_block(U, k, H) for k in range(3))
    br, bz, bn = (_block(b, k, H) for k in range(3))
    r = sigmoid(x @ Wr + h @ Ur + br)
    z = sigmoid(x @ Wz + h @ Uz + bz)
    if reset_after:
        n = ACTIVATIONS[activation](x @ Wn + bn + r * (h @ Un + f64(p.recurrent_bias)))
    else:
        n = ACTIVATIONS[activation](x @ Wn + bn + (r * h) @ Un)
    h_new = (1.0 - z) * n + z * h
    return {"hidden": h_new}, h_new


# ---------------------------------------------------------------------------------------------
# MGU (Zhou et al. 2016, eqs. 9-11), blocks f, n:
#   f = sigma(x W_f + h U_f + b_f);  n = phi(x W_n + (f * h) U_n + b_n);  h' = (1 - f) * h + f * n


def mgu_step(p, state, x, activation="tanh"):
    h = state["hidden"]
    H = h.shape[-1]
    W, U, b = f64(p.input_kernel), f64(p.recurrent_kernel), f64(p.bias)
    f = sigmoid(x @ _block(W, 0, H) + h @ _block(U, 0, H) + _block(b, 0, H))
    n = ACTIVATIONS[activation](x @ _block(W, 1, H) + (f * h) @ _block(U, 1, H) + _block(b, 1, H))
    h_new = (1.0 - f) * h + f * n
    return {"hidden": h_new}, h_new


def run(step, p, state, xs):
    """Runs ``step`` over ``xs (B, T, I)``; returns the states after every step and ``ys (B, T, H)``."""
    states, ys = [], []
    for t in range(xs.shape[1]):
        state, y = step(p, state, f64(xs[:, t]))
        states.append(state)
        ys.append(y)
    return states, np.stack(ys, axis=1)


# ---------------------------------------------------------------------------------------------
# The cells under test: id -> (registry name, options, reference step). Every registry entry, every
# Elman activation and every LSTM variant has a case (tests/test_cells_numpy.py checks coverage).


@dataclasses.dataclass(frozen=True)
class Case:
    factory: str
    options: dict
    step: object


def _lstm_case(spec=LSTMSpec(), **options):
    return Case("lstm", options, functools.partial(lstm_step, spec=spec))


CASES: dict[str, Case] = {
    **{
        f"elman-{a}": Case("elman", {"activation": a}, functools.partial(elman_step, activation=a))
        for a in ("tanh", "relu", "sigmoid", "softsign", "identity")
    },
    "irnn": Case("irnn", {}, functools.partial(elman_step, activation="relu")),
    "lstm": _lstm_case(),
    **{f"lstm-{v}": _lstm_case(spec, variant=v) for v, spec in GREFF_VARIANTS.items()},
    "lstm-layer_norm": _lstm_case(LSTMSpec(layer_norm=True), layer_norm=True),
    "lstm-softsign": _lstm_case(
        LSTMSpec(input_activation="softsign", output_activation="softsign"),
        input_activation="softsign",
        output_activation="softsign",
    ),
    "lstm-chrono": _lstm_case(chrono_t_max=20.0),
    # Layer norm together with peepholes and full gate recurrence: every LSTM term at once.
    "lstm-FGR-layer_norm": _lstm_case(
        dataclasses.replace(GREFF_VARIANTS["FGR"], layer_norm=True), variant="FGR", layer_norm=True
    ),
    "gru-reset_after": Case("gru", {"reset_after": True}, functools.partial(gru_step, reset_after=True)),
    "gru-reset_before": Case("gru", {"reset_after": False}, functools.partial(gru_step, reset_after=False)),
    "gru-softsign": Case(
        "gru",
        {"reset_after": False, "activation": "softsign"},
        functools.partial(gru_step, reset_after=False, activation="softsign"),
    ),
    "mgu": Case("mgu", {}, mgu_step),
    "mgu-softsign": Case("mgu", {"activation": "softsign"}, functools.partial(mgu_step, activation="softsign")),
}


# ---------------------------------------------------------------------------------------------
# Shared test data (jax is used only to rebuild pytrees): random values for every leaf, so that no
# term of an equation can vanish, e.g. zero-initialized biases, peepholes and layer-norm gains.


def randomize(tree, seed: int, scale: float = 0.5):
    """``tree`` with every array leaf replaced by Normal(0, scale) values of the same shape and dtype."""
    leaves, treedef = jax.tree.flatten(tree)
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(treedef, [jnp.asarray(rng.normal(0.0, scale, a.shape), a.dtype) for a in leaves])


def random_carry(carry, seed: int):
    """A carry NamedTuple like ``carry`` with random values: normal hidden and cell values, previous
    gate activations (LSTM FGR) in (0, 1)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, a in carry._asdict().items():
        if a is None:
            out[name] = None
        elif name == "gates":
            out[name] = jnp.asarray(rng.uniform(0.05, 0.95, a.shape), a.dtype)
        else:
            out[name] = jnp.asarray(rng.normal(0.0, 0.5, a.shape), a.dtype)
    return type(carry)(**out)


def state_of(carry) -> dict:
    """The reference state (float64 numpy) holding the values of an rnnlab carry NamedTuple."""
    return {k: None if v is None else f64(v) for k, v in carry._asdict().items()}
