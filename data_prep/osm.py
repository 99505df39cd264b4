"""OpenStreetMap road graphs (``.osm.pbf``, ``.osm``, ``.osm.gz``, ``.osm.bz2``) via pyosmium.

What is read
------------
Every way with a ``highway`` tag in the chosen set (:func:`highway_filter`), except ways tagged
``area=yes``. Each way is split into one edge per pair of consecutive nodes; ways join where
they share an OSM node id, so the graph is routable as OSM models it. Pairs that repeat a node
(zero-length) are dropped, an edge drawn by two ways is kept once (tags of the first), and an
edge whose node has no location in the file (a way cut at the extract border) is left out.

Default highway filter (:data:`DEFAULT_HIGHWAYS`): ``motorway``, ``trunk``, ``primary``,
``secondary``, ``tertiary``, their ``*_link`` ramps, ``unclassified``, ``residential`` and
``living_street`` -- the drivable public roads that road-extraction benchmarks label.
``include_service=True`` adds ``service``; ``include_tracks=True`` adds ``track``. Footways,
cycleways, paths, construction and proposed roads are never included by default.

Tags kept per edge
------------------
``bridge`` and ``tunnel``: true for any value but ``no`` (``yes``, ``viaduct``...).
``layer``: the integer part of the first ``;``-separated value (``"-1"``, ``"+1"``,
``"1;2"`` -> 1), 0 when absent or not a number. ``highway``: the road class. ``way_id``: the id of
the OSM way that drew the edge.

Coordinates
-----------
The result is a source graph in lon/lat (see :mod:`linegraph2road.data_prep.grid`): node
``(x, y) = (lon, lat)`` in WGS84 degrees and ``georef = LONLAT`` (EPSG:4326 with the identity
transform), so :func:`~linegraph2road.data_prep.grid.clip_to_grid` can project it onto any grid.
``graph.meta["extent"]`` is the data's extent ``(min_lon, min_lat, max_lon, max_lat)``: the
file header's bounding box when it has one, else the box of every node location in the file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.georef import WGS84, Georeference
from linegraph2road.graph import RoadGraph

__all__ = [
    "DEFAULT_HIGHWAYS",
    "LONLAT",
    "OSM_SUFFIXES",
    "SERVICE_HIGHWAYS",
    "TRACK_HIGHWAYS",
    "highway_filter",
    "parse_layer",
    "read_osm",
]

#: The georeference of a source graph whose nodes are WGS84 (lon, lat) degrees.
LONLAT = Georeference(WGS84, Affine.identity())

_MAJOR = ("motorway", "trunk", "primary", "secondary", "tertiary")
DEFAULT_HIGHWAYS: frozenset[str] = frozenset(
    (*_MAJOR, *(f"{h}_link" for h in _MAJOR), "unclassified", "residential", "living_street")
)
SERVICE_HIGHWAYS: frozenset[str] = frozenset({"service"})
TRACK_HIGHWAYS: frozenset[str] = frozenset({"track"})
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.gz", ".osm.bz2", ".o5m")


def highway_filter(
    *,
    include_service: bool = False,
    include_tracks: bool = False,
    extra: Iterable[str] = (),
) -> frozenset[str]:
    """The set of ``highway=*`` values to read.

    Parameters
    ----------
    include_service : bool, default False
        Add ``service`` (driveways, parking aisles, alleys).
    include_tracks : bool, default False
        Add ``track`` (agricultural / forest tracks).
    extra : iterable of str
        Any further values (e.g. ``"road"``, ``"busway"``).
    """
    out = set(DEFAULT_HIGHWAYS)
    if include_service:
        out |= SERVICE_HIGHWAYS
    if include_tracks:
        out |= TRACK_HIGHWAYS
    out.update(extra)
    return frozenset(out)


def parse_layer(value: str | None) -> int:
    """OSM ``layer`` value -> int (0 when absent or unparseable; clamped to [-5, 5])."""
    if not value:
        return 0
    first = value.split(";")[0].strip()
    try:
        layer = int(float(first))
    except ValueError:
        return 0
    return max(-5, min(5, layer))


def _yes(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "no")


class _Collector:
    """Accumulates edges and per-edge tags while streaming ways."""

    def __init__(self) -> None:
        self.node_index: dict[int, int] = {}
        self.coords: list[tuple[float, float]] = []
        self.edges: list[tuple[int, int]] = []
        self.seen: set[tuple[int, int]] = set()
        self.bridge: list[bool] = []
        self.tunnel: list[bool] = []
        self.layer: list[int] = []
        self.highway: list[str] = []
        self.way_id: list[int] = []

    def _node(self, ref: int, lon: float, lat: float) -> int:
        idx = self.node_index.get(ref)
        if idx is None:
            idx = len(self.coords)
            self.node_index[ref] = idx
            self.coords.append((lon, lat))
        return idx

    def add_way(
        self, nodes: list[tuple[int, float, float] | None], tags: dict[str, Any], way_id: int = -1
    ) -> None:
        bridge, tunnel = _yes(tags.get("bridge")), _yes(tags.get("tunnel"))
        layer, highway = parse_layer(tags.get("layer")), str(tags.get("highway", ""))
        for a, b in itertools.pairwise(nodes):
            if a is None or b is None or a[0] == b[0]:
                continue
            i, j = self._node(*a), self._node(*b)
            key = (min(i, j), max(i, j))
            if key in self.seen:
                continue
            self.seen.add(key)
            self.edges.append(key)
            self.bridge.append(bridge)
            self.tunnel.append(tunnel)
            self.layer.append(layer)
            self.highway.append(highway)
            self.way_id.append(way_id)


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, expected an OSM file (.osm.pbf, .osm)")
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{p}: permission denied")
    return p


def read_osm(
    path: str | os.PathLike[str],
    *,
    highways: Iterable[str] | None = None,
    include_service: bool = False,
    include_tracks: bool = False,
) -> TaggedGraph:
    """Read the road network of an OSM file as a tagged lon/lat source graph.

    Parameters
    ----------
    path : path
        ``.osm.pbf``, ``.osm`` (XML), ``.osm.gz``, ``.osm.bz2`` or ``.o5m``.
    highways : iterable of str, optional, keyword-only
        Exact set of ``highway=*`` values to keep; default :func:`highway_filter` with the two
        flags below (which are ignored when ``highways`` is given).
    include_service, include_tracks : bool, default False
        Add ``service`` / ``track`` ways to the default filter.

    Returns
    -------
    TaggedGraph
        ``tagged=True``; nodes ``(N, 2)`` float64 ``(lon, lat)`` degrees, edges ``(E, 2)`` int64,
        per-edge ``bridge``/``tunnel``/``layer``/``highway``/``way_id``; ``georef`` is
        :data:`LONLAT` and ``graph.meta`` holds ``"extent"`` (lon/lat box or None for a file
        without nodes), ``"source"`` (the path) and ``"highways"`` (sorted filter values).

    Raises
    ------
    InputFileError
        Missing path, a directory, or unreadable.
    FormatError
        The file is truncated, corrupt or not OSM data (one line, from libosmium's message).
    """
    import osmium

    p = _check_path(path)
    keep = frozenset(highways) if highways is not None else None
    if keep is None:
        keep = highway_filter(include_service=include_service, include_tracks=include_tracks)
    col = _Collector()
    lo = [np.inf, np.inf]
    hi = [-np.inf, -np.inf]
    try:
        fp = osmium.FileProcessor(str(p), osmium.osm.NODE | osmium.osm.WAY).with_locations()
        box = fp.header.box()
        track = not box.valid()  # the node box is only needed without a header box
        for obj in fp:
            if isinstance(obj, osmium.osm.Node):
                loc = obj.location
                if track and loc.valid():
                    lon, lat = loc.lon, loc.lat
                    lo = [min(lo[0], lon), min(lo[1], lat)]
                    hi = [max(hi[0], lon), max(hi[1], lat)]
                continue
            if not isinstance(obj, osmium.osm.Way):
                continue
            tags = obj.tags
            hw = tags.get("highway")
            if hw not in keep or tags.get("area") == "yes":
                continue
            nodes = [
                (n.ref, n.location.lon, n.location.lat) if n.location.valid() else None
                for n in obj.nodes
            ]
            keys = ("bridge", "tunnel", "layer", "highway")
            col.add_way(nodes, {k: tags.get(k) for k in keys}, int(obj.id))
    except RuntimeError as exc:
        msg = " ".join(str(exc).split())
        raise FormatError(f"{p}: not a readable OSM file, truncated or corrupt ({msg})") from exc
    extent: tuple[float, float, float, float] | None = None
    if box.valid():
        extent = (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
    elif np.isfinite(lo).all():
        extent = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    nodes_arr = np.asarray(col.coords, dtype=np.float64).reshape(-1, 2)
    edges_arr = np.asarray(col.edges, dtype=np.int64).reshape(-1, 2)
    meta = {"extent": extent, "source": str(p), "highways": sorted(keep)}
    graph = RoadGraph(nodes_arr, edges_arr, georef=LONLAT, meta=meta)
    return TaggedGraph(
        graph,
        bridge=col.bridge,
        tunnel=col.tunnel,
        layer=col.layer,
        tagged=True,
        highway=col.highway,
        way_id=col.way_id,
    )
