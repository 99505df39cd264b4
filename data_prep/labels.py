"""Mask labels of a tile: road centerlines, keypoints and overpass/underpass points (section 3.5).

All masks are ``(H, W)`` bool arrays on the tile's pixel grid; graph coordinates follow the
library convention, ``(x, y) = (col, row)`` float64 pixels with the origin at the top-left
corner, and a point at ``(x, y)`` falls in pixel ``(row, col) = (floor(y), floor(x))`` (as
:mod:`linegraph2road.rasterize`). Discs and line widths are the same as
:func:`~linegraph2road.rasterize.draw_discs` / :func:`~linegraph2road.rasterize.render_road_mask`
(pixels whose centres lie within the radius of the point's pixel centre), stamped with shifted
copies instead of a whole-image morphological dilation, which is several times faster on 2048
tiles and gives the same pixels.

Keypoints (paper, section 3.5): every node of degree != 2 (dead ends, junctions and isolated
nodes), plus every degree-2 node whose two edges form an angle between ``turn_min`` and
``turn_max`` degrees (60 and 120). The *angle at a node* is the angle between its two edge
vectors, ``acos(u . w / (|u| |w|))`` with ``u``, ``w`` pointing from the node to its two
neighbours: 180 degrees is a straight road, 90 a right-angle turn. The deviation from straight
(``180 - angle``) lies in the same ``[60, 120]`` range, so "angle" and "turn" read alike here.
Both bounds are inclusive. As the paper words it, a hairpin sharper than 60 degrees is *not* a
keypoint; a degree-2 node with a zero-length edge has no angle and is not one either.

The tile's *canonical frame* (:func:`canonical_frame`) makes labels equivariant under the
rotations and flips used for augmentation; see :mod:`~linegraph2road.data_prep.tile`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph
from linegraph2road.rasterize import check_shape, dilate, draw_discs, draw_segments

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

_SNAP = 1024.0  # canonical coordinates are multiples of 1/1024 px

__all__ = [
    "canonical_frame",
    "dihedral_mask_inverse",
    "dihedral_points",
    "keypoint_mask",
    "keypoint_nodes",
    "node_angles",
    "overpass_mask",
    "road_mask",
]


def _check_range(turn_min: float, turn_max: float) -> tuple[float, float]:
    lo, hi = float(turn_min), float(turn_max)
    if not (0.0 <= lo <= hi <= 180.0):
        raise GraphError(
            f"turn angles must satisfy 0 <= turn_min <= turn_max <= 180 degrees, got "
            f"turn_min={turn_min!r}, turn_max={turn_max!r}"
        )
    return lo, hi


def road_mask(
    graph: RoadGraph, shape: tuple[int, int], *, road_width: int = 3
) -> NDArray[np.bool_]:
    """Ground-truth centerlines drawn ``road_width`` pixels wide (SAM-Road: 3).

    Parameters
    ----------
    graph : RoadGraph
        Pixel-coordinate graph ``(x, y)``.
    shape : (H, W)
        Tile shape in pixels.
    road_width : int, default 3
        Line width in pixels (a disc of radius ``(road_width - 1) / 2`` around each centerline
        pixel), as :func:`~linegraph2road.rasterize.render_road_mask`.

    Returns
    -------
    (H, W) bool
    """
    if int(road_width) < 1:
        raise GraphError(f"road_width must be at least 1 pixel, got {road_width!r}")
    h, w = check_shape(shape, "tile")
    e = graph.edges
    lines = draw_segments(graph.nodes[e[:, 0]], graph.nodes[e[:, 1]], (h, w), width=1)
    return dilate(lines, (int(road_width) - 1) / 2.0)


def node_angles(graph: RoadGraph) -> NDArray[np.float64]:
    """(N,) float64 angle in degrees between the two edges of each degree-2 node.

    180 is straight, 90 a right angle, 0 a full reversal. NaN for nodes of any other degree and
    for degree-2 nodes with a zero-length edge.
    """
    n = graph.num_nodes
    out = np.full(n, np.nan)
    e = graph.edges
    if len(e) == 0:
        return out
    src = np.concatenate([e[:, 0], e[:, 1]])
    dst = np.concatenate([e[:, 1], e[:, 0]])
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    deg = np.bincount(src, minlength=n)
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    two = np.flatnonzero(deg == 2)
    a = graph.nodes[dst[start[two]]] - graph.nodes[two]
    b = graph.nodes[dst[start[two] + 1]] - graph.nodes[two]
    na, nb = np.hypot(a[:, 0], a[:, 1]), np.hypot(b[:, 0], b[:, 1])
    ok = (na > 0) & (nb > 0)
    cos = np.einsum("ij,ij->i", a[ok], b[ok]) / (na[ok] * nb[ok])
    out[two[ok]] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def keypoint_nodes(
    graph: RoadGraph, *, turn_min: float = 60.0, turn_max: float = 120.0
) -> NDArray[np.int64]:
    """Ids of the graph's keypoints: degree != 2, or degree 2 with an angle in the range.

    Parameters
    ----------
    graph : RoadGraph
    turn_min, turn_max : float, default 60 and 120
        Inclusive range of the angle between the two edges of a degree-2 node, in degrees (see
        the module docstring: 180 = straight).

    Returns
    -------
    (K,) int64 sorted node ids.
    """
    lo, hi = _check_range(turn_min, turn_max)
    deg = graph.degrees()
    ang = node_angles(graph)
    with np.errstate(invalid="ignore"):
        turn = (ang >= lo) & (ang <= hi)
    return np.flatnonzero((deg != 2) | turn).astype(np.int64)


def keypoint_mask(
    graph: RoadGraph,
    shape: tuple[int, int],
    *,
    keypoint_radius: float = 3.0,
    turn_min: float = 60.0,
    turn_max: float = 120.0,
) -> NDArray[np.bool_]:
    """(H, W) bool discs of ``keypoint_radius`` px (paper: 3) at :func:`keypoint_nodes`."""
    ids = keypoint_nodes(graph, turn_min=turn_min, turn_max=turn_max)
    return draw_discs(graph.nodes[ids], shape, radius=keypoint_radius)


def overpass_mask(
    points: ArrayLike, shape: tuple[int, int], *, overpass_radius: float = 3.0
) -> NDArray[np.bool_]:
    """(H, W) bool discs of ``overpass_radius`` px (paper: 3) at the (K, 2) ``(x, y)`` endpoints
    of edges in overpass/underpass crossings (see :mod:`~linegraph2road.data_prep.overpass`)."""
    return draw_discs(points, shape, radius=overpass_radius)


def dihedral_points(
    points: NDArray[np.float64], shape: tuple[int, int], code: int, *, inverse: bool = False
) -> NDArray[np.float64]:
    """Apply one of the 8 tile symmetries to (N, 2) ``(x, y)`` points of an (H, W) tile.

    ``code = 4 * flip + k``: mirror left-right (``x -> W - x``) if ``flip``, then ``k`` quarter
    turns, each ``(x, y) -> (H - y, x)`` on an (H, W) tile (the points of
    ``np.rot90(mask, -1)``). ``inverse=True`` undoes it; ``shape`` is always the input tile's.
    """
    h, w = shape
    flip, k = divmod(int(code), 4)
    p = np.array(points, dtype=np.float64, copy=True).reshape(-1, 2)
    if not inverse:
        if flip:
            p[:, 0] = w - p[:, 0]
        for _ in range(k):
            p = np.column_stack([h - p[:, 1], p[:, 0]])
            h, w = w, h
        return p + 0.0
    hh, ww = (w, h) if k % 2 else (h, w)  # shape after the forward transform
    for _ in range(k):
        p = np.column_stack([p[:, 1], ww - p[:, 0]])
        hh, ww = ww, hh
    if flip:
        p[:, 0] = w - p[:, 0]
    return p + 0.0


def dihedral_mask_inverse(mask: NDArray[np.bool_], code: int) -> NDArray[np.bool_]:
    """Undo :func:`dihedral_points` ``code`` on an (H, W) mask of the transformed tile."""
    flip, k = divmod(int(code), 4)
    out = np.rot90(mask, k)
    return np.ascontiguousarray(np.fliplr(out) if flip else out)


def canonical_frame(tagged: TaggedGraph, shape: tuple[int, int]) -> tuple[TaggedGraph, int]:
    """The tile's graph in its canonical frame and the frame's :func:`dihedral_points` code.

    Coordinates snapped to 1/1024 px, transformed by each of the 8 codes and put in canonical
    order (nodes sorted by ``(x, y)``, edges sorted, tags following); the smallest
    ``(shape, nodes, edges, tags)`` key wins. Every rotation/flip of a tile gives the same
    canonical graph. Returns a pixel graph without georeference.
    """
    g = tagged.graph
    snapped = np.round(g.nodes * _SNAP) / _SNAP + 0.0
    tags = np.column_stack([tagged.bridge, tagged.tunnel, tagged.layer]).astype(np.int16)
    frames: list[tuple[Any, ...]] = []
    for code in range(8):
        nodes = dihedral_points(snapped, shape, code)
        order = np.lexsort((nodes[:, 1], nodes[:, 0]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        e = np.sort(rank[g.edges], axis=1)
        eo = np.lexsort((e[:, 1], e[:, 0]))
        tshape = shape if code % 2 == 0 else (shape[1], shape[0])
        key = (tshape, nodes[order].tobytes(), e[eo].tobytes(), tags[eo].tobytes())
        frames.append((key, code, nodes[order], e[eo], eo))
    _, code, nodes, edges, eo = min(frames, key=lambda f: f[0])
    canon = TaggedGraph(
        RoadGraph(nodes, edges),
        tagged.bridge[eo],
        tagged.tunnel[eo],
        tagged.layer[eo],
        tagged.tagged,
        tagged.highway[eo],
        tagged.way_id[eo],
    )
    return canon, code
