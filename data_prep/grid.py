"""Placing source road graphs on a raster's pixel grid: projection, tiling and border clipping.

Source graphs
-------------
A road graph read from a source (:mod:`linegraph2road.data_prep.sources`) is a
:class:`~linegraph2road.data_prep.tagged.TaggedGraph` in one of two frames:

* **georeferenced**: ``graph.georef`` maps node coordinates to a CRS. Sources in lon/lat (OSM,
  SpaceNet GeoJSON) store nodes as WGS84 ``(x, y) = (lon, lat)`` degrees with
  ``georef = LONLAT`` (EPSG:4326 and the *identity* affine), so "pixel" and CRS coordinates
  coincide; a graph already on some raster grid keeps that grid's georeference. Either way
  ``georef.pixel_to_crs(nodes)`` gives CRS coordinates and :func:`clip_to_grid` can reproject.
* **pixel**: ``graph.georef is None`` (City-scale / SpaceNet pickles): nodes are already pixels of
  the *root* grid (the whole raster, before :meth:`TileGrid.tiles`); a tile subtracts its offset.

Clipping
--------
Every edge is clipped to the closed pixel box ``[0, width] x [0, height]`` of the tile
(Liang-Barsky, vectorised, 1e-9 px of slack so a road along the border stays): an edge leaving
the tile ends at an interpolated *border node*; edges entirely outside, and clipped slivers
shorter than 1e-3 px, are dropped; every node of the result lies inside the box. Nodes closer
than ``merge_tol`` (1e-6 px) are merged (the first in order is kept), zero-length edges dropped,
and an edge that appears twice is kept once with the tags of its first occurrence. Edges are
straight pixel segments between their projected end nodes (no geodesic densification).

Overlap
-------
:func:`check_overlap` tells apart *no overlap at all* (the data's extent -- the OSM header box or
the box of its nodes -- and the grid's extent are disjoint: an error, usually the wrong file or
CRS) from *no roads in bounds* (the extents overlap but no road enters the tile: empty labels,
reported as a warning by the pipeline).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GeoreferenceError
from linegraph2road.georef import Georeference, as_crs, transform_points, utm_crs_for
from linegraph2road.graph import RoadGraph
from linegraph2road.io.raster import read_georef

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["NO_CRS_MESSAGE", "TileGrid", "check_overlap", "clip_to_grid", "data_extent"]

Bounds = tuple[float, float, float, float]
NO_CRS_MESSAGE = "raster has no CRS; lon/lat OSM data cannot be placed on it"
_EPS = 1e-9  # px of slack at the tile border
_MIN_PIECE = 1e-3  # px; shorter clipped pieces are dropped
_MAX_SIDE = 10_000_000  # pixels; larger grids are almost surely degrees given as metres


@dataclass(frozen=True)
class TileGrid:
    """A pixel grid (a raster or one tile of it).

    Parameters
    ----------
    width, height : int
        Size in pixels (columns, rows).
    georef : Georeference or None
        Pixel ``(x, y)`` -> CRS; None for a plain image without georeference.
    col_off, row_off : int, default 0
        Offset of this tile's top-left pixel in the root grid (0 for the root itself).
    name : str, default ""
        Tile id (``"r000_c001"`` for tiles made by :meth:`tiles`).
    """

    width: int
    height: int
    georef: Georeference | None = None
    col_off: int = 0
    row_off: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise GeoreferenceError(f"grid size must be positive, got {self.width}x{self.height}")
        if self.width > _MAX_SIDE or self.height > _MAX_SIDE:
            raise GeoreferenceError(
                f"grid of {self.width}x{self.height} pixels is too large; are the bounds in the "
                "CRS's units and the GSD in metres?"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``: the shape of masks on this grid."""
        return (int(self.height), int(self.width))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_raster(cls, path: str | os.PathLike[str], *, require_crs: bool = True) -> TileGrid:
        """The grid of a raster file (size, CRS and transform; pixels are not read).

        Parameters
        ----------
        require_crs : bool, default True
            Refuse a raster without CRS (lon/lat data cannot be placed on it); with False such a
            raster gives ``georef=None`` (for pixel-coordinate graphs).

        Raises
        ------
        GeoreferenceError
            ``require_crs`` and the raster has no CRS.
        InputFileError, FormatError
            Missing or unreadable raster.
        """
        georef = read_georef(path)  # validates the file and raises domain errors
        if georef is None and require_crs:
            raise GeoreferenceError(
                f"{os.fspath(path)}: {NO_CRS_MESSAGE} (give a GeoTIFF with a CRS, or "
                "--bounds/--crs/--gsd)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                return cls(int(ds.width), int(ds.height), georef)

    @classmethod
    def from_bounds(cls, bounds: Bounds, *, crs: Any, gsd: float = 1.0) -> TileGrid:
        """A north-up grid covering ``bounds`` at ``gsd`` metres per pixel.

        Parameters
        ----------
        bounds : (minx, miny, maxx, maxy)
            In ``crs`` units; ``(min_lon, min_lat, max_lon, max_lat)`` for a geographic CRS.
        crs : anything pyproj accepts (``"EPSG:4326"``, ``32635``...)
        gsd : float, default 1.0
            Metres per pixel. For a geographic ``crs`` the grid is laid out in the UTM zone of
            the bounds' centre (the bounds are reprojected, densified); for a projected CRS in
            that CRS (the GSD converted to its linear unit).

        The origin snaps to a multiple of the GSD at or beyond the top-left corner, so the grid
        covers the bounds completely (the last row/column may extend past them).
        """
        src = as_crs(crs)
        gsd = float(gsd)
        if not (math.isfinite(gsd) and gsd > 0):
            raise GeoreferenceError(f"gsd must be a positive number of metres, got {gsd}")
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        if not (minx < maxx and miny < maxy):
            raise GeoreferenceError(
                f"bounds must be (minx, miny, maxx, maxy) with min < max: {bounds}"
            )
        if src.is_geographic:
            if not (minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90):
                raise GeoreferenceError(f"bounds {bounds} are not lon/lat degrees")
            dst = utm_crs_for([[(minx + maxx) / 2, (miny + maxy) / 2]])
            tr = Transformer.from_crs(src, dst, always_xy=True)
            minx, miny, maxx, maxy = tr.transform_bounds(minx, miny, maxx, maxy, densify_pts=21)
            step = gsd
        else:
            dst = src
            factor = src.axis_info[0].unit_conversion_factor if src.axis_info else 1.0
            step = gsd / float(factor)
        x0 = math.floor(minx / step) * step
        y0 = math.ceil(maxy / step) * step
        width = max(1, math.ceil((maxx - x0) / step - 1e-9))
        height = max(1, math.ceil((y0 - miny) / step - 1e-9))
        return cls(width, height, Georeference(dst, Affine(step, 0.0, x0, 0.0, -step, y0)))

    def tiles(self, size: int = 2048) -> list[TileGrid]:
        """Split into ``size`` x ``size`` tiles, row-major; the last row/column may be smaller.

        Each tile has its own georeference (the parent's transform shifted to the tile's
        corner), its offsets in the root grid and the name ``"r{row:03d}_c{col:03d}"``.
        """
        if int(size) <= 0:
            raise GeoreferenceError(f"tile size must be positive, got {size}")
        size = int(size)
        out = []
        for ri, r in enumerate(range(0, self.height, size)):
            for ci, c in enumerate(range(0, self.width, size)):
                g = None
                if self.georef is not None:
                    g = Georeference(
                        self.georef.crs, self.georef.transform @ Affine.translation(c, r)
                    )
                out.append(
                    TileGrid(
                        min(size, self.width - c),
                        min(size, self.height - r),
                        g,
                        self.col_off + c,
                        self.row_off + r,
                        f"r{ri:03d}_c{ci:03d}",
                    )
                )
        return out

    # -- extents -------------------------------------------------------------------------------
    def bounds_in(self, crs: Any) -> Bounds:
        """The grid's extent ``(minx, miny, maxx, maxy)`` reprojected (densified) to ``crs``."""
        if self.georef is None:
            raise GeoreferenceError(f"{NO_CRS_MESSAGE} (grid without georeference)")
        c = self.georef.pixel_to_crs(
            [[0, 0], [self.width, 0], [0, self.height], [self.width, self.height]]
        )
        b = (c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max())
        dst = as_crs(crs)
        if dst == self.georef.crs:
            return tuple(float(v) for v in b)  # type: ignore[return-value]
        tr = Transformer.from_crs(self.georef.crs, dst, always_xy=True)
        out = tr.transform_bounds(*b, densify_pts=21)
        if not all(math.isfinite(v) for v in out):
            raise GeoreferenceError(f"the grid's extent cannot be expressed in {dst.name}")
        return tuple(float(v) for v in out)  # type: ignore[return-value]


def data_extent(tagged: TaggedGraph) -> Bounds | None:
    """Extent of a georeferenced source graph in its CRS: ``meta["extent"]`` or the node box."""
    g = tagged.graph
    ext = g.meta.get("extent")
    if ext is not None:
        return tuple(float(v) for v in ext)  # type: ignore[return-value]
    if g.georef is None or g.num_nodes == 0:
        return None
    c = g.georef.pixel_to_crs(g.nodes)
    return (float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max()))


