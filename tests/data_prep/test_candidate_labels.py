"""Candidate edges and labels, checked against an independent walk of the ground truth."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import Delaunay

from linegraph2road.data_prep.candidate_labels import CandidateLabels, label_candidates
from linegraph2road.data_prep.labels import keypoint_nodes
from linegraph2road.data_prep.overpass import find_crossings
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph
from linegraph2road.nms import KEYPOINT, OVERPASS, ROAD


def _labels(g: RoadGraph, *, seed: int = 0, overpass: bool = True) -> CandidateLabels:
    ov = find_crossings(TaggedGraph.untagged(g)).endpoints if overpass else []
    return label_candidates(
        g, keypoints=keypoint_nodes(g), overpass_nodes=ov, rng=np.random.default_rng(seed)
    )


def directly_connected(g: RoadGraph, points: np.ndarray) -> set[tuple[int, int]]:
    """Reference: place every vertex on the ground truth geometrically (a node, or a point on
    an edge), split the edges there, then walk from each vertex through non-vertex nodes and
    collect the first vertices met. Knows nothing of paths, arc positions or NMS."""
    lines = shapely.linestrings(np.stack([g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]], 1))
    node_of = {tuple(xy): i for i, xy in enumerate(g.nodes.tolist())}
    on_edge: dict[int, list[tuple[float, int]]] = {}
    vertex_at: dict[object, int] = {}
    tree = shapely.STRtree(lines)
    for j, xy in enumerate(points.tolist()):
        if tuple(xy) in node_of:
            vertex_at[("n", node_of[tuple(xy)])] = j
            continue
        hits = tree.query(shapely.points(xy), predicate="dwithin", distance=1e-6)
        assert len(hits) == 1, f"vertex {j} at {xy} is not on exactly one edge: {hits}"
        a, b = g.nodes[g.edges[hits[0]]]
        t = float(np.dot(np.asarray(xy) - a, b - a) / np.dot(b - a, b - a))
        on_edge.setdefault(int(hits[0]), []).append((t, j))
        vertex_at[("v", j)] = j
    h = nx.Graph()
    h.add_nodes_from(("n", i) for i in range(g.num_nodes))
    for k, (u, v) in enumerate(g.edges.tolist()):
        chain = [("n", u)] + [("v", j) for _, j in sorted(on_edge.get(k, []))] + [("n", v)]
        nx.add_path(h, chain)
    out: set[tuple[int, int]] = set()
    for start, j in vertex_at.items():
        seen, todo = {start}, [start]
        while todo:
            x = todo.pop()
            for y in h[x]:
                if y in seen:
                    continue
                seen.add(y)
                if y in vertex_at:
                    k = vertex_at[y]
                    if k != j:
                        out.add((min(j, k), max(j, k)))
                else:
                    todo.append(y)
    return out


def _check_against_reference(g: RoadGraph, c: CandidateLabels, d_nei: float = 64.0) -> None:
    ref = directly_connected(g, c.vertices_nms)
    assert {tuple(p) for p in c.positive_pairs.tolist()} == ref
    got = {tuple(p) for p, lab in zip(c.edges.tolist(), c.labels, strict=True) if lab}
    assert got == {p for p in ref if np.hypot(*np.subtract(*c.vertices[list(p)])) <= d_nei}
    assert not any(
        tuple(p) in ref for p, lab in zip(c.edges.tolist(), c.labels, strict=True) if not lab
    )


def _check_nms_spacing(c: CandidateLabels, d_r: float = 16.0, d_k: float = 8.0) -> None:
    p, kind = c.vertices_nms, c.vertex_kind
    d = np.hypot(*(p[:, None, :] - p[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    road = kind == ROAD
    assert (d[np.ix_(road, road)] >= d_r).all()
    assert (d[np.ix_(road, ~road)] >= d_r).all()
    for k in (KEYPOINT, OVERPASS):
        sel = kind == k
        assert (d[np.ix_(sel, sel)] >= d_k).all()


def test_four_node_path_exact_labels() -> None:
    # every node is a keypoint (two dead ends, two right-angle turns), edges of 20 px get no
    # interpolated point (<= 2 d_r - 1), all 6 pairs are within d_nei
    nodes = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [50.0, 30.0]])
    g = RoadGraph(nodes, np.array([[0, 1], [1, 2], [2, 3]]))
    c = _labels(g)
    assert c.vertex_node.tolist() == [0, 1, 2, 3]
    assert (c.vertex_kind == KEYPOINT).all()
    np.testing.assert_array_equal(c.vertices, nodes)
    assert c.edges.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert c.labels.tolist() == [1, 0, 0, 1, 0, 1]


def test_suppressed_junction_joins_the_vertices_around_it() -> None:
    # junctions 0 and 1 are 6 px apart (< d_k): 1 is suppressed, so 0, 4 and 5 (which reach 1
    # without another vertex) are all directly connected; 3-4 is farther than d_nei
    nodes = np.array(
        [[50.0, 50.0], [56.0, 50.0], [50.0, 20.0], [20.0, 50.0], [86.0, 50.0], [56.0, 80.0]]
    )
    g = RoadGraph(nodes, np.array([[0, 1], [0, 2], [0, 3], [1, 4], [1, 5]]))
    c = _labels(g)
    assert c.vertex_node.tolist() == [0, 2, 3, 4, 5]
    by_node = {
        (int(c.vertex_node[i]), int(c.vertex_node[j])): int(lab)
        for (i, j), lab in zip(c.edges.tolist(), c.labels, strict=True)
    }
    assert by_node == {
        (0, 2): 1,
        (0, 3): 1,
        (0, 4): 1,
        (0, 5): 1,
        (4, 5): 1,
        (2, 3): 0,
        (2, 4): 0,
        (2, 5): 0,
        (3, 5): 0,
    }
    _check_against_reference(g, c)


def test_crossing_roads_are_never_directly_connected() -> None:
    nodes = np.array([[0.0, 100.0], [200.0, 100.0], [100.0, 0.0], [100.0, 200.0]])
    g = RoadGraph(nodes, np.array([[0, 1], [2, 3]]))
    c = _labels(g)
    assert (c.vertex_kind == OVERPASS).sum() == 4
    on_a = np.abs(c.vertices_nms[:, 1] - 100.0) < 1e-9
    for i, j in c.positive_pairs.tolist():
        assert on_a[i] == on_a[j]
    _check_against_reference(g, c)


@settings(max_examples=25, deadline=None)
@given(st.integers(4, 30), st.integers(0, 2**31 - 1), st.floats(0.3, 1.0))
def test_random_graphs_match_the_reference_walk(n: int, seed: int, keep: float) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 300, size=(n, 2))
    tri = Delaunay(pts)
    e = np.concatenate(
        [tri.simplices[:, [0, 1]], tri.simplices[:, [1, 2]], tri.simplices[:, [0, 2]]]
    )
    e = np.unique(np.sort(e, axis=1), axis=0)
    e = e[rng.random(len(e)) < keep]
    g = RoadGraph.from_edges(pts, e)
    c = _labels(g, seed=seed)
    _check_against_reference(g, c)
    _check_nms_spacing(c)


def test_cityscale_labels_positive_only_for_directly_connected_pairs(fixtures_dir: Path) -> None:
    g = read_graph(fixtures_dir / "cityscale_example" / "gt.p")
    found = find_crossings(TaggedGraph.untagged(g))
    g1 = found.graph.graph
    c = label_candidates(
        g1,
        keypoints=keypoint_nodes(g1),
        overpass_nodes=found.endpoints,
        rng=np.random.default_rng(0),
    )
    _check_against_reference(g1, c)
    _check_nms_spacing(c)
    pos = int(c.labels.sum())
    print(
        f"City-scale: {len(c.vertices)} vertices, {len(c.edges)} candidates, {pos} positive, "
        f"{len(c.edges) - pos} negative, {c.positives_out_of_reach} positives beyond d_nei"
    )
    assert 0.15 < pos / len(c.edges) < 0.4
    assert c.positives_out_of_reach < 0.01 * pos


@pytest.mark.parametrize("seed", [0, 1])
def test_same_seed_same_labels(seed: int) -> None:
    nodes = np.array([[0.0, 0.0], [300.0, 0.0], [300.0, 250.0]])
    g = RoadGraph(nodes, np.array([[0, 1], [1, 2]]))
    a, b = _labels(g, seed=seed), _labels(g, seed=seed)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(_labels(g, seed=seed + 2).vertices, a.vertices)
