"""A strict test environment: implicit rank promotion raises, and float64 is available per test."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Runs the test with 64-bit floats enabled (for comparisons against float64 numpy)."""
    with jax.enable_x64(True):
        yield
