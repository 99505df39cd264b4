"""Line graph of the candidate graph (paper section 3.4, Definition 1).

Each node of ``L(G)`` is an edge of ``G``; two are adjacent iff the edges share an endpoint. The
result is a PyTorch Geometric ``edge_index`` with both directions, no self loops, no duplicates,
sorted (coalesced) like :func:`torch_geometric.utils.coalesce`, and equal to what
:class:`torch_geometric.transforms.LineGraph` builds for the same undirected graph when the input
edges are sorted ``i < j`` (as :func:`linegraph2road.candidates.candidate_edges` returns them).

Vectorised with NumPy: the 2E edge ends are grouped by vertex with one sort, then all ordered pairs
inside every group are emitted with ``np.repeat`` arithmetic; no Python loop over vertices/edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from linegraph2road.errors import GraphError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["line_graph_edge_index", "line_graph_pairs"]


def _check_edges(edges: ArrayLike, num_nodes: int | None) -> NDArray[np.int64]:
    e = np.asarray(edges)
    if e.size == 0:
        e = e.reshape(0, 2)
    if e.ndim != 2 or e.shape[1] != 2:
        raise GraphError(f"edges must have shape (E, 2), got {e.shape}")
    if e.size and not np.issubdtype(e.dtype, np.integer):
        raise GraphError(f"edges must hold integer node indices, got dtype {e.dtype}")
    e = e.astype(np.int64, copy=False)
    if e.size:
        if e.min() < 0:
            raise GraphError(f"edges refer to a negative node index {int(e.min())}")
        if num_nodes is not None and e.max() >= num_nodes:
            raise GraphError(f"edge refers to node {int(e.max())} but num_nodes is {num_nodes}")
        if np.any(e[:, 0] == e[:, 1]):
            raise GraphError("edges contain self loops; remove them first")
    return e


def line_graph_pairs(edges: ArrayLike, *, num_nodes: int | None = None) -> NDArray[np.int64]:
    """Adjacent edge pairs of the line graph as a NumPy array.

    Parameters
    ----------
    edges : (E, 2) int
        Undirected edges of ``G`` as node-index pairs (any orientation, no self loops).
    num_nodes : int or None
        Number of nodes of ``G`` (only checked against the indices); None = ``max + 1``.

    Returns
    -------
    (2, M) int64
        Row 0 source, row 1 target edge index (positions in ``edges``); both directions present,
        no self loops, no duplicates, sorted by (source, target).
    """
    e = _check_edges(edges, num_nodes)
    n_edges = len(e)
    if n_edges < 2:
        return np.zeros((2, 0), dtype=np.int64)
    ends = e.reshape(-1)  # incidence t belongs to edge t // 2
    order = np.argsort(ends, kind="stable")
    inc_edge = order // 2  # edge ids grouped by vertex
    sorted_ends = ends[order]
    group_start = np.flatnonzero(np.concatenate(([True], sorted_ends[1:] != sorted_ends[:-1])))
    group_size = np.diff(np.append(group_start, sorted_ends.size))
    per_inc = np.repeat(group_size, group_size)  # size of the group of every incidence
    inc_start = np.repeat(group_start, group_size)
    total = int(per_inc.sum())
    src = np.repeat(inc_edge, per_inc)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(per_inc) - per_inc, per_inc)
    dst = inc_edge[np.repeat(inc_start, per_inc) + offset]
    keep = src != dst
    # Coalesce: one int64 key per pair, sorted and unique (parallel edges share two vertices).
    # (np.sort + neighbour test: numpy 2.x's hash-based np.unique is ~50x slower here.)
    key = np.sort(src[keep] * n_edges + dst[keep])
    if key.size:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return np.stack(np.divmod(key, n_edges)).astype(np.int64, copy=False)


def line_graph_edge_index(edges: ArrayLike, *, num_nodes: int | None = None) -> torch.Tensor:
    """``edge_index`` of the line graph ``L(G)`` as a PyG-style ``torch.LongTensor``.

    Parameters
    ----------
    edges : (E, 2) int64
        Candidate edges of ``G`` (node-index pairs, no self loops). Line-graph node ``k`` is
        ``edges[k]`` (input order is kept).
    num_nodes : int or None
        Number of nodes of ``G``, used to validate indices.

    Returns
    -------
    torch.LongTensor of shape (2, M)
        Directed pairs ``(k, l)`` for every two edges sharing an endpoint, both directions, no
        self loops or duplicates, sorted by source then target. The line-graph node ``(i, j)``
        has degree ``deg(i) + deg(j) - 2`` (for a graph without parallel edges).
    """
    return torch.from_numpy(line_graph_pairs(edges, num_nodes=num_nodes))
