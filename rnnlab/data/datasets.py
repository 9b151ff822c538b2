"""Real data: series that ship inside a package (statsmodels), and a text corpus fetched once and cached.

The series need the optional ``statsmodels`` (``pip install 'rnnlab[data]'``); importing this module
does not, only calling a loader does. Nothing here touches the network except
:func:`tiny_shakespeare`, and only when its file is not cached yet.

* :func:`co2` — Mauna Loa atmospheric CO2 (ppm), weekly 1958-2001 in statsmodels, returned as
  monthly means (526 months from March 1958); the few months with no measurement are
  filled by linear interpolation between their neighbours. Season: 12 months.
* :func:`sunspots` — yearly mean sunspot numbers 1700-2008 (309 years). Season: the ~11-year
  solar cycle (11), for the seasonal-naive baseline.
* :func:`tiny_shakespeare` — the Tiny Shakespeare corpus (1,115,394 bytes of plays, public
  domain) from the public char-rnn repository, downloaded on first use into a cache folder and
  checked against its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
from typing import NamedTuple

import numpy as np

TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class Series(NamedTuple):
    """A named univariate series.

    Attributes:
        name: short name.
        values: ``(T,)`` float64, in time order.
        season: the period of its seasonal cycle in steps (for :func:`rnnlab.data.seasonal_naive`), or None.
        unit: what the values measure.
        start: the first step's date, as text.
        step: what one step is (``"month"``, ``"year"``).
    """

    name: str
    values: np.ndarray
    season: int | None
    unit: str
    start: str
    step: str


def _statsmodels_datasets():
    try:
        from statsmodels import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rnnlab.data.datasets needs statsmodels for its bundled series: pip install statsmodels "
            "(or pip install 'rnnlab[data]')"
        ) from e
    return datasets


def co2() -> Series:
    """Mauna Loa CO2, monthly means (see the module docstring).

    Example:
        >>> s = co2()
        >>> s.values.shape, s.season, s.start, bool(np.isfinite(s.values).all())
        ((526,), 12, '1958-03', True)
    """
    frame = _statsmodels_datasets().co2.load_pandas().data
    monthly = frame["co2"].resample("MS").mean()
    values = monthly.interpolate(method="linear", limit_direction="both").to_numpy(np.float64)
    return Series("co2", values, 12, "ppm", monthly.index[0].strftime("%Y-%m"), "month")


def sunspots() -> Series:
    """Yearly mean sunspot numbers, 1700-2008.

    Example:
        >>> s = sunspots()
        >>> s.values.shape, s.season, s.start, s.values[:3].tolist()
        ((309,), 11, '1700', [5.0, 11.0, 16.0])
    """
    frame = _statsmodels_datasets().sunspots.load_pandas().data
    return Series("sunspots", frame["SUNACTIVITY"].to_numpy(np.float64), 11, "sunspot number",
                  str(int(frame["YEAR"].iloc[0])), "year")  # fmt: skip


def cache_dir() -> pathlib.Path:
    """Where downloads are kept: ``$RNNLAB_DATA_DIR`` if set, else ``~/.cache/rnnlab``."""
    return pathlib.Path(os.environ.get("RNNLAB_DATA_DIR") or pathlib.Path.home() / ".cache" / "rnnlab")


def tiny_shakespeare(directory=None, *, timeout: float = 60.0) -> pathlib.Path:
    """The path of the cached Tiny Shakespeare file, downloading it first if it is not there.

    Args:
        directory: the cache folder (default :func:`cache_dir`).
        timeout: seconds to wait for the server.

    Raises:
        ConnectionError: the download failed (offline, say); the message says where to put a copy
            by hand, or to pass another corpus.
        ValueError: the downloaded or cached bytes do not have the expected SHA-256.
    """
    folder = pathlib.Path(directory) if directory is not None else cache_dir()
    path = folder / "tinyshakespeare.txt"
    if path.is_file():
        _check_sha256(path.read_bytes(), f"the cached file {path} (delete it to download again)")
        return path
    try:
        with urllib.request.urlopen(TINY_SHAKESPEARE_URL, timeout=timeout) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(
            f"tiny_shakespeare: could not download {TINY_SHAKESPEARE_URL} ({e}). If this machine is offline, "
            f"copy that file here by hand: {path} (or set RNNLAB_DATA_DIR to a folder holding tinyshakespeare.txt), "
            f"or train on any UTF-8 text file with --corpus PATH."
        ) from e
    _check_sha256(payload, f"the download of {TINY_SHAKESPEARE_URL}")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".tinyshakespeare-", delete=False) as f:
        f.write(payload)
    os.replace(f.name, path)  # atomic: a reader never sees half a file
    return path


def _check_sha256(payload: bytes, what: str) -> None:
    digest = hashlib.sha256(payload).hexdigest()
    if digest != TINY_SHAKESPEARE_SHA256:
        raise ValueError(f"tiny_shakespeare: {what} has SHA-256 {digest}, expected {TINY_SHAKESPEARE_SHA256}")
