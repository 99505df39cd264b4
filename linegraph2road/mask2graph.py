"""Road mask -> road graph: threshold, clean, skeletonize, trace, prune, simplify, bridge.

This is the classic segmentation post-processing (as used after NL-LinkNet-style front-ends and
for turning label masks back into graphs), in pixel units throughout:

1. ``mask > threshold``; background holes of at most ``min_hole_area`` pixels that do not touch
   the border are filled and 8-connected specks of at most ``min_object_area`` pixels dropped.
2. :func:`skimage.morphology.skeletonize` (Zhang's thinning) to a one-pixel-wide skeleton.
3. The skeleton becomes a vertex graph: pixels with >= 3 skeleton neighbours are junction
   pixels, and each 8-connected cluster of them is one vertex at its centroid; every other
   skeleton pixel ``(row, col)`` is a vertex at ``(col + 0.5, row + 0.5)``. It is cut into
   *chains*, maximal paths between vertices of degree != 2 (a pure loop gets one node).
4. Spur pruning: a chain from a dead end (degree 1) to a junction (degree >= 3) that is shorter
   than ``min_spur_length`` is removed, shortest first, re-checking degrees as it goes; junctions
   left with degree 2 are merged away and the pass repeats until nothing changes. Pruning runs on
   the pixel chains, *before* simplification, so that a chain merged through a former junction is
   simplified as one polyline (pruning after simplifying would leave a needless vertex there).
5. Each chain is simplified by Douglas-Peucker (``simplify_tolerance``); its kept inner vertices
   become degree-2 nodes.
6. Gap bridging: a dead end is joined to the nearest node or edge point within ``bridge_gap``
   that lies in the cone of half-angle ``bridge_max_angle`` around the dead end's direction (from
   the point ``bridge_gap`` px back along its road to the dead end) and belongs to *another part*
   of the graph: a point whose distance along the graph from the dead end is more than
   ``3 * bridge_gap`` (so another component, or the far side of a loop, but never the dead end's
   own road). Shortest bridges first; an edge point splits its edge, and a point within 1 px of a
   node is snapped to that node.
7. Spurs are pruned again (a bridged fragment can become one) and whole connected components
   shorter than ``min_component_length`` are dropped. Isolated skeleton pixels are dropped.

Library or hand-written tracing? ``skan`` (0.13) is the well-kept skeleton-to-graph library, but
it requires pandas, matplotlib, openpyxl, imageio and toolz, none of which this project otherwise
needs, and it offers no pruning, simplification or bridging, which are most of the work here. The
tracing is ~200 lines of numba in :mod:`linegraph2road._skeleton` (compiled once, cached on disk);
skeletonization itself stays with scikit-image.

Speed (one CPU core): a 2048 x 2048 mask of ~9 px wide roads takes ~0.5 s, a 1300 x 1300 one
~0.15 s, a third of it in ``skeletonize``. Thinning time grows with the thickness of the blobs:
a solid 1000 x 1000 px blob alone takes ~3 s, so masks should hold roads, not filled areas.
"""

from __future__ import annotations

import heapq
import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.morphology import skeletonize

from linegraph2road._skeleton import (
    chain_edges,
    chain_lengths,
    compact,
    csr_adjacency,
    douglas_peucker,
    pixel_graph,
    unique_edges,
    walk_chains,
)
from linegraph2road.errors import FormatError, GraphError
from linegraph2road.graph import RoadGraph

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from linegraph2road.georef import Georeference

__all__ = ["mask_to_graph"]


