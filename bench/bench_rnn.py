"""rnnlab against PyTorch and Flax on the same recurrence: training step and forward pass.

Run:  make bench      (or: .venv/bin/python bench/bench_rnn.py [--sizes A,C] [--cells lstm] [--repeats 20])

For each size (input I / hidden H / batch B / length T) and cell (LSTM, GRU, tanh RNN), every
contender runs the same problem in float32: a single-layer RNN over time-major ``xs (T, B, I)``;
``train`` is forward + backward w.r.t. the parameters and the inputs of ``loss = mean(ys ** 2)``
(no optimizer update), ``forward`` is the forward pass alone. Contenders: rnnlab (default, which
uses the fused backward, and ``fused=False``, autodiff through the scan; where the default splits
the batch into two lanes, also ``lanes=1``; and ``matmul_dtype=bfloat16``, mixed precision, which is
not one of the float32 comparisons; on GPU also ``rnnlab tf32`` and ``rnnlab 3xTF32``, see :func:`run`),
``torch.nn.LSTM/GRU/RNN`` (on CPU; on a CUDA machine instead cuDNN in strict fp32, TF32 and fp16),
``flax.linen.RNN`` with ``OptimizedLSTMCell``, ``LSTMCell``, ``GRUCell`` and ``SimpleCell``, and on
GPU ``jax.experimental.rnn.lstm`` (cuDNN called from JAX). JAX functions are jitted and
timed after warm-up with ``block_until_ready``; torch with ``torch.cuda.synchronize`` on GPU.

The contenders of one size and cell are timed in turn, in four interleaved rounds (see
``interleaved``), so that a slow spell of a shared machine does not land on one of them.
Reported per row: median and min over ``--repeats`` runs, microseconds per timestep, achieved
GFLOP/s (matmul FLOPs only: forward ``2 T B (I + H) G`` with G = 4H, 3H or H; train 3x that) as a
fraction of this machine's float32 matmul roof measured in the same run, the compile time and XLA's
peak memory of the JAX contenders' training step (shown on both of their rows), the memory a call
touches for the first time (minor page faults: see ``interleaved``), and the ratio
``time / rnnlab's default time`` (above 1: rnnlab is faster). The table is printed last and written
with the machine to ``--out`` (JSON).
This is a benchmark, not a test: ``make test`` and CI never run it.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import rnnlab
from rnnlab.runs import machine_info, write_json

SIZES = {  # I, H, B, T
    "A": (128, 256, 32, 100),
    "B": (128, 512, 64, 100),
    "C": (256, 256, 4, 150),
    "D": (8, 8, 1, 1000),
    "E": (1024, 1024, 128, 25),
    "headline": (2, 16, 16, 250),  # the vanishing-gradient quick preset's training configuration
}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
ROUNDS = 4  # timing rounds per contender, interleaved (see interleaved)


def timed(fn, repeats: int, warmup: int):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def minor_faults() -> int | None:
    """This process's minor page faults so far (first touches of fresh pages); None where unknown."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def host_memory_settings() -> dict:
    """What decides how fresh host memory is paged in: the kernel's transparent huge page mode and
    any glibc malloc settings in the environment. Both move the CPU timings (see ``bench/RESULTS.md``,
    "Page faults"), so every result records them."""
    thp = None
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
        found = re.search(r"\[(\w+)\]", text)
        thp = found.group(1) if found else text.strip()
    except OSError:
        pass
    env = {k: v for k, v in os.environ.items() if k == "GLIBC_TUNABLES" or k.startswith("MALLOC_")}
    return {"transparent_hugepage": thp, "malloc_env": env}


