"""Candidate edges with connectivity labels (paper, section 3.5 and Figure 10).

Pipeline, on a graph whose overpass crossings are already found and separated
(:mod:`~linegraph2road.data_prep.overpass`):

1. **Points**: the keypoints and overpass endpoints (*anchors*) stay; Algorithm 4 adds points
   along the paths between them (:mod:`~linegraph2road.data_prep.interpolate`).
2. **Coupled NMS** (:func:`~linegraph2road.nms.coupled_nms_points`): keypoints form the keypoint
   set, overpass endpoints the overpass set (both score 1, so they win over road points and are
   only thinned within ``d_k`` among themselves), interpolated points the road set (score 0.5;
   a loop's opening node, which is no keypoint, joins it with score 1). Ties go by input order.
3. **Label graph**: every kept vertex knows where it lies on the ground truth -- an anchor is a
   graph node, an interpolated point is ``(path, arc position)``. Two kept vertices are
   *directly connected* when the ground truth joins them without passing another kept vertex:
   along a path, consecutive kept points (ordered by arc position) are directly connected, as
   are the first/last kept point and the path's end anchor when that anchor was kept. A
   suppressed anchor (a junction NMS'd away) is transparent: the kept vertices that reach it
   this way (through paths with no kept vertex in between, possibly through further suppressed
   anchors) are all directly connected to each other.
4. **Overpass adjustment**: the refinement of Algorithm 3 runs on the label graph for crossings
   of two label edges that both touch an overpass vertex; only overpass vertices move (so road
   vertices keep the NMS spacing), nothing is contracted.
5. **Candidates**: all vertex pairs within ``d_nei`` (:func:`~linegraph2road.candidates.
   candidate_edges`), label 1 iff the pair is an edge of the label graph, else 0 -- a pair that
   is routable only through another vertex is a negative. Label-graph edges longer than
   ``d_nei`` are not candidates (counted in :attr:`CandidateLabels.positives_out_of_reach`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.candidates import candidate_edges
from linegraph2road.data_prep.interpolate import interpolate_paths
from linegraph2road.data_prep.overpass import refine_crossings
from linegraph2road.graph import RoadGraph
from linegraph2road.nms import KEYPOINT, OVERPASS, ROAD, coupled_nms_points

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["CandidateLabels", "label_candidates"]


@dataclass(frozen=True, eq=False)
class CandidateLabels:
    """Vertices, candidate edges and their labels.

    Attributes
    ----------
    vertices : (M, 2) float64
        ``(x, y)`` pixels after the overpass adjustment.
    vertices_nms : (M, 2) float64
        The same vertices as the coupled NMS kept them (before the adjustment).
    vertex_kind : (M,) int8
        ``KEYPOINT`` (0), ``OVERPASS`` (1) or ``ROAD`` (2), as :class:`~linegraph2road.nms.
        Vertices` (rows grouped by kind in that order).
    vertex_node : (M,) int64
        Graph node of an anchor vertex, -1 for an interpolated one.
    vertex_path, vertex_arc : (M,) int64, (M,) float64
        Path id and arc position (px) of an interpolated vertex; -1 and NaN for anchors.
    edges : (C, 2) int64
        Candidate pairs ``i < j`` within ``d_nei``, sorted.
    labels : (C,) uint8
        1 for directly connected pairs, 0 otherwise.
    positive_pairs : (Q, 2) int64
        All label-graph edges (directly connected pairs, any length), sorted.
    """

    vertices: NDArray[np.float64]
    vertices_nms: NDArray[np.float64]
    vertex_kind: NDArray[np.int8]
    vertex_node: NDArray[np.int64]
    vertex_path: NDArray[np.int64]
    vertex_arc: NDArray[np.float64]
    edges: NDArray[np.int64]
    labels: NDArray[np.uint8]
    positive_pairs: NDArray[np.int64]

    @property
    def positives_out_of_reach(self) -> int:
        """Directly connected pairs farther apart than ``d_nei`` (no candidate, no label)."""
        return int(len(self.positive_pairs) - int(self.labels.sum()))


def _keep_map(pts: NDArray[np.float64], kept: NDArray[np.float64]) -> NDArray[np.int64]:
    """Input row of each kept point (kept points are exact copies; first occurrence wins)."""
    first: dict[tuple[float, float], int] = {}
    for i, xy in enumerate(map(tuple, pts.tolist())):
        first.setdefault(xy, i)
    return np.array([first[tuple(xy)] for xy in kept.tolist()], dtype=np.int64)


class _Regions:
    """Union-find over suppressed anchor nodes, each root collecting the vertices reaching it."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.attached: dict[int, list[int]] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def attach(self, node: int, vertex: int) -> None:
        self.attached.setdefault(node, []).append(vertex)

    def cliques(self) -> list[tuple[int, int]]:
        groups: dict[int, set[int]] = {}
        for node, vs in self.attached.items():
            groups.setdefault(self.find(node), set()).update(vs)
        out: list[tuple[int, int]] = []
        for members in groups.values():
            ordered = sorted(members)
            out.extend((a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :])
        return out


