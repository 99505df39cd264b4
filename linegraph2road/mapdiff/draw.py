"""The changes of a map diff drawn over the raster, for a quick look before review.

Colours (:data:`linegraph2road.overlay.COLORS`): reference roads the imagery confirms in blue
(``gt``), reference roads not seen in red (``missed``), predicted roads the map has in orange
(``pred``, thin), and predicted roads missing from the map in green (``positive``, thick),
over the dimmed image.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import GeoreferenceError
from linegraph2road.georef import transform_points
from linegraph2road.graph import RoadGraph
from linegraph2road.overlay import COLORS, draw_graph, make_canvas

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference
    from linegraph2road.mapdiff.result import MapDiff

__all__ = ["OVERLAY_MAX_SIDE", "draw_changes", "read_overlay_image"]

#: The overlay is at most this many pixels on its longer side (large rasters are shrunk).
OVERLAY_MAX_SIDE = 4096

# class -> (colour name, line width in pixels), drawn in this order
_STYLE = (
    ("confirmed", "gt", 3),
    ("not_seen", "missed", 3),
    ("matched", "pred", 1),
    ("missing_from_ref", "positive", 3),
)


def read_overlay_image(
    path: str | os.PathLike[str], *, max_side: int = OVERLAY_MAX_SIDE
) -> tuple[NDArray[np.uint8], Georeference]:
    """A georeferenced raster as an (H, W, 3) uint8 RGB image of at most ``max_side`` pixels a
    side, with the georeference of that (possibly shrunk) grid.

    Raises
    ------
    GeoreferenceError
        The raster has no georeference.
    InputFileError, FormatError
        Unreadable raster.
    """
    from linegraph2road.inference.imagery import RasterSource

    with RasterSource(path, gsd=None) as probe:
        h, w = probe.source_shape
        gsd = probe.source_gsd
    if gsd is None:
        raise GeoreferenceError(f"{path}: the raster has no georeference, so nothing can be placed")
    factor = max(1.0, max(h, w) / float(max_side))
    with RasterSource(path, gsd=None if factor == 1.0 else gsd * factor) as src:
        image, _ = src.read_all()
        georef = src.georef
    if georef is None:  # pragma: no cover - checked above
        raise GeoreferenceError(f"{path}: the raster has no georeference")
    return np.moveaxis(image, 0, 2), georef


def draw_changes(
    diff: MapDiff, image: NDArray[np.uint8], georef: Georeference
) -> NDArray[np.uint8]:
    """An (H, W, 3) uint8 picture of the diff's classes over ``image`` (see module docstring).

    Parameters
    ----------
    diff : MapDiff
    image : (H, W, 3) uint8
        The raster (e.g. from :func:`read_overlay_image`).
    georef : Georeference
        The grid of ``image``.
    """
    canvas = make_canvas(image.shape[:2], image)
    for kind, colour, width in _STYLE:
        segs = diff.pred if kind in ("matched", "missing_from_ref") else diff.ref
        sel = diff.mask(kind)
        if not sel.any():
            continue
        ends = np.concatenate([segs.start[sel], segs.end[sel]])
        px = georef.crs_to_pixel(transform_points(ends, diff.crs, georef.crs))
        n = int(sel.sum())
        pairs = np.stack([np.arange(n), np.arange(n) + n], axis=1)
        canvas = draw_graph(canvas, RoadGraph(px, pairs), COLORS[colour], width=width)
    return canvas
