"""``l2r convert``: read a graph in one format, write it in another."""

from __future__ import annotations

import os
from pathlib import Path

from linegraph2road.errors import GeoreferenceError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph, write_graph
from linegraph2road.io.raster import read_georef

__all__ = ["convert_graph", "georef_of_raster"]

PathLike = str | os.PathLike[str]


def georef_of_raster(path: PathLike) -> Georeference:
    """The georeference of a raster, refusing rasters that have none."""
    georef = read_georef(path)
    if georef is None:
        raise GeoreferenceError(
            f"{Path(path).name}: the raster has no CRS or transform, so it cannot georeference "
            "a graph; give a GeoTIFF with a CRS"
        )
    return georef


def convert_graph(
    src: PathLike,
    dst: PathLike,
    *,
    in_format: str | None = None,
    out_format: str | None = None,
    like: PathLike | None = None,
) -> RoadGraph:
    """Read ``src`` and write it to ``dst``; formats default to the files' extensions.

    Parameters
    ----------
    like : path, optional
        A georeferenced raster. Pixel-coordinate inputs (City-scale or SpaceNet pickles, Sat2Graph
        JSON, pixel GeoJSON) get its georeference; geographic inputs are placed on its pixel grid.
    """
    georef = georef_of_raster(like) if like is not None else None
    graph = read_graph(src, in_format, like=georef)
    if georef is not None and graph.georef is None:
        graph = graph.with_georef(georef)
    write_graph(graph, dst, out_format)
    return graph
