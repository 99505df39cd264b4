"""The JSON graph format read by Sat2Graph's Go APLS evaluator (also used by SAM-Road).

A file is ``[nodes, edges]``: ``nodes`` a list of pseudo ``[lat, lon]`` pairs, ``edges`` a list of
``[i, j]`` node-index pairs (each undirected edge once). Sat2Graph's ``metrics/apls/convert.py``
(songtaohe/Sat2Graph; the same script runs in htcr/sam_road's ``spacenet_metrics/apls.bash``)
maps a City-scale pickle key ``(row, col)`` to::

    lat = 41 - row / 111111
    lon = -71 + (col / 111111) / cos(radians(41))

i.e. 1 px = 1 m on a fake grid whose top-left corner is at (41 N, 71 W). It is not a real
georeference, so graphs read from this format are pixel graphs (``like`` is only attached).

Coordinates follow the pickle convention (see :mod:`linegraph2road.io.pickles`): ``(row, col)``
are pixel indices, so reading gives ``(x, y) = (col + 0.5, row + 0.5)`` (values within 1e-6 of an
integer are snapped to it, undoing the float noise of the formula) and writing inverts it.
SAM-Road's SpaceNet JSONs are converted from its flipped pickles, so their ``row`` is
``400 - row``; pass ``flip_tile_size=400`` to undo (or apply) that flip.
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import FormatError
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._files import read_json
from linegraph2road.io.pickles import rowcol_to_xy, xy_to_rowcol

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference

__all__ = [
    "latlon_to_rowcol",
    "read_sat2graph_json",
    "rowcol_to_latlon",
    "write_sat2graph_json",
]

_LAT0 = 41.0
_LON0 = -71.0
_DEG = 111111.0
_COS = math.cos(math.radians(_LAT0))
_SNAP = 1e-6


def rowcol_to_latlon(rowcol: NDArray[np.float64]) -> NDArray[np.float64]:
    """(N, 2) ``(row, col)`` pixel indices -> (N, 2) Sat2Graph pseudo ``(lat, lon)`` degrees."""
    rc = np.asarray(rowcol, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([_LAT0 - rc[:, 0] / _DEG, _LON0 + (rc[:, 1] / _DEG) / _COS])


def latlon_to_rowcol(latlon: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of :func:`rowcol_to_latlon`: (N, 2) pseudo ``(lat, lon)`` -> ``(row, col)``."""
    ll = np.asarray(latlon, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([(_LAT0 - ll[:, 0]) * _DEG, (ll[:, 1] - _LON0) * _COS * _DEG])


def _fail(path: str, what: str) -> FormatError:
    return FormatError(f"{path}: not a Sat2Graph APLS JSON graph ({what})")


def _number_pairs(items: Any, path: str, what: str) -> NDArray[np.float64]:
    if not isinstance(items, list):
        raise _fail(path, f"{what} must be a list, got {type(items).__name__}")
    for k, item in enumerate(items):
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in item)
        ):
            raise _fail(path, f"{what}[{k}] must be a pair of numbers, got {item!r:.60}")
    return np.array(items, dtype=np.float64).reshape(-1, 2)


def read_sat2graph_json(
    path: str | os.PathLike[str],
    *,
    flip_tile_size: float | None = None,
    like: Georeference | None = None,
) -> RoadGraph:
    """Read a ``[nodes, edges]`` Sat2Graph APLS JSON file.

    Parameters
    ----------
    path : path
        The ``.json`` file.
    flip_tile_size : float, optional, keyword-only
        Set to 400 for JSONs made from SAM-Road SpaceNet pickles (``row`` stored as ``400 - row``).
    like : Georeference, optional, keyword-only
        Attached to the graph unchanged (the format has no real georeference).

    Returns
    -------
    RoadGraph
        Nodes ``(N, 2)`` float64 ``(x, y)`` pixels in file order; edges as in the file, made
        undirected (``i < j``, duplicates and self loops dropped).
    """
    name = str(path)
    data = read_json(path, what="a Sat2Graph APLS JSON graph")
    if not isinstance(data, list) or len(data) != 2:
        kind = f"a list of {len(data)} items" if isinstance(data, list) else type(data).__name__
        raise _fail(name, f"expected a list [nodes, edges], got {kind}")
    latlon = _number_pairs(data[0], name, "nodes")
    raw_edges = _number_pairs(data[1], name, "edges")
    if raw_edges.size and not np.all(raw_edges == np.rint(raw_edges)):
        raise _fail(name, "edges must hold integer node indices")
    edges = raw_edges.astype(np.int64)
    if edges.size and (edges.min() < 0 or edges.max() >= len(latlon)):
        raise _fail(name, f"an edge refers to a node outside 0..{len(latlon) - 1}")
    rc = latlon_to_rowcol(latlon)
    snapped = np.rint(rc)
    rc = np.where(np.abs(rc - snapped) <= _SNAP, snapped, rc)
    if flip_tile_size is not None:
        rc[:, 0] = float(flip_tile_size) - rc[:, 0]
    return RoadGraph.from_edges(rowcol_to_xy(rc), edges, georef=like)


def write_sat2graph_json(
    graph: RoadGraph,
    path: str | os.PathLike[str],
    *,
    flip_tile_size: float | None = None,
) -> None:
    """Write ``graph`` as a Sat2Graph APLS JSON file (atomic).

    Nodes are written in graph order as pseudo ``[lat, lon]`` (see the module docstring), edges
    as ``[i, j]`` with ``i < j`` in graph order. The georeference, if any, is not stored.
    """
    rc, _ = xy_to_rowcol(graph.nodes)
    if flip_tile_size is not None:
        rc[:, 0] = float(flip_tile_size) - rc[:, 0]
    payload = [rowcol_to_latlon(rc).tolist(), graph.edges.tolist()]
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
