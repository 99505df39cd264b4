"""GeoJSON road graphs: one LineString Feature per edge.

Writing
-------
A georeferenced graph is written as RFC 7946 GeoJSON: WGS84 ``[lon, lat]`` coordinates (pixel ->
CRS -> EPSG:4326) and no ``crs`` member. A pixel graph is written in pixel ``[x, y]``. Each
feature carries ``properties = {"u", "v", "prob" (if the graph has it), "length_m" (if
georeferenced)}``. A foreign member ``"l2r"`` records what the coordinates are and the exact pixel
grid so reading the file back gives the same graph (same node order, isolated nodes included)::

    "l2r": {"coordinates": "lonlat" | "pixel", "georef": Georeference.to_dict(),
            "num_nodes": N, "isolated_nodes": {"index": [...], "coordinates": [[...], ...]}}

Reading
-------
Any FeatureCollection, Feature or bare geometry of LineStrings and MultiLineStrings (z dropped,
features without geometry skipped). Every vertex becomes a node (vertices with identical
coordinates are one node, in order of first appearance), consecutive vertices are edges. Other
geometry types raise :class:`~linegraph2road.errors.FormatError`. Coordinates are lon/lat
(RFC 7946) unless the ``l2r`` member says pixels or a legacy ``crs`` member names another CRS;
they are placed on ``like``'s pixel grid when given, else on the grid in the ``l2r`` member, else
on :meth:`Georeference.local_metric_grid` (UTM, 1 m/px) for lon/lat, else on a 1 unit/px grid of
a projected CRS. ``prob`` properties become ``edge_prob`` when every feature has one. Files
written by :func:`write_geojson` are read by their ``u``/``v`` indices, restoring node order.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linegraph2road.errors import FormatError, GeoreferenceError
from linegraph2road.georef import WGS84, Georeference, as_crs, transform_points
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._files import read_json
from linegraph2road.io.nx import metric_edge_lengths, place_points

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["geojson_crs", "geojson_lines", "join_lines", "read_geojson", "write_geojson"]

_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}
_LONLAT_NAMES = {
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "urn:ogc:def:crs:epsg::4326",
    "epsg:4326",
    "crs84",
}

# One road line: its (M, 2) vertices, the feature's properties and the feature's index.
_Line = tuple["NDArray[np.float64]", dict[str, Any], int]


def write_geojson(
    graph: RoadGraph, path: str | os.PathLike[str], *, indent: int | None = None
) -> None:
    """Write ``graph`` as a GeoJSON FeatureCollection (atomic); see the module docstring."""
    g = graph.georef
    if g is not None:
        pts = g.pixel_to_lonlat(graph.nodes)
        member: dict[str, Any] = {"coordinates": "lonlat", "georef": g.to_dict()}
        lengths: list[float] | None = metric_edge_lengths(graph).tolist()
    else:
        pts = graph.nodes
        member = {"coordinates": "pixel"}
        lengths = None
    member["num_nodes"] = graph.num_nodes
    isolated = np.flatnonzero(graph.degrees() == 0)
    if len(isolated):
        member["isolated_nodes"] = {
            "index": isolated.tolist(),
            "coordinates": pts[isolated].tolist(),
        }
    coords = pts.tolist()
    probs = None if graph.edge_prob is None else graph.edge_prob.tolist()
    features = []
    for k, (u, v) in enumerate(graph.edges.tolist()):
        props: dict[str, Any] = {"u": u, "v": v}
        if probs is not None:
            props["prob"] = probs[k]
        if lengths is not None:
            props["length_m"] = lengths[k]
        features.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": {"type": "LineString", "coordinates": [coords[u], coords[v]]},
            }
        )
    doc = {"type": "FeatureCollection", "features": features, "l2r": member}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=indent), encoding="utf-8")


def parse_positions(raw: Any, name: str, k: int) -> NDArray[np.float64]:
    """``(N, 2)`` float64 ``x, y`` of a GeoJSON position list (extra ordinates dropped);
    FormatError naming file ``name`` and feature ``k`` for anything else."""
    if not isinstance(raw, list) or not raw:
        raise FormatError(f"{name}: feature {k} has a geometry without coordinates")
    out = []
    for pos in raw:
        if (
            not isinstance(pos, list)
            or len(pos) < 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos)
        ):
            raise FormatError(f"{name}: feature {k} has an invalid position {pos!r:.60}")
        out.append(pos[:2])
    return np.array(out, dtype=np.float64)


def geojson_lines(data: Any, name: str) -> list[_Line]:
    """The line geometries of a parsed GeoJSON document (``name`` is used in error messages).

    Raises :class:`FormatError` for a document that is not GeoJSON or holds non-line geometry.
    """
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FormatError(f"{name}: not GeoJSON (expected an object with a 'type' member)")
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise FormatError(f"{name}: FeatureCollection without a 'features' list")
    elif kind == "Feature":
        features = [data]
    elif kind in _GEOMETRY_TYPES:
        features = [{"type": "Feature", "geometry": data, "properties": {}}]
    else:
        raise FormatError(f"{name}: not GeoJSON (unknown type {kind!r})")
    lines: list[_Line] = []
    for k, feat in enumerate(features):
        if not isinstance(feat, dict):
            raise FormatError(f"{name}: feature {k} is not an object")
        geom = feat.get("geometry")
        props = feat.get("properties") or {}
        if geom is None:
            continue
        gtype = geom.get("type") if isinstance(geom, dict) else None
        if gtype == "LineString":
            parts = [geom.get("coordinates")]
        elif gtype == "MultiLineString":
            parts = geom.get("coordinates")
            if not isinstance(parts, list):
                raise FormatError(f"{name}: feature {k} has a MultiLineString without lines")
        else:
            raise FormatError(
                f"{name}: feature {k} is a {gtype} geometry; only LineString and "
                "MultiLineString road centerlines can be read as a graph"
            )
        props = props if isinstance(props, dict) else {}
        lines.extend((parse_positions(part, name, k), props, k) for part in parts)
    return lines


def geojson_crs(data: dict[str, Any], member: dict[str, Any], override: str) -> Any:
    """The CRS of the file's coordinates, or None for pixel coordinates."""
    if override == "pixel" or (override == "auto" and member.get("coordinates") == "pixel"):
        return None
    if override == "lonlat" or member.get("coordinates") == "lonlat":
        return WGS84
    legacy = data.get("crs")
    if isinstance(legacy, dict):
        crs_name = (legacy.get("properties") or {}).get("name")
        if isinstance(crs_name, str):
            return WGS84 if crs_name.strip().lower() in _LONLAT_NAMES else as_crs(crs_name)
    return WGS84


