"""Putting graphs into metres before scoring.

Every metric works on node positions in metres in a local, conformal, north-up frame:

* a georeferenced graph is projected pixel -> raster CRS -> WGS84 -> its UTM zone;
* a pixel graph is taken at ``gsd`` metres per pixel (default 1 px = 1 m, the City-scale and
  Global-scale convention), with ``y`` still pointing down the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import GeoreferenceError
from linegraph2road.georef import WGS84, transform_points, utm_crs_for

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["metric_nodes", "same_frame"]


def metric_nodes(graph: RoadGraph, *, gsd: float | None = None) -> NDArray[np.float64]:
    """(N, 2) float64 node positions in metres (see module docstring).

    Parameters
    ----------
    graph : RoadGraph
    gsd : float, optional
        Metres per pixel for pixel graphs (default 1.0). For georeferenced graphs it must be None:
        the georeference already fixes the scale.
    """
    if graph.georef is None or graph.num_nodes == 0:
        scale = 1.0 if gsd is None else float(gsd)
        if scale <= 0:
            raise GeoreferenceError(f"gsd must be positive, got {gsd}")
        return np.asarray(graph.nodes, dtype=np.float64) * scale
    if gsd is not None:
        raise GeoreferenceError("gsd is given for a georeferenced graph; its georeference sets it")
    lonlat = graph.georef.pixel_to_lonlat(graph.nodes)
    return transform_points(lonlat, WGS84, utm_crs_for(lonlat))


def same_frame(
    gt: RoadGraph, pred: RoadGraph, *, gsd: float | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Metre positions of two graphs in one common frame.

    Pixel graphs: both scaled by ``gsd``. Georeferenced graphs: both projected to the UTM zone of
    the ground truth. Mixing a pixel graph with a georeferenced one is refused, since there is no
    way to know where the pixel graph lies.
    """
    if (gt.georef is None) != (pred.georef is None) and gt.num_nodes and pred.num_nodes:
        raise GeoreferenceError(
            "one graph is georeferenced and the other is in pixels; give both in the same "
            "coordinate system (use `l2r convert --like RASTER` for the pixel one)"
        )
    if gt.georef is None and pred.georef is None:
        return metric_nodes(gt, gsd=gsd), metric_nodes(pred, gsd=gsd)
    if gsd is not None:
        raise GeoreferenceError("gsd is given for georeferenced graphs; their georeference sets it")
    ref = gt if gt.num_nodes else pred
    if ref.num_nodes == 0 or ref.georef is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    utm = utm_crs_for(ref.georef.pixel_to_lonlat(ref.nodes))

    def project(g: RoadGraph) -> NDArray[np.float64]:
        if g.num_nodes == 0 or g.georef is None:
            return np.zeros((0, 2))
        return transform_points(g.georef.pixel_to_lonlat(g.nodes), WGS84, utm)

    return project(gt), project(pred)
