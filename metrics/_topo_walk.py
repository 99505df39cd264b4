"""Marbles and holes of the TOPO metric (private numba kernels; see ``topo.py``).

The walk that drops marbles (proposal) or holes (ground truth) around a start point and the
per-start precision and recall; the marble-hole candidate pairs and Hopcroft-Karp maximum
matching come from :mod:`._match_kernels` (shared with the map diff). Same frame, layout and
floating-point conventions as :mod:`._topo_kernels`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._match_kernels import candidate_pairs, hopcroft_karp
from ._topo_kernels import (
    _COPY,
    _dist,
    _grow_f,
    _grow_i,
    find_slot,
    push,
    slot_sources,
)


# -- the walk: marbles / holes ----------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _add_marble(
    buf: np.ndarray,
    link: np.ndarray,
    n: int,
    slot: int,
    lat: float,
    lon: float,
    dla: float,
    dlo: float,
    head: np.ndarray,
    head_stamp: np.ndarray,
    stamp: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Append a marble unless the same point was already dropped on the same directed edge.

    The reference drops a marble only when the tuple (lat, lon, dlat, dlon) is new; equal tuples
    can only come from the same directed edge, so the check runs over that edge's marbles.
    """
    if head_stamp[slot] != stamp:
        head_stamp[slot] = stamp
        head[slot] = -1
    k = head[slot]
    while k >= 0:
        if buf[k, 0] == lat and buf[k, 1] == lon:
            return buf, link, n
        k = link[k]
    if n == buf.shape[0]:
        buf = _grow_f(buf)
        link = _grow_i(link)
    buf[n, 0] = lat
    buf[n, 1] = lon
    buf[n, 2] = dla
    buf[n, 3] = dlo
    link[n] = head[slot]
    head[slot] = n
    return buf, link, n + 1


@njit(cache=True, error_model="numpy")
def walk(
    lat: np.ndarray,
    lon: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    rev: np.ndarray,
    nid1: int,
    nid2: int,
    slot12: int,
    dist1: float,
    dist2: float,
    step: float,
    radius: float,
    ws_f: np.ndarray,
    ws_i: np.ndarray,
    stamp: int,
) -> np.ndarray:
    """Reference ``RoadGraph.TOPOWalk(newstyle=True)`` from a point on edge ``nid1 - nid2``.

    Marbles every ``step`` along the start edge (from ``nid2``), then a first-in-first-out,
    label-correcting search from both ends (at ``dist1`` / ``dist2``) that drops marbles on
    the edges it crosses at multiples of ``step`` from the start point, up to ``radius``, with
    the reference's per-edge coverage bookkeeping. ``ws_f`` (2, max(N, 2E)) float64 and
    ``ws_i`` (4, max(N, 2E)) int64 are scratch space tagged with ``stamp`` (unique per call).

    Returns (M, 4) float64 rows (lat, lon, dlat, dlon): position and edge direction.
    """
    label = ws_f[0]
    cover = ws_f[1]
    label_stamp = ws_i[0]
    cover_stamp = ws_i[1]
    head = ws_i[2]
    head_stamp = ws_i[3]
    buf = np.empty((256, 4))
    link = np.empty(256, np.int64)
    n = 0
    la1 = lat[nid1]
    lo1 = lon[nid1]
    la2 = lat[nid2]
    lo2 = lon[nid2]
    length = _dist(la2, lo2, la1, lo1)
    alpha = 0.0
    while True:
        li = la1 * alpha + la2 * (1 - alpha)
        oi = lo1 * alpha + lo2 * (1 - alpha)
        d1 = _dist(li, oi, la1, lo1)
        d2 = _dist(li, oi, la2, lo2)
        if dist1 - d1 < radius or dist2 - d2 < radius:
            buf, link, n = _add_marble(
                buf, link, n, slot12, li, oi, la2 - la1, lo2 - lo1, head, head_stamp, stamp
            )
        alpha += step / length
        if alpha > 1.0:
            break

    q_i, q_d, q_tail = push(np.empty((256, 2), np.int64), np.empty(256), 0, nid1, -1, dist1)
    q_i, q_d, q_tail = push(q_i, q_d, q_tail, nid2, -1, dist2)
    q_head = 0
    while q_head < q_tail:
        cur, prev = q_i[q_head]
        dist = q_d[q_head]
        q_head += 1
        old = 1.0  # sic: the reference's "unseen" value, which forces marbles on first visits
        if label_stamp[cur] == stamp:
            old = label[cur]
            if old <= dist:
                continue
        if dist > radius:
            continue
        label_stamp[cur] = stamp
        label[cur] = dist
        la1 = lat[cur]
        lo1 = lon[cur]
        for s in range(indptr[cur], indptr[cur + 1]):
            nxt = indices[s]
            if nxt in (prev, cur, nid1, nid2):
                continue
            la2 = lat[nxt]
            lo2 = lon[nxt]
            length = _dist(la2, lo2, la1, lo1)
            c = step * math.ceil(dist / step) - dist
            if not old + length < radius:
                start_lim = cover[s] if cover_stamp[s] == stamp else 0.0
                r = rev[s]
                end_lim = length - cover[r] if cover_stamp[r] == stamp else length
                while c < length:
                    alpha = c / length
                    if dist + length * alpha > radius:
                        break
                    if length * alpha < start_lim:
                        c += step
                        continue
                    if length * alpha > end_lim:
                        break
                    li = la2 * alpha + la1 * (1 - alpha)
                    oi = lo2 * alpha + lo1 * (1 - alpha)
                    buf, link, n = _add_marble(
                        buf, link, n, s, li, oi, la2 - la1, lo2 - lo1, head, head_stamp, stamp
                    )
                    c += step
                cover[s] = c - step
                cover_stamp[s] = stamp
            q_i, q_d, q_tail = push(q_i, q_d, q_tail, nxt, cur, dist + length)
    return buf[:n].copy()


