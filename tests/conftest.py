"""A strict test environment: implicit rank promotion raises, float64 is available per test, and no test
reaches the network (a connection to any host but this machine raises)."""

import os
import shutil
import socket
import tempfile

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

# One compilation cache for the session and the subprocesses its tests start: the same program
# built from another closure (another cell object, another experiment point, another process) is
# compiled once. A fresh folder per session, so no test reads what an earlier run left.
# (With pytest-xdist the workers inherit the controller's folder through the environment.)
_OWN_CACHE = "RNNLAB_TEST_XLA_CACHE" not in os.environ  # this process made it (not an xdist worker): it removes it
_CACHE = os.environ.get("RNNLAB_TEST_XLA_CACHE") or tempfile.mkdtemp(prefix="rnnlab-test-xla-cache-")
os.environ["RNNLAB_TEST_XLA_CACHE"] = os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

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


def pytest_sessionfinish(session, exitstatus):
    del session, exitstatus
    if _OWN_CACHE:
        shutil.rmtree(_CACHE, ignore_errors=True)
