"""Road-graph readers and writers, one module per format.

========================  ============================================  ==========================
format                    what                                          module
========================  ============================================  ==========================
``"geojson"``             RFC 7946 LineStrings (lon/lat or pixels)      :mod:`.geojson`
``"graphml"``             osmnx-style GraphML (MultiDiGraph)            :mod:`.graphml`
``"cityscale"``           City-/Global-scale ``{(row, col): [...]}``    :mod:`.pickles`
``"samroad-spacenet"``    SAM-Road SpaceNet pickle, keys flipped        :mod:`.pickles`
``"sat2graph-json"``      Sat2Graph Go APLS ``[nodes, edges]`` JSON     :mod:`.sat2graph_json`
``"gpickle"``             networkx graph pickle (CosmiQ APLS)           :mod:`.nx`
``"gpkg"``                GeoPackage, ``edges`` and ``nodes`` layers    :mod:`.gpkg`
``"geoparquet"``          GeoParquet 1.1 edges table (WKB LineStrings)  :mod:`.geoparquet`
========================  ============================================  ==========================

Every reader returns a :class:`~linegraph2road.graph.RoadGraph` in library pixel coordinates
(``(x, y) = (col, row)``, origin at the top-left corner of the top-left pixel) and raises
:class:`~linegraph2road.errors.InputFileError` for a missing path or a directory and
:class:`~linegraph2road.errors.FormatError` for content it cannot read. Every writer is atomic.
Pickles are only ever read through :func:`safe_load_pickle`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from linegraph2road.errors import FormatError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import check_writable
from linegraph2road.io._files import check_input_file, read_json
from linegraph2road.io._unpickle import safe_load_pickle
from linegraph2road.io.geojson import read_geojson, write_geojson
from linegraph2road.io.geoparquet import read_geoparquet, write_geoparquet
from linegraph2road.io.gpkg import read_gpkg, write_gpkg
from linegraph2road.io.graphml import read_graphml, write_graphml
from linegraph2road.io.nx import from_networkx, read_gpickle, to_networkx, write_gpickle
from linegraph2road.io.pickles import (
    read_cityscale_pickle,
    read_samroad_spacenet_pickle,
    write_cityscale_pickle,
    write_samroad_spacenet_pickle,
)
from linegraph2road.io.sat2graph_json import read_sat2graph_json, write_sat2graph_json

__all__ = [
    "GRAPH_FORMATS",
    "check_writable",
    "from_networkx",
    "guess_format",
    "read_graph",
    "safe_load_pickle",
    "to_networkx",
    "write_graph",
]

GRAPH_FORMATS: tuple[str, ...] = (
    "geojson",
    "graphml",
    "cityscale",
    "samroad-spacenet",
    "sat2graph-json",
    "gpickle",
    "gpkg",
    "geoparquet",
)

_READERS: dict[str, Callable[..., RoadGraph]] = {
    "geojson": read_geojson,
    "graphml": read_graphml,
    "cityscale": read_cityscale_pickle,
    "samroad-spacenet": read_samroad_spacenet_pickle,
    "sat2graph-json": read_sat2graph_json,
    "gpickle": read_gpickle,
    "gpkg": read_gpkg,
    "geoparquet": read_geoparquet,
}
_WRITERS: dict[str, Callable[..., None]] = {
    "geojson": write_geojson,
    "graphml": write_graphml,
    "cityscale": write_cityscale_pickle,
    "samroad-spacenet": write_samroad_spacenet_pickle,
    "sat2graph-json": write_sat2graph_json,
    "gpickle": write_gpickle,
    "gpkg": write_gpkg,
    "geoparquet": write_geoparquet,
}
_EXTENSIONS = {
    ".geojson": "geojson",
    ".graphml": "graphml",
    ".p": "cityscale",
    ".pickle": "cityscale",
    ".pkl": "cityscale",
    ".gpickle": "gpickle",
    ".gpkg": "gpkg",
    ".parquet": "geoparquet",
    ".geoparquet": "geoparquet",
}
_FORMAT_LIST = ", ".join(GRAPH_FORMATS)


def _sniff_json(path: Path) -> str:
    p = Path(path)
    data = read_json(p, what="a JSON graph (GeoJSON or Sat2Graph JSON)")
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return "geojson"
    if isinstance(data, list) and len(data) == 2 and all(isinstance(x, list) for x in data):
        return "sat2graph-json"
    raise FormatError(
        f"{p}: cannot tell the graph format of this JSON (neither GeoJSON nor a Sat2Graph "
        f"[nodes, edges] list); pass format= one of: {_FORMAT_LIST}"
    )


def guess_format(path: str | os.PathLike[str]) -> str:
    """The graph format of ``path`` from its extension (``.json`` files are sniffed).

    ``.p``/``.pickle``/``.pkl`` are taken as City-scale pickles; SAM-Road SpaceNet pickles share
    those extensions and need ``format="samroad-spacenet"``.

    Raises
    ------
    FormatError
        Unknown extension or unrecognised JSON; the message lists the formats.
    InputFileError
        A ``.json`` path that cannot be read for sniffing.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix == ".json":
        return _sniff_json(p)
    raise FormatError(
        f"{p}: cannot tell the graph format from the extension {suffix or '(none)'!r}; "
        f"pass format= one of: {_FORMAT_LIST}"
    )


def _check_format(fmt: str) -> str:
    if fmt not in GRAPH_FORMATS:
        raise FormatError(f"unknown graph format {fmt!r}; expected one of: {_FORMAT_LIST}")
    return fmt


def read_graph(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    like: Georeference | None = None,
    **options: Any,
) -> RoadGraph:
    """Read a road graph in any of :data:`GRAPH_FORMATS`.

    Parameters
    ----------
    path : path
    format : str, optional
        One of :data:`GRAPH_FORMATS`; guessed from the file by :func:`guess_format` when omitted.
    like : Georeference, optional, keyword-only
        The raster grid to place the graph on (pixel formats just attach it).
    **options
        Passed to the format's reader (e.g. ``tile_size`` for ``"samroad-spacenet"``,
        ``expand_geometry`` for ``"gpickle"``/``"graphml"``, ``layer`` for ``"gpkg"``).

    Returns
    -------
    RoadGraph
        ``(N, 2)`` float64 ``(x, y)`` pixel nodes, ``(E, 2)`` int64 undirected edges.
    """
    check_input_file(path)
    fmt = _check_format(format) if format is not None else guess_format(path)
    return _READERS[fmt](path, like=like, **options)


def write_graph(
    graph: RoadGraph, path: str | os.PathLike[str], format: str | None = None, **options: Any
) -> None:
    """Write ``graph`` to ``path`` atomically in ``format`` (guessed from the extension if None).

    A ``.json`` path is ambiguous (GeoJSON or Sat2Graph JSON) and needs ``format``.

    Raises
    ------
    FormatError
        Unknown or ambiguous format.
    """
    if format is not None:
        fmt = _check_format(format)
    elif Path(path).suffix.lower() == ".json":
        raise FormatError(
            f"{path}: a .json file can be GeoJSON or Sat2Graph JSON; pass format='geojson' or "
            "format='sat2graph-json' (or use the .geojson extension)"
        )
    else:
        fmt = guess_format(path)
    _WRITERS[fmt](graph, path, **options)