def interleaved(fns, repeats: int, warmup: int, rounds: int = ROUNDS):
    """``{label: (median, min, round_medians, faults)}`` over ``repeats`` timed runs of each ``(label, fn)``.

    The runs are taken in ``rounds`` rounds that visit the contenders in turn; a contender's first
    visit starts with ``warmup`` untimed runs, each later visit with one. A slow spell of a shared
    machine then lands on every contender rather than on whichever was being timed, so the ratios
    between them are steadier than back-to-back blocks give. ``round_medians`` (one per round that
    timed any run) show how far a ratio moves within the run (:func:`targets`). ``faults`` is the
    median number of minor page faults per call (None where the OS does not count them): memory the
    call touched for the first time, which the kernel has to map and zero while the call waits. A
    fault on a huge page counts once, so on huge pages the count understates the memory.
    """
    times = {label: [] for label, _ in fns}
    faults = {label: [] for label, _ in fns}
    by_round = {label: [] for label, _ in fns}
    per_round = [repeats // rounds + (i < repeats % rounds) for i in range(rounds)]
    for r, n in enumerate(per_round):
        if n == 0:
            continue
        for label, fn in fns:
            for _ in range(warmup if r == 0 else min(warmup, 1)):
                fn()
            this_round = []
            for _ in range(n):
                f0 = minor_faults()
                t0 = time.perf_counter()
                fn()
                this_round.append(time.perf_counter() - t0)
                if f0 is not None:
                    faults[label].append(minor_faults() - f0)
            times[label] += this_round
            by_round[label].append(statistics.median(this_round))
    median_faults = {label: statistics.median(f) if f else None for label, f in faults.items()}
    return {label: (statistics.median(t), min(t), by_round[label], median_faults[label]) for label, t in times.items()}


def matmul_roof(sizes=None, chain: int = 4, repeats: int = 8) -> float:
    """The best float32 GFLOP/s JAX reaches on this machine: square matmuls of each size (default 1024 and
    2048 on a CPU, up to 8192 on an accelerator), ``chain`` of them in one call (so that one output in
    ``chain`` is fresh memory: a call's output buffer is), best of ``repeats`` calls, best size.

    It is a measured rate, not the hardware's peak, and a well-tuned GEMM can pass it by a few percent.
    """
    if sizes is None:
        sizes = (1024, 2048) if jax.default_backend() == "cpu" else (2048, 4096, 8192)
    best_rate = 0.0
    for n in sizes:
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32) / n**0.5  # keeps the chain's values O(1)

        @jax.jit
        def f(a):
            return jax.lax.fori_loop(0, chain, lambda i, c: c @ a, a)

        _, best = timed(lambda f=f, a=a: f(a).block_until_ready(), repeats, 2)
        best_rate = max(best_rate, chain * 2 * n**3 / best / 1e9)
    return best_rate


# Contenders whose matmuls are not float32: a float32 roof says nothing about them.
NOT_FLOAT32 = ("rnnlab bf16 matmuls", "rnnlab tf32", "rnnlab 3xTF32", "torch cuDNN tf32", "torch cuDNN fp16")


def _jax_contender(loss, params, xs):
    """``(train, forward, compile_seconds, peak_bytes)`` for a JAX ``loss(params, xs) -> (scalar, ys)``."""
    grad = jax.jit(jax.grad(lambda p, x: loss(p, x)[0], argnums=(0, 1)))
    t0 = time.perf_counter()
    compiled = grad.lower(params, xs).compile()
    compile_s = time.perf_counter() - t0
    # Compiled here too, so that the matmul precision in force when the contender is built applies.
    fwd = jax.jit(lambda p, x: loss(p, x)[1]).lower(params, xs).compile()
    mem = compiled.memory_analysis()
    peak = None if mem is None else mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
    return (
        lambda: jax.block_until_ready(compiled(params, xs)),
        lambda: jax.block_until_ready(fwd(params, xs)),
        compile_s,
        peak,
    )


def rnnlab_contender(cell_name, I, H, B, T, **unroll_kwargs):
    cell = {"lstm": rnnlab.cells.lstm, "gru": rnnlab.cells.gru, "rnn": rnnlab.cells.elman}[cell_name](H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (T, B, I))

    def loss(p, x):
        ys = rnnlab.unroll(cell, p, x, time_major=True, **unroll_kwargs)[1]
        return jnp.mean(ys**2), ys

    return _jax_contender(loss, params, xs)


FLAX_CELLS = {"lstm": ("OptimizedLSTMCell", "LSTMCell"), "gru": ("GRUCell",), "rnn": ("SimpleCell",)}


def flax_contender(cell_cls, I, H, B, T):
    import flax.linen as nn

    model = nn.RNN(getattr(nn, cell_cls)(H))  # batch-major, as flax expects
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    params = model.init(jax.random.key(0), xs)

    def loss(p, x):
        ys = model.apply(p, x)
        return jnp.mean(ys**2), ys

    return _jax_contender(loss, params, xs)


