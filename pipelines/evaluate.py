"""``l2r eval``: score prediction graphs against ground truth, one tile or a whole benchmark.

Steps: resolve the ground-truth and prediction paths (files, or folders matched by tile id, see
:func:`~linegraph2road.metrics.protocols.tile_id`), keep the tiles of the dataset's split, score
every tile (in worker processes when ``workers > 1``; rows keep the ground truth's order), pool
the rows with the dataset's protocol, and only then write the JSON / CSV reports (atomically) and
move the plots, drawn in a hidden staging folder, into place. A failure leaves no report behind.

Folders. Graph files are those with a graph extension (``.p .pickle .pkl .gpickle .geojson .json
.graphml``), not hidden and not ``data_split.json``, optionally filtered by a glob. In the ground
truth folder, when some names carry a ground-truth marker (``_graph_gt``, ``__gt_graph``,
``_gt_graph``, ``_refine_gt_graph``, ``_gt``) only those are used, and a tile with several keeps
the most preferred marker in that order (City-scale: ``region_i_graph_gt.pickle`` over
``region_i_refine_gt_graph.p``). A ground-truth tile without a prediction is scored against an
empty graph and flagged ``missing_prediction``; a prediction without ground truth is listed in
``unmatched_predictions`` and ignored (predictions of ground-truth tiles outside the split are
ignored silently). With a ground-truth *file*, the split is not applied (the dataset still sets
the aggregation and tile parameters).

SpaceNet pickles (SAM-Road layout) are read as stored (keys taken as ``(row, col)``), which is the
vertically mirrored tile that SAM-Road's own evaluators score: this keeps APLS's region filter as
in the reference. Predictions must use the same convention (SAM-Road's ``graph/{tile}.p`` do);
plots mirror them back onto the ``__rgb.png`` image.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linegraph2road.errors import L2RError
from linegraph2road.graph import RoadGraph
from linegraph2road.io import check_writable, guess_format, read_graph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.metrics.evaluate import (
    MATCH_DISTANCE,
    EvalSettings,
    comparison_canvas,
    evaluate_pair,
    json_safe,
    summarize,
)
from linegraph2road.metrics.protocols import (
    SPACENET_TOPO_RADIUS,
    EvaluationError,
    Protocol,
    get_protocol,
    match_key,
)
from linegraph2road.parallel import Executor, ParallelOptions
from linegraph2road.pipelines._eval_files import (
    Pair,
    csv_text,
    image_of,
    read_image,
    resolve_pairs,
    some,
    split_ids,
    versions,
)

__all__ = ["EvalReport", "Pair", "evaluate_graphs", "resolve_pairs"]

PathLike = str | os.PathLike[str]


@dataclass
class EvalReport:
    """The outcome of :func:`evaluate_graphs`: ``to_dict()`` is the JSON report."""

    summary: dict[str, Any]
    images: list[dict[str, Any]]
    params: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    unmatched_predictions: list[str] = field(default_factory=list)
    split: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report (NaN as None)."""
        return json_safe(
            {
                "summary": self.summary,
                "images": self.images,
                "params": self.params,
                "split": self.split,
                "unmatched_predictions": self.unmatched_predictions,
                "warnings": self.warnings,
            }
        )


@dataclass(frozen=True)
class _Task:
    pair: Pair
    settings: EvalSettings
    gt_format: str | None
    pred_format: str | None
    plot: Path | None
    tile_size: int | None
    flip_pickles: bool


def _score(task: _Task) -> dict[str, Any]:
    """Worker: read one pair, score it, draw its plot (into the staging folder)."""
    pair = task.pair
    try:
        gt = read_graph(pair.gt, task.gt_format)
        pred = RoadGraph.empty() if pair.pred is None else read_graph(pair.pred, task.pred_format)
        result = evaluate_pair(gt, pred, settings=task.settings)
        if task.plot is not None:
            from linegraph2road.overlay import save_png

            image_path = image_of(pair)
            flip = (
                task.tile_size
                if task.flip_pickles and (task.gt_format or guess_format(pair.gt)) == "cityscale"
                else None
            )
            canvas = comparison_canvas(
                gt,
                pred,
                image=None if image_path is None else read_image(image_path),
                shape=None if task.tile_size is None else (task.tile_size, task.tile_size),
                gsd=task.settings.gsd,
                flip_y=flip,
            )
            save_png(task.plot, canvas)
    except L2RError as exc:
        raise _in_tile(exc, pair.id) from None
    row: dict[str, Any] = {
        "id": pair.id,
        "missing_prediction": pair.pred is None,
        "gt_path": str(pair.gt),
        "pred_path": None if pair.pred is None else str(pair.pred),
        "gt_nodes": gt.num_nodes,
        "gt_edges": gt.num_edges,
        "pred_nodes": pred.num_nodes,
        "pred_edges": pred.num_edges,
        **result.scores,
    }
    return {"row": row, "params": result.params}


