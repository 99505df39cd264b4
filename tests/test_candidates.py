"""Tests for linegraph2road.candidates: exact pairs, the O(n^2) oracle, the graph wrapper."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.candidates import candidate_edges, candidate_graph
from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph


def _oracle(points: np.ndarray, d: float) -> np.ndarray:
    diff = points[:, None, :] - points[None, :, :]
    d2 = (diff**2).sum(-1)
    i, j = np.nonzero(np.triu(d2 <= d * d, k=1))
    return np.stack([i, j], axis=1).reshape(-1, 2)


def test_candidate_edges_exact_small_case() -> None:
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [0.0, 64.0], [3.0, 4.0]])
    # Distance exactly d_nei counts (paper: <=); coincident points (1, 4) form a pair.
    np.testing.assert_array_equal(candidate_edges(pts, d_nei=5.0), [[0, 1], [0, 4], [1, 4]])
    e = candidate_edges(pts)
    # Only (2, 3) is farther than 64 px apart (hypot(10, 64) = 64.8).
    expected = [[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [1, 3], [1, 4], [2, 4], [3, 4]]
    np.testing.assert_array_equal(e, expected)
    assert e.dtype == np.int64


def test_candidate_edges_empty_and_single() -> None:
    for pts in (np.zeros((0, 2)), np.array([[1.0, 2.0]]), np.array([[0.0, 0.0], [100.0, 0.0]])):
        e = candidate_edges(pts)
        assert e.shape == (0, 2)
        assert e.dtype == np.int64


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 120),
    d=st.sampled_from([0.0, 2.5, 8.0, 64.0]),
)
@settings(max_examples=40, deadline=None)
def test_candidate_edges_equals_bruteforce(seed: int, n: int, d: float) -> None:
    rng = np.random.default_rng(seed)
    pts = np.floor(rng.random((n, 2)) * 120) / 2  # half-pixel lattice: exact ties with d
    e = candidate_edges(pts, d_nei=d)
    np.testing.assert_array_equal(e, _oracle(pts, d))
    assert (e[:, 0] < e[:, 1]).all()


def test_candidate_graph_is_a_road_graph_over_the_points() -> None:
    pts = np.array([[0.0, 0.0], [30.0, 0.0], [200.0, 0.0]])
    g = candidate_graph(pts)
    assert isinstance(g, RoadGraph)
    np.testing.assert_array_equal(g.nodes, pts)
    np.testing.assert_array_equal(g.edges, [[0, 1]])
    assert g.edge_prob is None


def test_candidate_edges_rejects_bad_input() -> None:
    with pytest.raises(GraphError, match="shape"):
        candidate_edges(np.zeros((3, 3)))
    with pytest.raises(GraphError, match="NaN"):
        candidate_edges(np.array([[np.nan, 1.0], [0.0, 0.0]]))
    with pytest.raises(GraphError, match="d_nei"):
        candidate_edges(np.zeros((2, 2)), d_nei=-1.0)


def test_pair_at_exactly_d_nei_is_kept_whatever_the_tree_rounding() -> None:
    # The real case that found this: two label vertices exactly 64 px apart by numpy.hypot.
    a = np.array([294.59860026, 111.05693679])
    direction = np.array([-0.3378, 0.9412])
    b = a + 64.0 * direction / np.hypot(*direction)
    pts = np.array([a, b])
    d = float(np.hypot(*(pts[1] - pts[0])))
    edges = candidate_edges(pts, d_nei=d)
    assert edges.tolist() == [[0, 1]]
    assert candidate_edges(pts, d_nei=np.nextafter(d, 0)).tolist() == []
