"""TOPO, the marbles-and-holes topology metric as Sat2Graph computes it.

Start points are placed every ``start_interval`` along the ground-truth chains (maximal paths
whose interior nodes have degree 2). Each is paired with the nearest proposal edge within
``pair_distance`` whose direction differs by less than ``pair_angle_tol``. From the start point
both graphs are walked up to ``propagation_radius`` along their edges, dropping a marble (proposal)
or a hole (ground truth) every ``interval``. Marbles and holes closer than ``match_distance`` with
directions within ``match_angle_tol`` are matched one-to-one (maximum bipartite matching,
Hopcroft-Karp): the start's precision is matched / marbles, its recall matched / holes. For
precision every hole is offered twice (the reference's "bidirectional" copy 1e-5 deg away), so two
parallel proposal carriageways can both match one ground-truth centre line. Starts whose proposal
locations lie within ``dedup_distance`` of each other along the proposal graph compete; the one
with the higher precision wins and the losers are dropped unless their own precision is at least
``dedup_min_precision``. The image's precision is the mean over kept starts and its recall the
mean over kept starts times (kept starts / all start points); F1 is their harmonic mean.

Reference: Songtao He et al., Sat2Graph (ECCV 2020), ``metrics/topo`` (``main.py``, ``topo.py``,
``graph.py``). This module reproduces its numbers: the computation runs in the reference's pseudo
latitude/longitude frame (``lat = 41 - row / 111111``, ``lon = -71 + col / 111111 / cos 41deg``)
with its exact floating-point operations, including its quirks (distances scaled at the latitude of
their first point, directions normalised at latitude 40, marbles on every first visit of an edge).
Distances in this API are in metres of the metric frame of :func:`~._units.same_frame` (pixel
graphs: ``gsd`` metres per pixel, 1 by default), where the reference's 1e-5 deg is 1.11111 m.

What the reference leaves to chance. (1) Its node numbering and neighbour order come from the
order of the pickled dict; here the nodes of a :class:`~linegraph2road.graph.RoadGraph` are taken
in index order and neighbours in increasing index. Walks that reach a node along two paths drop
marbles at slightly different places depending on that order: on the City-scale example, the
pickle's own order gives P 0.873427 / R 0.858099 and index order P 0.873432 / R 0.858143 (the
reference prints 0.8734 / 0.8581). (2) Exact distance ties when pairing (both directions of a
horizontal edge are always tied) are broken by its R-tree traversal order; here by the order the
reference adds edges (a 1e-5 effect on that example). (3) For the same reasons a graph scored
against itself gets precision 1 but a recall a hair below 1 (0.99996 on the City-scale ground
truth) when start points pair with the reversed edge or sit exactly on a node. The reference
measures an edge's length at the latitude of its first end, so the two directions of one edge
can differ by one marble: a 661 px slanted road against itself scores recall 0.99811 (5 of its
22 starts pair with the reverse edge and lose one of 120 holes), in the reference as here (a
transcription of its code gives the same value bit for bit). A single straight edge of length
``L`` scored against itself keeps recall >= ``1 - 1 / floor(L / interval)`` (at most one hole
lost per start); ``tests/metrics/test_topo.py`` checks that bound.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import GraphError, ParameterError
from linegraph2road.graph import RoadGraph

from . import _topo_kernels as _k
from . import _topo_walk as _w
from ._units import same_frame

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["TopoResult", "topo"]

DEG = 111111.0  # metres per degree of the reference's pseudo latitude (1 px = 1 m tiles)
_LAT0 = 41.0
_LON0 = -71.0
_COS41 = math.cos(math.radians(_LAT0))


@dataclass(frozen=True)
class TopoResult:
    """TOPO scores of one image.

    Attributes
    ----------
    precision, recall, f1 : float
        Image scores in [0, 1] (NaN when the ground truth has no start point).
    n_starts : int
        Start points placed on the ground truth.
    n_paired : int
        Start points paired with a proposal edge (and scored).
    n_kept : int
        Scored start points kept after de-duplication; ``recall`` is the mean recall of these
        times ``n_kept / n_starts``.
    propagation_radius : float
        Walk radius used, metres.
    """

    precision: float
    recall: float
    f1: float
    n_starts: int
    n_paired: int
    n_kept: int
    propagation_radius: float

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (JSON-ready)."""
        return asdict(self)


