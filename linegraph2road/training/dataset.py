"""Training samples from ``l2r prep`` output: random square crops with their candidate graphs.

``l2r prep`` writes, per tile id, ``{id}_keypoint.png``, ``{id}_road.png``, ``{id}_overpass.png``
(uint8 0/255), ``{id}_labels.npz`` (``vertices (M, 2)`` float64 ``(x, y)`` pixels,
``candidate_edges (C, 2)`` int64, ``candidate_labels (C,)`` uint8, ...) and ``{id}_labels.json``,
which says where the tile's image is:

* ``image``: a file beside the labels (``l2r prep osm --raster`` writes ``{id}_image.tif``, the
  raster resampled to the labels' GSD);
* else ``source["image"]`` (``l2r prep dataset``: a path relative to the dataset root, which
  ``manifest.json`` records as ``root``) or ``source["raster"]`` (older ``l2r prep osm`` output:
  the raster's file name, the tile at ``source["col_off"]``, ``source["row_off"]`` in it).

:func:`find_tiles` resolves the latter against an ``images`` folder (default: the manifest's
``root``, else the labels folder). ``gsd`` (metres per pixel) is recorded per tile; training
stores it in the checkpoint (:func:`tiles_gsd`).

Augmentation (paper section 4.3)
--------------------------------
* a random ``crop`` x ``crop`` window of the tile (the whole tile when the tile is the crop size,
  as SpaceNet's 400 px tiles; a tile smaller than the crop is zero-padded at the bottom/right);
  vertices inside the window are kept (``0 <= x - x0 < crop`` and the same for ``y``),
  candidate edges with both ends kept, coordinates shifted by the window's corner;
* a random number ``k`` of quarter turns, applied to the image, the masks and the vertices
  together: :func:`rot90_points` with the pixel-centre convention (a point ``(x, y)`` of an
  ``S``-wide square goes to ``(y, S - x)`` per turn), matching ``torch.rot90(a, k, dims=(-2,
  -1))`` on ``(..., H, W)`` arrays, so the pixel under a vertex stays under it.

The randomness of sample ``i`` in epoch ``e`` comes from ``numpy.random.default_rng((seed, e,
i))`` only: samples do not depend on DataLoader workers, process ranks or what ran before, which
makes ``--resume`` exact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from linegraph2road.errors import FormatError, InputFileError, ParameterError

__all__ = [
    "Sample",
    "TileData",
    "TileDataset",
    "TileRecord",
    "collate_samples",
    "crop_sample",
    "find_tiles",
    "load_tile",
    "positive_graph",
    "rot90_points",
    "tiles_gsd",
]

MASK_NAMES = ("keypoint", "road", "overpass")


@dataclass(frozen=True)
class TileRecord:
    """Where one prepared tile's files are.

    Attributes
    ----------
    tile_id : str
    labels_dir : Path
        The ``l2r prep`` output folder holding ``{tile_id}_*``.
    image : Path
        The tile's image (or the raster the tile was cut from).
    window : (col_off, row_off, width, height) or None
        The tile inside ``image``; None when the image is the tile.
    shape : (H, W)
        Tile size in pixels (of the masks).
    split : str
        The split ``l2r prep`` recorded (``""`` when none).
    gsd : float or None
        Ground sampling distance of the labels, m/px (None: not recorded, older labels).
    """

    tile_id: str
    labels_dir: Path
    image: Path
    window: tuple[int, int, int, int] | None
    shape: tuple[int, int]
    split: str = ""
    gsd: float | None = None


class TileData(NamedTuple):
    """One whole tile in memory.

    ``image (3, H, W)`` uint8 RGB; ``masks (3, H, W)`` uint8 0/1 (keypoint, road, overpass);
    ``vertices (M, 2)`` float64 ``(x, y)`` pixels; ``edges (C, 2)`` int64; ``labels (C,)`` uint8.
    """

    image: np.ndarray
    masks: np.ndarray
    vertices: np.ndarray
    edges: np.ndarray
    labels: np.ndarray


class Sample(NamedTuple):
    """One training window (torch tensors, CPU).

    ``image (3, S, S)`` uint8; ``masks (3, S, S)`` float32 0/1; ``vertices (M, 2)`` float32 ``(x,
    y)`` window pixels; ``edges (C, 2)`` int64 into ``vertices``; ``labels (C,)`` float32 0/1.
    """

    image: torch.Tensor
    masks: torch.Tensor
    vertices: torch.Tensor
    edges: torch.Tensor
    labels: torch.Tensor


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not a readable l2r prep file ({exc})") from exc
    if not isinstance(doc, dict):
        raise FormatError(f"{path}: expected a JSON object")
    return doc


def find_tiles(
    labels_dir: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    split: str | None = None,
) -> list[TileRecord]:
    """Every tile of an ``l2r prep`` output folder, with its image located.

    Parameters
    ----------
    labels_dir : path
        Folder written by ``l2r prep`` (``manifest.json`` lists the tiles; without one, every
        ``*_labels.json`` counts).
    images : path, optional
        Folder the recorded source image paths are relative to (``l2r prep dataset``: the
        dataset root). Default: the ``root`` that ``manifest.json`` records, else
        ``labels_dir``. Images written beside the labels (``image`` in ``{id}_labels.json``)
        are always read from ``labels_dir``.
    split : str, optional
        Keep only tiles of this split (``"train"``, ``"valid"``...); None keeps all.

    Returns
    -------
    list of TileRecord
        In manifest (or file name) order.

    Raises
    ------
    InputFileError
        ``labels_dir`` or ``images`` is not a folder, or a tile's image is missing.
    FormatError
        No tiles, unreadable JSON, a tile without an image reference, or a manifest of an
        interrupted ``l2r prep`` run (``"complete": false``).
    """
    root = Path(labels_dir)
    if not root.is_dir():
        raise InputFileError(f"training data folder not found: {root} (run `l2r prep` first)")
    manifest = root / "manifest.json"
    splits: dict[str, str] = {}
    recorded_root: str | None = None
    if manifest.is_file():
        doc = _read_json(manifest)
        entries = doc.get("tiles", [])
        if not all(isinstance(t, dict) and "tile_id" in t for t in entries):
            raise FormatError(f"{manifest}: every tile entry needs a tile_id")
        if doc.get("complete") is False:
            raise FormatError(
                f"{root}: the l2r prep run that wrote it did not finish ({len(entries)} tiles "
                "done); re-run the same l2r prep command to finish it"
            )
        splits = {str(t["tile_id"]): str(t.get("split") or "") for t in entries}
        ids = list(splits)
        recorded_root = doc.get("root")
    else:
        ids = sorted(p.name[: -len("_labels.json")] for p in root.glob("*_labels.json"))
    if images is not None:
        img_root = Path(images)
    elif recorded_root and Path(recorded_root).is_dir():
        img_root = Path(recorded_root)
    else:
        img_root = root
    if not img_root.is_dir():
        raise InputFileError(f"image folder not found: {img_root}")
    out = []
    for tid in ids:
        doc = _read_json(root / f"{tid}_labels.json")
        src = doc.get("source") or {}
        window = None
        try:
            h, w = (int(v) for v in doc["shape"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{root / tid}_labels.json: no valid shape [H, W]") from exc
        if doc.get("image"):
            image = root / str(doc["image"])
        else:
            rel = src.get("image") or src.get("raster")
            if not rel:
                raise FormatError(f"{root / tid}_labels.json: source names no image or raster")
            image = img_root / str(rel)
            if "col_off" in src and "row_off" in src:
                window = (int(src["col_off"]), int(src["row_off"]), w, h)
        if not image.is_file():
            raise InputFileError(
                f"image of tile {tid} not found: {image} (set the data source's `images` folder)"
            )
        gsd = doc.get("gsd")
        tile_split = splits.get(tid) or str(src.get("split") or "")
        if split is None or tile_split == split:
            tile_gsd = None if gsd is None else float(gsd)
            out.append(TileRecord(tid, root, image, window, (h, w), tile_split, tile_gsd))
    if not out:
        what = f" of split {split!r}" if split is not None else ""
        raise FormatError(f"{root}: no prepared tiles{what} found (expected l2r prep output)")
    return out


#: Relative difference below which two ground sampling distances count as the same.
GSD_TOLERANCE = 0.01


def tiles_gsd(tiles: list[TileRecord], configured: float | None = None) -> float | None:
    """The one ground sampling distance of training tiles, m/px, to record in the checkpoint.

    Parameters
    ----------
    tiles : list of TileRecord
    configured : float or None
        ``data.gsd`` of the config: the GSD of tiles that record none (older labels); must
        agree with the tiles that do.

    Returns
    -------
    float or None
        None when neither the tiles nor the config say.

    Raises
    ------
    ParameterError
        Tiles at different GSDs (labels at another scale than the model's), or a configured
        GSD that contradicts the labels.
    """
    found = sorted({t.gsd for t in tiles if t.gsd is not None})
    if configured is not None:
        found = sorted({*found, float(configured)})
    if not found:
        return None
    if found[-1] > found[0] * (1.0 + GSD_TOLERANCE):
        where = {f"{t.gsd:g}": t.tile_id for t in tiles if t.gsd is not None}
        shown = ", ".join(f"{g} m/px ({tid})" for g, tid in sorted(where.items()))
        extra = f"; data.gsd = {configured:g}" if configured is not None else ""
        raise ParameterError(
            f"training tiles have different ground sampling distances: {shown}{extra}; make "
            "every label folder with the same `l2r prep --gsd`"
        )
    return found[0]


def load_tile(record: TileRecord) -> TileData:
    """Read one tile's image, masks and candidate graph (see :class:`TileData`)."""
    from rasterio.windows import Window

    from linegraph2road.data_prep.datasets import read_rgb
    from linegraph2road.io.raster import read_mask

    win = None if record.window is None else Window(*record.window)
    image = np.ascontiguousarray(np.moveaxis(read_rgb(record.image, window=win), -1, 0))
    base = record.labels_dir / record.tile_id
    masks = np.stack([read_mask(Path(f"{base}_{n}.png"))[0] > 0 for n in MASK_NAMES])
    if image.shape[1:] != masks.shape[1:] or masks.shape[1:] != record.shape:
        raise FormatError(
            f"tile {record.tile_id}: image {image.shape[1:]} and masks {masks.shape[1:]} differ "
            f"from the labels' shape {record.shape}"
        )
    try:
        with np.load(f"{base}_labels.npz", allow_pickle=False) as z:
            vertices = np.asarray(z["vertices"], dtype=np.float64).reshape(-1, 2)
            edges = np.asarray(z["candidate_edges"], dtype=np.int64).reshape(-1, 2)
            labels = np.asarray(z["candidate_labels"], dtype=np.uint8).reshape(-1)
    except (OSError, KeyError, ValueError) as exc:
        raise FormatError(f"{base}_labels.npz: unreadable candidate graph ({exc})") from exc
    return TileData(image, masks.astype(np.uint8), vertices, edges, labels)


def rot90_points(points: np.ndarray, size: float, k: int) -> np.ndarray:
    """Rotate ``(x, y)`` points of a ``size``-wide square by ``k`` quarter turns.

    One turn maps ``(x, y) -> (y, size - x)`` (continuous pixel coordinates, pixel centres at
    ``+0.5``): the same turn as ``np.rot90(a, k)`` / ``torch.rot90(a, k, dims=(-2, -1))`` on an
    ``(..., size, size)`` array, which moves pixel ``(row r, col c)`` to ``(size - 1 - c, r)``.

    Parameters
    ----------
    points : (N, 2) array
        ``(x, y)`` pixels; not modified.
    size : float
        Side of the square in pixels.
    k : int
        Quarter turns (any integer; taken modulo 4).

    Returns
    -------
    (N, 2) array of the same dtype.
    """
    p = np.array(points, copy=True)
    for _ in range(int(k) % 4):
        p = np.column_stack([p[:, 1], size - p[:, 0]]).astype(p.dtype, copy=False)
    return p


def positive_graph(vertices: np.ndarray, edges: np.ndarray, labels: np.ndarray) -> Any:
    """The ground truth as a :class:`~linegraph2road.graph.RoadGraph`: the positive candidates.

    The labelled candidate graph's positive edges join consecutive vertices along ground-truth
    paths (Algorithm 4 spacing), so they trace the ground truth in the tile's pixel frame; this
    is the graph validation scores against.
    """
    from linegraph2road.graph import RoadGraph

    pos = np.asarray(edges, dtype=np.int64)[np.asarray(labels) > 0]
    pos = np.sort(pos, axis=1) if len(pos) else pos.reshape(0, 2)
    pos = np.unique(pos, axis=0) if len(pos) else pos
    return RoadGraph(np.asarray(vertices, dtype=np.float64), pos).drop_isolated_nodes()


def crop_sample(tile: TileData, *, x0: int, y0: int, size: int, k: int = 0) -> Sample:
    """Cut the window ``[x0, x0 + size) x [y0, y0 + size)`` and turn it ``k`` quarter turns.

    Parameters
    ----------
    tile : TileData
        Not modified.
    x0, y0 : int
        Window corner in tile pixels (``>= 0``); the part outside the tile is zero-padded.
    size : int
        Window side in pixels.
    k : int, default 0
        Quarter turns (see :func:`rot90_points`).

    Returns
    -------
    Sample
        Vertices with ``0 <= x - x0 < size`` and ``0 <= y - y0 < size``, renumbered in their
        original order; candidate edges with both ends kept, with their labels.
    """
    if size <= 0 or x0 < 0 or y0 < 0:
        raise ParameterError(f"bad crop window x0={x0} y0={y0} size={size}")
    _, h, w = tile.image.shape
    image = np.zeros((3, size, size), dtype=np.uint8)
    masks = np.zeros((3, size, size), dtype=np.uint8)
    ch, cw = max(0, min(size, h - y0)), max(0, min(size, w - x0))
    image[:, :ch, :cw] = tile.image[:, y0 : y0 + ch, x0 : x0 + cw]
    masks[:, :ch, :cw] = tile.masks[:, y0 : y0 + ch, x0 : x0 + cw]
    local = tile.vertices - np.array([x0, y0], dtype=np.float64)
    keep = np.all((local >= 0) & (local < size), axis=1)
    new_index = np.full(len(local), -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    e = new_index[tile.edges] if len(tile.edges) else tile.edges.reshape(0, 2)
    ok = np.all(e >= 0, axis=1)
    verts = rot90_points(local[keep], size, k)
    return Sample(
        image=torch.rot90(torch.from_numpy(image), k, dims=(-2, -1)).contiguous(),
        masks=torch.rot90(torch.from_numpy(masks), k, dims=(-2, -1)).float().contiguous(),
        vertices=torch.from_numpy(verts.astype(np.float32)),
        edges=torch.from_numpy(np.ascontiguousarray(e[ok])),
        labels=torch.from_numpy(tile.labels[ok].astype(np.float32)),
    )


class TileDataset(Dataset[Sample]):
    """Random crops (+ quarter turns) of prepared tiles, ``samples_per_tile`` per tile per epoch.

    Parameters
    ----------
    tiles : list of TileRecord
        From :func:`find_tiles`.
    crop : int
        Window side in pixels (the model's ``window_size``; paper: 512, SpaceNet 400).
    rotate : bool, default True
        Random quarter turns (paper).
    samples_per_tile : int, default 1
        Random windows drawn from each tile per epoch (sample ``i`` is tile
        ``i // samples_per_tile``).
    seed : int, default 0
        Base of the per-sample generators (see the module docstring).
    cache : bool, default False
        Keep decoded tiles in memory (per DataLoader worker); for small datasets.
    """

    def __init__(
        self,
        tiles: list[TileRecord],
        *,
        crop: int,
        rotate: bool = True,
        samples_per_tile: int = 1,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        if not tiles:
            raise ParameterError("a training dataset needs at least one tile")
        if int(crop) <= 0:
            raise ParameterError(f"crop must be a positive number of pixels, got {crop}")
        if int(samples_per_tile) < 1:
            raise ParameterError(f"samples_per_tile must be >= 1, got {samples_per_tile}")
        self.samples_per_tile = int(samples_per_tile)
        self.tiles = list(tiles)
        self.crop = int(crop)
        self.rotate = bool(rotate)
        self.seed = int(seed)
        self.cache = bool(cache)
        self.epoch = 0
        self._cache: dict[int, TileData] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random windows :meth:`__getitem__` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.tiles) * self.samples_per_tile

    def tile(self, index: int) -> TileData:
        """Tile ``index`` (of :attr:`tiles`) in memory (cached when ``cache``)."""
        if index in self._cache:
            return self._cache[index]
        data = load_tile(self.tiles[index])
        if self.cache:
            self._cache[index] = data
        return data

    def window(self, index: int, epoch: int | None = None) -> tuple[int, int, int]:
        """``(x0, y0, k)`` of sample ``index`` in ``epoch`` (default: the current epoch)."""
        e = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng((self.seed, e, int(index)))
        h, w = self.tiles[int(index) // self.samples_per_tile].shape
        x0 = int(rng.integers(0, max(w - self.crop, 0) + 1))
        y0 = int(rng.integers(0, max(h - self.crop, 0) + 1))
        k = int(rng.integers(0, 4)) if self.rotate else 0
        return x0, y0, k

    def __getitem__(self, index: int) -> Sample:
        x0, y0, k = self.window(index)
        tile = self.tile(int(index) // self.samples_per_tile)
        return crop_sample(tile, x0=x0, y0=y0, size=self.crop, k=k)


def collate_samples(samples: list[Sample]) -> dict[str, Any]:
    """Batch samples: ``images (B, 3, S, S)`` uint8, ``masks (B, 3, S, S)`` float32 and lists of
    ``vertices``, ``edges``, ``labels`` (ragged, one tensor per sample)."""
    return {
        "images": torch.stack([s.image for s in samples]),
        "masks": torch.stack([s.masks for s in samples]),
        "vertices": [s.vertices for s in samples],
        "edges": [s.edges for s in samples],
        "labels": [s.labels for s in samples],
    }