def torch_contender(cell_name, I, H, B, T, device="cpu", dtype=None):
    import torch

    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell_name](I, H).to(device)
    dtype = dtype or torch.float32
    module = module.to(dtype)
    xs = torch.randn(T, B, I, device=device, dtype=dtype, requires_grad=True)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def train():
        module.zero_grad(set_to_none=True)
        xs.grad = None
        (module(xs)[0].float() ** 2).mean().backward()
        sync()

    def forward():
        with torch.no_grad():
            module(xs)
        sync()

    peak = None
    if device == "cuda":  # the training step's peak allocation, as XLA's peak is for the JAX rows
        train()
        torch.cuda.reset_peak_memory_stats()
        train()
        peak = torch.cuda.max_memory_allocated()
    return train, forward, None, peak


def jax_cudnn_contender(I, H, B, T):
    """``jax.experimental.rnn.lstm``: cuDNN's LSTM called from JAX (GPU only, LSTM only)."""
    from jax.experimental import rnn as jrnn

    weights = jrnn.init_lstm_weight(jax.random.key(0), I, H, 1, False)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))  # batch-major, as it expects
    h0 = c0 = jnp.zeros((1, B, H))
    lengths = jnp.full((B,), T, jnp.int32)

    def loss(w, x):
        ys = jrnn.lstm(x, h0, c0, w, lengths, I, H, 1, 0.0, False)[0]
        return jnp.mean(ys**2), ys

    return _jax_contender(loss, weights, xs)


