"""Parts shared by the two APLS variants (private): the result type, metric frames, graph clean-up,
densification and compressed sparse row adjacency."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import GraphError, L2RError
from linegraph2road.georef import WGS84, transform_points, utm_crs_for
from linegraph2road.graph import RoadGraph
from linegraph2road.io.nx import GEOMETRY_VERTEX_KEY

from ._units import same_frame

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "GEOMETRY_VERTEX_KEY",
    "AplsParameterError",
    "AplsResult",
    "Csr",
    "MetricGraph",
    "densify",
    "edge_lengths",
    "metric_graphs",
    "to_csr",
]


class AplsParameterError(L2RError, ValueError):
    """An APLS parameter that cannot be used (unknown variant, non-positive distance, ...)."""


def positive(name: str, value: float) -> float:
    """``value`` as a float, or :class:`AplsParameterError` unless finite and > 0."""
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise AplsParameterError(f"{name} must be a positive number of metres, got {value!r}")
    return v


@dataclass(frozen=True)
class AplsResult:
    """Outcome of one APLS evaluation.

    Attributes
    ----------
    score : float
        The APLS value in ``[0, 1]``: the mean of the two directions (Sat2Graph variant) or their
        harmonic mean (CosmiQ variant). NaN where the reference gives NaN (Sat2Graph variant, a
        direction without any scored pair); datasets then skip the tile, as SAM-Road does.
    gt_to_prop, prop_to_gt : float
        The one-way scores: ground-truth control points snapped onto the proposal, and the
        proposal's onto the ground truth.
    variant : str
        ``"sat2graph"`` or ``"cosmiq"``.
    n_pairs_gt_to_prop, n_pairs_prop_to_gt : int
        Number of scored paths (Sat2Graph: unordered pairs; CosmiQ: ordered pairs).
    n_control_gt, n_control_prop : int
        Number of control points of each graph.
    n_snapped_gt, n_snapped_prop : int
        How many of them found a place on the other graph.
    params : dict
        Every parameter the evaluation used (metres), for reports.
    """

    score: float
    gt_to_prop: float
    prop_to_gt: float
    variant: str
    n_pairs_gt_to_prop: int = 0
    n_pairs_prop_to_gt: int = 0
    n_control_gt: int = 0
    n_control_prop: int = 0
    n_snapped_gt: int = 0
    n_snapped_prop: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (JSON-serialisable) of every field."""
        out = asdict(self)
        out["params"] = dict(self.params)
        return out


@dataclass(frozen=True)
class MetricGraph:
    """A graph ready for scoring: positions in metres, no isolated nodes, no duplicate positions.

    Attributes
    ----------
    xy : (N, 2) float64
        Positions in metres in the frame shared with the other graph (see ``_units.same_frame``).
    frame : (N, 2) float64
        Positions in metres relative to the tile, measured from the *centre* of the top-left
        pixel, i.e. the pixel-index frame that the references' pickles use; only used for the
        region test and the 2 m de-duplication cells of the Sat2Graph variant.
    edges : (E, 2) int64
        Undirected edges, ``i < j``, unique.
    vertex : (N,) bool
        True for nodes that were interior vertices of an edge geometry before the graph was read
        (see :data:`GEOMETRY_VERTEX_KEY`), False for graph nodes.
    """

    xy: NDArray[np.float64]
    frame: NDArray[np.float64]
    edges: NDArray[np.int64]
    vertex: NDArray[np.bool_]

    @property
    def num_nodes(self) -> int:
        return len(self.xy)


@dataclass(frozen=True)
class Csr:
    """Symmetric adjacency in compressed sparse row form (neighbours sorted by index)."""

    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    weights: NDArray[np.float64]


def _check_graph(graph: Any, name: str) -> None:
    if not isinstance(graph, RoadGraph):
        raise GraphError(f"{name} must be a RoadGraph, got {type(graph).__name__}")


