"""PyTorch nn.RNN / nn.LSTM / nn.GRU weights loaded into rnnlab give the same outputs and final states.

Every dimension has its own size (batch 3, time 7, input 5, hidden 6); PyTorch's default init
gives non-zero biases, and initial states are random, so a misplaced gate block, a transposed
kernel or a dropped bias changes the numbers.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnlab  # noqa: E402
from rnnlab import cells  # noqa: E402
from rnnlab.interop.torch import (  # noqa: E402
    carry_from_torch,
    carry_to_torch,
    from_torch_gru,
    from_torch_layers,
    from_torch_lstm,
    from_torch_module,
    from_torch_rnn,
)

B, T, I, H = 3, 7, 5, 6
ATOL = 1e-5
XS = np.random.default_rng(0).normal(size=(B, T, I)).astype(np.float32)


def _sd(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=ATOL, rtol=0)


def _torch_run(module, xs, h0=None):
    with torch.no_grad():
        x = torch.from_numpy(xs)
        out, state = module(x) if h0 is None else module(x, h0)
    if isinstance(state, tuple):
        return out.numpy(), tuple(s.numpy() for s in state)
    return out.numpy(), state.numpy()


def _random_state(module, seed=1):
    """Random (L*D, B, H) initial states, so the initial-carry mapping is exercised too."""
    rows = module.num_layers * (2 if module.bidirectional else 1)
    rng = np.random.default_rng(seed)
    h0 = rng.normal(size=(rows, B, module.hidden_size)).astype(np.float32)
    if module.mode == "LSTM":
        return h0, rng.normal(size=h0.shape).astype(np.float32)
    return h0


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_matches_torch(nonlinearity):
    torch.manual_seed(0)
    m = torch.nn.RNN(I, H, nonlinearity=nonlinearity, batch_first=True)
    h0 = _random_state(m)
    out, h_n = _torch_run(m, XS, torch.from_numpy(h0))
    cell = cells.elman(H, activation=nonlinearity)
    params = from_torch_rnn(_sd(m))
    carry, ys = rnnlab.unroll(cell, params, jnp.asarray(XS), initial_carry=carry_from_torch(cell, h0))
    _close(ys, out)
    _close(carry.hidden, h_n[0])
    _close(carry_to_torch(carry), h_n)


@pytest.mark.parametrize("hoist_input", [False, True])
def test_lstm_matches_torch(hoist_input):
    torch.manual_seed(1)
    m = torch.nn.LSTM(I, H, batch_first=True)
    h0, c0 = _random_state(m)
    out, (h_n, c_n) = _torch_run(m, XS, (torch.from_numpy(h0), torch.from_numpy(c0)))
    cell = cells.lstm(H)
    params = from_torch_lstm(_sd(m))
    carry0 = carry_from_torch(cell, h0, c0)
    carry, ys = rnnlab.unroll(cell, params, jnp.asarray(XS), initial_carry=carry0, hoist_input=hoist_input)
    _close(ys, out)
    _close(carry.hidden, h_n[0])
    _close(carry.cell, c_n[0])


def test_gru_matches_torch():
    torch.manual_seed(2)
    m = torch.nn.GRU(I, H, batch_first=True)
    h0 = _random_state(m)
    out, h_n = _torch_run(m, XS, torch.from_numpy(h0))
    cell = cells.gru(H, reset_after=True)
    params = from_torch_gru(_sd(m))
    carry, ys = rnnlab.unroll(cell, params, jnp.asarray(XS), initial_carry=carry_from_torch(cell, h0))
    _close(ys, out)
    _close(carry.hidden, h_n[0])


def test_gru_bias_placement():
    """b_hn stays inside the reset product: moving it into ``bias`` would change the outputs."""
    torch.manual_seed(3)
    m = torch.nn.GRU(I, H, batch_first=True)
    params = from_torch_gru(_sd(m))
    b_ih, b_hh = _sd(m)["bias_ih_l0"], _sd(m)["bias_hh_l0"]
    _close(params.bias[: 2 * H], b_ih[: 2 * H] + b_hh[: 2 * H])
    _close(params.bias[2 * H :], b_ih[2 * H :])
    _close(params.recurrent_bias, b_hh[2 * H :])
    wrong = params._replace(bias=params.bias.at[2 * H :].add(params.recurrent_bias), recurrent_bias=0 * params.bias[:H])
    out, _ = _torch_run(m, XS)
    _, ys_wrong = rnnlab.unroll(cells.gru(H), wrong, jnp.asarray(XS))
    assert np.abs(np.asarray(ys_wrong) - out).max() > 1e-3


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_two_layer_time_major_matches_stack(mode):
    torch.manual_seed(4)
    m = getattr(torch.nn, mode)(I, H, num_layers=2)  # time-major, PyTorch's default layout
    xs = np.ascontiguousarray(XS.transpose(1, 0, 2))
    state0 = _random_state(m)
    torch_state0 = tuple(map(torch.from_numpy, state0)) if mode == "LSTM" else torch.from_numpy(state0)
    out, state = _torch_run(m, xs, torch_state0)
    layer, params = from_torch_module(m)
    assert isinstance(layer, rnnlab.Stack) and len(params) == 2
    carry0 = carry_from_torch(layer, *state0) if mode == "LSTM" else carry_from_torch(layer, state0)
    carry, ys = rnnlab.unroll(layer, params, jnp.asarray(xs), initial_carry=carry0, time_major=not m.batch_first)
    _close(ys, out)
    got = carry_to_torch(carry)
    for g, w in zip(got if mode == "LSTM" else (got,), state if mode == "LSTM" else (state,)):
        _close(g, w)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_bidirectional_matches_torch(mode):
    torch.manual_seed(5)
    m = getattr(torch.nn, mode)(I, H, bidirectional=True, batch_first=True)
    out, state = _torch_run(m, XS)
    layer, params = from_torch_module(m)
    assert isinstance(layer, rnnlab.Bidirectional)
    carry, ys = rnnlab.unroll(layer, params, jnp.asarray(XS))
    assert ys.shape == (B, T, 2 * H)
    _close(ys, out)
    h_n = state[0] if mode == "LSTM" else state
    _close(carry.forward.hidden, h_n[0])
    _close(carry.backward.hidden, h_n[1])
    if mode == "LSTM":
        _close(carry.backward.cell, state[1][1])


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_bias_false(mode):
    torch.manual_seed(6)
    m = getattr(torch.nn, mode)(I, H, bias=False, batch_first=True)
    assert not any(k.startswith("bias") for k in m.state_dict())
    out, _ = _torch_run(m, XS)
    layer, params = from_torch_module(m)
    assert float(jnp.abs(params.bias).max()) == 0.0
    _, ys = rnnlab.unroll(layer, params, jnp.asarray(XS))
    _close(ys, out)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_packed_sequences_match_lengths(mode):
    """Variable lengths: rnnlab's ``lengths`` against PyTorch's packed sequences, two bidirectional layers."""
    torch.manual_seed(7)
    m = getattr(torch.nn, mode)(I, H, num_layers=2, bidirectional=True, batch_first=True)
    lengths = np.array([4, 7, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(XS), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        out_packed, state = m(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, batch_first=True, total_length=T)
    layer, params = from_torch_module(m)
    carry, ys = rnnlab.unroll(layer, params, jnp.asarray(XS), lengths=jnp.asarray(lengths))
    _close(ys, out.numpy())
    if mode == "LSTM":
        h_n, c_n = carry_to_torch(carry)
        _close(h_n, state[0].numpy())
        _close(c_n, state[1].numpy())
    else:
        _close(carry_to_torch(carry), state.numpy())


def test_tensors_and_prefix_accepted():
    """Tensors that require grad (from named_parameters) and prefixed submodule keys are read as is."""
    torch.manual_seed(8)
    m = torch.nn.LSTM(I, H)
    tensors = {f"encoder.rnn.{k}": v for k, v in m.named_parameters()}
    assert all(v.requires_grad for v in tensors.values())
    p = from_torch_lstm(tensors, prefix="encoder.rnn.")
    q = from_torch_lstm(_sd(m))
    for a, b in zip(p, q):
        if a is not None:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert from_torch_lstm(_sd(m), dtype=jnp.float16).input_kernel.dtype == jnp.float16


def test_layers_structure():
    torch.manual_seed(9)
    m = torch.nn.GRU(I, H, num_layers=3, bidirectional=True)
    params = from_torch_layers(_sd(m), "gru")
    assert len(params) == 3
    assert params[2].backward.input_kernel.shape == (2 * H, 3 * H)
    np.testing.assert_array_equal(np.asarray(params[1].backward.recurrent_kernel), _sd(m)["weight_hh_l1_reverse"].T)


def test_import_does_not_import_torch():
    code = "import sys, rnnlab.interop.torch, rnnlab.interop; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- errors -------------------------------------------------------------------------------------


def _lstm_sd():
    torch.manual_seed(10)
    return _sd(torch.nn.LSTM(I, H))


def test_missing_key_named():
    sd = _lstm_sd()
    del sd["weight_hh_l0"]
    with pytest.raises(ValueError, match=r"no key 'weight_hh_l0'.*weight_ih_l0"):
        from_torch_lstm(sd)
    with pytest.raises(ValueError, match=r"no key 'weight_hh_l1'"):
        from_torch_lstm(_lstm_sd(), layer=1)
    with pytest.raises(ValueError, match=r"no key 'weight_hh_l0_reverse'"):
        from_torch_lstm(_lstm_sd(), direction=1)


def test_wrong_shapes_named():
    sd = _lstm_sd()
    with pytest.raises(ValueError, match=r"weight_hh_l0'\] must have shape \(3\*H, H\).*got \(24, 6\)"):
        from_torch_gru(sd)  # an LSTM's weights are not a GRU's
    sd["weight_ih_l0"] = sd["weight_ih_l0"][:20]
    with pytest.raises(ValueError, match=r"weight_ih_l0'\] must have shape \(4\*H, I\) = \(24, I\).*got \(20, 5\)"):
        from_torch_lstm(sd)
    sd = _lstm_sd()
    sd["bias_hh_l0"] = sd["bias_hh_l0"][:6]
    with pytest.raises(ValueError, match=r"bias_hh_l0'\] must have shape \(4\*H,\) = \(24,\); got \(6,\)"):
        from_torch_lstm(sd)
    with pytest.raises(ValueError, match=r"must have shape \(4\*H, H\)"):
        from_torch_layers(_sd(torch.nn.GRU(I, 8)), "lstm")


def test_one_bias_missing():
    sd = _lstm_sd()
    del sd["bias_ih_l0"]
    with pytest.raises(ValueError, match=r"has 'bias_hh_l0' but no 'bias_ih_l0'"):
        from_torch_lstm(sd)


def test_proj_size_rejected():
    torch.manual_seed(11)
    m = torch.nn.LSTM(I, H, proj_size=3)
    with pytest.raises(ValueError, match=r"weight_hr_l0.*proj_size > 0"):
        from_torch_lstm(_sd(m))
    with pytest.raises(ValueError, match=r"proj_size"):
        from_torch_module(m)


def test_inconsistent_layers_rejected():
    torch.manual_seed(12)
    sd = _sd(torch.nn.GRU(I, H, num_layers=2))
    sd["weight_ih_l3"] = sd["weight_ih_l1"]
    with pytest.raises(ValueError, match=r"does not use: \['weight_ih_l3'\]"):
        from_torch_layers(sd, "gru")
    with pytest.raises(ValueError, match=r"kind must be one of"):
        from_torch_layers(sd, "lstn")
    with pytest.raises(ValueError, match=r"direction must be 0 \(forward\) or 1"):
        from_torch_gru(sd, direction=2)


def test_carry_errors():
    cell = cells.lstm(H)
    h = np.zeros((1, B, H), np.float32)
    with pytest.raises(ValueError, match=r"c_n is needed"):
        carry_from_torch(cell, h)
    with pytest.raises(ValueError, match=r"L\*D = 2"):
        carry_from_torch(rnnlab.bidirectional(cell), h, h)
    with pytest.raises(ValueError, match=r"c_n was given"):
        carry_from_torch(cells.gru(H), h, h)


def test_module_type_checked():
    with pytest.raises(ValueError, match=r"nn.RNN, nn.LSTM or nn.GRU"):
        from_torch_module(torch.nn.Linear(2, 3))


def test_converted_params_jit():
    """Converted params are ordinary JAX arrays: the unroll jits and differentiates."""
    torch.manual_seed(13)
    params = from_torch_gru(_sd(torch.nn.GRU(I, H)))
    loss = jax.jit(jax.grad(lambda p: jnp.sum(rnnlab.unroll(cells.gru(H), p, jnp.asarray(XS))[1] ** 2)))
    g = loss(params)
    assert g.recurrent_bias.shape == (H,) and float(jnp.abs(g.recurrent_bias).max()) > 0
