"""Road-mask tiles for RoadGIE: l2r prep output through find_tiles/load_tile, DeepGlobe-layout
folders ({id}_sat.jpg + {id}_mask.png, written here), the uncertainty cache, augmented crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.io.raster import write_raster
from linegraph2road.training.road_masks import (
    RoadCropDataset,
    find_road_tiles,
    load_road_tile,
    uncertainty_path,
)
from tests.training import make_synthetic_labels


def _deepglobe(folder: Path, n: int = 2, size: int = 48) -> Path:
    """DeepGlobe's layout: RGB JPEG images and RGB PNG masks (white roads)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(0, 256, (3, size, size), dtype=np.uint8)
        Image.fromarray(np.moveaxis(image, 0, -1)).save(folder / f"{100 + i}_sat.jpg", quality=95)
        mask = np.zeros((3, size, size), np.uint8)
        mask[:, 10 + i : 16 + i, :] = 255
        write_raster(folder / f"{100 + i}_mask.png", mask)
    return folder


def test_deepglobe_folder(tmp_path: Path) -> None:
    folder = _deepglobe(tmp_path / "dg")
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    records = find_road_tiles(folder)
    assert [r.tile_id for r in records] == ["100", "101"]
    assert records[0].tile is None and records[0].mask == folder / "100_mask.png"
    tile = load_road_tile(records[1])
    assert tile.image.shape == (3, 48, 48) and tile.image.dtype == np.uint8
    assert tile.road.dtype == bool and tile.road[11:17].all() and not tile.road[:11].any()
    assert tile.uncertainty is None
    unc = np.zeros((48, 48), np.uint8)
    unc[:, :24] = 255
    write_raster(uncertainty_path(records[1]), unc)
    again = load_road_tile(records[1])
    assert again.uncertainty is not None and again.uncertainty[0, 0] == 1.0
    assert again.uncertainty[0, 30] == 0.0


def test_deepglobe_errors(tmp_path: Path) -> None:
    folder = _deepglobe(tmp_path / "dg", n=1)
    (folder / "100_mask.png").unlink()
    with pytest.raises(FormatError, match="no road mask"):
        find_road_tiles(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="no training tiles"):
        find_road_tiles(empty)
    with pytest.raises(InputFileError):
        find_road_tiles(tmp_path / "missing")
    with pytest.raises(ParameterError):
        find_road_tiles(_deepglobe(tmp_path / "dg2"), split="train")
    folder = _deepglobe(tmp_path / "dg3", n=1)
    write_raster(folder / "100_uncertainty.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(FormatError, match="uncertainty"):
        load_road_tile(find_road_tiles(folder)[0])


def test_l2r_prep_output_goes_through_find_tiles(tmp_path: Path) -> None:
    labels = make_synthetic_labels(tmp_path / "labels", size=64)
    (record,) = find_road_tiles(labels)
    assert record.tile is not None and record.tile.tile_id == "plus"
    tile = load_road_tile(record)
    assert tile.image.shape == (3, 64, 64) and tile.road.any()
    assert tile.road[32, 32]  # the crossing


def test_crops_are_deterministic_and_augmented(tmp_path: Path) -> None:
    records = find_road_tiles(_deepglobe(tmp_path / "dg"))
    write_raster(uncertainty_path(records[0]), np.full((48, 48), 128, np.uint8))
    data = RoadCropDataset(records, crop=32, samples_per_tile=3, seed=1, cache=True)
    assert len(data) == 6
    a, b = data[0], data[0]
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert a["image"].shape == (3, 32, 32) and a["road"].shape == (32, 32)
    assert bool(a["has_uncertainty"]) and a["uncertainty"].max() == pytest.approx(128 / 255)
    assert not bool(data[3]["has_uncertainty"])
    data.set_epoch(1)
    assert not np.array_equal(data[0]["image"].numpy(), a["image"].numpy())
    plain = RoadCropDataset(records, crop=64, augment=False)
    s = plain[0]
    assert s["image"].shape == (3, 64, 64) and not s["image"][:, 48:].any()  # padded
    tile = load_road_tile(records[0])
    np.testing.assert_array_equal(s["image"][:, :48, :48].numpy(), tile.image)  # no augmentation
    with pytest.raises(ParameterError):
        RoadCropDataset([], crop=32)
