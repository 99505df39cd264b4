"""``l2r prep``: OSM data or benchmark graphs -> per-tile training labels (orchestration only).

Every tile is built by :func:`linegraph2road.data_prep.tile.build_tile_labels` and written by
:func:`~linegraph2road.data_prep.tile.write_tile_labels` into a hidden temporary folder inside
the output folder, then moved into place: an interrupted or failed run never leaves a partial
tile (tiles finished before the failure stay, each complete). After all tiles, ``manifest.json``
lists every tile with its split, counts and files (paths relative to the output folder).

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
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasterio.windows import Window

from linegraph2road.data_prep.datasets import DatasetTile, list_tiles, read_rgb
from linegraph2road.data_prep.grid import TileGrid, check_overlap, clip_to_grid
from linegraph2road.data_prep.sources import load_roads
from linegraph2road.errors import GeoreferenceError
from linegraph2road.io._atomic import atomic_path

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.data_prep.tagged import TaggedGraph

__all__ = ["PrepReport", "TileReport", "prep_dataset", "prep_osm", "tile_seed", "write_tile"]

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
    """All tiles of a run, in a fixed order, plus warnings for the user (one line each)."""

    tiles: list[TileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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
    """
    from linegraph2road.data_prep.tile import build_tile_labels, write_tile_labels

    ts = tile_seed(seed, tile_id)
    labels = build_tile_labels(tagged, grid.shape, seed=ts, **(label_params or {}))
    src = {**(source or {}), "run_seed": int(seed), "tile_seed": ts}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tile_id}.", suffix=".part", dir=out))
    try:
        paths = write_tile_labels(
            labels,
            tmp,
            tile_id,
            georef=grid.georef,
            source=src,
            preview_image=preview_image,
            preview=preview,
        )
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


def _write_manifest(out_dir: Path, report: PrepReport, header: dict[str, Any]) -> None:
    doc = {**header, "tiles": [{**asdict(t), "files": list(t.files)} for t in report.tiles]}
    with atomic_path(out_dir / "manifest.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


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
    gsd: float = 1.0,
    tile_size: int = 2048,
    seed: int = 0,
    preview: bool = False,
    include_service: bool = False,
    include_tracks: bool = False,
    label_params: dict[str, Any] | None = None,
    progress: bool = False,
) -> PrepReport:
    """Labels from an OSM file for a raster, or for an area tiled into ``tile_size`` tiles.

    Give exactly one of ``raster`` (a georeferenced GeoTIFF; tiled when larger than
    ``tile_size``) and ``bounds`` (in ``crs``, gridded at ``gsd`` metres by
    :meth:`TileGrid.from_bounds`). Tile ids: the raster's stem (``{stem}_r000_c001`` when tiled)
    or ``r000_c000``... for bounds.

    Raises
    ------
    GeoreferenceError
        Both or neither of raster/bounds; a raster without CRS; data and grid that do not
        overlap at all.
    FormatError, InputFileError
        Unreadable OSM file or raster.
    """
    if (raster is None) == (bounds is None):
        raise GeoreferenceError("give either a raster or bounds (with crs and gsd), not both")
    root = (
        TileGrid.from_raster(raster)
        if raster is not None
        else TileGrid.from_bounds(bounds, crs=crs, gsd=gsd)
    )
    roads = load_roads(osm, include_service=include_service, include_tracks=include_tracks)
    check_overlap(roads, root, what="the raster" if raster is not None else "the bounds")
    tiles = root.tiles(tile_size)
    stem = Path(raster).name.split(".")[0] if raster is not None else ""
    base = {
        "kind": "osm",
        "osm": Path(osm).name,
        "highways": roads.graph.meta.get("highways", "source has no highway filter"),
    }
    if raster is not None:
        base["raster"] = Path(raster).name
    report = PrepReport()
    for t in _progress(tiles, total=len(tiles), desc="prep osm", enabled=progress):
        tid = (stem if len(tiles) == 1 else f"{stem}_{t.name}") if stem else t.name
        clipped = clip_to_grid(roads, t)
        image = None
        if preview and raster is not None:
            image = read_rgb(raster, window=Window(t.col_off, t.row_off, t.width, t.height))
        source = {**base, "tile": t.name, "col_off": t.col_off, "row_off": t.row_off}
        report.tiles.append(
            write_tile(
                clipped,
                t,
                out_dir,
                tid,
                seed=seed,
                label_params=label_params,
                source=source,
                preview=preview,
                preview_image=image,
            )
        )
    where = f"{Path(raster).name}'s bounds" if raster is not None else "the bounds"
    _empty_warning(report, Path(osm).name, where)
    header = {
        "command": "osm",
        "seed": int(seed),
        "label_params": label_params or {},
        "tile_size": int(tile_size),
        "grid": {
            "width": root.width,
            "height": root.height,
            "georef": root.georef.to_dict() if root.georef is not None else None,
        },
    }
    _write_manifest(Path(out_dir), report, header)
    return report


def _dataset_job(
    tile: DatasetTile, out_dir: str, seed: int, label_params: dict[str, Any], preview: bool
) -> TileReport:
    grid = tile.grid()
    clipped = clip_to_grid(tile.load_graph(), grid)
    image = read_rgb(tile.image) if preview else None
    return write_tile(
        clipped,
        grid,
        out_dir,
        tile.tile_id,
        seed=seed,
        label_params=label_params,
        source=tile.source(),
        split=tile.split,
        preview=preview,
        preview_image=image,
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
) -> PrepReport:
    """Labels for every tile of a benchmark dataset (layouts in :mod:`.data_prep.datasets`).

    Parameters
    ----------
    workers : int, default 1
        Processes (``ProcessPoolExecutor``); 1 runs in this process. Outputs do not depend on it.

    Raises
    ------
    InputFileError, FormatError
        Missing root, no tiles, a tile without graph, unreadable files.
    """
    tiles = list_tiles(root, format=format, split=split, graph=graph)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = dict(label_params or {})
    args = [(t, str(out), int(seed), params, bool(preview)) for t in tiles]
    done: dict[str, TileReport] = {}
    if workers <= 1:
        for a in _progress(args, total=len(args), desc=f"prep {format}", enabled=progress):
            done[a[0].tile_id] = _dataset_job(*a)
    else:
        ex = ProcessPoolExecutor(max_workers=int(workers))
        try:
            futures = [ex.submit(_dataset_job, *a) for a in args]
            for f in _progress(
                as_completed(futures), total=len(args), desc=f"prep {format}", enabled=progress
            ):
                r = f.result()
                done[r.tile_id] = r
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
    report = PrepReport([done[t.tile_id] for t in tiles])
    _empty_warning(report, "the ground truth")
    header = {
        "command": "dataset",
        "format": format,
        "split": split,
        "graph": graph,
        "seed": int(seed),
        "label_params": params,
    }
    _write_manifest(out, report, header)
    return report
