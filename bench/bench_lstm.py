"""LSTM training step (forward + backward + Adam update): rnnlab vs Flax vs PyTorch, one run.

Run:  make bench     (or: .venv/bin/python bench/bench_lstm.py --repeats 20)

Every contender runs the same problem: a single-layer LSTM, input I, hidden H, batch B, length T,
loss = mean of the squared outputs, one Adam step. JAX contenders are jitted and timed after
warm-up with ``block_until_ready``; PyTorch runs eagerly with all CPU threads. Reported: the median
time per step over ``--repeats`` steps and its ratio to rnnlab's. rnnlab is timed both ways:
its default (on CPU, the input projection runs inside each step) and ``hoist_input=True`` (one
matmul over all timesteps before the loop, as cuDNN does), to show what hoisting buys here.

This is a benchmark, not a test: it is never run by ``make test`` or CI.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import rnnlab


def _median_seconds(step, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _jax_step(loss_fn, params, xs):
    opt = optax.adam(1e-3)
    state = [params, opt.init(params)]

    @jax.jit
    def train_step(params, opt_state, xs):
        loss, grads = jax.value_and_grad(loss_fn)(params, xs)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def run():
        p, s, loss = train_step(state[0], state[1], xs)
        jax.block_until_ready(loss)
        state[0], state[1] = p, s

    return run


def rnnlab_step(I, H, B, T, hoist_input: bool | None = None):
    cell = rnnlab.cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (T, B, I))

    def loss(params, xs):
        _, ys = rnnlab.unroll(cell, params, xs, time_major=True, hoist_input=hoist_input)
        return jnp.mean(ys**2)

    return _jax_step(loss, params, xs)


def flax_step(I, H, B, T):
    import flax.linen as nn

    model = nn.RNN(nn.OptimizedLSTMCell(H))
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    params = model.init(jax.random.key(0), xs)

    def loss(params, xs):
        return jnp.mean(model.apply(params, xs) ** 2)

    return _jax_step(loss, params, xs)


def torch_step(I, H, B, T):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    lstm = torch.nn.LSTM(I, H)
    opt = torch.optim.Adam(lstm.parameters(), lr=1e-3)
    xs = torch.randn(T, B, I)

    def run():
        opt.zero_grad(set_to_none=True)
        ys, _ = lstm(xs)
        loss = (ys**2).mean()
        loss.backward()
        opt.step()

    return run, torch.__version__


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    shape = (args.input, args.hidden, args.batch, args.length)
    print(f"LSTM train step, I={shape[0]} H={shape[1]} B={shape[2]} T={shape[3]}, median of {args.repeats}")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}"
    )
    results = {"rnnlab": _median_seconds(rnnlab_step(*shape), args.repeats)}
    results["rnnlab, hoist_input=True"] = _median_seconds(rnnlab_step(*shape, hoist_input=True), args.repeats)
    results["flax.linen.RNN(OptimizedLSTMCell)"] = _median_seconds(flax_step(*shape), args.repeats)
    try:
        run, version = torch_step(*shape)
        results[f"torch.nn.LSTM {version} (CPU)"] = _median_seconds(run, args.repeats)
    except ImportError:
        print("torch not installed: `make torch` to include it")
    base = results["rnnlab"]
    print(f"\n{'contender':42s}{'ms/step':>10s}{'vs rnnlab':>12s}")
    for name, sec in results.items():
        print(f"{name:42s}{sec * 1e3:10.2f}{sec / base:11.2f}x")
    return results


if __name__ == "__main__":
    main()
