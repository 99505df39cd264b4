"""Comparing a predicted road graph with a reference map: :func:`diff_graphs`.

1. Both graphs go into one metric frame and are clipped to the area both describe
   (:mod:`.frame`); edges longer than ``piece_length`` are cut into equal pieces.
2. Both are sampled every ``step`` metres and the samples matched with TOPO's line matching
   (distance + angle, :mod:`linegraph2road.metrics.matching`). Pieces within one tolerance
   outside the area take part in the matching, so roads along the border still match.
3. A piece of the prediction is ``matched`` when at least ``min_coverage`` of its length matches
   the reference, else ``missing_from_ref``; a piece of the reference is ``confirmed`` or
   ``not_seen`` (absent from the imagery: removed, never built, or hidden by trees or clouds)
   the same way.
4. Missing pieces are joined into roads with a connection status and a confidence
   (:mod:`.roads`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GeoreferenceError, GraphError
from linegraph2road.georef import WGS84, utm_crs_for
from linegraph2road.graph import RoadGraph
from linegraph2road.mapdiff.frame import (
    box_polygon,
    lonlat_nodes,
    metric_nodes,
    project_polygon,
    to_segments,
)
from linegraph2road.mapdiff.options import DiffOptions
from linegraph2road.mapdiff.result import MapDiff
from linegraph2road.mapdiff.roads import join_missing
from linegraph2road.metrics.matching import covered_fraction, match_samples, sample_segments

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["diff_graphs"]


def _unpack(ref: RoadGraph | TaggedGraph) -> tuple[RoadGraph, Any, Any]:
    if isinstance(ref, TaggedGraph):
        hw = ref.highway if any(ref.highway.tolist()) else None
        way = ref.way_id if bool(np.any(ref.way_id >= 0)) else None
        return ref.graph, hw, way
    if isinstance(ref, RoadGraph):
        return ref, None, None
    raise GraphError(f"ref must be a RoadGraph or TaggedGraph, got {type(ref).__name__}")


def _node_box(xy: NDArray[np.float64], edges: NDArray[np.int64], pad: float) -> shapely.Polygon:
    """The bounding box of the nodes that edges use, widened by ``pad`` metres."""
    used = xy[np.unique(edges.reshape(-1))]
    lo, hi = used.min(axis=0) - pad, used.max(axis=0) + pad
    return shapely.box(lo[0], lo[1], hi[0], hi[1])


def _densified(poly: shapely.Polygon) -> shapely.Polygon:
    """``poly`` with vertices at least every 1/64 of its size (for reprojection)."""
    b = poly.bounds
    size = max(b[2] - b[0], b[3] - b[1])
    return shapely.segmentize(poly, size / 64) if size > 0 else poly


def _bounds_text(poly: shapely.Polygon, crs: CRS) -> str:
    b = project_polygon(poly, crs, WGS84).bounds
    return f"lon {b[0]:.5f}..{b[2]:.5f}, lat {b[1]:.5f}..{b[3]:.5f}"


def _compared_area(
    pred_fp: shapely.Polygon, ref: RoadGraph, ref_xy: NDArray[np.float64], crs: CRS, tol: float
) -> shapely.Polygon:
    """The prediction's footprint intersected with the reference's (its ``meta["extent"]``, as
    an OSM header box, else its node box widened by ``tol``), in ``crs``."""
    extent = ref.meta.get("extent")
    if extent is not None:
        ref_fp = project_polygon(box_polygon(extent), WGS84, crs)
    elif ref.num_edges:
        ref_fp = _node_box(ref_xy, ref.edges, tol)
    else:
        raise GraphError(
            "the reference has no roads at all (and no extent saying which area it maps); "
            "wrong file, or an OSM extract whose roads the highway filter left out?"
        )
    area = shapely.intersection(pred_fp, ref_fp)
    if not isinstance(area, shapely.Polygon):  # touching footprints, or bits of a ring
        polys = [g for g in shapely.get_parts(area) if isinstance(g, shapely.Polygon)]
        area = max(polys, key=lambda g: g.area) if polys else shapely.Polygon()
    if area.is_empty or area.area < tol * tol:
        raise GeoreferenceError(
            f"the prediction ({_bounds_text(pred_fp, crs)}) and the reference "
            f"({_bounds_text(ref_fp, crs)}) do not overlap; are they of the same place?"
        )
    return area


def diff_graphs(
    pred: RoadGraph,
    ref: RoadGraph | TaggedGraph,
    *,
    footprint: shapely.Polygon | None = None,
    options: DiffOptions | None = None,
) -> MapDiff:
    """Compare a predicted road graph with a reference map (see the module docstring).

    Parameters
    ----------
    pred : RoadGraph
        The prediction (e.g. ``l2r extract`` output), georeferenced; ``edge_prob`` becomes the
        confidence of missing roads. Not modified.
    ref : RoadGraph or TaggedGraph
        The reference, georeferenced: an OSM extract read by
        :func:`~linegraph2road.data_prep.osm.read_osm` (its ``highway`` and ``way_id`` tags are
        reported, its header box is its footprint) or any road graph. Not modified.
    footprint : shapely Polygon, optional, keyword-only
        The prediction's footprint in WGS84 ``(lon, lat)``, e.g. the raster's
        (:func:`~.frame.raster_footprint`); default: the bounding box of its nodes widened by
        the tolerance.
    options : DiffOptions, optional, keyword-only
        Tolerances and rules (default :class:`DiffOptions`).

    Returns
    -------
    MapDiff

    Raises
    ------
    GeoreferenceError
        A graph without CRS, a CRS that cannot be transformed, or footprints that do not overlap.
    GraphError
        No road of the prediction or the reference in the compared area (unless
        ``options.allow_empty``), or arguments of the wrong type.
    """
    opts = DiffOptions() if options is None else options
    if not isinstance(opts, DiffOptions):
        raise GraphError(f"options must be DiffOptions, got {type(opts).__name__}")
    if not isinstance(pred, RoadGraph):
        raise GraphError(f"pred must be a RoadGraph, got {type(pred).__name__}")
    ref_graph, highway, way_id = _unpack(ref)
    pred_ll = lonlat_nodes(pred, "the prediction")
    ref_ll = lonlat_nodes(ref_graph, "the reference")
    if footprint is None and pred.num_edges == 0:
        raise GraphError(
            "the prediction has no roads, so it has no footprint to compare; give the raster it "
            "was extracted from (--raster / footprint=)"
        )
    centre = pred_ll[np.unique(pred.edges.reshape(-1))] if footprint is None else None
    crs = utm_crs_for(
        centre if centre is not None else np.asarray(shapely.centroid(footprint).coords)
    )
    pred_xy = metric_nodes(pred, pred_ll, crs)
    ref_xy = metric_nodes(ref_graph, ref_ll, crs)
    tol = float(opts.tolerance)
    pred_fp = (
        _node_box(pred_xy, pred.edges, tol)
        if footprint is None
        else project_polygon(_densified(footprint), WGS84, crs)
    )
    area = _compared_area(pred_fp, ref_graph, ref_xy, crs, tol)
    split = {"margin": tol, "piece_length": float(opts.piece_length)}
    pred_segs = to_segments(pred_xy, pred.edges, area, **split)
    ref_segs = to_segments(ref_xy, ref_graph.edges, area, **split)
    if not opts.allow_empty:
        where = _bounds_text(area, crs)
        if not ref_segs.inside.any():
            only = ref_graph.meta.get("highways")
            kinds = f" among highway={','.join(only)}" if only else ""
            raise GraphError(
                f"the reference has no roads{kinds} in the compared area ({where}); "
                "wrong file or area? (allow_empty / --allow-empty compares anyway)"
            )
        if not pred_segs.inside.any():
            raise GraphError(
                f"the prediction has no roads in the compared area ({where}); "
                "wrong file or area? (allow_empty / --allow-empty compares anyway)"
            )
    ps = sample_segments(pred_segs.start, pred_segs.end, step=opts.step)
    rs = sample_segments(ref_segs.start, ref_segs.end, step=opts.step)
    pm, rm = match_samples(ps, rs, distance=tol, max_angle=opts.max_angle, rule=opts.rule)
    pred_cov = covered_fraction(ps, pm, len(pred_segs))
    ref_cov = covered_fraction(rs, rm, len(ref_segs))
    seen = pred_cov >= opts.min_coverage
    missing = join_missing(
        pred_segs,
        pred_segs.inside & ~seen,
        seen,  # band pieces that match connect too
        pred.edge_prob,
        rs.xy,
        area,
        tolerance=tol,
    )
    return MapDiff(
        crs,
        area,
        opts,
        pred_segs,
        pred_cov,
        pred.edge_prob,
        ref_segs,
        ref_cov,
        highway,
        way_id,
        missing,
    )