def _in_tile(exc: L2RError, tile: str) -> L2RError:
    try:
        return type(exc)(f"tile {tile}: {exc}")
    except TypeError:  # an exception type with another constructor
        return EvaluationError(f"tile {tile}: {exc}")


def _run(tasks: Sequence[_Task], parallel: ParallelOptions) -> list[dict[str, Any]]:
    """Score every tile through the execution layer; rows keep the tasks' order. A tile that
    fails does not stop the others; then every failed tile is named and nothing is written."""
    out: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    keyed = [(str(i), t) for i, t in enumerate(tasks)]
    with Executor(parallel) as ex:
        for outcome in ex.run(_score, keyed, desc="l2r eval", unit="img"):
            if outcome.ok:
                out[outcome.key] = outcome.value
            else:
                failed.append(outcome.error or "")
    if failed:
        shown = "; ".join(sorted(failed)[:3]) + (
            f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        )
        raise EvaluationError(
            f"{len(failed)} of {len(tasks)} tile(s) could not be scored, no report written: {shown}"
        )
    return [out[k] for k, _ in keyed]


def evaluate_graphs(
    gt: PathLike,
    pred: PathLike,
    *,
    metrics: str | Sequence[str] = ("topo", "apls"),
    apls_variant: str = "sat2graph",
    apls_preset: str | None = None,
    small_tiles: bool = False,
    dataset: str | None = None,
    split: str | None = None,
    split_file: PathLike | None = None,
    topo_radius: float | None = None,
    gsd: float | None = None,
    seed: int = 0,
    workers: int = 1,
    parallel: ParallelOptions | None = None,
    gt_format: str | None = None,
    pred_format: str | None = None,
    gt_glob: str | None = None,
    pred_glob: str | None = None,
    json_path: PathLike | None = None,
    csv_path: PathLike | None = None,
    plots_dir: PathLike | None = None,
    progress: bool | None = None,
) -> EvalReport:
    """Score ``pred`` against ``gt`` and write the requested reports (see module docstring).

    Parameters
    ----------
    gt, pred : path
        Graph files or folders of them.
    metrics : str or sequence of str
        ``"topo"``, ``"apls"`` or both (``"topo,apls"``).
    apls_variant : {"sat2graph", "cosmiq"}
    apls_preset : {"spacenet", "apls-cli"} or None
        CosmiQ variant's parameters (:data:`~linegraph2road.metrics.evaluate.COSMIQ_PRESETS`).
    small_tiles : bool
        Small-tile settings without a dataset: Sat2Graph APLS small-tile parameters and TOPO
        radius 166.667 m.
    dataset, split : str, optional
        Benchmark protocol (:func:`~linegraph2road.metrics.protocols.get_protocol`).
    split_file : path, optional
        SpaceNet ``data_split.json`` (default: in the ground-truth folder or its parent).
    topo_radius, gsd : float, optional
        TOPO propagation radius (metres) and metres per pixel of pixel graphs.
    seed : int
        Seed of the APLS variants' random choices.
    workers : int
        Local worker processes scoring tiles (1: in this process); ignored when ``parallel`` is
        given.
    parallel : ParallelOptions or None
        Where the tiles are scored (:class:`~linegraph2road.parallel.Executor`: this process,
        local Dask workers or an existing cluster); default: ``workers`` local workers.
    gt_format, pred_format : str, optional
        Graph format of the files (default: from each file's extension).
    gt_glob, pred_glob : str, optional
        Globs selecting graph files in the folders.
    json_path, csv_path, plots_dir : path, optional
        Outputs, written only after every tile is scored.
    progress : bool, optional
        Progress bar on stderr (default: when stderr is a terminal).

    Raises
    ------
    L2RError
        Bad input of any kind (missing or unreadable files, no matching tiles, mixed coordinate
        systems, unknown metric / dataset / split); nothing is written then.
    """
    protocol = get_protocol(dataset, split)
    radius = topo_radius if topo_radius is not None else protocol.topo_radius
    settings = EvalSettings(
        metrics=tuple(metrics.split(",")) if isinstance(metrics, str) else tuple(metrics),
        apls_variant=apls_variant,
        apls_preset=apls_preset,
        small_tiles=small_tiles or protocol.small_tiles,
        topo_radius=SPACENET_TOPO_RADIUS if radius is None and small_tiles else radius,
        gsd=gsd,
        seed=seed,
    )
    if workers < 1:
        raise EvaluationError(f"workers must be at least 1, got {workers}")
    for path in (json_path, csv_path):  # before any work: never fail at the end
        if path is not None:
            check_writable(path)
    if plots_dir is not None:
        check_writable(plots_dir, folder=True)
    pairs, extra = resolve_pairs(gt, pred, gt_glob=gt_glob, pred_glob=pred_glob)
    warnings: list[str] = []
    split_info: dict[str, Any] = {}
    if protocol.dataset is not None and Path(gt).is_dir():
        pairs, split_info = _in_split(pairs, protocol, Path(gt), split_file, warnings)
    if all(p.pred is None for p in pairs):
        raise EvaluationError(
            f"no ground-truth tile has a prediction: ground truth ids {some(p.id for p in pairs)}"
            f"; prediction ids {some(extra)} (ids come from file names, e.g. "
            "region_9_graph_gt.pickle and region_9.p -> region_9)"
        )
    missing = [p.id for p in pairs if p.pred is None]
    if missing:
        warnings.append(
            f"{len(missing)} ground-truth tile(s) without prediction, scored as empty: "
            f"{some(missing)}"
        )
    if extra:
        warnings.append(f"{len(extra)} prediction(s) without ground truth ignored: {some(extra)}")

    plots = Path(plots_dir) if plots_dir is not None else None
    made_plots_dir = plots is not None and not plots.exists()
    staging, done = None, False
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".l2r-eval-", dir=plots))
    try:
        tasks = [
            _Task(
                pair=p,
                settings=settings,
                gt_format=gt_format,
                pred_format=pred_format,
                plot=None if staging is None else staging / f"{p.id}.png",
                tile_size=protocol.tile_size,
                flip_pickles=protocol.dataset == "spacenet",
            )
            for p in pairs
        ]
        quiet = not progress if progress is not None else not sys.stderr.isatty()
        run_on = parallel or ParallelOptions(workers=workers, progress=not quiet)
        results = _run(tasks, run_on)
        rows = [r["row"] for r in results]
        metric_params: dict[str, Any] = next((r["params"] for r in results if r["params"]), {})
        report = EvalReport(
            summary=summarize(rows, protocol=protocol, settings=settings),
            images=rows,
            params={
                **settings.to_dict(),
                **{k: v for k, v in protocol.to_dict().items() if k in ("dataset", "split")},
                "aggregation": protocol.aggregation,
                "tile_size": protocol.tile_size,
                "split_file": split_info.get("file"),
                "gt": str(gt),
                "pred": str(pred),
                "gt_format": gt_format,
                "pred_format": pred_format,
                "gt_glob": gt_glob,
                "pred_glob": pred_glob,
                "workers": (parallel.workers if parallel is not None else workers),
                "plot_match_distance": MATCH_DISTANCE if plots is not None else None,
                **{f"{m}_params": metric_params.get(m, {}) for m in settings.metrics},
                "versions": versions(),
            },
            warnings=warnings,
            unmatched_predictions=extra,
            split=split_info,
        )
        texts = []  # rendered before anything is written
        if json_path is not None:
            texts.append((json_path, json.dumps(report.to_dict(), indent=2, allow_nan=False)))
        if csv_path is not None:
            texts.append((csv_path, csv_text(report.images, report.summary)))
        for path, text in texts:
            with atomic_path(path) as tmp:
                tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        if staging is not None and plots is not None:
            for png in sorted(staging.iterdir()):
                os.replace(png, plots / png.name)
        done = True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not done and made_plots_dir and plots is not None:
            shutil.rmtree(plots, ignore_errors=True)
    return report


