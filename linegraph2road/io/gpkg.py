"""GeoPackage road graphs: an ``edges`` LineString layer and a ``nodes`` Point layer.

Read and written through pyogrio's numpy ("raw") API with WKB geometries from shapely; no
geopandas or fiona. pyogrio is imported on first use (it loads its own GDAL).

Writing
-------
:func:`write_gpkg` writes two layers in the graph's georeference CRS (the raster's CRS, projected
or geographic, as GraphML does); a graph without georeference is written in pixel coordinates
with no CRS (as :mod:`.geojson` does for pixel graphs), not refused:

``edges`` (LineString, one feature per edge, in edge order, drawn from node ``u`` to node ``v``)
    ``u``, ``v`` (int64 node ids, ``u < v``), ``prob`` (float32, only when the graph has edge
    probabilities), ``length`` (float64: metres for a georeferenced graph, geodesic for a
    geographic CRS; pixels otherwise; see ``l2r_length_unit``).
``nodes`` (Point, one feature per node, isolated nodes included, in node order)
    ``node_id`` (int64, ``0..N-1``), ``x``, ``y`` (float64, the point's coordinates; osmnx's
    convention).

Metadata of the ``edges`` layer (GDAL metadata items, strings; in the GeoPackage's
``gpkg_metadata`` table), the same records as the GraphML graph attributes, so that reading gives
back the exact pixel grid:

``l2r_coordinates``
    ``"crs"`` or ``"pixel"``.
``crs``
    The georeference's CRS (``"EPSG:n"`` or WKT); georeferenced graphs only.
``l2r_transform``
    JSON ``[a, b, c, d, e, f]``, the pixel -> CRS affine transform (rasterio order).
``l2r_length_unit``
    ``"m"`` or ``"px"``.

:func:`write_layers` writes any set of vector layers (:class:`GpkgLayer`: geometries, fields,
null masks, metadata) into one GeoPackage the same way; ``l2r diff`` writes its change layers with
it.

Reading
-------
:func:`read_gpkg` reads a file written by :func:`write_gpkg` by its ``node_id``/``u``/``v``
fields (same nodes in the same order, isolated nodes included, same edge order, ``prob``,
georeference), as long as every edge's end points still are its nodes' points. Any other
GeoPackage is read from one layer of LineStrings/MultiLineStrings (z/m dropped, null or empty
geometries skipped), as :mod:`.geojson` reads lines: every vertex is a node (equal coordinates are
one node, in order of first appearance), consecutive vertices are edges; a ``prob`` field becomes
``edge_prob`` when every line has one. The layer is ``layer=`` when given, else ``edges`` when it
holds lines, else the file's only line layer. Coordinates are in the layer's CRS (pixels when it
has none) and are placed on ``like``'s pixel grid when given, else on the grid in the metadata,
else on a 1 unit/px grid of a projected CRS or :meth:`Georeference.local_metric_grid` (UTM,
1 m/px) for a geographic one.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from linegraph2road.errors import FormatError, GeoreferenceError, GraphError, InputFileError
from linegraph2road.georef import Georeference, as_crs, transform_points
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._files import check_input_file
from linegraph2road.io.geojson import join_lines
from linegraph2road.io.nx import metric_edge_lengths, place_points

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["EDGES_LAYER", "NODES_LAYER", "GpkgLayer", "read_gpkg", "write_gpkg", "write_layers"]

EDGES_LAYER = "edges"
NODES_LAYER = "nodes"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_LINE_TYPES = {"LineString", "MultiLineString"}
# Layers declared with a generic geometry type may hold lines; their features are checked.
_GENERIC_TYPES = {"Unknown", "Geometry", "GeometryCollection"}
_LINE_TYPE_IDS = {
    int(shapely.GeometryType.LINESTRING),
    int(shapely.GeometryType.MULTILINESTRING),
}


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- writing ------------------------------------------------------------------------------------
def write_gpkg(graph: RoadGraph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` as a GeoPackage with ``edges`` and ``nodes`` layers (atomic).

    Georeferenced graphs are written in their georeference's CRS; pixel graphs in pixel
    ``(x, y)`` with no CRS. Layer schema and metadata: see the module docstring.

    Parameters
    ----------
    graph : RoadGraph
        ``(N, 2)`` float64 pixel nodes, ``(E, 2)`` int64 edges, optional ``edge_prob``.
    path : path
        Output ``.gpkg``; replaced only once the whole file is written.
    """
    g = graph.georef
    meta: dict[str, str]
    if g is None:
        pts, crs = graph.nodes, None
        meta = {"l2r_coordinates": "pixel", "l2r_length_unit": "px"}
    else:
        record = g.to_dict()
        pts, crs = g.pixel_to_crs(graph.nodes), record["crs"]
        meta = {
            "l2r_coordinates": "crs",
            "crs": crs,
            "l2r_transform": json.dumps(record["transform"]),
            "l2r_length_unit": "m",
        }
    u, v = graph.edges[:, 0], graph.edges[:, 1]
    lines = shapely.linestrings(np.stack([pts[u], pts[v]], axis=1).reshape(-1, 2, 2))
    edge_fields: dict[str, NDArray[Any]] = {"u": u, "v": v}
    if graph.edge_prob is not None:
        edge_fields["prob"] = graph.edge_prob
    edge_fields["length"] = metric_edge_lengths(graph)
    node_fields: dict[str, NDArray[Any]] = {
        "node_id": np.arange(graph.num_nodes, dtype=np.int64),
        "x": pts[:, 0],
        "y": pts[:, 1],
    }
    write_layers(
        path,
        [
            GpkgLayer(EDGES_LAYER, "LineString", lines, edge_fields, metadata=meta),
            GpkgLayer(NODES_LAYER, "Point", shapely.points(pts), node_fields),
        ],
        crs=crs,
    )