class _RefGraph:
    """A graph in the reference's numbering.

    ``src``, ``dst`` (2E,) int64 list every directed edge in the order the reference adds them
    (dict keys in order, each key's neighbour list in order). Node ids follow first appearance
    in that sequence; CSR neighbours keep the sequence order; ``rev`` is the slot of the opposite
    direction and ``rank`` the reference edge id of every slot.
    """

    def __init__(
        self, rowcol: NDArray[np.float64], src: NDArray[np.int64], dst: NDArray[np.int64]
    ) -> None:
        n = len(rowcol)
        seq = np.stack([src, dst], axis=1).reshape(-1)
        first = np.full(n, len(seq), dtype=np.int64)
        np.minimum.at(first, seq, np.arange(len(seq)))
        used = np.flatnonzero(first < len(seq))
        old_of_new = used[np.argsort(first[used], kind="stable")]
        nn = len(old_of_new)
        new_of_old = np.full(n, -1, dtype=np.int64)
        new_of_old[old_of_new] = np.arange(nn)
        s_new, d_new = new_of_old[src], new_of_old[dst]
        self.rank = np.argsort(s_new, kind="stable")  # slot -> reference edge id
        self.indptr = np.zeros(nn + 1, dtype=np.int64)
        np.cumsum(np.bincount(s_new, minlength=nn), out=self.indptr[1:])
        self.indices = np.ascontiguousarray(d_new[self.rank])
        key = s_new[self.rank] * max(nn, 1) + self.indices
        sorter = np.argsort(key)
        back = self.indices * max(nn, 1) + s_new[self.rank]
        self.rev = np.ascontiguousarray(sorter[np.searchsorted(key, back, sorter=sorter)])
        rc = rowcol[old_of_new]
        self.lat = _LAT0 - rc[:, 0] * 1.0 / DEG
        self.lon = _LON0 + (rc[:, 1] * 1.0 / DEG) / _COS41

    @classmethod
    def canonical(cls, rowcol: NDArray[np.float64], edges: NDArray[np.int64]) -> _RefGraph:
        """Keys in node order, neighbours in increasing node index."""
        both = np.concatenate([edges, edges[:, ::-1]]).astype(np.int64).reshape(-1, 2)
        order = np.lexsort((both[:, 1], both[:, 0]))
        return cls(rowcol, both[order, 0], both[order, 1])