def mask_to_graph(
    mask: ArrayLike,
    *,
    threshold: float = 0.5,
    min_hole_area: int = 64,
    min_object_area: int = 32,
    simplify_tolerance: float = 1.5,
    min_spur_length: float = 15.0,
    min_component_length: float = 20.0,
    bridge_gap: float = 15.0,
    bridge_max_angle: float = 30.0,
    georef: Georeference | None = None,
) -> RoadGraph:
    """Turn a road probability or binary mask into a road graph.

    Defaults suit masks at about 1 m/px (the model's ground sampling distance); scale the
    lengths and areas for other resolutions (at 0.3 m/px multiply lengths by ~3, areas by ~10).

    Parameters
    ----------
    mask : (H, W) array, bool or real
        Road probability in ``[0, 1]`` (see :func:`linegraph2road.io.raster.read_mask`) or a
        binary mask. Not modified. NaN counts as background.
    threshold : float, default 0.5
        Pixels with ``mask > threshold`` are road.
    min_hole_area : int, default 64
        Background holes (4-connected) of at most this many pixels, not touching the border, are
        filled before thinning; 0 keeps every hole.
    min_object_area : int, default 32
        Road specks (8-connected) of at most this many pixels are dropped; 0 keeps them all.
    simplify_tolerance : float, default 1.5
        Douglas-Peucker tolerance in pixels; 0 keeps every skeleton vertex.
    min_spur_length : float, default 15.0
        Dead-end branches hanging off a junction shorter than this (pixels) are pruned.
    min_component_length : float, default 20.0
        Connected components whose total length (pixels) is below this are dropped.
    bridge_gap : float, default 15.0
        Largest gap (pixels) bridged from a dead end; 0 disables bridging.
    bridge_max_angle : float, default 30.0
        Largest angle (degrees) between a dead end's direction and its bridge.
    georef : Georeference or None
        Passed through to the graph.

    Returns
    -------
    RoadGraph
        Nodes ``(N, 2)`` float64 ``(x, y)`` pixels (pixel centres at ``+0.5``), undirected edges;
        ``meta["mask_to_graph"]`` records the parameters. An empty mask gives an empty graph.

    Raises
    ------
    FormatError
        ``mask`` is not a 2-D numeric or boolean array.
    GraphError
        A parameter is negative, NaN or out of range.
    """
    params: dict[str, Any] = {
        "threshold": threshold,
        "min_hole_area": min_hole_area,
        "min_object_area": min_object_area,
        "simplify_tolerance": simplify_tolerance,
        "min_spur_length": min_spur_length,
        "min_component_length": min_component_length,
        "bridge_gap": bridge_gap,
        "bridge_max_angle": bridge_max_angle,
    }
    for name, value in params.items():
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise GraphError(f"mask_to_graph: {name} must be a finite number, got {value!r}")
        if name != "threshold" and value < 0:
            raise GraphError(f"mask_to_graph: {name} must be >= 0, got {value}")
    if bridge_max_angle > 180:
        raise GraphError(f"mask_to_graph: bridge_max_angle must be <= 180, got {bridge_max_angle}")
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise FormatError(f"mask must be a 2-D (H, W) array, got shape {arr.shape}")
    if not (
        arr.dtype == np.bool_
        or np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
    ):
        raise FormatError(f"mask must hold booleans or real numbers, got dtype {arr.dtype}")

    meta = {"mask_to_graph": params}
    binary = arr > threshold  # a new array: the input is never touched
    if binary.any():
        binary = _clean(binary, int(min_hole_area), int(min_object_area))
    if not binary.any():
        return RoadGraph.from_edges(np.zeros((0, 2)), np.zeros((0, 2)), georef=georef, meta=meta)

    xy, indptr, indices = pixel_graph(skeletonize(binary))
    chains = _prune_spurs(xy, walk_chains(indptr, indices), float(min_spur_length))
    if simplify_tolerance > 0:
        chains = [c[douglas_peucker(xy[c], simplify_tolerance)] for c in chains]
    xy, edges = compact(xy, chain_edges(chains))
    if bridge_gap > 0:
        xy, edges = _bridge(xy, edges, gap=float(bridge_gap), max_angle=float(bridge_max_angle))
    chains = _prune_spurs(xy, walk_chains(*csr_adjacency(len(xy), edges)), float(min_spur_length))
    chains = _drop_small_components(xy, chains, float(min_component_length))

    xy, edges = compact(xy, chain_edges(chains))
    return RoadGraph.from_edges(xy, edges, georef=georef, meta=meta)


def _clean(binary: NDArray[np.bool_], max_hole: int, max_speck: int) -> NDArray[np.bool_]:
    """Fill small interior holes, then drop small specks (both sizes inclusive, in pixels)."""
    if max_hole > 0:
        lab, _ = ndimage.label(~binary)
        small = np.bincount(lab.ravel()) <= max_hole
        small[0] = False
        small[np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])] = False
        binary = binary | small[lab]
    if max_speck > 0:
        lab, _ = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
        small = np.bincount(lab.ravel()) <= max_speck
        small[0] = False
        binary = binary & ~small[lab]
    return binary


