"""Long-lag benchmark tasks as jit-native generators (adding, multiplication, copy memory, temporal order).

Each task is a :class:`Task`, a NamedTuple of pure functions: ``sample(key, batch_size, length) -> Batch``,
``loss``, ``metric``, ``success`` (the published per-sequence criterion) and ``baseline(length)`` (the exact
chance-level loss). ``length`` sets the lag so it can be swept. See ``rnnlab/tasks/_base.py`` for the conventions.

Example:
  >>> import jax
  >>> from rnnlab import tasks
  >>> sorted(tasks.TASKS)
  ['adding', 'adding_hs97', 'copy', 'multiplication', 'temporal_order', 'temporal_order_pascanu']
  >>> task = tasks.get("copy")
  >>> batch = task.sample(jax.random.key(0), batch_size=8, length=100)
  >>> batch.inputs.shape, task.time_steps(100)
  ((8, 120, 10), 120)
"""

from __future__ import annotations

from rnnlab.tasks._base import Batch, Task
from rnnlab.tasks.adding import adding, adding_hs97, multiplication
from rnnlab.tasks.copy_memory import copy_memory
from rnnlab.tasks.temporal_order import temporal_order, temporal_order_pascanu

TASKS: dict[str, Task] = {
    "adding": adding(),
    "adding_hs97": adding_hs97(),
    "multiplication": multiplication(),
    "copy": copy_memory(),
    "temporal_order": temporal_order(),
    "temporal_order_pascanu": temporal_order_pascanu(),
}


def get(name: str) -> Task:
    """Returns the registered :class:`Task` called ``name``.

    Raises:
      ValueError: if ``name`` is not in :data:`TASKS` (the message lists the names).
    """
    if name not in TASKS:
        raise ValueError(f"tasks.get: unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name]


__all__ = [
    "TASKS",
    "Batch",
    "Task",
    "adding",
    "adding_hs97",
    "copy_memory",
    "get",
    "multiplication",
    "temporal_order",
    "temporal_order_pascanu",
]
