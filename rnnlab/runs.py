"""Run folders that never hold a half-written file: atomic writes, the machine a run came from.

Every writer goes through :func:`atomic_write`: the content goes to a temporary file in the same
folder, is flushed to disk, and is renamed over the destination (a rename is atomic on POSIX), so
an interrupted run leaves either the previous file or the new one, never a truncated one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import pathlib
import platform
import secrets
import shutil
import sys
from typing import Any

import numpy as np


def _writes_results() -> bool:
    """In a multi-host run only process 0 writes run folders (every process holds the same results)."""
    jax = sys.modules.get("jax")
    return jax is None or jax.process_count() == 1 or jax.process_index() == 0


def atomic_write(path, data: bytes | str) -> pathlib.Path:
    """Writes ``data`` to ``path`` atomically (temporary file, fsync, rename); creates the folder.

    In a multi-host run (:mod:`rnnlab.distributed`) only process 0 writes.

    Example:
        >>> import pathlib, tempfile
        >>> p = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a" / "note.txt", "hello")
        >>> p.read_text()
        'hello'
    """
    path = pathlib.Path(path)
    if not _writes_results():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _create_temporary(path: pathlib.Path) -> tuple[int, str]:
    """A new file beside ``path``, opened for writing, with the mode the process's umask gives a new file.

    (``tempfile.mkstemp`` would make it 0600, and the rename would carry that over to the result.)
    """
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue


def to_jsonable(obj: Any) -> Any:
    """Converts numpy/jax scalars and arrays, tuples and dataclass-like dicts to JSON types.

    Non-finite floats become ``None`` (JSON has no NaN), so a reader never averages one silently.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        arr = np.asarray(obj)
        return to_jsonable(arr.item()) if arr.ndim == 0 else [to_jsonable(v) for v in arr.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_json(path, obj: Any) -> pathlib.Path:
    """Writes ``obj`` as indented JSON, atomically (see :func:`to_jsonable` for the conversions)."""
    return atomic_write(path, json.dumps(to_jsonable(obj), indent=1, allow_nan=False) + "\n")


def write_npz(path, **arrays) -> pathlib.Path:
    """Writes numpy arrays to a compressed ``.npz`` atomically (read back with ``allow_pickle=False``)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write(path, buf.getvalue())


def save_figure(fig, path, dpi: int = 150) -> pathlib.Path:
    """Saves a matplotlib figure (format from the suffix) atomically and closes it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format=pathlib.Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def parse_lengths(text: str) -> dict[str, tuple[int, ...]]:
    """Parses an experiment's ``--lengths``: ``"adding=25,100;copy=50"`` -> ``{"adding": (25, 100), "copy": (50,)}``.

    Raises ``argparse.ArgumentTypeError`` (which argparse prints as the option's error) on bad input.

    Example:
        >>> parse_lengths("adding=25,100;copy=50")
        {'adding': (25, 100), 'copy': (50,)}
    """
    out = {}
    for part in filter(None, text.split(";")):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"--lengths: expected TASK=N,N,...; got {part!r}")
        task, values = part.split("=", 1)
        try:
            out[task.strip()] = tuple(int(v) for v in values.split(",") if v.strip())
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"--lengths: lengths must be integers; got {values!r}") from e
    return out


def previous_results(out, config: dict) -> dict | None:
    """The ``results.json`` an interrupted run of the same ``config`` left in ``out``, for ``--resume``.

    Returns ``None`` when there is none (the run may still have left training checkpoints);
    raises ``ValueError`` naming the differing keys when the folder's ``results.json`` or
    ``config.json`` was written by another config (resuming it would mix two experiments, or
    continue another experiment's checkpoints, in one folder).
    """
    out = pathlib.Path(out)
    mine = json.loads(json.dumps(to_jsonable(config)))
    previous = None
    for path in (out / "results.json", out / "config.json"):
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        theirs = data.get("config") if path.name == "results.json" else data
        if theirs != mine:
            theirs = theirs if isinstance(theirs, dict) else {}
            differ = sorted(k for k in set(mine) | set(theirs) if theirs.get(k) != mine.get(k))
            raise ValueError(
                f"--resume: {path} was written by a different config (differs in {differ}); use another --out"
            )
        if path.name == "results.json":
            previous = data
    return previous


def claim_folder(out, *, resume: bool, overwrite: bool) -> None:
    """Checks that a run may start in the folder ``out``; with ``overwrite``, clears the earlier run.

    A folder that holds an earlier run (its ``results.json``, or the ``checkpoints/`` an
    interrupted one left) is not written over by accident: without ``resume`` (continue it) or
    ``overwrite`` (start over) this raises ``FileExistsError`` saying which, before any work is done.
    With ``overwrite`` the earlier ``results.json`` and ``checkpoints/`` are deleted first (other
    files are rewritten as the new run writes them); ``resume`` and ``overwrite`` exclude each other.

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp())
        >>> claim_folder(out, resume=False, overwrite=False)  # an empty folder: fine
        >>> _ = write_json(out / "results.json", {"runs": []})
        >>> claim_folder(out, resume=False, overwrite=False)
        Traceback (most recent call last):
        ...
        FileExistsError: ... holds the results of an earlier run (results.json): pass --resume ...
        >>> claim_folder(out, resume=False, overwrite=True)
        >>> (out / "results.json").exists()
        False
    """
    out = pathlib.Path(out)
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite deletes it: pass one of them")
    results, checkpoints = out / "results.json", out / "checkpoints"
    interrupted = checkpoints.is_dir() and any(checkpoints.iterdir())  # a finished run leaves it empty
    if resume or not (results.exists() or interrupted):
        return
    if overwrite:
        if _writes_results():
            results.unlink(missing_ok=True)
            shutil.rmtree(checkpoints, ignore_errors=True)
        return
    what = (
        "an interrupted run (checkpoints/)" if interrupted else "the results of an earlier run (results.json)"
    )
    raise FileExistsError(
        f"{out} holds {what}: pass --resume to continue it, --overwrite to delete it and start over, "
        "or another --out"
    )


def seed_stats(values) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max over the finite entries, and how many were not.

    A diverged seed's NaN or inf is counted in ``non_finite`` instead of poisoning the mean; with
    no finite entry the statistics are ``None``.

    Example:
        >>> seed_stats([1.0, 3.0, float("nan")])
        {'mean': 2.0, 'std': 1.4142135623730951, 'min': 1.0, 'max': 3.0, 'non_finite': 1}
    """
    x = np.asarray(values, np.float64).reshape(-1)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "non_finite": int(x.size)}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "min": float(finite.min()),
        "max": float(finite.max()),
        "non_finite": int(x.size - finite.size),
    }


def machine_info() -> dict[str, Any]:
    """The facts a benchmark or result needs next to it: CPU, cores, backend, library versions."""
    import jax

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy"):
        with contextlib.suppress(Exception):
            versions[name] = __import__(name).__version__
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
    }