@functools.cache
def _torch():
    """The torch module, or None (saying so once) when it is not installed."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: its rows are skipped (make torch)", file=sys.stderr)
        return None
    return torch


def contenders(cell_name, size):
    """``(label, factory)`` pairs; a factory returns ``(train, forward, compile_s, peak)``."""
    out = [
        ("rnnlab", lambda: rnnlab_contender(cell_name, *size)),
        ("rnnlab fused=False", lambda: rnnlab_contender(cell_name, *size, fused=False)),
    ]
    out.append(("rnnlab bf16 matmuls", lambda: rnnlab_contender(cell_name, *size, matmul_dtype=jnp.bfloat16)))
    I, H, B, T = size
    if rnnlab.fused.default_lanes(B, H, GATES[cell_name] * H) > 1:  # what the default's lanes buy
        out.append(("rnnlab lanes=1", lambda: rnnlab_contender(cell_name, *size, lanes=1)))
    if jax.default_backend() == "gpu":  # the JAX float32 rows run in strict float32 there (see run)

        def tf32():
            with jax.default_matmul_precision("tensorfloat32"):
                return rnnlab_contender(cell_name, *size)

        def tf32x3():  # float32 products from three TF32 tensor-core passes: see run
            with jax.default_matmul_precision("TF32_TF32_F32_X3"):
                return rnnlab_contender(cell_name, *size)

        out += [("rnnlab tf32", tf32), ("rnnlab 3xTF32", tf32x3)]
    torch = _torch()
    if torch is not None:
        if not torch.cuda.is_available():  # on a GPU machine its CPU is not what is compared
            out.append(("torch CPU", lambda: torch_contender(cell_name, *size)))
        else:

            def cudnn(tf32, dtype=None):
                # The TF32 switches are global and the contenders run interleaved: set them per call.
                def with_tf32(fn):
                    def call():
                        torch.backends.cuda.matmul.allow_tf32 = tf32
                        torch.backends.cudnn.allow_tf32 = tf32
                        fn()

                    return call

                train, forward, compile_s, peak = torch_contender(cell_name, *size, device="cuda", dtype=dtype)
                return with_tf32(train), with_tf32(forward), compile_s, peak

            out += [
                ("torch cuDNN fp32", lambda: cudnn(False)),
                ("torch cuDNN tf32", lambda: cudnn(True)),
                ("torch cuDNN fp16", lambda: cudnn(False, torch.float16)),
            ]
    out += [(f"flax {c}", lambda c=c: flax_contender(c, *size)) for c in FLAX_CELLS[cell_name]]
    if cell_name == "lstm" and jax.default_backend() == "gpu":
        out.append(("jax.experimental.rnn (cuDNN)", lambda: jax_cudnn_contender(*size)))
    return out


def run(sizes, cells, repeats, warmup, threads, on_rows=lambda roof, rows: None):
    """``(roof, rows)``; ``on_rows(roof, rows)`` is called after each size and cell (partial results).

    On a GPU, JAX's float32 matmuls default to TF32; every JAX float32 row there runs with
    ``jax_default_matmul_precision="highest"`` (strict float32, as cuDNN fp32 with TF32 off), and
    ``rnnlab tf32`` shows rnnlab with TF32 matmuls, beside cuDNN's TF32 row. ``rnnlab 3xTF32`` runs
    every matmul as XLA's ``TF32_TF32_F32_X3`` algorithm: each float32 operand is split into a TF32
    head and a TF32 remainder, and the three largest of the four partial products are summed in
    float32 on the tensor cores. Its error is near float32's, not TF32's (``bench_precision.py``
    measures both), but it is not IEEE float32 arithmetic, so it is shown beside the strict row and
    never as it.
    """
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    if jax.default_backend() == "gpu":
        jax.config.update("jax_default_matmul_precision", "highest")
    roof = matmul_roof()
    print(f"float32 matmul roof (best of square JAX matmuls, see matmul_roof): {roof:.1f} GFLOP/s", flush=True)
    rows = []
    for size_name in sizes:
        I, H, B, T = SIZES[size_name]
        for cell_name in cells:
            flops_fwd = 2 * T * B * (I + H) * GATES[cell_name] * H
            built = [(label, factory()) for label, factory in contenders(cell_name, (I, H, B, T))]
            for mode, flops in (("train", 3 * flops_fwd), ("forward", flops_fwd)):
                fns = [(label, built_fns[0 if mode == "train" else 1]) for label, built_fns in built]
                stats = interleaved(fns, repeats, warmup)
                for label, (_, _, compile_s, peak) in built:
                    med, best, round_medians, faults = stats[label]
                    row = dict(
                        size=size_name,
                        I=I,
                        H=H,
                        B=B,
                        T=T,
                        cell=cell_name,
                        contender=label,
                        mode=mode,
                        median_ms=med * 1e3,
                        min_ms=best * 1e3,
                        us_per_timestep=med * 1e6 / T,
                        gflops=flops / med / 1e9,
                        roof_fraction=None if label in NOT_FLOAT32 else flops / med / 1e9 / roof,
                        compile_s=compile_s,
                        peak_mib=None if peak is None else peak / 2**20,
                        fault_mib=None if faults is None else faults * PAGE_BYTES / 2**20,
                        vs_rnnlab=med / stats["rnnlab"][0],
                        round_medians_ms=[t * 1e3 for t in round_medians],
                    )
                    rows.append(row)
                    print(
                        f"{size_name} {cell_name} {mode:7s} {label:22s} {row['median_ms']:9.2f} ms"
                        f"  x{row['vs_rnnlab']:.2f}",
                        flush=True,
                    )
                on_rows(roof, rows)  # after each mode, so that a run cut off keeps every row it printed
    return roof, rows


def table(rows) -> str:
    head = (
        "| size | cell | mode | contender | ms (median) | ms (min) | us/step | GFLOP/s | % roof | compile s "
        "| peak MiB | faulted MiB | time / rnnlab |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        peak = "" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        faulted = "" if r.get("fault_mib") is None else f"{r['fault_mib']:.0f}"
        roof = "" if r["roof_fraction"] is None else f"{100 * r['roof_fraction']:.0f}"
        lines.append(
            f"| {r['size']} | {r['cell']} | {r['mode']} | {r['contender']} | {r['median_ms']:.2f} | "
            f"{r['min_ms']:.2f} | {r['us_per_timestep']:.1f} | {r['gflops']:.1f} | "
            f"{roof} | {comp} | {peak} | {faulted} | {r['vs_rnnlab']:.2f} |"
        )
    return "\n".join(lines)


def targets(rows) -> str:
    """The issue's targets as ratios ``peer time / rnnlab time`` (>= target: met), training steps.

    Issue targets: on a CPU, torch >= 1.0 for the LSTM and GRU at A, B and C, Flax
    ``OptimizedLSTMCell`` >= 1.5 for the LSTM at every size, and at D a per-step time below
    torch's; on a GPU (rows present only on CUDA), cuDNN fp32 >= 2.0 (rnnlab's float32 step at most
    half its time) and cuDNN fp16 >= 1 / 1.2 against rnnlab's bf16 matmuls, at A, B and C. The same
    ratios elsewhere (other sizes and cells, Flax ``GRUCell`` for the GRU, the 3xTF32 row, which is
    not IEEE float32) are printed too, marked as beyond the targets.

    Each line also gives the range of the same ratio over the run's interleaved rounds (the two
    contenders' medians within each round); a range that straddles the target says that this run
    alone does not settle it.
    """
    by = {(r["size"], r["cell"], r["mode"], r["contender"]): r for r in rows}
    rounds = {k: r.get("round_medians_ms") or [] for k, r in by.items()}
    abc, gated = ("A", "B", "C"), ("lstm", "gru")
    goals = [  # (peer, rnnlab row, target, cells, sizes where it is an issue target)
        ("torch CPU", "rnnlab", 1.0, ("lstm", "gru", "rnn"), abc),
        ("flax OptimizedLSTMCell", "rnnlab", 1.5, ("lstm",), tuple(SIZES)),
        ("flax GRUCell", "rnnlab", 1.5, ("gru",), ()),
        ("torch cuDNN fp32", "rnnlab", 2.0, ("lstm", "gru", "rnn"), abc),
        ("torch cuDNN fp32", "rnnlab 3xTF32", 2.0, ("lstm", "gru", "rnn"), ()),
        ("torch cuDNN fp16", "rnnlab bf16 matmuls", 1 / 1.2, ("lstm", "gru", "rnn"), abc),
    ]
    out = []
    for (size, cell, mode, peer), row in sorted(by.items()):
        if mode != "train":
            continue
        for goal_peer, who, goal, cells_, issue_sizes in goals:
            if peer != goal_peer or cell not in cells_ or (size, cell, mode, who) not in by:
                continue
            mine = by[(size, cell, mode, who)]
            ratio = row["median_ms"] / mine["median_ms"]
            verdict = "met" if ratio >= goal else "not met"
            per_round = [a / b for a, b in zip(rounds[(size, cell, mode, peer)], rounds[(size, cell, mode, who)])]
            spread = ""
            if per_round:
                lo, hi = min(per_round), max(per_round)
                spread = f"; rounds {lo:.2f}-{hi:.2f}" + (", straddling it" if lo < goal <= hi else "")
            beyond = "" if size in issue_sizes and (cell in gated or goal_peer.startswith("flax")) else (
                " [beyond the issue's targets]")  # fmt: skip
            out.append(f"{size} {cell} train: {peer} / {who} = {ratio:.2f} (target >= {goal:.2f}: {verdict}{spread})"
                       f"{beyond}")  # fmt: skip
            if size == "D" and goal_peer in ("torch CPU", "torch cuDNN fp32") and who == "rnnlab":
                out.append(f"D {cell} train: per-step time rnnlab {mine['us_per_timestep']:.2f} us, {peer} "
                           f"{row['us_per_timestep']:.2f} us (target: below {peer}'s: {verdict})")  # fmt: skip
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated, of {', '.join(SIZES)}")
    ap.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated, of lstm, gru, rnn")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up: a smoke run")
    ap.add_argument("--out", type=Path, default=Path("bench/results/rnn.json"))
    args = ap.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    cells = [c for c in args.cells.split(",") if c]
    bad = [s for s in sizes if s not in SIZES] + [c for c in cells if c not in GATES]
    if bad:
        ap.error(f"unknown size or cell {bad}; sizes are {list(SIZES)}, cells {list(GATES)}")
    if args.repeats < 1 or args.warmup < 0:
        ap.error(f"--repeats must be >= 1 and --warmup >= 0; got {args.repeats}, {args.warmup}")
    repeats, warmup = (3, 1) if args.quick else (args.repeats, args.warmup)
    info = dict(machine_info(), python=platform.python_version(), repeats=repeats, warmup=warmup)
    info["host_memory"] = host_memory_settings()
    try:
        import torch

        info["torch"] = f"{torch.__version__} ({args.threads} threads)"
        if torch.cuda.is_available():
            info["torch_device"] = torch.cuda.get_device_name()
    except ImportError:
        info["torch"] = None

    def save(roof, rows):  # after every size and cell, so that a cut-off run keeps what it measured
        write_json(args.out, dict(machine=dict(info, roof_gflops=roof), rows=rows))

    roof, rows = run(sizes, cells, repeats, warmup, args.threads, on_rows=save)
    info["roof_gflops"] = roof
    print(f"\nMachine: {info}\nfloat32 matmul roof: {roof:.1f} GFLOP/s; results in {args.out}\n")
    print(table(rows))
    print("\nTargets (peer time / rnnlab time):\n" + targets(rows))


if __name__ == "__main__":
    main()
