"""APLS as CosmiQ's ``apls.py`` computes it (SpaceNet's official scorer).

Steps (``apls/apls.py`` of CosmiQ/apls: ``make_graphs``, ``make_graphs_yuge``,
``insert_point_into_G``, ``path_sim_metric``, ``compute_apls_metric``):

1. Ground truth with fewer than 500 nodes: midpoints are inserted along every edge of both graphs
   (edges shorter than 0.75 x 50 m get none, up to 50 m one in the middle, longer ones evenly
   every <= 50 m) and every node is a control point. Larger ground truths: no midpoints, and each
   graph's control points are a random sample of at most 1000 of its nodes.
2. Each graph's control points are inserted into the *other* graph as it was given (without its
   midpoints): at the nearest point of the nearest edge if that is within 4 m, splitting the
   edge; a point that lands on an existing node takes that node over (the reference renames the
   node), so of several control points landing on one place only the last one stays.
3. For every ordered pair (s, t) of control points with a path in the source graph: a start that
   could not be inserted costs 1; otherwise paths shorter than ``min_path_length`` are skipped,
   and the cost is ``min(1, |dA - dB| / dA)``, or 1 when t is missing or unreachable in the other
   graph. A direction scores ``1 - mean cost`` (0 without pairs); APLS is their harmonic mean
   (0 when either is 0).

Polyline edges: the reference's nodes are the graph's nodes, not the vertices of its edge
geometries. A graph read with its geometry expanded into degree-2 nodes should say which nodes
are vertices (``meta["first_geometry_vertex"]``, see ``GEOMETRY_VERTEX_KEY``); it is then
simplified back automatically. ``simplify=True`` without that key treats every degree-2 node as
a vertex (exact for osmnx-simplified graphs, which keep almost no degree-2 node). City-scale
style graphs, whose every vertex is a node, are scored as they are.

Defaults follow the description of SpaceNet's scorer (midpoints every 50 m on every edge, 1000
sampled control points, 4 m); CosmiQ's command line defaults differ (``midpoint_spacing=200``,
``is_curved_eps=0.12``, 500 control points), and its published sample output used them.
Path lengths are straight-segment lengths (the reference uses each edge's ``length`` attribute,
which for SpaceNet ground truth differs from its geometry by up to 0.4 m).

Determinism: the reference samples with Python's ``random``; here a ``numpy`` generator seeded
with ``seed`` draws the samples (ground truth first, then the proposal).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from . import _apls_kernels as K
from ._apls_common import (
    AplsParameterError,
    AplsResult,
    MetricGraph,
    edge_lengths,
    metric_graphs,
    to_csr,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["apls_cosmiq"]


def _polylines(g: MetricGraph, simplify: bool) -> tuple[NDArray[np.int64], list[list[int]]]:
    """Reference nodes and reference edges (as lists of node indices, walked in order).

    Without ``simplify`` every node is a node and every edge an edge. With it, the nodes are
    the graph nodes (not geometry vertices, see ``GEOMETRY_VERTEX_KEY``) and those of degree
    != 2 (plus the lowest node of any cycle made of degree-2 vertices only); the edges are the
    chains between them.
    """
    if not simplify:
        return np.arange(g.num_nodes), [[int(a), int(b)] for a, b in g.edges]
    n = g.num_nodes
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in g.edges.tolist():
        adj[a].append(b)
        adj[b].append(a)
    is_node = np.array([len(x) != 2 for x in adj], dtype=bool)
    if g.vertex.any():  # the graph says which nodes are geometry vertices
        is_node |= ~g.vertex
    used: set[tuple[int, int]] = set()
    lines: list[list[int]] = []

    def walk(start: int) -> None:
        for nxt in sorted(adj[start]):
            if (min(start, nxt), max(start, nxt)) in used:
                continue
            line = [start]
            prev, cur = start, nxt
            while True:
                used.add((min(prev, cur), max(prev, cur)))
                line.append(cur)
                if is_node[cur]:
                    break
                a, b = adj[cur]
                prev, cur = cur, (b if a == prev else a)
            lines.append(line)

    for u in range(n):
        if is_node[u]:
            walk(u)
    for u in range(n):  # cycles of degree-2 nodes only
        if not is_node[u] and any((min(u, v), max(u, v)) not in used for v in adj[u]):
            is_node[u] = True
            walk(u)
    return np.flatnonzero(is_node), lines


def _midpoints(
    g: MetricGraph, lines: list[list[int]], spacing: float, curved_eps: float
) -> list[tuple[int, float]]:
    """Midpoints of the reference edges as (graph edge index, distance along it) pairs."""
    if not lines:
        return []
    edge_id = {(int(a), int(b)): k for k, (a, b) in enumerate(g.edges)}
    out: list[tuple[int, float]] = []
    for line in lines:
        pts = g.xy[line]
        seg = np.hypot(*np.diff(pts, axis=0).T)
        length = float(seg.sum())
        if length <= 0:
            continue
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        if abs(float(np.hypot(*(hi - lo))) - length) / length < curved_eps:
            continue  # the reference skips (almost) straight edges when curved_eps > 0
        if length < 0.75 * spacing:
            continue
        if length <= spacing:
            dists = np.array([0.5 * length])
        else:
            n_points = len(np.arange(0, length, spacing)) + 1
            dists = np.linspace(0, length, n_points)[1:-1]
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        for d in dists:
            k = int(min(np.searchsorted(cum, d, side="right") - 1, len(seg) - 1))
            a, b = line[k], line[k + 1]
            t = float(d - cum[k])
            if a < b:
                out.append((edge_id[(a, b)], t))
            else:
                out.append((edge_id[(b, a)], float(seg[k]) - t))
    return out


def _insert(
    g: MetricGraph, edge: NDArray[np.int64], t: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Insert points given as (edge index, distance from the edge's first node), in order.

    Points at distance <= 0 or >= the edge length land on that node; points at the same place
    share one node. Returns the new graph (``xy``, ``edges``, edge ``lengths``) and the node of
    every point (-1 where ``edge`` is -1).
    """
    length = edge_lengths(g)
    n = g.num_nodes
    node_of = np.full(len(edge), -1, dtype=np.int64)
    places: dict[tuple[int, float], int] = {}
    xy = [g.xy]
    per_edge: dict[int, list[tuple[float, int]]] = {}
    n_new = 0
    for i, (e, d) in enumerate(zip(edge.tolist(), t.tolist(), strict=True)):
        if e < 0:
            continue
        a, b = int(g.edges[e, 0]), int(g.edges[e, 1])
        if d <= 0.0:
            node_of[i] = a
        elif d >= length[e]:
            node_of[i] = b
        else:
            key = (e, d)
            if key not in places:
                places[key] = n + n_new
                n_new += 1
                alpha = d / length[e]
                xy.append((g.xy[a] * (1.0 - alpha) + g.xy[b] * alpha)[None, :])
                per_edge.setdefault(e, []).append((d, places[key]))
            node_of[i] = places[key]
    keep = np.ones(len(g.edges), dtype=bool)
    new_edges = [g.edges]
    new_len = [length]
    for e, pts in per_edge.items():
        keep[e] = False
        pts.sort()
        chain = [int(g.edges[e, 0])] + [p for _, p in pts] + [int(g.edges[e, 1])]
        ds = [0.0] + [d for d, _ in pts] + [float(length[e])]
        new_edges.append(np.array(list(itertools.pairwise(chain)), dtype=np.int64))
        new_len.append(np.diff(ds))
    new_edges[0] = g.edges[keep]
    new_len[0] = length[keep]
    return np.concatenate(xy), np.concatenate(new_edges), np.concatenate(new_len), node_of