def check_overlap(tagged: TaggedGraph, grid: TileGrid, *, what: str = "the raster") -> None:
    """Raise :class:`GeoreferenceError` when the data's extent and the grid's are disjoint.

    Pixel graphs (no georeference) and graphs without extent are not checked. See the module
    docstring for "no overlap" vs "no roads in bounds".
    """
    g, ext = tagged.graph, data_extent(tagged)
    if g.georef is None or ext is None:
        return
    if grid.georef is None:
        raise GeoreferenceError(NO_CRS_MESSAGE)
    box = grid.bounds_in(g.georef.crs)
    if ext[2] < box[0] or box[2] < ext[0] or ext[3] < box[1] or box[3] < ext[1]:
        raise GeoreferenceError(
            f"the road data and {what} do not overlap: data extent {_fmt(ext)} vs {what} "
            f"extent {_fmt(box)} ({g.georef.crs.name}); use data that covers the area or check "
            "the CRS"
        )


def _fmt(b: Bounds) -> str:
    return "(" + ", ".join(f"{v:.10g}" for v in b) + ")"


def _project(tagged: TaggedGraph, grid: TileGrid) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Node positions in the tile's pixel frame and a prefilter mask of edges near the tile."""
    g = tagged.graph
    keep = np.ones(g.num_edges, dtype=bool)
    if g.georef is None:
        return g.nodes - np.array([grid.col_off, grid.row_off], dtype=np.float64), keep
    if grid.georef is None:
        raise GeoreferenceError(NO_CRS_MESSAGE)
    try:  # edges whose box meets the tile's box (5 % margin) in the source frame
        minx, miny, maxx, maxy = grid.bounds_in(g.georef.crs)
        mx, my = 0.05 * (maxx - minx), 0.05 * (maxy - miny)
        xs, ys = (minx - mx, maxx + mx), (miny - my, maxy + my)
        corners = g.georef.crs_to_pixel([[x, y] for x in xs for y in ys])
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        a, b = g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]
        keep = np.all((np.maximum(a, b) >= lo) & (np.minimum(a, b) <= hi), axis=1)
    except GeoreferenceError:
        pass  # grid outside the source CRS's area: project everything and let that decide
    used = np.unique(g.edges[keep].reshape(-1))
    pts = np.full_like(g.nodes, np.nan)
    if len(used):
        crs_xy = transform_points(
            g.georef.pixel_to_crs(g.nodes[used]), g.georef.crs, grid.georef.crs
        )
        pts[used] = grid.georef.crs_to_pixel(crs_xy)
    return pts, keep


