"""``l2r prep``: OSM data or benchmark graphs -> per-tile training labels (orchestration only).

Every tile is built by :func:`linegraph2road.data_prep.tile.build_tile_labels` and written by
:func:`~linegraph2road.data_prep.tile.write_tile_labels` into a hidden temporary folder inside
the output folder, then moved into place: an interrupted or failed run never leaves a partial
tile (tiles finished before the failure stay, each complete). ``manifest.json`` lists every tile
with its split, counts and files (paths relative to the output folder); it is rewritten every
few seconds while tiles finish, and when the run ends or is interrupted, with ``"complete":
false`` until the last tile is done (:func:`~linegraph2road.training.find_tiles` refuses an
incomplete manifest). Re-running the same command resumes: tiles the manifest lists as done,
whose files are all there, are kept; the rest are built; a manifest written with other options
or inputs (its ``run`` header differs) is ignored and every tile is rebuilt.

Imagery and ground sampling distance
------------------------------------
Labels are made at the model's ground sampling distance (``gsd``, default 1 m/px, the GSD the
models are trained and run at). ``prep_osm`` with a raster resamples it to ``gsd``
(:class:`~linegraph2road.inference.RasterSource`: the same band handling, stretch and resampling
as ``l2r extract``) and writes each tile's image beside its labels as ``{id}_image.tif`` (RGB
uint8, georeferenced), recorded as ``image`` in ``{id}_labels.json``; ``gsd`` is recorded there
too, and training stores it in the checkpoint, which ``l2r extract`` then uses by default.
Benchmark datasets are 1 m/px already; their images stay where they are and the manifest
records the dataset root, so ``l2r train`` finds them without an ``images`` folder.

Determinism: a tile's random seed is :func:`tile_seed` ``(seed, tile_id)``, independent of the
number of workers and of the order in which tiles finish, and outputs record input paths
relative to their dataset root (OSM: the file name), so the same command gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.data_prep.datasets import DatasetTile, list_tiles, read_rgb
from linegraph2road.data_prep.grid import TileGrid, check_overlap, clip_to_grid
from linegraph2road.data_prep.sources import load_roads
from linegraph2road.errors import GeoreferenceError, ParameterError, TaskFailedError
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io.raster import write_raster
from linegraph2road.parallel import Executor, ParallelOptions

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.data_prep.tagged import TaggedGraph

__all__ = [
    "DATASET_GSD",
    "PrepReport",
    "TileReport",
    "prep_dataset",
    "prep_osm",
    "tile_seed",
    "write_tile",
]

#: Ground sampling distance of the benchmark datasets' images, m/px (City-scale, Global-scale,
#: and SAM-Road's SpaceNet ``RGB_1.0_meter``).
DATASET_GSD = 1.0
#: Seconds between rewrites of ``manifest.json`` while tiles finish.
MANIFEST_EVERY = 5.0

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TileReport:
    """What was written for one tile (``files`` relative to the output folder)."""

    tile_id: str
    split: str
    nodes: int
    edges: int
    bridges: int
    files: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return self.edges == 0


@dataclass
class PrepReport:
    """All tiles of a run, in a fixed order, plus warnings for the user (one line each);
    ``resumed`` counts the tiles kept from an earlier, interrupted run of the same command."""

    tiles: list[TileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resumed: int = 0


def tile_seed(seed: int, tile_id: str) -> int:
    """A tile's seed in ``[0, 2**32)`` from the run seed and the tile id (SHA-256, stable)."""
    digest = hashlib.sha256(f"{int(seed)}:{tile_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _publish(tmp: Path, out: Path) -> None:
    """Move everything in ``tmp`` into ``out``, replacing what was there under the same names."""
    for entry in sorted(tmp.iterdir()):
        dst = out / entry.name
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(entry, dst)


def write_tile(
    tagged: TaggedGraph,
    grid: TileGrid,
    out_dir: PathLike,
    tile_id: str,
    *,
    seed: int = 0,
    label_params: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    split: str = "",
    preview: bool = False,
    preview_image: NDArray[Any] | None = None,
    image: NDArray[np.uint8] | None = None,
    gsd: float | None = None,
) -> TileReport:
    """Build and write one tile's labels atomically (see the module docstring).

    Parameters
    ----------
    tagged : TaggedGraph
        The tile's graph in its pixel coordinates (from :func:`clip_to_grid`).
    grid : TileGrid
        The tile (its ``shape`` sizes the masks, its ``georef`` georeferences them).
    seed : int
        The *run* seed; the tile uses :func:`tile_seed` ``(seed, tile_id)``.
    label_params : dict
        Keyword arguments for ``build_tile_labels`` (``d_r``, ``d_k``, ``d_nei``...).
    image : (3, H, W) uint8 or None
        The tile's image at the labels' grid: written beside the labels as ``{id}_image.tif``
        (``.png`` without georeference) and recorded as ``image`` in ``{id}_labels.json``, where
        training reads it.
    gsd : float or None
        Ground sampling distance of the labels, m/px, recorded in ``{id}_labels.json``.
    """
    from linegraph2road.data_prep.tile import build_tile_labels, write_tile_labels

    if image is not None and tuple(image.shape) != (3, *grid.shape):
        raise ParameterError(f"tile image {image.shape} does not match the grid {grid.shape}")
    ts = tile_seed(seed, tile_id)
    labels = build_tile_labels(tagged, grid.shape, seed=ts, **(label_params or {}))
    src = {**(source or {}), "run_seed": int(seed), "tile_seed": ts}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tile_id}.", suffix=".part", dir=out))
    try:
        image_file = None
        if image is not None:
            image_file = f"{tile_id}_image.{'tif' if grid.georef is not None else 'png'}"
            write_raster(tmp / image_file, image, georef=grid.georef)
        paths = write_tile_labels(
            labels,
            tmp,
            tile_id,
            georef=grid.georef,
            source=src,
            preview_image=preview_image,
            preview=preview,
            image=image_file,
            gsd=gsd,
        )
        if image_file is not None:
            paths.insert(0, tmp / image_file)
        files = tuple(
            sorted(Path(p).resolve().relative_to(tmp.resolve()).as_posix() for p in paths)
        )
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    g = tagged.graph
    return TileReport(tile_id, split, g.num_nodes, g.num_edges, int(tagged.bridge.sum()), files)


