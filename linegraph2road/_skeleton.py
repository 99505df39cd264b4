"""Numba kernels behind :mod:`linegraph2road.mask2graph`: skeleton -> vertex graph -> chains.

Private: the public entry point is :func:`linegraph2road.mask2graph.mask_to_graph`.

A *vertex graph* here is a compressed adjacency (CSR: ``indptr`` (V + 1,), ``indices``) over
vertices with float64 ``(x, y)`` pixel positions. A *chain* is a maximal path whose inner vertices
all have degree 2; its two ends are vertices of degree != 2 (or the same vertex for a closed loop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "chain_edges",
    "chain_lengths",
    "compact",
    "csr_adjacency",
    "douglas_peucker",
    "pixel_graph",
    "unique_edges",
    "walk_chains",
]

_DR = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_DC = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)


@njit(cache=True)
def _pixel_graph(
    skel: NDArray[np.bool_], dr: NDArray[np.int64], dc: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    h, w = skel.shape
    idx = np.full((h, w), -1, dtype=np.int32)
    n = 0
    for r in range(h):
        for c in range(w):
            if skel[r, c]:
                idx[r, c] = n
                n += 1
    pr = np.empty(n, dtype=np.int64)
    pc = np.empty(n, dtype=np.int64)
    for r in range(h):
        for c in range(w):
            if idx[r, c] >= 0:
                pr[idx[r, c]] = r
                pc[idx[r, c]] = c
    # 8-neighbours of every skeleton pixel.
    nbr = np.empty((n, 8), dtype=np.int64)
    deg = np.zeros(n, dtype=np.int64)
    for p in range(n):
        for k in range(8):
            rr = pr[p] + dr[k]
            cc = pc[p] + dc[k]
            if 0 <= rr < h and 0 <= cc < w and idx[rr, cc] >= 0:
                nbr[p, deg[p]] = idx[rr, cc]
                deg[p] += 1
    # Vertices: every pixel with < 3 neighbours on its own; 8-connected clusters of junction
    # pixels (>= 3 neighbours) merged into one vertex at their centroid.
    vid = np.full(n, -1, dtype=np.int64)
    sx = np.zeros(n, dtype=np.float64)
    sy = np.zeros(n, dtype=np.float64)
    cnt = np.zeros(n, dtype=np.float64)
    stack = np.empty(n, dtype=np.int64)
    nv = 0
    for p in range(n):
        if vid[p] >= 0:
            continue
        vid[p] = nv
        if deg[p] >= 3:
            top = 0
            stack[top] = p
            top += 1
            while top > 0:
                top -= 1
                q = stack[top]
                sx[nv] += pc[q] + 0.5
                sy[nv] += pr[q] + 0.5
                cnt[nv] += 1.0
                for k in range(deg[q]):
                    s = nbr[q, k]
                    if vid[s] < 0 and deg[s] >= 3:
                        vid[s] = nv
                        stack[top] = s
                        top += 1
        else:
            sx[nv] = pc[p] + 0.5
            sy[nv] = pr[p] + 0.5
            cnt[nv] = 1.0
        nv += 1
    xy = np.empty((nv, 2), dtype=np.float64)
    xy[:, 0] = sx[:nv] / cnt[:nv]
    xy[:, 1] = sy[:nv] / cnt[:nv]
    # Unique undirected vertex pairs, as sorted int64 keys a * nv + b (a < b).
    keys = np.empty(int(deg.sum()), dtype=np.int64)
    m = 0
    for p in range(n):
        for k in range(deg[p]):
            a = vid[p]
            b = vid[nbr[p, k]]
            if a < b:
                keys[m] = a * nv + b
                m += 1
    keys = np.unique(keys[:m])
    vdeg = np.zeros(nv + 1, dtype=np.int64)
    for key in keys:
        vdeg[key // nv + 1] += 1
        vdeg[key % nv + 1] += 1
    indptr = np.cumsum(vdeg)
    fill = indptr[:-1].copy()
    indices = np.empty(2 * len(keys), dtype=np.int64)
    for key in keys:
        a = key // nv
        b = key % nv
        indices[fill[a]] = b
        fill[a] += 1
        indices[fill[b]] = a
        fill[b] += 1
    return xy, indptr, indices


def pixel_graph(
    skel: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Vertex graph of an 8-connected skeleton.

    Parameters
    ----------
    skel : (H, W) bool
        One-pixel-wide skeleton.

    Returns
    -------
    xy : (V, 2) float64
        Vertex positions ``(x, y)``: pixel centres ``(col + 0.5, row + 0.5)``, or the centroid of
        a cluster of adjacent junction pixels (pixels with >= 3 skeleton neighbours).
    indptr : (V + 1,) int64, indices : (2 * E,) int64
        Symmetric CSR adjacency without duplicates or self loops.
    """
    return _pixel_graph(np.ascontiguousarray(skel, dtype=np.bool_), _DR, _DC)


