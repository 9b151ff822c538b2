"""N seeds trained in one vmapped program vs the same N seeds trained one after another.

Run:  .venv/bin/python bench/bench_seeds.py            (or with --seeds 8 --steps 200 --repeats 3)

Both sides run ``rnnlab.fit.fit`` on the adding problem with the same models, data and number of
steps; the only difference is whether the N models share one compiled program (``jax.vmap`` over
the model axis, what the experiments do) or run as N separate one-model fits. Each side is warmed
up first (compilation excluded) and timed ``--repeats`` times; the table reports the median wall
time and the speed-up of the vmapped program. Two model sizes: the quick preset's (16 units) and
a larger one (128 units).

This is a benchmark, not a test: it is never run by ``make test`` or CI.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time

import jax

from rnnlab import cells, fit, models, runs, tasks, train

SIZES = {  # name: (hidden, batch, length)
    "quick (H=16, B=16, T=100)": (16, 16, 100),
    "large (H=128, B=20, T=100)": (128, 20, 100),
}


def _runner(hidden: int, batch: int, length: int, steps: int):
    task = tasks.get("adding")
    model = models.sequence_model(cells.lstm(hidden), task.output_size)
    optimizer = train.make_optimizer(train.OptimizerConfig("adam", learning_rate=1e-3))
    eval_batch = task.sample(jax.random.key(1), 64, length)

    def loss_fn(p, b, k):
        return task.loss(model.apply(p, b.inputs), b)

    def eval_fn(p, b):
        return task.metric(model.apply(p, b.inputs), b)

    def sample_fn(k):
        return task.sample(k, batch, length)

    def run(keys):
        states = train.init_seeds(lambda k: model.init(k, task.input_size), keys, optimizer)
        result = fit.fit(
            loss_fn, eval_fn, sample_fn, eval_batch, states, keys, optimizer, steps=steps, eval_every=steps,
            monitor="mse", progress=False,
        )  # fmt: skip
        jax.block_until_ready(result.params)
        return result

    return run


def _median_time(fn, repeats: int) -> float:
    fn()  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench/results/seeds.json"))
    args = parser.parse_args(argv)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    rows = {}
    machine = runs.machine_info()
    for name, (hidden, batch, length) in SIZES.items():
        run = _runner(hidden, batch, length, args.steps)
        together = _median_time(lambda run=run: run(keys), args.repeats)
        one_by_one = _median_time(lambda run=run: [run(keys[n : n + 1]) for n in range(args.seeds)], args.repeats)
        rows[name] = {"vmapped_s": together, "sequential_s": one_by_one, "speedup": one_by_one / together}
        print(f"{name}: done", flush=True)
        runs.write_json(args.out, {"machine": machine, "seeds": args.seeds, "steps": args.steps,
                                   "repeats": args.repeats, "warmup": 1, "rows": rows})  # fmt: skip
    print(f"\n{args.seeds} LSTM seeds x {args.steps} training steps, adding problem; {machine['cpu']}, "
          f"{machine['cores']} cores, backend {machine['backend']}, jax {machine['versions'].get('jax')}")  # fmt: skip
    print(f"{'size':30s} {'vmapped':>10s} {'one by one':>12s} {'speed-up':>9s}")
    for name, r in rows.items():
        print(f"{name:30s} {r['vmapped_s']:9.2f}s {r['sequential_s']:11.2f}s {r['speedup']:8.2f}x")
    return rows


if __name__ == "__main__":
    main()
