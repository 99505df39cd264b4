"""Per-process state of a worker: loaded models, file hashes, thread settings.

A Dask worker process runs many tasks; each task carries a checkpoint *path* and the SHA-256 the
client computed, never the weights. :func:`cached_model` loads a model the first time a process
needs it and hands the same object to every later task with the same ``(path, sha256)``, so a
worker loads each model once, not once per task. The worker hashes its own copy of the file once
(memoised on path, size and modification time) and refuses a file that differs from the client's
(another version of the checkpoint on that machine would silently mix results otherwise).

The cache holds at most :data:`MAX_MODELS` models (least recently used dropped first): a sweep
over checkpoints does not keep every model in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from linegraph2road.errors import CheckpointError, InputFileError

__all__ = ["MAX_MODELS", "cached_model", "clear_cache", "file_sha256", "set_threads"]

T = TypeVar("T")

#: Models kept per process.
MAX_MODELS = 2
_CHUNK = 1 << 22

_lock = threading.RLock()
_models: OrderedDict[Hashable, Any] = OrderedDict()
_hashes: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, memoised per process on ``(real path, size, mtime_ns)``.

    Raises
    ------
    InputFileError
        The file is missing or unreadable.
    """
    p = Path(path)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    with _lock:
        if key in _hashes:
            return _hashes[key]
    digest = hashlib.sha256()
    try:
        with open(p, "rb") as fh:
            while block := fh.read(_CHUNK):
                digest.update(block)
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    with _lock:
        _hashes[key] = digest.hexdigest()
        return _hashes[key]


def cached_model(
    kind: str, path: str | os.PathLike[str], sha256: str | None, loader: Callable[[], T]
) -> T:
    """The object ``loader()`` builds for a checkpoint, built once per process.

    Parameters
    ----------
    kind : str
        What is loaded (``"extract"``, ``"segment"``...): one file can give several objects.
    path : path
        The checkpoint as this process sees it.
    sha256 : str or None
        The client's hash of the checkpoint; None = this process's own hash.
    loader : callable
        Builds the object (called at most once per ``(kind, path, sha256)`` while cached).

    Raises
    ------
    CheckpointError
        The file here has another hash than the client's.
    """
    here = file_sha256(path)
    if sha256 is not None and here != sha256:
        raise CheckpointError(
            f"{path}: this worker's copy of the checkpoint differs from the client's "
            f"(sha256 {here[:12]} vs {sha256[:12]}); give every worker the same file"
        )
    key = (kind, str(Path(path).resolve()), here)
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        obj = loader()
        _models[key] = obj
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
        return obj


def clear_cache() -> None:
    """Drop every cached model (tests; a process that is done with its models)."""
    with _lock:
        _models.clear()


def set_threads(threads: int) -> None:
    """Limit this process to ``threads`` compute threads (torch, OpenMP/MKL, numba).

    Libraries already imported are set directly; the others through their environment variables,
    which they read when imported: a task that never needs torch (``l2r eval``, ``l2r prep``)
    does not pay for importing it.
    """
    threads = max(1, int(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    else:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(threads)
    numba = sys.modules.get("numba")
    if numba is None:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
        return
    with contextlib.suppress(ValueError):  # its thread pool cannot change here
        numba.set_num_threads(min(threads, int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))))
