"""Conversion to and from networkx graphs, and networkx graph pickles (``gpickle``).

:func:`to_networkx` gives an undirected ``networkx.Graph`` with osmnx-style attributes: nodes
``0..N-1`` with ``x``, ``y``; edges with ``length`` and, when the graph has them, ``prob``.
Graph attributes record where the coordinates live so :func:`from_networkx` can restore the exact
pixel grid:

``l2r_coordinates``
    ``"pixel"`` or ``"crs"``.
``crs``
    The CRS string (``"EPSG:n"`` or WKT), only with ``coords="crs"``; ``l2r_crs`` holds it for
    pixel coordinates of a georeferenced graph (``crs`` would claim x, y are CRS coordinates).
``l2r_transform``
    The pixel -> CRS affine transform ``[a, b, c, d, e, f]`` (rasterio order).
``l2r_length_unit``
    ``"m"`` when the graph is georeferenced (geodesic metres for a geographic CRS, projected
    units times the unit's metre factor otherwise), ``"px"`` otherwise.

:func:`from_networkx` reads any Graph / DiGraph / MultiGraph / MultiDiGraph (osmnx and CosmiQ
APLS graphs included). Directed two-way pairs and parallel edges with the same course collapse to
one undirected edge; an edge ``geometry`` (shapely LineString or WKT) with interior vertices
becomes a chain of degree-2 nodes when ``expand_geometry`` is true, so parallel roads with
different courses stay distinct. Where the coordinates land:

* ``like`` given: from the graph's CRS into ``like``'s pixel grid;
* CRS and ``l2r_transform``: exactly that grid (unless ``l2r_transform_crs`` says the grid
  belongs to another CRS: the graph was reprojected since);
* projected CRS only: a grid in that CRS at 1 unit per pixel, origin at (min x, max y);
* geographic CRS only: :meth:`Georeference.local_metric_grid` (UTM, 1 m per pixel);
* no CRS, or a pixel frame (an engineering CRS such as
  :data:`~linegraph2road.georef.PIXEL_CRS`): the coordinates are pixels (``like``, if given, is
  attached).

gpickle files (CosmiQ's APLS test graphs) are read through the restricted unpickler with an
allow-list extended by networkx graph/view classes and shapely geometries only.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import warnings
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from pyproj import Geod

from linegraph2road.errors import FormatError, GeoreferenceError, GraphError
from linegraph2road.georef import WGS84, Georeference, as_crs, is_pixel_crs, transform_points
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._unpickle import GPICKLE_ALLOW, safe_load_pickle

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "GEOMETRY_VERTEX_KEY",
    "from_networkx",
    "metric_edge_lengths",
    "place_points",
    "read_gpickle",
    "to_networkx",
    "write_gpickle",
]

#: ``RoadGraph.meta`` key: index of the first node that is an expanded edge-geometry vertex (the
#: nodes before it are the networkx graph's own nodes). Absent when no geometry was expanded.
GEOMETRY_VERTEX_KEY = "first_geometry_vertex"

_GEOD = Geod(ellps="WGS84")


def metric_edge_lengths(graph: RoadGraph) -> NDArray[np.float64]:
    """(E,) float64 edge lengths: metres when ``graph`` is georeferenced, else pixels."""
    g = graph.georef
    if g is None or graph.num_edges == 0:
        return graph.edge_lengths()
    a, b = graph.nodes[graph.edges[:, 0]], graph.nodes[graph.edges[:, 1]]
    if g.is_geographic:
        la, lb = g.pixel_to_lonlat(a), g.pixel_to_lonlat(b)
        _, _, dist = _GEOD.inv(la[:, 0], la[:, 1], lb[:, 0], lb[:, 1])
        return np.abs(np.asarray(dist, dtype=np.float64))
    ca, cb = g.pixel_to_crs(a), g.pixel_to_crs(b)
    factor = g.crs.axis_info[0].unit_conversion_factor if g.crs.axis_info else 1.0
    return np.hypot(*(cb - ca).T) * float(factor)


def to_networkx(graph: RoadGraph, *, coords: Literal["pixel", "crs"] = "pixel") -> nx.Graph:
    """An undirected ``networkx.Graph`` of ``graph`` (see the module docstring for attributes).

    Parameters
    ----------
    graph : RoadGraph
    coords : {"pixel", "crs"}, keyword-only
        Node ``x``, ``y`` in pixels (default) or in the georeference's CRS.

    Raises
    ------
    GeoreferenceError
        ``coords="crs"`` for a graph without georeference.
    """
    if coords not in ("pixel", "crs"):
        raise ValueError(f"coords must be 'pixel' or 'crs', got {coords!r}")
    g = graph.georef
    if coords == "crs" and g is None:
        raise GeoreferenceError("coords='crs' needs a georeferenced graph; this one is in pixels")
    G = nx.Graph()
    G.graph["l2r_coordinates"] = coords
    G.graph["l2r_length_unit"] = "px" if g is None else "m"
    if g is not None:
        record = g.to_dict()
        G.graph["crs" if coords == "crs" else "l2r_crs"] = record["crs"]
        G.graph["l2r_transform"] = record["transform"]
    pts = graph.nodes if coords == "pixel" or g is None else g.pixel_to_crs(graph.nodes)
    G.add_nodes_from((i, {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(pts.tolist()))
    lengths = metric_edge_lengths(graph).tolist()
    probs = None if graph.edge_prob is None else graph.edge_prob.tolist()
    for k, (i, j) in enumerate(graph.edges.tolist()):
        attrs: dict[str, Any] = {"length": lengths[k]}
        if probs is not None:
            attrs["prob"] = probs[k]
        G.add_edge(i, j, **attrs)
    return G


def place_points(
    xy: NDArray[np.float64],
    crs: Any,
    *,
    like: Georeference | None = None,
    transform: Affine | None = None,
) -> tuple[NDArray[np.float64], Georeference | None]:
    """Map (N, 2) coordinates in ``crs`` to library pixels, choosing the grid as documented above.

    ``crs`` None means ``xy`` already are pixels. Returns the pixels and the grid's georeference.
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if crs is None:
        return pts.copy(), like
    src = as_crs(crs)
    if like is not None:
        return like.crs_to_pixel(transform_points(pts, src, like.crs)), like
    if transform is not None:
        grid = Georeference(src, transform)
        return grid.crs_to_pixel(pts), grid
    if len(pts) == 0:
        return pts.copy(), None if src.is_geographic else Georeference(src, Affine.scale(1, -1))
    if src.is_geographic:
        lonlat = transform_points(pts, src, WGS84)
        grid = Georeference.local_metric_grid(lonlat)
        return grid.lonlat_to_pixel(lonlat), grid
    grid = Georeference(
        src, Affine(1.0, 0.0, float(pts[:, 0].min()), 0.0, -1.0, float(pts[:, 1].max()))
    )
    return grid.crs_to_pixel(pts), grid


