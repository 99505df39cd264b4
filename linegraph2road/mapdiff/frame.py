"""Both graphs in one metric frame, their footprints, the compared area, and clipping to it.

Every coordinate of a diff is ``(x, y)`` metres (easting, northing) in one UTM zone: the zone of
the compared area's centre (:func:`~linegraph2road.georef.utm_crs_for`). Graphs get there through
their georeference (pixel -> CRS -> WGS84 -> UTM); a graph without one cannot be placed.

A graph's *footprint* is the area it describes: the raster's for a prediction made on a raster
(when the raster is given), the extract's bounding box for an OSM file (its header box), and
otherwise the bounding box of its nodes widened by the tolerance. The *compared area* is the
intersection of the two footprints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj.exceptions import CRSError, ProjError

from linegraph2road.errors import GeoreferenceError
from linegraph2road.georef import WGS84, transform_points

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from pyproj import CRS

    from linegraph2road.georef import Georeference
    from linegraph2road.graph import RoadGraph

__all__ = [
    "Segments",
    "box_polygon",
    "lonlat_nodes",
    "metric_nodes",
    "project_polygon",
    "raster_footprint",
    "to_segments",
]

_DENSIFY = 64  # a footprint edge is cut into this many parts before reprojection
_NODE_GRID = 1e-3  # metres: piece ends closer than this are one node


def lonlat_nodes(graph: RoadGraph, name: str) -> NDArray[np.float64]:
    """(N, 2) float64 WGS84 ``(lon, lat)`` of a graph's nodes.

    Raises
    ------
    GeoreferenceError
        The graph has no coordinate reference system (pixel coordinates), or its CRS cannot be
        transformed to WGS84.
    """
    if graph.georef is None:
        raise GeoreferenceError(
            f"{name} is in pixel coordinates without a coordinate reference system, so it cannot "
            "be placed on the map; pass --raster with the image it was extracted from, or "
            "convert it with `l2r convert --like RASTER`"
        )
    try:
        return graph.georef.pixel_to_lonlat(graph.nodes)
    except (CRSError, ProjError) as exc:
        raise GeoreferenceError(
            f"{name}: its CRS {graph.georef.crs.name!r} cannot be transformed to WGS84 ({exc})"
        ) from exc


def metric_nodes(graph: RoadGraph, lonlat: NDArray[np.float64], crs: CRS) -> NDArray[np.float64]:
    """(N, 2) float64 node positions in ``crs`` (metres): straight from the graph's grid when it
    already is in ``crs``, else from its WGS84 ``lonlat`` (as :func:`lonlat_nodes` gave)."""
    if graph.georef is not None and graph.georef.crs == crs:
        return graph.georef.pixel_to_crs(graph.nodes)
    return transform_points(lonlat, WGS84, crs)


def box_polygon(bounds: ArrayLike) -> shapely.Polygon:
    """A rectangle from ``(xmin, ymin, xmax, ymax)``, its edges cut into parts for reprojection."""
    b = np.asarray(bounds, dtype=np.float64).reshape(4)
    poly = shapely.box(*b.tolist())
    size = max(float(b[2] - b[0]), float(b[3] - b[1]), 0.0)
    return shapely.segmentize(poly, size / _DENSIFY) if size > 0 else poly


def project_polygon(poly: shapely.Polygon, src: Any, dst: Any) -> shapely.Polygon:
    """A polygon's vertices reprojected from ``src`` to ``dst`` (densify straight edges first)."""
    if shapely.is_empty(poly):
        return poly
    return shapely.transform(poly, lambda xy: transform_points(xy, src, dst))


def raster_footprint(georef: Georeference, shape: tuple[int, int]) -> shapely.Polygon:
    """The WGS84 ``(lon, lat)`` outline of a raster grid of ``(height, width)`` pixels."""
    h, w = int(shape[0]), int(shape[1])
    outline = box_polygon((0.0, 0.0, float(w), float(h)))
    corners = shapely.transform(outline, georef.pixel_to_crs)
    return project_polygon(corners, georef.crs, WGS84)


