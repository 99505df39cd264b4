"""The project's road graph: :func:`~linegraph2road.mask2graph.mask_to_graph` of the accepted mask.

The accepted mask is sparse (chunks, :mod:`.chunks`), possibly spread over a huge raster, so it
is never assembled whole: its chunks are grouped into clusters (8-connected on the chunk grid);
each cluster's bounding box is read, vectorised, and the graphs are joined. Clusters are at
least one empty chunk apart, so no road crosses from one to another and the result is the graph
of the whole mask. Every edge gets ``prob = 1`` (the user accepted it), so the files have the
columns ``l2r extract`` writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from linegraph2road.annotate.chunks import CHUNK, Chunk, Rect, read_rect
from linegraph2road.graph import RoadGraph
from linegraph2road.mask2graph import mask_to_graph

if TYPE_CHECKING:
    from linegraph2road.georef import Georeference

__all__ = ["accepted_graph", "chunk_clusters"]


def chunk_clusters(keys: Sequence[tuple[int, int]], shape: tuple[int, int]) -> list[Rect]:
    """Pixel rectangles (clipped to the ``(H, W)`` image) of the 8-connected clusters of chunk
    keys ``(chunk_row, chunk_col)``, in row-major order of their first chunk."""
    if not keys:
        return []
    k = np.asarray(keys, dtype=np.int64).reshape(-1, 2)
    lo = k.min(axis=0)
    grid = np.zeros(tuple(k.max(axis=0) - lo + 1), dtype=bool)
    grid[k[:, 0] - lo[0], k[:, 1] - lo[1]] = True
    labels, _n = ndimage.label(grid, structure=np.ones((3, 3), dtype=bool))
    out = []
    for sl in ndimage.find_objects(labels):
        r0, r1 = (sl[0].start + lo[0]) * CHUNK, (sl[0].stop + lo[0]) * CHUNK
        c0, c1 = (sl[1].start + lo[1]) * CHUNK, (sl[1].stop + lo[1]) * CHUNK
        rect = Rect(int(c0), int(r0), int(c1 - c0), int(r1 - r0)).clip(shape)
        if rect is not None:
            out.append(rect)
    return out


def accepted_graph(
    get: Callable[[tuple[int, int]], Chunk | None],
    keys: Sequence[tuple[int, int]],
    shape: tuple[int, int],
    *,
    georef: Georeference | None = None,
    mask2graph: dict[str, Any] | None = None,
) -> RoadGraph:
    """The road graph of the accepted mask.

    Parameters
    ----------
    get : callable
        ``get((chunk_row, chunk_col)) -> Chunk or None`` (the store's chunks).
    keys : sequence of (int, int)
        The non-empty chunks.
    shape : (H, W)
        The processed image's size.
    georef : Georeference or None
        The processed image's georeference, given to the graph.
    mask2graph : dict or None
        Keyword arguments of :func:`~linegraph2road.mask2graph.mask_to_graph` (its defaults
        suit 1 m/px).

    Returns
    -------
    RoadGraph
        Nodes ``(N, 2)`` float64 ``(x, y)`` pixels of the processed image; ``edge_prob`` all 1.
    """
    nodes: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    count = 0
    for rect in chunk_clusters(keys, shape):
        road, _ = read_rect(rect, get)
        if not road.any():
            continue
        g = mask_to_graph(road, **(mask2graph or {}))
        nodes.append(g.nodes + np.array([rect.col0, rect.row0], dtype=np.float64))
        edges.append(g.edges + count)
        count += g.num_nodes
    if not nodes:
        return RoadGraph(
            np.zeros((0, 2)), np.zeros((0, 2), np.int64), np.zeros(0, np.float32), georef
        )
    e = np.concatenate(edges)
    return RoadGraph(np.concatenate(nodes), e, np.ones(len(e), np.float32), georef)
