"""Chunked extraction of one huge raster: plan, per-chunk extraction, seamless merge.

The single-process extraction (:mod:`.extract`) lays one grid of windows over the whole image,
averages the window masks, runs coupled NMS on the averaged masks, and scores every window's
candidate edges with that window's features; an edge's probability is the mean over the windows
that scored it. The chunked extraction keeps that *global* window grid and splits the *work*:

* **Ownership.** The image is cut into chunk cores of about ``chunk`` px a side; each window of
  the global grid belongs to the chunk whose core holds its centre. Every window is therefore
  scored exactly once over all chunks, seam windows included ("seam candidate edges scored
  once"): the merged edge probabilities are the single-process ones.
* **Halo.** A chunk's vertices must be the global NMS vertices wherever its windows score edges.
  So a chunk runs the network on every window of the global grid that touches its owned windows'
  span widened by a margin ``max(d_nei, 4 max(d_r, d_k))`` (NMS decisions depend on nearby
  pixels only); the masks there are then bit-identical to the single-process ones (same windows,
  same summation order). The chunk's *region* is the union of those windows: its core plus a
  halo of at most ``1.5 window + margin`` px (>= one window + d_nei).
* **Reconciliation.** Greedy NMS decisions can, rarely, chain across the margin, so two chunks
  may see one vertex at two nearby pixels. In the merge, vertices of different chunks that
  break coupled NMS's guarantee (a road vertex within ``d_r`` of any other vertex, two keypoints
  of one mask within ``d_k``) are merged into one, preferring the version of the chunk whose
  core holds it; their edges are re-keyed, duplicates pooled, self-loops dropped, so seams get
  no duplicate edges, gaps or dangling stubs.

Tasks carry a :class:`Chunk` (a few integers) and return a :class:`ChunkResult` (the vertices
its scored edges use, and per-edge probability sums), written as ``.npz`` by the caller.

Coordinates: rows/columns of the processed image (model GSD), ``(x, y) = (col, row)`` pixels;
ranges are half-open ``[start, stop)``; vertex keys are ``(row * W + col) * 4 + kind`` over the
whole image (``W`` its width).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from linegraph2road.errors import ParameterError
from linegraph2road.graph import RoadGraph
from linegraph2road.inference.extract import (
    PRECISIONS,
    _check,
    _Extraction,
    _resolve_device,
    window_layout,
)
from linegraph2road.io._atomic import atomic_path
from linegraph2road.nms import KEYPOINT, OVERPASS, ROAD

if TYPE_CHECKING:
    import os

    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference
    from linegraph2road.model import LineGraph2Road

__all__ = [
    "Chunk",
    "ChunkPlan",
    "ChunkResult",
    "RegionSource",
    "extract_chunk",
    "load_chunk",
    "merge_chunks",
    "plan_chunks",
    "save_chunk",
]

Span = tuple[int, int]


@dataclass(frozen=True)
class Chunk:
    """One chunk: what a worker extracts (global processed-image pixels, half-open).

    Attributes
    ----------
    index : (int, int)
        Chunk row and column in the plan.
    core : (r0, r1, c0, c1)
        Rows and columns the chunk owns (windows whose centre lies here are scored by it).
    region : (r0, r1, c0, c1)
        Rows and columns it reads: the core plus the halo.
    rows, cols : tuple of int
        Offsets of the global grid's windows it runs the network on.
    own_rows, own_cols : tuple of int
        Offsets of the windows it scores (a subset of ``rows`` x ``cols``).
    """

    index: tuple[int, int]
    core: tuple[int, int, int, int]
    region: tuple[int, int, int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    own_rows: tuple[int, ...]
    own_cols: tuple[int, ...]

    @property
    def name(self) -> str:
        """``"r000_c001"``."""
        return f"r{self.index[0]:03d}_c{self.index[1]:03d}"

    @property
    def windows(self) -> int:
        """Windows the chunk runs the network on."""
        return len(self.rows) * len(self.cols)


@dataclass(frozen=True)
class ChunkPlan:
    """The chunks of an image; see :func:`plan_chunks`."""

    shape: tuple[int, int]
    window: int
    chunk: int
    margin: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    chunks: tuple[Chunk, ...]

    @property
    def windows(self) -> int:
        """Windows of the global grid (what a single-process run computes)."""
        return len(self.rows) * len(self.cols)

    @property
    def computed(self) -> int:
        """Windows the chunks compute in all (halo windows are computed by several chunks)."""
        return sum(c.windows for c in self.chunks)


def _axis(
    length: int, offsets: list[int], window: int, chunk: int, margin: int
) -> list[tuple[Span, Span, tuple[int, ...], tuple[int, ...]]]:
    """Per chunk along one axis: core, region, processed offsets, owned offsets."""
    k = max(1, math.ceil(length / chunk))
    bounds = [round(i * length / k) for i in range(k + 1)]
    centres = [min(o + window // 2, length - 1) for o in offsets]
    out: list[tuple[Span, Span, tuple[int, ...], tuple[int, ...]]] = []
    for a, b in itertools.pairwise(bounds):
        own = tuple(o for o, c in zip(offsets, centres, strict=True) if a <= c < b)
        if not own:
            out.append(((a, b), (a, a), (), ()))
            continue
        exact0 = max(0, own[0] - margin)
        exact1 = min(length, own[-1] + window + margin)
        proc = tuple(o for o in offsets if o < exact1 and o + window > exact0)
        out.append(((a, b), (proc[0], min(length, proc[-1] + window)), proc, own))
    return out


def plan_chunks(
    shape: tuple[int, int],
    *,
    window: int,
    chunk: int,
    n_windows: int | None = None,
    layout: str = "auto",
    d_nei: float = 64.0,
    d_r: float = 16.0,
    d_k: float = 8.0,
) -> ChunkPlan:
    """Cut a ``(H, W)`` image into chunks over the single-process window grid.

    Parameters
    ----------
    shape : (int, int)
        Processed image ``(height, width)``, pixels.
    window : int
        The model's window side, pixels.
    chunk : int
        Chunk side, pixels (cores are about this size: the axis is split evenly into
        ``ceil(length / chunk)`` parts); at least ``window``.
    n_windows : int or None
        Windows per axis of the single-process grid (None = the layout's default).
    layout : {"auto", "sam-road"}
        The single-process window layout (:func:`~.extract.window_layout`).
    d_nei, d_r, d_k : float
        Candidate radius and NMS radii, pixels (they set the margin).

    Returns
    -------
    ChunkPlan
        Chunks that own no window (possible when ``chunk`` is close to a window) are left out.

    Raises
    ------
    ParameterError
        ``chunk`` smaller than a window.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < window:
        raise ParameterError(
            f"--chunk {chunk} px is smaller than the model's {window} px window; use --chunk of "
            f"at least {window} (thousands of pixels for big rasters, e.g. 8192)"
        )
    rows, cols = window_layout(
        shape, window=window, n_windows=n_windows, d_nei=d_nei, layout=layout
    )
    margin = math.ceil(max(d_nei, 4 * max(d_r, d_k)))
    height, width = shape
    row_parts = _axis(height, rows, window, chunk, margin)
    col_parts = _axis(width, cols, window, chunk, margin)
    chunks = [
        Chunk((i, j), (*rc, *cc), (*rr, *cr), rp, cp, ro, co)
        for i, (rc, rr, rp, ro) in enumerate(row_parts)
        for j, (cc, cr, cp, co) in enumerate(col_parts)
        if ro and co
    ]
    return ChunkPlan(shape, window, chunk, margin, tuple(rows), tuple(cols), tuple(chunks))


class RegionSource:
    """A rectangle of another windowed source (RasterSource or in-memory) seen as an image.

    ``read(row0, col0, h, w)`` reads ``(row0 + r0, col0 + c0)`` of the base source, so the
    pixels (and validity) are exactly the base's; ``shape`` is the rectangle's.
    """

    def __init__(self, base: Any, region: tuple[int, int, int, int]) -> None:
        r0, r1, c0, c1 = region
        self.base, self.row0, self.col0 = base, r0, c0
        self.shape = (r1 - r0, c1 - c0)
        self.georef = None
        self.notes = list(getattr(base, "notes", []))

    def read(
        self, row0: int, col0: int, height: int, width: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """``(3, height, width)`` uint8 and ``(height, width)`` validity of the base source."""
        image: NDArray[np.uint8]
        valid: NDArray[np.bool_]
        image, valid = self.base.read(row0 + self.row0, col0 + self.col0, height, width)
        return image, valid


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk found (global pixels and keys).

    Attributes
    ----------
    vertex_keys : (V,) int64
        Keys of the vertices its scored edges use.
    points : (V, 2) float64
        Their ``(x, y)`` pixels.
    kind : (V,) int8
        :data:`~linegraph2road.nms.KEYPOINT`, ``OVERPASS`` or ``ROAD``.
    score : (V,) float32
        Their mask values.
    in_core : (V,) bool
        Whether the vertex lies in this chunk's core.
    edge_keys : (E, 2) int64
        Scored candidate edges as sorted vertex-key pairs, unique.
    prob_sum : (E,) float64
        Sum of the edge's probabilities over the windows of this chunk that scored it.
    count : (E,) int64
        Number of those windows.
    stats : dict
        ``windows`` run, ``scored_windows``, ``vertices`` (NMS vertices of the region) and
        ``seconds``.
    """

    vertex_keys: NDArray[np.int64]
    points: NDArray[np.float64]
    kind: NDArray[np.int8]
    score: NDArray[np.float32]
    in_core: NDArray[np.bool_]
    edge_keys: NDArray[np.int64]
    prob_sum: NDArray[np.float64]
    count: NDArray[np.int64]
    stats: dict[str, float] = field(default_factory=dict)


def extract_chunk(
    model: LineGraph2Road,
    source: Any,
    chunk: Chunk,
    *,
    t_k: float = 0.248,
    t_r: float = 0.364,
    d_k: float = 8.0,
    d_r: float = 16.0,
    d_nei: float = 64.0,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    batch_size: int = 1,
    progress: bool = False,
) -> ChunkResult:
    """Extract one chunk of a :func:`plan_chunks` plan (see the module docstring).

    Parameters
    ----------
    model : LineGraph2Road
        As :func:`~.extract.extract_graph` (its mode is restored afterwards).
    source : RasterSource or in-memory source
        The *whole* image (windowed reads); only the chunk's region is read.
    chunk : Chunk
        From the plan made for this image, window and radii.
    t_k, t_r, d_k, d_r, d_nei, device, precision, batch_size, progress
        As :func:`~.extract.extract_graph` (the topology threshold is applied at the merge).

    Returns
    -------
    ChunkResult
    """
    import time

    _check(t_k, t_r, 0.0, d_k, d_r, d_nei)
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    start = time.perf_counter()
    width = int(source.shape[1])
    r0, _, c0, _ = chunk.region
    view = RegionSource(source, chunk.region)
    rows = [r - r0 for r in chunk.rows]
    cols = [c - c0 for c in chunk.cols]
    own = {(r - r0, c - c0) for r in chunk.own_rows for c in chunk.own_cols}
    dev = _resolve_device(model, device)
    was_training = model.training
    model.eval()
    try:
        ex = _Extraction(
            model, view, model.window_size, ("auto", None), (t_k, t_r, 0.0, d_k, d_r, d_nei),
            dev, precision, False, batch_size, progress,
            grid=(rows, cols), scored=lambda r, c: (r, c) in own,
        )  # fmt: skip
        ex.run_windows()
    finally:
        model.train(was_training)
    vertices, pix = ex.nms.result()
    vrow, vcol = np.divmod(pix, view.shape[1])
    kind = vertices.kind.astype(np.int64)
    local_keys = pix * 4 + kind
    global_keys = ((vrow + r0) * width + (vcol + c0)) * 4 + kind
    if ex.edge_keys:
        pairs = np.concatenate(ex.edge_keys)
        probs = np.concatenate(ex.edge_probs).astype(np.float64)
    else:
        pairs, probs = np.zeros((0, 2), np.int64), np.zeros(0)
    order = np.argsort(local_keys)
    ends = order[np.searchsorted(local_keys, pairs.reshape(-1), sorter=order)].reshape(-1, 2)
    gpairs = np.sort(global_keys[ends], axis=1)
    uniq, inverse = np.unique(gpairs, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    prob_sum = np.bincount(inverse, probs, len(uniq)).astype(np.float64)
    count = np.bincount(inverse, None, len(uniq)).astype(np.int64)
    used = np.unique(ends)
    points = vertices.points[used] + np.array([c0, r0], np.float64)
    cr0, cr1, cc0, cc1 = chunk.core
    in_core = (
        (points[:, 1] >= cr0) & (points[:, 1] < cr1) & (points[:, 0] >= cc0) & (points[:, 0] < cc1)
    )
    stats = {
        "windows": float(chunk.windows),
        "scored_windows": float(len(own)),
        "vertices": float(len(vertices)),
        "seconds": time.perf_counter() - start,
    }
    return ChunkResult(
        global_keys[used].astype(np.int64),
        points,
        vertices.kind[used].astype(np.int8),
        vertices.scores[used].astype(np.float32),
        in_core,
        uniq.reshape(-1, 2).astype(np.int64),
        prob_sum,
        count,
        stats,
    )


_ARRAYS = ("vertex_keys", "points", "kind", "score", "in_core", "edge_keys", "prob_sum", "count")


def save_chunk(result: ChunkResult, path: str | os.PathLike[str]) -> None:
    """Write a chunk's result as ``.npz`` (atomically)."""
    arrays = {name: getattr(result, name) for name in _ARRAYS}
    stats = np.array(sorted(result.stats.items()), dtype=object)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays, stats_keys=stats[:, 0].astype(str) if len(stats) else [],
                 stats_values=stats[:, 1].astype(float) if len(stats) else [])  # fmt: skip


def load_chunk(path: str | os.PathLike[str]) -> ChunkResult:
    """Read what :func:`save_chunk` wrote."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: np.array(data[name]) for name in _ARRAYS}
        stats = dict(zip(data["stats_keys"].tolist(), data["stats_values"].tolist(), strict=True))
    return ChunkResult(**arrays, stats=stats)


def _conflicts(
    points: NDArray[np.float64], kind: NDArray[np.int8], d_r: float, d_k: float
) -> NDArray[np.int64]:
    """Pairs of vertices that coupled NMS would never keep together, ``(P, 2)``."""
    from scipy.spatial import cKDTree

    radius = max(d_r, d_k)
    if len(points) < 2 or radius <= 0:
        return np.zeros((0, 2), np.int64)
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray").astype(np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    dist = np.linalg.norm(points[a] - points[b], axis=1)
    ka, kb = kind[a], kind[b]
    road = ((ka == ROAD) | (kb == ROAD)) & (dist < d_r)
    same = (ka == kb) & np.isin(ka, (KEYPOINT, OVERPASS)) & (dist < d_k)
    return pairs[road | same]


def merge_chunks(
    results: list[ChunkResult],
    *,
    t_topo: float = 0.5,
    d_r: float = 16.0,
    d_k: float = 8.0,
    georef: Georeference | None = None,
) -> tuple[RoadGraph, dict[str, int]]:
    """One graph from the chunks of a plan (see the module docstring).

    Parameters
    ----------
    results : list of ChunkResult
        Every chunk of the plan.
    t_topo : float
        Edges with mean probability ``> t_topo`` are kept.
    d_r, d_k : float
        NMS radii, pixels (what counts as one vertex seen twice).
    georef : Georeference or None
        The processed image's georeference, given to the graph.

    Returns
    -------
    (RoadGraph, dict)
        The graph (global processed-image pixels, ``edge_prob`` = mean probability) and counts:
        ``vertices``, ``reconciled`` (vertices merged into another chunk's), ``scored_edges``,
        ``kept_edges``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys = np.concatenate([r.vertex_keys for r in results]) if results else np.zeros(0, np.int64)
    if len(keys) == 0:
        empty = RoadGraph.from_edges(np.zeros((0, 2)), np.zeros((0, 2), np.int64), georef=georef)
        return empty, {"vertices": 0, "reconciled": 0, "scored_edges": 0, "kept_edges": 0}
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    points = np.concatenate([r.points for r in results])[first]
    kind = np.concatenate([r.kind for r in results])[first]
    score = np.concatenate([r.score for r in results])[first]
    in_core = np.zeros(len(uniq), bool)
    np.logical_or.at(in_core, inverse.reshape(-1), np.concatenate([r.in_core for r in results]))
    pairs = _conflicts(points, kind, d_r, d_k)
    n = len(uniq)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # representative of each group: in its owner's core first, then the highest score
    rank = np.lexsort((-score, ~in_core, label))
    rep_of_label = np.full(label.max() + 1 if n else 0, -1, np.int64)
    first_in_label = np.unique(label[rank], return_index=True)[1]
    rep_of_label[label[rank][first_in_label]] = rank[first_in_label]
    rep = rep_of_label[label]

    ek = np.concatenate([r.edge_keys for r in results]).reshape(-1, 2)
    psum = np.concatenate([r.prob_sum for r in results])
    cnt = np.concatenate([r.count for r in results]).astype(np.float64)
    ends = np.sort(rep[np.searchsorted(uniq, ek.reshape(-1))].reshape(-1, 2), axis=1)
    loop = ends[:, 0] == ends[:, 1]
    ends, psum, cnt = ends[~loop], psum[~loop], cnt[~loop]
    edges, inv = np.unique(ends, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    mean = np.bincount(inv, psum, len(edges)) / np.bincount(inv, cnt, len(edges))
    keep = mean > t_topo
    edges, mean = edges[keep], mean[keep]
    used, local = np.unique(edges, return_inverse=True)
    out = RoadGraph.from_edges(
        points[used],
        local.reshape(-1, 2).astype(np.int64),
        np.clip(mean, 0.0, 1.0).astype(np.float32),
        georef=georef,
    )
    stats = {
        "vertices": int(n),
        "reconciled": int(n - len(np.unique(rep))),
        "scored_edges": len(edges) + int((~keep).sum()),
        "kept_edges": out.num_edges,
    }
    return out, stats
