"""Figures for papers: gradient flow against the lag, success against the length, learning curves.

Each function draws on a matplotlib ``Axes`` it is given (so figures compose), labels its axes
with units, and marks a task's baseline where there is one. matplotlib is imported lazily (the
``plot`` extra); the Agg backend is used when no display is configured.
"""

from __future__ import annotations

import os
import warnings

import numpy as np


def pyplot():
    """``matplotlib.pyplot``, with the non-interactive Agg backend when there is no display."""
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("rnnlab.plots needs matplotlib: pip install 'rnnlab[plot]'") from e
    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colors(labels) -> dict:
    """``{label: color}`` from matplotlib's color cycle, in order, so figures of one run agree."""
    plt = pyplot()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: cycle[k % len(cycle)] for k, label in enumerate(labels)}


def gradient_flow(ax, curves: dict, *, title: str = "", styles: dict | None = None, ylabel=None):
    """``||dL/dh_t||`` against the lag (steps back from the last step, ``T - 1 - t`` for ``T`` steps)
    on a log scale, one line per entry.

    Args:
        ax: a matplotlib Axes.
        curves: ``{label: (T,) array}`` indexed by step t (as :mod:`rnnlab.diagnostics` returns).
            Zeros (gradients that underflowed) are not drawn on the log scale.
        title: the panel title.
        styles: optional ``{label: dict of line keyword arguments}``.
        ylabel: the y-axis label; default ``||dL/dh_t||``.
    """
    palette = colors(list(curves))
    for label, curve in curves.items():
        curve = np.asarray(curve, np.float64)[::-1]
        lag = np.arange(curve.size)
        shown = np.where(curve > 0, curve, np.nan)
        kw = {"color": palette[label], "lw": 1.5, **((styles or {}).get(label, {}))}
        ax.plot(lag, shown, label=label, **kw)
    ax.set_yscale("log")
    # Not "T - 1 - t": a task's length parameter T need not be its number of steps (copy memory has T + 20).
    ax.set_xlabel("lag: steps back from the last step")
    ax.set_ylabel(ylabel or r"$\|\partial L / \partial h_t\|$")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)


def versus_length(ax, lengths, values: dict, *, spread: dict | None = None, baseline=None, ylabel="", log=False):
    """One line per entry of ``values`` (``{label: (len(lengths),)}``) against the sequence length.

    ``spread`` (``{label: ((lo,), (hi,))}``) draws error bars; ``baseline`` (a number or one per
    length) draws the task's chance level as a dashed black line.
    """
    palette = colors(list(values))
    x = np.asarray(lengths)
    for label, v in values.items():
        v = np.asarray(v, np.float64)
        if spread and label in spread:
            lo, hi = (np.asarray(s, np.float64) for s in spread[label])
            ax.errorbar(x, v, yerr=[v - lo, hi - v], label=label, color=palette[label], marker="o", capsize=3)
        else:
            ax.plot(x, v, label=label, color=palette[label], marker="o")
    if baseline is not None:
        ax.plot(x, np.broadcast_to(np.asarray(baseline, np.float64), x.shape), "k--", lw=1, label="baseline")
    if log:
        ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([str(int(v)) for v in x])
    ax.minorticks_off()
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def learning_curves(ax, steps, curves: dict, *, baseline=None, ylabel="", log=True, title=""):
    """Median over models (line) and min-max band of ``{label: (E, N)}`` curves against their steps.

    ``steps`` is one ``(E,)`` array for every curve (its first ``E`` entries for a curve of ``E``
    evaluations), or ``{label: (E,)}``, each curve's own (runs that stopped at different steps).

    Raises:
        ValueError: a curve with more evaluations than its steps.
    """
    palette = colors(list(curves))
    for label, c in curves.items():
        c = np.asarray(c, np.float64)
        if c.ndim == 1:
            c = c[:, None]
        s = np.asarray(steps[label] if isinstance(steps, dict) else steps)
        if s.shape[0] < c.shape[0]:
            raise ValueError(
                f"learning_curves: {label!r} has {c.shape[0]} evaluations but only {s.shape[0]} steps; "
                "pass each curve's own steps as {label: steps}"
            )
        s = s[: c.shape[0]]
        with warnings.catch_warnings():  # a step where every model diverged is left blank
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, mid, hi = np.nanmin(c, axis=1), np.nanmedian(c, axis=1), np.nanmax(c, axis=1)
        ax.plot(s, mid, color=palette[label], label=label)
        ax.fill_between(s, lo, hi, color=palette[label], alpha=0.15, lw=0)
    if baseline is not None:
        ax.axhline(baseline, color="k", ls="--", lw=1, label="baseline")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
