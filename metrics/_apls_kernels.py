"""Numba kernels behind the APLS evaluators (private).

Graphs arrive in compressed sparse row form: ``indptr (N + 1,) int64``, ``indices (2E,) int64``
and ``weights (2E,) float64`` (each undirected edge stored in both directions, neighbours of a
node sorted by index). Distances are float64 with ``inf`` for unreachable nodes. Every kernel is
deterministic: ``prange`` loops write per-iteration slots that are reduced in a fixed order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "bfs_mark",
    "compress_chains",
    "cosmiq_pair_diffs",
    "dijkstra",
    "sat2graph_control_points",
    "sat2graph_greedy_snap",
    "sat2graph_pair_costs",
]


@njit(cache=True)
def _heap_push(keys, vals, size, key, val):
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@njit(cache=True)
def _heap_pop(keys, vals, size):
    key = keys[0]
    val = vals[0]
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] < keys[left]:
            child = left + 1
        if keys[i] <= keys[child]:
            break
        keys[child], keys[i] = keys[i], keys[child]
        vals[child], vals[i] = vals[i], vals[child]
        i = child
    return key, val, size


@njit(cache=True)
def dijkstra(indptr, indices, weights, source, targets, n_targets):
    """Single-source shortest path lengths.

    Parameters
    ----------
    indptr, indices, weights : CSR arrays (see module docstring).
    source : int
        Start node.
    targets : (N,) bool
        Nodes whose distances are wanted; the search stops once ``n_targets`` of them are settled.
    n_targets : int

    Returns
    -------
    (N,) float64
        Exact distances for every settled node (all targets that are reachable); other entries
        are upper bounds or ``inf`` and must not be read.
    """
    n = indptr.shape[0] - 1
    dist = np.full(n, np.inf)
    done = np.zeros(n, dtype=np.bool_)
    cap = indices.shape[0] + 1
    hkeys = np.empty(cap, dtype=np.float64)
    hvals = np.empty(cap, dtype=np.int64)
    size = 0
    dist[source] = 0.0
    size = _heap_push(hkeys, hvals, size, 0.0, source)
    found = 0
    while size > 0:
        d, u, size = _heap_pop(hkeys, hvals, size)
        if done[u]:
            continue
        done[u] = True
        if targets[u]:
            found += 1
            if found >= n_targets:
                break
        for k in range(indptr[u], indptr[u + 1]):
            v = indices[k]
            nd = d + weights[k]
            if nd < dist[v]:
                dist[v] = nd
                size = _heap_push(hkeys, hvals, size, nd, v)
    return dist


@njit(cache=True)
def compress_chains(indptr, indices, weights, keep):
    """Contract every chain of degree-2 nodes that are not in ``keep`` into one edge.

    Distances between kept nodes are unchanged (each direction's weights are summed along the
    chain, so asymmetric weights stay exact). Nodes of degree != 2 are always kept. Chains
    closing on their own start and cycles without a kept node are dropped (they hold no target
    and shorten no path).

    Returns
    -------
    indptr, indices, weights : CSR arrays of the contracted graph
    new_id : (N,) int64
        Index of each kept node in the contracted graph, -1 for contracted nodes.
    """
    n = indptr.shape[0] - 1
    deg = indptr[1:] - indptr[:-1]
    kept = keep | (deg != 2)
    new_id = np.full(n, -1, dtype=np.int64)
    m = 0
    for u in range(n):
        if kept[u]:
            new_id[u] = m
            m += 1
    n_arcs = indices.shape[0]
    src = np.empty(n_arcs, dtype=np.int64)
    dst = np.empty(n_arcs, dtype=np.int64)
    wts = np.empty(n_arcs, dtype=np.float64)
    count = 0
    for u in range(n):
        if not kept[u]:
            continue
        for k in range(indptr[u], indptr[u + 1]):
            last = u
            cur = indices[k]
            w = weights[k]
            steps = 0
            while not kept[cur] and steps <= n:
                a = indptr[cur]
                nxt = indices[a] if indices[a] != last else indices[a + 1]
                w += weights[a] if indices[a] != last else weights[a + 1]
                last = cur
                cur = nxt
                steps += 1
            if cur == u or not kept[cur]:
                continue
            src[count] = new_id[u]
            dst[count] = new_id[cur]
            wts[count] = w
            count += 1
    out_ptr = np.zeros(m + 1, dtype=np.int64)
    for i in range(count):
        out_ptr[src[i] + 1] += 1
    for i in range(m):
        out_ptr[i + 1] += out_ptr[i]
    fill = out_ptr[:-1].copy()
    out_idx = np.empty(count, dtype=np.int64)
    out_w = np.empty(count, dtype=np.float64)
    for i in range(count):
        slot = fill[src[i]]
        out_idx[slot] = dst[i]
        out_w[slot] = wts[i]
        fill[src[i]] += 1
    return out_ptr, out_idx, out_w, new_id


@njit(cache=True)
def bfs_mark(indptr, indices, start, hops, mark, stamp, stamp_id):
    """Set ``mark[v] = True`` for every node within ``hops`` edges of ``start`` (inclusive).

    ``stamp`` (N,) int64 is scratch space shared between calls; ``stamp_id`` must be unique per
    call so that nothing needs clearing. A ``start`` that is no node of the graph marks only
    itself (``mark`` may be longer than the graph).
    """
    n = indptr.shape[0] - 1
    if start >= n:
        mark[start] = True
        return
    queue = np.empty(n, dtype=np.int64)
    depth = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    queue[tail] = start
    depth[tail] = 0
    tail += 1
    stamp[start] = stamp_id
    while head < tail:
        u = queue[head]
        du = depth[head]
        head += 1
        mark[u] = True
        if du >= hops:
            continue
        for k in range(indptr[u], indptr[u + 1]):
            v = indices[k]
            if stamp[v] != stamp_id:
                stamp[v] = stamp_id
                queue[tail] = v
                depth[tail] = du + 1
                tail += 1


@njit(cache=True)
def sat2graph_control_points(
    indptr,
    indices,
    inbound,
    cell_keys,
    min_chain,
    interval,
    cover_indptr,
    cover_indices,
    cover_hops,
):
    """Control points of one densified graph, Sat2Graph style.

    Nodes of degree != 2 are visited in index order; from each, every not yet visited chain of
    degree-2 nodes is walked (neighbours in index order). A chain of more than ``min_chain``
    nodes gets ``int(len / interval)`` evenly spread interior control points; then the node
    itself becomes one (always for dead ends, otherwise only when it is not "covered").
    Candidates outside the region (``inbound`` false), covered, or in a 2 m cell (``cell_keys``)
    that already has a control point, are skipped. Each new control point covers the node
    indices within ``cover_hops`` of its index in the cover graph (``cover_indptr``,
    ``cover_indices``): the graph itself for the intended behaviour, the other graph to
    reproduce the reference.

    Returns
    -------
    (K,) int64
        Control node indices in the order they were chosen.
    """
    n = indptr.shape[0] - 1
    n_cover = cover_indptr.shape[0] - 1
    deg = indptr[1:] - indptr[:-1]
    visited = np.zeros(n, dtype=np.bool_)
    covered = np.zeros(max(n, n_cover) + 1, dtype=np.bool_)
    stamp = np.full(n_cover, -1, dtype=np.int64)
    used_cells = set()
    used_cells.add(np.int64(-(2**62)))
    out = np.empty(n, dtype=np.int64)
    n_out = 0
    chain = np.empty(n + 1, dtype=np.int64)
    for nid in range(n):
        if deg[nid] == 2:
            continue
        for k in range(indptr[nid], indptr[nid + 1]):
            nxt = indices[k]
            if visited[nxt]:
                continue
            chain[0] = nid
            chain[1] = nxt
            length = 2
            last = nid
            cur = nxt
            while deg[cur] == 2 and length <= n:
                a = indices[indptr[cur]]
                b = indices[indptr[cur] + 1]
                step = b if a == last else a
                last = cur
                cur = step
                chain[length] = cur
                length += 1
            if length > min_chain:
                m = int(length / interval) + 1
                for i in range(1, m):
                    node = chain[int(float(length) * float(i) / float(m))]
                    if inbound[node] and not covered[node]:
                        key = cell_keys[node]
                        if key not in used_cells:
                            used_cells.add(key)
                            out[n_out] = node
                            n_out += 1
                            bfs_mark(
                                cover_indptr, cover_indices, node, cover_hops, covered, stamp, n_out
                            )
            for i in range(length):
                visited[chain[i]] = True
        if inbound[nid] and (not covered[nid] or deg[nid] == 1):
            key = cell_keys[nid]
            if key not in used_cells:
                used_cells.add(key)
                out[n_out] = nid
                n_out += 1
                bfs_mark(cover_indptr, cover_indices, nid, cover_hops, covered, stamp, n_out)
    return out[:n_out].copy()


@njit(cache=True)
def sat2graph_greedy_snap(order, cand, cand_dist, max_dist, indptr, indices, cover_hops):
    """One-to-one snapping of control points to nodes of the other graph.

    Control points are taken in ``order``; each takes the first of its candidates (``cand``
    (K, C) int64, nearest first, -1 for none) that no earlier snap has covered and lies closer
    than ``max_dist`` (``cand_dist`` (K, C) float64, metres); the nodes within ``cover_hops`` of
    the chosen node are then covered.

    Returns
    -------
    (K,) int64
        Snapped node per control point, -1 where none.
    """
    n = indptr.shape[0] - 1
    k_total = cand.shape[0]
    out = np.full(k_total, -1, dtype=np.int64)
    covered = np.zeros(n, dtype=np.bool_)
    stamp = np.full(n, -1, dtype=np.int64)
    for r in range(order.shape[0]):
        i = order[r]
        for c in range(cand.shape[1]):
            node = cand[i, c]
            if node < 0:
                break
            if covered[node]:
                continue
            if cand_dist[i, c] < max_dist:
                out[i] = node
                bfs_mark(indptr, indices, node, cover_hops, covered, stamp, r)
                break
    return out


@njit(parallel=True, cache=True)
def sat2graph_pair_costs(
    a_indptr, a_indices, a_weights, b_indptr, b_indices, b_weights, cp_a, cp_b, min_length
):
    """Sum and count of path costs over pairs of snapped control points.

    ``cp_a[i]`` (graph A) is snapped to ``cp_b[i]`` (graph B). For every pair i < j whose
    A-path is longer than ``min_length`` the cost is ``min(1, |dA - dB| / dA)`` with ``dB = 0``
    when B has no path; pairs with no A-path are skipped. Weights are integer centimetres stored
    as float64, ``min_length`` is in centimetres.
    """
    s = cp_a.shape[0]
    na = a_indptr.shape[0] - 1
    nb = b_indptr.shape[0] - 1
    tgt_a = np.zeros(na, dtype=np.bool_)
    tgt_b = np.zeros(nb, dtype=np.bool_)
    for i in range(s):
        tgt_a[cp_a[i]] = True
        tgt_b[cp_b[i]] = True
    sums = np.zeros(s)
    counts = np.zeros(s, dtype=np.int64)
    for i in prange(s):
        if i == s - 1:
            continue
        da = dijkstra(a_indptr, a_indices, a_weights, cp_a[i], tgt_a, s)
        db = dijkstra(b_indptr, b_indices, b_weights, cp_b[i], tgt_b, s)
        acc = 0.0
        cnt = 0
        for j in range(i + 1, s):
            d1 = da[cp_a[j]]
            if d1 == np.inf or not d1 > min_length:
                continue
            d2 = db[cp_b[j]]
            if d2 == np.inf:
                d2 = 0.0
            cost = abs(d1 - d2) / d1
            acc += min(cost, 1.0)
            cnt += 1
        sums[i] = acc
        counts[i] = cnt
    return sums.sum(), counts.sum()


@njit(parallel=True, cache=True)
def cosmiq_pair_diffs(
    a_indptr, a_indices, a_weights, b_indptr, b_indices, b_weights, ctrl_a, ctrl_b, min_length
):
    """Sum and count of CosmiQ path differences over ordered pairs of control nodes.

    ``ctrl_a (K,)`` are the control nodes in graph A (with its own midpoints), ``ctrl_b (K,)``
    the node each one became when inserted into graph B (-1 when it could not be inserted).
    For every ordered pair (s, t) with a path in A: a start missing from B costs 1; otherwise
    pairs with ``dA < min_length`` are skipped and the rest cost ``min(1, |dA - dB| / dA)``, or
    1 when t is missing from B or not reachable there (``dA <= 0`` costs 0).
    """
    k_total = ctrl_a.shape[0]
    na = a_indptr.shape[0] - 1
    nb = b_indptr.shape[0] - 1
    tgt_a = np.zeros(na, dtype=np.bool_)
    tgt_b = np.zeros(nb, dtype=np.bool_)
    n_b = 0
    for i in range(k_total):
        tgt_a[ctrl_a[i]] = True
        if ctrl_b[i] >= 0:
            tgt_b[ctrl_b[i]] = True
            n_b += 1
    sums = np.zeros(k_total)
    counts = np.zeros(k_total, dtype=np.int64)
    for i in prange(k_total):
        da = dijkstra(a_indptr, a_indices, a_weights, ctrl_a[i], tgt_a, k_total)
        acc = 0.0
        cnt = 0
        if ctrl_b[i] < 0:
            for j in range(k_total):
                if j != i and da[ctrl_a[j]] != np.inf:
                    acc += 1.0
                    cnt += 1
        else:
            db = dijkstra(b_indptr, b_indices, b_weights, ctrl_b[i], tgt_b, n_b)
            for j in range(k_total):
                d1 = da[ctrl_a[j]]
                if d1 == np.inf or d1 < min_length:
                    continue
                cnt += 1
                if d1 <= 0.0:
                    continue
                if ctrl_b[j] < 0 or db[ctrl_b[j]] == np.inf:
                    acc += 1.0
                else:
                    acc += min(1.0, abs(d1 - db[ctrl_b[j]]) / d1)
        sums[i] = acc
        counts[i] = cnt
    return sums.sum(), counts.sum()
