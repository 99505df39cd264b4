"""Georeference of a pixel grid: a CRS plus the affine transform of a raster.

Pixel coordinates follow the library convention: ``(x, y) = (col, row)``, float64, origin at
the top-left corner of the top-left pixel, so a pixel's centre is ``(col + 0.5, row + 0.5)``.
``transform`` maps pixel ``(x, y)`` to CRS coordinates exactly as rasterio's
``dataset.transform`` does, so a graph made on a raster shares that raster's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine
from pyproj import CRS, Geod, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from pyproj.exceptions import CRSError

from linegraph2road.errors import GeoreferenceError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["PIXEL_CRS", "WGS84", "Georeference", "as_crs", "is_pixel_crs"]

WGS84 = CRS.from_epsg(4326)

#: The CRS written for graphs in image pixels where a format needs one (osmnx's
#: ``graph_to_gdfs`` needs ``G.graph["crs"]``): an engineering CRS whose x is the column and y
#: the row (pointing down), 1 unit per pixel, labelled metres because benchmark tiles are 1 m/px.
#: Readers recognise it (:func:`is_pixel_crs`) and give a pixel graph back.
PIXEL_CRS = CRS.from_wkt(
    'ENGCRS["l2r image pixels",EDATUM["image grid (1 unit = 1 pixel)"],CS[Cartesian,2],'
    'AXIS["x (column)",east,ORDER[1],LENGTHUNIT["metre",1]],'
    'AXIS["y (row)",south,ORDER[2],LENGTHUNIT["metre",1]]]'
)


def is_pixel_crs(value: Any) -> bool:
    """Whether ``value`` names a pixel frame rather than a place on the Earth: an engineering
    (local) CRS such as :data:`PIXEL_CRS`. Unparseable values are not pixel frames."""
    try:
        crs = CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError):
        return False
    return crs.type_name.startswith("Engineering") or crs.name == PIXEL_CRS.name


_GEOD = Geod(ellps="WGS84")


def as_crs(value: Any) -> CRS:
    """Parse anything pyproj understands ("EPSG:32611", WKT, a proj dict, a CRS) into a CRS.

    Raises
    ------
    GeoreferenceError
        When pyproj cannot parse ``value``.
    """
    if isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise GeoreferenceError(f"not a coordinate reference system: {value!r} ({exc})") from exc


@lru_cache(maxsize=64)
def _transformer(src: CRS, dst: CRS) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _as_points(xy: ArrayLike) -> NDArray[np.float64]:
    pts = np.asarray(xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise GeoreferenceError(f"expected points of shape (N, 2), got {pts.shape}")
    return pts


@dataclass(frozen=True)
class Georeference:
    """Where a pixel grid lies on the Earth.

    Parameters
    ----------
    crs : pyproj.CRS
        The raster's coordinate reference system (projected or geographic).
    transform : affine.Affine
        Pixel ``(x, y)`` (col, row, corner origin) -> CRS ``(x, y)``; rasterio's convention.
    """

    crs: CRS
    transform: Affine

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", as_crs(self.crs))
        if not isinstance(self.transform, Affine):
            try:
                object.__setattr__(self, "transform", Affine(*list(self.transform)[:6]))
            except (TypeError, ValueError) as exc:
                raise GeoreferenceError(f"not an affine transform: {self.transform!r}") from exc
        if abs(self.transform.determinant) == 0 or not all(
            math.isfinite(v) for v in tuple(self.transform)[:6]
        ):
            raise GeoreferenceError(f"degenerate affine transform: {tuple(self.transform)[:6]}")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, dataset: Any) -> Georeference | None:
        """The georeference of an open rasterio dataset, or None when it has no CRS."""
        if dataset.crs is None:
            return None
        if dataset.transform.is_identity:
            return None
        return cls(CRS.from_user_input(dataset.crs.to_wkt()), dataset.transform)

    @classmethod
    def local_metric_grid(
        cls, lonlat: ArrayLike, *, gsd: float = 1.0, margin: float = 0.0
    ) -> Georeference:
        """A north-up grid of ``gsd`` metres per pixel in the UTM zone of ``lonlat``.

        Used when a graph arrives in lon/lat without a reference raster: pixel distances are then
        ``gsd`` metres, as the metrics expect. The grid's origin is the top-left corner of the
        points' bounding box, extended by ``margin`` metres.
        """
        pts = _as_points(lonlat)
        if len(pts) == 0:
            raise GeoreferenceError("cannot place an empty graph on a metric grid")
        utm = utm_crs_for(pts)
        xy = np.column_stack(_transformer(WGS84, utm).transform(pts[:, 0], pts[:, 1]))
        x0 = math.floor(float(xy[:, 0].min()) - margin)
        y0 = math.ceil(float(xy[:, 1].max()) + margin)
        return cls(utm, Affine(gsd, 0.0, x0, 0.0, -gsd, y0))

    # -- properties ----------------------------------------------------------------------------
    @property
    def is_geographic(self) -> bool:
        return bool(self.crs.is_geographic)

    def gsd(self, at: tuple[float, float] = (0.0, 0.0)) -> float:
        """Ground sampling distance in metres per pixel near pixel ``at`` (mean of x and y)."""
        x, y = at
        corners = np.array([[x, y], [x + 1.0, y], [x, y + 1.0]])
        if self.is_geographic:
            ll = self.pixel_to_lonlat(corners)
            _, _, dx = _GEOD.inv(ll[0, 0], ll[0, 1], ll[1, 0], ll[1, 1])
            _, _, dy = _GEOD.inv(ll[0, 0], ll[0, 1], ll[2, 0], ll[2, 1])
            return float((dx + dy) / 2.0)
        c = self.pixel_to_crs(corners)
        factor = self.crs.axis_info[0].unit_conversion_factor if self.crs.axis_info else 1.0
        dx = float(np.hypot(*(c[1] - c[0])))
        dy = float(np.hypot(*(c[2] - c[0])))
        return (dx + dy) / 2.0 * float(factor)

    # -- conversions ---------------------------------------------------------------------------
    def pixel_to_crs(self, xy: ArrayLike) -> NDArray[np.float64]:
        """(N, 2) pixel ``(x, y)`` -> (N, 2) CRS ``(x, y)`` (easting/northing or lon/lat)."""
        pts = _as_points(xy)
        a, b, c, d, e, f = tuple(self.transform)[:6]
        out = np.empty_like(pts)
        out[:, 0] = a * pts[:, 0] + b * pts[:, 1] + c
        out[:, 1] = d * pts[:, 0] + e * pts[:, 1] + f
        return out

    def crs_to_pixel(self, xy: ArrayLike) -> NDArray[np.float64]:
        """(N, 2) CRS ``(x, y)`` -> (N, 2) pixel ``(x, y)``."""
        pts = _as_points(xy)
        a, b, c, d, e, f = tuple(~self.transform)[:6]
        out = np.empty_like(pts)
        out[:, 0] = a * pts[:, 0] + b * pts[:, 1] + c
        out[:, 1] = d * pts[:, 0] + e * pts[:, 1] + f
        return out

    def pixel_to_lonlat(self, xy: ArrayLike) -> NDArray[np.float64]:
        """(N, 2) pixel ``(x, y)`` -> (N, 2) WGS84 ``(lon, lat)`` degrees (RFC 7946 order)."""
        return transform_points(self.pixel_to_crs(xy), self.crs, WGS84)

    def lonlat_to_pixel(self, lonlat: ArrayLike) -> NDArray[np.float64]:
        """(N, 2) WGS84 ``(lon, lat)`` -> (N, 2) pixel ``(x, y)``."""
        return self.crs_to_pixel(transform_points(lonlat, WGS84, self.crs))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``{"crs": WKT or "EPSG:n", "transform": [a, b, c, d, e, f]}``."""
        epsg = self.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg is not None else self.crs.to_wkt()
        return {"crs": crs, "transform": [float(v) for v in tuple(self.transform)[:6]]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Georeference:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(as_crs(data["crs"]), Affine(*[float(v) for v in data["transform"]][:6]))
        except (KeyError, TypeError, ValueError) as exc:
            raise GeoreferenceError(f"invalid georeference record: {data!r}") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Georeference):
            return NotImplemented
        return self.crs == other.crs and self.transform.almost_equals(other.transform, 1e-12)

    def __hash__(self) -> int:
        return hash((self.crs.to_wkt(), tuple(self.transform)[:6]))

    def __repr__(self) -> str:
        d = self.to_dict()
        crs = d["crs"] if len(d["crs"]) < 40 else self.crs.name
        return f"Georeference(crs={crs!r}, transform={tuple(d['transform'])})"


