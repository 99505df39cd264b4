"""Benchmark dataset layouts: finding each tile's image and ground-truth graph, and its split.

City-scale (Sat2Graph's 20 cities) and Global-scale
    ``ROOT/region_{i}_sat.png`` (2048 x 2048 RGB, 1 m/px) with ``region_{i}_refine_gt_graph.p``
    (the refined graph SAM-Road trains on) and ``region_{i}_graph_gt.pickle`` (the evaluation
    graph). ``graph="train"`` (default) uses the refined graph and falls back to the evaluation
    graph when a tile has none; ``graph="eval"`` uses the evaluation graph. A ``20cities``
    sub-folder of ROOT is looked into when ROOT itself holds no tiles.
SpaceNet (SAM-Road layout)
    ``ROOT/RGB_1.0_meter/{name}__rgb.png`` (400 x 400) with ``{name}__gt_graph.p`` beside it
    (flipped keys, read with format ``"samroad-spacenet"``) and ``ROOT/data_split.json``
    (``{"train": [...], "validation": [...], "test": [...]}`` of names). ROOT may also be the
    ``RGB_1.0_meter`` folder itself (``data_split.json`` is then looked for there and one up).

Splits (``"train"``, ``"valid"``, ``"test"``; ``"all"`` selects every tile)
    City-scale: SAM-Road's ``cityscale_data_partition``: test = ``i % 10 == 9 or
    i % 20 == 8``, valid = ``i % 20 == 18``, train = ``i % 10 < 8``.
    Global-scale (SAM-Road++ release, BYU-FROST-Lab/samroadplus ``dataset.py`` /
    ``benchmark_eval.py``): split folders ``ROOT/{train,val,in-domain-test,out_of_domain}/``
    name the split (``"ood"`` for ``out_of_domain``, whose 130 tiles are numbered from 0 and get
    ids ``ood_region_{i}``). A flat folder is split by index as SAM-Road++ partitions it:
    train ``0..2374``, valid ``2375..2713``, test ``2714..3337``; ``ROOT/data_split.json``
    overrides this when present.
    SpaceNet: ``data_split.json`` (``"validation"`` and ``"val"`` both mean valid); a tile in no
    list has split ``""`` and is selected by ``"all"`` only.

Benchmark graphs are pixel graphs (no georeference), so a tile's grid is the image's size with
``georef=None``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linegraph2road.data_prep.grid import TileGrid
from linegraph2road.data_prep.sources import load_roads
from linegraph2road.errors import FormatError, InputFileError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from linegraph2road.data_prep.tagged import TaggedGraph

__all__ = [
    "DATASET_FORMATS",
    "SPLITS",
    "DatasetTile",
    "cityscale_split",
    "globalscale_split",
    "list_tiles",
    "read_rgb",
]

DATASET_FORMATS = ("cityscale", "globalscale", "spacenet")
SPLITS = ("train", "valid", "test", "ood", "all")
# Global-scale split folders of the SAM-Road++ release -> our split names.
_GLOBALSCALE_FOLDERS = {
    "train": "train",
    "val": "valid",
    "in-domain-test": "test",
    "out_of_domain": "ood",
}
_REGION = re.compile(r"^region_(\d+)_sat\.png$")
_SPACENET = "__rgb.png"
_SPLIT_NAMES = {
    "train": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "test": "test",
}


@dataclass(frozen=True)
class DatasetTile:
    """One benchmark tile.

    Parameters
    ----------
    tile_id : str
        ``"region_9"`` (City-/Global-scale) or the SpaceNet name (``"AOI_2_Vegas_100"``...).
    image, graph : Path
        The RGB image and the ground-truth graph pickle.
    graph_format : str
        ``"cityscale"`` or ``"samroad-spacenet"`` (a :mod:`linegraph2road.io` format).
    split : str
        ``"train"``, ``"valid"``, ``"test"`` or ``""`` (in no split).
    root : Path
        The dataset folder the paths are relative to (recorded relative in outputs).
    """

    tile_id: str
    image: Path
    graph: Path
    graph_format: str
    split: str
    root: Path

    def load_graph(self) -> TaggedGraph:
        """The ground truth as an untagged pixel graph (``(x, y)`` pixels of the image)."""
        return load_roads(self.graph, format=self.graph_format)

    def grid(self) -> TileGrid:
        """The image's pixel grid (no georeference); reads the header only."""
        return TileGrid.from_raster(self.image, require_crs=False)

    def source(self) -> dict[str, Any]:
        """JSON-friendly provenance with paths relative to the dataset root."""
        return {
            "kind": "dataset",
            "tile": self.tile_id,
            "split": self.split,
            "image": self.image.relative_to(self.root).as_posix(),
            "graph": self.graph.relative_to(self.root).as_posix(),
            "graph_format": self.graph_format,
        }


def cityscale_split(index: int) -> str:
    """City-scale split of ``region_{index}`` (SAM-Road / Sat2Graph partition)."""
    if index % 10 == 9 or index % 20 == 8:
        return "test"
    if index % 20 == 18:
        return "valid"
    return "train"


def globalscale_split(index: int) -> str:
    """Global-scale split of in-domain ``region_{index}`` (SAM-Road++ partition by index)."""
    if 2714 <= index <= 3337:
        return "test"
    if 2375 <= index <= 2713:
        return "valid"
    return "train"