def _liang_barsky(
    p0: NDArray[np.float64], p1: NDArray[np.float64], w: float, h: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Parameters ``t0 <= t1`` of each segment's part inside ``[0, w] x [0, h]`` and a hit mask."""
    d = p1 - p0
    t0 = np.zeros(len(p0))
    t1 = np.ones(len(p0))
    ok = np.ones(len(p0), dtype=bool)
    ps = (-d[:, 0], d[:, 0], -d[:, 1], d[:, 1])
    qs = (p0[:, 0], w - p0[:, 0], p0[:, 1], h - p0[:, 1])
    for p, q in zip(ps, qs, strict=True):
        zero = p == 0
        ok &= ~(zero & (q < 0))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = np.where(zero, 0.0, q / np.where(zero, 1.0, p))
        t0 = np.where(p < 0, np.maximum(t0, r), t0)
        t1 = np.where(p > 0, np.minimum(t1, r), t1)
    return t0, t1, ok & (t0 < t1)


def clip_to_grid(tagged: TaggedGraph, grid: TileGrid, *, merge_tol: float = 1e-6) -> TaggedGraph:
    """Project a source graph onto ``grid`` and clip it at the tile border.

    Parameters
    ----------
    tagged : TaggedGraph
        Georeferenced (any CRS, e.g. lon/lat with :data:`~.osm.LONLAT`) or pixel graph of the
        root grid (see module docstring). Not modified.
    grid : TileGrid
        Target tile.
    merge_tol : float, default 1e-6
        Nodes closer than this (pixels) become one node.

    Returns
    -------
    TaggedGraph
        Nodes ``(N, 2)`` float64 ``(x, y)`` pixels of the tile, all inside
        ``[0, width] x [0, height]``; ``georef = grid.georef``; tags and ``tagged`` carried over;
        ``meta = {"tile": grid.name, "source": ...}``. Empty when no road enters the tile.

    Raises
    ------
    GeoreferenceError
        A georeferenced graph and a grid without CRS, or points that cannot be reprojected.
    """
    g = tagged.graph
    meta = {"tile": grid.name, "source": g.meta.get("source")}
    pts, keep = _project(tagged, grid)
    idx = np.flatnonzero(keep)
    e = g.edges[idx]
    # clip to the box grown by 1e-9 px (a road along the border stays), then clamp into it
    eps = np.array([_EPS, _EPS])
    t0, t1, hit = _liang_barsky(
        pts[e[:, 0]] + eps, pts[e[:, 1]] + eps, grid.width + 2 * _EPS, grid.height + 2 * _EPS
    )
    a, b = pts[e[:, 0]], pts[e[:, 1]]
    d = b - a
    # drop slivers: clipped pieces shorter than _MIN_PIECE (a road grazing a corner)
    hit &= ~(((t0 > 0) | (t1 < 1)) & ((t1 - t0) * np.hypot(d[:, 0], d[:, 1]) < _MIN_PIECE))
    idx, e, t0, t1, a, d = idx[hit], e[hit], t0[hit], t1[hit], a[hit], d[hit]
    box = np.array([grid.width, grid.height], dtype=np.float64)
    start_new, end_new = t0 > 0, t1 < 1
    border = np.concatenate(
        [
            a[start_new] + t0[start_new, None] * d[start_new],
            a[end_new] + t1[end_new, None] * d[end_new],
        ]
    )
    border = np.clip(border, 0.0, box)
    n = g.num_nodes
    u, v = e[:, 0].copy(), e[:, 1].copy()
    u[start_new] = n + np.arange(int(start_new.sum()))
    v[end_new] = n + int(start_new.sum()) + np.arange(int(end_new.sum()))
    allpts = np.concatenate([pts, border]) if len(border) else pts
    used = np.unique(np.concatenate([u, v]))
    # merge coincident nodes: representative = smallest index (original nodes first)
    rep = np.arange(len(allpts))
    if len(used) > 1:
        pairs = cKDTree(allpts[used]).query_pairs(merge_tol, output_type="ndarray")
        if len(pairs):
            m = len(used)
            adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
            _, label = connected_components(adj, directed=False)
            first = np.full(label.max() + 1, np.iinfo(np.int64).max)
            np.minimum.at(first, label, used)
            rep[used] = first[label]
    u, v = rep[u], rep[v]
    lo_, hi_ = np.minimum(u, v), np.maximum(u, v)
    ok = lo_ != hi_
    pair = lo_[ok].astype(np.int64) * (len(allpts) + 1) + hi_[ok]
    _, firsts = np.unique(pair, return_index=True)
    sel = np.flatnonzero(ok)[np.sort(firsts)]
    lo_, hi_, src_edge = lo_[sel], hi_[sel], idx[sel]
    kept_nodes = np.unique(np.concatenate([lo_, hi_]))
    new_id = np.full(len(allpts), -1, dtype=np.int64)
    new_id[kept_nodes] = np.arange(len(kept_nodes))
    graph = RoadGraph(  # clamp: an end node may sit outside by a rounding error (1e-47)
        np.clip(allpts[kept_nodes].reshape(-1, 2), 0.0, box),
        np.column_stack([new_id[lo_], new_id[hi_]]).reshape(-1, 2),
        georef=grid.georef,
        meta=meta,
    )
    return TaggedGraph(
        graph,
        tagged.bridge[src_edge],
        tagged.tunnel[src_edge],
        tagged.layer[src_edge],
        tagged.tagged,
        tagged.highway[src_edge],
        tagged.way_id[src_edge],
    )
