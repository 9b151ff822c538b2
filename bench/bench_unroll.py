"""The scan ``unroll`` factor: rnnlab's training step at each factor, on this machine's backend.

Run:  .venv/bin/python bench/bench_unroll.py [--sizes A,C,headline] [--cells lstm,gru] [--unrolls 1,2,4,8,16]

``rnnlab.unroll(..., unroll=None)`` uses :func:`rnnlab.default_unroll` (1 on CPU; 8 on GPU and
TPU, 2 there for a step with ``B * H >= 16384``). This times the same training step as
``bench_rnn.py`` (forward + backward w.r.t. params and inputs of ``mean(ys ** 2)``, float32; strict
float32 matmuls on a GPU) for each factor in turn, in interleaved rounds, and prints each factor's
median ms and its time relative to the default's at that size.
Results go to ``--out`` (JSON). A benchmark, not a test: never run by ``make test`` or CI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
from bench_rnn import SIZES, interleaved, rnnlab_contender

import rnnlab
from rnnlab.runs import machine_info, write_json


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="A,B,C,D,headline")
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--unrolls", default="1,2,4,8,16")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/results/unroll.json"))
    args = ap.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    cells = [c for c in args.cells.split(",") if c]
    unrolls = [int(u) for u in args.unrolls.split(",") if u]
    bad = [s for s in sizes if s not in SIZES] + [c for c in cells if c not in ("lstm", "gru", "rnn")]
    if bad or not unrolls or min(unrolls) < 1:
        ap.error(f"unknown size or cell {bad}, or an unroll below 1 in {unrolls}")
    if jax.default_backend() == "gpu":
        jax.config.update("jax_default_matmul_precision", "highest")
    rows = []
    for size in sizes:
        _, H, B, _ = SIZES[size]
        default = rnnlab.default_unroll(state_size=B * H)  # what unroll(unroll=None) picks at this size
        for cell in cells:
            built = {u: rnnlab_contender(cell, *SIZES[size], unroll=u) for u in sorted(set(unrolls) | {default})}
            stats = interleaved([(u, fns[0]) for u, fns in built.items()], args.repeats, args.warmup)
            for u, (med, best, *_) in stats.items():
                rows.append(
                    dict(
                        size=size,
                        cell=cell,
                        unroll=u,
                        median_ms=med * 1e3,
                        min_ms=best * 1e3,
                        compile_s=built[u][2],
                        default_unroll=default,
                        vs_default=med / stats[default][0],
                    )
                )
                print(f"{size} {cell} unroll={u:3d} {med * 1e3:9.3f} ms  x{med / stats[default][0]:.2f}", flush=True)
            write_json(args.out, dict(machine=machine_info(), repeats=args.repeats, warmup=args.warmup, rows=rows))
    print(f"\nbackend {jax.default_backend()}; results in {args.out}\n")
    print("| size | cell | unroll | ms (median) | ms (min) | default | time / default's |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['cell']} | {r['unroll']} | {r['median_ms']:.3f} | {r['min_ms']:.3f} | "
            f"{r['default_unroll']} | {r['vs_default']:.2f} |"
        )


if __name__ == "__main__":
    main()
