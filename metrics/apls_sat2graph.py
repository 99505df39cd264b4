"""APLS as Sat2Graph's Go evaluator computes it (what City-scale / Global-scale papers report).

Steps (``metrics/apls/main.go`` of songtaohe/Sat2Graph; htcr/sam_road ships a copy):

1. Densify both graphs: an edge longer than 3 m is cut into ``int(d / 2) + 1`` equal parts.
2. Control points of the source graph: walking from every node of degree != 2 along each chain of
   degree-2 nodes, chains of more than ``int(1.5 * interval)`` nodes get ``int(len / interval)``
   evenly spread points (``interval`` 25 nodes ~ 50 m; 15 ~ 30 m on small tiles), and the chain
   ends become control points too (dead ends always, junctions unless "covered" by an earlier
   point). Only points inside the region (``margin < x, y < region_size - margin``) count, at
   most one per 2 m cell.
3. Snap each control point one-to-one to a node of the other graph: the first of its 10 nearest
   nodes (ranked in the reference's pseudo lat/lon degrees) that is closer than 10 m and not
   within 4 hops (3 on small tiles) of a node already taken.
4. For every pair of control points: cost 1 if either is unsnapped; otherwise, if the source path
   is longer than 100 m (30 m on small tiles), ``min(1, |dA - dB| / dA)`` with ``dB = 0`` when the
   other graph has no path. A direction's score is ``1 - mean cost``; APLS is the mean of both.

Like the reference, all geometry happens in its pseudo lat/lon frame (``lat = 41 - row / 111111``,
``lon = -71 + col / 111111 / cos 41 deg``, rows and columns in metres from the centre of the top-
left pixel): distances use its ``GPSDistance`` (east-west scaled by the cosine of the first
point's latitude), and path lengths are sums of per-edge lengths truncated to whole centimetres.

Reference quirk kept (``reference_cover=True``): when a control point is chosen, Go marks as
covered the source nodes whose *indices* lie within 4 hops of that index in the *other* graph
(it calls ``graph_prop.propagate`` with a ground-truth index). This drops ~9 % of the control
points on a 2048 px tile and moves APLS by ~0.005, so it is reproduced; densified nodes are
numbered exactly as the reference numbers them (see ``densify``), which makes the outcome depend
on the order of the input edges, as the reference's does (``read_graph`` keeps a file's edge order).
``reference_cover=False`` covers the source's own neighbourhood, as the code means to.

Determinism: Go iterates maps in a random order. Chains are walked here in node order with
neighbours in index order (the reference: map order; it only changes the side a chain is walked
from); control points are snapped in a random order drawn from ``numpy.random.default_rng(seed)``
(the reference: map order). Pair costs do not depend on order.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial import cKDTree

from . import _apls_kernels as K
from ._apls_common import (
    AplsParameterError,
    AplsResult,
    Csr,
    MetricGraph,
    densify,
    metric_graphs,
    to_csr,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["apls_sat2graph"]

# The reference's pseudo-geographic frame: row -> lat = 41 - row / 111111,
# col -> lon = -71 + col / 111111 / cos(41 deg).
_M_PER_DEG = 111111.0
_COS_LAT0 = math.cos(math.radians(41.0))
_LAT0 = 41.0
_LON0 = -71.0

_LARGE = {
    "control_interval": 50.0,
    "min_path_length": 100.0,
    "snap_cover": 8.0,
    "region_size": 2048.0,
    "margin": 100.0,
}
_SMALL = {
    "control_interval": 30.0,
    "min_path_length": 30.0,
    "snap_cover": 6.0,
    "region_size": 352.0,
    "margin": 30.0,
}


def _pseudo_latlon(frame: NDArray[np.float64]) -> NDArray[np.float64]:
    """(N, 2) tile-frame metres ``(x, y)`` -> the reference's pseudo ``(lat, lon)`` degrees.

    Computed with the same floating-point operations as the reference's ``convert.py`` so that
    the region test and the 2 m cells fall exactly where the reference puts them (nodes on
    integer pixels sit exactly on cell borders).
    """
    lat = _LAT0 - frame[:, 1] / _M_PER_DEG
    lon = _LON0 + (frame[:, 0] / _M_PER_DEG) / _COS_LAT0
    return np.column_stack([lat, lon])


def _cell_keys(latlon: NDArray[np.float64], cell: float) -> NDArray[np.int64]:
    """One int64 per node naming its de-duplication cell (the reference's ``lockey``)."""
    ky = np.trunc(latlon[:, 0] * _M_PER_DEG / cell).astype(np.int64)
    kx = np.trunc(latlon[:, 1] * _M_PER_DEG / cell).astype(np.int64)
    return (ky << np.int64(32)) ^ (kx & np.int64(0xFFFFFFFF))


def _inbound(latlon: NDArray[np.float64], region: float, margin: float) -> NDArray[np.bool_]:
    """The reference's ``GPSInBound`` (with its own approximation of pi)."""
    c = math.cos(_LAT0 / 180.0 * 3.1415926)
    lat2 = _LAT0 - region / _M_PER_DEG
    lon2 = _LON0 + region / _M_PER_DEG / c
    m_lat = margin / _M_PER_DEG
    m_lon = margin / _M_PER_DEG / c
    lat, lon = latlon[:, 0], latlon[:, 1]
    return (
        (lat > lat2 + m_lat) & (lat < _LAT0 - m_lat) & (lon > _LON0 + m_lon) & (lon < lon2 - m_lon)
    )


def _gps_distance(p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
    """The reference's ``GPSDistance`` in metres between pseudo (lat, lon) arrays (..., 2).

    Not symmetric: the east-west scale uses the latitude of ``p1``.
    """
    a = (p1[..., 0] - p2[..., 0]) * _M_PER_DEG
    b = (p1[..., 1] - p2[..., 1]) * _M_PER_DEG * np.cos(p1[..., 0] / 360.0 * 2.0 * np.pi)
    return np.sqrt(a * a + b * b)


def _hops(metres: float, step: float) -> int:
    return round(metres / step)


def _prepare(g: MetricGraph, step: float, split_above: float) -> tuple[MetricGraph, Csr]:
    """Densified graph (its ``frame`` in pseudo lat/lon, interpolated as the reference) + CSR."""
    ll = _pseudo_latlon(g.frame)
    g = replace(g, frame=ll)
    d = _gps_distance(ll[g.edges[:, 0]], ll[g.edges[:, 1]])
    dense = densify(g, step=step, split_above=split_above, lengths=d)
    a, b = dense.frame[dense.edges[:, 0]], dense.frame[dense.edges[:, 1]]
    # Whole centimetres, each direction with its own east-west scale, as the reference.
    fwd = np.floor(_gps_distance(a, b) * 100.0)
    bwd = np.floor(_gps_distance(b, a) * 100.0)
    return dense, to_csr(dense.num_nodes, dense.edges, fwd, bwd)


def _contracted(csr: Csr, targets: NDArray[np.int64]) -> tuple[Any, Any, Any, Any]:
    """``csr`` with the degree-2 chains between targets and junctions contracted (exact paths)."""
    keep = np.zeros(len(csr.indptr) - 1, dtype=bool)
    keep[targets] = True
    return K.compress_chains(csr.indptr, csr.indices, csr.weights, keep)


def _one_way(
    src: MetricGraph,
    src_csr: Csr,
    dst: MetricGraph,
    dst_csr: Csr,
    p: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[float, int, int, int]:
    """(score, n_pairs, n_control, n_snapped) for control points of ``src`` snapped onto ``dst``."""
    step = p["densify_step"]
    interval = p["control_interval"] / step
    cps = K.sat2graph_control_points(
        src_csr.indptr,
        src_csr.indices,
        _inbound(src.frame, p["region_size"], p["margin"]),
        _cell_keys(src.frame, p["dedup_cell"]),
        int(1.5 * interval),
        interval,
        dst_csr.indptr if p["reference_cover"] else src_csr.indptr,
        dst_csr.indices if p["reference_cover"] else src_csr.indices,
        _hops(p["control_cover"], step),
    )
    n_cp = len(cps)
    snap = np.full(n_cp, -1, dtype=np.int64)
    if n_cp and dst.num_nodes:
        k = min(int(p["snap_candidates"]), dst.num_nodes)
        # Candidates ranked in degrees, as the reference's R-tree ranks them.
        _, cand = cKDTree(dst.frame).query(src.frame[cps], k=k)
        cand = np.asarray(cand, dtype=np.int64).reshape(n_cp, k)
        cand_dist = _gps_distance(dst.frame[cand], src.frame[cps][:, None, :])
        snap = K.sat2graph_greedy_snap(
            rng.permutation(n_cp).astype(np.int64),
            cand,
            cand_dist,
            float(p["snap_distance"]),
            dst_csr.indptr,
            dst_csr.indices,
            _hops(p["snap_cover"], step),
        )
    ok = snap >= 0
    n_ok = int(ok.sum())
    unsnapped_pairs = n_cp * (n_cp - 1) // 2 - n_ok * (n_ok - 1) // 2
    cost, count = 0.0, 0
    if n_ok >= 2:
        src_cp, dst_cp = cps[ok], snap[ok]
        a = _contracted(src_csr, src_cp)
        b = _contracted(dst_csr, dst_cp)
        cost, count = K.sat2graph_pair_costs(
            a[0],
            a[1],
            a[2],
            b[0],
            b[1],
            b[2],
            a[3][src_cp],
            b[3][dst_cp],
            float(p["min_path_length"]) * 100.0,
        )
    n_pairs = unsnapped_pairs + int(count)
    score = 1.0 - (unsnapped_pairs + float(cost)) / n_pairs if n_pairs else math.nan
    return score, n_pairs, n_cp, n_ok


def apls_sat2graph(
    gt: RoadGraph,
    pred: RoadGraph,
    *,
    small_tiles: bool = False,
    gsd: float | None = None,
    seed: int = 0,
    densify_step: float = 2.0,
    split_above: float = 3.0,
    control_interval: float | None = None,
    control_cover: float = 8.0,
    dedup_cell: float = 2.0,
    snap_distance: float = 10.0,
    snap_candidates: int = 10,
    snap_cover: float | None = None,
    min_path_length: float | None = None,
    region_size: float | None = None,
    margin: float | None = None,
    reference_cover: bool = True,
) -> AplsResult:
    """APLS, Sat2Graph variant (the Go evaluator of Sat2Graph / SAM-Road), deterministic.

    Parameters
    ----------
    gt, pred : RoadGraph
        Ground truth and proposal, both pixel graphs or both georeferenced.
    small_tiles : bool, default False
        Use the reference's small-tile settings (``control_interval`` 30 m, ``min_path_length``
        30 m, ``snap_cover`` 6 m, ``region_size`` 352 m, ``margin`` 30 m) instead of the 2048 px
        tile settings (50 m, 100 m, 8 m, 2048 m, 100 m). Any of these given explicitly wins.
        SAM-Road's copy of the Go code uses 10 hops (``control_interval=20.0``).
    gsd : float, optional
        Metres per pixel for pixel graphs (default 1.0, the City-scale convention).
    seed : int, default 0
        Seed of the generator that orders the snapping (the reference's map order).
    densify_step, split_above : float, default 2.0, 3.0
        Edges longer than ``split_above`` metres are cut into ``int(d / densify_step) + 1``
        equal parts. Hop counts below are metres divided by ``densify_step``.
    control_interval : float, optional
        Spacing of control points along chains, metres (50 or 30: 25 or 15 densified hops).
    control_cover : float, default 8.0
        A junction is no control point if an earlier one lies within this many metres of hops
        (4 hops), and neither is a chain point.
    dedup_cell : float, default 2.0
        At most one control point per cell of this size (metres) in the reference's frame.
    snap_distance : float, default 10.0
        Control points snap to a node of the other graph closer than this (metres).
    snap_candidates : int, default 10
        Number of nearest nodes tried per control point.
    snap_cover : float, optional
        Nodes within this many metres of hops of a taken node cannot be taken again.
    min_path_length : float, optional
        Pairs of snapped control points whose source path is not longer than this (metres) are
        skipped.
    region_size, margin : float, optional
        Control points must satisfy ``margin < x, y < region_size - margin`` (metres from the
        centre of the top-left pixel, as in the reference's pixel-index frame).
    reference_cover : bool, default True
        Reproduce the reference's coverage quirk (see the module docstring).

    Returns
    -------
    AplsResult
        ``score = (gt_to_prop + prop_to_gt) / 2``. A direction with no pair to score is NaN (as
        the reference). A graph against an empty one scores 0; two empty graphs give NaN.
    """
    base = _SMALL if small_tiles else _LARGE
    given = {
        "control_interval": control_interval,
        "min_path_length": min_path_length,
        "snap_cover": snap_cover,
        "region_size": region_size,
        "margin": margin,
    }
    p: dict[str, Any] = {k: float(base[k] if v is None else v) for k, v in given.items()}
    p.update(
        small_tiles=bool(small_tiles),
        densify_step=float(densify_step),
        split_above=float(split_above),
        control_cover=float(control_cover),
        dedup_cell=float(dedup_cell),
        snap_distance=float(snap_distance),
        snap_candidates=int(snap_candidates),
        seed=int(seed),
        gsd=gsd,
        reference_cover=bool(reference_cover),
    )
    for name in ("densify_step", "control_interval", "dedup_cell", "snap_distance"):
        if not (math.isfinite(p[name]) and p[name] > 0):
            raise AplsParameterError(f"{name} must be a positive number of metres, got {p[name]}")
    if p["snap_candidates"] < 1:
        raise AplsParameterError(f"snap_candidates must be at least 1, got {snap_candidates}")

    g_gt, g_pred = metric_graphs(gt, pred, gsd=gsd)
    if g_gt.num_nodes == 0 or g_pred.num_nodes == 0:
        value = math.nan if g_gt.num_nodes == g_pred.num_nodes else 0.0
        return AplsResult(value, value, value, "sat2graph", params=p)

    d_gt, c_gt = _prepare(g_gt, p["densify_step"], p["split_above"])
    d_pred, c_pred = _prepare(g_pred, p["densify_step"], p["split_above"])
    rng = np.random.default_rng(seed)
    s1, n1, k1, m1 = _one_way(d_gt, c_gt, d_pred, c_pred, p, rng)
    s2, n2, k2, m2 = _one_way(d_pred, c_pred, d_gt, c_gt, p, rng)
    return AplsResult(
        score=(s1 + s2) / 2.0,
        gt_to_prop=s1,
        prop_to_gt=s2,
        variant="sat2graph",
        n_pairs_gt_to_prop=n1,
        n_pairs_prop_to_gt=n2,
        n_control_gt=k1,
        n_control_prop=k2,
        n_snapped_gt=m1,
        n_snapped_prop=m2,
        params=p,
    )
