"""Mask reading and raster writing: round trips, scaling, nodata and every bad-input path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from linegraph2road.errors import FormatError, InputFileError, L2RError
from linegraph2road.georef import Georeference
from linegraph2road.io.raster import read_georef, read_mask, write_raster

UTM = Georeference("EPSG:32611", Affine(0.3, 0.0, 500000.15, 0.0, -0.3, 4000000.45))


def test_geotiff_round_trip_keeps_values_and_georef_exactly(tmp_path: Path) -> None:
    a = (np.arange(40 * 30) % 256).astype(np.uint8).reshape(40, 30)
    write_raster(tmp_path / "m.tif", a, georef=UTM)
    mask, georef = read_mask(tmp_path / "m.tif")
    assert mask.dtype == np.float32 and mask.shape == (40, 30)
    np.testing.assert_array_equal(mask, (a / 255.0).astype(np.float32))
    assert georef == UTM
    assert tuple(georef.transform) == tuple(UTM.transform)  # bit-exact, not just almost equal
    assert georef.crs.to_epsg() == 32611
    assert read_georef(tmp_path / "m.tif") == UTM
    assert [p.name for p in tmp_path.iterdir()] == ["m.tif"]  # no temp files or sidecars left


def test_geotiff_keeps_a_rotated_geographic_transform(tmp_path: Path) -> None:
    geo = Georeference("EPSG:4326", Affine(2.7e-6, 1e-7, -115.17, 2e-7, -2.7e-6, 36.24))
    write_raster(tmp_path / "g.tif", np.ones((3, 4, 5), dtype=np.float32), georef=geo)
    got = read_georef(tmp_path / "g.tif")
    assert got is not None and tuple(got.transform) == tuple(geo.transform)
    assert got.crs.to_epsg() == 4326


def test_large_geotiff_is_tiled_and_compressed(tmp_path: Path) -> None:
    write_raster(tmp_path / "big.tif", np.zeros((512, 600), dtype=np.uint16), georef=UTM)
    with rasterio.open(tmp_path / "big.tif") as ds:
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.compression.value == "DEFLATE"


def test_png_round_trip_has_no_georef(tmp_path: Path) -> None:
    a = np.array([[0, 255, 128], [64, 0, 255]], dtype=np.uint8)
    write_raster(tmp_path / "m.png", a)
    mask, georef = read_mask(tmp_path / "m.png")  # no NotGeoreferencedWarning escapes
    assert georef is None
    np.testing.assert_array_equal(mask, (a / 255.0).astype(np.float32))
    assert read_georef(tmp_path / "m.png") is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([[0, 65535, 32768]], dtype=np.uint16), [0.0, 1.0, 32768 / 65535]),
        (np.array([[True, False, True]]), [1.0, 0.0, 1.0]),
        (np.array([[-5, 0, 127]], dtype=np.int8), [0.0, 0.0, 1.0]),
        (np.array([[np.nan, -0.5, 0.25]], dtype=np.float64), [0.0, 0.0, 0.25]),
        (np.array([[2.0, np.inf, 1.0]], dtype=np.float32), [1.0, 1.0, 1.0]),
    ],
)
def test_dtype_scaling(tmp_path: Path, values: np.ndarray, expected: list[float]) -> None:
    write_raster(tmp_path / "m.tif", values)
    mask, _ = read_mask(tmp_path / "m.tif")
    np.testing.assert_allclose(mask[0], expected, rtol=1e-6)
    assert mask.dtype == np.float32


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_bool_masks_are_written_one_bit_and_read_back_as_0_1(tmp_path: Path, suffix: str) -> None:
    write_raster(tmp_path / f"m{suffix}", np.array([[True, False, True]]))
    mask, _ = read_mask(tmp_path / f"m{suffix}")
    np.testing.assert_array_equal(mask[0], [1.0, 0.0, 1.0])


def test_uint8_mask_of_0_and_1_reads_as_binary(tmp_path: Path) -> None:
    # A 0/1 integer band is a binary mask (how numpy users save them), not 0 and 1/255.
    write_raster(tmp_path / "m.png", np.array([[1, 0]], dtype=np.uint8))
    np.testing.assert_allclose(read_mask(tmp_path / "m.png")[0][0], [1.0, 0.0])


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_nodata_pixels_read_as_zero(tmp_path: Path, suffix: str) -> None:
    a = np.array([[200, 7, 255], [7, 100, 0]], dtype=np.uint8)
    write_raster(tmp_path / f"m{suffix}", a, nodata=7)
    mask, _ = read_mask(tmp_path / f"m{suffix}")
    expected = np.where(a == 7, 0.0, a / 255.0).astype(np.float32)
    np.testing.assert_array_equal(mask, expected)


def test_float_nodata_reads_as_zero(tmp_path: Path) -> None:
    write_raster(tmp_path / "f.tif", np.array([[0.9, -1.0, 0.6]]), georef=UTM, nodata=-1.0)
    with rasterio.open(tmp_path / "f.tif") as ds:
        assert ds.nodata == -1.0
    mask, _ = read_mask(tmp_path / "f.tif")
    np.testing.assert_allclose(mask[0], [0.9, 0.0, 0.6], rtol=1e-6)


def test_band_selection_of_a_multiband_raster(tmp_path: Path) -> None:
    a = np.stack([np.full((2, 2), v, dtype=np.uint8) for v in (0, 51, 255)])
    write_raster(tmp_path / "rgb.tif", a)
    assert read_mask(tmp_path / "rgb.tif", band=2)[0][0, 0] == pytest.approx(0.2)
    assert read_mask(tmp_path / "rgb.tif", band=3)[0][0, 0] == 1.0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_mask(tmp_path / "absent.tif")
    with pytest.raises(InputFileError):
        read_georef(tmp_path / "absent.tif")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="directory"):
        read_mask(tmp_path)


@pytest.mark.parametrize("name", ["x.txt", "fake.tif", "fake.png"])
def test_text_file_is_a_format_error(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("this is not an image\n")
    with pytest.raises(FormatError, match=f"{name}: not a raster GDAL can read"):
        read_mask(tmp_path / name)
    with pytest.raises(FormatError):
        read_georef(tmp_path / name)


def test_truncated_geotiff_is_a_format_error(tmp_path: Path) -> None:
    write_raster(tmp_path / "m.tif", np.random.default_rng(0).random((300, 300)))
    data = (tmp_path / "m.tif").read_bytes()
    (tmp_path / "m.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        read_mask(tmp_path / "m.tif")


@pytest.mark.parametrize("band", [0, 2, -1])
def test_band_out_of_range(tmp_path: Path, band: int) -> None:
    write_raster(tmp_path / "m.tif", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(FormatError, match="has 1 band"):
        read_mask(tmp_path / "m.tif", band=band)


def test_errors_are_domain_errors() -> None:
    assert issubclass(InputFileError, L2RError) and issubclass(FormatError, L2RError)


@pytest.mark.parametrize(
    ("name", "array", "kwargs", "match"),
    [
        ("m.jpg", np.zeros((2, 2), np.uint8), {}, "use .tif or .png"),
        ("m.tif", np.zeros((2, 2, 2, 2), np.uint8), {}, "shape"),
        ("m.tif", np.zeros((0, 2), np.uint8), {}, "shape"),
        ("m.tif", np.zeros((2, 2), np.complex64), {}, "dtype"),
        ("m.png", np.zeros((2, 2), np.float32), {}, "uint8 or uint16"),
        ("m.png", np.zeros((2, 2), np.uint8), {"georef": UTM}, "georeference"),
    ],
)
def test_write_rejects_what_the_format_cannot_hold(
    tmp_path: Path, name: str, array: np.ndarray, kwargs: dict, match: str
) -> None:
    with pytest.raises(FormatError, match=match):
        write_raster(tmp_path / name, array, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_raster(tmp_path / "old.tif", np.full((4, 4), 255, dtype=np.uint8))
    before = (tmp_path / "old.tif").read_bytes()

    def broken_write(self: object, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(rasterio.io.DatasetWriter, "write", broken_write)
    monkeypatch.setattr(rasterio.io.BufferedDatasetWriter, "write", broken_write)
    for name in ("new.tif", "old.tif", "new.png"):
        with pytest.raises(OSError, match="disk full"):
            write_raster(tmp_path / name, np.zeros((4, 4), dtype=np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.tif"]
    assert (tmp_path / "old.tif").read_bytes() == before
