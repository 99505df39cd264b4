"""One execution layer for batch work: in this process, a local Dask cluster, or an existing one.

:class:`Executor` is a context manager; :meth:`Executor.run` takes a module-level function and
a list of ``(key, argument)`` tasks and yields one :class:`TaskOutcome` per task as tasks finish.
Arguments and return values are small (paths, option objects, counts): big arrays stay on the
workers and in files. What this layer adds to Dask (``dask.distributed``):

* **Before any work** it connects (an unreachable scheduler is a
  :class:`~linegraph2road.errors.ParameterError` naming the address), waits for a worker, and
  runs a probe on every worker that imports linegraph2road and reports its version and cores: a
  worker that cannot import the package, or has another version, is refused the same way.
* **Threads**: each task first sets torch's threads of its worker process
  (:func:`~.cache.set_threads`): ``threads`` when given, else the host's cores divided by the
  l2r worker processes on that host, so workers do not fight for cores.
* **Failures**: a task raising an :class:`~linegraph2road.errors.L2RError` or a missing /
  unreadable file (:data:`INPUT_ERRORS`: a corrupt tile...) is one failed outcome with a
  one-line message; the other tasks go on. Other exceptions (a full disk, a bug) stop the run.
  A worker lost mid-task (killed, out of memory) is handled by Dask's scheduler,
  which reruns its tasks on other workers up to ``distributed.scheduler.allowed-failures`` times
  (3 by default) before the task fails with ``KilledWorker``.
* **Progress**: a tqdm bar over the tasks on stderr.

Local clusters listen on 127.0.0.1 only and have no dashboard.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linegraph2road.errors import L2RError, ParameterError
from linegraph2road.parallel.cache import set_threads
from linegraph2road.parallel.options import ParallelOptions

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

__all__ = ["Executor", "TaskOutcome", "one_line"]

#: What a task may raise on bad input: a failed task, the others go on. Anything else (a full
#: disk, a bug) stops the run, as it would in one process.
INPUT_ERRORS = (L2RError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
#: Seconds to wait for the first worker of an existing cluster.
WORKER_WAIT_S = 30.0


def one_line(exc: BaseException, limit: int = 400) -> str:
    """``"FormatError: a.tif: not an image GDAL can read (...)"`` on one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class TaskOutcome:
    """How one task ended.

    Attributes
    ----------
    key : str
        The task's key as given to :meth:`Executor.run`.
    value : Any
        What the function returned (None when it failed).
    error : str or None
        One line when the task failed (``"FormatError: ..."``), else None.
    """

    key: str
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _call(fn: Callable[[Any], Any], arg: Any, threads: dict[str, int] | int | None) -> Any:
    """Worker side of a task: set the threads, run, turn input errors into a failure record."""
    if isinstance(threads, dict):
        from distributed import get_worker

        host = get_worker().address.rsplit(":", 1)[0]
        set_threads(threads.get(host, os.cpu_count() or 1))
    elif threads is not None:
        set_threads(threads)
    try:
        return ("ok", fn(arg))
    except INPUT_ERRORS as exc:
        return ("failed", one_line(exc))


def _probe() -> tuple[str, int]:
    """Run on every worker before any task: the package imports; its version and cores."""
    import linegraph2road

    return linegraph2road.__version__, os.cpu_count() or 1


