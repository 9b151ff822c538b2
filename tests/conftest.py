"""A strict test environment: implicit rank promotion raises, float64 is available per test, and no test
reaches the network (a connection to any host but this machine raises)."""

import socket

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

# A script that tests run in subprocesses with 8 devices; not a module to import here.
collect_ignore = ["multidevice_check.py"]

_LOCAL = ("127.0.0.1", "::1", "localhost", "0.0.0.0")
_connect = socket.socket.connect


def _local_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in _LOCAL and self.family in (socket.AF_INET, socket.AF_INET6):
        raise RuntimeError(f"the test suite must not use the network; a test tried to connect to {address!r}")
    return _connect(self, address)


socket.socket.connect = _local_only


@pytest.fixture
def x64():
    """Runs the test with 64-bit floats enabled (for comparisons against float64 numpy)."""
    with jax.enable_x64(True):
        yield
