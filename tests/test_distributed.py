"""Seeds and batches over several devices: the same results as one device (8 CPU devices, in a subprocess)."""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import pytest

from rnnlab import distributed

HERE = pathlib.Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_and_eight_devices_over_two_processes_give_the_same_run():
    # Two processes with 4 CPU devices each, joined by jax.distributed as two hosts would be: the
    # multi-host path, and the 8-device mesh, checked against one device in each process.
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
           "RNNLAB_COORDINATOR": f"127.0.0.1:{_free_port()}", "RNNLAB_NUM_PROCESSES": "2"}  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, str(HERE / "multidevice_check.py")], env={**env, "RNNLAB_PROCESS_ID": str(i)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"process {i}: {out}{err[-3000:]}"
        assert f"process {i} of 2: same results on 1 and 8 devices" in out


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


def test_experiments_mesh_option_is_parsed_and_checked_against_the_devices(capsys):
    import argparse

    from rnnlab import cli

    parser = argparse.ArgumentParser()
    cli.add_common_arguments(parser, ["quick"])
    assert parser.parse_args(["--mesh", "4x2"]).mesh == (4, 2)
    with pytest.raises(SystemExit):
        parser.parse_args(["--mesh", "0x2"])
    assert "expected SEEDS or SEEDSxBATCH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.make_mesh_or_exit((len(jax.devices()) + 1, 1), parser)
    assert f"{len(jax.devices())} are available" in capsys.readouterr().err