@dataclass(frozen=True)
class Segments:
    """Straight pieces of a road graph in the diff's metric frame.

    Attributes
    ----------
    start, end : (P, 2) float64
        Piece end points ``(x, y)``, metres.
    node : (P, 2) int64
        Node ids of the two ends: pieces that meet share an id (ids count from 0, ends closer
        than 1 mm are one node).
    edge : (P,) int64
        The input graph's edge each piece was cut from.
    inside : (P,) bool
        True for pieces in the compared area; False for pieces in the band of one tolerance
        around it (kept only as matching partners, so roads on the border still match).
    """

    start: NDArray[np.float64]
    end: NDArray[np.float64]
    node: NDArray[np.int64]
    edge: NDArray[np.int64]
    inside: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.start)

    @property
    def num_nodes(self) -> int:
        return int(self.node.max()) + 1 if len(self.node) else 0

    def lengths(self) -> NDArray[np.float64]:
        """(P,) float64 piece lengths in metres."""
        d = self.end - self.start
        return np.hypot(d[:, 0], d[:, 1])

    def node_xy(self) -> NDArray[np.float64]:
        """(num_nodes, 2) float64 position of every node."""
        xy = np.zeros((self.num_nodes, 2))
        xy[self.node[:, 0]] = self.start
        xy[self.node[:, 1]] = self.end
        return xy

    def lines(self) -> NDArray[Any]:
        """(P,) shapely LineStrings of the pieces."""
        return shapely.linestrings(np.stack([self.start, self.end], axis=1))


def _parts(geoms: NDArray[Any], edge: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Straight 2-point pieces ``(a, b, edge)`` of the line parts of clipped geometries."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    is_line = shapely.get_type_id(parts) == int(shapely.GeometryType.LINESTRING)
    parts, owner = parts[is_line], owner[is_line]
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[1:] == idx[:-1]  # consecutive vertices of one part
    a, b = coords[:-1][same], coords[1:][same]
    return np.stack([a, b], axis=1), edge[owner[idx[:-1][same]]]


def _split(
    segs: NDArray[np.float64], piece_length: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Every (S, 2, 2) segment cut into ``ceil(length / piece_length)`` equal parts.

    Returns the parts' start and end points and the segment each belongs to; the cut points of a
    segment are computed once, so consecutive parts share them exactly.
    """
    d = segs[:, 1] - segs[:, 0]
    k = np.maximum(1, np.ceil(np.hypot(d[:, 0], d[:, 1]) / piece_length)).astype(np.int64)
    which = np.repeat(np.arange(len(segs)), k)
    j = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    cuts = segs[which, 0] + d[which] * (j / k[which])[:, None]
    last = j + 1 == k[which]
    ends = np.empty_like(cuts)
    ends[~last] = cuts[1:][~last[:-1]] if len(cuts) else cuts[:0]
    ends[last] = segs[which[last], 1]
    return cuts, ends, which


def to_segments(
    xy: ArrayLike,
    edges: ArrayLike,
    area: shapely.Polygon,
    *,
    margin: float,
    piece_length: float,
) -> Segments:
    """A graph's edges clipped to ``area`` (plus a band of ``margin`` metres around it), split
    into straight pieces no longer than ``piece_length``.

    Parameters
    ----------
    xy : (N, 2) float64
        Node positions, metres.
    edges : (E, 2) int64
    area : shapely Polygon
        The compared area, metres.
    margin : float
        Width of the band around ``area`` whose pieces are kept as matching partners
        (``inside`` False).
    piece_length : float
        Longest piece, metres.
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    outer = area.buffer(margin)
    shapely.prepare(area)
    shapely.prepare(outer)
    lines = shapely.linestrings(np.stack([pts[e[:, 0]], pts[e[:, 1]]], axis=1).reshape(-1, 2, 2))
    ids = np.arange(len(e), dtype=np.int64)
    near = shapely.intersects(outer, lines) if len(e) else np.zeros(0, bool)
    lines, ids = lines[near], ids[near]
    within = shapely.within(lines, area) if len(lines) else np.zeros(0, bool)
    cross = ~within & shapely.intersects(area, lines) if len(lines) else np.zeros(0, bool)
    band = outer.difference(area)
    whole = shapely.get_coordinates(lines[within]).reshape(-1, 2, 2)
    inner_segs, inner_edge = _parts(shapely.intersection(lines[cross], area), ids[cross])
    band_segs, band_edge = _parts(shapely.intersection(lines[~within], band), ids[~within])
    segs = np.concatenate([whole, inner_segs.reshape(-1, 2, 2), band_segs.reshape(-1, 2, 2)])
    edge = np.concatenate([ids[within], inner_edge, band_edge]).astype(np.int64)
    inside = np.concatenate(
        [np.ones(len(whole) + len(inner_segs), bool), np.zeros(len(band_segs), bool)]
    )
    d = segs[:, 1] - segs[:, 0]
    keep = np.hypot(d[:, 0], d[:, 1]) > 0
    segs, edge, inside = segs[keep], edge[keep], inside[keep]
    a, b, which = _split(segs, piece_length)
    keys = np.round(np.concatenate([a, b]) / _NODE_GRID).astype(np.int64)
    _, node = np.unique(keys, axis=0, return_inverse=True)
    node = node.reshape(-1)
    return Segments(
        a,
        b,
        np.stack([node[: len(a)], node[len(a) :]], axis=1).astype(np.int64),
        edge[which],
        inside[which],
    )