def transform_points(xy: ArrayLike, src: Any, dst: Any) -> NDArray[np.float64]:
    """Reproject (N, 2) ``(x, y)`` points (lon/lat order for geographic CRSs) from src to dst."""
    pts = _as_points(xy)
    s, d = as_crs(src), as_crs(dst)
    if s == d or len(pts) == 0:
        return pts.copy()
    x, y = _transformer(s, d).transform(pts[:, 0], pts[:, 1])
    out = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    if not np.isfinite(out).all():
        raise GeoreferenceError(
            f"coordinates cannot be transformed from {s.name} to {d.name} "
            "(outside the CRS's area of use?)"
        )
    return out


def utm_crs_for(lonlat: ArrayLike) -> CRS:
    """The WGS84 UTM zone CRS containing the centre of (N, 2) ``(lon, lat)`` points."""
    pts = _as_points(lonlat)
    lon = float(np.mean(pts[:, 0]))
    lat = float(np.mean(pts[:, 1]))
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GeoreferenceError(
            f"coordinates ({lon:.3f}, {lat:.3f}) are not lon/lat degrees; "
            "is the file in a projected CRS without saying so?"
        )
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon, lat, lon, lat),
    )
    if not infos:
        raise GeoreferenceError(f"no UTM zone found for lon {lon:.3f}, lat {lat:.3f}")
    return CRS.from_epsg(int(infos[0].code))


def geodesic_length(lonlat: ArrayLike) -> float:
    """Length in metres of a polyline given as (N, 2) WGS84 ``(lon, lat)`` points."""
    pts = _as_points(lonlat)
    if len(pts) < 2:
        return 0.0
    return float(_GEOD.line_length(pts[:, 0], pts[:, 1]))
