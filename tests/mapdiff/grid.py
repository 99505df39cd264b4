"""Hand-built graphs for diff tests: a 1 m/px grid in UTM zone 35N, footprints on it."""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine

from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.mapdiff.frame import box_polygon, project_polygon

# pixel (x, y) -> (X0 + x, Y0 - y) metres
X0, Y0 = 497000.0, 6710000.0
GRID = Georeference("EPSG:32635", Affine(1.0, 0.0, X0, 0.0, -1.0, Y0))


def footprint(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """The pixel box ``(x0, y0, x1, y1)`` of GRID as a WGS84 polygon."""
    corners = box_polygon((X0 + x0, Y0 - y1, X0 + x1, Y0 - y0))
    return project_polygon(corners, "EPSG:32635", "EPSG:4326")


def lonlat_box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, ...]:
    """The lon/lat bounds of a pixel box of GRID (an OSM header box)."""
    return tuple(shapely.bounds(footprint(x0, y0, x1, y1)).tolist())


def on_grid(
    nodes: list, edges: list, prob: list | None = None, extent: tuple | None = None
) -> RoadGraph:
    """A graph on GRID; ``extent`` (pixel box x0, y0, x1, y1) is its footprint, as an OSM
    extract's header box is."""
    meta = {} if extent is None else {"extent": lonlat_box(*extent)}
    return RoadGraph.from_edges(np.asarray(nodes, float), edges, prob, GRID, meta)