def _parse_transform(value: Any) -> Affine | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            value = json.loads(value)
        return Affine(*[float(v) for v in list(value)[:6]])
    except (TypeError, ValueError) as exc:
        raise GeoreferenceError(f"invalid l2r_transform {value!r}") from exc


def _float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise GraphError(f"{what} is not a number: {value!r}") from exc


def _node_position(key: Any, data: dict[str, Any], positions: str) -> tuple[float, float]:
    if positions == "attrs":
        if "x" not in data or "y" not in data:
            raise GraphError(
                f"node {key!r} has no 'x'/'y' attributes; for graphs keyed by coordinates pass "
                "positions='rowcol' or positions='xy'"
            )
        return _float(data["x"], f"node {key!r} x"), _float(data["y"], f"node {key!r} y")
    if not isinstance(key, tuple | list) or len(key) != 2:
        raise GraphError(f"node key {key!r} is not a coordinate pair (positions={positions!r})")
    a, b = _float(key[0], f"node key {key!r}"), _float(key[1], f"node key {key!r}")
    return (b + 0.5, a + 0.5) if positions == "rowcol" else (a, b)


def _geometry_coords(value: Any, where: str) -> NDArray[np.float64] | None:
    if value is None:
        return None
    try:
        geom = shapely.from_wkt(value) if isinstance(value, str) else value
    except shapely.errors.ShapelyError as exc:
        raise GraphError(f"{where}: invalid WKT geometry ({exc})") from exc
    if not isinstance(geom, shapely.LineString):
        raise GraphError(f"{where}: geometry must be a LineString, got {type(geom).__name__}")
    return np.asarray(shapely.get_coordinates(geom), dtype=np.float64)


