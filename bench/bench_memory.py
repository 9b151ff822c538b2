"""Long sequences: the memory of one LSTM training step at T = 10,000, with and without remat.

Run:  .venv/bin/python bench/bench_memory.py            (also part of ``make bench``)

For an LSTM with I = H = 256, B = 32 and T = 10,000 (float32), the training step (loss = mean of the
squared outputs, gradients w.r.t. params and inputs) is compiled three ways: the default (fused
backward, which keeps each step's cell state and gate pre-activations and reads h_{t-1} back from
the outputs), autodiff through the scan (``fused=False``), and ``remat=True`` (each step
recomputed in the backward pass, so only the carries are kept). XLA's own accounting of the
compiled program gives the peak: arguments + outputs + temporaries (``compiled.memory_analysis()``).
The remat step is then run once to show it trains, with its loss and time. Nothing is timed against
a peer here: it is a capacity check. The table also goes to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp

import rnnlab
from rnnlab import runs

GIB = 2**30


def train_step(cell, **unroll_kwargs):
    def loss(params, xs):
        _, ys = rnnlab.unroll(cell, params, xs, time_major=True, **unroll_kwargs)
        return jnp.mean(ys**2)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def peak_bytes(compiled) -> int | None:
    m = compiled.memory_analysis()
    if m is None:
        return None
    return m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=10_000, help="T (default 10000)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--budget-gib", type=float, default=4.0, help="the memory budget to check against")
    ap.add_argument("--no-run", action="store_true", help="only compile and report memory")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench/results/memory.json"))
    args = ap.parse_args(argv)
    for name in ("length", "batch_size", "hidden"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")

    T, B, H = args.length, args.batch_size, args.hidden
    cell = rnnlab.cells.lstm(H)
    params = cell.init(jax.random.key(0), H)
    xs = jax.random.normal(jax.random.key(1), (T, B, H))
    print(f"LSTM I=H={H}, B={B}, T={T}, float32, on {jax.devices()[0].device_kind} ({jax.default_backend()})")
    rows = []
    for label, kw in (
        ("default (fused backward)", {}),
        ("autodiff through the scan", dict(fused=False)),
        ("remat=True", dict(remat=True)),
    ):
        t0 = time.perf_counter()
        compiled = train_step(cell, **kw).lower(params, xs).compile()
        peak = peak_bytes(compiled)
        rows.append((label, kw, compiled, peak, time.perf_counter() - t0))
    print(f"\n| variant | peak memory (XLA) | within {args.budget_gib:g} GiB | compile s |")
    print("|---|---|---|---|")
    for label, _, _, peak, secs in rows:
        gib = "n/a" if peak is None else f"{peak / GIB:.2f} GiB"
        ok = "n/a" if peak is None else ("yes" if peak <= args.budget_gib * GIB else "no")
        print(f"| {label} | {gib} | {ok} | {secs:.1f} |")
    record = {
        "machine": runs.machine_info(), "cell": "lstm", "input_size": H, "hidden_size": H, "batch_size": B, "length": T,
        "budget_gib": args.budget_gib,
        "rows": [{"variant": label, "options": kw, "peak_bytes": peak, "compile_s": secs}
                 for label, kw, _, peak, secs in rows],
    }  # fmt: skip
    runs.write_json(args.out, record)
    if not args.no_run:
        _, _, compiled, _, _ = rows[-1]
        t0 = time.perf_counter()
        loss, grads = compiled(params, xs)
        jax.block_until_ready(grads)
        finite = all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
        seconds = time.perf_counter() - t0
        print(f"\nremat=True step ran: loss {float(loss):.4g}, gradients finite: {finite}, {seconds:.1f} s")
        record["remat_step"] = {"loss": float(loss), "gradients_finite": finite, "seconds": seconds}
        runs.write_json(args.out, record)
    print(f"Results in {args.out}")


if __name__ == "__main__":
    main()
