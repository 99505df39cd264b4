"""``l2r extract huge.tif -o roads.gpkg --chunk 8192``: one huge raster, chunk by chunk.

Orchestration only (the algorithm is :mod:`linegraph2road.inference.chunks`). The client opens
the raster (size, georeference), plans the chunks on the single-process window grid
(:func:`~linegraph2road.inference.chunks.plan_chunks`), and runs one task per chunk through the
execution layer; a task carries the raster path, the whole :class:`~.options.ExtractOptions`,
the checkpoint's SHA-256 and its :class:`~linegraph2road.inference.chunks.Chunk` (a few
integers). The worker loads the model once (:func:`~linegraph2road.parallel.cached_model`), reads
only its chunk's region, and writes the chunk's vertices and edge scores atomically to
``{output}.parts/results/{chunk}.npz`` before recording the task. When every chunk is done the
client merges them (:func:`~linegraph2road.inference.chunks.merge_chunks`) and writes the graph
(GeoPackage, GeoParquet or any graph format) in the raster's CRS, atomically.

Resuming: ``{output}.parts/`` is the run's :class:`~linegraph2road.parallel.TaskStore`, keyed
on the raster (name, size, mtime), the options' full ``dataclasses.asdict`` (less ``progress``),
the checkpoint's hash and the chunk size: a re-run skips finished chunks and writes the same
graph; another checkpoint, option or raster starts fresh. The folder is kept after success (its
results are small), so a re-run only merges again; delete it to recompute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linegraph2road.errors import ParameterError, TaskFailedError
from linegraph2road.graph import RoadGraph
from linegraph2road.inference import RasterSource, extract_graph
from linegraph2road.inference.chunks import (
    Chunk,
    ChunkPlan,
    extract_chunk,
    load_chunk,
    merge_chunks,
    plan_chunks,
    save_chunk,
)
from linegraph2road.inference.windows import check_window_count
from linegraph2road.io import GRAPH_FORMATS, check_writable, guess_format, write_graph
from linegraph2road.parallel import (
    Executor,
    ParallelOptions,
    StoreRef,
    TaskStore,
    cached_model,
    file_sha256,
)
from linegraph2road.pipelines.batch import fingerprint, options_record
from linegraph2road.pipelines.options import ExtractOptions, resolve_thresholds

__all__ = ["ChunkedRun", "run_extract_chunked"]

_PARAMS = ("t_k", "t_r", "t_topo", "d_k", "d_r", "d_nei")


def method_params(options: ExtractOptions) -> dict[str, float]:
    """Thresholds and radii: those given in ``options``, else :func:`extract_graph`'s defaults."""
    sig = inspect.signature(extract_graph).parameters
    return {name: float(sig[name].default) for name in _PARAMS} | options.thresholds()


@dataclass(frozen=True)
class _ChunkTask:
    image: str
    gsd: float
    options: ExtractOptions
    checkpoint_sha256: str
    chunk: Chunk
    result: str
    result_rel: str
    store: StoreRef


def _run_chunk(task: _ChunkTask) -> dict[str, Any]:
    """Worker: extract one chunk, write its ``.npz``, record it (skipped when recorded)."""
    from linegraph2road.pipelines.extract import (
        load_extract_model,
        resolve_device,
        resolve_precision,
    )

    done = task.store.done(task.chunk.name)
    if done is not None:
        return {**done, "status": "kept"}
    opts = task.options
    assert opts.checkpoint is not None
    checkpoint = opts.checkpoint
    model, _ = cached_model(
        f"extract:{opts.sam_checkpoint}",
        checkpoint,
        task.checkpoint_sha256,
        lambda: load_extract_model(checkpoint, sam_checkpoint=opts.sam_checkpoint),
    )
    dev = resolve_device(opts.device)
    model.to(dev)
    p = method_params(opts)
    with RasterSource(task.image, gsd=task.gsd) as source:
        result = extract_chunk(
            model, source, task.chunk, t_k=p["t_k"], t_r=p["t_r"], d_k=p["d_k"], d_r=p["d_r"],
            d_nei=p["d_nei"], device=dev, precision=resolve_precision(dev, opts.precision),
        )  # fmt: skip
    save_chunk(result, task.result)
    record = {"files": [task.result_rel], "stats": result.stats}
    return {**task.store.commit(task.chunk.name, record), "status": "done"}