def from_networkx(
    G: nx.Graph,
    *,
    like: Georeference | None = None,
    expand_geometry: bool = True,
    crs: Any = None,
    positions: Literal["attrs", "rowcol", "xy"] = "attrs",
) -> RoadGraph:
    """Build a RoadGraph from a networkx graph (see the module docstring for the placement rules).

    Parameters
    ----------
    G : networkx.Graph, DiGraph, MultiGraph or MultiDiGraph
        Node positions from ``x``, ``y`` attributes (numbers or numeric strings) or node keys.
    like : Georeference, optional, keyword-only
        Put the nodes on this pixel grid.
    expand_geometry : bool, keyword-only
        Turn interior vertices of edge ``geometry`` LineStrings into degree-2 nodes.
    crs : optional, keyword-only
        Overrides ``G.graph["crs"]`` (anything pyproj parses, proj dicts included).
    positions : {"attrs", "rowcol", "xy"}, keyword-only
        ``"attrs"``: node attributes ``x``, ``y``; ``"xy"``: node keys are ``(x, y)`` in the
        graph's coordinates; ``"rowcol"``: node keys are ``(row, col)`` pixel indices (pixel
        centres ``(col + 0.5, row + 0.5)``, a pixel graph).

    Returns
    -------
    RoadGraph
        Nodes in ``G.nodes`` order, then expanded geometry vertices; edges undirected.
    """
    if not isinstance(G, nx.Graph):
        raise GraphError(f"expected a networkx graph, got {type(G).__name__}")
    if positions not in ("attrs", "rowcol", "xy"):
        raise ValueError(f"positions must be 'attrs', 'rowcol' or 'xy', got {positions!r}")
    meta = G.graph
    transform = _parse_transform(meta.get("l2r_transform"))
    src_crs = crs if crs is not None else meta.get("crs")
    grid_crs = meta.get("l2r_transform_crs")
    if transform is not None and grid_crs is not None and src_crs is not None:
        try:
            if as_crs(grid_crs) != as_crs(src_crs):
                transform = None  # reprojected since we wrote it: the grid no longer applies
        except GeoreferenceError:
            transform = None
    own: Georeference | None = None
    if positions == "rowcol":
        src_crs = None
    elif (crs is None and meta.get("l2r_coordinates") == "pixel") or (
        src_crs is not None and is_pixel_crs(src_crs)
    ):
        src_crs = None
        if meta.get("l2r_crs") is not None and transform is not None:
            own = Georeference(as_crs(meta["l2r_crs"]), transform)

    index = {key: i for i, key in enumerate(G.nodes)}
    coords = [_node_position(key, data, positions) for key, data in G.nodes(data=True)]

    edges: list[tuple[int, int]] = []
    probs: list[float] = []
    seen: dict[tuple[int, int, tuple[tuple[float, float], ...]], tuple[int, int]] = {}
    all_prob = True
    for u, v, data in G.edges(data=True):
        i, j = index[u], index[v]
        interior: tuple[tuple[float, float], ...] = ()
        if expand_geometry and positions != "rowcol":
            line = _geometry_coords(data.get("geometry"), f"edge ({u!r}, {v!r})")
            if line is not None and len(line) > 2:
                pi, pj = np.asarray(coords[i]), np.asarray(coords[j])
                if np.hypot(*(line[0] - pj)) < np.hypot(*(line[0] - pi)):
                    line = line[::-1]
                interior = tuple(map(tuple, line[1:-1, :2].tolist()))
        if i > j:
            i, j, interior = j, i, interior[::-1]
        prob = data.get("prob")
        all_prob = all_prob and prob is not None
        p = _float(prob, f"edge ({u!r}, {v!r}) prob") if prob is not None else 0.0
        span = seen.get((i, j, interior))
        if span is not None:  # the same road again (other direction or a duplicate)
            probs[span[0] : span[1]] = [max(q, p) for q in probs[span[0] : span[1]]]
            continue
        seen[(i, j, interior)] = (len(probs), len(probs) + len(interior) + 1)
        chain = [i]
        for vertex in interior:
            chain.append(len(coords))
            coords.append(vertex)
        chain.append(j)
        edges.extend(itertools.pairwise(chain))
        probs.extend([p] * (len(chain) - 1))

    xy = np.array(coords, dtype=np.float64).reshape(-1, 2)
    if own is not None and like is not None:
        pixels, georef = place_points(own.pixel_to_crs(xy), own.crs, like=like)
    elif src_crs is None:
        pixels, georef = xy, own if own is not None else like
    else:
        pixels, georef = place_points(xy, src_crs, like=like, transform=transform)
    # Nodes from G.nodes come first; with expanded geometry, record where the geometry vertices
    # start, so consumers (CosmiQ APLS picks control points among graph nodes) can tell them apart.
    n_graph_nodes = len(index)
    meta_out = {GEOMETRY_VERTEX_KEY: n_graph_nodes} if len(coords) > n_graph_nodes else {}
    return RoadGraph.from_edges(
        pixels,
        np.array(edges, dtype=np.int64).reshape(-1, 2),
        np.array(probs, dtype=np.float32) if all_prob and edges else None,
        georef,
        meta_out,
    )


