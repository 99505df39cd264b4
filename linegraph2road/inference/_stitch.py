"""Averaging overlapping window masks a band of rows at a time, and in-memory image sources
(private helpers of extract.py and segment.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.errors import ParameterError
from linegraph2road.inference.imagery import RasterSource

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.georef import Georeference

__all__ = ["BandStitcher", "ImageArraySource", "as_source", "coverage"]


def coverage(length: int, offsets: list[int], window: int) -> NDArray[np.float32]:
    """``(length,)`` float32: how many windows starting at ``offsets`` cover each pixel."""
    diff = np.zeros(length + window + 1, dtype=np.int64)
    for o in offsets:
        diff[o] += 1
        diff[o + window] -= 1
    return np.cumsum(diff)[:length].astype(np.float32)


class BandStitcher:
    """Sum of window mask probabilities over the rows still open, plus validity.

    A fixed buffer of ``rows`` rows holds image rows ``[start, start + rows)``; :meth:`add` sums
    windows in (the order of the calls decides the float32 summation order), :meth:`pop` returns
    the mean of finished rows and shifts the buffer. The mean of a pixel is ``sum / count`` with
    ``count`` = windows covering it. Windows must not reach below ``start + rows``.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        rows: int,
        row_cover: NDArray[np.float32],
        col_cover: NDArray[Any],
    ) -> None:
        self.height, self.width = height, width
        self.row_cover, self.col_cover = row_cover, col_cover
        self.start = 0
        self.sum = np.zeros((3, min(rows, height), width), dtype=np.float32)
        self.valid = np.zeros((min(rows, height), width), dtype=bool)

    def add(
        self, row0: int, col0: int, probs: NDArray[np.float32], valid: NDArray[np.bool_]
    ) -> None:
        """Add a window's ``(3, w, w)`` probabilities and ``(w, w)`` validity at ``(row0, col0)``.

        The parts outside the image are ignored; ``row0`` must not be above :attr:`start`.
        """
        h = min(probs.shape[1], self.height - row0)
        w = min(probs.shape[2], self.width - col0)
        r = row0 - self.start
        if r < 0 or r + h > self.sum.shape[1]:
            raise ValueError(f"window rows {row0}..{row0 + h} outside the held band")
        self.sum[:, r : r + h, col0 : col0 + w] += probs[:, :h, :w]
        self.valid[r : r + h, col0 : col0 + w] |= valid[:h, :w]

    def pop(self, stop: int) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Mean masks ``(3, stop - start, W)`` float32 (0 where invalid) and validity; drop them."""
        n = stop - self.start
        if not 0 <= n <= self.sum.shape[1]:
            raise ValueError(f"cannot pop rows up to {stop}: band starts at {self.start}")
        count = self.row_cover[self.start : stop, None] * self.col_cover[None, :]
        masks = self.sum[:, :n] / np.maximum(count, 1.0)
        valid = self.valid[:n].copy()
        masks[:, ~valid] = 0.0
        keep = self.sum.shape[1] - n
        self.sum[:, :keep] = self.sum[:, n:]  # numpy copies overlapping slices safely
        self.sum[:, keep:] = 0.0
        self.valid[:keep] = self.valid[n:]
        self.valid[keep:] = False
        self.start = stop
        return masks, valid


class ImageArraySource:
    """An in-memory ``(3, H, W)`` uint8 image served like a :class:`~.imagery.RasterSource`."""

    def __init__(
        self, image: NDArray[np.uint8], valid: NDArray[np.bool_] | None, georef: Any
    ) -> None:
        self.image = image
        self.valid = valid
        self.shape = (int(image.shape[1]), int(image.shape[2]))
        self.georef = georef
        self.notes: list[str] = []

    def read(
        self, row0: int, col0: int, height: int, width: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """``(3, height, width)`` uint8 and ``(height, width)`` validity; outside = 0 / False."""
        image = np.zeros((3, height, width), dtype=np.uint8)
        valid = np.zeros((height, width), dtype=bool)
        h = max(0, min(height, self.shape[0] - row0))
        w = max(0, min(width, self.shape[1] - col0))
        image[:, :h, :w] = self.image[:, row0 : row0 + h, col0 : col0 + w]
        if self.valid is None:
            valid[:h, :w] = True
        else:
            valid[:h, :w] = self.valid[row0 : row0 + h, col0 : col0 + w]
        image[:, ~valid] = 0
        return image, valid


def as_source(
    image: Any, georef: Georeference | None, valid: Any
) -> RasterSource | ImageArraySource:
    """The image of :func:`extract_graph` / :func:`segment_image` as a windowed source: a
    RasterSource as is, or a ``(3, H, W)`` uint8 array with its validity and georeference."""
    if isinstance(image, RasterSource | ImageArraySource):
        if valid is not None:
            raise ParameterError("valid= applies to array images; a RasterSource has its own mask")
        if georef is not None and georef != image.georef:
            raise ParameterError("georef= given with a RasterSource that has its own georeference")
        return image
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise ParameterError(
            f"image must be a (3, H, W) uint8 RGB array or a RasterSource, got {arr.dtype} "
            f"{arr.shape}"
        )
    v = None if valid is None else np.asarray(valid, dtype=bool)
    if v is not None and v.shape != arr.shape[1:]:
        raise ParameterError(f"valid must have shape {arr.shape[1:]}, got {v.shape}")
    return ImageArraySource(arr, v, georef)
