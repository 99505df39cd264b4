"""The one road-graph type of the library.

Conventions (SPEC.md): a point is ``(x, y) = (col, row)`` in float64 pixels of the processed
image, origin at the top-left corner of the top-left pixel (a pixel's centre is
``(col + 0.5, row + 0.5)``). Edges are undirected, stored once as ``i < j``, with no duplicates
and no self loops. Formats with other conventions convert in :mod:`linegraph2road.io` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import GraphError
from linegraph2road.georef import Georeference

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["RoadGraph"]


def _readonly(a: NDArray[Any]) -> NDArray[Any]:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class RoadGraph:
    """An undirected road graph in pixel coordinates.

    Parameters
    ----------
    nodes : (N, 2) float64
        Vertex positions ``(x, y)`` in pixels (see module docstring).
    edges : (E, 2) int64
        Undirected edges as node indices with ``i < j``, unique, no self loops. Use
        :meth:`from_edges` to build from unordered or duplicated pairs.
    edge_prob : (E,) float32 or None
        Optional per-edge confidence in ``[0, 1]`` (e.g. the topology head's probability).
    georef : Georeference or None
        Where the pixel grid lies on the Earth; None for pure pixel graphs.

    The arrays are copied on construction and made read-only, so a graph never changes after it is
    made and never aliases its caller's arrays. Invalid input raises :class:`GraphError`.
    """

    nodes: NDArray[np.float64]
    edges: NDArray[np.int64]
    edge_prob: NDArray[np.float32] | None = None
    georef: Georeference | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = np.array(self.nodes, dtype=np.float64, copy=True)
        if nodes.size == 0:
            nodes = nodes.reshape(0, 2)
        if nodes.ndim != 2 or nodes.shape[1] != 2:
            raise GraphError(f"nodes must have shape (N, 2), got {nodes.shape}")
        if not np.isfinite(nodes).all():
            raise GraphError("nodes contain NaN or infinite coordinates")

        raw_edges = np.asarray(self.edges)
        if raw_edges.size == 0:
            raw_edges = raw_edges.reshape(0, 2)
        if raw_edges.ndim != 2 or raw_edges.shape[1] != 2:
            raise GraphError(f"edges must have shape (E, 2), got {raw_edges.shape}")
        if (
            raw_edges.size
            and not np.issubdtype(raw_edges.dtype, np.integer)
            and not np.all(np.equal(np.mod(raw_edges, 1), 0))
        ):
            raise GraphError("edges must hold integer node indices")
        edges = np.array(raw_edges, dtype=np.int64, copy=True)
        n = len(nodes)
        if edges.size:
            if edges.min() < 0 or edges.max() >= n:
                raise GraphError(
                    f"edge refers to node {int(edges.max() if edges.max() >= n else edges.min())}"
                    f" but the graph has {n} nodes"
                )
            if np.any(edges[:, 0] == edges[:, 1]):
                raise GraphError("edges contain self loops; use RoadGraph.from_edges to drop them")
            if np.any(edges[:, 0] > edges[:, 1]):
                raise GraphError("edges must be stored as i < j; use RoadGraph.from_edges")
            if len(np.unique(edges, axis=0)) != len(edges):
                raise GraphError("edges contain duplicates; use RoadGraph.from_edges")

        prob = None
        if self.edge_prob is not None:
            prob = np.array(self.edge_prob, dtype=np.float32, copy=True).reshape(-1)
            if prob.shape != (len(edges),):
                raise GraphError(f"edge_prob must have shape ({len(edges)},), got {prob.shape}")
            if prob.size and (not np.isfinite(prob).all() or prob.min() < 0.0 or prob.max() > 1.0):
                raise GraphError("edge_prob values must lie in [0, 1]")
        if self.georef is not None and not isinstance(self.georef, Georeference):
            raise GraphError(f"georef must be a Georeference, got {type(self.georef).__name__}")

        object.__setattr__(self, "nodes", _readonly(nodes))
        object.__setattr__(self, "edges", _readonly(edges))
        object.__setattr__(self, "edge_prob", None if prob is None else _readonly(prob))
        object.__setattr__(self, "meta", dict(self.meta))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_edges(
        cls,
        nodes: ArrayLike,
        edges: ArrayLike,
        edge_prob: ArrayLike | None = None,
        georef: Georeference | None = None,
        meta: dict[str, Any] | None = None,
    ) -> RoadGraph:
        """Build a graph from unordered, possibly duplicated edge pairs.

        Pairs are ordered to ``i < j``, self loops dropped and duplicates merged (keeping the
        highest probability). Edges keep the order of their first occurrence, so a file's edge
        order survives reading (some reference evaluators depend on it).
        """
        e = np.asarray(edges)
        if e.size == 0:
            e = np.zeros((0, 2), dtype=np.int64)
        if e.ndim != 2 or e.shape[1] != 2:
            raise GraphError(f"edges must have shape (E, 2), got {e.shape}")
        e = np.sort(e.astype(np.int64), axis=1)
        keep = e[:, 0] != e[:, 1]
        e = e[keep]
        p = None
        if edge_prob is not None:
            p = np.asarray(edge_prob, dtype=np.float32).reshape(-1)
            if len(p) != len(keep):
                raise GraphError(f"edge_prob must have one value per edge ({len(keep)})")
            p = p[keep]
        if len(e):
            # Group equal pairs (sorted by pair, then position), keep each group's first position.
            order = np.lexsort((np.arange(len(e)), e[:, 1], e[:, 0]))
            starts = np.ones(len(e), dtype=bool)
            starts[1:] = np.any(e[order][1:] != e[order][:-1], axis=1)
            group_first = order[starts]
            if p is not None:
                group_id = np.cumsum(starts) - 1
                best = np.full(int(starts.sum()), -np.inf, dtype=np.float64)
                np.maximum.at(best, group_id, p[order])
                p = best.astype(np.float32)
            by_position = np.argsort(group_first, kind="stable")
            e = e[group_first[by_position]]
            if p is not None:
                p = p[by_position]
        return cls(np.asarray(nodes, dtype=np.float64), e, p, georef, meta or {})

    @classmethod
    def empty(cls, georef: Georeference | None = None) -> RoadGraph:
        """A graph with no nodes and no edges."""
        return cls(np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int64), None, georef)

    # -- basic properties ----------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def degrees(self) -> NDArray[np.int64]:
        """(N,) int64 number of edges at each node."""
        return np.bincount(self.edges.reshape(-1), minlength=self.num_nodes).astype(np.int64)

    def edge_lengths(self) -> NDArray[np.float64]:
        """(E,) float64 straight-line edge lengths in pixels."""
        d = self.nodes[self.edges[:, 1]] - self.nodes[self.edges[:, 0]]
        return np.hypot(d[:, 0], d[:, 1])

    def total_length(self) -> float:
        """Sum of edge lengths in pixels."""
        return float(self.edge_lengths().sum())

    def neighbors(self) -> list[list[int]]:
        """Adjacency lists: ``neighbors()[i]`` is the sorted list of nodes joined to node i."""
        adj: list[list[int]] = [[] for _ in range(self.num_nodes)]
        for i, j in self.edges.tolist():
            adj[i].append(j)
            adj[j].append(i)
        return [sorted(a) for a in adj]

    # -- derived graphs (never mutate self) ----------------------------------------------------
    def replace(self, **changes: Any) -> RoadGraph:
        """A copy with some fields replaced (``nodes``, ``edges``, ``edge_prob``, ``georef``...)."""
        fields: dict[str, Any] = {
            "nodes": self.nodes,
            "edges": self.edges,
            "edge_prob": self.edge_prob,
            "georef": self.georef,
            "meta": self.meta,
        }
        fields.update(changes)
        return RoadGraph(**fields)

    def with_georef(self, georef: Georeference | None) -> RoadGraph:
        return self.replace(georef=georef)

    def subgraph_edges(self, mask: ArrayLike) -> RoadGraph:
        """Keep the edges where the (E,) boolean ``mask`` is true; nodes are kept as they are."""
        m = np.asarray(mask, dtype=bool)
        if m.shape != (self.num_edges,):
            raise GraphError(f"edge mask must have shape ({self.num_edges},), got {m.shape}")
        prob = None if self.edge_prob is None else self.edge_prob[m]
        return self.replace(edges=self.edges[m], edge_prob=prob)

    def drop_isolated_nodes(self) -> RoadGraph:
        """Remove nodes with no edge, renumbering the rest in their original order."""
        used = np.zeros(self.num_nodes, dtype=bool)
        used[self.edges.reshape(-1)] = True
        if used.all():
            return self
        new_id = np.cumsum(used) - 1
        return self.replace(nodes=self.nodes[used], edges=new_id[self.edges])

    def equals(self, other: RoadGraph, *, atol: float = 0.0) -> bool:
        """Same graph: same nodes in the same order (within ``atol`` pixels), the same set of
        edges (in any order) with the same probabilities. The georeference is not compared."""
        if self.nodes.shape != other.nodes.shape or self.edges.shape != other.edges.shape:
            return False
        if not np.allclose(self.nodes, other.nodes, atol=atol, rtol=0.0):
            return False
        if (self.edge_prob is None) != (other.edge_prob is None):
            return False
        a = np.lexsort((self.edges[:, 1], self.edges[:, 0]))
        b = np.lexsort((other.edges[:, 1], other.edges[:, 0]))
        if not np.array_equal(self.edges[a], other.edges[b]):
            return False
        if self.edge_prob is not None and other.edge_prob is not None:
            return bool(np.allclose(self.edge_prob[a], other.edge_prob[b], atol=1e-6))
        return True

    def __repr__(self) -> str:
        geo = "pixel" if self.georef is None else repr(self.georef)
        prob = ", edge_prob" if self.edge_prob is not None else ""
        return f"RoadGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges}{prob}, {geo})"
