"""How far back does the gradient reach at initialization? A one-minute look.

Run:  make demo      (or: .venv/bin/python experiments/demo.py --length 100 --seeds 3)

For a loss on the last output of a length-T sequence, prints ||dL/dx_t|| against the lag T - t
for tanh RNNs (orthogonal and PyTorch-style uniform recurrent init) and for LSTMs with forget bias
0, 1 and chrono initialization, averaged over seeds, with the ratio between the gradient reaching
the first step and the last. How fast the error signal decays with the lag depends on the cell and
on its initialization; the vanishing-gradient experiment measures it on a real task.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab

INPUT_SIZE, HIDDEN = 2, 64


def _cells(length: int) -> dict[str, rnnlab.Cell]:
    return {
        "tanh RNN, orthogonal": rnnlab.cells.elman(HIDDEN),
        "tanh RNN, uniform": rnnlab.cells.elman(HIDDEN, recurrent_init="uniform", input_init="uniform"),
        "LSTM, forget bias 0": rnnlab.cells.lstm(HIDDEN, forget_bias=0.0),
        "LSTM, forget bias 1": rnnlab.cells.lstm(HIDDEN, forget_bias=1.0),
        "LSTM, chrono": rnnlab.cells.lstm(HIDDEN, chrono_t_max=length),
    }


def input_gradient_norms(cell: rnnlab.Cell, key: jax.Array, length: int, batch: int = 16) -> jax.Array:
    """``||dL/dx_t||`` averaged over a batch, ``(T,)``, for ``L = sum(y_T)`` at initialization."""
    k_init, k_x = jax.random.split(key)
    params = cell.init(k_init, INPUT_SIZE)
    xs = jax.random.uniform(k_x, (batch, length, INPUT_SIZE))

    def loss(xs):
        _, ys = rnnlab.unroll(cell, params, xs)
        return jnp.sum(ys[:, -1])

    grads = jax.grad(loss)(xs)
    return jnp.mean(jnp.linalg.norm(grads, axis=-1), axis=0)


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    lags = [0, 1, 5, 10, 25, 50, args.length - 1]
    lags = sorted({lag for lag in lags if lag < args.length})
    print(f"||dL/dx_t|| at initialization, T = {args.length}, H = {HIDDEN}, mean over {args.seeds} seeds\n")
    print(f"{'cell':22s}" + "".join(f"{'lag ' + str(lag):>11s}" for lag in lags) + f"{'first/last':>12s}")
    ratios = {}
    for name, cell in _cells(args.length).items():
        fn = jax.jit(lambda k, cell=cell: input_gradient_norms(cell, k, args.length))
        norms = np.mean([np.asarray(fn(jax.random.key(s))) for s in range(args.seeds)], axis=0)
        by_lag = norms[::-1]  # lag T - 1 - t
        ratios[name] = float(norms[0] / norms[-1])
        print(f"{name:22s}" + "".join(f"{by_lag[lag]:11.2e}" for lag in lags) + f"{ratios[name]:12.2e}")
    return ratios


if __name__ == "__main__":
    main()