def _snap(
    points: NDArray[np.float64], target: MetricGraph, max_dist: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Nearest edge of ``target`` within ``max_dist`` of each point (-1 if none) and the distance
    of the nearest point along that edge from its first node. Ties go to the lowest edge index."""
    edge = np.full(len(points), -1, dtype=np.int64)
    t = np.zeros(len(points))
    if len(points) == 0 or len(target.edges) == 0:
        return edge, t
    lines = shapely.linestrings(target.xy[target.edges])
    tree = shapely.STRtree(lines)
    (pi, li), _ = tree.query_nearest(
        shapely.points(points), max_distance=max_dist, return_distance=True, all_matches=True
    )
    if len(pi):
        order = np.lexsort((li, pi))
        pi, li = pi[order], li[order]
        first = np.ones(len(pi), dtype=bool)
        first[1:] = pi[1:] != pi[:-1]
        pi, li = pi[first], li[first]
        edge[pi] = li
        t[pi] = shapely.line_locate_point(lines[li], shapely.points(points[pi]))
    return edge, t


def _one_way(
    a_xy: NDArray[np.float64],
    a_edges: NDArray[np.int64],
    a_len: NDArray[np.float64],
    ctrl: NDArray[np.int64],
    other: MetricGraph,
    p: dict[str, Any],
) -> tuple[float, int, int]:
    """(score, n_pairs, n_inserted) for the control nodes ``ctrl`` of graph A inserted into
    ``other``."""
    edge, t = _snap(a_xy[ctrl], other, p["snap_distance"])
    b_xy, b_edges, b_len, b_node = _insert(other, edge, t)
    # Only the last control point to land on a place keeps it (the reference renames nodes).
    holder = np.full(len(b_xy), -1, dtype=np.int64)
    for i, node in enumerate(b_node.tolist()):
        if node >= 0:
            holder[node] = i
    ctrl_b = np.full(len(ctrl), -1, dtype=np.int64)
    ok = holder >= 0
    ctrl_b[holder[ok]] = np.flatnonzero(ok)
    keep_a = np.zeros(len(a_xy), dtype=bool)
    keep_a[ctrl] = True
    keep_b = np.zeros(len(b_xy), dtype=bool)
    keep_b[ctrl_b[ctrl_b >= 0]] = True
    ca = to_csr(len(a_xy), a_edges, a_len)
    cb = to_csr(len(b_xy), b_edges, b_len)
    ra = K.compress_chains(ca.indptr, ca.indices, ca.weights, keep_a)
    rb = K.compress_chains(cb.indptr, cb.indices, cb.weights, keep_b)
    mapped_b = np.where(ctrl_b >= 0, rb[3][np.maximum(ctrl_b, 0)], -1)
    total, count = K.cosmiq_pair_diffs(
        ra[0],
        ra[1],
        ra[2],
        rb[0],
        rb[1],
        rb[2],
        ra[3][ctrl],
        mapped_b,
        float(p["min_path_length"]),
    )
    score = 1.0 - float(total) / int(count) if count else 0.0
    return score, int(count), int((ctrl_b >= 0).sum())


def _with_midpoints(
    g: MetricGraph, p: dict[str, Any]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Graph with its midpoints inserted, and its control nodes (nodes, then midpoints)."""
    nodes, lines = _polylines(g, p["simplify"])
    mids = _midpoints(g, lines, p["midpoint_spacing"], p["is_curved_eps"])
    edge = np.array([m[0] for m in mids], dtype=np.int64)
    t = np.array([m[1] for m in mids], dtype=np.float64)
    xy, edges, lengths, mid_nodes = _insert(g, edge, t)
    ctrl = np.concatenate([nodes, mid_nodes]).astype(np.int64)
    _, first = np.unique(ctrl, return_index=True)
    return xy, edges, lengths, ctrl[np.sort(first)]


def apls_cosmiq(
    gt: RoadGraph,
    pred: RoadGraph,
    *,
    gsd: float | None = None,
    seed: int = 0,
    snap_distance: float = 4.0,
    midpoint_spacing: float = 50.0,
    is_curved_eps: float = -1.0,
    max_nodes_for_midpoints: int = 500,
    max_control_points: int = 1000,
    min_path_length: float = 0.001,
    simplify: bool | None = None,
) -> AplsResult:
    """APLS, CosmiQ variant (SpaceNet's official ``apls.py``), deterministic.

    Parameters
    ----------
    gt, pred : RoadGraph
        Ground truth and proposal, both pixel graphs or both georeferenced.
    gsd : float, optional
        Metres per pixel for pixel graphs (default 1.0).
    seed : int, default 0
        Seed of the generator that samples control points of large graphs.
    snap_distance : float, default 4.0
        Control points farther than this (metres) from the other graph are not inserted.
    midpoint_spacing : float, default 50.0
        Spacing of inserted midpoints along edges, metres (``linestring_delta``).
    is_curved_eps : float, default -1.0
        Edges with ``|bbox diagonal - length| / length`` below this get no midpoints; negative
        inserts midpoints on every edge.
    max_nodes_for_midpoints : int, default 500
        Ground truths with at least this many nodes use the sampled mode (no midpoints).
    max_control_points : int, default 1000
        Sample size per graph in the sampled mode.
    min_path_length : float, default 0.001
        Paths shorter than this (metres) are skipped.
    simplify : bool, optional
        Count chains of degree-2 nodes as single edges, so that their vertices are no nodes
        (see the module docstring). Default: True when a graph says which of its nodes are
        expanded geometry vertices (``meta["first_geometry_vertex"]``), else False.

    Returns
    -------
    AplsResult
        ``score`` is the harmonic mean of ``gt_to_prop`` and ``prop_to_gt`` (0 if either is 0).
    """
    p: dict[str, Any] = {
        "gsd": gsd,
        "seed": int(seed),
        "snap_distance": float(snap_distance),
        "midpoint_spacing": float(midpoint_spacing),
        "is_curved_eps": float(is_curved_eps),
        "max_nodes_for_midpoints": int(max_nodes_for_midpoints),
        "max_control_points": int(max_control_points),
        "min_path_length": float(min_path_length),
        "simplify": simplify,
    }
    for name in ("snap_distance", "midpoint_spacing"):
        if not (math.isfinite(p[name]) and p[name] > 0):
            raise AplsParameterError(f"{name} must be a positive number of metres, got {p[name]}")
    if p["max_control_points"] < 1:
        raise AplsParameterError(f"max_control_points must be at least 1, got {max_control_points}")

    g_gt, g_pred = metric_graphs(gt, pred, gsd=gsd)
    if simplify is None:
        p["simplify"] = bool(g_gt.vertex.any() or g_pred.vertex.any())
    if g_gt.num_nodes == 0 or g_pred.num_nodes == 0:
        return AplsResult(0.0, 0.0, 0.0, "cosmiq", params=p)

    nodes_gt, _ = _polylines(g_gt, p["simplify"])
    p["mode"] = "midpoints" if len(nodes_gt) < p["max_nodes_for_midpoints"] else "sampled"
    if p["mode"] == "midpoints":
        a = _with_midpoints(g_gt, p)
        b = _with_midpoints(g_pred, p)
    else:
        rng = np.random.default_rng(seed)
        sides = []
        for g, nodes in ((g_gt, nodes_gt), (g_pred, _polylines(g_pred, p["simplify"])[0])):
            k = min(p["max_control_points"], len(nodes))
            ctrl = nodes[rng.choice(len(nodes), size=k, replace=False)]
            sides.append((g.xy, g.edges, edge_lengths(g), ctrl.astype(np.int64)))
        a, b = sides[0], sides[1]
    s1, n1, m1 = _one_way(*a, g_pred, p)
    s2, n2, m2 = _one_way(*b, g_gt, p)
    score = 2.0 * s1 * s2 / (s1 + s2) if s1 > 0 and s2 > 0 else 0.0
    return AplsResult(
        score=score,
        gt_to_prop=s1,
        prop_to_gt=s2,
        variant="cosmiq",
        n_pairs_gt_to_prop=n1,
        n_pairs_prop_to_gt=n2,
        n_control_gt=len(a[3]),
        n_control_prop=len(b[3]),
        n_snapped_gt=m1,
        n_snapped_prop=m2,
        params=p,
    )
