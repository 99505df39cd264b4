"""GraphML road graphs following osmnx's conventions.

Writing
-------
The graph is stored as a networkx ``MultiDiGraph`` with both directions of every undirected edge
(osmnx's representation of a two-way street), exactly as ``osmnx.save_graphml`` stores its
graphs, so that ``osmnx.load_graphml`` reads it and ``osmnx.graph_to_gdfs`` converts it:

* every attribute value is written as a string (osmnx writes strings and its loader converts
  them back by name: ``x``, ``y``, ``length`` to float, ``oneway``/``reversed`` from
  ``"True"``/``"False"``); floats as ``repr``, so they read back exactly;
* nodes ``0..N-1`` with ``x``, ``y`` in the georeference's CRS (pixels for a pixel graph) and
  ``street_count`` (the degree);
* edges with ``oneway`` (False), ``reversed`` (False for ``i -> j``, True for ``j -> i``),
  ``length`` in metres (pixels for a pixel graph: see ``l2r_length_unit``) and ``prob`` when the
  graph has edge probabilities;
* graph attributes ``crs`` (the CRS; for a pixel graph the engineering CRS
  :data:`~linegraph2road.georef.PIXEL_CRS`, which osmnx and geopandas accept and our readers
  read back as pixels), ``l2r_coordinates`` (``"crs"`` or ``"pixel"``), ``l2r_transform`` (JSON
  ``[a, b, c, d, e, f]``, the exact pixel grid), ``l2r_transform_crs`` (the CRS of that grid:
  a graph that a tool reprojected, changing ``crs`` only, no longer uses the transform) and
  ``l2r_length_unit`` (``"m"`` or ``"px"``).

Reading
-------
Any GraphML file, through :func:`linegraph2road.io.nx.from_networkx`: osmnx's files store ``x``,
``y``, ``length`` as strings and ``geometry`` as WKT, which is handled; two-way pairs collapse to
one undirected edge.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import networkx as nx

from linegraph2road.errors import FormatError, GeoreferenceError, GraphError
from linegraph2road.georef import PIXEL_CRS
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._files import check_input_file
from linegraph2road.io.nx import from_networkx, to_networkx

if TYPE_CHECKING:
    from linegraph2road.georef import Georeference

__all__ = ["read_graphml", "to_osmnx_multidigraph", "write_graphml"]


def to_osmnx_multidigraph(graph: RoadGraph) -> nx.MultiDiGraph:
    """The osmnx-style ``MultiDiGraph`` that :func:`write_graphml` writes (attributes above,
    values typed: numbers and booleans, not yet strings)."""
    G = to_networkx(graph, coords="pixel" if graph.georef is None else "crs")
    D = nx.MultiDiGraph()
    for key, value in G.graph.items():
        D.graph[key] = json.dumps(value) if isinstance(value, list) else value
    if graph.georef is None:
        D.graph["crs"] = PIXEL_CRS.to_wkt()
    else:  # the CRS the transform belongs to: tools that reproject (osmnx) change "crs" only
        D.graph["l2r_transform_crs"] = D.graph["crs"]
    D.add_nodes_from((n, {**data, "street_count": G.degree(n)}) for n, data in G.nodes(data=True))
    for u, v, data in G.edges(data=True):
        D.add_edge(u, v, key=0, oneway=False, reversed=False, **data)
        D.add_edge(v, u, key=0, oneway=False, reversed=True, **data)
    return D


def _text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def write_graphml(graph: RoadGraph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` as osmnx-style GraphML (atomic); see the module docstring."""
    D = to_osmnx_multidigraph(graph)
    D.graph.update({k: _text(v) for k, v in D.graph.items()})
    for _, data in D.nodes(data=True):
        data.update({k: _text(v) for k, v in data.items()})
    for _, _, data in D.edges(data=True):
        data.update({k: _text(v) for k, v in data.items()})
    with atomic_path(path) as tmp:
        nx.write_graphml(D, tmp)


def read_graphml(
    path: str | os.PathLike[str],
    *,
    like: Georeference | None = None,
    expand_geometry: bool = True,
) -> RoadGraph:
    """Read a GraphML road graph (osmnx or this module's).

    Parameters
    ----------
    path : path
    like : Georeference, optional, keyword-only
        Place the nodes on this raster's pixel grid.
    expand_geometry : bool, keyword-only
        Turn interior vertices of edge ``geometry`` (WKT) into degree-2 nodes.

    Returns
    -------
    RoadGraph
        ``(N, 2)`` float64 ``(x, y)`` pixels; see :func:`~linegraph2road.io.nx.from_networkx`.
    """
    p = check_input_file(path)
    try:
        G = nx.read_graphml(p)
    except ET.ParseError as exc:
        raise FormatError(f"{p}: not a GraphML file (XML error: {exc})") from exc
    except (nx.NetworkXError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{p}: not a readable GraphML graph ({exc})") from exc
    try:
        return from_networkx(G, like=like, expand_geometry=expand_geometry)
    except (GraphError, GeoreferenceError) as exc:
        raise FormatError(f"{p}: {exc}") from exc
