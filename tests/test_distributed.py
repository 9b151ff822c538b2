"""Seeds and batches over several devices: the same results as one device (8 CPU devices, in a subprocess)."""

import os
import pathlib
import subprocess
import sys

import jax
import pytest

from rnnlab import distributed

HERE = pathlib.Path(__file__).parent


def test_one_and_eight_devices_give_the_same_run():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(HERE / "multidevice_check.py")], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "same results on 1 and 8 devices" in done.stdout


def test_mesh_arguments_are_checked():
    with pytest.raises(ValueError, match="needs 16 devices"):
        distributed.make_mesh(seeds=8, batch=2, devices=jax.devices() * 8)
    with pytest.raises(ValueError, match="must divide the number of devices"):
        distributed.make_mesh(batch=3, devices=jax.devices() * 2)
    with pytest.raises(ValueError, match="mesh must be a jax.sharding.Mesh with axes"):
        distributed.check_mesh("fit", "cpu")
    mesh = distributed.make_mesh(seeds=1)
    with pytest.raises(ValueError, match="multiple of the mesh's seeds axis"):
        distributed.shard_models({"w": jax.numpy.zeros(())}, mesh)
