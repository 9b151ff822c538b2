"""Run by tests/test_distributed.py in fresh processes with 8 CPU devices in all (XLA_FLAGS set by the test).

The same fit on one device and on 4 x 2 devices (the models over 4, each model's batch over 2);
exits non-zero with the differences when they disagree. With
``RNNLAB_COORDINATOR`` set it runs as one of several processes (:func:`rnnlab.distributed.initialize`),
and the 8 devices are spread over them.
"""

import os
import sys

import jax

from rnnlab import distributed

if "RNNLAB_COORDINATOR" in os.environ:
    distributed.initialize()

import numpy as np  # noqa: E402

from rnnlab import cells, fit, models, tasks, train  # noqa: E402

assert len(jax.devices()) == 8, jax.devices()
TASK = tasks.get("adding")
MODEL = models.sequence_model(cells.gru(6), TASK.output_size)
OPT = train.make_optimizer(train.OptimizerConfig("adam", learning_rate=1e-2))
KEYS = jax.random.split(jax.random.key(0), 8)
EVAL = TASK.sample(jax.random.key(9), 16, 9)


def loss_fn(params, batch, key):
    del key
    return TASK.loss(MODEL.apply(params, batch.inputs), batch)


def eval_fn(params, batch):
    return TASK.metric(MODEL.apply(params, batch.inputs), batch)


def sample_fn(key):
    return TASK.sample(key, 8, 9)


STATES = train.init_seeds(lambda k: MODEL.init(k, TASK.input_size), KEYS, OPT)


def run(mesh):
    states = STATES
    with distributed.use_mesh(mesh):  # as an experiment's --mesh sets it
        result = fit.fit(loss_fn, eval_fn, sample_fn, EVAL, states, KEYS, OPT, steps=8, eval_every=4, monitor="mse",
                         progress=False)  # fmt: skip
    leaves = jax.tree.leaves(result.params)
    return [np.asarray(x) for x in distributed.to_host(leaves)], result.history, leaves


one, one_hist, _ = run(None)
failures = []
# Per-device GEMMs of other sizes round differently, so "the same" is to float32 rounding.
# 8 devices: the models over 4 of them, and each model's batch over 2 (both kinds of parallelism).
for label, mesh, rtol in (("4 x 2 devices over models x batch", distributed.make_mesh(seeds=4, batch=2), 1e-4),):
    params, hist, leaves = run(mesh)
    devices = {d for x in leaves for d in x.sharding.device_set}
    if len(devices) != 8:
        failures.append(f"{label}: the parameters live on {len(devices)} devices, not 8")
    for name in ("train/loss", "train/grad_norm", "eval/mse"):
        a, b = one_hist[name], hist[name]
        ok = np.allclose(a, b, rtol=rtol, atol=1e-6)
        if not ok:
            failures.append(f"{label}: {name} differs by up to {np.max(np.abs(a - b))}")
    for a, b in zip(one, params):
        ok = np.allclose(a, b, rtol=rtol, atol=1e-6)
        if not ok:
            failures.append(f"{label}: parameters differ by up to {np.max(np.abs(a - b))}")
where = f"process {jax.process_index()} of {jax.process_count()}:"
print(where, "\n".join(failures) or "same results on 1 and 8 devices")
sys.exit(1 if failures else 0)