def _read_split(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not a readable data_split.json ({exc})") from exc
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected an object of split name -> list of tiles")
    out: dict[str, str] = {}
    for key, names in data.items():
        split = _SPLIT_NAMES.get(str(key).lower())
        if split is None or not isinstance(names, list):
            continue
        for name in names:
            out[str(name)] = split
    return out


def _check_root(root: str | os.PathLike[str]) -> Path:
    p = Path(root)
    if not p.is_dir():
        raise InputFileError(f"{p}: no such dataset folder")
    return p


def _region_tiles(root: Path, fmt: str, graph: str) -> list[DatasetTile]:
    if fmt == "globalscale" and any((root / f).is_dir() for f in _GLOBALSCALE_FOLDERS):
        tiles: list[DatasetTile] = []
        for sub, split in _GLOBALSCALE_FOLDERS.items():
            if (root / sub).is_dir():
                prefix = "ood_" if split == "ood" else ""
                tiles += [
                    DatasetTile(prefix + t.tile_id, t.image, t.graph, t.graph_format, split, root)
                    for t in _region_tiles(root / sub, "cityscale", graph)
                ]
        return tiles
    folder = root
    if not any(_REGION.match(f.name) for f in root.iterdir()) and (root / "20cities").is_dir():
        folder = root / "20cities"
    found = sorted(
        (int(m.group(1)), f) for f in folder.iterdir() if (m := _REGION.match(f.name)) is not None
    )
    split_file = root / "data_split.json"
    named = _read_split(split_file) if fmt == "globalscale" and split_file.is_file() else None
    out = []
    for i, image in found:
        candidates = [f"region_{i}_refine_gt_graph.p", f"region_{i}_graph_gt.pickle"]
        if graph == "eval":
            candidates.reverse()
        gpath = next((folder / c for c in candidates if (folder / c).is_file()), None)
        if gpath is None:
            raise InputFileError(f"{image}: no graph beside it ({' or '.join(candidates)})")
        if fmt == "cityscale":
            split = cityscale_split(i)
        elif named is not None:
            split = named.get(f"region_{i}", named.get(str(i), ""))
        else:
            split = globalscale_split(i)
        out.append(DatasetTile(f"region_{i}", image, gpath, "cityscale", split, root))
    return out


def _spacenet_tiles(root: Path) -> list[DatasetTile]:
    folder = root / "RGB_1.0_meter" if (root / "RGB_1.0_meter").is_dir() else root
    split_file = next(
        (p for p in (root / "data_split.json", folder.parent / "data_split.json") if p.is_file()),
        None,
    )
    named = _read_split(split_file) if split_file is not None else {}
    out = []
    for image in sorted(folder.glob(f"*{_SPACENET}")):
        name = image.name[: -len(_SPACENET)]
        gpath = folder / f"{name}__gt_graph.p"
        if not gpath.is_file():
            raise InputFileError(f"{image}: no graph beside it ({gpath.name})")
        out.append(DatasetTile(name, image, gpath, "samroad-spacenet", named.get(name, ""), root))
    return out


def list_tiles(
    root: str | os.PathLike[str], *, format: str, split: str = "all", graph: str = "train"
) -> list[DatasetTile]:
    """Every tile of a benchmark dataset in ``root`` (see the module docstring for layouts).

    Parameters
    ----------
    root : path
    format : {"cityscale", "globalscale", "spacenet"}, keyword-only
    split : {"train", "valid", "test", "all"}, default "all"
    graph : {"train", "eval"}, default "train"
        City-/Global-scale: refined training graph or evaluation graph.

    Returns
    -------
    list of DatasetTile
        Sorted by region index (City-/Global-scale) or name (SpaceNet).

    Raises
    ------
    InputFileError
        ``root`` is not a folder, or an image has no graph beside it.
    FormatError
        Unknown format/split, no tile found, or an unreadable ``data_split.json``.
    """
    if format not in DATASET_FORMATS:
        raise FormatError(
            f"unknown dataset format {format!r}; expected one of: {', '.join(DATASET_FORMATS)}"
        )
    if split not in SPLITS:
        raise FormatError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if graph not in ("train", "eval"):
        raise FormatError(f"graph must be 'train' or 'eval', got {graph!r}")
    p = _check_root(root)
    tiles = _spacenet_tiles(p) if format == "spacenet" else _region_tiles(p, format, graph)
    if not tiles:
        pattern = "RGB_1.0_meter/{name}__rgb.png" if format == "spacenet" else "region_{i}_sat.png"
        raise FormatError(f"{p}: no {format} tiles found (expected {pattern})")
    return [t for t in tiles if split == "all" or t.split == split]


def read_rgb(path: str | os.PathLike[str], *, window: Any = None) -> NDArray[np.uint8]:
    """An image (or a rasterio ``window`` of it) as ``(H, W, 3)`` uint8 RGB, for previews.

    One band is repeated to grey RGB, a fourth (alpha) band dropped; non-uint8 data is stretched
    per band from its 2nd to 98th percentile.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                bands = [1, 1, 1] if ds.count < 3 else [1, 2, 3]
                data = ds.read(bands, window=window)
    except RasterioIOError as exc:
        raise FormatError(f"{path}: not an image GDAL can read ({exc})") from exc
    if data.dtype != np.uint8:
        out = np.empty(data.shape, dtype=np.uint8)
        for b in range(3):
            band = data[b].astype(np.float64)
            lo, hi = np.percentile(band, [2, 98]) if band.size else (0.0, 1.0)
            out[b] = np.clip((band - lo) / max(hi - lo, 1e-9) * 255.0, 0, 255).astype(np.uint8)
        data = out
    return np.ascontiguousarray(np.moveaxis(data, 0, -1))