def _tile_frame(
    gt: RoadGraph, xy_gt: NDArray[np.float64], xy_pred: NDArray[np.float64], gsd: float | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both graphs' metre positions measured from the centre of the ground truth's top-left
    pixel, ``y`` pointing down the image (the references' pixel-index frame)."""
    flip = np.array([1.0, 1.0])
    if gt.georef is None or gt.num_nodes == 0:
        origin = np.full(2, 0.5 * (1.0 if gsd is None else float(gsd)))
    else:
        lonlat = gt.georef.pixel_to_lonlat(gt.nodes)
        utm = utm_crs_for(lonlat)
        corner = gt.georef.pixel_to_lonlat(np.array([[0.5, 0.5]]))
        origin = transform_points(corner, WGS84, utm)[0]
        flip = np.array([1.0, -1.0])  # UTM northing grows up, image rows grow down
    return (xy_gt - origin) * flip, (xy_pred - origin) * flip


def _clean(
    xy: NDArray[np.float64],
    frame: NDArray[np.float64],
    edges: NDArray[np.int64],
    vertex: NDArray[np.bool_],
) -> MetricGraph:
    """Merge nodes at the same position (to 1e-6 m); drop self loops, repeated and isolated nodes.

    The order of the edges (and of the nodes, by first index) is kept: the Sat2Graph variant
    numbers its densified nodes in edge order, as the reference does.
    """
    if len(edges) == 0 or len(xy) == 0:
        return MetricGraph(
            np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int64), np.zeros(0, bool)
        )
    _, first, inverse = np.unique(
        np.round(xy * 1e6), axis=0, return_index=True, return_inverse=True
    )
    e = np.sort(inverse.reshape(-1)[edges], axis=1)
    e = e[e[:, 0] != e[:, 1]]
    _, keep = np.unique(e, axis=0, return_index=True)
    e = e[np.sort(keep)]
    used = np.zeros(len(first), dtype=bool)
    used[e.reshape(-1)] = True
    groups = np.flatnonzero(used)
    order = np.argsort(first[groups], kind="stable")
    new_id = np.full(len(first), -1, dtype=np.int64)
    new_id[groups[order]] = np.arange(len(groups))
    rep = first[groups[order]]
    e = np.sort(new_id[e], axis=1)
    # A merged node is a geometry vertex only if all of its members are.
    is_node = np.zeros(len(first), dtype=bool)
    np.logical_or.at(is_node, inverse.reshape(-1), ~vertex)
    return MetricGraph(
        xy[rep].copy(), frame[rep].copy(), e.astype(np.int64), ~is_node[groups[order]]
    )


def metric_graphs(
    gt: RoadGraph, pred: RoadGraph, *, gsd: float | None
) -> tuple[MetricGraph, MetricGraph]:
    """Both graphs in one metric frame, cleaned (see :func:`_clean`)."""
    _check_graph(gt, "gt")
    _check_graph(pred, "pred")
    if gsd is not None:
        positive("gsd", gsd)
    xy_gt, xy_pred = same_frame(gt, pred, gsd=gsd)
    frames = _tile_frame(gt, xy_gt, xy_pred, gsd)
    out = []
    for g, xy, frame in ((gt, xy_gt, frames[0]), (pred, xy_pred, frames[1])):
        vertex = np.zeros(g.num_nodes, dtype=bool)
        start = g.meta.get(GEOMETRY_VERTEX_KEY)
        if start is not None:
            vertex[int(start) :] = True
        out.append(_clean(np.asarray(xy, dtype=np.float64), frame, np.asarray(g.edges), vertex))
    return out[0], out[1]


def to_csr(
    n: int,
    edges: NDArray[np.int64],
    weights: NDArray[np.float64],
    backward: NDArray[np.float64] | None = None,
) -> Csr:
    """CSR of ``n`` nodes from (E, 2) undirected edges.

    ``weights`` (E,) apply from ``edges[:, 0]`` to ``edges[:, 1]``; ``backward`` (E,), if given,
    the other way (default: the same).
    """
    back = weights if backward is None else backward
    src = np.concatenate([edges[:, 0], edges[:, 1]]).astype(np.int64)
    dst = np.concatenate([edges[:, 1], edges[:, 0]]).astype(np.int64)
    w = np.concatenate([weights, back]).astype(np.float64)
    order = np.lexsort((dst, src))
    src, dst, w = src[order], dst[order], w[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return Csr(indptr, dst, w)


def densify(
    g: MetricGraph,
    *,
    step: float,
    split_above: float,
    lengths: NDArray[np.float64] | None = None,
) -> MetricGraph:
    """Split every edge longer than ``split_above`` metres into ``int(d / step) + 1`` equal parts.

    ``lengths`` (E,) are the edge lengths ``d`` in metres (default: straight lengths of ``xy``).

    Nodes are numbered as Sat2Graph's ``GraphDensify`` numbers them: walking the edges in order,
    each edge from its first to its second node, every node gets the next index when it is first
    met (the edge's first node, its new interior points, its second node). ``step`` 2 m and
    ``split_above`` 3 m are the reference's values.
    """
    if g.num_nodes == 0:
        return g
    a, b = g.edges[:, 0], g.edges[:, 1]
    d = edge_lengths(g) if lengths is None else lengths
    parts = np.where(d > split_above, (d / step).astype(np.int64) + 1, 1)
    n_ev = parts + 1  # events per edge: a, parts - 1 interior points, b
    edge_of = np.repeat(np.arange(len(parts)), n_ev)
    first = np.cumsum(n_ev) - n_ev
    k = np.arange(int(n_ev.sum())) - first[edge_of]  # 0 .. parts
    is_a = k == 0
    is_b = k == parts[edge_of]
    orig = np.where(is_a, a[edge_of], np.where(is_b, b[edge_of], -1))
    is_orig = orig >= 0
    # An original node is new at its first event; interior points are always new.
    new = ~is_orig
    pos = np.flatnonzero(is_orig)
    _, first_pos = np.unique(orig[pos], return_index=True)
    new[pos[first_pos]] = True
    ids_at_new = np.cumsum(new) - 1
    orig_id = np.full(g.num_nodes, -1, dtype=np.int64)
    orig_id[orig[pos[first_pos]]] = ids_at_new[pos[first_pos]]
    ev_id = np.where(is_orig, orig_id[np.maximum(orig, 0)], ids_at_new)
    alpha = (k / parts[edge_of])[:, None]
    xy = g.xy[a[edge_of]] * (1.0 - alpha) + g.xy[b[edge_of]] * alpha
    frame = g.frame[a[edge_of]] * (1.0 - alpha) + g.frame[b[edge_of]] * alpha
    xy[is_orig] = g.xy[orig[is_orig]]
    frame[is_orig] = g.frame[orig[is_orig]]
    n = int(new.sum())
    out_xy = np.empty((n, 2))
    out_frame = np.empty((n, 2))
    out_vertex = np.ones(n, dtype=bool)
    out_xy[ids_at_new[new]] = xy[new]
    out_frame[ids_at_new[new]] = frame[new]
    out_vertex[orig_id[orig_id >= 0]] = g.vertex[orig_id >= 0]
    # Consecutive events of one edge are joined.
    same_edge = edge_of[1:] == edge_of[:-1]
    e = np.column_stack([ev_id[:-1][same_edge], ev_id[1:][same_edge]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    return MetricGraph(out_xy, out_frame, e.astype(np.int64), out_vertex)


def edge_lengths(g: MetricGraph) -> NDArray[np.float64]:
    """(E,) float64 straight edge lengths in metres."""
    d = g.xy[g.edges[:, 1]] - g.xy[g.edges[:, 0]]
    return np.hypot(d[:, 0], d[:, 1])
