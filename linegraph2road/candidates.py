"""Candidate edges: every vertex pair within ``d_nei`` pixels (paper section 3.4).

``E_nei = {(i, j) | i, j in V, ||pos(i) - pos(j)||_2 <= d_nei}``, found with a KD-tree
(:class:`scipy.spatial.cKDTree`) in O(n log n + |E_nei|) instead of the O(n^2) distance matrix.
Points follow the library convention: ``(x, y) = (col, row)`` in float64 pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from linegraph2road.georef import Georeference

__all__ = ["DEFAULT_D_NEI", "candidate_edges", "candidate_graph"]

#: Paper's neighbourhood radius for candidate edges, in pixels (d_nei = 4 d_r = 64).
DEFAULT_D_NEI = 64.0


def _check_points(points: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(points, dtype=np.float64)
    if p.size == 0:
        p = p.reshape(0, 2)
    if p.ndim != 2 or p.shape[1] != 2:
        raise GraphError(f"points must have shape (N, 2) (x, y) pixels, got {p.shape}")
    if not np.isfinite(p).all():
        raise GraphError("points contain NaN or infinite coordinates")
    return p


def candidate_edges(points: ArrayLike, *, d_nei: float = DEFAULT_D_NEI) -> NDArray[np.int64]:
    """All vertex pairs at most ``d_nei`` pixels apart.

    Parameters
    ----------
    points : (N, 2) float64
        Vertex positions ``(x, y)`` in pixels.
    d_nei : float
        Neighbourhood radius in pixels (default 64, the paper's value); pairs at distance
        ``<= d_nei`` are candidates, as in the paper's definition of ``E_nei``.

    Returns
    -------
    (E, 2) int64
        Pairs ``(i, j)`` with ``i < j``, unique, sorted lexicographically. Coincident points
        (distance 0) form a pair too.

    The distance is ``numpy.hypot(dx, dy)``, decided exactly at the boundary: the KD-tree is
    queried slightly wider and its pairs are filtered with ``hypot``, so a pair at exactly
    ``d_nei`` (integer arc positions make these common in training labels) is always kept, not
    lost to the tree's own rounding.
    """
    p = _check_points(points)
    d = float(d_nei)
    if not np.isfinite(d) or d < 0:
        raise GraphError(f"d_nei must be a finite distance >= 0 pixels, got {d_nei!r}")
    if len(p) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    slack = d * 1e-9 + 1e-9
    pairs = cKDTree(p).query_pairs(r=d + slack, output_type="ndarray").astype(np.int64)
    delta = p[pairs[:, 1]] - p[pairs[:, 0]]
    pairs = pairs[np.hypot(delta[:, 0], delta[:, 1]) <= d]
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(pairs, axis=1)  # query_pairs already gives i < j; make it a guarantee
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return np.ascontiguousarray(pairs[order])


def candidate_graph(
    points: ArrayLike, *, d_nei: float = DEFAULT_D_NEI, georef: Georeference | None = None
) -> RoadGraph:
    """The candidate graph ``G = (V, E_nei)``: the points joined by :func:`candidate_edges`.

    Parameters
    ----------
    points : (N, 2) float64
        Vertex positions ``(x, y)`` in pixels (e.g. ``coupled_nms(...).points``).
    d_nei : float
        Neighbourhood radius in pixels (default 64).
    georef : Georeference or None
        Passed on to the graph.

    Returns
    -------
    RoadGraph
        Nodes = ``points`` in their order, edges = candidate edges (sorted, ``i < j``), no
        ``edge_prob``.
    """
    p = _check_points(points)
    return RoadGraph(p, candidate_edges(p, d_nei=d_nei), georef=georef)
