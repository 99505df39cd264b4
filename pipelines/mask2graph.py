"""``l2r mask2graph``: a road mask raster -> a road graph file."""

from __future__ import annotations

import os
from typing import Any

from linegraph2road.graph import RoadGraph
from linegraph2road.io import write_graph
from linegraph2road.io.raster import read_mask
from linegraph2road.mask2graph import mask_to_graph
from linegraph2road.pipelines.convert import georef_of_raster

__all__ = ["mask_file_to_graph"]

PathLike = str | os.PathLike[str]


def mask_file_to_graph(
    mask_path: PathLike,
    out_path: PathLike,
    *,
    out_format: str | None = None,
    band: int = 1,
    like: PathLike | None = None,
    **params: Any,
) -> RoadGraph:
    """Read a mask, vectorise it with :func:`~linegraph2road.mask2graph.mask_to_graph`, write.

    Parameters
    ----------
    mask_path : path
        Road probability or binary mask (GeoTIFF, PNG, ...), see
        :func:`~linegraph2road.io.raster.read_mask`.
    out_path : path
        Output graph; the format comes from ``out_format`` or the extension.
    band : int
        1-based band of the mask to read.
    like : path, optional
        Georeferenced raster to take the georeference from when the mask has none (a PNG).
    **params
        Keyword parameters of ``mask_to_graph`` (``threshold``, ``min_spur_length``...).
    """
    mask, georef = read_mask(mask_path, band=band)
    if georef is None and like is not None:
        georef = georef_of_raster(like)
    graph = mask_to_graph(mask, georef=georef, **params)
    write_graph(graph, out_path, out_format)
    return graph