def read_gpickle(
    path: str | os.PathLike[str],
    *,
    like: Georeference | None = None,
    expand_geometry: bool = True,
) -> RoadGraph:
    """Read a networkx graph pickle (CosmiQ APLS ``.gpickle``) through the restricted unpickler.

    Shapely < 2 geometries in the file are converted by shapely 2 (its "Unpickling a shapely <2.0
    geometry object" warning is silenced here). See :func:`from_networkx` for the options.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Unpickling a shapely <2.0 geometry", category=UserWarning
        )
        G = safe_load_pickle(path, allow=GPICKLE_ALLOW)
    if not isinstance(G, nx.Graph):
        raise FormatError(f"{path}: not a networkx graph pickle (got {type(G).__name__})")
    try:
        return from_networkx(G, like=like, expand_geometry=expand_geometry)
    except (GraphError, GeoreferenceError) as exc:
        raise FormatError(f"{path}: {exc}") from exc


def write_gpickle(graph: RoadGraph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` as a networkx MultiGraph pickle (protocol 4, atomic), CosmiQ APLS style.

    Node ``x``, ``y`` in the CRS (pixels without georeference) plus ``lon``, ``lat`` when
    georeferenced; edge ``length`` (metres, or pixels), ``geometry`` (shapely 2 LineString in the
    same coordinates as ``x``, ``y``) and ``prob`` when present.
    """
    coords: Literal["pixel", "crs"] = "pixel" if graph.georef is None else "crs"
    G = nx.MultiGraph(to_networkx(graph, coords=coords))
    if graph.georef is not None:
        lonlat = graph.georef.pixel_to_lonlat(graph.nodes).tolist()
        for i, (lon, lat) in enumerate(lonlat):
            G.nodes[i].update(lon=lon, lat=lat)
    for u, v, data in G.edges(data=True):
        a, b = G.nodes[u], G.nodes[v]
        data["geometry"] = shapely.LineString([(a["x"], a["y"]), (b["x"], b["y"])])
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(G, fh, protocol=4)
