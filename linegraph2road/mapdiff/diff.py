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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from affine import Affine

from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GeoreferenceError, GraphError
from linegraph2road.georef import WGS84, Georeference, utm_crs_for
from linegraph2road.graph import RoadGraph
from linegraph2road.mapdiff.frame import (
    Segments,
    box_polygon,
    lonlat_nodes,
    metric_nodes,
    project_polygon,
    to_segments,
)
from linegraph2road.mapdiff.options import DiffOptions
from linegraph2road.mapdiff.roads import CONNECTIONS, MissingRoads, join_missing
from linegraph2road.metrics.matching import covered_fraction, match_samples, sample_segments

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["CLASSES", "MapDiff", "diff_graphs"]

#: The four classes: two of the prediction's pieces, two of the reference's.
CLASSES: tuple[str, ...] = ("matched", "missing_from_ref", "confirmed", "not_seen")


@dataclass(frozen=True, eq=False)
class MapDiff:
    """The outcome of :func:`diff_graphs`. Every coordinate is metres in ``crs``.

    Attributes
    ----------
    crs : pyproj.CRS
        The metric (UTM) CRS of every coordinate.
    area : shapely Polygon
        The compared area.
    options : DiffOptions
    pred, ref : Segments
        The pieces of both graphs (inside the area and in the band around it).
    pred_coverage, ref_coverage : (P,), (Q,) float64
        Share of each piece's length that matches the other graph.
    pred_prob : (E,) float32 or None
        The prediction's edge probabilities (indexed by ``pred.edge``).
    ref_highway : (E_ref,) object or None
        The reference's ``highway`` tag per edge (None when the source has none).
    ref_way_id : (E_ref,) int64 or None
        The reference's OSM way id per edge, -1 where unknown (None when the source has none).
    missing : MissingRoads
        The ``missing_from_ref`` pieces joined into roads.
    """

    crs: CRS
    area: shapely.Polygon
    options: DiffOptions
    pred: Segments
    pred_coverage: NDArray[np.float64]
    pred_prob: NDArray[np.float32] | None
    ref: Segments
    ref_coverage: NDArray[np.float64]
    ref_highway: NDArray[Any] | None
    ref_way_id: NDArray[np.int64] | None
    missing: MissingRoads

    @property
    def crs_code(self) -> str:
        """:attr:`crs` as ``"EPSG:n"`` (WKT when it has no EPSG code)."""
        epsg = self.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg is not None else self.crs.to_wkt()

    # -- classes --------------------------------------------------------------------------------
    def mask(self, kind: str) -> NDArray[np.bool_]:
        """(P,) or (Q,) bool: the pieces of ``pred`` (matched, missing_from_ref) or ``ref``
        (confirmed, not_seen) in that class."""
        seen = self.options.min_coverage
        if kind == "matched":
            return self.pred.inside & (self.pred_coverage >= seen)
        if kind == "missing_from_ref":
            return self.pred.inside & (self.pred_coverage < seen)
        if kind == "confirmed":
            return self.ref.inside & (self.ref_coverage >= seen)
        if kind == "not_seen":
            return self.ref.inside & (self.ref_coverage < seen)
        raise GraphError(f"unknown class {kind!r}; expected one of {', '.join(CLASSES)}")

    def km(self, kind: str) -> float:
        """Kilometres of road in a class."""
        segs = self.pred if kind in CLASSES[:2] else self.ref
        return float(segs.lengths()[self.mask(kind)].sum()) / 1000.0

    # -- records --------------------------------------------------------------------------------
    def layers(self) -> dict[str, dict[str, NDArray[Any]]]:
        """One record set per class: ``{class: {column: (F,) array}}``, each with a
        ``"geometry"`` column of shapely LineStrings (metres in :attr:`crs`), ready for
        ``geopandas.GeoDataFrame(records, geometry="geometry", crs=diff.crs)``.

        * ``missing_from_ref``: one feature per missing road: ``road_id``, ``length_m``,
          ``confidence`` (NaN without probabilities), ``connection``, ``ends_connected``,
          ``ends_at_border``, ``group``;
        * ``matched``: the prediction's pieces: ``edge`` (its edge index), ``length_m``,
          ``confidence``, ``coverage``;
        * ``confirmed`` and ``not_seen``: the reference's pieces: ``edge``, ``length_m``,
          ``coverage``, ``osm_way_id`` (-1 where unknown), ``highway`` ("" where unknown).
        """
        m = self.missing
        out: dict[str, dict[str, NDArray[Any]]] = {
            "missing_from_ref": {
                "geometry": m.lines(),
                "road_id": np.arange(len(m), dtype=np.int64),
                "length_m": m.length,
                "confidence": m.confidence,
                "connection": m.connection,
                "ends_connected": m.ends_connected,
                "ends_at_border": m.ends_at_border,
                "group": m.group,
            }
        }
        sel = self.mask("matched")
        edge = self.pred.edge[sel]
        prob = (
            np.full(len(edge), np.nan)
            if self.pred_prob is None
            else self.pred_prob[edge].astype(np.float64)
        )
        out["matched"] = {
            "geometry": self.pred.lines()[sel],
            "edge": edge,
            "length_m": self.pred.lengths()[sel],
            "confidence": prob,
            "coverage": self.pred_coverage[sel],
        }
        for kind in ("confirmed", "not_seen"):
            sel = self.mask(kind)
            edge = self.ref.edge[sel]
            way = np.full(len(edge), -1, np.int64) if self.ref_way_id is None else self.ref_way_id
            hw = np.full(len(edge), "", object) if self.ref_highway is None else self.ref_highway
            out[kind] = {
                "geometry": self.ref.lines()[sel],
                "edge": edge,
                "length_m": self.ref.lengths()[sel],
                "coverage": self.ref_coverage[sel],
                "osm_way_id": way if self.ref_way_id is None else way[edge],
                "highway": hw if self.ref_highway is None else hw[edge],
            }
        return out

    def graph(self, kind: str) -> RoadGraph:
        """The pieces of one class as a :class:`RoadGraph` on a 1 m/px grid of :attr:`crs`
        (pixel ``(x, y)`` = ``(easting, -northing)``), e.g. for
        :func:`~linegraph2road.io.write_graph`. Prediction classes carry ``edge_prob`` when the
        prediction has probabilities."""
        segs = self.pred if kind in CLASSES[:2] else self.ref
        sel = self.mask(kind)
        used, ends = np.unique(segs.node[sel], return_inverse=True)
        xy = segs.node_xy()[used] * np.array([1.0, -1.0])
        prob = None
        if kind in CLASSES[:2] and self.pred_prob is not None:
            prob = self.pred_prob[segs.edge[sel]]
        grid = Georeference(self.crs, Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0))
        return RoadGraph.from_edges(xy, ends.reshape(-1, 2), prob, grid)

    def scores(
        self, pred_missing: NDArray[np.bool_], ref_not_seen: NDArray[np.bool_]
    ) -> dict[str, dict[str, float]]:
        """Precision and recall of each class against known changes, by length.

        For validating the diff on data whose changes are known (e.g. a map from which roads were
        removed on purpose).

        Parameters
        ----------
        pred_missing : (E_pred,) bool
            True for the prediction's edges that truly are missing from the reference.
        ref_not_seen : (E_ref,) bool
            True for the reference's edges that truly are absent from the prediction.

        Returns
        -------
        dict
            ``{class: {"precision", "recall", "true_km", "found_km"}}`` for the four classes,
            counted over the compared area (precision/recall NaN when undefined).
        """
        truth = {
            "missing_from_ref": np.asarray(pred_missing, dtype=bool),
            "matched": ~np.asarray(pred_missing, dtype=bool),
            "not_seen": np.asarray(ref_not_seen, dtype=bool),
            "confirmed": ~np.asarray(ref_not_seen, dtype=bool),
        }
        out: dict[str, dict[str, float]] = {}
        for kind in CLASSES:
            segs = self.pred if kind in CLASSES[:2] else self.ref
            n_edges = len(truth[kind])
            if len(segs) and segs.edge.max() >= n_edges:
                raise GraphError(f"{kind}: the truth has {n_edges} edges, the graph more")
            length = segs.lengths()
            true = truth[kind][segs.edge] & segs.inside
            found = self.mask(kind)
            tp = float(length[true & found].sum())
            t_len, f_len = float(length[true].sum()), float(length[found].sum())
            out[kind] = {
                "precision": tp / f_len if f_len > 0 else float("nan"),
                "recall": tp / t_len if t_len > 0 else float("nan"),
                "true_km": t_len / 1000.0,
                "found_km": f_len / 1000.0,
            }
        return out

    def summary(self) -> dict[str, Any]:
        """Kilometres and counts per class, the share of the reference confirmed, the missing
        roads by connection status, and every option (JSON-ready; NaN -> None)."""
        km = {k: round(self.km(k), 6) for k in CLASSES}
        ref_km = km["confirmed"] + km["not_seen"]
        pred_km = km["matched"] + km["missing_from_ref"]
        conn = self.missing.connection
        lon_lat = project_polygon(self.area, self.crs, WGS84).bounds
        out: dict[str, Any] = {
            "crs": self.crs_code,
            "area_km2": round(float(self.area.area) / 1e6, 6),
            "area_lonlat_bounds": [round(float(v), 7) for v in lon_lat],
            "km": km,
            "prediction_km": round(pred_km, 6),
            "reference_km": round(ref_km, 6),
            "share_of_reference_confirmed": (
                round(km["confirmed"] / ref_km, 6) if ref_km > 0 else None
            ),
            "share_of_prediction_matched": round(km["matched"] / pred_km, 6) if pred_km else None,
            "counts": {
                "matched_pieces": int(self.mask("matched").sum()),
                "missing_roads": len(self.missing),
                "confirmed_pieces": int(self.mask("confirmed").sum()),
                "not_seen_pieces": int(self.mask("not_seen").sum()),
            },
            "missing_roads_by_connection": {c: int(np.sum(conn == c)) for c in CONNECTIONS},
            "options": self.options.to_dict(),
        }
        if self.ref_highway is not None:
            by: dict[str, dict[str, float]] = {}
            for kind in ("confirmed", "not_seen"):
                sel = self.mask(kind)
                hw = self.ref_highway[self.ref.edge[sel]]
                lengths = self.ref.lengths()[sel]
                for name in sorted(set(hw.tolist())):
                    row = by.setdefault(str(name) or "unknown", {"confirmed": 0.0, "not_seen": 0.0})
                    row[kind] = round(float(lengths[hw == name].sum()) / 1000.0, 6)
            out["reference_km_by_highway"] = by
        return out


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
    extent = ref_graph.meta.get("extent")
    if extent is not None:
        ref_fp = project_polygon(box_polygon(extent), WGS84, crs)
    elif ref_graph.num_edges:
        ref_fp = _node_box(ref_xy, ref_graph.edges, tol)
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
