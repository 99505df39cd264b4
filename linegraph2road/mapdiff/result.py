"""The outcome of a map diff: classes, records for GeoDataFrames, graphs, scores, summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from affine import Affine

from linegraph2road.errors import GraphError
from linegraph2road.georef import WGS84, Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.mapdiff.frame import Segments, project_polygon
from linegraph2road.mapdiff.options import DiffOptions
from linegraph2road.mapdiff.roads import CONNECTIONS, MissingRoads

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pyproj import CRS

__all__ = ["CLASSES", "MapDiff"]

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
