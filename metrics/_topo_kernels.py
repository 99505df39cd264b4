"""Numba kernels of the TOPO metric (private; the public entry point is :mod:`.topo`).

Everything here works in the reference's pseudo latitude/longitude frame (see ``topo.py``) and
replays Sat2Graph's arithmetic operation by operation (same formulas, evaluation order and
first-in-first-out visiting order), so that threshold comparisons fall the same way. Graphs come
as CSR adjacency in the reference's node order: ``indptr`` (N+1,) int64, ``indices`` (2E,) int64
(the slots of node ``u`` list its neighbours in the order the reference visits them), ``rev[s]``
the slot of the opposite direction. Kernels use IEEE division (``error_model="numpy"``), like the
numpy scalars of the reference.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_D2R = math.pi / 180.0  # what math.radians multiplies by
_COS40 = math.cos(math.radians(40.0))  # the reference normalises directions at latitude 40
_COPY = 0.00001  # offset of the second ("bidirectional") copy of every hole, degrees
_NOT_FOUND = 100000.0  # the reference's "no path" distance


@njit(cache=True, error_model="numpy")
def _dist(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Reference ``distance(p1, p2)``: equirectangular, scaled at the latitude of ``p1``."""
    a = lat1 - lat2
    b = (lon1 - lon2) * math.cos(lat1 * _D2R)
    return math.sqrt(a * a + b * b)


@njit(cache=True, error_model="numpy")
def _norm_dot(dla1: float, dlo1: float, dla2: float, dlo2: float) -> float:
    """``n1 . n2`` of two directions normalised as the reference's ``latlonNorm``."""
    p1 = dlo1 * _COS40
    l1 = math.sqrt(p1 * p1 + dla1 * dla1)
    p2 = dlo2 * _COS40
    l2 = math.sqrt(p2 * p2 + dla2 * dla2)
    return (dla1 / l1) * (dla2 / l2) + (p1 / l1) * (p2 / l2)


@njit(cache=True, error_model="numpy")
def _point_segment_dist(
    lat1: float, lon1: float, lat2: float, lon2: float, lat: float, lon: float
) -> float:
    """Reference ``pointToLineDistanceLatLon((lat1, lon1), (lat2, lon2), (lat, lon))``."""
    c = math.cos(lat1 * _D2R)
    ax = lat2 - lat1
    ay = (lon2 - lon1) * c
    px = lat - lat1
    py = (lon - lon1) * c
    length = math.sqrt(ax * ax + ay * ay)
    if length == 0.0:  # coincident end points (never in the reference's pickles)
        return math.sqrt(px * px + py * py)
    proj = (ax * px + ay * py) / length
    if proj > length:
        a = px - ax
        b = py - ay
        return math.sqrt(a * a + b * b)
    if proj < 0:
        return math.sqrt(px * px + py * py)
    alpha = proj / length
    a = px - alpha * ax
    b = py - alpha * ay
    return math.sqrt(a * a + b * b)


@njit(cache=True)
def find_slot(indptr: np.ndarray, indices: np.ndarray, u: int, v: int) -> int:
    """CSR slot of the directed edge ``u -> v`` (-1 when absent)."""
    for s in range(indptr[u], indptr[u + 1]):
        if indices[s] == v:
            return s
    return -1


@njit(cache=True)
def slot_sources(indptr: np.ndarray) -> np.ndarray:
    """(2E,) int64 source node of every CSR slot."""
    src = np.empty(indptr[-1], np.int64)
    for u in range(indptr.shape[0] - 1):
        src[indptr[u] : indptr[u + 1]] = u
    return src


