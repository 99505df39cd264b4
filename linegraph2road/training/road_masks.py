"""Road-mask training data for RoadGIE: ``l2r prep`` output and DeepGlobe-layout folders.

A data source (:class:`~linegraph2road.training.config.DataSource`) is read as

* **``l2r prep`` output** when the folder holds ``manifest.json`` or ``*_labels.json``: the tiles
  come from :func:`~linegraph2road.training.dataset.find_tiles` and
  :func:`~linegraph2road.training.dataset.load_tile` (so whatever image ``l2r prep`` recorded,
  e.g. ``source.image`` of a resampled ``{id}_image.tif``, is used); the road mask is the
  ``road`` label;
* a **DeepGlobe-layout folder** otherwise, when it holds ``{id}_sat.jpg`` images (any case of
  ``.jpg``/``.jpeg``/``.png``/``.tif``) with ``{id}_mask.png`` road masks beside them (white =
  road; DeepGlobe's masks are RGB, the first band > 127 counts), the layout most road-segmentation
  data ships in. Images are used at their own resolution (DeepGlobe: 0.5 m/px); resample the
  folder first to train at another ground sampling distance.

Expert uncertainty (RoadGIE eq. 4) is cached beside the labels as ``{id}_uncertainty.png``
(uint8, ``round(255 U)``; ``l2r prep uncertainty``); :func:`load_road_tile` reads it when present.

:class:`RoadCropDataset` draws random ``crop`` windows with RoadGIE's augmentation (paper 5.1:
rotation, flipping, contrast/brightness, Gaussian blur): one of the 8 dihedral transforms
(quarter turns and a flip: exact, no interpolation), brightness ``+U(-0.2, 0.2) * 255``, contrast
``x U(0.8, 1.2)`` about the mean, and with probability 0.3 a Gaussian blur of
``sigma ~ U(0.3, 1.5)`` px; image only for the colour changes. Sample ``i`` of epoch ``e`` uses
``numpy.random.default_rng((seed, e, i))`` only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.training.dataset import TileRecord, find_tiles, load_tile

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "UNCERTAINTY_SUFFIX",
    "RoadCropDataset",
    "RoadTile",
    "RoadTileRecord",
    "find_road_tiles",
    "load_road_tile",
    "uncertainty_path",
]

UNCERTAINTY_SUFFIX = "_uncertainty.png"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class RoadTileRecord:
    """Where one training tile's image and road mask are.

    Attributes
    ----------
    tile_id : str
    folder : Path
        Where ``{tile_id}_uncertainty.png`` lives (the labels folder).
    image : Path
        The image (l2r tiles: the image or raster the tile is cut from).
    mask : Path or None
        DeepGlobe road mask; None for ``l2r prep`` tiles (their ``road`` label is read).
    tile : TileRecord or None
        The ``l2r prep`` tile record; None for DeepGlobe tiles.
    """

    tile_id: str
    folder: Path
    image: Path
    mask: Path | None = None
    tile: TileRecord | None = None


class RoadTile(NamedTuple):
    """``image (3, H, W)`` uint8, ``road (H, W)`` bool, ``uncertainty (H, W)`` float32 in
    [0, 1] or None."""

    image: NDArray[np.uint8]
    road: NDArray[np.bool_]
    uncertainty: NDArray[np.float32] | None


def uncertainty_path(record: RoadTileRecord) -> Path:
    """``folder / {tile_id}_uncertainty.png``: the tile's expert uncertainty cache."""
    return record.folder / f"{record.tile_id}{UNCERTAINTY_SUFFIX}"


def _is_prep_output(folder: Path) -> bool:
    return (folder / "manifest.json").is_file() or any(folder.glob("*_labels.json"))