@dataclass(frozen=True)
class GpkgLayer:
    """One vector layer for :func:`write_layers`.

    Attributes
    ----------
    name : str
        Layer name.
    geometry_type : str
        OGR geometry type of every feature (``"LineString"``, ``"Point"``...).
    geometries : (F,) object
        Shapely geometries, one per feature.
    fields : dict of str to (F,) array
        Attribute columns in order (numbers, bools or ``object`` arrays of str); NaN floats are
        written as null.
    nulls : dict of str to (F,) bool, optional
        Per-field null masks (True = null), e.g. for integer columns with unknown values.
    metadata : dict of str to str, optional
        GDAL layer metadata items.
    """

    name: str
    geometry_type: str
    geometries: NDArray[Any]
    fields: dict[str, NDArray[Any]]
    nulls: dict[str, NDArray[np.bool_]] | None = None
    metadata: dict[str, str] | None = None


def write_layers(path: str | os.PathLike[str], layers: list[GpkgLayer], *, crs: str | None) -> None:
    """Write several vector layers into one new GeoPackage, atomically.

    Parameters
    ----------
    path : path
        Output ``.gpkg``; replaced only once every layer is written.
    layers : list of GpkgLayer
        Written in order; a layer may have no features (its schema is still written).
    crs : str or None
        CRS of every layer (``"EPSG:n"`` or WKT); None for pixel coordinates.
    """
    from pyogrio import raw

    with atomic_path(path) as tmp, warnings.catch_warnings():
        # A pixel graph has no CRS on purpose; pyogrio warns about every layer written without one.
        warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)
        for k, layer in enumerate(layers):
            names = list(layer.fields)
            masks = None
            if layer.nulls:
                masks = [layer.nulls.get(n) for n in names]
            raw.write(
                tmp,
                shapely.to_wkb(np.asarray(layer.geometries, dtype=object)),
                [np.ascontiguousarray(layer.fields[n]) for n in names],
                names,
                field_mask=masks,
                layer=layer.name,
                driver="GPKG",
                geometry_type=layer.geometry_type,
                crs=crs,
                promote_to_multi=False,
                append=k > 0,
                # Layer, not dataset, metadata: GDAL's GeoPackage driver copies dataset
                # metadata into a ``.gpkg.aux.xml`` side file whenever the file is opened
                # read-only.
                layer_metadata=layer.metadata,
            )


