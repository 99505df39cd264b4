"""The project's accepted road mask, kept as fixed-size square chunks of bits.

The accepted area of an annotation project can lie anywhere on a raster of any size, so the
mask is never one array: it is a sparse set of ``CHUNK`` x ``CHUNK`` pixel chunks on the
processed image's grid, chunk ``(cr, cc)`` covering rows ``cr * CHUNK ...`` and columns
``cc * CHUNK ...``. Each chunk holds two bit planes:

* ``road`` -- the accepted road pixels;
* ``covered`` -- the pixels whose label the user has accepted (road or not road); training
  labels are only made where ``covered`` is set.

A chunk is stored as zlib-compressed ``numpy.packbits`` of both planes (a 256 x 256 chunk is
16 KiB unpacked, usually well under 1 KiB stored). This module holds the pure functions: encoding,
the chunks a pixel rectangle touches, and cutting/pasting rectangles; the SQLite store
(:mod:`.store`) keeps the bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from linegraph2road.errors import FormatError, ParameterError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CHUNK",
    "Chunk",
    "Rect",
    "chunk_keys",
    "decode_chunk",
    "encode_chunk",
    "paste_rect",
    "read_rect",
]

#: Side of a mask chunk in pixels.
CHUNK = 256

ChunkKey = tuple[int, int]


@dataclass(frozen=True)
class Rect:
    """A pixel rectangle of the processed image: columns ``col0 .. col0 + width - 1``, rows
    ``row0 .. row0 + height - 1``. Sizes are positive."""

    col0: int
    row0: int
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("col0", "row0", "width", "height"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool):
                raise ParameterError(f"rectangle {name} must be an integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.width <= 0 or self.height <= 0:
            raise ParameterError(f"rectangle size must be positive, got {self.width}x{self.height}")

    @property
    def col1(self) -> int:
        return self.col0 + self.width

    @property
    def row1(self) -> int:
        return self.row0 + self.height

    def clip(self, shape: tuple[int, int]) -> Rect | None:
        """The part inside an ``(H, W)`` image, or None when they do not meet."""
        c0, r0 = max(self.col0, 0), max(self.row0, 0)
        c1, r1 = min(self.col1, int(shape[1])), min(self.row1, int(shape[0]))
        return Rect(c0, r0, c1 - c0, r1 - r0) if c1 > c0 and r1 > r0 else None

    def as_list(self) -> list[int]:
        """``[col0, row0, width, height]`` (JSON)."""
        return [self.col0, self.row0, self.width, self.height]

    @classmethod
    def from_list(cls, values: object) -> Rect:
        """From ``[col0, row0, width, height]``; ParameterError for anything else."""
        if not isinstance(values, list | tuple) or len(values) != 4:
            raise ParameterError(f"a rectangle is [col0, row0, width, height], got {values!r:.80}")
        return cls(*values)


@dataclass(frozen=True, eq=False)
class Chunk:
    """One chunk's planes: ``road`` and ``covered``, each ``(CHUNK, CHUNK)`` bool."""

    road: NDArray[np.bool_]
    covered: NDArray[np.bool_]

    @classmethod
    def empty(cls) -> Chunk:
        z = np.zeros((CHUNK, CHUNK), dtype=bool)
        return cls(z, z.copy())

    def is_empty(self) -> bool:
        return not (self.road.any() or self.covered.any())


def encode_chunk(chunk: Chunk) -> bytes:
    """Both planes as zlib-compressed packed bits (road first)."""
    planes = np.stack([chunk.road, chunk.covered]).astype(bool)
    if planes.shape != (2, CHUNK, CHUNK):
        raise ParameterError(f"a chunk is two ({CHUNK}, {CHUNK}) planes, got {planes.shape}")
    return zlib.compress(np.packbits(planes).tobytes(), 1)


def decode_chunk(blob: bytes) -> Chunk:
    """Inverse of :func:`encode_chunk`; FormatError for bytes that are not a chunk."""
    try:
        raw = zlib.decompress(blob)
    except zlib.error as exc:
        raise FormatError(f"corrupt mask chunk in the project store ({exc})") from exc
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if bits.size != 2 * CHUNK * CHUNK:
        raise FormatError(f"corrupt mask chunk in the project store ({bits.size} bits)")
    planes = bits.reshape(2, CHUNK, CHUNK).astype(bool)
    return Chunk(planes[0], planes[1])


def chunk_keys(rect: Rect) -> Iterator[ChunkKey]:
    """The ``(chunk_row, chunk_col)`` of every chunk that ``rect`` touches, row-major."""
    for cr in range(rect.row0 // CHUNK, (rect.row1 - 1) // CHUNK + 1):
        for cc in range(rect.col0 // CHUNK, (rect.col1 - 1) // CHUNK + 1):
            yield (cr, cc)


def _overlap(rect: Rect, key: ChunkKey) -> tuple[slice, slice, slice, slice]:
    """Slices ``(rows, cols)`` into the rectangle's array and into the chunk where they meet."""
    cr, cc = key
    r0, c0 = max(rect.row0, cr * CHUNK), max(rect.col0, cc * CHUNK)
    r1, c1 = min(rect.row1, (cr + 1) * CHUNK), min(rect.col1, (cc + 1) * CHUNK)
    return (
        slice(r0 - rect.row0, r1 - rect.row0),
        slice(c0 - rect.col0, c1 - rect.col0),
        slice(r0 - cr * CHUNK, r1 - cr * CHUNK),
        slice(c0 - cc * CHUNK, c1 - cc * CHUNK),
    )


def read_rect(
    rect: Rect, get: Callable[[ChunkKey], Chunk | None]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """``(road, covered)``, each ``(height, width)`` bool, of ``rect`` from the chunks ``get``
    returns (None: an empty chunk)."""
    road = np.zeros((rect.height, rect.width), dtype=bool)
    covered = np.zeros_like(road)
    for key in chunk_keys(rect):
        chunk = get(key)
        if chunk is None:
            continue
        ar, ac, kr, kc = _overlap(rect, key)
        road[ar, ac] = chunk.road[kr, kc]
        covered[ar, ac] = chunk.covered[kr, kc]
    return road, covered


def paste_rect(
    rect: Rect,
    get: Callable[[ChunkKey], Chunk | None],
    *,
    road: NDArray[np.bool_],
    covered: NDArray[np.bool_],
    where: NDArray[np.bool_] | None = None,
) -> dict[ChunkKey, Chunk]:
    """New chunks after writing ``road``/``covered`` (``(height, width)`` bool) into ``rect``.

    Only pixels where ``where`` is True are written (None: all). The chunks ``get`` returns are
    not modified; the result maps every touched key to its new chunk (possibly unchanged).
    """
    shape = (rect.height, rect.width)
    for name, a in (("road", road), ("covered", covered)):
        if a.shape != shape:
            raise ParameterError(f"{name} must have the rectangle's shape {shape}, got {a.shape}")
    sel = np.ones(shape, dtype=bool) if where is None else where
    out: dict[ChunkKey, Chunk] = {}
    for key in chunk_keys(rect):
        old = get(key) or Chunk.empty()
        new_road, new_cov = old.road.copy(), old.covered.copy()
        ar, ac, kr, kc = _overlap(rect, key)
        m = sel[ar, ac]
        new_road[kr, kc] = np.where(m, road[ar, ac], new_road[kr, kc])
        new_cov[kr, kc] = np.where(m, covered[ar, ac], new_cov[kr, kc])
        out[key] = Chunk(new_road, new_cov)
    return out
