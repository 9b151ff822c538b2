"""Checkpoints of a training loop's full state, written with Orbax, and the folder scope experiments use.

A :class:`Checkpointer` keeps the last ``keep`` checkpoints of one training loop in one folder:
a fixed-structure ``state`` (parameters, optimizer state, step counts, early-stopping bookkeeping;
restored into the structure, dtypes and shardings of a template, so a resumed run continues
bit for bit) and a variable-size ``log`` of numpy arrays (the curves so far). Orbax writes each
checkpoint into a temporary folder and renames it when complete, so a process killed mid-save
leaves the previous checkpoint intact and readable.

:func:`scope` lets a loop deep inside an experiment checkpoint without threading a path through
every call: :func:`rnnlab.fit.fit` asks :func:`next_checkpointer` for one when it was not given
one explicitly, and the scope hands out ``<folder>/fit-0``, ``fit-1``, ... in call order (the
order is deterministic, so a resumed run finds its own loops' checkpoints). A scope's loops save
at their evaluations, at most once a minute by default (:func:`interval`; the experiments'
``--checkpoint-seconds``), so short runs pay nothing for it.

PRNG keys are stored as their raw key data and wrapped again on restore. Orbax is imported when
the first checkpoint is written or read, not when rnnlab is.

Example:
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> ckpt = Checkpointer(pathlib.Path(tempfile.mkdtemp()) / "ckpt")
    >>> ckpt.save(10, {"w": np.ones(3, np.float32)}, log={"loss": np.arange(10.0)})
    >>> step, state, log = ckpt.restore({"w": np.zeros(3, np.float32)})
    >>> step, state["w"].tolist(), float(log["loss"][-1])
    (10, [1.0, 1.0, 1.0], 9.0)
"""

from __future__ import annotations

import contextlib
import contextvars
import pathlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from rnnlab import _checks


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _stored(state):
    """``state`` as Orbax stores it: PRNG keys as their key data, Python and numpy scalars as arrays."""
    state = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    return jax.tree.map(lambda x: np.asarray(x) if isinstance(x, (np.generic, int, float)) else x, state)


def _layout(stored) -> list[list]:
    """``[path, shape, dtype]`` of every leaf: what a restore must find again, None fields included
    (a field that is None in one tree and an array in the other changes the paths)."""
    leaves = jax.tree_util.tree_flatten_with_path(stored)[0]
    return [[jax.tree_util.keystr(p), [int(n) for n in np.shape(x)], str(np.dtype(x.dtype))] for p, x in leaves]


def _first_difference(saved: list, wanted: list) -> str:
    saved_by_path, wanted_by_path = {p: (s, d) for p, s, d in saved}, {p: (s, d) for p, s, d in wanted}
    for path, (shape, dtype) in wanted_by_path.items():
        if path not in saved_by_path:
            return f"state{path} (shape {tuple(shape)}, {dtype}) is not in the checkpoint"
        if saved_by_path[path] != (shape, dtype):
            got_shape, got_dtype = saved_by_path[path]
            return (
                f"state{path} has shape {tuple(got_shape)}, {got_dtype} in the checkpoint; this run's has "
                f"shape {tuple(shape)}, {dtype}"
            )
    extra = [path for path in saved_by_path if path not in wanted_by_path]
    if extra:
        return f"the checkpoint holds state{extra[0]}, which this run's state has not"
    return "the leaves are in another order"


