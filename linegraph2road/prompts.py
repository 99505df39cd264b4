"""Interactive prompts: clicks and scribbles, positive or negative (SPEC "Interactive path").

A :class:`Prompt` is a click (one point) or a scribble (a polyline of two or more points) in
library pixel coordinates ``(x, y) = (col, row)``, float64, origin at the top-left corner of the
top-left pixel. ``positive=True`` says "this is road", ``False`` "this is not road".

Rasterisation (:func:`rasterize_prompts`) makes the network's two prompt maps, channel 0 from the
positive prompts and channel 1 from the negative ones, each the pixel-wise maximum of its prompts:

* **clicks** are soft discs (RoadGIE 4.2, "rasterized as a soft disk"): value 1 for pixel centres
  within ``click_radius / 2`` of the point, falling linearly to 0 at ``click_radius``. The default
  radius, 5 px, is the click disc radius of RITM (Sofiiuk et al., 2022), which the click
  encodings of later interactive segmenters (ScribblePrompt included) inherit; the paper gives no
  number. At 1 m/px it covers a road's width.
* **scribbles** are fixed-width strokes (RoadGIE 4.2, "rasterized using a fixed stroke width"):
  value 1 on the pixels :func:`~linegraph2road.rasterize.draw_segments` draws for the polyline at
  ``scribble_width`` px, else 0. The default, 3 px, is the width SAM-Road and our labels draw road
  centre-lines with (SPEC "Training labels"), so a scribble along a road stays inside it; the
  paper gives no number.

GeoJSON at the edges (:func:`prompts_from_geojson`, :func:`read_prompts`,
:func:`prompts_to_geojson`, :func:`write_prompts`): a FeatureCollection (or one Feature) whose
Point / MultiPoint geometries are clicks and LineString / MultiLineString geometries scribbles,
each feature with a boolean ``positive`` property. Coordinates are

* pixels ``(x, y)`` when no georeference is given, or when the document's ``l2r`` member says
  ``{"coordinates": "pixel"}`` (what :func:`prompts_to_geojson` writes without a georeference);
* otherwise WGS84 ``[lon, lat]`` (RFC 7946, no ``crs`` member), or the CRS named by a legacy
  ``crs`` member (``{"type": "name", "properties": {"name": "EPSG:32611"}}``), e.g. the raster's.

Anything else is refused with one :class:`~linegraph2road.errors.L2RError` naming the feature:
not GeoJSON or another geometry type (FormatError), a missing or non-boolean ``positive``
(FormatError), no prompt at all (FormatError), a CRS that cannot be parsed or transformed
(GeoreferenceError), a point outside the image (ParameterError).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linegraph2road.errors import FormatError, GeoreferenceError, ParameterError
from linegraph2road.georef import WGS84, Georeference, as_crs, transform_points
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._files import read_json
from linegraph2road.io.geojson import parse_positions
from linegraph2road.rasterize import check_shape, draw_segments

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CLICK_RADIUS",
    "PROMPT_KINDS",
    "SCRIBBLE_WIDTH",
    "Prompt",
    "prompt_mask",
    "prompts_from_geojson",
    "prompts_to_geojson",
    "rasterize_prompts",
    "read_prompts",
    "write_prompts",
]

PROMPT_KINDS = ("click", "scribble")
#: Default click disc radius in pixels (RITM's 5 px click discs; see the module docstring).
CLICK_RADIUS = 5.0
#: Default scribble stroke width in pixels (SAM-Road's 3 px road lines).
SCRIBBLE_WIDTH = 3
_LONLAT_NAMES = {
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "urn:ogc:def:crs:epsg::4326",
    "epsg:4326",
    "crs84",
}


@dataclass(frozen=True, eq=False)
class Prompt:
    """One click or scribble.

    Parameters
    ----------
    kind : {"click", "scribble"}
    points : (N, 2) array_like
        ``(x, y)`` pixels; ``N == 1`` for a click, ``N >= 2`` for a scribble. Stored as a
        read-only float64 copy.
    positive : bool
        True: road here; False: no road here.

    Raises
    ------
    ParameterError
        Unknown kind, wrong number of points, non-finite coordinates or a non-bool ``positive``.
    """

    kind: Literal["click", "scribble"]
    points: NDArray[np.float64] = field(repr=False)
    positive: bool

    def __post_init__(self) -> None:
        if self.kind not in PROMPT_KINDS:
            raise ParameterError(f"a prompt is a 'click' or a 'scribble', got kind {self.kind!r}")
        if not isinstance(self.positive, bool | np.bool_):
            raise ParameterError(f"positive must be True or False, got {self.positive!r}")
        try:
            pts = np.array(self.points, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"prompt points must be numbers, got {self.points!r:.80}") from exc
        if pts.ndim == 1 and pts.shape == (2,):
            pts = pts[None]
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ParameterError(f"prompt points must have shape (N, 2), got {pts.shape}")
        if self.kind == "click" and len(pts) != 1:
            raise ParameterError(f"a click has exactly one point, got {len(pts)}")
        if self.kind == "scribble" and len(pts) < 2:
            raise ParameterError(f"a scribble needs at least two points, got {len(pts)}")
        if not np.isfinite(pts).all():
            raise ParameterError("prompt points must be finite numbers")
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "positive", bool(self.positive))

    @classmethod
    def click(cls, x: float, y: float, *, positive: bool = True) -> Prompt:
        """A click at pixel ``(x, y)``."""
        return cls("click", np.array([[x, y]], dtype=np.float64), positive)

    @classmethod
    def scribble(cls, points: ArrayLike, *, positive: bool = True) -> Prompt:
        """A scribble through ``(N, 2)`` pixel ``(x, y)`` points, ``N >= 2``."""
        return cls("scribble", np.asarray(points, dtype=np.float64), positive)

    def __repr__(self) -> str:
        sign = "+" if self.positive else "-"
        return f"Prompt({self.kind}{sign}, {len(self.points)} point(s), first {self.points[0]})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prompt):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.positive == other.positive
            and np.array_equal(self.points, other.points)
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.positive, self.points.tobytes()))


# -- rasterisation -------------------------------------------------------------------------------
def _soft_disc(out: NDArray[np.float32], x: float, y: float, radius: float) -> None:
    """Max-merge a soft disc at ``(x, y)`` into ``out`` (1 within radius / 2, 0 at radius)."""
    h, w = out.shape
    r0, r1 = int(np.floor(y - radius)), int(np.ceil(y + radius)) + 1
    c0, c1 = int(np.floor(x - radius)), int(np.ceil(x + radius)) + 1
    r0, r1, c0, c1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if r0 >= r1 or c0 >= c1:
        return
    yy, xx = np.mgrid[r0:r1, c0:c1]
    d = np.hypot(xx + 0.5 - x, yy + 0.5 - y)
    inner = radius / 2.0
    value = np.clip((radius - d) / max(radius - inner, 1e-9), 0.0, 1.0).astype(np.float32)
    # The pixel holding the point is always 1, however small the radius.
    row, col = int(np.floor(y)), int(np.floor(x))
    if r0 <= row < r1 and c0 <= col < c1:
        value[row - r0, col - c0] = 1.0
    np.maximum(out[r0:r1, c0:c1], value, out=out[r0:r1, c0:c1])


def rasterize_prompts(
    prompts: Sequence[Prompt],
    shape: tuple[int, int],
    *,
    click_radius: float = CLICK_RADIUS,
    scribble_width: int = SCRIBBLE_WIDTH,
) -> NDArray[np.float32]:
    """The positive and negative prompt maps of ``prompts`` on an ``(H, W)`` grid.

    Parameters
    ----------
    prompts : sequence of Prompt
        In pixel coordinates of the grid; parts outside it are clipped. Not modified.
    shape : (H, W)
        Grid size in pixels.
    click_radius : float, default 5.0
        Soft-disc radius of clicks in pixels (see the module docstring).
    scribble_width : int, default 3
        Stroke width of scribbles in pixels.

    Returns
    -------
    (2, H, W) float32
        Channel 0 from the positive prompts, channel 1 from the negative ones, values in [0, 1].
    """
    h, w = check_shape(shape, "prompt map")
    if not np.isfinite(click_radius) or click_radius <= 0:
        raise ParameterError(f"click_radius must be a positive number of px, got {click_radius}")
    if int(scribble_width) < 1:
        raise ParameterError(f"scribble_width must be >= 1 px, got {scribble_width}")
    out = np.zeros((2, h, w), dtype=np.float32)
    for p in prompts:
        if not isinstance(p, Prompt):
            raise ParameterError(f"expected Prompt objects, got {type(p).__name__}")
        channel = out[0 if p.positive else 1]
        if p.kind == "click":
            _soft_disc(channel, float(p.points[0, 0]), float(p.points[0, 1]), float(click_radius))
        else:
            stroke = draw_segments(p.points[:-1], p.points[1:], (h, w), width=int(scribble_width))
            channel[stroke] = 1.0
    return out


def prompt_mask(
    prompts: Sequence[Prompt],
    shape: tuple[int, int],
    *,
    click_radius: float = CLICK_RADIUS,
    scribble_width: int = SCRIBBLE_WIDTH,
) -> NDArray[np.bool_]:
    """``(H, W)`` bool: the pixels any prompt covers (``M_t`` of RoadGIE eq. 6)."""
    maps = rasterize_prompts(
        prompts, shape, click_radius=click_radius, scribble_width=scribble_width
    )
    return np.asarray(maps.max(axis=0) > 0)


# -- GeoJSON -------------------------------------------------------------------------------------
def _features(doc: Any, name: str) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise FormatError(f"{name}: not GeoJSON (expected an object with a 'type' member)")
    kind = doc["type"]
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise FormatError(f"{name}: FeatureCollection without a 'features' list")
        return features
    if kind == "Feature":
        return [doc]
    raise FormatError(
        f"{name}: expected a FeatureCollection of prompt features (a bare {kind} geometry has no "
        "'positive' property)"
    )


def _source_crs(doc: dict[str, Any], georef: Georeference | None, name: str) -> Any:
    """The CRS of the document's coordinates (None: pixels)."""
    raw = doc.get("l2r")
    member: dict[str, Any] = raw if isinstance(raw, dict) else {}
    legacy = doc.get("crs")
    if member.get("coordinates") == "pixel":
        return None
    if georef is None:
        if legacy is not None or member.get("coordinates") == "lonlat":
            raise GeoreferenceError(
                f"{name}: the prompts have map coordinates but the image has no georeference; "
                "give pixel coordinates (x, y) or a georeferenced image"
            )
        return None
    if legacy is None:
        return WGS84
    crs_name = (legacy.get("properties") or {}).get("name") if isinstance(legacy, dict) else None
    if not isinstance(crs_name, str):
        raise GeoreferenceError(f"{name}: unreadable 'crs' member {legacy!r:.80}")
    return WGS84 if crs_name.strip().lower() in _LONLAT_NAMES else as_crs(crs_name)


