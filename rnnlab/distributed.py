"""Seed- and data-parallel training on JAX's own sharding: a device mesh, and multi-host start-up.

rnnlab trains its ``N`` models as one vmapped program (:func:`rnnlab.fit.fit`). Over several
devices the same program is partitioned by XLA (GSPMD) along a :class:`jax.sharding.Mesh` with
two axes:

- ``"seeds"``: the models are split across devices (``N`` must be a multiple of its size); each
  device trains its share, with no communication during training;
- ``"batch"``: each model's training batch is split across devices (data parallelism); XLA adds
  the all-reduce of the gradient. The batch size must be a multiple of its size.

Nothing else changes: the same keys give the same batches, so a run on one device and on eight
agree to float32 rounding (tested on 8 CPU devices: each device's GEMMs have other sizes, and
splitting the batch changes the order of the loss's sum, so the results are not bit-identical).

Across hosts, call :func:`initialize` first in every process (it wraps
:func:`jax.distributed.initialize`); ``jax.devices()`` is then every host's devices and the mesh
spans them. Results are gathered to every process (:func:`to_host`).

Example (8 CPU devices: ``XLA_FLAGS=--xla_force_host_platform_device_count=8``; one here):
    >>> mesh = make_mesh(batch=1)
    >>> dict(mesh.shape)
    {'seeds': 1, 'batch': 1}
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rnnlab import _checks

AXES = ("seeds", "batch")


def make_mesh(seeds: int | None = None, batch: int = 1, devices=None) -> Mesh:
    """A ``("seeds", "batch")`` mesh over ``devices`` (default: all of ``jax.devices()``).

    Args:
        seeds: devices along the models axis; default: all devices divided by ``batch``.
        batch: devices along each model's batch axis (data parallelism).
        devices: the devices to use, e.g. ``jax.devices()[:4]``.
    """
    devices = list(jax.devices() if devices is None else devices)
    batch = _checks.positive_int("make_mesh", "batch", batch)
    if seeds is None:
        if len(devices) % batch:
            raise ValueError(f"make_mesh: batch={batch} must divide the number of devices {len(devices)}")
        seeds = len(devices) // batch
    seeds = _checks.positive_int("make_mesh", "seeds", seeds)
    if seeds * batch > len(devices):
        raise ValueError(
            f"make_mesh: seeds x batch = {seeds} x {batch} needs {seeds * batch} devices; {len(devices)} are available"
        )
    grid = np.asarray(devices[: seeds * batch], dtype=object).reshape(seeds, batch)
    return Mesh(grid, AXES)


def check_mesh(where: str, mesh) -> Mesh:
    """Returns ``mesh`` if it is a :class:`Mesh` with the axes ``("seeds", "batch")``."""
    if not isinstance(mesh, Mesh) or tuple(mesh.axis_names) != AXES:
        got = tuple(mesh.axis_names) if isinstance(mesh, Mesh) else type(mesh).__name__
        raise ValueError(f"{where}: mesh must be a jax.sharding.Mesh with axes {AXES} (see make_mesh); got {got}")
    return mesh


def shard_models(tree, mesh: Mesh, *, where: str = "shard_models"):
    """``tree`` (every leaf with a leading models axis N) placed with that axis split over ``"seeds"``."""
    n_dev = mesh.shape["seeds"]
    for leaf in jax.tree.leaves(tree):
        n = leaf.shape[0] if getattr(leaf, "ndim", 0) else None
        if n is None or n % n_dev:
            raise ValueError(
                f"{where}: the number of models ({n}) must be a multiple of the mesh's seeds axis ({n_dev} devices)"
            )
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec("seeds")))


def constrain_batch(batch, mesh: Mesh):
    """Inside a compiled (vmapped) step: one model's batch split over the mesh's ``"batch"`` axis.

    Every array leaf is split along its leading (batch) axis; use it under
    ``jax.vmap(..., spmd_axis_name="seeds")``.
    """
    n_dev = mesh.shape["batch"]

    def one(x):
        if x.ndim == 0 or x.shape[0] % n_dev:
            raise ValueError(
                f"fit: with a mesh batch axis of {n_dev} devices every batch array needs a leading batch axis "
                f"divisible by {n_dev}; got shape {x.shape}"
            )
        spec = PartitionSpec("batch", *([None] * (x.ndim - 1)))
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

    return jax.tree.map(one, batch)


def to_host(tree):
    """``tree``'s arrays as numpy on this process, gathered from every host when there are several."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)), tree)
    return jax.device_get(tree)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:  # fmt: skip
    """Joins this process to a multi-host run (``jax.distributed.initialize``); call it before any JAX work.

    With no arguments JAX reads them from the cluster (Cloud TPU, SLURM, Open MPI) or from the
    environment variables ``RNNLAB_COORDINATOR`` (``host:port`` of process 0),
    ``RNNLAB_NUM_PROCESSES`` and ``RNNLAB_PROCESS_ID``.
    """
    env = os.environ
    if coordinator_address is None and "RNNLAB_COORDINATOR" in env:
        coordinator_address = env["RNNLAB_COORDINATOR"]
        num_processes = int(env["RNNLAB_NUM_PROCESSES"]) if num_processes is None else num_processes
        process_id = int(env["RNNLAB_PROCESS_ID"]) if process_id is None else process_id
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def is_main_process() -> bool:
    """True in process 0 (the one that writes results in a multi-host run)."""
    return jax.process_index() == 0