class Checkpointer:
    """The checkpoints of one training loop, in ``directory``.

    Args:
        directory: the folder (created on the first save).
        every: save on every ``every``-th call of :meth:`maybe_save` (a loop calls it at each
            evaluation); :meth:`save` always saves.
        seconds: and only when at least this much wall time has passed since the last save (or
            since the Checkpointer was made): a run loses at most about that much work, and
            short runs write no checkpoint at all.
        keep: how many of the latest checkpoints to keep.
    """

    def __init__(self, directory, *, every: int = 1, seconds: float = 0.0, keep: int = 2):
        self.directory = pathlib.Path(directory).absolute()
        self.every = _checks.positive_int("Checkpointer", "every", every)
        self.seconds = _checks.real_number("Checkpointer", "seconds", seconds)
        if not self.seconds >= 0:
            raise ValueError(f"Checkpointer: seconds must be >= 0; got {seconds}")
        self.keep = _checks.positive_int("Checkpointer", "keep", keep)
        self._calls = 0
        self._last = time.monotonic()
        self._manager = None

    def _mgr(self):
        if self._manager is None:
            import orbax.checkpoint as ocp

            options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, enable_async_checkpointing=False)
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None when there is none."""
        if not self.directory.exists():
            return None
        return self._mgr().latest_step()

    def save(self, step: int, state, log: dict[str, np.ndarray] | None = None) -> None:
        """Writes checkpoint ``step``: the pytree ``state`` and the numpy arrays ``log``."""
        import orbax.checkpoint as ocp

        state = _stored(state)
        log = {k: np.asarray(v) for k, v in (log or {}).items()}
        empty = sorted(k for k, v in log.items() if v.size == 0)
        if empty:
            raise ValueError(f"Checkpointer.save: log entries {empty} are empty; Orbax cannot store empty arrays")
        items = {"state": ocp.args.StandardSave(state), "layout": ocp.args.JsonSave(_layout(state))}
        if log:
            items["log"] = ocp.args.StandardSave(log)
        self._mgr().save(int(step), args=ocp.args.Composite(**items), force=True)
        self._mgr().wait_until_finished()
        self._last = time.monotonic()

    def maybe_save(self, step: int, state, log: dict[str, np.ndarray] | None = None) -> bool:
        """:meth:`save` on every ``every``-th call once ``seconds`` have passed; returns whether it saved."""
        self._calls += 1
        if self._calls % self.every or time.monotonic() - self._last < self.seconds:
            return False
        self.save(step, state, log)
        return True

    def restore(self, template) -> tuple[int, Any, dict[str, np.ndarray]] | None:
        """``(step, state, log)`` of the newest checkpoint, or None when there is none.

        ``state`` takes the structure, dtypes and shardings of ``template`` (the loop's state as it
        would start); a checkpoint of another structure raises a ValueError naming the folder and
        the first leaf that differs: a field that is None on one side only (params of another
        variant), or another shape or dtype.
        """
        import orbax.checkpoint as ocp

        step = self.latest_step()
        if step is None:
            return None
        target = _stored(template)
        if (self.directory / str(step) / "layout").exists():  # written since the layout was recorded
            saved = self._mgr().restore(step, args=ocp.args.Composite(layout=ocp.args.JsonRestore()))["layout"]
            wanted = _layout(target)
            if saved != wanted:
                raise ValueError(
                    f"Checkpointer.restore: the checkpoint at step {step} in {self.directory} does not match this "
                    f"run's state (was it written by another model or config?): {_first_difference(saved, wanted)}"
                )
        items = {"state": ocp.args.StandardRestore(target)}
        if (self.directory / str(step) / "log").exists():
            items["log"] = ocp.args.StandardRestore()
        try:
            restored = self._mgr().restore(step, args=ocp.args.Composite(**items))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"Checkpointer.restore: the checkpoint at step {step} in {self.directory} does not match this "
                f"run's state (was it written by another model or config?): {e}"
            ) from e
        def back(t, x):
            if _is_key(t):
                return jax.random.wrap_key_data(x, impl=jax.random.key_impl(t))
            if isinstance(t, (np.ndarray, np.generic, int, float)):
                return np.array(x)  # a writable numpy array, as the template's was
            return x

        state = jax.tree.map(back, template, restored["state"])
        log = {k: np.asarray(v) for k, v in (restored.get("log") or {}).items()}
        return int(step), state, log

    def check_keys(self, where: str, saved, given) -> None:
        """Raises a ValueError unless the PRNG keys ``saved`` in a checkpoint are the run's ``given`` ones.

        A checkpoint is only continued by the run that wrote it; the keys are what tells two runs of
        the same model apart (other seeds, another experiment point).
        """
        if not np.array_equal(jax.random.key_data(saved), jax.random.key_data(given)):
            raise ValueError(
                f"{where}: the checkpoint in {self.directory} was written by a run with other keys; "
                "delete it or use another folder"
            )

    def clear(self) -> None:
        """Deletes every checkpoint of this loop (e.g. once its results are written)."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None


class _Scope:
    def __init__(self, directory: pathlib.Path, every: int, seconds: float):
        self.directory = directory
        self.every = every
        self.seconds = seconds
        self.handed_out = 0


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("rnnlab_checkpoint_scope", default=None)
DEFAULT_SECONDS = 60.0
_SECONDS: contextvars.ContextVar[float] = contextvars.ContextVar("rnnlab_checkpoint_seconds", default=DEFAULT_SECONDS)


@contextlib.contextmanager
def interval(seconds: float) -> Iterator[float]:
    """Within the block, :func:`scope` checkpoints at most every ``seconds`` of wall time (default 60).

    The experiments' ``--checkpoint-seconds`` sets it for a whole run.
    """
    seconds = _checks.real_number("checkpoint.interval", "seconds", seconds)
    if not seconds >= 0:
        raise ValueError(f"checkpoint.interval: seconds must be >= 0; got {seconds}")
    token = _SECONDS.set(seconds)
    try:
        yield seconds
    finally:
        _SECONDS.reset(token)


@contextlib.contextmanager
def scope(directory, *, resume: bool, every: int = 1, seconds: float | None = None,
          clear_on_exit: bool = True) -> Iterator[pathlib.Path]:  # fmt: skip
    """Training loops run inside checkpoint into ``directory/fit-<k>``, the k-th loop started.

    Args:
        directory: the scope's folder, e.g. ``<run folder>/checkpoints/<grid point>``.
        resume: keep the checkpoints already there, so the loops continue from them; otherwise
            they are deleted first (a fresh run never continues an old one by accident).
        every: the loops' :class:`Checkpointer` ``every``.
        seconds: their ``seconds``; default: the enclosing :func:`interval`'s, else 60.
        clear_on_exit: delete the folder when the block finishes without an exception (its
            results are then written elsewhere); an interrupted block keeps it for a resume.
    """
    directory = pathlib.Path(directory).absolute()
    if not resume:
        shutil.rmtree(directory, ignore_errors=True)
    every = _checks.positive_int("checkpoint.scope", "every", every)
    token = _SCOPE.set(_Scope(directory, every, _SECONDS.get() if seconds is None else float(seconds)))
    try:
        yield directory
    finally:
        _SCOPE.reset(token)
    if clear_on_exit:
        shutil.rmtree(directory, ignore_errors=True)


def remove(directory) -> None:
    """Deletes a :func:`scope`'s folder, e.g. once the results its loops produced are written."""
    shutil.rmtree(pathlib.Path(directory), ignore_errors=True)


def next_checkpointer() -> Checkpointer | None:
    """The next loop's :class:`Checkpointer` in the enclosing :func:`scope`, or None outside one."""
    current = _SCOPE.get()
    if current is None:
        return None
    k = current.handed_out
    current.handed_out += 1
    return Checkpointer(current.directory / f"fit-{k}", every=current.every, seconds=current.seconds)