def _label_graph(
    paths: list[NDArray[np.int64]],
    node_vertex: NDArray[np.int64],
    v_path: NDArray[np.int64],
    v_arc: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Directly connected vertex pairs (see the module docstring, step 3)."""
    interp = np.flatnonzero(v_path >= 0)
    order = interp[np.lexsort((v_arc[interp], v_path[interp]))]
    starts = np.searchsorted(v_path[order], np.arange(len(paths) + 1))
    regions = _Regions()
    pairs: list[tuple[int, int]] = []
    for k, seq in enumerate(paths):
        ends = (int(seq[0]), int(seq[-1]))
        chain: list[tuple[str, int]] = [("v", int(node_vertex[ends[0]]))]
        if chain[0][1] < 0:
            chain[0] = ("n", ends[0])
        chain += [("v", int(v)) for v in order[starts[k] : starts[k + 1]]]
        last = int(node_vertex[ends[1]])
        chain.append(("v", last) if last >= 0 else ("n", ends[1]))
        for (ta, a), (tb, b) in itertools.pairwise(chain):
            if ta == "v" and tb == "v":
                if a != b:
                    pairs.append((min(a, b), max(a, b)))
            elif ta == "n" and tb == "n":
                regions.union(a, b)
            else:
                regions.attach(a if ta == "n" else b, b if ta == "n" else a)
    pairs.extend(regions.cliques())
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.asarray(pairs, dtype=np.int64), axis=0)


def label_candidates(
    graph: RoadGraph,
    *,
    keypoints: ArrayLike,
    overpass_nodes: ArrayLike,
    rng: np.random.Generator,
    d_r: float = 16.0,
    d_k: float = 8.0,
    d_nei: float = 64.0,
    tau: float = 6.0,
    alpha: float = 1.0,
    T: int = 100,
    epsilon: float = 1e-3,
) -> CandidateLabels:
    """Candidate edges and labels for one tile (module docstring, steps 1-5).

    Parameters
    ----------
    graph : RoadGraph
        Pixel-coordinate ground truth with overpasses already separated (not modified).
    keypoints : (K,) int
        Keypoint node ids (every node of degree != 2 must be among them).
    overpass_nodes : (J,) int
        Endpoint node ids of overpass crossing edges.
    rng : numpy.random.Generator
        For Algorithm 4.
    d_r, d_k : float, default 16 and 8
        Road and keypoint NMS radii, pixels.
    d_nei : float, default 64
        Candidate radius, pixels.
    tau, alpha, T, epsilon
        Algorithm 3 parameters for the overpass adjustment (see
        :mod:`~linegraph2road.data_prep.overpass`).

    Returns
    -------
    CandidateLabels
    """
    kp = np.unique(np.asarray(keypoints, dtype=np.int64).reshape(-1))
    ov = np.unique(np.asarray(overpass_nodes, dtype=np.int64).reshape(-1))
    kp = np.setdiff1d(kp, ov)
    interp = interpolate_paths(graph, np.union1d(kp, ov), d_r=d_r, rng=rng)
    nodes = graph.nodes
    road_nodes = interp.extra_anchors
    road_pts = np.concatenate([nodes[road_nodes], interp.points])
    road_sc = np.concatenate([np.ones(len(road_nodes)), np.full(len(interp.points), 0.5)])
    nms = coupled_nms_points(
        nodes[kp],
        np.ones(len(kp)),
        road_pts,
        road_sc,
        nodes[ov],
        np.ones(len(ov)),
        d_k=d_k,
        d_r=d_r,
    )
    m = len(nms)
    v_node = np.full(m, -1, dtype=np.int64)
    v_path = np.full(m, -1, dtype=np.int64)
    v_arc = np.full(m, np.nan)
    for kind, ids in ((KEYPOINT, kp), (OVERPASS, ov)):
        rows = np.flatnonzero(nms.kind == kind)
        v_node[rows] = ids[_keep_map(nodes[ids], nms.points[rows])]
    rows = np.flatnonzero(nms.kind == ROAD)
    src = _keep_map(road_pts, nms.points[rows])
    is_node = src < len(road_nodes)
    v_node[rows[is_node]] = road_nodes[src[is_node]]
    k = src[~is_node] - len(road_nodes)
    v_path[rows[~is_node]] = interp.path[k]
    v_arc[rows[~is_node]] = interp.arc[k]
    node_vertex = np.full(graph.num_nodes, -1, dtype=np.int64)
    node_vertex[v_node[v_node >= 0]] = np.flatnonzero(v_node >= 0)
    positives = _label_graph(interp.paths, node_vertex, v_path, v_arc)
    vertices = _adjust(nms.points, nms.kind, positives, tau=tau, alpha=alpha, T=T, epsilon=epsilon)
    cand = candidate_edges(vertices, d_nei=d_nei)
    key = cand[:, 0] * max(m, 1) + cand[:, 1]
    labels = np.isin(key, positives[:, 0] * max(m, 1) + positives[:, 1]).astype(np.uint8)
    return CandidateLabels(
        vertices, nms.points.copy(), nms.kind.copy(), v_node, v_path, v_arc, cand, labels, positives
    )


def _adjust(
    points: NDArray[np.float64], kind: NDArray[np.int8], pairs: NDArray[np.int64], **params: Any
) -> NDArray[np.float64]:
    """Step 4: separate crossings of label edges that both touch an overpass vertex."""
    is_ov = kind == OVERPASS
    if not is_ov.any() or len(pairs) < 2:
        return np.array(points, dtype=np.float64, copy=True)
    touches = is_ov[pairs].any(axis=1)

    def rule(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
        return np.asarray(touches[a] & touches[b])

    t = int(params["T"])
    res = refine_crossings(
        RoadGraph(points, pairs), rule=rule, movable=is_ov, gamma=0.0, P=t + 1, **params
    )
    return np.array(res.graph.graph.nodes, dtype=np.float64, copy=True)
