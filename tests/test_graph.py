from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from linegraph2road import GraphError, RoadGraph


def test_from_edges_canonicalises_and_keeps_highest_probability() -> None:
    g = RoadGraph.from_edges(
        [[0, 0], [1, 0], [2, 0], [3, 3]],
        [[1, 0], [1, 2], [0, 1], [2, 2]],
        edge_prob=[0.2, 0.5, 0.9, 0.1],
    )
    np.testing.assert_array_equal(g.edges, [[0, 1], [1, 2]])
    np.testing.assert_allclose(g.edge_prob, [0.9, 0.5])
    np.testing.assert_array_equal(g.degrees(), [1, 2, 1, 0])
    assert g.total_length() == pytest.approx(2.0)


def test_arrays_are_copied_and_read_only() -> None:
    nodes = np.array([[0.0, 0.0], [3.0, 4.0]])
    edges = np.array([[0, 1]])
    g = RoadGraph(nodes, edges)
    nodes[0, 0] = 99.0
    assert g.nodes[0, 0] == 0.0
    with pytest.raises(ValueError):
        g.nodes[0, 0] = 1.0
    assert g.edge_lengths().tolist() == [5.0]


@pytest.mark.parametrize(
    ("nodes", "edges", "match"),
    [
        ([[0, 0, 0]], [], r"shape \(N, 2\)"),
        ([[0, np.nan]], [], "NaN"),
        ([[0, 0]], [[0, 1]], "has 1 nodes"),
        ([[0, 0], [1, 1]], [[1, 0]], "i < j"),
        ([[0, 0], [1, 1]], [[0, 0]], "self loops"),
        ([[0, 0], [1, 1]], [[0, 1], [0, 1]], "duplicates"),
        ([[0, 0], [1, 1]], [[0.5, 1]], "integer"),
    ],
)
def test_invalid_graphs_are_refused(nodes: object, edges: object, match: str) -> None:
    with pytest.raises(GraphError, match=match):
        RoadGraph(np.asarray(nodes, dtype=float), np.asarray(edges))


def test_edge_prob_must_be_probabilities() -> None:
    with pytest.raises(GraphError, match=r"\[0, 1\]"):
        RoadGraph([[0, 0], [1, 1]], [[0, 1]], edge_prob=[1.5])
    with pytest.raises(GraphError, match="shape"):
        RoadGraph([[0, 0], [1, 1]], [[0, 1]], edge_prob=[0.5, 0.5])


def test_empty_graph() -> None:
    g = RoadGraph.empty()
    assert (g.num_nodes, g.num_edges) == (0, 0)
    assert g.total_length() == 0.0
    assert g.degrees().shape == (0,)


def test_drop_isolated_nodes_renumbers_in_order() -> None:
    g = RoadGraph([[0, 0], [5, 5], [1, 0], [2, 0]], [[0, 2], [2, 3]], edge_prob=[0.1, 0.2])
    h = g.drop_isolated_nodes()
    np.testing.assert_array_equal(h.nodes, [[0, 0], [1, 0], [2, 0]])
    np.testing.assert_array_equal(h.edges, [[0, 1], [1, 2]])
    np.testing.assert_allclose(h.edge_prob, [0.1, 0.2])
    assert g.num_nodes == 4  # the input is not changed


def test_subgraph_edges_and_neighbors() -> None:
    g = RoadGraph([[0, 0], [1, 0], [2, 0]], [[0, 1], [1, 2]], edge_prob=[0.3, 0.8])
    h = g.subgraph_edges(g.edge_prob > 0.5)
    np.testing.assert_array_equal(h.edges, [[1, 2]])
    assert g.neighbors() == [[1], [0, 2], [1]]
    with pytest.raises(GraphError):
        g.subgraph_edges([True])


@given(
    n=st.integers(min_value=1, max_value=30),
    pairs=arrays(np.int64, st.tuples(st.integers(0, 60), st.just(2)), elements=st.integers(0, 29)),
)
def test_from_edges_always_gives_a_valid_canonical_graph(n: int, pairs: np.ndarray) -> None:
    pairs = pairs % n
    g = RoadGraph.from_edges(np.random.default_rng(0).random((n, 2)), pairs)
    assert np.all(g.edges[:, 0] < g.edges[:, 1])
    expected = {tuple(sorted(p)) for p in pairs.tolist() if p[0] != p[1]}
    assert {tuple(e) for e in g.edges.tolist()} == expected
    assert g.degrees().sum() == 2 * g.num_edges
