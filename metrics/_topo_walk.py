"""Marbles and holes of the TOPO metric (private numba kernels; see ``topo.py``).

The walk that drops marbles (proposal) or holes (ground truth) around a start point, the
marble-hole candidate pairs, Hopcroft-Karp maximum matching, and the per-start precision and
recall. Same frame, layout and floating-point conventions as :mod:`._topo_kernels`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._topo_kernels import (
    _COPY,
    _D2R,
    _dist,
    _grow_f,
    _grow_i,
    _norm_dot,
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


# -- marble/hole matching ---------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _candidate_edges(
    marbles: np.ndarray, holes: np.ndarray, threshold: float, angle_tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bipartite edges marble -> hole of the reference: distance < threshold, 1-|cos| < tol.

    ``distance`` is taken from the marble (as the reference does in both passes); the angle
    test is skipped when either direction has dlat == dlon (the reference's zero-vector guard).
    Holes are bucketed in a sorted grid of cell ``threshold`` (lat) x ``threshold / cos``
    (lon), so the search is linear in the number of points. Returns CSR (indptr, indices).
    """
    nm = marbles.shape[0]
    nh = holes.shape[0]
    indptr = np.zeros(nm + 1, np.int64)
    if nm == 0 or nh == 0:
        return indptr, np.empty(0, np.int64)
    max_lat = max(np.max(np.abs(marbles[:, 0])), np.max(np.abs(holes[:, 0])))
    cell_lat = threshold
    cell_lon = threshold / max(math.cos(min(max_lat, 89.0) * _D2R), 1e-6)
    lat0 = np.min(holes[:, 0])
    lon0 = np.min(holes[:, 1])
    ny = int((np.max(holes[:, 1]) - lon0) / cell_lon) + 1
    keys = np.empty(nh, np.int64)
    for h in range(nh):
        keys[h] = int((holes[h, 0] - lat0) / cell_lat) * ny + int((holes[h, 1] - lon0) / cell_lon)
    order = np.argsort(keys, kind="mergesort")
    skeys = keys[order]
    out = np.empty(64, np.int64)
    ne = 0
    for m in range(nm):
        mla = marbles[m, 0]
        mlo = marbles[m, 1]
        cx = math.floor((mla - lat0) / cell_lat)
        cy = math.floor((mlo - lon0) / cell_lon)
        for x in range(cx - 1, cx + 2):
            for y in range(max(cy - 1, 0), min(cy + 1, ny - 1) + 1):
                key = x * ny + y
                lo = np.searchsorted(skeys, key, side="left")
                hi = np.searchsorted(skeys, key, side="right")
                for k in range(lo, hi):
                    h = order[k]
                    if _dist(mla, mlo, holes[h, 0], holes[h, 1]) >= threshold:
                        continue
                    if marbles[m, 2] != marbles[m, 3] and holes[h, 2] != holes[h, 3]:
                        dot = _norm_dot(marbles[m, 2], marbles[m, 3], holes[h, 2], holes[h, 3])
                        if not 1.0 - abs(dot) < angle_tol:
                            continue
                    if ne == out.shape[0]:
                        out = _grow_i(out)
                    out[ne] = h
                    ne += 1
        indptr[m + 1] = ne
    return indptr, out[:ne].copy()


@njit(cache=True)
def hopcroft_karp(n_left: int, n_right: int, indptr: np.ndarray, indices: np.ndarray) -> int:
    """Size of a maximum matching of a bipartite graph given as CSR left -> right."""
    inf = np.iinfo(np.int64).max
    match_l = np.full(n_left, -1, np.int64)
    match_r = np.full(n_right, -1, np.int64)
    dist = np.empty(n_left, np.int64)
    queue = np.empty(n_left, np.int64)
    arc = np.empty(n_left, np.int64)
    stack = np.empty(n_left + 1, np.int64)
    size = 0
    while True:
        qh = 0
        qt = 0
        for u in range(n_left):
            if match_l[u] == -1:
                dist[u] = 0
                queue[qt] = u
                qt += 1
            else:
                dist[u] = inf
        found = False
        while qh < qt:
            u = queue[qh]
            qh += 1
            for k in range(indptr[u], indptr[u + 1]):
                w = match_r[indices[k]]
                if w == -1:
                    found = True
                elif dist[w] == inf:
                    dist[w] = dist[u] + 1
                    queue[qt] = w
                    qt += 1
        if not found:
            return size
        for u in range(n_left):
            arc[u] = indptr[u]
        for root in range(n_left):
            if match_l[root] != -1:
                continue
            sp = 0
            stack[0] = root
            while sp >= 0:
                u = stack[sp]
                moved = False
                while arc[u] < indptr[u + 1]:
                    w = match_r[indices[arc[u]]]
                    if w == -1:
                        for i in range(sp, -1, -1):  # flip the augmenting path
                            uu = stack[i]
                            match_l[uu] = indices[arc[uu]]
                            match_r[indices[arc[uu]]] = uu
                        size += 1
                        sp = -1
                        moved = True
                        break
                    if dist[w] == dist[u] + 1 and dist[w] != inf:
                        sp += 1
                        stack[sp] = w
                        moved = True
                        break
                    arc[u] += 1
                if sp < 0:
                    break
                if not moved:  # dead end: drop u from this phase, back up
                    dist[u] = inf
                    sp -= 1
                    if sp >= 0:
                        arc[stack[sp]] += 1


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
        indptr, indices = _candidate_edges(marbles, both, threshold, angle_tol)
        matched_p = hopcroft_karp(nm, 2 * nh, indptr, indices)
        keep = indices < nh
        indptr2 = np.zeros(nm + 1, np.int64)
        for m in range(nm):
            indptr2[m + 1] = indptr2[m] + np.sum(keep[indptr[m] : indptr[m + 1]])
        matched_r = hopcroft_karp(nm, nh, indptr2, indices[keep])
        out[i, 0] = float(matched_p) / nm
        out[i, 1] = float(matched_r) / nh
    return out
