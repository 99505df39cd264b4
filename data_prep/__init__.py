"""OSM and benchmark road graphs -> training labels (installed as ``linegraph2road.data_prep``).

The flow (SPEC.md "Training labels"; the paper's section 3.5 and appendix 0.E):

1. **Sources** (:mod:`.osm`, :mod:`.sources`, :mod:`.datasets`): OpenStreetMap extracts,
   SpaceNet GeoJSON centerlines and benchmark pickles -> :class:`TaggedGraph` (a
   :class:`~linegraph2road.graph.RoadGraph` plus bridge/tunnel/layer tags).
2. **Grid** (:mod:`.grid`): projected onto a raster's pixel grid and clipped at the tile border.
3. **Labels** (:mod:`.labels`, :mod:`.overpass`, :mod:`.interpolate`, :mod:`.candidate_labels`,
   :mod:`.tile`): road, keypoint and overpass masks; crossings from tags or Algorithm 3;
   Algorithm 4 interpolation, coupled NMS and labelled candidate edges; written per tile.
"""

from __future__ import annotations

from linegraph2road.data_prep.candidate_labels import CandidateLabels, label_candidates
from linegraph2road.data_prep.datasets import DATASET_FORMATS, DatasetTile, list_tiles
from linegraph2road.data_prep.grid import TileGrid, check_overlap, clip_to_grid
from linegraph2road.data_prep.interpolate import algorithm4_positions, interpolate_paths
from linegraph2road.data_prep.labels import keypoint_mask, keypoint_nodes, overpass_mask, road_mask
from linegraph2road.data_prep.osm import DEFAULT_HIGHWAYS, read_osm
from linegraph2road.data_prep.overpass import (
    OverpassResult,
    detect_overpasses,
    find_crossings,
    tagged_crossings,
)
from linegraph2road.data_prep.sources import load_roads, read_spacenet_geojson, roads_on_grid
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.data_prep.tile import (
    TileLabels,
    build_tile_labels,
    preview_canvas,
    write_tile_labels,
)

__all__ = [
    "DATASET_FORMATS",
    "DEFAULT_HIGHWAYS",
    "CandidateLabels",
    "DatasetTile",
    "OverpassResult",
    "TaggedGraph",
    "TileGrid",
    "TileLabels",
    "algorithm4_positions",
    "build_tile_labels",
    "check_overlap",
    "clip_to_grid",
    "detect_overpasses",
    "find_crossings",
    "interpolate_paths",
    "keypoint_mask",
    "keypoint_nodes",
    "label_candidates",
    "list_tiles",
    "load_roads",
    "overpass_mask",
    "preview_canvas",
    "read_osm",
    "read_spacenet_geojson",
    "road_mask",
    "roads_on_grid",
    "tagged_crossings",
    "write_tile_labels",
]
