"""Real series that ship inside a package (statsmodels), so no download is needed.

Both need the optional ``statsmodels`` (``pip install 'rnnlab[data]'``); importing this module does
not, only calling a loader does.

* :func:`co2` — Mauna Loa atmospheric CO2 (ppm), weekly 1958-2001 in statsmodels, returned as
  monthly means (526 months from March 1958); the few months with no measurement are
  filled by linear interpolation between their neighbours. Season: 12 months.
* :func:`sunspots` — yearly mean sunspot numbers 1700-2008 (309 years). Season: the ~11-year
  solar cycle (11), for the seasonal-naive baseline.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


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
