"""Tests for linegraph2road.line_graph: exact edge_index, parity with PyG's LineGraph, degrees."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.errors import GraphError
from linegraph2road.line_graph import line_graph_edge_index, line_graph_pairs

with warnings.catch_warnings():
    # torch_geometric 2.8 calls the deprecated torch.jit.script while importing (not ours to fix).
    warnings.simplefilter("ignore", DeprecationWarning)
    from torch_geometric.data import Data
    from torch_geometric.transforms import LineGraph
    from torch_geometric.utils import to_undirected


def _random_edges(seed: int, n: int, p: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, k=1)
    keep = rng.random(len(i)) < p
    return np.stack([i[keep], j[keep]], axis=1).astype(np.int64).reshape(-1, 2)


def _pyg_line_graph(edges: np.ndarray, n: int) -> torch.Tensor:
    ei = to_undirected(torch.from_numpy(edges.T.copy()), num_nodes=n)
    out = LineGraph()(Data(edge_index=ei, num_nodes=n))
    assert out.edge_index is not None
    return out.edge_index


def test_exact_edge_index_path_plus_chord() -> None:
    # Path 0-1-2-3 plus edge 1-3. Line-graph nodes: e0=(0,1), e1=(1,2), e2=(1,3), e3=(2,3).
    edges = np.array([[0, 1], [1, 2], [1, 3], [2, 3]])
    expected = torch.tensor(
        [[0, 0, 1, 1, 1, 2, 2, 2, 3, 3], [1, 2, 0, 2, 3, 0, 1, 3, 1, 2]], dtype=torch.long
    )
    out = line_graph_edge_index(edges, num_nodes=4)
    assert out.dtype == torch.long
    assert torch.equal(out, expected)
    assert torch.equal(out, _pyg_line_graph(edges, 4))


def test_input_order_defines_line_graph_nodes() -> None:
    edges = np.array([[2, 3], [0, 1], [3, 1]])  # any orientation; node k = edges[k]
    # e0=(2,3) and e2=(3,1) share 3; e1=(0,1) and e2 share 1; e0 and e1 share nothing.
    np.testing.assert_array_equal(line_graph_pairs(edges), [[0, 1, 2, 2], [2, 2, 0, 1]])


def test_empty_and_single_edge() -> None:
    for edges in (np.zeros((0, 2), dtype=np.int64), np.array([[0, 1]])):
        out = line_graph_edge_index(edges)
        assert out.shape == (2, 0)
        assert out.dtype == torch.long


def test_parallel_edges_are_not_duplicated() -> None:
    out = line_graph_pairs(np.array([[0, 1], [1, 0]]))
    np.testing.assert_array_equal(out, [[0, 1], [1, 0]])


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 14), p=st.floats(0.05, 0.9))
@settings(max_examples=40, deadline=None)
def test_equals_pyg_line_graph(seed: int, n: int, p: float) -> None:
    edges = _random_edges(seed, n, p)
    ours = line_graph_edge_index(edges, num_nodes=n)
    assert torch.equal(ours, _pyg_line_graph(edges, n))


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 30), p=st.floats(0.05, 0.6))
@settings(max_examples=40, deadline=None)
def test_line_graph_properties(seed: int, n: int, p: float) -> None:
    edges = _random_edges(seed, n, p)
    rng = np.random.default_rng(seed)
    edges = edges[rng.permutation(len(edges))]  # input order is free
    flip = rng.random(len(edges)) < 0.5
    edges[flip] = edges[flip][:, ::-1]
    ei = line_graph_pairs(edges, num_nodes=n)
    src, dst = ei
    assert (src != dst).all()
    # Sorted, unique, symmetric.
    key = src * max(len(edges), 1) + dst
    assert (np.diff(key) > 0).all()
    assert {(a, b) for a, b in ei.T.tolist()} == {(b, a) for a, b in ei.T.tolist()}
    # One line-graph node per edge; degree of (i, j) = deg(i) + deg(j) - 2.
    deg = np.bincount(edges.reshape(-1), minlength=n)
    lg_deg = np.bincount(src, minlength=len(edges))
    assert len(lg_deg) == len(edges)
    np.testing.assert_array_equal(lg_deg, deg[edges[:, 0]] + deg[edges[:, 1]] - 2)
    # Adjacent iff the edges share an endpoint.
    share = {
        (a, b)
        for a in range(len(edges))
        for b in range(len(edges))
        if a != b and set(edges[a].tolist()) & set(edges[b].tolist())
    }
    assert share == {(a, b) for a, b in ei.T.tolist()}


def test_rejects_bad_input() -> None:
    with pytest.raises(GraphError, match="shape"):
        line_graph_pairs(np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(GraphError, match="integer"):
        line_graph_pairs(np.zeros((3, 2)))
    with pytest.raises(GraphError, match="self loops"):
        line_graph_pairs(np.array([[1, 1]]))
    with pytest.raises(GraphError, match="num_nodes"):
        line_graph_pairs(np.array([[0, 5]]), num_nodes=3)
    with pytest.raises(GraphError, match="negative"):
        line_graph_pairs(np.array([[0, -1]]))