class Executor:
    """Runs tasks where :class:`ParallelOptions` says (see the module docstring).

    Use as a context manager: entering connects to (or starts) the cluster and checks its
    workers, leaving closes what was started here.
    """

    def __init__(self, options: ParallelOptions | None = None) -> None:
        self.options = options or ParallelOptions()
        self.client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._threads: dict[str, int] | int | None = self.options.threads
        self.workers: dict[str, tuple[str, int]] = {}

    # -- lifetime -------------------------------------------------------------------------------
    def __enter__(self) -> Executor:
        if not self.options.distributed:
            return self
        try:
            if self.options.address is not None:
                self._connect(self.options.address)
            else:
                self._start_local(self.options.workers)
            self._check_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client, and the local cluster when this executor started it."""
        client, cluster = self.client, self._cluster
        self.client, self._cluster = None, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def _connect(self, address: str) -> None:
        import dask
        from distributed import Client

        timeout = dask.config.get("distributed.comm.timeouts.connect", "30s")
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ParameterError(
                f"cannot reach the Dask scheduler at {address} ({one_line(exc, 200)}); start one "
                "with `dask scheduler` (and workers with `dask worker ADDRESS`), or drop "
                f"--scheduler / unset L2R_DASK_SCHEDULER to run on this machine"
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, OSError) as exc:
            raise ParameterError(
                f"the Dask scheduler at {address} has no workers (waited {WORKER_WAIT_S:g} s: "
                f"{one_line(exc, 120)}); start some with `dask worker {address}`"
            ) from None

    def _start_local(self, n: int) -> None:
        from distributed import Client, LocalCluster

        self._cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            # every server (scheduler, workers, their HTTP endpoints) on 127.0.0.1, free ports
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
        )
        self.client = Client(self._cluster, set_as_default=False)
        if self._threads is None:
            self._threads = max(1, (os.cpu_count() or 1) // n)

    def _check_workers(self) -> None:
        import linegraph2road

        assert self.client is not None
        try:
            self.workers = self.client.run(_probe)
        except Exception as exc:
            raise ParameterError(
                f"a Dask worker cannot run l2r tasks ({one_line(exc, 200)}); install "
                f"linegraph2road {linegraph2road.__version__} in every worker's environment"
            ) from None
        other = {a: v for a, (v, _) in self.workers.items() if v != linegraph2road.__version__}
        if other:
            addr, version = next(iter(other.items()))
            raise ParameterError(
                f"Dask worker {addr} runs linegraph2road {version}, this client "
                f"{linegraph2road.__version__}; install the same version on every worker"
            )
        if self._threads is None:
            hosts: dict[str, list[int]] = {}
            for addr, (_, cores) in self.workers.items():
                hosts.setdefault(addr.rsplit(":", 1)[0], []).append(cores)
            self._threads = {h: max(1, c[0] // len(c)) for h, c in hosts.items()}

    # -- running --------------------------------------------------------------------------------
    def run(
        self,
        fn: Callable[[Any], Any],
        tasks: Sequence[tuple[str, Any]],
        *,
        desc: str = "tasks",
        unit: str = "task",
    ) -> Iterator[TaskOutcome]:
        """Run ``fn(argument)`` for every ``(key, argument)``; yield outcomes as they finish.

        ``fn`` must be a module-level function of an importable module (workers import it), and
        its argument and return value picklable and small.
        """
        from tqdm import tqdm

        bar = tqdm(
            total=len(tasks),
            desc=desc,
            unit=unit,
            file=sys.stderr,
            disable=None if self.options.progress else True,  # a bar on terminals only
            leave=False,
        )
        with bar:
            source = self._local(fn, tasks) if self.client is None else self._dask(fn, tasks, desc)
            for outcome in source:
                bar.update()
                yield outcome

    def _local(
        self, fn: Callable[[Any], Any], tasks: Sequence[tuple[str, Any]]
    ) -> Iterator[TaskOutcome]:
        for key, arg in tasks:
            status, value = _call(fn, arg, self._threads)
            yield _outcome(key, status, value)

    def _dask(
        self, fn: Callable[[Any], Any], tasks: Sequence[tuple[str, Any]], desc: str
    ) -> Iterator[TaskOutcome]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        assert self.client is not None
        run_id = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(
                _call,
                fn,
                arg,
                self._threads,
                key=f"l2r-{desc.replace(' ', '-')}-{run_id}-{i}",
                pure=False,
                retries=0,
            )
            for i, (_, arg) in enumerate(tasks)
        ]
        keys = {fut.key: key for fut, (key, _) in zip(futures, tasks, strict=True)}
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                try:
                    status, value = fut.result()
                except KilledWorker as exc:  # its workers kept dying: that task fails
                    status, value = "failed", one_line(exc)
                yield _outcome(keys[fut.key], status, value)
        finally:
            self.client.cancel(futures, force=True)


def _outcome(key: str, status: str, value: Any) -> TaskOutcome:
    if status == "ok":
        return TaskOutcome(key, value=value)
    return TaskOutcome(key, error=str(value))
