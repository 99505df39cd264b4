"""City-scale / Global-scale graph pickles and SAM-Road's SpaceNet pickles.

Both store a graph as a symmetric adjacency dict ``{(row, col): [(row, col), ...]}``: each key
is a vertex, each value the list of its neighbours (Sat2Graph's label format, 1 px = 1 m).

Coordinates
-----------
The stored ``(row, col)`` are *pixel indices*, so they name pixel centres: reading gives the
library point ``(x, y) = (col + 0.5, row + 0.5)``; writing gives ``row = y - 0.5``,
``col = x - 0.5``. They are written as Python ``int`` when every coordinate of the graph is
integral (within 1e-6 px) and as ``float`` otherwise, so no precision is lost.

SAM-Road's SpaceNet pickles (``{name}__gt_graph.p``) flip the first key component:
``key = (tile_size - row, col)`` with ``tile_size = 400``. Verified in htcr/sam_road:
``spacenet/generate_labels.py`` draws vertex ``n`` at image ``(x, y) = (n[1], 400 - n[0])``, and
``inferencer.py`` converts ground truth with ``rc = (400 - n[0], n[1])`` and saves predictions
with ``key = (400 - r, c)``.

Reading is tolerant: an asymmetric adjacency is made symmetric (union of both directions),
neighbours that are not keys become nodes, self loops are dropped, and node order is the order of
first appearance (keys in dict order, then neighbours). Every pickle is read through
:func:`~linegraph2road.io._unpickle.safe_load_pickle`, which refuses anything but plain data.
Files are written with pickle protocol 2, readable by the Python 2 and Python 3 evaluators;
isolated nodes are written as keys with empty neighbour lists.
"""

from __future__ import annotations

import numbers
import os
import pickle
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import FormatError, GraphError
from linegraph2road.graph import RoadGraph
from linegraph2road.io._atomic import atomic_path
from linegraph2road.io._unpickle import safe_load_pickle

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference

__all__ = [
    "SPACENET_TILE_SIZE",
    "graph_from_adjacency",
    "graph_to_adjacency",
    "read_cityscale_pickle",
    "read_samroad_spacenet_pickle",
    "rowcol_to_xy",
    "write_cityscale_pickle",
    "write_samroad_spacenet_pickle",
    "xy_to_rowcol",
]

SPACENET_TILE_SIZE = 400
_INTEGRAL_TOL = 1e-6

_EXPECTED = "expected a dict {(row, col): [neighbours]}"