def _indexed(
    lines: list[_Line], member: dict[str, Any]
) -> tuple[NDArray[np.float64], list[tuple[int, int]]] | None:
    """Nodes and edges from ``u``/``v`` properties of a file this module wrote, else None."""
    n = member.get("num_nodes")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return None
    pts = np.full((n, 2), np.nan)
    edges = []
    iso = member.get("isolated_nodes") or {"index": [], "coordinates": []}
    try:
        for i, xy in zip(iso["index"], iso["coordinates"], strict=True):
            pts[int(i)] = xy[:2]
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    for line, props, _ in lines:
        u, v = props.get("u"), props.get("v")
        if not (isinstance(u, int) and isinstance(v, int) and 0 <= u < n and 0 <= v < n):
            return None
        if len(line) != 2:
            return None
        for i, xy in ((u, line[0]), (v, line[1])):
            if not np.isnan(pts[i, 0]) and not np.array_equal(pts[i], xy):
                return None
            pts[i] = xy
        edges.append((u, v))
    if np.isnan(pts).any():
        return None
    return pts, edges


def join_lines(lines: list[_Line]) -> tuple[NDArray[np.float64], list[tuple[int, int]], list[int]]:
    """Join lines at shared vertices: ``(points, edges, owner)``, one edge per line segment and
    ``owner[i]`` the line that edge ``i`` came from (readers of foreign line files use this)."""
    index: dict[tuple[float, float], int] = {}
    edges: list[tuple[int, int]] = []
    owner: list[int] = []
    for n, (line, _, _) in enumerate(lines):
        ids = [index.setdefault((x, y), len(index)) for x, y in line.tolist()]
        edges.extend(itertools.pairwise(ids))
        owner.extend([n] * (len(ids) - 1))
    return np.array(list(index), dtype=np.float64).reshape(-1, 2), edges, owner


def read_geojson(
    path: str | os.PathLike[str],
    *,
    like: Georeference | None = None,
    coordinates: Literal["auto", "lonlat", "pixel"] = "auto",
) -> RoadGraph:
    """Read road centerlines from a GeoJSON file (see the module docstring).

    Parameters
    ----------
    path : path
    like : Georeference, optional, keyword-only
        Place the nodes on this raster's pixel grid (pixel-coordinate files just attach it).
    coordinates : {"auto", "lonlat", "pixel"}, keyword-only
        Override what the coordinates are ("auto": the ``l2r`` member, a legacy ``crs`` member,
        else RFC 7946 lon/lat).

    Returns
    -------
    RoadGraph
        ``(N, 2)`` float64 ``(x, y)`` pixels, undirected edges, ``edge_prob`` when every feature
        has a ``prob`` property.
    """
    if coordinates not in ("auto", "lonlat", "pixel"):
        raise ValueError(f"coordinates must be 'auto', 'lonlat' or 'pixel', got {coordinates!r}")
    name = str(path)
    data = read_json(path, what="GeoJSON")
    lines = geojson_lines(data, name)
    georef: Georeference | None
    member = data.get("l2r") if isinstance(data.get("l2r"), dict) else {}
    try:
        src = geojson_crs(data, member, coordinates)
        indexed = _indexed(lines, member) if member else None
        if indexed is not None:
            pts, edges = indexed
            owner = list(range(len(edges)))
        else:
            pts, edges, owner = join_lines(lines)
        if src is not None and like is None and "georef" in member:
            grid = Georeference.from_dict(member["georef"])
            pixels, georef = grid.crs_to_pixel(transform_points(pts, src, grid.crs)), grid
        else:
            pixels, georef = place_points(pts, src, like=like)
    except GeoreferenceError as exc:
        raise FormatError(f"{name}: {exc}") from exc
    probs = [lines[o][1].get("prob") for o in owner]
    has_prob = bool(lines) and all(
        isinstance(lp[1].get("prob"), int | float) and not isinstance(lp[1].get("prob"), bool)
        for lp in lines
    )
    return RoadGraph.from_edges(
        pixels,
        np.array(edges, dtype=np.int64).reshape(-1, 2),
        np.array(probs, dtype=np.float32) if has_prob else None,
        georef,
    )