@njit(cache=True)
def _walk_chains(
    indptr: NDArray[np.int64], indices: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    nv = len(indptr) - 1
    deg = indptr[1:] - indptr[:-1]
    used = np.zeros(len(indices), dtype=np.bool_)
    seen = np.zeros(nv, dtype=np.bool_)
    flat = np.empty(len(indices) + nv + 1, dtype=np.int64)
    offsets = np.zeros(len(indices) + 2, dtype=np.int64)
    nf = 0
    nc = 0
    for phase in range(2):  # 0: chains from ends and junctions, 1: pure loops
        for v in range(nv):
            if phase == 0 and deg[v] == 2:
                continue
            if phase == 1 and (deg[v] != 2 or seen[v]):
                continue
            for e0 in range(indptr[v], indptr[v + 1]):
                if used[e0]:
                    continue
                seen[v] = True
                flat[nf] = v
                nf += 1
                e = e0
                while True:
                    cur = indices[e]
                    used[e] = True
                    # mark the reverse half-edge cur -> (the vertex we came from)
                    src = flat[nf - 1]
                    for f in range(indptr[cur], indptr[cur + 1]):
                        if indices[f] == src and not used[f]:
                            used[f] = True
                            break
                    flat[nf] = cur
                    nf += 1
                    seen[cur] = True
                    if deg[cur] != 2 or cur == v:
                        break
                    nxt = -1
                    for f in range(indptr[cur], indptr[cur + 1]):
                        if not used[f]:
                            nxt = f
                            break
                    if nxt < 0:
                        break
                    e = nxt
                nc += 1
                offsets[nc] = nf
    return flat[:nf].copy(), offsets[: nc + 1].copy()


def walk_chains(indptr: NDArray[np.int64], indices: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """Split a vertex graph into chains.

    Returns
    -------
    list of (K,) int64 vertex-id arrays, ``K >= 2``. Each chain starts and ends at a vertex of
    degree != 2 and passes only through degree-2 vertices; a cycle made only of degree-2
    vertices comes out once, starting and ending at its lowest-numbered vertex. Isolated
    vertices belong to no chain. Every edge lies in exactly one chain.
    """
    flat, offsets = _walk_chains(
        np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices, dtype=np.int64)
    )
    return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


@njit(cache=True)
def _dp_keep(pts: NDArray[np.float64], tol: float) -> NDArray[np.bool_]:
    n = len(pts)
    keep = np.zeros(n, dtype=np.bool_)
    keep[0] = True
    keep[n - 1] = True
    if n <= 2:
        return keep
    stack = np.empty((n, 2), dtype=np.int64)
    top = 0
    closed = pts[0, 0] == pts[n - 1, 0] and pts[0, 1] == pts[n - 1, 1]
    if closed:
        # A closed chain has no base segment: split it at the vertex farthest from its start and
        # keep one more vertex on the first half so that it stays at least a triangle.
        best, far = -1.0, 1
        for i in range(1, n - 1):
            d = (pts[i, 0] - pts[0, 0]) ** 2 + (pts[i, 1] - pts[0, 1]) ** 2
            if d > best:
                best, far = d, i
        keep[far] = True
        lo, hi = (0, far) if far >= n - 1 - far else (far, n - 1)
        mid = (lo + hi) // 2
        if hi - lo >= 2:
            keep[mid] = True
            stack[top, 0], stack[top, 1] = lo, mid
            stack[top + 1, 0], stack[top + 1, 1] = mid, hi
            top += 2
        else:
            stack[top, 0], stack[top, 1] = lo, hi
            top += 1
        if lo == 0:
            stack[top, 0], stack[top, 1] = far, n - 1
        else:
            stack[top, 0], stack[top, 1] = 0, far
        top += 1
    else:
        stack[top, 0], stack[top, 1] = 0, n - 1
        top += 1
    tol2 = tol * tol
    while top > 0:
        top -= 1
        a, b = stack[top, 0], stack[top, 1]
        if b - a < 2:
            continue
        ax, ay = pts[a, 0], pts[a, 1]
        dx, dy = pts[b, 0] - ax, pts[b, 1] - ay
        ll = dx * dx + dy * dy
        best, idx = -1.0, -1
        for i in range(a + 1, b):
            px, py = pts[i, 0] - ax, pts[i, 1] - ay
            if ll > 0.0:
                t = min(1.0, max(0.0, (px * dx + py * dy) / ll))
                qx, qy = px - t * dx, py - t * dy
            else:
                qx, qy = px, py
            d = qx * qx + qy * qy
            if d > best:
                best, idx = d, i
        if best > tol2:
            keep[idx] = True
            stack[top, 0], stack[top, 1] = a, idx
            stack[top + 1, 0], stack[top + 1, 1] = idx, b
            top += 2
    return keep


def douglas_peucker(pts: NDArray[np.float64], tol: float) -> NDArray[np.bool_]:
    """(K,) bool mask of the vertices of a (K, 2) polyline kept by Douglas-Peucker.

    Distances are to the base *segment* (not its infinite line), in pixels. The two ends are
    always kept. A closed polyline (first point == last point) keeps at least three distinct
    vertices when it has them, so it stays a cycle.
    """
    return _dp_keep(np.ascontiguousarray(pts, dtype=np.float64), float(tol))


# -- numpy helpers on vertex graphs and chains ------------------------------------------------
def compact(
    xy: NDArray[np.float64], edges: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Drop the vertices no edge uses and renumber the edges accordingly."""
    used = np.unique(edges)
    new_id = np.full(len(xy), -1, dtype=np.int64)
    new_id[used] = np.arange(len(used))
    return xy[used], new_id[edges]


def chain_edges(chains: list[NDArray[np.int64]]) -> NDArray[np.int64]:
    """(E, 2) int64 consecutive vertex pairs of all chains."""
    if not chains:
        return np.zeros((0, 2), dtype=np.int64)
    return np.concatenate([np.column_stack([c[:-1], c[1:]]) for c in chains]).astype(np.int64)


def csr_adjacency(nv: int, edges: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Symmetric CSR adjacency of undirected ``edges`` over ``nv`` vertices (duplicates merged)."""
    e = unique_edges(nv, edges)
    src = np.concatenate([e[:, 0], e[:, 1]])
    dst = np.concatenate([e[:, 1], e[:, 0]])
    order = np.lexsort((dst, src))
    indptr = np.zeros(nv + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=nv), out=indptr[1:])
    return indptr, dst[order].astype(np.int64)


def unique_edges(nv: int, edges: NDArray[np.int64]) -> NDArray[np.int64]:
    """(E', 2) edges ordered ``i < j``, self loops dropped, duplicates merged, sorted."""
    lo, hi = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
    keys = np.unique((lo * nv + hi)[lo != hi])
    return np.column_stack([keys // nv, keys % nv]).astype(np.int64)


def chain_lengths(xy: NDArray[np.float64], chains: list[NDArray[np.int64]]) -> NDArray[np.float64]:
    """(C,) float64 polyline length of each chain in pixels."""
    if not chains:
        return np.zeros(0)
    flat = np.concatenate(chains)
    seg = np.hypot(*(xy[flat[1:]] - xy[flat[:-1]]).T)
    starts = np.cumsum([0] + [len(c) for c in chains[:-1]])
    # Sum the in-chain steps only: the step from one chain's last vertex to the next chain's
    # first vertex is zeroed before the per-chain reduction.
    seg[starts[1:] - 1] = 0.0
    return np.add.reduceat(np.append(seg, 0.0), starts)