def _parts(geom: Any, name: str, k: int) -> tuple[str, list[NDArray[np.float64]]]:
    gtype = geom.get("type") if isinstance(geom, dict) else None
    coords = geom.get("coordinates") if isinstance(geom, dict) else None
    if gtype == "Point":
        return "click", [parse_positions([coords], name, k)]
    if gtype == "MultiPoint":
        return "click", [parse_positions([c], name, k) for c in _list(coords, name, k)]
    if gtype == "LineString":
        return "scribble", [parse_positions(coords, name, k)]
    if gtype == "MultiLineString":
        return "scribble", [parse_positions(c, name, k) for c in _list(coords, name, k)]
    raise FormatError(
        f"{name}: feature {k} is a {gtype} geometry; prompts are Point/MultiPoint (clicks) or "
        "LineString/MultiLineString (scribbles)"
    )


def _list(coords: Any, name: str, k: int) -> list[Any]:
    if not isinstance(coords, list) or not coords:
        raise FormatError(f"{name}: feature {k} has a geometry without coordinates")
    return coords


def prompts_from_geojson(
    doc: dict[str, Any],
    *,
    georef: Georeference | None,
    shape: tuple[int, int] | None,
    name: str = "prompts",
) -> list[Prompt]:
    """Prompts of a parsed GeoJSON document, in pixel coordinates (see the module docstring).

    Parameters
    ----------
    doc : dict
        A FeatureCollection (or one Feature) of Point / MultiPoint / LineString /
        MultiLineString features with a boolean ``positive`` property. Not modified.
    georef : Georeference or None
        The image's georeference: map coordinates go through it. None: coordinates are pixels.
    shape : (H, W) or None
        The image size; a point outside ``[0, W] x [0, H]`` is refused. None: not checked.
    name : str
        What to call the document in messages (its file name).

    Returns
    -------
    list of Prompt
        One per point of a (Multi)Point and one per line of a (Multi)LineString, in file order.

    Raises
    ------
    FormatError
        Not GeoJSON, another geometry type, a missing or non-boolean ``positive``, no prompts.
    GeoreferenceError
        Map coordinates without a georeference; an unknown or untransformable CRS.
    ParameterError
        A point outside the image; a scribble whose points all coincide.
    """
    features = _features(doc, name)
    src = _source_crs(doc, georef, name)
    prompts: list[Prompt] = []
    for k, feat in enumerate(features):
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            raise FormatError(f"{name}: feature {k} is not a GeoJSON Feature")
        geom = feat.get("geometry")
        if geom is None:
            raise FormatError(f"{name}: feature {k} has no geometry")
        props = feat.get("properties")
        positive = props.get("positive") if isinstance(props, dict) else None
        if not isinstance(positive, bool):
            raise FormatError(
                f"{name}: feature {k} needs a boolean 'positive' property (true: road, false: "
                f"not road), got {positive!r}"
            )
        kind, parts = _parts(geom, name, k)
        for part in parts:
            pixels = _to_pixels(part, src, georef, name, k)
            _check_inside(pixels, shape, part, src, name, k)
            if kind == "scribble" and np.all(pixels == pixels[0]):
                raise ParameterError(f"{name}: feature {k} is a scribble of one repeated point")
            prompts.append(Prompt(kind, pixels, positive))  # type: ignore[arg-type]
    if not prompts:
        raise FormatError(f"{name}: no prompts (the FeatureCollection is empty)")
    return prompts


