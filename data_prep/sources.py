"""Road-graph sources for training labels: one entry point, :func:`load_roads`.

=====================  ===============================================  =======================
format                 what                                             per-edge tags
=====================  ===============================================  =======================
``"osm"``              OpenStreetMap ``.osm.pbf`` / ``.osm`` (pyosmium)  bridge, tunnel, layer,
                                                                        highway
``"geojson"``          SpaceNet centerlines (lon/lat LineStrings)       bridge, highway
``"cityscale"``        City-scale / Global-scale ``{(row, col): ...}``  none
``"samroad-spacenet"`` SAM-Road SpaceNet pickle (flipped keys)          none
``"sat2graph-json"``,  the other formats of :mod:`linegraph2road.io`    none
``"gpickle"``,
``"graphml"``
=====================  ===============================================  =======================

Every source returns a :class:`~linegraph2road.data_prep.tagged.TaggedGraph` in the frame
described in :mod:`linegraph2road.data_prep.grid`: lon/lat sources (OSM, GeoJSON) as nodes
``(lon, lat)`` with ``georef = LONLAT``; pickles in pixel coordinates (``georef=None``); gpickle /
GraphML on the grid their reader builds. Pass the result to
:func:`~linegraph2road.data_prep.grid.clip_to_grid`.

SpaceNet GeoJSON
----------------
SpaceNet road labels (SpaceNet Roads labeling guide, "GeoJSON Schema") carry ``bridge_type``
(spelled ``bridge_typ`` in some releases) with ``1`` = bridge, ``2`` = not a bridge,
``3`` = unknown, and ``road_type`` ``1..7`` = motorway, primary, secondary, tertiary,
residential, unclassified, cart track (read as OSM ``track``). An edge is a bridge iff its
feature's ``bridge_type`` is 1 (string or int); unknown counts as not a bridge. ``tagged`` is
True when any feature has a ``bridge_type``/``bridge_typ`` property. SpaceNet has no tunnel or
layer attribute (those stay False / 0). Vertices with identical coordinates are one node (that is
how SpaceNet joins roads at intersections), consecutive vertices of a line are edges.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from linegraph2road.data_prep.grid import TileGrid, check_overlap, clip_to_grid
from linegraph2road.data_prep.osm import LONLAT, OSM_SUFFIXES, read_osm
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import FormatError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io import GRAPH_FORMATS, guess_format, read_graph
from linegraph2road.io._unpickle import check_input_file
from linegraph2road.io.geojson import geojson_crs, geojson_lines, join_lines

__all__ = [
    "SOURCE_FORMATS",
    "SPACENET_ROAD_TYPES",
    "guess_source_format",
    "load_roads",
    "read_spacenet_geojson",
    "roads_on_grid",
]

SOURCE_FORMATS: tuple[str, ...] = ("osm", *GRAPH_FORMATS)
SPACENET_ROAD_TYPES = {
    1: "motorway",
    2: "primary",
    3: "secondary",
    4: "tertiary",
    5: "residential",
    6: "unclassified",
    7: "track",
}
_BRIDGE_KEYS = ("bridge_type", "bridge_typ")


def guess_source_format(path: str | os.PathLike[str]) -> str:
    """``"osm"`` for OSM suffixes, else :func:`linegraph2road.io.guess_format`."""
    name = Path(path).name.lower()
    if any(name.endswith(s) for s in OSM_SUFFIXES):
        return "osm"
    return guess_format(path)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def read_spacenet_geojson(path: str | os.PathLike[str]) -> TaggedGraph:
    """Read SpaceNet road centerlines (see the module docstring) as a tagged source graph.

    Returns
    -------
    TaggedGraph
        Nodes ``(N, 2)`` float64 ``(lon, lat)`` with ``georef = LONLAT`` (or the file's legacy
        ``crs`` with the identity transform; pixel coordinates when the file says so), per-edge
        ``bridge`` and ``highway``; ``graph.meta["source"]`` is the path.

    Raises
    ------
    InputFileError
        Missing or unreadable path.
    FormatError
        Not JSON / not GeoJSON / a geometry other than (Multi)LineString.
    """
    p = check_input_file(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{p}: not valid JSON ({exc})") from exc
    lines = geojson_lines(data, str(p))
    member = data.get("l2r") if isinstance(data.get("l2r"), dict) else {}
    crs = geojson_crs(data, member, "auto")
    georef = (
        None
        if crs is None
        else (LONLAT if crs == LONLAT.crs else Georeference(crs, LONLAT.transform))
    )
    nodes, pairs, owner = join_lines(lines)
    e = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    own = np.asarray(owner, dtype=np.int64)
    lo, hi = e.min(axis=1), e.max(axis=1)
    ok = lo != hi
    key = lo[ok] * (len(nodes) + 1) + hi[ok]
    _, first = np.unique(key, return_index=True)
    sel = np.flatnonzero(ok)[np.sort(first)]
    props = [lines[i][1] for i in own[sel].tolist()]
    bridge = [
        _int_or_none(next((pr[k] for k in _BRIDGE_KEYS if k in pr), None)) == 1 for pr in props
    ]
    highway = [SPACENET_ROAD_TYPES.get(_int_or_none(pr.get("road_type")) or 0, "") for pr in props]
    tagged = any(k in pr for _, pr, _ in lines for k in _BRIDGE_KEYS)
    graph = RoadGraph(
        nodes,
        np.column_stack([lo[sel], hi[sel]]).reshape(-1, 2),
        georef=georef,
        meta={"source": str(p)},
    ).drop_isolated_nodes()
    return TaggedGraph(graph, bridge=bridge, tagged=tagged, highway=highway)


def load_roads(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    highways: Any = None,
    include_service: bool = False,
    include_tracks: bool = False,
    **options: Any,
) -> TaggedGraph:
    """Read a road graph from any source, as a TaggedGraph ready for :func:`clip_to_grid`.

    Parameters
    ----------
    path : path
    format : str, optional, keyword-only
        One of :data:`SOURCE_FORMATS`; guessed by :func:`guess_source_format` when omitted
        (``.osm.pbf``/``.osm``... -> ``"osm"``, ``.geojson`` -> ``"geojson"``, ``.p`` ->
        ``"cityscale"``; SAM-Road SpaceNet pickles need ``format="samroad-spacenet"``).
    highways, include_service, include_tracks
        OSM highway filter (see :func:`~linegraph2road.data_prep.osm.read_osm`); ignored by the
        other formats.
    **options
        Passed to the :mod:`linegraph2road.io` reader (e.g. ``tile_size`` for SpaceNet pickles).

    Returns
    -------
    TaggedGraph
        Tagged for OSM and SpaceNet GeoJSON, :meth:`TaggedGraph.untagged` for the others.

    Raises
    ------
    InputFileError, FormatError
        Missing/unreadable file, unknown format or unreadable content.
    """
    fmt = format if format is not None else guess_source_format(path)
    if fmt not in SOURCE_FORMATS:
        raise FormatError(
            f"unknown road source format {fmt!r}; expected one of: {', '.join(SOURCE_FORMATS)}"
        )
    if fmt == "osm":
        return read_osm(
            path, highways=highways, include_service=include_service, include_tracks=include_tracks
        )
    if fmt == "geojson":
        return read_spacenet_geojson(path)
    graph = read_graph(path, fmt, **options)
    return TaggedGraph.untagged(graph.replace(meta={**graph.meta, "source": str(path)}))


def roads_on_grid(
    path: str | os.PathLike[str], grid: TileGrid, *, format: str | None = None, **options: Any
) -> TaggedGraph:
    """:func:`load_roads` then :func:`~.grid.clip_to_grid`: a source's roads in ``grid``'s pixels.

    Example: the Finland OSM extract on a 1 m/px UTM grid over its extent::

        grid = TileGrid.from_bounds((26.93, 60.52, 26.97, 60.54), crs="EPSG:4326", gsd=1.0)
        tagged = roads_on_grid("finland_motorway_test.osm.pbf", grid)

    Raises
    ------
    GeoreferenceError
        The data and the grid do not overlap at all (see :func:`~.grid.check_overlap`), or a
        georeferenced source on a grid without CRS.
    """
    tagged = load_roads(path, format=format, **options)
    check_overlap(tagged, grid, what="the grid")
    return clip_to_grid(tagged, grid)
