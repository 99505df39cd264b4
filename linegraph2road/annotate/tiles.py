"""Map tiles of the processed image and of the project's masks, as PNG bytes.

The page shows the raster as a tile pyramid: level ``z`` halves the resolution ``z`` times, and
tile ``(tx, ty)`` of level ``z`` covers ``TILE * 2**z`` processed pixels a side starting at
column ``tx * TILE * 2**z``, row ``ty * TILE * 2**z``. Image tiles are read window by window
through :class:`~linegraph2road.inference.RasterSource` (so 16-bit and 1-band rasters get the same
stretch as ``l2r extract``, and memory does not grow with the raster); nodata is transparent.
Mask overlays are drawn from the accepted mask's chunks, reduced by "any road in the block" so
thin roads stay visible when zoomed out.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from linegraph2road.annotate.chunks import Rect
from linegraph2road.errors import ParameterError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "MAX_OVERLAY_LEVEL",
    "TILE",
    "TileOutside",
    "encode_png",
    "levels_for",
    "mask_rgba",
    "probability_rgba",
    "reduce_any",
    "tile_rect",
]

#: Side of a map tile in pixels.
TILE = 256
#: Coarsest level with mask overlays (a 2048 px block per tile); coarser levels show the graph.
MAX_OVERLAY_LEVEL = 3
#: Colours (RGBA) of the overlays.
ROAD_RGBA = (0, 229, 255, 170)
COVERED_RGBA = (255, 255, 255, 38)


class TileOutside(ParameterError):
    """A tile address outside the pyramid (negative, past the image, or too deep)."""


def levels_for(shape: tuple[int, int]) -> int:
    """Number of pyramid levels: down to one tile for the whole image (at least 1)."""
    side = max(int(shape[0]), int(shape[1]))
    return max(1, math.ceil(math.log2(max(side / TILE, 1.0))) + 1)


def tile_rect(z: int, tx: int, ty: int, shape: tuple[int, int]) -> tuple[Rect, int]:
    """The processed-image rectangle of tile ``(z, tx, ty)`` (clipped) and its level factor.

    Raises
    ------
    TileOutside
        The tile lies outside the image or the pyramid.
    """
    if not (0 <= z < levels_for(shape)):
        raise TileOutside(f"zoom level {z} does not exist (levels 0-{levels_for(shape) - 1})")
    f = 1 << z
    side = TILE * f
    rect = Rect(tx * side, ty * side, side, side).clip(shape) if tx >= 0 and ty >= 0 else None
    if rect is None:
        raise TileOutside(f"tile {z}/{tx}/{ty} lies outside the {shape[1]} x {shape[0]} px image")
    return rect, f


def encode_png(rgba: NDArray[np.uint8]) -> bytes:
    """``(H, W, 3 or 4)`` uint8 -> PNG bytes (fast compression: tiles are made on demand)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def reduce_any(mask: NDArray[np.bool_], factor: int) -> NDArray[np.bool_]:
    """``(H, W)`` bool -> ``(ceil(H / f), ceil(W / f))``: True where any pixel of the block is."""
    if factor == 1:
        return mask
    h, w = mask.shape
    ph, pw = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.zeros((ph, pw), dtype=bool)
    padded[:h, :w] = mask
    return np.asarray(padded.reshape(ph // factor, factor, pw // factor, factor).any(axis=(1, 3)))


def mask_rgba(road: NDArray[np.bool_], covered: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """``(H, W, 4)`` overlay: accepted road cyan, the rest of the accepted area a faint veil."""
    out = np.zeros((*road.shape, 4), dtype=np.uint8)
    out[covered] = COVERED_RGBA
    out[road] = ROAD_RGBA
    return out


def probability_rgba(probs: NDArray[np.float32], *, threshold: float = 0.5) -> NDArray[np.uint8]:
    """``(H, W, 4)`` overlay of a prediction: orange, opaque above ``threshold``, fading out
    below it (invisible under half the threshold)."""
    p = np.clip(np.nan_to_num(np.asarray(probs, dtype=np.float32)), 0.0, 1.0)
    out = np.zeros((*p.shape, 4), dtype=np.uint8)
    out[..., 0] = 255
    out[..., 1] = 140
    ramp = np.clip((p / max(threshold, 1e-6) - 0.5) * 2.0, 0.0, 1.0) * 70.0
    alpha = np.where(p > threshold, 190.0, ramp)
    out[..., 3] = np.rint(alpha).astype(np.uint8)
    return out