@njit(cache=True, error_model="numpy")
def score_starts(
    g_lat: np.ndarray,
    g_lon: np.ndarray,
    g_indptr: np.ndarray,
    g_indices: np.ndarray,
    g_rev: np.ndarray,
    p_lat: np.ndarray,
    p_lon: np.ndarray,
    p_indptr: np.ndarray,
    p_indices: np.ndarray,
    p_rev: np.ndarray,
    g_seg: np.ndarray,
    g_off: np.ndarray,
    p_slot: np.ndarray,
    p_off: np.ndarray,
    step: float,
    radius: float,
    threshold: float,
    angle_tol: float,
) -> np.ndarray:
    """Precision and recall of every paired start (reference ``TOPOWithPairs`` loop body).

    Marbles: walk of the proposal from its paired edge. Holes: walk of the ground truth from the
    start's chain segment. Precision = maximum matching of marbles against holes and their
    bidirectional copies / #marbles; recall = maximum matching of holes against marbles /
    #holes. Returns (S, 2) float64; NaN rows where a walk came back empty (skipped later).
    """
    ns = p_slot.shape[0]
    out = np.full((ns, 2), np.nan)
    width_g = max(g_lat.shape[0], g_indices.shape[0], 1)
    width_p = max(p_lat.shape[0], p_indices.shape[0], 1)
    wg_f = np.empty((2, width_g))
    wg_i = np.full((4, width_g), -1, np.int64)
    wp_f = np.empty((2, width_p))
    wp_i = np.full((4, width_p), -1, np.int64)
    p_src = slot_sources(p_indptr)
    for i in range(ns):
        s = p_slot[i]
        if s < 0:
            continue
        marbles = walk(
            p_lat, p_lon, p_indptr, p_indices, p_rev, p_src[s], p_indices[s], s,
            p_off[i, 0], p_off[i, 1], step, radius, wp_f, wp_i, i,
        )  # fmt: skip
        a = g_seg[i, 0]
        b = g_seg[i, 1]
        holes = walk(
            g_lat, g_lon, g_indptr, g_indices, g_rev, a, b, find_slot(g_indptr, g_indices, a, b),
            g_off[i, 0], g_off[i, 1], step, radius, wg_f, wg_i, i,
        )  # fmt: skip
        nm = marbles.shape[0]
        nh = holes.shape[0]
        if nm == 0 or nh == 0:
            continue
        both = np.empty((2 * nh, 4))
        both[:nh] = holes
        both[nh:] = holes
        for h in range(nh):
            both[nh + h, 0] = holes[h, 0] + _COPY
            both[nh + h, 1] = holes[h, 1] + _COPY
        indptr, indices = candidate_pairs(marbles, both, threshold, angle_tol, True)
        matched_p = hopcroft_karp(nm, 2 * nh, indptr, indices)
        keep = indices < nh
        indptr2 = np.zeros(nm + 1, np.int64)
        for m in range(nm):
            indptr2[m + 1] = indptr2[m] + np.sum(keep[indptr[m] : indptr[m + 1]])
        matched_r = hopcroft_karp(nm, nh, indptr2, indices[keep])
        out[i, 0] = float(matched_p) / nm
        out[i, 1] = float(matched_r) / nh
    return out