def _prune_spurs(
    xy: NDArray[np.float64], chains: list[NDArray[np.int64]], min_len: float
) -> list[NDArray[np.int64]]:
    """Iteratively remove dead-end chains shorter than ``min_len`` that end at a junction."""
    while min_len > 0 and chains:
        ends = np.array([(c[0], c[-1]) for c in chains], dtype=np.int64)
        deg = np.bincount(ends.ravel(), minlength=len(xy))
        length = chain_lengths(xy, chains)
        da, db = deg[ends[:, 0]], deg[ends[:, 1]]
        spur = (length < min_len) & (((da == 1) & (db >= 3)) | ((db == 1) & (da >= 3)))
        removed = np.zeros(len(chains), dtype=bool)
        for i in np.flatnonzero(spur)[np.argsort(length[spur], kind="stable")]:
            a, b = ends[i]
            leaf, hub = (a, b) if deg[a] == 1 else (b, a)
            if deg[leaf] == 1 and deg[hub] >= 3:  # still a spur after earlier removals
                deg[leaf] -= 1
                deg[hub] -= 1
                removed[i] = True
        if not removed.any():
            break
        # Re-walking the remaining edges merges chains through junctions now of degree 2.
        kept = [c for c, r in zip(chains, removed, strict=True) if not r]
        chains = walk_chains(*csr_adjacency(len(xy), chain_edges(kept)))
    return chains


def _drop_small_components(
    xy: NDArray[np.float64], chains: list[NDArray[np.int64]], min_len: float
) -> list[NDArray[np.int64]]:
    """Keep the chains of connected components whose total length is at least ``min_len``."""
    if min_len <= 0 or not chains:
        return chains
    ends = np.array([(c[0], c[-1]) for c in chains], dtype=np.int64)
    graph = coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])), shape=(len(xy), len(xy)))
    _, comp = connected_components(graph, directed=False)
    total = np.bincount(
        comp[ends[:, 0]], weights=chain_lengths(xy, chains), minlength=comp.max() + 1
    )
    keep = total[comp[ends[:, 0]]] >= min_len
    return [c for c, k in zip(chains, keep, strict=True) if k]


def _direction(
    d: int, xy: list[list[float]], indptr: list[int], indices: list[int], reach: float
) -> tuple[float, float] | None:
    """Unit direction in which dead end ``d`` points, from the point ``reach`` px back along it."""
    prev, cur, walked = -1, d, 0.0
    back = xy[d]
    while True:
        nbrs = [v for v in indices[indptr[cur] : indptr[cur + 1]] if v != prev]
        if not nbrs or (cur != d and indptr[cur + 1] - indptr[cur] != 2):
            break
        nxt = nbrs[0]
        step = math.dist(xy[cur], xy[nxt])
        if walked + step >= reach and step > 0:
            t = (reach - walked) / step
            back = [
                xy[cur][0] + t * (xy[nxt][0] - xy[cur][0]),
                xy[cur][1] + t * (xy[nxt][1] - xy[cur][1]),
            ]
            break
        walked += step
        prev, cur, back = cur, nxt, xy[nxt]
    dx, dy = xy[d][0] - back[0], xy[d][1] - back[1]
    norm = math.hypot(dx, dy)
    return None if norm == 0 else (dx / norm, dy / norm)


def _graph_distances(
    d: int, xy: list[list[float]], indptr: list[int], indices: list[int], limit: float
) -> dict[int, float]:
    """Shortest distances along the graph from vertex ``d`` to vertices within ``limit`` px."""
    dist = {d: 0.0}
    heap = [(0.0, d)]
    while heap:
        du, u = heapq.heappop(heap)
        if du > dist.get(u, math.inf):
            continue
        for v in indices[indptr[u] : indptr[u + 1]]:
            dv = du + math.dist(xy[u], xy[v])
            if dv <= limit and dv < dist.get(v, math.inf):
                dist[v] = dv
                heapq.heappush(heap, (dv, v))
    return dist


