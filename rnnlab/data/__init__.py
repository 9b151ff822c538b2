"""Data pipelines as plain numpy: generated series and real ones bundled with statsmodels
(:mod:`rnnlab.data.datasets`), chronological splits, normalization fitted on the training split only,
forecasting windows, and the baselines a forecast must beat.

Example:
    >>> from rnnlab import data
    >>> x = data.mackey_glass(600, seed=0)
    >>> parts = data.chronological_split(x, (0.7, 0.15, 0.15))
    >>> scaler = data.Standardizer.fit(parts.train)          # statistics of the training split only
    >>> w = data.windows(scaler.transform(parts.train), input_length=32, horizon=4)
    >>> w.inputs.shape, w.targets.shape
    ((385, 32, 1), (385, 4, 1))
"""

from rnnlab.data import datasets, digits, ngram, sentiment, text
from rnnlab.data.baselines import linear_autoregressive, persistence, seasonal_naive
from rnnlab.data.digits import Digits, digit_sequences, pixel_permutation, stratified_split
from rnnlab.data.sentiment import Reviews, reviews
from rnnlab.data.series import mackey_glass
from rnnlab.data.windows import Splits, Standardizer, Windows, chronological_split, errors, windows

__all__ = [
    "datasets",
    "text",
    "ngram",
    "mackey_glass",
    "Splits",
    "Standardizer",
    "Windows",
    "chronological_split",
    "windows",
    "errors",
    "persistence",
    "seasonal_naive",
    "linear_autoregressive",
    "digits",
    "Digits",
    "digit_sequences",
    "pixel_permutation",
    "stratified_split",
    "sentiment",
    "Reviews",
    "reviews",
]