@njit(cache=True)
def _grow_f(a: np.ndarray) -> np.ndarray:
    out = np.empty((2 * a.shape[0], a.shape[1]))
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _grow_i(a: np.ndarray) -> np.ndarray:
    out = np.empty(2 * a.shape[0], np.int64)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def push(
    q_i: np.ndarray, q_d: np.ndarray, tail: int, node: int, prev: int, dist: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Append (node, prev, dist) to a growable first-in-first-out queue."""
    if tail == q_d.shape[0]:
        q_i2 = np.empty((2 * tail, 2), np.int64)
        q_i2[:tail] = q_i
        q_i = q_i2
        q_d = _grow_f(q_d.reshape(-1, 1)).reshape(-1)
    q_i[tail, 0] = node
    q_i[tail, 1] = prev
    q_d[tail] = dist
    return q_i, q_d, tail + 1


# -- start points -----------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def start_points(
    lat: np.ndarray,
    lon: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    density: float,
    region: np.ndarray,
    margin: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference ``TOPOGenerateStartingPoints``: points every ~``density`` along chains.

    Chains run between nodes of degree != 2; a chain is walked once from its first end point
    (in node order) unless it has no interior node, in which case both ends walk it, as in the
    reference. Returns ``pos`` (S, 2) float64 (lat, lon), ``seg`` (S, 2) int64 (the chain
    segment's two nodes, in walking order) and ``off`` (S, 2) float64 (chain distance to them).
    """
    n = lat.shape[0]
    visited = np.zeros(n, np.bool_)
    chain = np.empty(n + 2, np.int64)
    dists = np.empty(n + 2)
    out = np.empty((64, 6))  # the reference's tuple: lat, lon, node, node, offset, offset
    ns = 0
    lat_m = margin * (region[2] - region[0])
    lon_m = margin * (region[3] - region[1])
    for node in range(n):
        if visited[node] or indptr[node + 1] - indptr[node] == 2:
            continue
        for k in range(indptr[node], indptr[node + 1]):
            if visited[indices[k]]:
                continue
            chain[0] = node
            m = 1
            cur = indices[k]
            while True:
                chain[m] = cur
                m += 1
                if indptr[cur + 1] - indptr[cur] != 2:
                    break
                a = indices[indptr[cur]]
                cur = indices[indptr[cur] + 1] if chain[m - 2] == a else a
            for i in range(1, m - 1):
                visited[chain[i]] = True
            total = 0.0
            for i in range(m - 1):
                dists[i] = total
                total += _dist(lat[chain[i]], lon[chain[i]], lat[chain[i + 1]], lon[chain[i + 1]])
            dists[m - 1] = total
            if total < density / 2:
                continue
            count = max(int(total / density), 1)
            for x in range(count):
                at = (float(x + 1) / float(count + 1)) * total
                for j in range(m - 1):
                    if at >= dists[j] and at <= dists[j + 1]:
                        u = chain[j]
                        v = chain[j + 1]
                        a = (at - dists[j]) / (dists[j + 1] - dists[j])
                        plat = (1 - a) * lat[u] + a * lat[v]
                        plon = (1 - a) * lon[u] + a * lon[v]
                        if (
                            plat - region[0] > lat_m
                            and region[2] - plat > lat_m
                            and plon - region[1] > lon_m
                            and region[3] - plon > lon_m
                        ):
                            if ns == out.shape[0]:
                                out = _grow_f(out)
                            out[ns] = (
                                plat,
                                plon,
                                float(u),
                                float(v),
                                at - dists[j],
                                dists[j + 1] - at,
                            )
                            ns += 1
    return out[:ns, 0:2].copy(), out[:ns, 2:4].astype(np.int64), out[:ns, 4:6].copy()


# -- pairing start points with proposal edges -------------------------------------------------
@njit(cache=True, error_model="numpy")
def pair_starts(
    pos: np.ndarray,
    seg: np.ndarray,
    g_lat: np.ndarray,
    g_lon: np.ndarray,
    p_lat: np.ndarray,
    p_lon: np.ndarray,
    p_indptr: np.ndarray,
    p_indices: np.ndarray,
    p_rank: np.ndarray,
    threshold: float,
    angle_tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference ``TOPOGeneratePairs``: nearest proposal edge within ``threshold`` and angle.

    Proposal edges are directed CSR slots, tried in reference edge order (``p_rank``) behind a
    uniform grid of cell ``2 * threshold`` (the reference's R-tree query box); an exact distance
    tie (both directions of a horizontal edge always tie) goes to the edge tried first, where the
    reference's winner follows its R-tree's traversal order. Returns ``slot``
    (S,) int64 (-1 when unpaired) and ``off`` (S, 2) float64: distances from the slot's two nodes
    to the start point.
    """
    ns = pos.shape[0]
    out_slot = np.full(ns, -1, np.int64)
    out_off = np.zeros((ns, 2))
    nslots = p_indices.shape[0]
    if ns == 0 or nslots == 0:
        return out_slot, out_off
    src = slot_sources(p_indptr)
    dst = p_indices
    bb = np.empty((nslots, 4))  # slot bounding boxes, as the reference's R-tree entries
    bb[:, 0] = np.minimum(p_lat[src], p_lat[dst])
    bb[:, 1] = np.minimum(p_lon[src], p_lon[dst])
    bb[:, 2] = np.maximum(p_lat[src], p_lat[dst])
    bb[:, 3] = np.maximum(p_lon[src], p_lon[dst])
    cell = 2.0 * threshold
    lat0 = np.min(p_lat)
    lon0 = np.min(p_lon)
    ny = int((np.max(p_lon) - lon0) / cell) + 1
    # one (cell, slot) entry for every cell a bounding box touches, sorted by cell
    keys = np.empty(nslots, np.int64)
    items = np.empty(nslots, np.int64)
    e = 0
    for s in range(nslots):
        for x in range(int((bb[s, 0] - lat0) / cell), int((bb[s, 2] - lat0) / cell) + 1):
            for y in range(int((bb[s, 1] - lon0) / cell), int((bb[s, 3] - lon0) / cell) + 1):
                if e == keys.shape[0]:
                    keys = _grow_i(keys)
                    items = _grow_i(items)
                keys[e] = x * ny + y
                items[e] = s
                e += 1
    order = np.argsort(keys[:e], kind="mergesort")
    keys = keys[order]
    items = items[order]
    stamp = np.full(nslots, -1, np.int64)
    cand = np.empty(nslots, np.int64)
    two_t = threshold * 2
    for i in range(ns):
        lat = pos[i, 0]
        lon = pos[i, 1]
        q0, q1, q2, q3 = lat - two_t, lon - two_t, lat + two_t, lon + two_t
        nc = 0
        for x in range(math.floor((q0 - lat0) / cell), math.floor((q2 - lat0) / cell) + 1):
            y0 = max(math.floor((q1 - lon0) / cell), 0)
            for y in range(y0, min(math.floor((q3 - lon0) / cell), ny - 1) + 1):
                lo = np.searchsorted(keys, x * ny + y, side="left")
                for k in range(lo, np.searchsorted(keys, x * ny + y, side="right")):
                    s = items[k]
                    if stamp[s] != i:
                        stamp[s] = i
                        if bb[s, 0] <= q2 and bb[s, 2] >= q0 and bb[s, 1] <= q3 and bb[s, 3] >= q1:
                            cand[nc] = s
                            nc += 1
        if nc == 0:
            continue
        order = np.argsort(p_rank[cand[:nc]], kind="mergesort")
        g3 = seg[i, 0]
        g4 = seg[i, 1]
        gdla = g_lat[g4] - g_lat[g3]
        gdlo = g_lon[g4] - g_lon[g3]
        best = -1
        best_d = 10000.0
        for o in range(nc):
            s = cand[order[o]]
            a = src[s]
            b = p_indices[s]
            d = _point_segment_dist(p_lat[a], p_lon[a], p_lat[b], p_lon[b], lat, lon)
            if d < threshold and d < best_d:
                dot = _norm_dot(p_lat[b] - p_lat[a], p_lon[b] - p_lon[a], gdla, gdlo)
                if 1.0 - abs(dot) < angle_tol:
                    best = s
                    best_d = d
        if best >= 0:
            a = src[best]
            b = p_indices[best]
            out_slot[i] = best
            out_off[i, 0] = _dist(p_lat[a], p_lon[a], lat, lon)
            out_off[i, 1] = _dist(p_lat[b], p_lon[b], lat, lon)
    return out_slot, out_off


# -- de-duplication of competing starts -------------------------------------------------------
@njit(cache=True, error_model="numpy")
def competitors(
    pos: np.ndarray,
    loc_slot: np.ndarray,
    loc_off: np.ndarray,
    p_lat: np.ndarray,
    p_lon: np.ndarray,
    p_indptr: np.ndarray,
    p_indices: np.ndarray,
    search: float,
    max_distance: float,
    limit: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference ``TOPO121`` dependency lists: for each scored start, the scored starts whose
    proposal locations lie within ``limit`` along the proposal graph.

    Candidates are the starts inside the reference's R-tree box (``search`` in latitude,
    ``search / cos(lat)`` in longitude); the graph distance is the reference's
    ``distanceBetweenTwoLocation`` (first-in-first-out label-correcting search from both ends
    of the first location's edge, both at its first offset, cut at ``max_distance``), evaluated
    once per start for all candidates. Returns CSR (indptr, indices) over start indices.
    """
    n = pos.shape[0]
    nslots = p_indices.shape[0]
    src = slot_sources(p_indptr)
    best = np.full(max(nslots, 1), _NOT_FOUND)
    touched = np.empty(max(nslots, 1), np.int64)
    label = np.empty(max(p_lat.shape[0], 1))
    label_stamp = np.full(max(p_lat.shape[0], 1), -1, np.int64)
    order = np.argsort(pos[:, 0], kind="mergesort")
    lats = pos[order, 0]
    indptr = np.zeros(n + 1, np.int64)
    out = np.empty(64, np.int64)
    ne = 0
    q_i = np.empty((256, 2), np.int64)
    q_d = np.empty(256)
    for i in range(n):
        s1 = loc_slot[i]
        a1 = src[s1]
        b1 = p_indices[s1]
        d1 = loc_off[i, 0]
        # one search from location i, remembering the shortest approach of every directed edge
        nt = 0
        q_i, q_d, q_tail = push(q_i, q_d, 0, a1, -1, d1)
        q_i, q_d, q_tail = push(q_i, q_d, q_tail, b1, -1, d1)
        q_head = 0
        while q_head < q_tail:
            cur, prev = q_i[q_head]
            dist = q_d[q_head]
            q_head += 1
            if (label_stamp[cur] == i and label[cur] <= dist) or dist > max_distance:
                continue
            label_stamp[cur] = i
            label[cur] = dist
            for s in range(p_indptr[cur], p_indptr[cur + 1]):
                nxt = p_indices[s]
                if nxt in (prev, cur, a1, b1):
                    continue
                if best[s] == _NOT_FOUND:
                    touched[nt] = s
                    nt += 1
                best[s] = min(best[s], dist)
                length = _dist(p_lat[nxt], p_lon[nxt], p_lat[cur], p_lon[cur])
                q_i, q_d, q_tail = push(q_i, q_d, q_tail, nxt, cur, dist + length)
        lat = pos[i, 0]
        lon = pos[i, 1]
        r_lon = search / math.cos(lat * _D2R)
        q0, q1, q2, q3 = lat - search, lon - r_lon, lat + search, lon + r_lon
        lo = np.searchsorted(lats, q0 - 1e-6 - 1e-9, side="left")
        hi = np.searchsorted(lats, q2 + 1e-6 + 1e-9, side="right")
        for k in range(lo, hi):
            j = order[k]
            clat = pos[j, 0]
            clon = pos[j, 1]
            if clat - 1e-6 > q2 or clat + 1e-6 < q0 or clon - 1e-6 > q3 or clon + 1e-6 < q1:
                continue  # outside the R-tree box (entries are points +- 1e-6)
            s2 = loc_slot[j]
            a2 = src[s2]
            b2 = p_indices[s2]
            if a1 == a2 and b1 == b2:
                d = abs(d1 - loc_off[j, 0])
            elif a1 == b2 and b1 == a2:
                d = abs(d1 - loc_off[j, 1])
            else:
                fwd = best[find_slot(p_indptr, p_indices, a2, b2)] + loc_off[j, 0]
                bwd = best[find_slot(p_indptr, p_indices, b2, a2)] + loc_off[j, 1]
                d = min(fwd, bwd, _NOT_FOUND)  # untouched edges: _NOT_FOUND + offset
            if d < limit:
                if ne == out.shape[0]:
                    out = _grow_i(out)
                out[ne] = j
                ne += 1
        indptr[i + 1] = ne
        for t in range(nt):
            best[touched[t]] = _NOT_FOUND
    return indptr, out[:ne].copy()
