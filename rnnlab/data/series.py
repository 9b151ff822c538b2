r"""Time series that are generated, not downloaded.

The Mackey-Glass delay differential equation (Mackey & Glass 1977),

.. math::

    \frac{dx}{dt} = \beta \frac{x(t - \tau)}{1 + x(t - \tau)^n} - \gamma x(t),

with ``beta = 0.2``, ``gamma = 0.1``, ``n = 10`` is chaotic for ``tau = 17``, the standard
forecasting benchmark setting.
"""

from __future__ import annotations

import numpy as np

from rnnlab import _checks


def mackey_glass(
    length: int,
    *,
    tau: float = 17.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    n: float = 10.0,
    dt: float = 0.1,
    sample_every: float = 1.0,
    x0: float = 1.2,
    warmup: float = 500.0,
    seed: int | None = None,
) -> np.ndarray:
    """``length`` samples of the Mackey-Glass series, one every ``sample_every`` time units: ``(length,)`` float64.

    Integrated with the classical Runge-Kutta method at step ``dt`` (``tau / dt`` must be a whole
    number of steps); the delayed value at a half step is the mean of its two neighbouring grid
    values. The history before t = 0 is the constant ``x0``, optionally jittered by ``0.1 * U[-1, 1]``
    per grid point with ``seed`` (so different seeds give different trajectories on the same
    attractor); the first ``warmup`` time units are dropped so that the samples lie on the attractor.

    Raises:
        ValueError: a non-positive size or step, or ``tau / dt`` or ``sample_every / dt`` not whole.

    Example:
        >>> x = mackey_glass(1000)
        >>> x.shape, bool(0.2 < x.min() and x.max() < 1.5)
        ((1000,), True)
    """
    where = "mackey_glass"
    length = _checks.positive_int(where, "length", length)
    for name, value in (("tau", tau), ("dt", dt), ("sample_every", sample_every)):
        if not _checks.real_number(where, name, value) > 0:
            raise ValueError(f"{where}: {name} must be > 0; got {value}")
    _checks.nonnegative(where, "warmup", warmup)
    lag, every = round(tau / dt), round(sample_every / dt)
    if abs(lag * dt - tau) > 1e-9 * tau or abs(every * dt - sample_every) > 1e-9 * sample_every:
        raise ValueError(f"{where}: tau ({tau}) and sample_every ({sample_every}) must be whole multiples of dt ({dt})")
    skip = round(warmup / dt)
    steps = skip + (length - 1) * every + 1
    x = np.empty(lag + steps, np.float64)
    x[: lag + 1] = x0
    if seed is not None:
        x[: lag + 1] += 0.1 * np.random.default_rng(seed).uniform(-1.0, 1.0, lag + 1)

    def rate(now, delayed):
        return beta * delayed / (1.0 + delayed**n) - gamma * now

    for k in range(lag, lag + steps - 1):  # x[k] is time (k - lag) * dt
        d0, d1 = x[k - lag], x[k - lag + 1]
        dh = 0.5 * (d0 + d1)
        k1 = rate(x[k], d0)
        k2 = rate(x[k] + 0.5 * dt * k1, dh)
        k3 = rate(x[k] + 0.5 * dt * k2, dh)
        k4 = rate(x[k] + dt * k3, d1)
        x[k + 1] = x[k] + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[lag + skip :: every][:length].copy()
