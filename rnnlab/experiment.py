"""The loop every experiment script runs: a grid of runs into one run folder, resumable, then findings, plots, report.

:func:`run_grid` trains the grid's points one after another and rewrites ``results.json`` after each
(atomically, :mod:`rnnlab.runs`), so an interrupted experiment keeps what it finished; with
``resume`` the points already in the folder's ``results.json`` are kept, not run again (the config
must be the same: :func:`rnnlab.runs.previous_results`), and the point that was running continues
from its training loops' last checkpoints (``checkpoints/<point>/``, see :mod:`rnnlab.checkpoint`).
When the grid is done it adds ``findings(results)``, draws ``make_plots(results, out)`` and writes
``report(results)`` to ``report.md``.

Example:
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> def run_one(point, k, n):
    ...     return {"x": point, "square": point * point}, {"curve": [point] * 3}
    >>> results = run_grid({"name": "demo"}, out, experiment="demo", grid=[1, 2], name_of=str,
    ...                    entry_name=lambda e: str(e["x"]), run_one=run_one,
    ...                    findings=lambda r: {"total": sum(e["square"] for e in r["runs"])},
    ...                    make_plots=lambda r, out: [], report=lambda r: f"total {r['findings']['total']}")
    >>> results["findings"], (out / "report.md").read_text(), sorted(p.name for p in (out / "runs").iterdir())
    ({'total': 5}, 'total 5', ['1.npz', '2.npz'])
"""

from __future__ import annotations

import functools
import math
import pathlib
import time
from collections.abc import Callable, Sequence

from rnnlab import checkpoint, runs, tasks


def run_grid(
    config: dict,
    out,
    *,
    experiment: str,
    grid: Sequence,
    name_of: Callable,
    entry_name: Callable,
    run_one: Callable,
    findings: Callable,
    make_plots: Callable,
    report: Callable,
    header: dict | None = None,
    resume: bool = False,
) -> dict:
    """Runs every point of ``grid`` into the run folder ``out``; returns the results.

    Args:
        config: the experiment's config as a plain dict (written to ``config.json``).
        out: the run folder.
        experiment: the experiment's name, recorded in ``results.json``.
        grid: the points to run, in order.
        name_of: ``name_of(point) -> str``, the point's name (its ``runs/<name>.npz``).
        entry_name: ``entry_name(entry) -> str``, the same name read back from a results entry.
        run_one: ``run_one(point, k, n) -> (entry, arrays)`` runs point ``k`` of ``n``: a
            JSON-able dict for ``results["runs"]`` and numpy arrays for its ``.npz``.
        findings, make_plots, report: as in :mod:`rnnlab.cli`.
        header: more top-level keys of ``results.json`` (e.g. the published numbers).
        resume: keep the entries of an interrupted run of the same config.
    """
    out = pathlib.Path(out)
    start = time.perf_counter()
    results = {"experiment": experiment, "config": config, "machine": runs.machine_info(), **(header or {}),
               "runs": []}  # fmt: skip
    kept = {}
    previous = runs.previous_results(out, config) if resume else None
    if previous is not None:
        kept = {entry_name(e): e for e in previous["runs"]}
        start -= previous.get("elapsed_s", 0.0)
    runs.write_json(out / "config.json", config)
    for k, point in enumerate(grid):
        name = name_of(point)
        if name in kept:
            results["runs"].append(kept[name])
            continue
        run = functools.partial(run_one, point, k, len(grid))
        run_point(out, name, run, results, results["runs"], start=start, resume=resume)
    results["elapsed_s"] = time.perf_counter() - start
    results["findings"] = findings(json_round_trip(results))
    runs.write_json(out / "results.json", results)
    results = json_round_trip(results)  # plots and report read what a --replot would read
    make_plots(results, out)
    runs.atomic_write(out / "report.md", report(results))
    return results


def check_selection(what: str, chosen, known) -> None:
    """A config check: ``chosen`` names at least one of ``known`` and nothing else.

    Example:
        >>> check_selection("cell", ("lstm", "elman"), ("lstm", "gru", "elman"))
        >>> check_selection("cell", ("lstn",), ("lstm", "gru"))
        Traceback (most recent call last):
        ...
        ValueError: Config: unknown cell(s) ['lstn']; choose from ['gru', 'lstm']
    """
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        raise ValueError(f"Config: unknown {what}(s) {unknown}; choose from {sorted(known)}")


def check_lengths(lengths: dict, *, task: str | None = None, minimum: int | None = None) -> None:
    """A config check of ``lengths``, ``{task name: (T, ...)}``.

    At least one task (with ``task``: that one alone), each known to :func:`rnnlab.tasks.get`, each
    with at least one length, every length an int >= the task's ``min_length`` (or ``minimum``).

    Example:
        >>> check_lengths({"adding": (25, 100)})
        >>> check_lengths({"adding": (1,)})
        Traceback (most recent call last):
        ...
        ValueError: Config: lengths['adding'] must be ints >= 2; got 1
    """
    if task is not None and (set(lengths) != {task} or not lengths[task]):
        raise ValueError(f"Config: lengths must be {{'{task}': (T, ...)}}; got {lengths!r}")
    if not lengths:
        raise ValueError("Config: lengths must name at least one task")
    for name, values in lengths.items():
        least = tasks.get(name).min_length if minimum is None else minimum
        if not values:
            raise ValueError(f"Config: lengths[{name!r}] is empty")
        for length in values:
            if not isinstance(length, int) or length < least:
                raise ValueError(f"Config: lengths[{name!r}] must be ints >= {least}; got {length!r}")


def run_point(out, name: str, run: Callable, results: dict, entries: list, *, start: float, resume: bool) -> dict:
    """Runs one grid point into the run folder ``out`` and records it; returns its entry.

    ``run() -> (entry, arrays)`` trains inside a :func:`rnnlab.checkpoint.scope` of its own,
    ``out/checkpoints/<name>/``, so a killed run resumed with ``resume`` continues this point
    mid-training. Then ``entry`` is appended to ``entries`` (a list inside ``results``), the arrays
    go to ``runs/<name>.npz``, ``results.json`` is rewritten (with ``elapsed_s`` since ``start``,
    a ``time.perf_counter()``) so an interruption keeps every finished point, and only then are
    the point's checkpoints deleted.
    """
    out = pathlib.Path(out)
    folder = out / "checkpoints" / name
    with checkpoint.scope(folder, resume=resume, clear_on_exit=False):
        entry, arrays = run()
    entries.append(entry)
    runs.write_npz(out / "runs" / f"{name}.npz", **arrays)
    results["elapsed_s"] = time.perf_counter() - start
    runs.write_json(out / "results.json", results)
    checkpoint.remove(folder)
    return entry


def json_round_trip(results: dict) -> dict:
    """``results`` as ``results.json`` holds it (numpy arrays as lists, NaN as None)."""
    import json

    return json.loads(json.dumps(runs.to_jsonable(results)))


def fmt(x, digits: int = 3) -> str:
    """A number for a report: ``digits`` significant digits, ``n/a`` for None or non-finite.

    Example:
        >>> fmt(0.123456), fmt(None), fmt(float("nan")), fmt(12345.0, 2)
        ('0.123', 'n/a', 'n/a', '1.2e+04')
    """
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def machine_line(results: dict) -> str:
    """The report line that says how long the run took and on what."""
    m = results["machine"]
    return (
        f"Ran in {results['elapsed_s'] / 60:.1f} minutes on {m['cpu']} ({m['cores']} cores, backend "
        f"{m['backend']}), jax {m['versions'].get('jax', '?')}."
    )