def _progress(items: Any, *, total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    # disable=None: a bar on a terminal only, so logs and pipes get no carriage-return noise
    return tqdm(
        items, total=total, desc=desc, unit="tile", disable=None if enabled else True, leave=False
    )


def _fingerprint(path: PathLike) -> dict[str, Any]:
    """Name, size and modification time of an input file: a changed input starts afresh."""
    st = Path(path).stat()
    return {"name": Path(path).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class _Manifest:
    """``manifest.json`` of a run: resumes an interrupted run, rewritten as tiles finish.

    ``header["run"]`` identifies the run (command, options, input fingerprints): an existing
    manifest with the same ``run`` lends its finished tiles (those whose files all exist).
    """

    def __init__(self, out_dir: Path, header: dict[str, Any], order: list[str]) -> None:
        self.path = out_dir / "manifest.json"
        self.header = header
        self.order = order
        self.done: dict[str, TileReport] = {}
        self.resumable: dict[str, TileReport] = {}
        self.stale = False
        self._written = 0.0
        if not self.path.is_file():
            return
        try:
            old = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return  # unreadable: rebuild everything
        if not isinstance(old, dict) or old.get("run") != header.get("run"):
            self.stale = True
            return
        for entry in old.get("tiles", []):
            try:
                report = TileReport(**{**entry, "files": tuple(entry["files"])})
            except (TypeError, KeyError):
                continue
            if report.files and all((out_dir / f).is_file() for f in report.files):
                self.resumable[report.tile_id] = report

    def finished(self, tile_id: str) -> TileReport | None:
        """The tile's report if an earlier run of the same command finished it (kept)."""
        report = self.resumable.get(tile_id)
        if report is not None:
            self.done[tile_id] = report
        return report

    def add(self, report: TileReport) -> None:
        self.done[report.tile_id] = report
        if time.monotonic() - self._written >= MANIFEST_EVERY:
            self.write()

    def report(self) -> PrepReport:
        return PrepReport([self.done[t] for t in self.order if t in self.done])

    def write(self) -> None:
        tiles = self.report().tiles
        doc = {
            **self.header,
            "complete": len(tiles) == len(self.order),
            "tiles": [{**asdict(t), "files": list(t.files)} for t in tiles],
        }
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        self._written = time.monotonic()

    def __enter__(self) -> _Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        # finished, failed or interrupted (SIGINT/SIGTERM): record what is done
        if self.done or self.path.is_file():
            self.write()


def _todo(manifest: _Manifest, ids: list[str]) -> Iterator[int]:
    """Indices of the tiles still to build (finished ones are taken from the manifest)."""
    for i, tid in enumerate(ids):
        if manifest.finished(tid) is None:
            yield i


def _empty_warning(report: PrepReport, what: str, where: str = "the tile") -> None:
    empty = [t.tile_id for t in report.tiles if t.empty]
    if not empty:
        return
    if len(report.tiles) == 1:
        report.warnings.append(
            f"no roads of {what} fall inside {where} (the extents overlap); wrote empty labels"
        )
    else:
        shown = ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else "")
        report.warnings.append(
            f"{len(empty)} of {len(report.tiles)} tiles have no roads of {what} "
            f"(empty labels): {shown}"
        )


def prep_osm(
    osm: PathLike,
    out_dir: PathLike,
    *,
    raster: PathLike | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    crs: Any = "EPSG:4326",
    gsd: float | None = 1.0,
    tile_size: int = 2048,
    seed: int = 0,
    preview: bool = False,
    include_service: bool = False,
    include_tracks: bool = False,
    label_params: dict[str, Any] | None = None,
    progress: bool = False,
) -> PrepReport:
    """Labels from an OSM file for a raster, or for an area tiled into ``tile_size`` tiles.

    Give exactly one of ``raster`` (a georeferenced GeoTIFF, resampled to ``gsd`` and written
    beside the labels, tile by tile; tiled when larger than ``tile_size``) and ``bounds`` (in
    ``crs``, gridded at ``gsd`` metres by :meth:`TileGrid.from_bounds`; no imagery). Tile ids:
    the raster's stem (``{stem}_r000_c001`` when tiled) or ``r000_c000``... for bounds.

    Parameters
    ----------
    gsd : float or None, default 1.0
        Metres per pixel of the labels: the model's ground sampling distance. None keeps a
        raster's own resolution (``bounds`` need a number).

    Raises
    ------
    GeoreferenceError
        Both or neither of raster/bounds; a raster without CRS; data and grid that do not
        overlap at all.
    FormatError, InputFileError
        Unreadable OSM file or raster.
    """
    from linegraph2road.inference.imagery import RasterSource

    if (raster is None) == (bounds is None):
        raise GeoreferenceError("give either a raster or bounds (with crs and gsd), not both")
    if gsd is None and bounds is not None:
        raise ParameterError("bounds need a gsd (metres per pixel of the labels)")
    source_raster = None
    if raster is not None:
        TileGrid.from_raster(raster)  # refuses a raster without CRS, in the words users know
        source_raster = RasterSource(raster, gsd=gsd)
        root = TileGrid(source_raster.shape[1], source_raster.shape[0], source_raster.georef)
    else:
        root = TileGrid.from_bounds(bounds, crs=crs, gsd=float(gsd))  # type: ignore[arg-type]
    try:
        roads = load_roads(osm, include_service=include_service, include_tracks=include_tracks)
        check_overlap(roads, root, what="the raster" if raster is not None else "the bounds")
        tiles = root.tiles(tile_size)
        stem = Path(raster).name.split(".")[0] if raster is not None else ""
        ids = [(stem if len(tiles) == 1 else f"{stem}_{t.name}") if stem else t.name for t in tiles]
        labels_gsd = gsd if gsd is not None else root.georef.gsd((root.width / 2, root.height / 2))
        base = {
            "kind": "osm",
            "osm": Path(osm).name,
            "highways": roads.graph.meta.get("highways", "source has no highway filter"),
        }
        run: dict[str, Any] = {
            "command": "osm",
            "osm": _fingerprint(osm),
            "seed": int(seed),
            "gsd": gsd,
            "tile_size": int(tile_size),
            "label_params": label_params or {},
            "include_service": bool(include_service),
            "include_tracks": bool(include_tracks),
        }
        if raster is not None:
            base["raster"] = Path(raster).name
            run["raster"] = _fingerprint(raster)
        else:
            run["bounds"], run["crs"] = [float(v) for v in bounds], str(crs)  # type: ignore[union-attr]
        header = {
            "command": "osm",
            "run": run,
            "seed": int(seed),
            "gsd": labels_gsd,
            "label_params": label_params or {},
            "tile_size": int(tile_size),
            "grid": {
                "width": root.width,
                "height": root.height,
                "georef": root.georef.to_dict() if root.georef is not None else None,
            },
        }
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with _Manifest(out, header, ids) as manifest:
            todo = list(_todo(manifest, ids))
            for i in _progress(todo, total=len(todo), desc="prep osm", enabled=progress):
                t = tiles[i]
                clipped = clip_to_grid(roads, t)
                image = None
                if source_raster is not None:
                    image, _ = source_raster.read(t.row_off, t.col_off, t.height, t.width)
                source = {**base, "tile": t.name, "col_off": t.col_off, "row_off": t.row_off}
                manifest.add(
                    write_tile(
                        clipped,
                        t,
                        out,
                        ids[i],
                        seed=seed,
                        label_params=label_params,
                        source=source,
                        preview=preview,
                        preview_image=None if image is None else np.moveaxis(image, 0, -1),
                        image=image,
                        gsd=labels_gsd,
                    )
                )
            report = manifest.report()
    finally:
        if source_raster is not None:
            source_raster.close()
    report.resumed = len(manifest.resumable)
    if manifest.stale:
        report.warnings.append(
            f"{out / 'manifest.json'} was written with other options or inputs; rebuilt every tile"
        )
    where = f"{Path(raster).name}'s bounds" if raster is not None else "the bounds"
    _empty_warning(report, Path(osm).name, where)
    return report


@dataclass(frozen=True)
class _DatasetJob:
    tile: DatasetTile
    out_dir: str
    seed: int
    label_params: dict[str, Any]
    preview: bool


def _dataset_job(job: _DatasetJob) -> TileReport:
    """Worker: one tile's labels (written atomically into the output folder)."""
    tile = job.tile
    grid = tile.grid()
    clipped = clip_to_grid(tile.load_graph(), grid)
    image = read_rgb(tile.image) if job.preview else None
    return write_tile(
        clipped,
        grid,
        job.out_dir,
        tile.tile_id,
        seed=job.seed,
        label_params=job.label_params,
        source=tile.source(),
        split=tile.split,
        preview=job.preview,
        preview_image=image,
        gsd=DATASET_GSD,
    )


def prep_dataset(
    root: PathLike,
    out_dir: PathLike,
    *,
    format: str,
    split: str = "all",
    graph: str = "train",
    workers: int = 1,
    seed: int = 0,
    preview: bool = False,
    label_params: dict[str, Any] | None = None,
    progress: bool = False,
    parallel: ParallelOptions | None = None,
) -> PrepReport:
    """Labels for every tile of a benchmark dataset (layouts in :mod:`.data_prep.datasets`).

    Parameters
    ----------
    workers : int, default 1
        Local worker processes (a local Dask cluster); 1 runs in this process. Outputs do not
        depend on it. Ignored when ``parallel`` is given.
    parallel : ParallelOptions or None
        Where the tiles are built (:class:`~linegraph2road.parallel.Executor`: this process,
        local Dask workers or an existing cluster, whose workers must see both folders).

    A tile that fails (a corrupt graph file) does not stop the others: they are written and
    recorded in the manifest, then :class:`~linegraph2road.errors.TaskFailedError` names the
    failed tiles (re-running retries only those).

    Raises
    ------
    InputFileError, FormatError
        Missing root, no tiles, a tile without graph, unreadable files.
    """
    tiles = list_tiles(root, format=format, split=split, graph=graph)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = dict(label_params or {})
    run = {
        "command": "dataset",
        "format": format,
        "split": split,
        "graph": graph,
        "seed": int(seed),
        "label_params": params,
        "root": str(Path(root).resolve()),
    }
    header = {
        "command": "dataset",
        "run": run,
        "format": format,
        "split": split,
        "graph": graph,
        "seed": int(seed),
        "gsd": DATASET_GSD,
        "label_params": params,
        # where the images are: training reads them from here (labels record paths under it)
        "root": str(Path(root).resolve()),
    }
    ids = [t.tile_id for t in tiles]
    with _Manifest(out, header, ids) as manifest:
        todo = list(_todo(manifest, ids))
        jobs = [
            (ids[i], _DatasetJob(tiles[i], str(out), int(seed), params, bool(preview)))
            for i in todo
        ]
        run_on = parallel or ParallelOptions(workers=int(workers), progress=progress)
        failed: list[str] = []
        with Executor(run_on) as ex:
            for outcome in ex.run(_dataset_job, jobs, desc=f"prep {format}", unit="tile"):
                if outcome.ok:
                    manifest.add(outcome.value)
                else:
                    failed.append(f"{outcome.key}: {outcome.error}")
        report = manifest.report()
    if failed:
        raise TaskFailedError(
            f"{len(failed)} of {len(ids)} tile(s) failed, the others were written and recorded "
            f"in {out / 'manifest.json'} (re-run to retry): {'; '.join(sorted(failed)[:3])}"
        )
    report.resumed = len(manifest.resumable)
    if manifest.stale:
        report.warnings.append(
            f"{out / 'manifest.json'} was written with other options or inputs; rebuilt every tile"
        )
    _empty_warning(report, "the ground truth")
    return report
