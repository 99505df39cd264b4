"""Overpass/underpass crossings: from OSM tags, or by Algorithm 3 (paper, appendix 0.E).

A *crossing* is a pair of edges whose straight segments intersect (touching counts, parallel or
collinear overlaps do not) without sharing an endpoint. Its *endpoints* -- the up to four nodes
of the two edges -- are what the overpass mask marks (section 3.5). Edge pairs are found with an
rtree over edge bounding boxes, kept up to date as nodes move.

Tags (:func:`tagged_crossings`): a crossing counts when the two edges lie on different
:meth:`~linegraph2road.data_prep.tagged.TaggedGraph.level` s, or either is a bridge or tunnel.
Two untagged same-level edges that cross without a shared node are a mapping error, not an
overpass, and are left alone.

Algorithm 3 (:func:`detect_overpasses`) counts every crossing and refines the graph, for at most
``T`` iterations (our reading of the pseudo-code, where it leaves details open):

1. For every crossing at point ``p`` and every endpoint ``v`` with ``d = |v - p| < tau``, add
   ``((tau - d) / tau) * u`` to ``Delta[v]``, where ``u`` is the unit vector from ``v`` to "its
   neighbour": the neighbour whose edge points most directly away from ``p`` (so a node sitting
   on top of a crossing slides back along its own road, "shifted along their incident
   directions"); a dead end has only its partner in the crossing edge, so an end that
   overshoots another road is pulled back behind it and that false planar crossing disappears.
2. Every ``P``-th iteration, instead of moving, contract "stacked" nodes: a degree-2 node with a
   displacement this iteration (an endpoint within ``tau`` of a crossing) whose distance to the
   straight line between its two neighbours is ``< gamma`` is removed and its neighbours joined
   (only when both of its edges carry the same tags and the join would not duplicate an edge).
   We restrict this to the nodes in conflict; the pseudo-code's "for each node" would also
   simplify the graph far from any crossing, changing labels that have nothing to do with it.
3. Otherwise every node with ``|Delta[v]| > epsilon`` moves by ``alpha`` pixels along
   ``Delta[v]``, unless that lands within ``alpha / 2`` of another node ("overlapping"); when no
   node moves the refinement has converged.

The crossings left at the end are the overpasses/underpasses: true crossings stay crossed, with
their endpoints pushed to at least ``tau`` from the crossing point where the graph allows it.
Defaults (the paper gives no values; pixels at 1 m/px): ``tau = 6`` (twice the 3 px overpass
disc, so an endpoint's disc keeps clear of the crossing itself), ``gamma = 1``, ``alpha = 1``,
``T = 100``, ``P = 10``, ``epsilon = 1e-3``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from linegraph2road.data_prep._overpass_kernels import PairRule, Refiner
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_ALGORITHM3",
    "OverpassResult",
    "detect_overpasses",
    "edge_crossings",
    "find_crossings",
    "refine_crossings",
    "tagged_crossings",
]

#: Algorithm 3 defaults (pixels; see the module docstring).
DEFAULT_ALGORITHM3: dict[str, float | int] = {
    "tau": 6.0,
    "gamma": 1.0,
    "alpha": 1.0,
    "T": 100,
    "P": 10,
    "epsilon": 1e-3,
}


@dataclass(frozen=True, eq=False)
class OverpassResult:
    """Crossings of a (refined) graph.

    Attributes
    ----------
    graph : TaggedGraph
        The graph after refinement (moved nodes, contracted stacked nodes; tags follow edges;
        the georeference is kept). Node and edge ids below refer to it.
    pairs : (K, 2) int64
        Crossing edge pairs (rows of ``graph.graph.edges``), ``a < b``, sorted.
    points : (K, 2) float64
        Crossing points ``(x, y)`` pixels, one per pair.
    endpoints : (M,) int64
        Sorted ids of the nodes of the crossing edges.
    method : str
        ``"tags"``, ``"algorithm3"`` or ``"custom"`` (a callable rule).
    iterations : int
        Refinement iterations run (0 when nothing crossed).
    params : dict
        The parameters used.
    """

    graph: TaggedGraph
    pairs: NDArray[np.int64]
    points: NDArray[np.float64]
    endpoints: NDArray[np.int64]
    method: str
    iterations: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint_points(self) -> NDArray[np.float64]:
        """(M, 2) float64 positions of :attr:`endpoints`."""
        return self.graph.graph.nodes[self.endpoints]


def _as_tagged(graph: RoadGraph | TaggedGraph) -> TaggedGraph:
    if isinstance(graph, TaggedGraph):
        return graph
    if isinstance(graph, RoadGraph):
        return TaggedGraph.untagged(graph)
    raise GraphError(f"expected a RoadGraph or TaggedGraph, got {type(graph).__name__}")


def _check_params(
    tau: float, gamma: float, alpha: float, T: int, P: int, epsilon: float
) -> dict[str, Any]:
    vals = {"tau": tau, "gamma": gamma, "alpha": alpha, "epsilon": epsilon}
    for name, v in vals.items():
        if not (np.isfinite(float(v)) and float(v) >= 0):
            raise GraphError(
                f"Algorithm 3 parameter {name} must be a finite number >= 0, got {v!r}"
            )
    if float(alpha) <= 0:
        raise GraphError(f"Algorithm 3 step alpha must be > 0 pixels, got {alpha!r}")
    if int(T) != T or T < 0 or int(P) != P or P < 1:
        raise GraphError(f"Algorithm 3 needs integers T >= 0 and P >= 1, got T={T!r}, P={P!r}")
    return {
        "tau": float(tau),
        "gamma": float(gamma),
        "alpha": float(alpha),
        "T": int(T),
        "P": int(P),
        "epsilon": float(epsilon),
    }


def _tag_groups(tagged: TaggedGraph) -> NDArray[np.int64]:
    """(E,) id per distinct (bridge, tunnel, layer, highway): edges that may be joined."""
    if tagged.graph.num_edges == 0:
        return np.zeros(0, dtype=np.int64)
    keys = [
        (bool(b), bool(t), int(lv), str(h))
        for b, t, lv, h in zip(
            tagged.bridge, tagged.tunnel, tagged.layer, tagged.highway, strict=True
        )
    ]
    ids = {k: i for i, k in enumerate(sorted(set(keys)))}
    return np.array([ids[k] for k in keys], dtype=np.int64)


def _tag_rule(tagged: TaggedGraph) -> PairRule:
    level = tagged.level()
    struct = tagged.bridge | tagged.tunnel

    def rule(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
        return np.asarray((level[a] != level[b]) | struct[a] | struct[b])

    return rule


def _rule(rule: Any, tagged: TaggedGraph) -> PairRule:
    if callable(rule):
        return rule
    if rule == "tags":
        return _tag_rule(tagged)
    if rule == "all":
        return _all_pairs
    raise GraphError(f"unknown crossing rule {rule!r}; use 'all', 'tags' or a callable")


def _all_pairs(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
    return np.ones(len(a), dtype=bool)


def refine_crossings(
    graph: RoadGraph | TaggedGraph,
    *,
    rule: Literal["all", "tags"] | PairRule = "all",
    movable: ArrayLike | None = None,
    tau: float = 6.0,
    gamma: float = 1.0,
    alpha: float = 1.0,
    T: int = 100,
    P: int = 10,
    epsilon: float = 1e-3,
) -> OverpassResult:
    """The refinement loop of Algorithm 3 with a choice of which crossings count.

    Parameters
    ----------
    graph : RoadGraph or TaggedGraph
        Pixel-coordinate graph (not modified).
    rule : {"all", "tags"} or callable
        ``"all"``: every crossing (Algorithm 3); ``"tags"``: only crossings of different levels
        or involving a bridge/tunnel; or ``rule(a, b) -> (K,) bool`` on (K,) int64 arrays of
        input edge ids.
    movable : (N,) bool or None
        Nodes allowed to move or be contracted (default all).
    tau, gamma, alpha, T, P, epsilon
        See the module docstring (pixels, iterations).
    """
    params = _check_params(tau, gamma, alpha, T, P, epsilon)
    tagged = _as_tagged(graph)
    g = tagged.graph
    mov = np.ones(g.num_nodes, dtype=bool) if movable is None else np.asarray(movable, dtype=bool)
    if mov.shape != (g.num_nodes,):
        raise GraphError(f"movable must have one flag per node ({g.num_nodes}), got {mov.shape}")
    refiner = Refiner(
        g.nodes,
        g.edges,
        rule=_rule(rule, tagged),
        group=_tag_groups(tagged),
        movable=mov,
    )
    iterations = 0
    for t in range(1, params["T"] + 1):
        if not refiner.pairs:
            break
        iterations = t
        delta = refiner.displacements(params["tau"])
        if t % params["P"] == 0:
            refiner.contract(list(delta), gamma=params["gamma"])
        elif refiner.move(delta, alpha=params["alpha"], epsilon=params["epsilon"]) == 0:
            break
    nodes, edges, src, rows = refiner.compact()
    prob = None if g.edge_prob is None else g.edge_prob[src]
    out = TaggedGraph(
        RoadGraph(nodes, edges, prob, g.georef, g.meta),
        tagged.bridge[src],
        tagged.tunnel[src],
        tagged.layer[src],
        tagged.tagged,
        tagged.highway[src],
        tagged.way_id[src],
    )
    items = sorted((tuple(sorted((rows[a], rows[b]))), p) for (a, b), p in refiner.pairs.items())
    pairs = np.array([k for k, _ in items], dtype=np.int64).reshape(-1, 2)
    points = np.array([p for _, p in items], dtype=np.float64).reshape(-1, 2)
    ends = np.unique(edges[pairs].reshape(-1)) if len(pairs) else np.zeros(0, dtype=np.int64)
    method = rule if isinstance(rule, str) and rule == "tags" else "algorithm3"
    if callable(rule):
        method = "custom"
    return OverpassResult(out, pairs, points, ends.astype(np.int64), method, iterations, params)


def edge_crossings(graph: RoadGraph) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Every crossing of ``graph`` as it is (no refinement).

    Returns
    -------
    pairs : (K, 2) int64
        Edge index pairs ``a < b``, sorted.
    points : (K, 2) float64
        Crossing points ``(x, y)`` pixels.
    """
    r = Refiner(
        graph.nodes,
        graph.edges,
        rule=_all_pairs,
        group=np.zeros(graph.num_edges, dtype=np.int64),
        movable=np.zeros(graph.num_nodes, dtype=bool),
    )
    items = sorted(r.pairs.items())
    pairs = np.array([k for k, _ in items], dtype=np.int64).reshape(-1, 2)
    return pairs, np.array([p for _, p in items], dtype=np.float64).reshape(-1, 2)