def _in_split(
    pairs: list[Pair],
    protocol: Protocol,
    gt: Path,
    split_file: PathLike | None,
    warnings: list[str],
) -> tuple[list[Pair], dict[str, Any]]:
    """The pairs of the protocol's split, and what was expected / found / absent."""
    names, path = None, None
    if protocol.dataset == "spacenet":
        names, path = split_ids(gt, protocol.split or "test", split_file)
    keep = set(protocol.select([p.id for p in pairs], split_ids=names))
    if not keep:
        raise EvaluationError(
            f"none of the {len(pairs)} ground-truth tiles ({some(p.id for p in pairs)}) is in "
            f"the {protocol.dataset} {protocol.split} split"
        )
    expected = protocol.expected_indices()
    wanted = [f"region_{i}" for i in expected] if expected is not None else names
    pairs = [p for p in pairs if p.id in keep]
    info: dict[str, Any] = {"expected": None if wanted is None else len(wanted)}
    info["found"] = len(pairs)
    info["file"] = None if path is None else str(path)
    if wanted is not None:
        found = {match_key(p.id) for p in pairs}
        info["absent"] = [w for w in wanted if match_key(w) not in found]
        if info["absent"]:
            warnings.append(
                f"the ground truth holds {len(pairs)} of the {len(wanted)} tiles of the "
                f"{protocol.dataset} {protocol.split} split; scoring those"
            )
    return pairs, info
