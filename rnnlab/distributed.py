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

Inside ``with use_mesh(mesh):`` every :func:`rnnlab.fit.fit` not given a mesh uses that one; the
experiments' ``--mesh`` option sets it for a whole run (``--mesh 8``: models over 8 devices;
``--mesh 4x2``: models over 4, each model's batch over 2).

Across hosts, call :func:`initialize` first in every process (it wraps
:func:`jax.distributed.initialize`); ``jax.devices()`` is then every host's devices and the mesh
spans them. Results are gathered to every process (:func:`to_host`).

Example (8 CPU devices: ``XLA_FLAGS=--xla_force_host_platform_device_count=8``; one here):
    >>> mesh = make_mesh(batch=1)
    >>> dict(mesh.shape)
    {'seeds': 1, 'batch': 1}
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

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


def parse_mesh(text: str) -> tuple[int, int]:
    """``"8"`` -> ``(8, 1)``, ``"4x2"`` -> ``(4, 2)``: the devices along ``("seeds", "batch")``.

    Example:
        >>> parse_mesh("4x2"), parse_mesh("8")
        ((4, 2), (8, 1))
    """
    parts = text.lower().split("x")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise ValueError(f"--mesh: expected SEEDS or SEEDSxBATCH with positive integers (e.g. 8 or 4x2); got {text!r}")
    return sizes if len(sizes) == 2 else (sizes[0], 1)


_MESH: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("rnnlab_mesh", default=None)


@contextlib.contextmanager
def use_mesh(mesh: Mesh | None) -> Iterator[Mesh | None]:
    """Within the block, :func:`rnnlab.fit.fit` calls that are not given a mesh use ``mesh``."""
    if mesh is not None:
        check_mesh("use_mesh", mesh)
    token = _MESH.set(mesh)
    try:
        yield mesh
    finally:
        _MESH.reset(token)


def current_mesh() -> Mesh | None:
    """The mesh of the enclosing :func:`use_mesh`, or None."""
    return _MESH.get()


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
    sharding = NamedSharding(mesh, PartitionSpec("seeds"))
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    # Across hosts every process holds the same full tree (same keys, same init); each one
    # contributes the slices its own devices hold.
    def global_array(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = global_array(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(global_array, tree)


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
    """``tree``'s arrays as numpy on this process; arrays spread over several hosts are gathered."""

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return jax.device_get(x)

    return jax.tree.map(one, tree)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:  # fmt: skip
    """Joins this process to a multi-host run (``jax.distributed.initialize``); call it before any JAX work.

    With no arguments JAX reads them from the cluster (Cloud TPU, SLURM, Open MPI) or from the
    environment variables ``RNNLAB_COORDINATOR`` (``host:port`` of process 0),
    ``RNNLAB_NUM_PROCESSES`` and ``RNNLAB_PROCESS_ID``.
    """
    env = os.environ
    # Cross-process collectives of the CPU backend (gathering results, CPU-only test clusters);
    # GPU and TPU backends bring their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address is None and "RNNLAB_COORDINATOR" in env:
        coordinator_address = env["RNNLAB_COORDINATOR"]
        num_processes = int(env["RNNLAB_NUM_PROCESSES"]) if num_processes is None else num_processes
        process_id = int(env["RNNLAB_PROCESS_ID"]) if process_id is None else process_id
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def is_main_process() -> bool:
    """True in process 0 (the one that writes results in a multi-host run)."""
    return jax.process_index() == 0