def detect_overpasses(
    graph: RoadGraph | TaggedGraph,
    *,
    tau: float = 6.0,
    gamma: float = 1.0,
    alpha: float = 1.0,
    T: int = 100,
    P: int = 10,
    epsilon: float = 1e-3,
) -> OverpassResult:
    """Algorithm 3: refine the graph and return its overpass/underpass crossings.

    Parameters
    ----------
    graph : RoadGraph or TaggedGraph
        Pixel-coordinate graph; tags, when present, only decide which edges may be joined.
    tau : float, default 6
        Intersection threshold (px): endpoints closer than ``tau`` to a crossing are pushed.
    gamma : float, default 1
        Merge gap (px) for contracting stacked degree-2 nodes.
    alpha : float, default 1
        Step (px) of one move.
    T : int, default 100
        Maximum iterations.
    P : int, default 10
        Contraction period (iterations).
    epsilon : float, default 1e-3
        Tolerance on ``|Delta[v]|`` below which a node does not move.

    Returns
    -------
    OverpassResult
        ``method="algorithm3"``.
    """
    return refine_crossings(
        graph, rule="all", tau=tau, gamma=gamma, alpha=alpha, T=T, P=P, epsilon=epsilon
    )


def tagged_crossings(
    tagged: TaggedGraph,
    *,
    tau: float = 6.0,
    gamma: float = 1.0,
    alpha: float = 1.0,
    T: int = 100,
    P: int = 10,
    epsilon: float = 1e-3,
) -> OverpassResult:
    """Crossings from bridge/tunnel/layer tags, their endpoints separated as in Algorithm 3.

    Only tagged crossings (different levels, or a bridge/tunnel) count; the same refinement
    then pushes their endpoints off the crossing points. Parameters as :func:`detect_overpasses`.
    """
    if not isinstance(tagged, TaggedGraph):
        raise GraphError(f"tagged_crossings needs a TaggedGraph, got {type(tagged).__name__}")
    return refine_crossings(
        tagged, rule="tags", tau=tau, gamma=gamma, alpha=alpha, T=T, P=P, epsilon=epsilon
    )


