"""Scale-out: one execution layer for batch work on Dask (SPEC "Scale-out (Dask)").

* :class:`ParallelOptions` (:mod:`.options`): in this process, ``--workers N`` local Dask
  workers, or ``--scheduler ADDRESS`` / ``L2R_DASK_SCHEDULER`` for an existing cluster;
* :class:`Executor` (:mod:`.executor`): runs ``(key, argument)`` tasks there, with worker
  checks before any work, per-worker torch threads, a progress bar and per-task failures;
* :func:`cached_model` (:mod:`.cache`): a worker loads each checkpoint once, keyed by its path
  and SHA-256;
* :class:`TaskStore` (:mod:`.store`): finished tasks recorded atomically under the output
  folder, so that a re-run of the same command resumes.
"""

from __future__ import annotations

from linegraph2road.parallel.cache import cached_model, clear_cache, file_sha256, set_threads
from linegraph2road.parallel.executor import Executor, TaskOutcome, one_line
from linegraph2road.parallel.options import SCHEDULER_ENV, ParallelOptions
from linegraph2road.parallel.store import StoreRef, TaskStore, run_key

__all__ = [
    "SCHEDULER_ENV",
    "Executor",
    "ParallelOptions",
    "StoreRef",
    "TaskOutcome",
    "TaskStore",
    "cached_model",
    "clear_cache",
    "file_sha256",
    "one_line",
    "run_key",
    "set_threads",
]