def _to_pixels(
    pts: NDArray[np.float64], src: Any, georef: Georeference | None, name: str, k: int
) -> NDArray[np.float64]:
    if src is None or georef is None:
        return pts
    if src == WGS84 and bool(((np.abs(pts[:, 0]) > 180) | (np.abs(pts[:, 1]) > 90)).any()):
        raise GeoreferenceError(
            f"{name}: feature {k} has coordinates {pts[0].tolist()} that are not lon/lat degrees; "
            "a file in a projected CRS needs a 'crs' member naming it"
        )
    try:
        return georef.crs_to_pixel(transform_points(pts, src, georef.crs))
    except GeoreferenceError as exc:
        raise GeoreferenceError(f"{name}: feature {k}: {exc}") from exc


def _check_inside(
    pixels: NDArray[np.float64],
    shape: tuple[int, int] | None,
    given: NDArray[np.float64],
    src: Any,
    name: str,
    k: int,
) -> None:
    if shape is None:
        return
    h, w = check_shape(shape, "image")
    out = (pixels[:, 0] < 0) | (pixels[:, 0] > w) | (pixels[:, 1] < 0) | (pixels[:, 1] > h)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        where = "pixel" if src is None else ("lon/lat" if src == WGS84 else src.name)
        raise ParameterError(
            f"{name}: feature {k} lies outside the image: {where} {given[i].tolist()} is pixel "
            f"({pixels[i, 0]:.1f}, {pixels[i, 1]:.1f}) of a {w} x {h} px image; place prompts on "
            "the image"
        )