def rowcol_to_xy(rowcol: NDArray[np.float64]) -> NDArray[np.float64]:
    """(N, 2) pixel-index ``(row, col)`` -> (N, 2) library ``(x, y)`` of the pixel centres."""
    rc = np.asarray(rowcol, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([rc[:, 1] + 0.5, rc[:, 0] + 0.5])


def xy_to_rowcol(xy: NDArray[np.float64]) -> tuple[NDArray[np.float64], bool]:
    """(N, 2) library ``(x, y)`` -> (N, 2) pixel-index ``(row, col)`` and whether all are integral.

    When every value is within 1e-6 of an integer the returned array holds the rounded values.
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    rc = np.column_stack([pts[:, 1] - 0.5, pts[:, 0] - 0.5])
    rounded = np.rint(rc)
    integral = bool(np.all(np.abs(rc - rounded) <= _INTEGRAL_TOL))
    return (rounded if integral else rc), integral


def _as_pair(value: Any, source: str, what: str) -> tuple[float, float]:
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(
            isinstance(v, numbers.Real | np.integer | np.floating) and not isinstance(v, bool)
            for v in value
        )
    ):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise FormatError(
            f"{source}: not a City-scale graph pickle ({what} must be a (row, col) pair of "
            f"numbers, got {shown})"
        )
    pair = (float(value[0]), float(value[1]))
    if not (np.isfinite(pair[0]) and np.isfinite(pair[1])):
        raise FormatError(f"{source}: {what} {pair} is not finite")
    return pair


def graph_from_adjacency(
    adjacency: Any,
    *,
    flip_tile_size: float | None = None,
    georef: Georeference | None = None,
    source: str = "<adjacency>",
) -> RoadGraph:
    """Build a graph from a Sat2Graph adjacency dict ``{(row, col): [(row, col), ...]}``.

    Parameters
    ----------
    adjacency : dict
        Keys and neighbours are ``(row, col)`` pixel indices (ints, floats or numpy scalars).
    flip_tile_size : float, optional, keyword-only
        When set, keys are SAM-Road SpaceNet style ``(flip_tile_size - row, col)``.
    georef : Georeference, optional, keyword-only
        Attached to the result unchanged.
    source : str, keyword-only
        Names the data in error messages.

    Returns
    -------
    RoadGraph
        Nodes ``(x, y) = (col + 0.5, row + 0.5)`` in order of first appearance; edges the union of
        both adjacency directions, self loops dropped.
    """
    if not isinstance(adjacency, dict):
        raise FormatError(
            f"{source}: not a City-scale graph pickle ({_EXPECTED}, got {type(adjacency).__name__})"
        )
    index: dict[tuple[float, float], int] = {}
    edges: list[tuple[int, int]] = []

    def node_id(key: tuple[float, float]) -> int:
        i = index.get(key)
        if i is None:
            i = index[key] = len(index)
        return i

    for key in adjacency:
        node_id(_as_pair(key, source, "a key"))
    for key, neighbours in adjacency.items():
        i = index[_as_pair(key, source, "a key")]
        if not isinstance(neighbours, list | tuple | set | frozenset):
            raise FormatError(
                f"{source}: not a City-scale graph pickle (neighbours of {key!r} must be a list, "
                f"got {type(neighbours).__name__})"
            )
        for nb in neighbours:
            edges.append((i, node_id(_as_pair(nb, source, "a neighbour"))))

    rc = np.array(list(index), dtype=np.float64).reshape(-1, 2)
    if flip_tile_size is not None:
        rc[:, 0] = float(flip_tile_size) - rc[:, 0]
    return RoadGraph.from_edges(
        rowcol_to_xy(rc), np.array(edges, dtype=np.int64).reshape(-1, 2), georef=georef
    )


def graph_to_adjacency(
    graph: RoadGraph, *, flip_tile_size: float | None = None
) -> dict[tuple[Any, Any], list[tuple[Any, Any]]]:
    """The Sat2Graph adjacency dict of ``graph`` (inverse of :func:`graph_from_adjacency`).

    Keys are in node order, neighbours in ascending node order; values are Python ints when all
    coordinates are integral pixel indices, floats otherwise.

    Raises
    ------
    GraphError
        When two nodes share a position: the format cannot tell them apart.
    """
    rc, integral = xy_to_rowcol(graph.nodes)
    if flip_tile_size is not None:
        rc[:, 0] = float(flip_tile_size) - rc[:, 0]
    cast = int if integral else float
    keys = [(cast(r), cast(c)) for r, c in rc.tolist()]
    if len(set(keys)) != len(keys):
        seen: dict[tuple[Any, Any], int] = {}
        for i, k in enumerate(keys):
            if k in seen:
                raise GraphError(
                    f"nodes {seen[k]} and {i} share the position {k} (row, col); a Sat2Graph "
                    "adjacency dict cannot store both: merge them first"
                )
            seen[k] = i
    return {keys[i]: [keys[j] for j in nbs] for i, nbs in enumerate(graph.neighbors())}


def read_cityscale_pickle(
    path: str | os.PathLike[str], *, like: Georeference | None = None
) -> RoadGraph:
    """Read a City-scale / Global-scale graph pickle ``{(row, col): [neighbours]}``.

    Parameters
    ----------
    path : path
        The ``.p`` / ``.pickle`` file (Python 2 or 3 pickle, any protocol).
    like : Georeference, optional, keyword-only
        The georeference of the tile the pickle belongs to; attached to the graph unchanged
        (the pickle itself stores pixels only).

    Returns
    -------
    RoadGraph
        Nodes ``(x, y) = (col + 0.5, row + 0.5)`` float64 pixels.
    """
    data = safe_load_pickle(path)
    return graph_from_adjacency(data, georef=like, source=str(path))


def read_samroad_spacenet_pickle(
    path: str | os.PathLike[str],
    *,
    tile_size: float = SPACENET_TILE_SIZE,
    like: Georeference | None = None,
) -> RoadGraph:
    """Read a SAM-Road SpaceNet graph pickle, whose keys are ``(tile_size - row, col)``.

    See :func:`read_cityscale_pickle`; ``tile_size`` is 400 for SAM-Road's 1 m SpaceNet tiles.
    """
    data = safe_load_pickle(path)
    return graph_from_adjacency(data, flip_tile_size=tile_size, georef=like, source=str(path))


def _dump(adjacency: dict[Any, Any], path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(adjacency, fh, protocol=2)


def write_cityscale_pickle(graph: RoadGraph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` as a City-scale pickle (protocol 2, atomic); see the module docstring."""
    _dump(graph_to_adjacency(graph), path)


def write_samroad_spacenet_pickle(
    graph: RoadGraph, path: str | os.PathLike[str], *, tile_size: float = SPACENET_TILE_SIZE
) -> None:
    """Write ``graph`` as a SAM-Road SpaceNet pickle, keys ``(tile_size - row, col)`` (atomic)."""
    _dump(graph_to_adjacency(graph, flip_tile_size=tile_size), path)
