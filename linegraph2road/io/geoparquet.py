"""GeoParquet road graphs: one table of edges (LineStrings), the format users load at scale.

Written with pyarrow (the Parquet library; pyogrio's bundled GDAL has no Parquet driver, and
geopandas would add pandas to the install for one writer): a table of WKB LineStrings plus the
``geo`` file metadata of the GeoParquet 1.1 specification (``encoding: WKB``, ``geometry_types``,
``bbox``, ``crs`` as PROJJSON, or ``null`` for pixel coordinates). geopandas, DuckDB, GDAL >= 3.8
and QGIS read it.

Columns (one row per edge, in edge order, drawn from node ``u`` to node ``v``)
    ``u``, ``v`` (int64 node ids, ``u < v``), ``prob`` (float32, when the graph has edge
    probabilities), ``length`` (float64: metres for a georeferenced graph, pixels otherwise),
    ``geometry`` (WKB LineString in the graph's CRS, or pixel ``(x, y)``).

File metadata ``l2r`` (JSON): ``coordinates`` (``"crs"`` or ``"pixel"``), ``crs`` and
``transform`` (the pixel grid, as in GeoPackage files), ``length_unit``, ``nodes`` (node count).
A Parquet file holds one table, so nodes are the edges' end points: isolated nodes are not
stored (extracted graphs have none) and reading renumbers the nodes that remain.

Reading takes a file written here back exactly (nodes by ``u``/``v``, edge order, ``prob``,
georeference); any other GeoParquet file of (Multi)LineStrings is read as lines, every vertex a
node (as :mod:`.gpkg` reads foreign files), in its CRS placed on ``like``'s grid when given.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from linegraph2road.errors import FormatError, GeoreferenceError, GraphError
from linegraph2road.georef import Georeference, as_crs, transform_points
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._files import check_input_file
from linegraph2road.io.geojson import join_lines
from linegraph2road.io.nx import metric_edge_lengths, place_points

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["GEOPARQUET_VERSION", "read_geoparquet", "write_geoparquet"]

GEOPARQUET_VERSION = "1.1.0"


def write_geoparquet(graph: RoadGraph, path: str | os.PathLike[str]) -> None:
    """Write ``graph``'s edges as GeoParquet (atomic; see the module docstring).

    Parameters
    ----------
    graph : RoadGraph
        ``(N, 2)`` float64 pixel nodes, ``(E, 2)`` int64 edges, optional ``edge_prob``; written
        in its georeference's CRS, or in pixels without one.
    path : path
        Output ``.parquet``; replaced only once the whole file is written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    g = graph.georef
    pts = graph.nodes if g is None else g.pixel_to_crs(graph.nodes)
    u, v = graph.edges[:, 0], graph.edges[:, 1]
    lines = shapely.linestrings(np.stack([pts[u], pts[v]], axis=1).reshape(-1, 2, 2))
    columns: dict[str, Any] = {"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64())}
    if graph.edge_prob is not None:
        columns["prob"] = pa.array(graph.edge_prob, pa.float32())
    columns["length"] = pa.array(metric_edge_lengths(graph), pa.float64())
    columns["geometry"] = pa.array(shapely.to_wkb(lines), pa.binary())
    bbox = (
        [
            float(x)
            for x in (
                *pts[graph.edges].reshape(-1, 2).min(0),
                *pts[graph.edges].reshape(-1, 2).max(0),
            )
        ]
        if graph.num_edges
        else []
    )
    geo_column: dict[str, Any] = {"encoding": "WKB", "geometry_types": ["LineString"]}
    if bbox:
        geo_column["bbox"] = bbox
    l2r: dict[str, Any] = {"nodes": graph.num_nodes}
    if g is None:
        geo_column["crs"] = None  # unknown: pixel coordinates
        l2r.update(coordinates="pixel", length_unit="px")
    else:
        geo_column["crs"] = g.crs.to_json_dict()
        record = g.to_dict()
        l2r.update(
            coordinates="crs", crs=record["crs"], transform=record["transform"], length_unit="m"
        )
    geo = {
        "version": GEOPARQUET_VERSION,
        "primary_column": "geometry",
        "columns": {"geometry": geo_column},
    }
    table = pa.table(columns).replace_schema_metadata(
        {b"geo": json.dumps(geo).encode(), b"l2r": json.dumps(l2r).encode()}
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _read_table(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta = table.schema.metadata or {}
    try:
        geo = json.loads(meta.get(b"geo", b"{}"))
        l2r = json.loads(meta.get(b"l2r", b"{}"))
    except ValueError as exc:
        raise FormatError(f"{path}: damaged GeoParquet metadata ({exc})") from exc
    if not isinstance(geo, dict) or "primary_column" not in geo:
        raise FormatError(f"{path}: a Parquet file without GeoParquet 'geo' metadata")
    return table, geo, l2r if isinstance(l2r, dict) else {}


def _own(table: Any, geoms: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.int64]] | None:
    """Nodes and edges of a file written here (None when ids and geometries disagree)."""
    names = set(table.column_names)
    if not {"u", "v"} <= names:
        return None
    u = np.asarray(table.column("u").to_numpy(), dtype=np.int64)
    v = np.asarray(table.column("v").to_numpy(), dtype=np.int64)
    if len(u) and (min(u.min(), v.min()) < 0):
        return None
    if not np.all(shapely.get_num_coordinates(geoms) == 2):
        return None
    ends = shapely.get_coordinates(geoms).reshape(-1, 2, 2)
    ids, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    pts = np.zeros((len(ids), 2))
    pts[inverse[: len(u)]] = ends[:, 0]
    pts[inverse[len(u) :]] = ends[:, 1]
    if not (
        np.array_equal(pts[inverse[: len(u)]], ends[:, 0])
        and np.array_equal(pts[inverse[len(u) :]], ends[:, 1])
    ):
        return None
    return pts, inverse.reshape(2, -1).T.astype(np.int64)


def read_geoparquet(path: str | os.PathLike[str], *, like: Georeference | None = None) -> RoadGraph:
    """Read a road graph from GeoParquet (see the module docstring).

    Parameters
    ----------
    path : path
    like : Georeference, optional, keyword-only
        Place the nodes on this raster's pixel grid.

    Returns
    -------
    RoadGraph

    Raises
    ------
    InputFileError
        Missing or a directory.
    FormatError
        Not (Geo)Parquet, no line geometry, a damaged CRS or grid record.
    """
    p = check_input_file(path)
    table, geo, l2r = _read_table(p)
    column = geo["primary_column"]
    info = geo.get("columns", {}).get(column, {})
    if column not in table.column_names or info.get("encoding", "WKB").upper() != "WKB":
        raise FormatError(f"{p}: no WKB geometry column {column!r} (only WKB is read)")
    try:
        geoms = shapely.from_wkb(np.asarray(table.column(column).to_pylist(), dtype=object))
    except shapely.errors.GEOSException as exc:
        raise FormatError(f"{p}: damaged WKB geometries ({exc})") from exc
    prob = None
    if "prob" in table.column_names:
        values = np.asarray(table.column("prob").to_numpy(zero_copy_only=False), dtype=np.float64)
        prob = values if np.isfinite(values).all() else None
    own = _own(table, geoms) if l2r.get("coordinates") in ("crs", "pixel") else None
    if own is not None:
        pts, edges = own
    else:
        lines: list[tuple[NDArray[np.float64], dict[str, Any], int]] = []
        for k, geom in enumerate(geoms):
            if geom is None or shapely.is_empty(geom):
                continue
            if geom.geom_type not in ("LineString", "MultiLineString"):
                raise FormatError(
                    f"{p}: row {k} is a {geom.geom_type}; only (Multi)LineString road centerlines "
                    "can be read as a graph"
                )
            for part in shapely.get_parts(geom):
                lines.append((shapely.get_coordinates(part), {}, k))
        pts, pairs, owner = join_lines(lines)
        edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        if prob is not None:
            prob = prob[[lines[o][2] for o in owner]]
    try:
        crs = None
        if l2r.get("coordinates") != "pixel":
            raw = info.get("crs", "OGC:CRS84")
            crs = None if raw is None else as_crs(json.dumps(raw) if isinstance(raw, dict) else raw)
        grid: Georeference | None = None
        if crs is not None and l2r.get("coordinates") == "crs" and like is None:
            grid = Georeference.from_dict({"crs": l2r["crs"], "transform": l2r["transform"]})
        georef: Georeference | None
        if grid is not None:
            pixels, georef = grid.crs_to_pixel(transform_points(pts, crs, grid.crs)), grid
        else:
            pixels, georef = place_points(pts, crs, like=like)
        return RoadGraph.from_edges(
            pixels, edges, None if prob is None else prob.astype(np.float32), georef
        )
    except (GeoreferenceError, GraphError, KeyError) as exc:
        raise FormatError(f"{p}: {exc}") from exc
