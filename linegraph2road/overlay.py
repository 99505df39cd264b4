"""Drawing graphs, points and masks in colour over an image, for previews and evaluation plots.

Plain numpy on an ``(H, W, 3) uint8`` canvas, written with :func:`save_png`; no plotting library
is needed. Coordinates are the library's pixel ``(x, y)``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import GraphError
from linegraph2road.rasterize import draw_discs, draw_segments

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from linegraph2road.graph import RoadGraph

__all__ = ["COLORS", "blend_mask", "draw_graph", "draw_points", "make_canvas", "save_png"]

Color = tuple[int, int, int]

#: A small palette that stays readable over imagery and on white.
COLORS: dict[str, Color] = {
    "gt": (0, 170, 255),  # ground truth: blue
    "pred": (255, 140, 0),  # prediction: orange
    "missed": (230, 0, 0),  # ground truth with no prediction nearby: red
    "false": (200, 0, 200),  # prediction with no ground truth nearby: magenta
    "positive": (0, 200, 0),
    "negative": (150, 150, 150),
    "keypoint": (255, 220, 0),
    "overpass": (255, 0, 120),
    "road": (255, 255, 255),
}


def make_canvas(shape: tuple[int, int], image: ArrayLike | None = None) -> NDArray[np.uint8]:
    """An (H, W, 3) uint8 canvas: a dimmed copy of ``image`` ((H, W) or (H, W, C)), else black."""
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise GraphError(f"canvas shape must be positive, got {shape}")
    if image is None:
        return np.zeros((h, w, 3), dtype=np.uint8)
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[:2] != (h, w):
        raise GraphError(f"image is {img.shape[:2]}, canvas is {(h, w)}")
    img = img[:, :, :3].astype(np.float32)
    if img.max() > 255:
        img = img / img.max() * 255.0
    return (img * 0.6).astype(np.uint8)


def _paint(canvas: NDArray[np.uint8], where: NDArray[np.bool_], color: Color, alpha: float) -> None:
    c = np.asarray(color, dtype=np.float32)
    px = canvas[where].astype(np.float32)
    canvas[where] = (px * (1.0 - alpha) + c * alpha).astype(np.uint8)


def blend_mask(
    canvas: NDArray[np.uint8], mask: ArrayLike, color: Color, *, alpha: float = 0.5
) -> NDArray[np.uint8]:
    """A copy of ``canvas`` with the (H, W) mask (bool, or probabilities > 0.5) tinted."""
    m = np.asarray(mask)
    m = m if m.dtype == bool else m > 0.5
    out = canvas.copy()
    _paint(out, m, color, alpha)
    return out


def draw_graph(
    canvas: NDArray[np.uint8],
    graph: RoadGraph,
    color: Color,
    *,
    width: int = 2,
    edges: ArrayLike | None = None,
    node_radius: float = 0.0,
) -> NDArray[np.uint8]:
    """A copy of ``canvas`` with the graph's edges (or the (E,) boolean subset ``edges``) drawn."""
    shape = canvas.shape[:2]
    sel = graph.edges if edges is None else graph.edges[np.asarray(edges, dtype=bool)]
    lines = draw_segments(graph.nodes[sel[:, 0]], graph.nodes[sel[:, 1]], shape, width=width)
    out = canvas.copy()
    _paint(out, lines, color, 1.0)
    if node_radius > 0:
        _paint(out, draw_discs(graph.nodes, shape, radius=node_radius), color, 1.0)
    return out


def draw_points(
    canvas: NDArray[np.uint8], points: ArrayLike, color: Color, *, radius: float = 3.0
) -> NDArray[np.uint8]:
    """A copy of ``canvas`` with discs at (K, 2) pixel ``(x, y)`` points."""
    out = canvas.copy()
    _paint(out, draw_discs(points, canvas.shape[:2], radius=radius), color, 1.0)
    return out


def save_png(path: str | os.PathLike[str], canvas: NDArray[np.uint8]) -> None:
    """Write an (H, W, 3) uint8 canvas as a PNG, atomically."""
    from linegraph2road.io.raster import write_raster

    write_raster(path, np.moveaxis(np.asarray(canvas, dtype=np.uint8), 2, 0))
