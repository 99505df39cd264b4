"""``l2r diff``: compare a predicted road graph with a reference map, write the changes for review.

Steps: read the raster's footprint (when given), the prediction (any graph format; a
pixel-coordinate graph is placed on the raster's grid) and the reference (an OSM extract or any
graph, :func:`~linegraph2road.data_prep.load_roads`); compare them
(:func:`~linegraph2road.mapdiff.diff_graphs`); draw the overlay; and only then write every output
(GeoPackage, JSON summary, JOSM ``.osm``, overlay PNG), each to a temporary file renamed into
place once all are written, so that a failure leaves no output behind. Nothing is uploaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

import shapely

from linegraph2road.data_prep import load_roads
from linegraph2road.data_prep.sources import guess_source_format
from linegraph2road.errors import GeoreferenceError, ParameterError
from linegraph2road.georef import Georeference
from linegraph2road.io import read_graph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.mapdiff import (
    DiffOptions,
    MapDiff,
    diff_graphs,
    draw_changes,
    json_summary,
    raster_footprint,
    read_overlay_image,
    write_changes_gpkg,
    write_josm,
)
from linegraph2road.overlay import save_png

__all__ = ["output_paths", "run_diff"]

PathLike = str | os.PathLike[str]


def output_paths(
    output: PathLike,
    *,
    json_path: PathLike | None = None,
    osm_path: PathLike | None = None,
    overlay_path: PathLike | None = None,
    raster: PathLike | None = None,
) -> dict[str, Path]:
    """Where each output goes: ``gpkg`` (``output``), ``json``, ``osm`` and, with a raster,
    ``overlay``; the last three default to ``output`` with the suffix ``.json``, ``.osm``,
    ``.png``.

    Raises
    ------
    ParameterError
        ``output`` is not a ``.gpkg``, or two outputs share a path.
    """
    gpkg = Path(output)
    if gpkg.suffix.lower() != ".gpkg":
        raise ParameterError(f"{gpkg}: the changes are written as a GeoPackage; name it *.gpkg")
    out = {
        "gpkg": gpkg,
        "json": Path(json_path) if json_path else gpkg.with_suffix(".json"),
        "osm": Path(osm_path) if osm_path else gpkg.with_suffix(".osm"),
    }
    if raster is not None or overlay_path is not None:
        out["overlay"] = Path(overlay_path) if overlay_path else gpkg.with_suffix(".png")
    seen: dict[Path, str] = {}
    for name, path in out.items():
        key = path.resolve()
        if key in seen:
            raise ParameterError(f"the {seen[key]} and {name} outputs are both {path}")
        seen[key] = name
    return out


def _raster_grid(path: PathLike) -> tuple[Georeference, shapely.Polygon]:
    from linegraph2road.inference.imagery import RasterSource

    with RasterSource(path, gsd=None) as src:
        georef, shape = src.georef, src.source_shape
    if georef is None:
        raise GeoreferenceError(
            f"{Path(path).name}: the raster has no CRS or transform, so it cannot say where the "
            "roads are; give a georeferenced GeoTIFF"
        )
    return georef, raster_footprint(georef, shape)


def run_diff(
    pred_path: PathLike,
    ref_path: PathLike,
    output: PathLike,
    *,
    raster: PathLike | None = None,
    json_path: PathLike | None = None,
    osm_path: PathLike | None = None,
    overlay_path: PathLike | None = None,
    pred_format: str | None = None,
    ref_format: str | None = None,
    include_service: bool = False,
    include_tracks: bool = False,
    options: DiffOptions | None = None,
) -> tuple[MapDiff, dict[str, Any]]:
    """Compare ``pred_path`` with ``ref_path`` and write the changes (see the module docstring).

    Parameters
    ----------
    pred_path : path
        The predicted graph (any format of :mod:`linegraph2road.io`, usually ``l2r extract``
        output, or an OSM extract).
    ref_path : path
        The reference: ``.osm.pbf`` / ``.osm`` or any graph file.
    output : path
        The ``.gpkg`` of changes; the other outputs default to its name (:func:`output_paths`).
    raster : path, optional
        The image the prediction was extracted from: its footprint bounds the comparison, its grid
        places pixel-coordinate graphs, and the overlay is drawn over it.
    json_path, osm_path, overlay_path : path, optional
        Override the default output names.
    pred_format, ref_format : str, optional
        Input formats (default: from the file names).
    include_service, include_tracks : bool
        Also read ``highway=service`` / ``track`` ways of OSM inputs.
    options : DiffOptions, optional

    Returns
    -------
    (MapDiff, dict)
        The diff and its summary (with the inputs and the written outputs).

    Raises
    ------
    L2RError
        Unreadable inputs, an unknown CRS, no overlap, no roads in the area: nothing is written.
    """
    paths = output_paths(
        output, json_path=json_path, osm_path=osm_path, overlay_path=overlay_path, raster=raster
    )
    if "overlay" in paths and raster is None:
        raise ParameterError("--overlay draws over the raster: give --raster too")
    inputs = {Path(p).resolve() for p in (pred_path, ref_path, raster) if p is not None}
    for name, path in paths.items():
        if path.resolve() in inputs:
            raise ParameterError(f"the {name} output {path} would overwrite an input")
    grid, footprint = _raster_grid(raster) if raster is not None else (None, None)
    osm_filter = {"include_service": include_service, "include_tracks": include_tracks}
    pred_format = pred_format or guess_source_format(pred_path)
    if pred_format == "osm":  # e.g. two OSM snapshots compared
        pred = load_roads(pred_path, format="osm", **osm_filter).graph
    else:  # read_graph keeps the edge probabilities of l2r's own files
        pred = read_graph(pred_path, pred_format, like=grid)
    ref = load_roads(ref_path, format=ref_format, **osm_filter)
    if ref.graph.georef is None and grid is not None:  # pixels of the raster
        ref = dataclasses.replace(ref, graph=ref.graph.with_georef(grid))
    diff = diff_graphs(pred, ref, footprint=footprint, options=options)
    canvas = None
    if raster is not None:
        image, image_grid = read_overlay_image(raster)
        canvas = draw_changes(diff, image, image_grid)
    summary = diff.summary()
    summary["inputs"] = {
        "pred": str(pred_path),
        "ref": str(ref_path),
        "raster": None if raster is None else str(raster),
    }
    summary["outputs"] = {k: str(v) for k, v in paths.items()}
    with contextlib.ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_path(v)) for k, v in paths.items()}
        write_changes_gpkg(diff, tmp["gpkg"])
        write_josm(diff, tmp["osm"])
        tmp["json"].write_text(json_summary(summary) + "\n", encoding="utf-8")
        if canvas is not None:
            save_png(tmp["overlay"], canvas)
    return diff, summary