def _reference_rowcol(
    gt: RoadGraph, pred: RoadGraph, gsd: float | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both graphs as (row, col) metres from the tile's top-left pixel centre (the reference's
    pickle frame): pixel graphs subtract half a pixel; georeferenced ones (north-up metres) are
    flipped and measured from the top-left corner of their common bounding box."""
    g, p = same_frame(gt, pred, gsd=gsd)
    if gt.georef is None and pred.georef is None:
        half = 0.5 * (1.0 if gsd is None else float(gsd))
        return g[:, ::-1] - half, p[:, ::-1] - half
    both = np.concatenate([g, p])
    if len(both) == 0:
        return g, p
    top, left = both[:, 1].max(), both[:, 0].min()

    def flip(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.stack([top - a[:, 1], a[:, 0] - left], axis=1)

    return flip(g), flip(p)


def _check_positive(**values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ParameterError(f"{name} must be a positive finite number, got {v!r}")


def topo(
    gt: RoadGraph,
    pred: RoadGraph,
    *,
    gsd: float | None = None,
    propagation_radius: float | None = None,
    interval: float = 0.00005 * DEG,
    start_interval: float = 0.0005 * DEG,
    pair_distance: float = 0.0001 * DEG,
    pair_angle_tol: float = 0.04,
    match_distance: float = 0.0001 * DEG,
    match_angle_tol: float = 0.29,
    dedup_distance: float = 0.0002 * DEG,
    dedup_search: float = 0.0003 * DEG,
    dedup_min_precision: float = 0.9,
) -> TopoResult:
    """TOPO precision, recall and F1 of a proposal graph against the ground truth (Sat2Graph).

    Parameters
    ----------
    gt, pred : RoadGraph
        Ground truth and proposal, both pixel graphs or both georeferenced. Not modified.
    gsd : float, optional
        Metres per pixel for pixel graphs (default 1.0: City-scale / Global-scale / SpaceNet
        tiles as Sat2Graph evaluates them, where every distance below reads in pixels).
    propagation_radius : float, optional
        Walk radius in metres. Default as the reference: 333.333 m (0.003 deg) unless every node
        of both graphs lies less than 1111.11 m (0.01 deg) below the top edge, then 166.667 m.
    interval : float
        Marble and hole spacing, metres (5.55555 = 0.00005 deg).
    start_interval : float
        Target spacing of start points along ground-truth chains, metres (55.5555 = 0.0005 deg);
        a chain of length L gets max(floor(L / start_interval), 1) evenly spaced points, none
        when L < start_interval / 2.
    pair_distance, pair_angle_tol : float
        A start point pairs with the nearest proposal edge closer than ``pair_distance`` metres
        (11.1111 = 1e-4 deg) with ``1 - |cos angle| < pair_angle_tol`` to the ground-truth
        segment (0.04, about 16 degrees).
    match_distance, match_angle_tol : float
        A marble matches a hole closer than ``match_distance`` metres (11.1111) when their edge
        directions satisfy ``1 - |cos angle| < match_angle_tol`` (0.29, about 45 degrees).
    dedup_distance, dedup_search, dedup_min_precision : float
        Start points whose proposal locations are closer than ``dedup_distance`` metres (22.2222)
        along the proposal graph, among those within a ``dedup_search`` box (33.3333), compete;
        losers are dropped unless their precision is at least ``dedup_min_precision`` (0.9).

    Returns
    -------
    TopoResult
        With no proposal edge near the ground truth, precision = recall = F1 = 0 (as the
        reference). With no start point on the ground truth (no edges, or only chains shorter
        than ``start_interval / 2``) the scores are NaN: the reference divides by zero there.

    Raises
    ------
    GraphError
        If ``gt`` or ``pred`` is not a RoadGraph.
    GeoreferenceError
        If one graph is georeferenced and the other not, or ``gsd`` is not positive.
    ParameterError
        If a distance or angle tolerance is not positive.
    """
    for name, g in (("gt", gt), ("pred", pred)):
        if not isinstance(g, RoadGraph):
            raise GraphError(f"{name} must be a RoadGraph, got {type(g).__name__}")
    _check_positive(
        interval=interval,
        start_interval=start_interval,
        pair_distance=pair_distance,
        match_distance=match_distance,
        dedup_distance=dedup_distance,
        dedup_search=dedup_search,
        pair_angle_tol=pair_angle_tol,
        match_angle_tol=match_angle_tol,
    )
    if not math.isfinite(dedup_min_precision):
        raise ParameterError(f"dedup_min_precision must be finite, got {dedup_min_precision!r}")
    g_rc, p_rc = _reference_rowcol(gt, pred, gsd)
    return _topo_rowcol(
        g_rc,
        gt.edges,
        p_rc,
        pred.edges,
        propagation_radius=propagation_radius,
        params=(
            interval,
            start_interval,
            pair_distance,
            pair_angle_tol,
            match_distance,
            match_angle_tol,
            dedup_distance,
            dedup_search,
            dedup_min_precision,
        ),
    )


def _topo_rowcol(
    g_rc: NDArray[np.float64],
    g_edges: NDArray[np.int64],
    p_rc: NDArray[np.float64],
    p_edges: NDArray[np.int64],
    *,
    propagation_radius: float | None,
    params: tuple[float, ...],
    graphs: tuple[_RefGraph, _RefGraph] | None = None,
) -> TopoResult:
    """TOPO on (row, col) metre coordinates in the reference frame (``graphs`` overrides the
    canonical numbering, e.g. with a pickle's own order)."""
    step, density, pair_t, pair_tol, match_t, match_tol, dd_t, dd_s, dd_keep = params
    g, p = (
        graphs
        if graphs is not None
        else (
            _RefGraph.canonical(g_rc, g_edges),
            _RefGraph.canonical(p_rc, p_edges),
        )
    )
    # the reference's region: the nodes of both graphs plus a 300 (rows) / 500 (cols) border;
    # start points within 7 % of its size from its edges are dropped (never, for tiles)
    all_rc = np.concatenate([g_rc, p_rc]) if len(g_rc) + len(p_rc) else np.zeros((0, 2))
    min_lat = min(_LAT0, float(np.min(_LAT0 - all_rc[:, 0] * 1.0 / DEG, initial=_LAT0)))
    max_lon = max(_LON0, float(np.max(_LON0 + (all_rc[:, 1] * 1.0 / DEG) / _COS41, initial=_LON0)))
    region = np.array(
        [
            min_lat - 300 * 1.0 / DEG,
            _LON0 - 500 * 1.0 / DEG,
            _LAT0 + 300 * 1.0 / DEG,
            max_lon + 500 * 1.0 / DEG,
        ]
    )
    if propagation_radius is None:
        radius = 0.00300 if _LAT0 - min_lat >= 0.01000 else 0.00150
    else:
        _check_positive(propagation_radius=propagation_radius)
        radius = propagation_radius / DEG
    pos, seg, off = _k.start_points(g.lat, g.lon, g.indptr, g.indices, density / DEG, region, 0.07)
    n_starts = len(pos)
    if n_starts == 0:
        nan = float("nan")
        return TopoResult(nan, nan, nan, 0, 0, 0, radius * DEG)
    slot, p_off = _k.pair_starts(
        pos, seg, g.lat, g.lon, p.lat, p.lon, p.indptr, p.indices, p.rank, pair_t / DEG, pair_tol
    )
    scores = _w.score_starts(
        g.lat, g.lon, g.indptr, g.indices, g.rev,
        p.lat, p.lon, p.indptr, p.indices, p.rev,
        seg, off, slot, p_off, step / DEG, radius, match_t / DEG, match_tol,
    )  # fmt: skip
    scored = np.flatnonzero((slot >= 0) & ~np.isnan(scores[:, 0]))
    n_paired = int(np.count_nonzero(slot >= 0))
    indptr, comp = _k.competitors(
        pos[scored], slot[scored], p_off[scored], p.lat, p.lon, p.indptr, p.indices,
        dd_s / DEG, dd_s / DEG, dd_t / DEG,
    )  # fmt: skip
    precision, recall, n_kept = _keep_and_average(
        scores[scored, 0].tolist(), scores[scored, 1].tolist(), indptr, comp, dd_keep, n_starts
    )
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return TopoResult(precision, recall, f1, n_starts, n_paired, n_kept, radius * DEG)


def _keep_and_average(
    prec: list[float],
    rec: list[float],
    indptr: NDArray[np.int64],
    comp: NDArray[np.int64],
    keep_precision: float,
    n_starts: int,
) -> tuple[float, float, int]:
    """Reference ``TOPO121`` + ``topoAvg``: (precision, coverage-weighted recall, kept).

    Starts are visited from the most precise down (stable sort, walked from its end, as the
    reference); a start that a kept start competes with (``comp``, CSR) survives only if its own
    precision reaches ``keep_precision``.
    """
    order = sorted(range(len(prec)), key=lambda i: prec[i])
    marked = np.zeros(len(prec), dtype=bool)
    kept: list[int] = []
    for i in reversed(order):
        if marked[i] and prec[i] < keep_precision:
            continue
        kept.append(i)
        marked[comp[indptr[i] : indptr[i + 1]]] = True
    if not kept:
        return 0.0, 0.0, 0
    p_sum = 0.0
    r_sum = 0.0
    for i in kept:  # summed in the reference's order, for the last bit
        p_sum += prec[i]
        r_sum += rec[i]
    return p_sum / len(kept), (r_sum / len(kept)) * len(kept) / float(n_starts), len(kept)
