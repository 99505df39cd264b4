"""Map updating: what the imagery shows that the map does not (``l2r diff``).

A predicted road graph (``l2r extract`` output) is compared with a reference map (an
OpenStreetMap extract or any road graph) over the area both cover, with TOPO's line matching
(:mod:`linegraph2road.metrics.matching`). Predicted roads are ``matched`` or
``missing_from_ref``, reference roads ``confirmed`` or ``not_seen``; missing roads are joined
into whole roads with a connection status and a confidence, for a person to review (GeoPackage
layers, a JOSM ``.osm`` layer, an overlay PNG). Nothing is ever uploaded.

Example::

    from linegraph2road.io import read_graph
    from linegraph2road.data_prep import load_roads
    from linegraph2road.mapdiff import DiffOptions, diff_graphs

    diff = diff_graphs(read_graph("graph.geojson"), load_roads("area.osm.pbf"),
                       options=DiffOptions(tolerance=8.0))
    diff.summary()["km"]                      # km per class
    records = diff.layers()["missing_from_ref"]  # GeoDataFrame-ready columns
"""

from __future__ import annotations

from linegraph2road.mapdiff.diff import diff_graphs
from linegraph2road.mapdiff.draw import OVERLAY_MAX_SIDE, draw_changes, read_overlay_image
from linegraph2road.mapdiff.export import (
    JOSM_SOURCE,
    json_summary,
    summary_text,
    write_changes_gpkg,
    write_josm,
)
from linegraph2road.mapdiff.frame import Segments, raster_footprint
from linegraph2road.mapdiff.options import DiffOptions
from linegraph2road.mapdiff.result import CLASSES, MapDiff
from linegraph2road.mapdiff.roads import CONNECTIONS, MissingRoads

__all__ = [
    "CLASSES",
    "CONNECTIONS",
    "JOSM_SOURCE",
    "OVERLAY_MAX_SIDE",
    "DiffOptions",
    "MapDiff",
    "MissingRoads",
    "Segments",
    "diff_graphs",
    "draw_changes",
    "json_summary",
    "raster_footprint",
    "read_overlay_image",
    "summary_text",
    "write_changes_gpkg",
    "write_josm",
]