@dataclass(frozen=True)
class ChunkedRun:
    """What :func:`run_extract_chunked` returns.

    Attributes
    ----------
    graph : RoadGraph
        The merged graph written (processed-image pixels, georeferenced).
    plan : ChunkPlan
    stats : dict
        Merge counts (``vertices``, ``reconciled``, ``scored_edges``, ``kept_edges``) and
        ``chunks_done`` / ``chunks_kept`` (this run / an earlier one), ``chunk_seconds`` (mean
        per computed chunk), ``seconds``.
    summary : str
        One line for the CLI.
    """

    graph: RoadGraph
    plan: ChunkPlan
    stats: dict[str, float]
    summary: str


def run_extract_chunked(
    image: str | Path,
    output: str | Path,
    options: ExtractOptions,
    parallel: ParallelOptions | None = None,
    *,
    chunk: int = 8192,
    echo: Callable[[str], None] = print,
) -> ChunkedRun:
    """Extract the road graph of one huge raster chunk by chunk (see the module docstring).

    Parameters
    ----------
    image : path
        The raster (any size: only one chunk's region is ever read by a worker).
    output : path
        The merged graph (``.gpkg``, ``.parquet``...), in the raster's CRS.
    options : ExtractOptions
        As for :func:`~.extract.run_extract`; a LineGraph2Road checkpoint is needed (the
        chunked path has no mask2graph method), and ``save_masks`` / ``tta`` are refused.
    parallel : ParallelOptions or None
        Where the chunks run (default: in this process, one after the other).
    chunk : int
        Chunk side in processed pixels, at least the model's window.
    echo : callable
        Progress lines.

    Raises
    ------
    ParameterError
        Before any work: no/segmentation-only checkpoint, ``chunk`` below a window, masks or TTA
        asked for, an unreachable cluster.
    TaskFailedError
        A chunk failed (the others are kept: re-run to finish).
    """
    from linegraph2road.frontends.checkpoint import checkpoint_kind, checkpoint_thresholds
    from linegraph2road.model import read_architecture
    from linegraph2road.pipelines.extract import NO_CHECKPOINT_MESSAGE
    from linegraph2road.pipelines.segment import load_model_gsd

    started = time.perf_counter()
    parallel = parallel or ParallelOptions()
    fmt = options.out_format or guess_format(output)
    if fmt not in GRAPH_FORMATS:
        raise ParameterError(f"unknown output format {fmt!r}; choose one of {GRAPH_FORMATS}")
    check_writable(output)
    if options.save_masks is not None:
        raise ParameterError(
            "--save-masks is not kept with --chunk (the masks of a huge raster); run "
            "`l2r segment` on it for probability rasters"
        )
    if options.tta:
        raise ParameterError("--tta applies to segmentation-only front-ends, not to --chunk")
    if options.prompts is not None:
        raise ParameterError(
            "--prompts need a RoadGIE checkpoint, which runs through mask2graph, not --chunk; "
            "drop --chunk"
        )
    if options.nms != "coupled":
        raise ParameterError(
            f"--nms {options.nms} decides vertices on the whole stitched masks, so it cannot run "
            "in chunks; drop --chunk or use the default coupled NMS"
        )
    if options.checkpoint is None:
        raise ParameterError(NO_CHECKPOINT_MESSAGE)
    if checkpoint_kind(options.checkpoint) != "model":
        raise ParameterError(
            "--chunk needs a LineGraph2Road checkpoint (front-end + topology head); this one is "
            "a segmentation-only front-end: run `l2r segment` on the raster instead"
        )
    window = int(read_architecture(options.checkpoint)["frontend"]["window_size"])
    said: list[str] = []
    gsd = load_model_gsd(options.checkpoint, options.gsd, said.append)
    thresholds, line = resolve_thresholds(options, checkpoint_thresholds(options.checkpoint))
    said.append(line)
    # the resolved thresholds travel in the options, so every worker uses exactly these
    options = dataclasses.replace(options, **thresholds)
    params = method_params(options)
    with RasterSource(image, gsd=gsd) as source:
        shape, georef, notes = source.shape, source.georef, list(source.notes)
    check_window_count(shape, window=window, n=options.windows, layout=options.layout)
    plan = plan_chunks(
        shape, window=window, chunk=chunk, n_windows=options.windows, layout=options.layout,
        d_nei=params["d_nei"], d_r=params["d_r"], d_k=params["d_k"],
    )  # fmt: skip
    sha = file_sha256(options.checkpoint)
    with contextlib.ExitStack() as stack:
        # connect to the cluster and check its workers before anything is said or written
        ex = stack.enter_context(Executor(parallel))
        for line in [*said, *(f"note: {n}" for n in notes)]:
            echo(line)
        out = Path(output)
        parts = out.with_name(out.name + ".parts")
        store = TaskStore(
            parts,
            {
                "command": "extract --chunk",
                "input": fingerprint(image),
                "options": options_record(options),
                "checkpoint_sha256": sha,
                "chunk": int(chunk),
                "gsd": gsd,
            },
        )
        if store.stale:
            echo(
                f"note: {parts} held another run (other options, checkpoint or raster); "
                "starting afresh"
            )
        (parts / "results").mkdir(exist_ok=True)
        worker_options = dataclasses.replace(options, progress=False)
        tasks = [
            (
                c.name,
                _ChunkTask(
                    str(Path(image).resolve()),
                    gsd,
                    worker_options,
                    sha,
                    c,
                    str((parts / "results" / f"{c.name}.npz").resolve()),
                    f"{parts.name}/results/{c.name}.npz",
                    store.ref,
                ),
            )
            for c in plan.chunks
        ]
        echo(
            f"extracting {shape[1]} x {shape[0]} px at {gsd:g} m/px in {len(plan.chunks)} "
            f"chunks of <= {chunk} px (halo <= {window + window // 2 + plan.margin} px; "
            f"{plan.computed} window runs for {plan.windows} windows) {parallel.describe()}"
        )
        failed: list[str] = []
        done = kept = 0
        seconds = 0.0
        for outcome in ex.run(_run_chunk, tasks, desc="chunks", unit="chunk"):
            if not outcome.ok:
                failed.append(f"{outcome.key}: {outcome.error}")
            elif outcome.value["status"] == "kept":
                kept += 1
            else:
                done += 1
                seconds += float(outcome.value["stats"]["seconds"])
        if failed:
            store.write(complete=False, failed=failed)
            raise TaskFailedError(
                f"{len(failed)} of {len(tasks)} chunks failed (the others are kept in {parts}; "
                f"re-run to finish): {'; '.join(failed[:3])}"
            )
        results = [load_chunk(parts / "results" / f"{c.name}.npz") for c in plan.chunks]
        graph, merge_stats = merge_chunks(
            results, t_topo=params["t_topo"], d_r=params["d_r"], d_k=params["d_k"], georef=georef
        )
        write_graph(graph, output, fmt)
        stats: dict[str, float] = {
            **merge_stats,
            "chunks": len(plan.chunks),
            "chunks_done": done,
            "chunks_kept": kept,
            "chunk_seconds": seconds / done if done else 0.0,
            "seconds": time.perf_counter() - started,
        }
        store.write(complete=True, stats=stats)
        summary = (
            f"{len(plan.chunks)} chunks ({done} computed, {kept} kept from an earlier run), "
            f"{merge_stats['reconciled']} seam vertices reconciled; {stats['seconds']:.1f} s"
        )
        return ChunkedRun(graph, plan, stats, summary)
