"""``l2r extract DIR_OR_GLOB -o OUT_DIR`` and ``l2r segment`` likewise: one output per input.

Orchestration only. Inputs (a folder's rasters, a glob, or a list) become one task each, run by
the execution layer (:class:`~linegraph2road.parallel.Executor`: in this process, local Dask
workers, or an existing cluster). A task carries the input and output paths, the whole options
object (:class:`~.options.ExtractOptions` / :class:`~.options.SegmentOptions`, so options added
later travel without change here) and the checkpoint's SHA-256; the worker runs
:func:`~.extract.run_extract` / :func:`~.segment.run_segment`, which load the model once per
worker process. Outputs are ``OUT_DIR/{input stem}.{ext}``, each written atomically.

Resuming: ``OUT_DIR/.l2r/`` is the run's :class:`~linegraph2road.parallel.TaskStore`, keyed on
the command, the options' full ``dataclasses.asdict`` (less ``progress``) and the checkpoint's
hash. A finished input is recorded with its size and modification time; re-running skips it
while its output exists and the input is unchanged. ``OUT_DIR/summary.json`` lists every input
with its status (``done``, ``kept`` from an earlier run, ``failed`` with the reason).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linegraph2road.errors import InputFileError, ParameterError, TaskFailedError
from linegraph2road.io import check_writable
from linegraph2road.io._atomic import atomic_path
from linegraph2road.parallel import (
    Executor,
    ParallelOptions,
    StoreRef,
    TaskStore,
    file_sha256,
)
from linegraph2road.pipelines.options import ExtractOptions, SegmentOptions

__all__ = [
    "RASTER_SUFFIXES",
    "BatchReport",
    "expand_inputs",
    "is_many",
    "options_record",
    "run_batch",
]

PathLike = str | os.PathLike[str]

#: File name endings taken as rasters in an input folder.
RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".vrt", ".img")
#: Options fields that change what is shown, not what is computed (left out of resume keys).
DISPLAY_ONLY = ("progress",)
_EXTENSIONS = {"gpkg": ".gpkg", "geoparquet": ".parquet", "geojson": ".geojson",
               "graphml": ".graphml", "gpickle": ".gpickle", "cityscale": ".p",
               "samroad-spacenet": ".p", "sat2graph-json": ".json"}  # fmt: skip


def is_many(spec: PathLike | Sequence[PathLike]) -> bool:
    """True for a folder, a glob pattern (``*``, ``?``, ``[``) or several paths."""
    if not isinstance(spec, str | os.PathLike):
        return len(spec) != 1 or is_many(spec[0])
    text = os.fspath(spec)
    return Path(text).is_dir() or (not Path(text).exists() and glob.has_magic(text))


def expand_inputs(spec: PathLike | Sequence[PathLike]) -> list[Path]:
    """The input rasters of a folder (non-hidden files ending in :data:`RASTER_SUFFIXES`), a glob
    pattern (every match that is a file), or a list of paths; sorted, without duplicates.

    Raises
    ------
    InputFileError
        Nothing found, or a listed path that does not exist.
    """
    specs = [spec] if isinstance(spec, str | os.PathLike) else list(spec)
    found: list[Path] = []
    for s in specs:
        text = os.fspath(s)
        p = Path(text)
        if p.is_dir():
            found += [
                f for f in p.iterdir()
                if f.is_file() and not f.name.startswith(".")
                and f.suffix.lower() in RASTER_SUFFIXES
            ]  # fmt: skip
        elif p.exists():
            found.append(p)
        elif glob.has_magic(text):
            found += [Path(m) for m in glob.glob(text) if Path(m).is_file()]
        else:
            raise InputFileError(f"{p}: no such file or folder")
    unique = sorted({f.resolve(): f for f in found}.values())
    if not unique:
        raise InputFileError(
            f"no input rasters in {', '.join(str(s) for s in specs)} (looked for "
            f"{', '.join(RASTER_SUFFIXES)} files)"
        )
    return unique


def options_record(options: Any) -> dict[str, Any]:
    """The options' full ``dataclasses.asdict`` less :data:`DISPLAY_ONLY`, JSON-ready."""
    record = {k: v for k, v in dataclasses.asdict(options).items() if k not in DISPLAY_ONLY}
    return json.loads(json.dumps(record, sort_keys=True, default=str))


def fingerprint(path: PathLike) -> dict[str, Any]:
    """Name, size and modification time of an input: a changed input is computed again."""
    st = Path(path).stat()
    return {"name": Path(path).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass(frozen=True)
class _FileTask:
    command: str
    image: str
    output: str
    output_rel: str
    options: ExtractOptions | SegmentOptions
    checkpoint_sha256: str
    store: StoreRef
    task_id: str
    input_fingerprint: dict[str, Any]


def _run_file(task: _FileTask) -> dict[str, Any]:
    """Worker: one input -> one output, recorded in the run's store (skipped when recorded)."""
    done = task.store.done(task.task_id)
    if done is not None and done.get("input") == task.input_fingerprint:
        return {**done, "status": "kept"}
    start = time.perf_counter()
    quiet: list[str] = []
    if task.command == "extract":
        from linegraph2road.pipelines.extract import run_extract

        assert isinstance(task.options, ExtractOptions)
        run = run_extract(
            task.image, task.output, task.options, echo=quiet.append,
            checkpoint_sha256=task.checkpoint_sha256,
        )  # fmt: skip
        text = f"{run.graph.num_nodes} nodes, {run.graph.num_edges} edges"
    else:
        from linegraph2road.pipelines.segment import run_segment

        assert isinstance(task.options, SegmentOptions)
        result = run_segment(
            task.image, task.output, task.options, echo=quiet.append,
            checkpoint_sha256=task.checkpoint_sha256,
        )  # fmt: skip
        text = f"{result.valid.shape[1]} x {result.valid.shape[0]} px"
    record = {
        "input": task.input_fingerprint,
        "image": task.image,
        "files": [task.output_rel],
        "summary": text,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return {**task.store.commit(task.task_id, record), "status": "done"}


@dataclass
class BatchReport:
    """What :func:`run_batch` did: one entry per input (``image``, ``output``, ``status`` in
    ``done`` / ``kept`` / ``failed``, ``summary`` or ``error``), and where the summary is."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    summary_path: Path | None = None
    stale: bool = False

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "failed"]

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "kept": 0, "failed": 0}
        for e in self.entries:
            out[e["status"]] += 1
        return out


def _output_name(command: str, options: Any) -> str:
    if command == "segment":
        return ".tif"
    return _EXTENSIONS.get(options.out_format or "gpkg", ".gpkg")


def run_batch(
    command: str,
    inputs: PathLike | Sequence[PathLike],
    out_dir: PathLike,
    options: ExtractOptions | SegmentOptions,
    parallel: ParallelOptions | None = None,
    *,
    echo: Callable[[str], None] = print,
) -> BatchReport:
    """Run ``l2r extract`` or ``l2r segment`` on many inputs (see the module docstring).

    Parameters
    ----------
    command : {"extract", "segment"}
    inputs : path, glob or list of paths
        :func:`expand_inputs`.
    out_dir : path
        Output folder (created); outputs are ``{stem}.gpkg`` (extract: ``--format`` picks
        another graph format) or ``{stem}.tif`` (segment).
    options : ExtractOptions or SegmentOptions
        Shipped as is to the workers (``progress`` off there: the task bar shows progress).
    parallel : ParallelOptions or None
        Where the tasks run (default: in this process).
    echo : callable
        Receives one line per finished input.

    Returns
    -------
    BatchReport

    Raises
    ------
    ParameterError, InputFileError, OutputError, CheckpointError
        Before any work: no inputs, two inputs with one stem, an unwritable folder, no or a
        missing checkpoint, an unreachable cluster.
    TaskFailedError
        After all other inputs finished: the inputs that failed, by name (``summary.json`` has
        the details).
    """
    if command not in ("extract", "segment"):
        raise ParameterError(f"unknown batch command {command!r}")
    if options.prompts is not None:
        raise ParameterError(
            "--prompts belong to one image: give one raster, not a folder or glob, with --prompts"
        )
    parallel = parallel or ParallelOptions()
    images = expand_inputs(inputs)
    out = check_writable(out_dir, folder=True)
    if options.checkpoint is None:
        from linegraph2road.pipelines.extract import NO_CHECKPOINT_MESSAGE

        raise ParameterError(NO_CHECKPOINT_MESSAGE)
    sha = file_sha256(options.checkpoint)
    from linegraph2road.frontends.checkpoint import checkpoint_kind

    checkpoint_kind(options.checkpoint)  # a broken checkpoint is refused before any work
    with contextlib.ExitStack() as stack:
        # connect to the cluster and check its workers before anything is said or written
        ex = stack.enter_context(Executor(parallel))
        stems: dict[str, Path] = {}
        for img in images:
            if img.stem in stems:
                raise ParameterError(
                    f"{stems[img.stem].name} and {img.name} would both write {img.stem}.*; rename "
                    "one or run them separately"
                )
            stems[img.stem] = img
        ext = _output_name(command, options)
        out.mkdir(parents=True, exist_ok=True)
        worker_options = dataclasses.replace(options, progress=False)
        store = TaskStore(
            out / ".l2r",
            {
                "command": command,
                "options": options_record(options),
                "checkpoint_sha256": sha,
                "extension": ext,
            },
        )
        tasks = [
            (
                img.name,
                _FileTask(
                    command,
                    str(img.resolve()),
                    str((out / f"{img.stem}{ext}").resolve()),
                    f"{img.stem}{ext}",
                    worker_options,
                    sha,
                    store.ref,
                    img.stem,
                    fingerprint(img),
                ),
            )
            for img in images
        ]
        report = BatchReport(stale=store.stale)
        by_name = {name: task for name, task in tasks}
        echo(f"{command}: {len(tasks)} input(s) -> {out}, {parallel.describe()}")
        for outcome in ex.run(_run_file, tasks, desc=f"l2r {command}", unit="image"):
            task = by_name[outcome.key]
            entry: dict[str, Any] = {"image": task.image, "output": task.output}
            if outcome.ok:
                entry.update(status=outcome.value["status"], summary=outcome.value["summary"])
                echo(f"{entry['status']:>6} {outcome.key} -> {task.output_rel}: {entry['summary']}")
            else:
                entry.update(status="failed", error=outcome.error)
                echo(f"failed {outcome.key}: {outcome.error}")
            report.entries.append(entry)
        order = {t.image: i for i, (_, t) in enumerate(tasks)}
        report.entries.sort(key=lambda e: order[e["image"]])
        report.summary_path = out / "summary.json"
        doc = {
            "command": command,
            "run_key": store.ref.key,
            **report.counts(),
            "inputs": report.entries,
        }
        with atomic_path(report.summary_path) as tmp:
            tmp.write_text(json.dumps(doc, indent=1) + "\n")
        store.write(complete=not report.failed, counts=report.counts())
        if report.failed:
            names = "; ".join(f"{Path(e['image']).name}: {e['error']}" for e in report.failed[:3])
            more = f" (and {len(report.failed) - 3} more)" if len(report.failed) > 3 else ""
            raise TaskFailedError(
                f"{len(report.failed)} of {len(tasks)} input(s) failed, the others were written "
                f"({report.summary_path}): {names}{more}"
            )
        return report
