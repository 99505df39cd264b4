"""Matching oriented points along lines (private numba kernels, shared by TOPO and the map diff).

A set of *oriented points* is an (M, 4) float64 array of rows ``(p0, p1, d0, d1)``: a position
and the direction of the line it was sampled from (any length; lines are undirected, so a
direction and its opposite are the same). Two sets are compared with :func:`candidate_pairs`
(every pair closer than a distance whose directions agree within an angle tolerance), and
:func:`hopcroft_karp_match` picks a maximum one-to-one matching among those pairs. This is the
marble-and-hole matching of TOPO (:mod:`._topo_walk`) and the line matching of the map diff
(:mod:`.matching`): one implementation, two frames.

Frames
------
``latlon=True``: TOPO's pseudo latitude/longitude frame, rows ``(lat, lon, dlat, dlon)``, with
the reference's exact arithmetic (distances of :func:`._topo_kernels._dist`, scaled at the
latitude of the first point; directions normalised at latitude 40; the angle test skipped when
``dlat == dlon``, the reference's zero-vector guard), so that TOPO's numbers do not move.

``latlon=False``: a planar metric frame, rows ``(x, y, dx, dy)`` in metres: Euclidean distance,
plain normalised directions, the angle test skipped only for a zero-length direction.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._topo_kernels import _D2R, _dist, _grow_i, _norm_dot

__all__ = ["candidate_pairs", "hopcroft_karp", "hopcroft_karp_match"]


@njit(cache=True, error_model="numpy")
def _planar_dot(dx1: float, dy1: float, dx2: float, dy2: float) -> float:
    """Cosine of the angle between two planar directions (1.0 when either has zero length)."""
    l1 = math.sqrt(dx1 * dx1 + dy1 * dy1)
    l2 = math.sqrt(dx2 * dx2 + dy2 * dy2)
    if l1 == 0.0 or l2 == 0.0:
        return 1.0
    return (dx1 / l1) * (dx2 / l2) + (dy1 / l1) * (dy2 / l2)


@njit(cache=True, error_model="numpy")
def candidate_pairs(
    a: np.ndarray, b: np.ndarray, threshold: float, angle_tol: float, latlon: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (point of ``a``, point of ``b``) closer than ``threshold`` whose directions
    satisfy ``1 - |cos angle| < angle_tol``.

    ``a`` (M, 4) and ``b`` (H, 4) float64 oriented points in the frame chosen by ``latlon`` (see
    the module docstring); ``threshold`` in that frame's units (degrees of latitude, or metres).
    The distance is taken from the ``a`` point. Points of ``b`` are bucketed in a sorted grid of
    cell ``threshold`` (longitude: ``threshold / cos(lat)``), so the search is linear in the
    number of points. Returns CSR ``(indptr (M + 1,), indices)`` int64: the ``b`` partners of
    each ``a`` point, in grid order.
    """
    na = a.shape[0]
    nb = b.shape[0]
    indptr = np.zeros(na + 1, np.int64)
    if na == 0 or nb == 0:
        return indptr, np.empty(0, np.int64)
    cell0 = threshold
    cell1 = threshold
    if latlon:
        max_lat = max(np.max(np.abs(a[:, 0])), np.max(np.abs(b[:, 0])))
        cell1 = threshold / max(math.cos(min(max_lat, 89.0) * _D2R), 1e-6)
    o0 = np.min(b[:, 0])
    o1 = np.min(b[:, 1])
    ny = int((np.max(b[:, 1]) - o1) / cell1) + 1
    keys = np.empty(nb, np.int64)
    for h in range(nb):
        keys[h] = int((b[h, 0] - o0) / cell0) * ny + int((b[h, 1] - o1) / cell1)
    order = np.argsort(keys, kind="mergesort")
    skeys = keys[order]
    out = np.empty(64, np.int64)
    ne = 0
    for m in range(na):
        p0 = a[m, 0]
        p1 = a[m, 1]
        cx = math.floor((p0 - o0) / cell0)
        cy = math.floor((p1 - o1) / cell1)
        for x in range(cx - 1, cx + 2):
            for y in range(max(cy - 1, 0), min(cy + 1, ny - 1) + 1):
                key = x * ny + y
                lo = np.searchsorted(skeys, key, side="left")
                hi = np.searchsorted(skeys, key, side="right")
                for k in range(lo, hi):
                    h = order[k]
                    if latlon:
                        if _dist(p0, p1, b[h, 0], b[h, 1]) >= threshold:
                            continue
                        if a[m, 2] != a[m, 3] and b[h, 2] != b[h, 3]:
                            dot = _norm_dot(a[m, 2], a[m, 3], b[h, 2], b[h, 3])
                            if not 1.0 - abs(dot) < angle_tol:
                                continue
                    else:
                        e0 = p0 - b[h, 0]
                        e1 = p1 - b[h, 1]
                        if math.sqrt(e0 * e0 + e1 * e1) >= threshold:
                            continue
                        dot = _planar_dot(a[m, 2], a[m, 3], b[h, 2], b[h, 3])
                        if not 1.0 - abs(dot) < angle_tol:
                            continue
                    if ne == out.shape[0]:
                        out = _grow_i(out)
                    out[ne] = h
                    ne += 1
        indptr[m + 1] = ne
    return indptr, out[:ne].copy()


@njit(cache=True)
def hopcroft_karp_match(
    n_left: int, n_right: int, indptr: np.ndarray, indices: np.ndarray
) -> tuple[int, np.ndarray, np.ndarray]:
    """Maximum matching of a bipartite graph given as CSR left -> right (Hopcroft-Karp).

    Returns ``(size, match_l (n_left,), match_r (n_right,))``: the partner of every node (int64,
    -1 when unmatched).
    """
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
            return size, match_l, match_r
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


@njit(cache=True)
def hopcroft_karp(n_left: int, n_right: int, indptr: np.ndarray, indices: np.ndarray) -> int:
    """Size of a maximum matching of a bipartite graph given as CSR left -> right."""
    return hopcroft_karp_match(n_left, n_right, indptr, indices)[0]
