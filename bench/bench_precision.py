"""What ``unroll(matmul_dtype=jnp.bfloat16)`` costs in accuracy, and what it buys in training.

Run:  .venv/bin/python bench/bench_precision.py            (or with --steps 2000 --seeds 3)

Part 1, one step: for the LSTM, GRU and tanh RNN at sizes A (I/H/B/T 128/256/32/100) and headline
(2/16/16/250), random weights (the cells' own initializers) and standard normal inputs, the
relative error ``|a - ref| / |ref|`` (Frobenius norms) of the outputs ``ys`` and of the gradients
of ``mean(ys ** 2)`` with respect to every weight and to the inputs: bfloat16 matmuls against a
float64 reference, and float32 against the same reference for scale; on a GPU also TF32 (JAX's
default there) and 3xTF32 (``VARIANTS``), with float32 made strict.

Part 2, training: the adding problem (T = 100, an LSTM of 32 units), ``--seeds`` seeds trained for
up to ``--steps`` steps by :func:`rnnlab.protocols.train_on_task`, the experiments' own protocol
(batch 32, Adam 1e-2 with the gradient norm clipped at 1, early stop at 5% of the baseline loss),
once in float32 and once with ``TrainSettings(matmul_dtype="bfloat16")``, from the same initial
weights and data; the test MSE of each seed (tested with the matmuls it was trained with; solved
at or below 10% of the 0.167 of always answering 1) and the wall time of each run.

This is a benchmark, not a test: ``make test`` and CI never run it. Results: ``--out`` (JSON) and
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab
from rnnlab import cells, protocols, runs, tasks

SIZES = {"A": (128, 256, 32, 100), "headline": (2, 16, 16, 250)}  # I, H, B, T
# (label, matmul_dtype, jax_default_matmul_precision), without and with a GPU. On a GPU, JAX's default
# float32 matmul is TF32, so "float32" there asks for strict float32; "3xTF32" is XLA's
# TF32_TF32_F32_X3 algorithm (three TF32 tensor-core products per float32 product).
VARIANTS = {
    False: (("float32", None, None), ("bfloat16", jnp.bfloat16, None)),
    True: (
        ("float32", None, "highest"),
        ("3xTF32", None, "TF32_TF32_F32_X3"),
        ("tf32", None, "tensorfloat32"),
        ("bfloat16", jnp.bfloat16, None),
    ),
}


def _rel(a, ref) -> float:
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def step_errors(cell_name: str, size: str) -> dict:
    """Relative errors of ys and of every gradient, bfloat16 and float32 against float64."""
    I, H, B, T = SIZES[size]
    cell = cells.make({"rnn": "elman"}.get(cell_name, cell_name), H)
    params32 = cell.init(jax.random.key(0), I)
    xs32 = jax.random.normal(jax.random.key(1), (T, B, I))

    def run(params, xs, matmul_dtype, precision=None):
        def loss(p, x):
            ys = rnnlab.unroll(cell, p, x, time_major=True, matmul_dtype=matmul_dtype)[1]
            return jnp.mean(ys**2), ys

        with jax.default_matmul_precision(precision) if precision else contextlib.nullcontext():
            (_, ys), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, xs)
        return ys, grads

    with jax.enable_x64(True):
        to64 = lambda a: jnp.asarray(np.asarray(a), jnp.float64)  # noqa: E731
        ys64, g64 = run(jax.tree.map(to64, params32), to64(xs32), None, "highest")
        ys64, g64 = np.asarray(ys64), jax.tree.map(np.asarray, g64)
    out = {}
    for label, dtype, precision in VARIANTS[jax.default_backend() == "gpu"]:
        ys, grads = run(params32, xs32, dtype, precision)
        (dparams, dxs), (ref_params, ref_xs) = grads, g64
        names = [f"d{name}" for name in type(dparams)._fields if getattr(dparams, name) is not None]
        leaves = [getattr(dparams, n[1:]) for n in names]
        refs = [getattr(ref_params, n[1:]) for n in names]
        out[label] = {"ys": _rel(ys, ys64), **{n: _rel(a, r) for n, a, r in zip(names, leaves, refs)}}
        out[label]["dxs"] = _rel(dxs, ref_xs)
    return out


def train_adding(steps: int, seeds: int, matmul_dtype) -> dict:
    """Final test MSE per seed and the wall time of ``protocols.train_on_task`` on the adding problem."""
    settings = protocols.TrainSettings(
        seeds=seeds, batch_size=32, steps=steps, eval_every=steps // 5, eval_size=500, test_size=1000,
        grad_size=8, matmul_dtype=matmul_dtype,
    )  # fmt: skip
    run = protocols.train_on_task(cells.lstm(32), tasks.get("adding"), 100, settings, progress=False)
    return {"test_mse": [float(v) for v in run.test["mse"]], "solved": int(run.solved.sum()), "seconds": run.seconds}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-training", action="store_true", help="part 1 only (the one-step errors)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench/results/precision.json"))
    args = parser.parse_args(argv)
    errors = {f"{size} {c}": step_errors(c, size) for size in SIZES for c in ("lstm", "gru", "rnn")}
    print("Relative error against float64 (outputs, then the largest over every gradient):")
    for key, by in errors.items():
        for label, errs in by.items():
            grads = {k: v for k, v in errs.items() if k != "ys"}
            worst = max(grads, key=grads.get)
            print(f"  {key:14s} {label:9s} ys {errs['ys']:.1e}  gradients max {grads[worst]:.1e} ({worst})")
    training = {}
    result = {"machine": runs.machine_info(), "errors": errors, "training": training}
    if not args.no_training:  # the training settings only where training runs
        result.update(steps=args.steps, seeds=args.seeds)
    runs.write_json(args.out, result)  # and after each training part: a run cut off keeps what it measured
    for label, dtype in () if args.no_training else (("float32", None), ("bfloat16", "bfloat16")):
        training[label] = train_adding(args.steps, args.seeds, dtype)
        mse = ", ".join(f"{v:.4f}" for v in training[label]["test_mse"])
        print(f"adding T=100, {args.seeds} seeds x {args.steps} steps, {label}: test MSE {mse}, "
              f"{training[label]['solved']} solved; {training[label]['seconds']:.1f} s")  # fmt: skip
        runs.write_json(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
