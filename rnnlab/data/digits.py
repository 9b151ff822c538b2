r"""Handwritten digits read pixel by pixel: the 8x8 images that ship with scikit-learn as 64-step sequences.

scikit-learn bundles 1797 grey-level images of the digits 0-9 (8x8 pixels, integer values 0..16,
about 180 per class; the UCI "optical recognition of handwritten digits" test set). As a sequence
task each image is read one pixel per step, the small-scale analogue of pixel-by-pixel MNIST
(Le, Jaitly & Hinton 2015):

* plain order: row-major, ``x_t = image[t // 8, t % 8] / 16`` for ``t = 0..63``, shape ``(N, 64, 1)``;
* permuted order: ``x_t = plain[pi(t)]`` for one fixed permutation ``pi`` of the 64 positions drawn
  from a seed (:func:`pixel_permutation`), the same for every image, so neighbouring pixels land
  far apart in time and the model has to hold information over longer lags.

:func:`stratified_split` cuts the images into train / validation / test with every class in the
same proportion in each part. Loading needs the optional scikit-learn (``pip install 'rnnlab[data]'``);
importing this module does not.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from rnnlab.data.windows import Splits

SIDE = 8
STEPS = SIDE * SIDE
CLASSES = 10
MAX_VALUE = 16.0


class Digits(NamedTuple):
    """The digit images as pixel sequences.

    Attributes:
        inputs: ``(N, 64, 1) float32`` pixel intensities in [0, 1], one pixel per step.
        labels: ``(N,) int32`` digits 0..9.
        permutation: ``(64,) int`` the pixel order, ``inputs[:, t] = plain[:, permutation[t]]``;
            ``None`` for the plain row-major order.
    """

    inputs: np.ndarray
    labels: np.ndarray
    permutation: np.ndarray | None


def _load_sklearn_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # depends on the environment; tested by hiding the package
        raise ImportError(
            "rnnlab.data.digits needs scikit-learn for its bundled digit images: pip install 'rnnlab[data]' "
            "(or pip install scikit-learn)"
        ) from e
    return load_digits()


def _check_seed(where: str, name: str, seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{where}: {name} must be an int >= 0; got {seed!r}")
    return int(seed)


def pixel_permutation(seed: int, size: int = STEPS) -> np.ndarray:
    """A fixed permutation of ``size`` pixel positions, the same for the same ``seed``.

    Example:
        >>> p = pixel_permutation(0)
        >>> p.shape, sorted(p.tolist()) == list(range(64)), bool((p == pixel_permutation(0)).all())
        ((64,), True, True)
    """
    seed = _check_seed("pixel_permutation", "seed", seed)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"pixel_permutation: size must be an int >= 1; got {size!r}")
    return np.random.default_rng(seed).permutation(int(size))


def digit_sequences(*, permutation_seed: int | None = None) -> Digits:
    """The 1797 scikit-learn digits as ``(N, 64, 1)`` pixel sequences in [0, 1] (module docstring).

    Args:
        permutation_seed: ``None`` for the plain row-major order; an int ``>= 0`` reads the pixels
            in the order :func:`pixel_permutation` draws from it.

    Raises:
        ImportError: scikit-learn is not installed (``pip install 'rnnlab[data]'``).
        ValueError: a ``permutation_seed`` that is not ``None`` or an int ``>= 0``.

    Example:
        >>> d = digit_sequences()
        >>> d.inputs.shape, d.labels.shape, float(d.inputs.min()), float(d.inputs.max())
        ((1797, 64, 1), (1797,), 0.0, 1.0)
        >>> p = digit_sequences(permutation_seed=3)
        >>> bool((p.inputs[:, :, 0] == d.inputs[:, p.permutation, 0]).all())
        True
    """
    perm = None
    if permutation_seed is not None:
        perm = pixel_permutation(_check_seed("digit_sequences", "permutation_seed", permutation_seed))
    raw = _load_sklearn_digits()
    pixels = np.asarray(raw.data, np.float64).reshape(-1, STEPS)  # row-major: t = 8 * row + column
    if perm is not None:
        pixels = pixels[:, perm]
    inputs = (pixels / MAX_VALUE).astype(np.float32)[:, :, None]
    return Digits(inputs, np.asarray(raw.target, np.int32), perm)


def stratified_split(labels, fractions=(0.6, 0.2, 0.2), *, seed: int = 0) -> Splits:
    """Train / validation / test index arrays with each class split in the given fractions.

    Within every class the examples are shuffled (from ``seed``) and cut at
    ``round(n_c * f_train)`` and ``round(n_c * (f_train + f_validation))``; each part is then
    shuffled, so no part is sorted by class.

    Args:
        labels: ``(N,)`` integer class labels.
        fractions: three numbers ``>= 0`` summing to 1.
        seed: the shuffling seed (an int ``>= 0``).

    Returns:
        :class:`~rnnlab.data.Splits` whose ``train``, ``validation`` and ``test`` are disjoint
        ``(N_part,) int64`` index arrays into ``labels`` that together cover every index.

    Raises:
        ValueError: labels that are not a non-empty 1-D integer array, bad fractions, or a part
            that would be empty.

    Example:
        >>> s = stratified_split(np.repeat([0, 1], 10), (0.6, 0.2, 0.2), seed=0)
        >>> [len(p) for p in s], sorted(np.concatenate(s).tolist()) == list(range(20))
        ([12, 4, 4], True)
    """
    where = "stratified_split"
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: labels must be a non-empty (N,) integer array; got shape {y.shape}, "
                         f"dtype {y.dtype}")  # fmt: skip
    f = np.asarray(fractions, np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"{where}: fractions must be three numbers >= 0 summing to 1; got {fractions!r}")
    rng = np.random.default_rng(_check_seed(where, "seed", seed))
    parts = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        a, b = round(idx.size * f[0]), round(idx.size * (f[0] + f[1]))
        for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:])):
            part.append(chunk)
    out = Splits(*(rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts))
    empty = [name for name, p in zip(Splits._fields, out) if p.size == 0]
    if empty:
        raise ValueError(f"{where}: {y.size} labels give an empty {empty} part with fractions {tuple(f)}")
    return out
