from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.inference import RasterSource
from linegraph2road.io.raster import write_raster

UTM = "EPSG:32611"


def write_tif(path: Path, data: np.ndarray, *, gsd: float | None = 1.0, **extra: Any) -> Path:
    """Write a (C, H, W) array as a GeoTIFF (UTM, ``gsd`` m/px) or a plain one (gsd None)."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        **extra,
    }
    if gsd is not None:
        profile.update(crs=UTM, transform=Affine(gsd, 0, 500000.0, 0, -gsd, 4000000.0))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_grey_becomes_rgb(tmp_path: Path) -> None:
    grey = np.arange(48, dtype=np.uint8).reshape(1, 6, 8)
    with RasterSource(write_tif(tmp_path / "g.tif", grey)) as src:
        image, valid = src.read_all()
    assert image.shape == (3, 6, 8) and valid.all()
    assert all(np.array_equal(image[c], grey[0]) for c in range(3))


def test_alpha_band_is_validity_not_colour(tmp_path: Path) -> None:
    rgba = np.full((4, 8, 8), 200, dtype=np.uint8)
    rgba[3, :, :3] = 0  # transparent left columns
    with RasterSource(write_tif(tmp_path / "a.tif", rgba)) as src:
        assert src.bands == (1, 2, 3)
        image, valid = src.read_all()
    assert not valid[:, :3].any() and valid[:, 3:].all()
    assert (image[:, :, :3] == 0).all() and (image[:, :, 3:] == 200).all()


def test_uint16_is_stretched_between_2_and_98_percent(tmp_path: Path) -> None:
    values = np.linspace(1000, 3000, 100 * 100).reshape(100, 100)
    data = np.stack([values, values, values * 2]).astype(np.uint16)
    with RasterSource(write_tif(tmp_path / "u16.tif", data)) as src:
        assert src.stretch is not None
        low, high = src.stretch
        image, _ = src.read_all()
    assert low[0] == pytest.approx(np.percentile(values, 2), rel=1e-3)
    assert high[2] == pytest.approx(np.percentile(values * 2, 98), rel=1e-3)
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
    # about 2 % of pixels below the low percentile -> 0
    assert (image[0] == 0).mean() == pytest.approx(0.02, abs=0.005)


def test_nodata_pixels_are_zero_and_invalid(tmp_path: Path) -> None:
    data = np.full((3, 10, 10), 90, dtype=np.uint8)
    data[:, 4:6, :] = 7
    with RasterSource(write_tif(tmp_path / "nd.tif", data, nodata=7)) as src:
        image, valid = src.read_all()
    assert not valid[4:6].any() and valid[:4].all()
    assert (image[:, 4:6] == 0).all()


def test_half_metre_raster_is_resampled_to_one_metre(tmp_path: Path) -> None:
    data = np.zeros((3, 64, 80), dtype=np.uint8)
    data[:, 20:24, :] = 255  # a horizontal road, rows 20-23 at 0.5 m -> rows 10-11 at 1 m
    with RasterSource(write_tif(tmp_path / "half.tif", data, gsd=0.5), gsd=1.0) as src:
        assert src.shape == (32, 40)
        assert src.georef is not None
        assert src.georef.gsd() == pytest.approx(1.0)
        image, valid = src.read_all()
        # a processed pixel corner lands on the raster's own coordinates of that point
        src_pt = Affine(0.5, 0, 500000.0, 0, -0.5, 4000000.0) @ (2 * 7.0, 2 * 5.0)
        assert tuple(src.georef.pixel_to_crs([[7.0, 5.0]])[0]) == pytest.approx(src_pt)
        # windows read separately equal the whole image read at once
        part, _ = src.read(8, 12, 6, 9)
    assert valid.all()
    assert (image[0, 10:12] == 255).all() and (image[0, :9] == 0).all()
    assert np.array_equal(part, image[:, 8:14, 12:21])


def test_plain_png_is_taken_at_model_gsd(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    write_raster(path, np.ones((3, 4, 5), np.uint8))
    with RasterSource(path) as src:
        assert src.georef is None and src.shape == (4, 5)
        assert any("no georeference" in n for n in src.notes)


def test_read_past_the_border_pads_invalid(tmp_path: Path) -> None:
    with RasterSource(write_tif(tmp_path / "s.tif", np.full((3, 5, 5), 9, np.uint8))) as src:
        image, valid = src.read(0, 0, 8, 8)
    assert valid[:5, :5].all() and not valid[5:].any() and not valid[:, 5:].any()
    assert (image[:, 5:] == 0).all() and (image[:, :5, :5] == 9).all()


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        RasterSource(tmp_path / "missing.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(FormatError):
        RasterSource(tmp_path / "junk.tif")
    two = write_tif(tmp_path / "two.tif", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(FormatError, match="2 bands"):
        RasterSource(two)


def test_read_at_lower_resolution_is_the_block_average(tmp_path: Path) -> None:
    """out_shape (map tiles of a zoomed-out view): 2x2 block means; the part past the image is
    zero and invalid; a tile cut by the image border keeps its scale."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 8, 10)).astype(np.uint8)
    with RasterSource(write_tif(tmp_path / "r.tif", data)) as src:
        image, valid = src.read(0, 0, 8, 8, out_shape=(4, 4))
        edge, edge_valid = src.read(0, 8, 8, 8, out_shape=(4, 4))
        with pytest.raises(ParameterError):
            src.read(0, 0, 8, 8, out_shape=(0, 4))
    expect = data[:, :8, :8].reshape(3, 4, 2, 4, 2).astype(float).mean(axis=(2, 4))
    assert np.abs(image.astype(float) - expect).max() <= 1.0 and valid.all()
    cut = data[:, :, 8:10].reshape(3, 4, 2, 1, 2).astype(float).mean(axis=(2, 4))
    assert np.abs(edge[:, :, :1].astype(float) - cut).max() <= 1.0
    assert edge_valid[:, :1].all() and not edge_valid[:, 1:].any() and not edge[:, :, 1:].any()
