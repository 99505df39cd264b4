"""Where batch work runs: one typed, frozen object shared by every batch command.

``l2r extract``, ``l2r segment``, ``l2r eval`` and ``l2r prep dataset`` take the same three
choices (SPEC "Scale-out (Dask)"):

* ``workers=1`` and no scheduler: tasks run one after the other in this process (no Dask);
* ``workers=N > 1``: a local Dask cluster of ``N`` worker processes on 127.0.0.1;
* ``scheduler="tcp://host:8786"`` (or the ``L2R_DASK_SCHEDULER`` environment variable): an
  existing Dask cluster (``dask scheduler`` + ``dask worker``, dask-jobqueue, Kubernetes...);
  ``workers`` is then ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from linegraph2road.errors import ParameterError

__all__ = ["SCHEDULER_ENV", "ParallelOptions"]

#: Environment variable naming the scheduler of an existing Dask cluster.
SCHEDULER_ENV = "L2R_DASK_SCHEDULER"


@dataclass(frozen=True)
class ParallelOptions:
    """How a batch command runs its tasks.

    Attributes
    ----------
    workers : int
        Worker processes of a local cluster; 1 (default) runs the tasks in this process.
    scheduler : str or None
        Address of an existing Dask scheduler (``tcp://10.0.0.5:8786``); None = the
        ``L2R_DASK_SCHEDULER`` environment variable when set, else a local run.
    threads : int or None
        Torch (and numba) threads per worker; None = this machine's cores divided by the local
        workers, or on a cluster each worker host's cores divided by its l2r worker processes. An
        in-process run (one worker) leaves the process's setting as it is unless given.
    progress : bool
        A progress bar over the tasks on stderr.
    """

    workers: int = 1
    scheduler: str | None = None
    threads: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ParameterError(f"--workers must be at least 1, got {self.workers!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ParameterError(f"--threads must be at least 1, got {self.threads!r}")
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise ParameterError("--scheduler is empty; give an address like tcp://HOST:8786")

    @property
    def address(self) -> str | None:
        """The scheduler to connect to: ``scheduler``, else ``$L2R_DASK_SCHEDULER``, else None."""
        if self.scheduler:
            return str(self.scheduler).strip()
        env = os.environ.get(SCHEDULER_ENV, "").strip()
        return env or None

    @property
    def distributed(self) -> bool:
        """True when tasks run on Dask workers (a local cluster or an existing one)."""
        return self.address is not None or self.workers > 1

    def describe(self) -> str:
        """``"in this process"``, ``"on 4 local Dask workers"``, ``"on the Dask cluster at
        tcp://..."``."""
        if self.address is not None:
            return f"on the Dask cluster at {self.address}"
        if self.workers > 1:
            return f"on {self.workers} local Dask workers"
        return "in this process"