def find_crossings(
    tagged: TaggedGraph,
    *,
    method: Literal["auto", "tags", "algorithm3"] = "auto",
    tau: float = 6.0,
    gamma: float = 1.0,
    alpha: float = 1.0,
    T: int = 100,
    P: int = 10,
    epsilon: float = 1e-3,
) -> OverpassResult:
    """Overpass crossings of a tile's graph.

    ``method="auto"`` uses the tags when ``tagged.tagged`` is true (OSM, SpaceNet) and
    Algorithm 3 otherwise (benchmark pickles); ``"tags"`` on an untagged graph raises.
    Other parameters as :func:`detect_overpasses`.
    """
    kw = {"tau": tau, "gamma": gamma, "alpha": alpha, "T": T, "P": P, "epsilon": epsilon}
    tagged = _as_tagged(tagged)
    if method == "auto":
        method = "tags" if tagged.tagged else "algorithm3"
    if method == "tags":
        if not tagged.tagged:
            raise GraphError(
                "crossing method 'tags' needs a graph with bridge/tunnel/layer tags (OSM); this "
                "one has none: use method='algorithm3' or 'auto'"
            )
        return tagged_crossings(tagged, **kw)  # type: ignore[arg-type]
    if method == "algorithm3":
        return detect_overpasses(tagged, **kw)  # type: ignore[arg-type]
    raise GraphError(f"unknown crossing method {method!r}; use 'auto', 'tags' or 'algorithm3'")
