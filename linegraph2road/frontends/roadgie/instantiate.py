"""Topo-semantic road instantiation (RoadGIE 4.3): keep the road the prompts are about.

A user who prompts a highway may not want the residential streets beside it. The paper's
Algorithm 1 was lost in extraction; its text names the steps (regularise the mask, extract
centre-lines, compute segment attributes, group the segments, rank the groups by their relevance
to the prompt, grow the top one into the instance mask). Our version, on a road probability map:

1. **Centre-lines and segments**: :func:`linegraph2road.mask2graph.mask_to_graph` (threshold,
   hole filling and speck removal are the "regularisation"); each graph edge is a segment.
2. **Attributes** per segment (:func:`segment_attributes`): ``length`` (px), ``width`` (twice the
   mean distance-transform value of the binary mask along the segment, px), ``direction``
   (degrees in [0, 180)) and ``probability`` (mean road probability along the segment).
3. **Groups** (:func:`group_segments`): segments that share a graph node (topology) and look
   alike (semantics: widths within ``width_tolerance`` of the wider one, mean probabilities
   within ``probability_tolerance``) are joined, transitively (union-find). A wide road meeting
   narrow streets at a junction therefore stays a group of its own.
4. **Ranking**: each pixel of the binary mask belongs to the group of its nearest segment
   (Euclidean distance transform on the rasterised segments), and only within a connected
   component of the mask that holds a segment. A group's relevance is the number of positive
   prompt points on its pixels minus the number of negative ones (scribbles count each of their
   points).
5. **Growing**: the instance is every mask pixel of the groups with positive relevance (the top
   group when the prompts touch one road); the output keeps the probabilities there and is 0
   elsewhere. Without a positive prompt on any group the probabilities are returned unchanged:
   there is nothing to instantiate.

The paper also uses the instantiation while training; here it is an inference switch
(``instantiate=`` of :mod:`linegraph2road.inference.interactive`, ``--instantiate`` of
``l2r eval-interactive``), so that its effect can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from linegraph2road.errors import ParameterError
from linegraph2road.mask2graph import mask_to_graph
from linegraph2road.prompts import Prompt

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["Instance", "group_segments", "instantiate_roads", "segment_attributes"]


@dataclass(frozen=True)
class Instance:
    """What :func:`instantiate_roads` found.

    Attributes
    ----------
    probability : (H, W) float32
        The input probabilities on the instance, 0 elsewhere (the input itself when
        ``applied`` is False).
    applied : bool
        Whether a group was selected (False: no positive prompt on any road).
    graph : RoadGraph
        The centre-line graph of the mask (segments = edges).
    groups : (E,) int64
        Group of each segment.
    relevance : (G,) float64
        Relevance of each group to the prompts.
    kept : tuple of int
        The groups grown into the instance.
    """

    probability: NDArray[np.float32]
    applied: bool
    graph: RoadGraph
    groups: NDArray[np.int64]
    relevance: NDArray[np.float64]
    kept: tuple[int, ...]


def _samples(graph: RoadGraph, spacing: float = 1.0) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Points every ``spacing`` px along every edge and the edge each belongs to."""
    a, b = graph.nodes[graph.edges[:, 0]], graph.nodes[graph.edges[:, 1]]
    counts = np.maximum(np.ceil(np.hypot(*(b - a).T) / spacing).astype(np.int64), 1) + 1
    owner = np.repeat(np.arange(len(a)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    t = k / (counts[owner] - 1)
    return a[owner] + (b - a)[owner] * t[:, None], owner


def segment_attributes(
    graph: RoadGraph, probability: NDArray[np.floating], binary: NDArray[np.bool_]
) -> dict[str, NDArray[np.float64]]:
    """Per-edge ``length``, ``width``, ``direction`` and ``probability`` (module docstring).

    Returns
    -------
    dict of (E,) float64 arrays
    """
    e = graph.num_edges
    if e == 0:
        return {k: np.zeros(0) for k in ("length", "width", "direction", "probability")}
    pts, owner = _samples(graph)
    h, w = binary.shape
    rows = np.clip(np.floor(pts[:, 1]).astype(np.int64), 0, h - 1)
    cols = np.clip(np.floor(pts[:, 0]).astype(np.int64), 0, w - 1)
    dist = ndimage.distance_transform_edt(binary)
    width = 2.0 * np.bincount(owner, dist[rows, cols], e) / np.bincount(owner, None, e)
    prob = np.bincount(owner, probability[rows, cols], e) / np.bincount(owner, None, e)
    d = graph.nodes[graph.edges[:, 1]] - graph.nodes[graph.edges[:, 0]]
    direction = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 180.0
    return {
        "length": graph.edge_lengths(),
        "width": width,
        "direction": direction,
        "probability": prob,
    }


def group_segments(
    graph: RoadGraph,
    attributes: dict[str, NDArray[np.float64]],
    *,
    width_tolerance: float = 0.5,
    probability_tolerance: float = 0.25,
) -> NDArray[np.int64]:
    """``(E,)`` group labels ``0 .. G - 1``: segments sharing a node with similar width and
    probability, joined transitively (module docstring)."""
    e = graph.num_edges
    parent = np.arange(e)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    width, prob = attributes["width"], attributes["probability"]
    incident: list[list[int]] = [[] for _ in range(graph.num_nodes)]
    for k, (u, v) in enumerate(graph.edges.tolist()):
        incident[u].append(k)
        incident[v].append(k)
    for edges in incident:
        for i, a in enumerate(edges):
            for b in edges[i + 1 :]:
                similar_width = abs(width[a] - width[b]) <= width_tolerance * max(
                    width[a], width[b], 1e-9
                )
                if similar_width and abs(prob[a] - prob[b]) <= probability_tolerance:
                    parent[find(a)] = find(b)
    roots = np.array([find(i) for i in range(e)], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64).reshape(-1)


def instantiate_roads(
    probability: NDArray[np.floating],
    prompts: Sequence[Prompt],
    *,
    threshold: float = 0.5,
    width_tolerance: float = 0.5,
    probability_tolerance: float = 0.25,
    mask2graph_options: dict[str, Any] | None = None,
) -> Instance:
    """The road instance the prompts point at (see the module docstring).

    Parameters
    ----------
    probability : (H, W) float
        Road probability in [0, 1]. Not modified.
    prompts : sequence of Prompt
        Pixel coordinates of the same grid.
    threshold : float
        Road pixels: ``probability > threshold`` (also mask2graph's threshold).
    width_tolerance, probability_tolerance : float
        Grouping similarity (relative width difference, absolute probability difference).
    mask2graph_options : dict, optional
        Other keyword arguments of :func:`~linegraph2road.mask2graph.mask_to_graph`.

    Returns
    -------
    Instance
    """
    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ParameterError(f"probability must be (H, W), got {prob.shape}")
    if not 0.0 <= threshold < 1.0:
        raise ParameterError(f"threshold must be in [0, 1), got {threshold}")
    binary = prob > threshold
    graph = mask_to_graph(prob, threshold=threshold, **(mask2graph_options or {}))
    attrs = segment_attributes(graph, prob, binary)
    groups = group_segments(
        graph, attrs, width_tolerance=width_tolerance, probability_tolerance=probability_tolerance
    )
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    unchanged = Instance(prob.copy(), False, graph, groups, np.zeros(n_groups), ())
    if n_groups == 0:
        return unchanged
    group_map = _group_map(graph, groups, binary)
    relevance = np.zeros(n_groups)
    h, w = binary.shape
    for p in prompts:
        if not isinstance(p, Prompt):
            raise ParameterError(f"expected Prompt objects, got {type(p).__name__}")
        c = np.floor(p.points[:, 0]).astype(np.int64)
        r = np.floor(p.points[:, 1]).astype(np.int64)
        ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        hit = group_map[r[ok], c[ok]]
        hit = hit[hit >= 0]
        np.add.at(relevance, hit, 1.0 if p.positive else -1.0)
    kept = tuple(int(g) for g in np.flatnonzero(relevance > 0))
    if not kept:
        return Instance(prob.copy(), False, graph, groups, relevance, ())
    keep = np.isin(group_map, kept)
    return Instance(
        np.where(keep, prob, 0.0).astype(np.float32), True, graph, groups, relevance, kept
    )


def _group_map(
    graph: RoadGraph, groups: NDArray[np.int64], binary: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """``(H, W)`` group of each mask pixel (-1 off the mask or in a component without road)."""
    h, w = binary.shape
    pts, owner = _samples(graph, 0.5)
    rows = np.floor(pts[:, 1]).astype(np.int64)
    cols = np.floor(pts[:, 0]).astype(np.int64)
    ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    seg = np.full((h, w), -1, dtype=np.int64)
    seg[rows[ok], cols[ok]] = groups[owner[ok]]
    _, (ir, ic) = ndimage.distance_transform_edt(seg < 0, return_indices=True)
    nearest = seg[ir, ic]
    comp, _ = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
    has_road = np.zeros(int(comp.max()) + 1, dtype=bool)
    has_road[np.unique(comp[seg >= 0])] = True
    has_road[0] = False
    return np.where(binary & has_road[comp], nearest, -1)
