"""Doctests run under the same strict rank-promotion rule as the tests."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