def _bridge(
    xy: NDArray[np.float64], edges: NDArray[np.int64], *, gap: float, max_angle: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Join dead ends across small gaps (see the module docstring, step 6).

    Returns the vertex positions (split points appended) and the new (E', 2) edges.
    """
    e = unique_edges(len(xy), edges)
    indptr, indices = csr_adjacency(len(xy), e)
    deg = np.diff(indptr)
    dead = np.flatnonzero(deg == 1)
    if len(dead) == 0:
        return xy, e
    xy_l, ip_l, ix_l = xy.tolist(), indptr.tolist(), indices.tolist()
    dirs = [_direction(int(d), xy_l, ip_l, ix_l, gap) for d in dead]
    has_dir = np.array([u is not None for u in dirs], dtype=bool)
    dead = dead[has_dir]
    unit = np.array([u for u in dirs if u is not None], dtype=np.float64).reshape(-1, 2)
    tree = shapely.STRtree(shapely.linestrings(xy[e]))
    di, si = tree.query(shapely.points(xy[dead]), predicate="dwithin", distance=gap)

    # For each (dead end, segment) pair the nearest segment point inside the cone is the
    # unconstrained nearest point, a segment end, or where a cone boundary ray meets the segment.
    p, u = xy[dead[di]], unit[di]
    a, ab = xy[e[si, 0]], xy[e[si, 1]] - xy[e[si, 0]]
    seg_len2 = np.einsum("ij,ij->i", ab, ab)
    cands = [np.clip(np.einsum("ij,ij->i", p - a, ab) / seg_len2, 0.0, 1.0)]
    cands += [np.zeros(len(p)), np.ones(len(p))]
    ap = a - p
    for theta in (math.radians(max_angle), -math.radians(max_angle)):
        c, s = math.cos(theta), math.sin(theta)
        r = np.column_stack([c * u[:, 0] - s * u[:, 1], s * u[:, 0] + c * u[:, 1]])
        denom = r[:, 0] * ab[:, 1] - r[:, 1] * ab[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = (ap[:, 0] * ab[:, 1] - ap[:, 1] * ab[:, 0]) / denom
            mu = (ap[:, 0] * r[:, 1] - ap[:, 1] * r[:, 0]) / denom
        hit = (np.abs(denom) > 1e-12) & (lam > 0) & (mu >= 0) & (mu <= 1)
        cands.append(np.where(hit, mu, np.nan))
    t = np.column_stack(cands)  # (K, 5)
    vec = a[:, None, :] + t[:, :, None] * ab[:, None, :] - p[:, None, :]
    dist = np.hypot(vec[..., 0], vec[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.einsum("kcj,kj->kc", vec, u) / dist
    ok = (
        ~np.isnan(t)
        & (dist <= gap)
        & ((cos >= math.cos(math.radians(max_angle)) - 1e-9) | (dist < 1e-9))
    )
    k_idx, c_idx = np.nonzero(ok)
    order = np.argsort(dist[k_idx, c_idx], kind="stable")

    deg_now = deg.tolist()
    limit = 3.0 * gap
    reach: dict[int, dict[int, float]] = {}
    splits: dict[int, list[tuple[float, int]]] = {}
    new_xy: list[NDArray[np.float64]] = []
    bridges: list[tuple[int, int]] = []
    for k, c in zip(k_idx[order].tolist(), c_idx[order].tolist(), strict=True):
        d = int(dead[di[k]])
        if deg_now[d] != 1:  # bridged already, as a source or as a target
            continue
        seg = int(si[k])
        va, vb = int(e[seg, 0]), int(e[seg, 1])
        seg_len = math.sqrt(seg_len2[k])
        tk = float(t[k, c])
        tk = 0.0 if tk * seg_len < 1.0 else 1.0 if (1.0 - tk) * seg_len < 1.0 else tk
        if d not in reach:
            reach[d] = _graph_distances(d, xy_l, ip_l, ix_l, limit)
        along = min(
            reach[d].get(va, math.inf) + tk * seg_len,
            reach[d].get(vb, math.inf) + (1.0 - tk) * seg_len,
        )
        if along <= limit:  # the dead end's own road, not another part of the graph
            continue
        if tk in (0.0, 1.0):
            target = va if tk == 0.0 else vb
        else:
            near = [v for s, v in splits.get(seg, []) if abs(s - tk) * seg_len < 1.0]
            if near:
                target = near[0]
            else:
                target = len(xy) + len(new_xy)
                new_xy.append(xy[va] + tk * (xy[vb] - xy[va]))
                splits.setdefault(seg, []).append((tk, target))
                deg_now.append(2)
        bridges.append((d, target))
        deg_now[d] += 1
        deg_now[target] += 1

    keep = np.ones(len(e), dtype=bool)
    pieces = [e, np.array(bridges, dtype=np.int64).reshape(-1, 2)]
    for seg, pts in splits.items():
        keep[seg] = False
        ids = [int(e[seg, 0])] + [v for _, v in sorted(pts)] + [int(e[seg, 1])]
        pieces.append(np.column_stack([ids[:-1], ids[1:]]).astype(np.int64))
    pieces[0] = e[keep]
    out_xy = np.vstack([xy, *new_xy]) if new_xy else xy
    return out_xy, np.concatenate(pieces)