# -- reading ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _gdal_reading() -> Iterator[None]:
    """Quiet, side-effect-free reading through pyogrio's GDAL.

    * GDAL's GeoPackage driver saves a file's dataset metadata to ``<file>.gpkg.aux.xml`` when
      it closes a read-only dataset; reading must never write beside its input, so GDAL's
      auxiliary metadata (``GDAL_PAM_ENABLED``) is off meanwhile and restored afterwards (the
      setting is pyogrio's own GDAL's; rasterio's GDAL is a separate copy).
    * pyogrio re-raises GDAL's warnings (``bad application_id``...) as RuntimeWarnings from
      inside its error handler, where they cannot propagate; they are dropped here. Real
      failures arrive as pyogrio errors and become FormatErrors.
    """
    import pyogrio

    before = pyogrio.get_gdal_config_option("GDAL_PAM_ENABLED")
    pyogrio.set_gdal_config_options({"GDAL_PAM_ENABLED": "NO"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        pyogrio.set_gdal_config_options({"GDAL_PAM_ENABLED": before})


def _check_header(p: Path) -> None:
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read file ({exc.strerror})") from exc
    if head != _SQLITE_MAGIC:
        raise FormatError(f"{p}: not a GeoPackage (no SQLite header); is it another format?")


def _base_type(geometry_type: Any) -> str:
    """``"MultiLineString Z"`` -> ``"MultiLineString"``; None (no geometry column) -> ``""``."""
    return str(geometry_type).split(" ")[0] if geometry_type is not None else ""


def _choose_layer(p: Path, layers: dict[str, str], layer: str | None) -> str:
    listing = ", ".join(f"{n} ({t or 'no geometry'})" for n, t in layers.items()) or "none"
    if layer is not None:
        if layer not in layers:
            raise FormatError(f"{p}: no layer {layer!r} in this GeoPackage (layers: {listing})")
        if _base_type(layers[layer]) not in _LINE_TYPES | _GENERIC_TYPES:
            raise FormatError(
                f"{p}: layer {layer!r} holds {layers[layer] or 'no'} geometries; only LineString "
                "and MultiLineString road centerlines can be read as a graph"
            )
        return layer
    lines = [n for n, t in layers.items() if _base_type(t) in _LINE_TYPES]
    if EDGES_LAYER in lines:
        return EDGES_LAYER
    if not lines:
        lines = [n for n, t in layers.items() if _base_type(t) in _GENERIC_TYPES]
    if len(lines) == 1:
        return lines[0]
    if not lines:
        raise FormatError(
            f"{p}: no LineString layer to read road centerlines from (layers: {listing})"
        )
    raise FormatError(
        f"{p}: several line layers ({', '.join(lines)}); pass layer= to read_gpkg/read_graph"
    )


def _line_parts(
    fids: NDArray[np.int64], geoms: NDArray[Any], p: Path, layer: str
) -> tuple[list[tuple[NDArray[np.float64], dict[str, Any], int]], NDArray[np.bool_]]:
    """Lines as ``(vertices (M, 2), {}, feature position)`` and which features have geometry."""
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(present & ~np.isin(types, list(_LINE_TYPE_IDS)))
    if len(bad):
        k = int(bad[0])
        raise FormatError(
            f"{p}: feature fid={int(fids[k])} of layer {layer!r} is a {geoms[k].geom_type} "
            "geometry; only LineString and MultiLineString road centerlines can be read as a graph"
        )
    if not present.any():
        return [], present
    parts, owner = shapely.get_parts(geoms[present], return_index=True)
    feature = np.flatnonzero(present)[owner]
    coords, part = shapely.get_coordinates(parts, return_index=True)
    splits = np.split(coords, np.cumsum(np.bincount(part, minlength=len(parts)))[:-1])
    return [(xy, {}, int(f)) for xy, f in zip(splits, feature.tolist(), strict=True)], present


def _integral(a: Any) -> NDArray[np.int64] | None:
    arr = np.asarray(a)
    return arr.astype(np.int64) if np.issubdtype(arr.dtype, np.integer) else None


def _indexed(
    p: Path, geoms: NDArray[Any], fields: dict[str, Any]
) -> tuple[NDArray[np.float64], NDArray[np.int64]] | None:
    """Nodes (from the ``nodes`` layer) and edges (``u``, ``v``) of a file write_gpkg wrote.

    None when the file was edited so that ids and geometries no longer agree.
    """
    from pyogrio import raw

    node_meta, _, node_wkb, node_fields = raw.read(p, layer=NODES_LAYER, force_2d=True)
    names = list(node_meta["fields"])
    ids = _integral(node_fields[names.index("node_id")]) if "node_id" in names else None
    u, v = _integral(fields.get("u")), _integral(fields.get("v"))
    if ids is None or u is None or v is None:
        return None
    n = len(ids)
    if not np.array_equal(np.sort(ids), np.arange(n)):
        return None
    points = shapely.from_wkb(node_wkb)
    if not np.all(shapely.get_type_id(points) == int(shapely.GeometryType.POINT)):
        return None
    if not np.all(shapely.get_num_coordinates(points) == 1):
        return None
    pts = np.zeros((n, 2))
    pts[ids] = shapely.get_coordinates(points).reshape(-1, 2)
    if len(u) and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n):
        return None
    if not np.all(shapely.get_type_id(geoms) == int(shapely.GeometryType.LINESTRING)):
        return None
    if not np.all(shapely.get_num_coordinates(geoms) == 2):
        return None
    ends = shapely.get_coordinates(geoms).reshape(-1, 2, 2)
    if not (np.array_equal(ends[:, 0], pts[u]) and np.array_equal(ends[:, 1], pts[v])):
        return None
    return pts, np.column_stack([u, v])


def _grid(meta: dict[str, Any]) -> Georeference | None:
    """The pixel grid recorded in the edges layer's metadata, if any."""
    if meta.get("l2r_coordinates") != "crs" or "crs" not in meta or "l2r_transform" not in meta:
        return None
    try:
        transform = json.loads(meta["l2r_transform"])
    except (TypeError, ValueError) as exc:
        raise GeoreferenceError(f"invalid l2r_transform {meta['l2r_transform']!r}") from exc
    return Georeference.from_dict({"crs": meta["crs"], "transform": transform})


@dataclass(frozen=True)
class _Source:
    """What :func:`read_gpkg` read from the file (before placing it on a pixel grid)."""

    layer: str
    crs: str | None  # the layer's CRS as GDAL reports it ("EPSG:n" or WKT)
    metadata: dict[str, str]  # the layer's metadata items
    fids: NDArray[np.int64]
    geoms: NDArray[Any]  # (F,) shapely geometries, None for null ones
    fields: dict[str, NDArray[Any]]  # "u", "v", "prob" where the layer has them
    indexed: tuple[NDArray[np.float64], NDArray[np.int64]] | None  # our own file's nodes, edges


def _read_source(p: Path, layer: str | None) -> _Source:
    from pyogrio import list_layers, raw, read_info
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        layers = {str(n): t for n, t in list_layers(p).tolist()}
        name = _choose_layer(p, layers, layer)
        info = read_info(p, layer=name)
        if info["driver"] != "GPKG":
            raise FormatError(f"{p}: not a GeoPackage (GDAL reads it as {info['driver']})")
        meta = dict(info.get("layer_metadata") or {})
        wanted = [f for f in ("u", "v", "prob") if f in set(info["fields"])]
        layer_info, fids, wkb, values = raw.read(
            p, layer=name, columns=wanted, force_2d=True, return_fids=True
        )
        fields = dict(zip(wanted, values, strict=True))
        geoms = shapely.from_wkb(wkb)
        own = (
            name == EDGES_LAYER
            and NODES_LAYER in layers
            and meta.get("l2r_coordinates") in ("crs", "pixel")
        )
        indexed = _indexed(p, geoms, fields) if own else None
    except (DataSourceError, DataLayerError, shapely.errors.GEOSException) as exc:
        raise FormatError(f"{p}: not a readable GeoPackage ({_one_line(exc)})") from exc
    return _Source(name, layer_info["crs"], meta, fids, geoms, fields, indexed)


def read_gpkg(
    path: str | os.PathLike[str],
    *,
    like: Georeference | None = None,
    layer: str | None = None,
) -> RoadGraph:
    """Read a road graph from a GeoPackage (see the module docstring).

    Parameters
    ----------
    path : path
    like : Georeference, optional, keyword-only
        Place the nodes on this raster's pixel grid (a pixel-coordinate file just gets it).
    layer : str, optional, keyword-only
        The line layer to read; default ``edges`` when it holds lines, else the only line layer.

    Returns
    -------
    RoadGraph
        ``(N, 2)`` float64 ``(x, y)`` pixels, ``(E, 2)`` int64 undirected edges in file order,
        ``edge_prob`` from a ``prob`` field, the georeference from the file or ``like``.

    Raises
    ------
    InputFileError
        Missing, a directory or unreadable.
    FormatError
        Not a GeoPackage, corrupt, no (or an ambiguous) line layer, non-line geometries, or an
        invalid CRS / georeference record.
    """
    p = check_input_file(path)
    _check_header(p)
    with _gdal_reading():
        source = _read_source(p, layer)

    prob = source.fields.get("prob")
    if prob is not None and not np.issubdtype(prob.dtype, np.number):
        prob = None  # a foreign text field that happens to be called "prob"
    if source.indexed is not None:
        pts, edges = source.indexed
    else:
        lines, present = _line_parts(source.fids, source.geoms, p, source.layer)
        pts, pairs, owner = join_lines(lines)
        edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        if prob is not None:
            # Every line must have one (as in GeoJSON); edges take their line's value.
            prob = prob[[lines[o][2] for o in owner]] if np.isfinite(prob[present]).all() else None
    if prob is not None and not np.isfinite(prob).all():
        prob = None  # nulls

    meta = source.metadata
    try:
        crs = None
        if meta.get("l2r_coordinates") != "pixel" and source.crs is not None:
            crs = as_crs(source.crs)
        grid = _grid(meta) if crs is not None else None
        georef: Georeference | None
        if grid is not None and like is None:
            pixels, georef = grid.crs_to_pixel(transform_points(pts, crs, grid.crs)), grid
        else:
            pixels, georef = place_points(pts, crs, like=like)
        return RoadGraph.from_edges(
            pixels, edges, None if prob is None else prob.astype(np.float32), georef
        )
    except (GeoreferenceError, GraphError) as exc:
        raise FormatError(f"{p}: {_one_line(exc)}") from exc
