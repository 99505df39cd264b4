"""Algorithm 4 (paper, appendix 0.E): random points along the graph's paths between keypoints.

The graph is cut into *paths* at its *anchor* nodes (keypoints, overpass endpoints): a path is a
polyline ``A = n_0, n_1, ..., n_k = B`` whose interior nodes have degree 2 and are not anchors.
A closed loop with no anchor at all is opened at its lowest node id, which becomes an extra
anchor. Along each path (length ``L``, measured along the polyline) Algorithm 4 returns arc
positions ``D`` from ``A``::

    p = 0
    while p + 2 d_r - 1 < L:
        u ~ U(d_r, 2 d_r - 1)
        if p + u + d_r - 1 < L:
            p = p + u; append p

We follow the pseudo-code's ``U(d_r, 2 d_r - 1)``, the Python idiom ``randint(d_r, 2 d_r)``:
``u`` is an *integer* number of pixels ``d_r, d_r + 1, ..., d_r + floor(d_r - 1)`` (16..31 for
``d_r = 16``); the text's ``[d_r, 2 d_r]`` is the same range written loosely. A draw rejected by
the inner test is redrawn; we draw directly from the accepted values ``u < L - p - d_r + 1``,
which has the same distribution and needs one draw per point.

Consequences (checked by the tests): consecutive gaps from ``A`` are in ``[d_r, 2 d_r - 1]``; the
last gap, from the last point to ``B``, is in ``(d_r - 1, 2 d_r - 1]`` -- it can be up to one
pixel *shorter* than ``d_r`` (the inner test only guarantees ``L - p > d_r - 1``); a path no
longer than ``2 d_r - 1`` gets no point and its only gap is ``L``.

Every point remembers its path and its arc position, which is how candidate labels know which
points are consecutive along the ground truth (:mod:`~linegraph2road.data_prep.candidate_labels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import GraphError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["Interpolation", "algorithm4_positions", "graph_paths", "interpolate_paths"]


def _check_d_r(d_r: float) -> float:
    d = float(d_r)
    if not (math.isfinite(d) and d >= 1.0):
        raise GraphError(f"d_r must be a finite distance >= 1 pixel, got {d_r!r}")
    return d


def algorithm4_positions(
    length: float, *, d_r: float = 16.0, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Algorithm 4 on one line of ``length`` pixels: the sampled arc positions ``D``.

    Parameters
    ----------
    length : float
        Line length ``L`` in pixels (>= 0).
    d_r : float, default 16
        Road suppression radius of the coupled NMS, pixels (>= 1).
    rng : numpy.random.Generator
        Source of the draws (one ``rng.random()`` per point).

    Returns
    -------
    (K,) float64 increasing positions in ``(0, L)``, measured from the line's start.
    """
    d = _check_d_r(d_r)
    return _positions(float(length), d, rng.random(int(max(length, 0.0) // d) + 1))


def _positions(length: float, d_r: float, u01: NDArray[np.float64]) -> NDArray[np.float64]:
    kfull = math.floor(d_r - 1.0 + 1e-9)  # u = d_r + k, k = 0..kfull, so u <= 2 d_r - 1
    out: list[float] = []
    p = 0.0
    i = 0
    while p + 2.0 * d_r - 1.0 < length:
        room = length - p - 2.0 * d_r + 1.0  # accepted k satisfy k < room (room > 0)
        kmax = min(kfull, math.ceil(room) - 1)
        p += d_r + math.floor(float(u01[i]) * (kmax + 1))
        i += 1
        out.append(p)
    return np.asarray(out, dtype=np.float64)


def graph_paths(
    graph: RoadGraph, anchors: ArrayLike
) -> tuple[list[NDArray[np.int64]], NDArray[np.int64]]:
    """Cut the graph into paths between anchor nodes.

    Parameters
    ----------
    graph : RoadGraph
    anchors : (A,) int
        Node ids where paths start and end. Every node of degree != 2 must be among them
        (keypoints always are).

    Returns
    -------
    paths : list of (k_i + 1,) int64
        Node sequences, each from one anchor to an anchor (possibly the same one, for a loop),
        every edge in exactly one path. Order: by start anchor, then by the neighbour's id.
    extra : (X,) int64
        The nodes made anchors to open loops that had none (their lowest node id).
    """
    n = graph.num_nodes
    is_anchor = np.zeros(n, dtype=bool)
    a = np.asarray(anchors, dtype=np.int64).reshape(-1)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise GraphError(f"anchor ids must lie in [0, {n}), got {a.min()}..{a.max()}")
    is_anchor[a] = True
    deg = graph.degrees()
    if np.any((deg != 2) & ~is_anchor):
        raise GraphError("every node of degree != 2 must be an anchor (a keypoint)")
    nbrs = graph.neighbors()
    used: set[tuple[int, int]] = set()
    paths: list[NDArray[np.int64]] = []

    def walk(start: int, nxt: int) -> None:
        seq = [start, nxt]
        used.add((min(start, nxt), max(start, nxt)))
        prev, cur = start, nxt
        while not is_anchor[cur]:
            x, y = nbrs[cur]
            prev, cur = cur, (y if x == prev else x)
            used.add((min(prev, cur), max(prev, cur)))
            seq.append(cur)
        paths.append(np.asarray(seq, dtype=np.int64))

    for s in np.flatnonzero(is_anchor).tolist():
        for t in nbrs[s]:
            if (min(s, t), max(s, t)) not in used:
                walk(s, t)
    extra: list[int] = []
    for i, j in graph.edges.tolist():
        if (i, j) in used:
            continue
        # an anchor-free loop: collect it, open it at its lowest node, walk to the lower side
        loop, prev, cur = [i], i, j
        while cur != i:
            loop.append(cur)
            x, y = nbrs[cur]
            prev, cur = cur, (y if x == prev else x)
        s = min(loop)
        is_anchor[s] = True
        extra.append(s)
        walk(s, min(nbrs[s]))
    return paths, np.asarray(extra, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Interpolation:
    """Points of Algorithm 4 along every path of a graph.

    Attributes
    ----------
    paths : list of (k_i + 1,) int64
        Node sequences (see :func:`graph_paths`).
    path_length : (P,) float64
        Polyline length of each path, pixels.
    extra_anchors : (X,) int64
        Nodes opened as anchors on anchor-free loops.
    points : (K, 2) float64
        Interpolated points ``(x, y)`` pixels, path by path, increasing arc position.
    path : (K,) int64
        The path of each point.
    arc : (K,) float64
        Arc position of each point from its path's first node, pixels.
    """

    paths: list[NDArray[np.int64]]
    path_length: NDArray[np.float64]
    extra_anchors: NDArray[np.int64]
    points: NDArray[np.float64]
    path: NDArray[np.int64]
    arc: NDArray[np.float64]


def interpolate_paths(
    graph: RoadGraph, anchors: ArrayLike, *, d_r: float = 16.0, rng: np.random.Generator
) -> Interpolation:
    """Run Algorithm 4 along every path between ``anchors`` (see :func:`graph_paths`).

    Parameters
    ----------
    graph : RoadGraph
        Pixel-coordinate graph (not modified).
    anchors : (A,) int
        Keypoints and overpass endpoints: kept as they are, never interpolated over.
    d_r : float, default 16
        Road NMS radius, pixels.
    rng : numpy.random.Generator
        Drawn once, for all paths in order: the same generator state gives the same points.

    Returns
    -------
    Interpolation
    """
    d = _check_d_r(d_r)
    paths, extra = graph_paths(graph, anchors)
    cums = []
    for seq in paths:
        seg = np.diff(graph.nodes[seq], axis=0)
        cums.append(np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))]))
    lengths = np.array([c[-1] for c in cums], dtype=np.float64)
    counts = (lengths // d).astype(np.int64) + 1
    u01 = rng.random(int(counts.sum()))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pts, pid, arcs = [], [], []
    for k, (seq, cum) in enumerate(zip(paths, cums, strict=True)):
        pos = _positions(float(lengths[k]), d, u01[offsets[k] : offsets[k + 1]])
        if len(pos) == 0:
            continue
        xy = graph.nodes[seq]
        pts.append(np.column_stack([np.interp(pos, cum, xy[:, 0]), np.interp(pos, cum, xy[:, 1])]))
        pid.append(np.full(len(pos), k, dtype=np.int64))
        arcs.append(pos)
    return Interpolation(
        paths,
        lengths,
        extra,
        np.concatenate(pts) if pts else np.zeros((0, 2)),
        np.concatenate(pid) if pid else np.zeros(0, dtype=np.int64),
        np.concatenate(arcs) if arcs else np.zeros(0),
    )