def read_prompts(
    path: str | os.PathLike[str],
    *,
    georef: Georeference | None,
    shape: tuple[int, int] | None,
) -> list[Prompt]:
    """Read a prompts GeoJSON file (:func:`prompts_from_geojson`).

    Raises
    ------
    InputFileError
        Missing, a folder, or unreadable.
    FormatError, GeoreferenceError, ParameterError
        As :func:`prompts_from_geojson`; invalid JSON is a FormatError.
    """
    doc = read_json(path, what="GeoJSON prompts")
    return prompts_from_geojson(doc, georef=georef, shape=shape, name=os.fspath(path))


def prompts_to_geojson(prompts: Sequence[Prompt], *, georef: Georeference | None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``prompts`` (one feature each).

    With ``georef``: RFC 7946 WGS84 ``[lon, lat]``; without: pixel ``[x, y]`` and an ``l2r``
    member ``{"coordinates": "pixel"}``, so :func:`prompts_from_geojson` reads it back either
    way. Properties: ``positive`` (bool) and ``kind``.
    """
    features = []
    for p in prompts:
        if not isinstance(p, Prompt):
            raise ParameterError(f"expected Prompt objects, got {type(p).__name__}")
        pts = p.points if georef is None else georef.pixel_to_lonlat(p.points)
        coords = pts.tolist()
        geometry = (
            {"type": "Point", "coordinates": coords[0]}
            if p.kind == "click"
            else {"type": "LineString", "coordinates": coords}
        )
        features.append(
            {
                "type": "Feature",
                "properties": {"positive": p.positive, "kind": p.kind},
                "geometry": geometry,
            }
        )
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    doc["l2r"] = {"coordinates": "pixel" if georef is None else "lonlat"}
    return doc


def write_prompts(
    prompts: Sequence[Prompt], path: str | os.PathLike[str], *, georef: Georeference | None
) -> None:
    """Write :func:`prompts_to_geojson` to ``path`` atomically."""
    doc = prompts_to_geojson(prompts, georef=georef)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc), encoding="utf-8")