def find_road_tiles(
    folder: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    split: str | None = None,
) -> list[RoadTileRecord]:
    """The tiles of an ``l2r prep`` output folder or of a DeepGlobe-layout folder.

    Parameters
    ----------
    folder : path
        ``l2r prep`` output, or a folder of ``*_sat.jpg`` + ``*_mask.png``.
    images, split
        As :func:`~linegraph2road.training.dataset.find_tiles` (``l2r prep`` output only).

    Raises
    ------
    InputFileError
        Not a folder.
    FormatError
        Neither layout; a DeepGlobe image without its mask.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputFileError(f"training data folder not found: {root}")
    if _is_prep_output(root):
        return [
            RoadTileRecord(t.tile_id, t.labels_dir, t.image, None, t)
            for t in find_tiles(root, images=images, split=split)
        ]
    if images is not None or split is not None:
        raise ParameterError(
            f"{root}: images/split apply to l2r prep output, not DeepGlobe folders"
        )
    out = []
    for img in sorted(root.iterdir()):
        name = img.name
        stem, suffix = os.path.splitext(name)
        if not stem.endswith("_sat") or suffix.lower() not in _IMAGE_SUFFIXES:
            continue
        tid = stem[: -len("_sat")]
        mask = root / f"{tid}_mask.png"
        if not mask.is_file():
            raise FormatError(
                f"{root}: image {name} has no road mask {mask.name} (DeepGlobe layout: "
                "{id}_sat.jpg + {id}_mask.png)"
            )
        out.append(RoadTileRecord(tid, root, img, mask, None))
    if not out:
        raise FormatError(
            f"{root}: no training tiles (expected l2r prep output, or {{id}}_sat.jpg + "
            "{id}_mask.png images and road masks)"
        )
    return out


def _read_band(path: Path) -> NDArray[np.uint8]:
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                return np.asarray(ds.read(1))
    except RasterioIOError as exc:
        raise FormatError(f"{path}: not an image GDAL can read ({exc})") from exc


def load_road_tile(record: RoadTileRecord) -> RoadTile:
    """Read a tile's image, road mask and (when cached) expert uncertainty.

    Raises
    ------
    FormatError
        Unreadable files; image, mask and uncertainty of different sizes.
    """
    if record.tile is not None:
        data = load_tile(record.tile)
        image, road = data.image, data.masks[1].astype(bool)
    else:
        from linegraph2road.data_prep.datasets import read_rgb

        image = np.ascontiguousarray(np.moveaxis(read_rgb(record.image), -1, 0))
        if record.mask is None:
            raise FormatError(f"tile {record.tile_id} has no road mask")
        road = _read_band(record.mask) > 127
        if road.shape != image.shape[1:]:
            raise FormatError(
                f"{record.mask}: mask {road.shape} and image {image.shape[1:]} differ in size"
            )
    unc = None
    upath = uncertainty_path(record)
    if upath.is_file():
        unc = _read_band(upath).astype(np.float32) / 255.0
        if unc.shape != road.shape:
            raise FormatError(
                f"{upath}: uncertainty {unc.shape} does not match the tile {road.shape}; run "
                "`l2r prep uncertainty` again"
            )
    return RoadTile(image, road, unc)


class RoadCropDataset(Dataset[dict[str, torch.Tensor]]):
    """Random augmented ``crop`` windows of road tiles (module docstring).

    Parameters
    ----------
    records : list of RoadTileRecord
    crop : int
        Window side in pixels (smaller tiles are zero-padded at the bottom/right).
    samples_per_tile : int
        Windows per tile per epoch.
    seed : int
    cache : bool
        Keep decoded tiles in memory.
    augment : bool
        RoadGIE's augmentation (default True); False: crops only.

    Items are dicts of ``image (3, S, S)`` uint8, ``road (S, S)`` float32 0/1,
    ``uncertainty (S, S)`` float32 (0 where none) and ``has_uncertainty`` (bool scalar).
    """

    def __init__(
        self,
        records: list[RoadTileRecord],
        *,
        crop: int,
        samples_per_tile: int = 1,
        seed: int = 0,
        cache: bool = False,
        augment: bool = True,
    ) -> None:
        if not records:
            raise ParameterError("a training dataset needs at least one tile")
        if int(crop) <= 0 or int(samples_per_tile) < 1:
            raise ParameterError(
                f"crop and samples_per_tile must be positive: {crop}, {samples_per_tile}"
            )
        self.records, self.crop = list(records), int(crop)
        self.samples_per_tile, self.seed = int(samples_per_tile), int(seed)
        self.cache, self.augment, self.epoch = bool(cache), bool(augment), 0
        self._cache: dict[int, RoadTile] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random windows :meth:`__getitem__` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records) * self.samples_per_tile

    def tile(self, index: int) -> RoadTile:
        """Tile ``index`` in memory (cached when ``cache``)."""
        if index in self._cache:
            return self._cache[index]
        data = load_road_tile(self.records[index])
        if self.cache:
            self._cache[index] = data
        return data

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        tile = self.tile(int(index) // self.samples_per_tile)
        s = self.crop
        h, w = tile.road.shape
        y0 = int(rng.integers(0, max(h - s, 0) + 1))
        x0 = int(rng.integers(0, max(w - s, 0) + 1))
        ch, cw = min(s, h - y0), min(s, w - x0)
        image = np.zeros((3, s, s), np.uint8)
        road = np.zeros((s, s), np.float32)
        unc = np.zeros((s, s), np.float32)
        image[:, :ch, :cw] = tile.image[:, y0 : y0 + ch, x0 : x0 + cw]
        road[:ch, :cw] = tile.road[y0 : y0 + ch, x0 : x0 + cw]
        if tile.uncertainty is not None:
            unc[:ch, :cw] = tile.uncertainty[y0 : y0 + ch, x0 : x0 + cw]
        if self.augment:
            image, road, unc = _augment(image, road, unc, rng)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "road": torch.from_numpy(np.ascontiguousarray(road)),
            "uncertainty": torch.from_numpy(np.ascontiguousarray(unc)),
            "has_uncertainty": torch.tensor(tile.uncertainty is not None),
        }


def _augment(
    image: NDArray[np.uint8],
    road: NDArray[np.float32],
    unc: NDArray[np.float32],
    rng: np.random.Generator,
) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.float32]]:
    k, flip = int(rng.integers(4)), bool(rng.integers(2))

    def geo(a: NDArray[np.generic]) -> NDArray[np.generic]:
        a = np.rot90(a, k, axes=(-2, -1))
        return a[..., ::-1] if flip else a

    img = geo(image).astype(np.float32)
    brightness, contrast = rng.uniform(-0.2, 0.2) * 255.0, rng.uniform(0.8, 1.2)
    mean = img.mean(axis=(1, 2), keepdims=True)
    img = (img - mean) * contrast + mean + brightness
    if rng.random() < 0.3:
        img = ndimage.gaussian_filter(img, sigma=(0, rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.5)))
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out, np.asarray(geo(road), np.float32), np.asarray(geo(unc), np.float32)
