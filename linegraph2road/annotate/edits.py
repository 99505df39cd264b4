"""Graph edits as mask edits: the accepted mask stays the one source of the graph.

The project's graph is always ``mask_to_graph`` of the accepted mask, so an edit of the graph is
made on the mask and the graph rebuilt:

* **draw a road** (:func:`road_stroke`): the polyline is drawn ``width`` pixels wide into the
  mask (and marked accepted), so ``mask_to_graph`` traces it as a road;
* **delete an edge** (:func:`edge_pixels`): the road pixels that belong to the edge -- those
  whose nearest graph edge (Euclidean distance to the edges drawn 1 px wide) is this one, within
  ``radius`` pixels of it -- are cleared. Pixels nearer a neighbouring edge stay, so the roads
  meeting at the edge's junctions keep their shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from linegraph2road.annotate.chunks import Rect
from linegraph2road.errors import ParameterError
from linegraph2road.rasterize import draw_segments

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["ROAD_WIDTH", "edge_pixels", "polyline_rect", "road_stroke"]

#: Width in pixels of a drawn road (about a two-lane road at 1 m/px; wide enough that
#: mask_to_graph's hole filling and speck removal keep it as one line).
ROAD_WIDTH = 5


def polyline_rect(points: ArrayLike, pad: float, shape: tuple[int, int]) -> Rect | None:
    """The rectangle of ``(N, 2)`` ``(x, y)`` points grown by ``pad`` px, clipped to the image."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo = np.floor(p.min(axis=0) - pad).astype(int)
    hi = np.ceil(p.max(axis=0) + pad).astype(int) + 1
    return Rect(int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])).clip(shape)


def road_stroke(points: ArrayLike, rect: Rect, *, width: int = ROAD_WIDTH) -> NDArray[np.bool_]:
    """``(rect.height, rect.width)`` bool: the polyline ``points`` ((N, 2) ``(x, y)`` pixels of
    the image, N >= 2) drawn ``width`` px wide, in ``rect``'s frame."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) < 2 or not np.isfinite(p).all():
        raise ParameterError(f"a road is a polyline of at least 2 finite points, got {len(p)}")
    if int(width) < 1:
        raise ParameterError(f"road width must be >= 1 px, got {width}")
    local = p - np.array([rect.col0, rect.row0], dtype=np.float64)
    return draw_segments(local[:-1], local[1:], (rect.height, rect.width), width=int(width))


def edge_pixels(
    graph: RoadGraph,
    edge: int,
    road: NDArray[np.bool_],
    rect: Rect,
    *,
    radius: float = 12.0,
) -> NDArray[np.bool_]:
    """The road pixels of ``rect`` that belong to edge ``edge`` of ``graph``.

    Parameters
    ----------
    graph : RoadGraph
        The graph (nodes in image pixels ``(x, y)``).
    edge : int
        Row of ``graph.edges``.
    road : (rect.height, rect.width) bool
        The accepted road mask over ``rect``.
    rect : Rect
        The window (it should hold the edge plus ``radius``).
    radius : float, default 12
        Largest distance in pixels from the edge of a pixel to clear.

    Returns
    -------
    (rect.height, rect.width) bool
        Pixels to clear: road, within ``radius`` of the edge, and nearer to it than to any other
        edge of the graph.
    """
    if not 0 <= int(edge) < graph.num_edges:
        raise ParameterError(f"edge {edge} does not exist (the graph has {graph.num_edges})")
    shape = (rect.height, rect.width)
    offset = np.array([rect.col0, rect.row0], dtype=np.float64)
    a = graph.nodes[graph.edges[:, 0]] - offset
    b = graph.nodes[graph.edges[:, 1]] - offset
    # only edges whose box meets the window can own pixels in it
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    near = np.flatnonzero(
        (hi[:, 0] >= -radius)
        & (lo[:, 0] <= rect.width + radius)
        & (hi[:, 1] >= -radius)
        & (lo[:, 1] <= rect.height + radius)
    )
    labels = np.zeros(shape, dtype=np.int64)  # 0: no edge; k + 1: edge near[k]
    own = 0
    for k, e in enumerate(near):
        drawn = draw_segments(a[e : e + 1], b[e : e + 1], shape)
        labels[drawn & (labels == 0)] = k + 1
        if e == int(edge):
            own = k + 1
    if own == 0 or not labels.any():
        return np.zeros(shape, dtype=bool)
    dist, (ri, ci) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    owner = labels[ri, ci]
    return np.asarray(road & (owner == own) & (dist <= radius))
