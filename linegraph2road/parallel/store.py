"""Resumable runs: finished tasks recorded atomically under the output folder.

A run's folder holds::

    manifest.json        the run: command, inputs (name, size, mtime), the options' full
                         dataclasses.asdict, the checkpoint's SHA-256...; its key; whether it
                         completed, and the task records once it did
    tasks/{id}.json      one record per finished task, written by the worker that finished it,
                         atomically, *after* the task's outputs are in place
    completions.log      one line per task completion (``id<TAB>run key<TAB>pid``), appended

The records, not the manifest, say what is done: a client killed with SIGKILL loses nothing a
worker finished. A re-run of the same command (same ``run`` record, hence the same key) skips
every task whose record is there and whose files all exist; a task whose worker died before its
record was written runs again (its outputs are rewritten atomically, so nothing half-written is
ever used). Another ``run`` (a changed checkpoint, option or input) starts fresh: the old records
and the files they list are removed first, so results of two runs are never mixed.

A worker also checks the record before it starts a task (:meth:`StoreRef.done`): a task that a
lost worker had finished, and that Dask reran elsewhere, is not computed twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linegraph2road.io._atomic import atomic_path

__all__ = ["StoreRef", "TaskStore", "run_key"]

MANIFEST = "manifest.json"
LOG = "completions.log"


def run_key(run: dict[str, Any]) -> str:
    """A short stable key of a ``run`` record (SHA-256 of its sorted JSON)."""
    text = json.dumps(run, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_json(path: Path, doc: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")


@dataclass(frozen=True)
class StoreRef:
    """What a task carries to record itself: the run's folder and key (small, picklable)."""

    folder: str
    key: str

    def _record_path(self, task_id: str) -> Path:
        return Path(self.folder) / "tasks" / f"{task_id}.json"

    def done(self, task_id: str) -> dict[str, Any] | None:
        """The task's record when this run finished it and its files all exist, else None.

        ``files`` in a record are relative to the run's folder's parent (the output folder).
        """
        path = self._record_path(task_id)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("run_key") != self.key:
            return None
        base = Path(self.folder).parent
        if not all((base / f).is_file() for f in record.get("files", [])):
            return None
        return record

    def commit(self, task_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """Record a finished task (call after its outputs are in place); returns the record.

        A task already recorded by this run (finished elsewhere meanwhile: a task whose client
        died goes on running on its worker) keeps its first record and logs no completion.
        """
        earlier = self.done(task_id)
        if earlier is not None:
            return earlier
        full = {**record, "task": task_id, "run_key": self.key}
        _write_json(self._record_path(task_id), full)
        line = f"{task_id}\t{self.key}\t{os.getpid()}\n"
        fd = os.open(Path(self.folder) / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(fd, line.encode())  # one short O_APPEND write: lines never interleave
        finally:
            os.close(fd)
        return full


class TaskStore:
    """The client's view of a run's folder (see the module docstring).

    Parameters
    ----------
    folder : path
        The run's folder (created); its parent is the output folder that record ``files`` are
        relative to.
    run : dict
        JSON-able description of the run; any change starts fresh.
    """

    def __init__(self, folder: str | os.PathLike[str], run: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.run = json.loads(json.dumps(run, sort_keys=True, default=str))
        self.ref = StoreRef(str(self.folder), run_key(self.run))
        self.stale = False
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "tasks").mkdir(exist_ok=True)
        old = self._read_manifest()
        if old is not None and old.get("run_key") != self.ref.key:
            self.stale = True
            self._remove_old()
        self.write(complete=False)

    def _read_manifest(self) -> dict[str, Any] | None:
        try:
            doc = json.loads((self.folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def _remove_old(self) -> None:
        base = self.folder.parent
        for path in sorted((self.folder / "tasks").glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                for f in json.loads(path.read_text()).get("files", []):
                    target = base / f
                    if target.resolve().is_relative_to(self.folder.resolve()):
                        target.unlink(missing_ok=True)  # our own intermediate results only
            path.unlink(missing_ok=True)
        (self.folder / LOG).unlink(missing_ok=True)
        shutil.rmtree(self.folder / "results", ignore_errors=True)

    def done(self, task_id: str) -> dict[str, Any] | None:
        """See :meth:`StoreRef.done`."""
        return self.ref.done(task_id)

    def completions(self) -> list[str]:
        """Task ids in ``completions.log`` of this run, one per completion, in order."""
        try:
            lines = (self.folder / LOG).read_text().splitlines()
        except OSError:
            return []
        return [
            ln.split("\t")[0]
            for ln in lines
            if ln.count("\t") == 2 and ln.split("\t")[1] == self.ref.key
        ]

    def write(self, *, complete: bool, **extra: Any) -> None:
        """Rewrite ``manifest.json`` (atomically) with the run, its key and ``extra``."""
        _write_json(
            self.folder / MANIFEST,
            {"run": self.run, "run_key": self.ref.key, "complete": complete, **extra},
        )
