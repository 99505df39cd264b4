"""Reading road masks and writing rasters (GeoTIFF and PNG), through rasterio.

A mask comes back as ``(H, W) float32`` in ``[0, 1]`` with the raster's
:class:`~linegraph2road.georef.Georeference` (or None for a plain image), so
``mask_to_graph(mask, georef=georef)`` yields a graph on the raster's own pixel grid: pixel
``(row, col)`` of the file is the point ``(x, y) = (col + 0.5, row + 0.5)`` of the graph.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.crs import CRS as RioCRS
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from linegraph2road.errors import FormatError, InputFileError
from linegraph2road.georef import Georeference
from linegraph2road.io._atomic import atomic_path

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from rasterio.io import DatasetReader

__all__ = ["read_georef", "read_mask", "write_raster"]

_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG"}
_TILE = 256  # GeoTIFF block size; rasters of at least 2 blocks a side are written tiled


@contextlib.contextmanager
def _open(path: str | os.PathLike[str]) -> Iterator[DatasetReader]:
    """Open a raster for reading, turning every failure into a domain error.

    Plain images (PNG, JPEG) have no georeference: rasterio's NotGeoreferencedWarning is
    expected for them and suppressed here (and only here).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, expected a raster file (.tif, .png)")
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{p}: permission denied")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            ds = rasterio.open(p)
        except RasterioIOError as exc:
            raise FormatError(f"{p}: not a raster GDAL can read ({exc})") from exc
        with ds:
            if ds.width == 0 or ds.height == 0:
                raise FormatError(f"{p}: empty raster ({ds.width} x {ds.height} pixels)")
            yield ds


def read_georef(path: str | os.PathLike[str]) -> Georeference | None:
    """The georeference of a raster file, without reading its pixels.

    Returns
    -------
    Georeference or None
        None when the file has no CRS or only the identity transform (a plain PNG).

    Raises
    ------
    InputFileError
        The path is missing, a directory or unreadable.
    FormatError
        The file is not a raster GDAL can read.
    """
    with _open(path) as ds:
        return Georeference.from_dataset(ds)


def read_mask(
    path: str | os.PathLike[str], *, band: int = 1
) -> tuple[NDArray[np.float32], Georeference | None]:
    """Read one band of a mask raster as road probabilities.

    Parameters
    ----------
    path : str or PathLike
        GeoTIFF, PNG or any single- or multi-band raster GDAL reads.
    band : int, default 1
        1-based band index.

    Returns
    -------
    mask : (H, W) float32 in [0, 1]
        Integer rasters are divided by their type's maximum (uint8 by 255, uint16 by 65535; a
        1-bit GeoTIFF by 1), negative values clipped to 0; float rasters are clipped to [0, 1]
        with NaN -> 0. Pixels that are nodata (or masked by an alpha band / mask band) are 0.
        An integer band holding only 0 and 1 is a binary mask (as numpy and many tools save
        them) and reads as 0.0 / 1.0, not 0 / 1/255.
    georef : Georeference or None
        As :func:`read_georef`.

    Raises
    ------
    InputFileError
        The path is missing, a directory or unreadable.
    FormatError
        Not a raster GDAL can read, an empty raster, a corrupt one, a complex-valued band, or
        ``band`` out of range.
    """
    with _open(path) as ds:
        if not isinstance(band, int | np.integer) or not 1 <= band <= ds.count:
            raise FormatError(
                f"{path}: band {band!r} requested but the raster has {ds.count} band(s) "
                f"(bands count from 1)"
            )
        band = int(band)
        try:
            data = ds.read(band)
            flags = ds.mask_flag_enums[band - 1]
            valid = None if MaskFlags.all_valid in flags else ds.read_masks(band) > 0
        except RasterioIOError as exc:
            raise FormatError(f"{path}: corrupt raster data in band {band} ({exc})") from exc
        nbits = ds.tags(band, ns="IMAGE_STRUCTURE").get("NBITS")
        georef = Georeference.from_dataset(ds)
    mask = _to_unit(data, nbits, path)
    if valid is not None:
        mask[~valid] = 0.0
    return mask, georef


def _to_unit(data: NDArray[Any], nbits: str | None, path: Any) -> NDArray[np.float32]:
    """Scale a raster band to float32 [0, 1] (see :func:`read_mask`)."""
    if data.dtype == np.bool_:
        return data.astype(np.float32)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        top = float(info.max)
        if data.size and int(data.max()) == 1 and int(data.min()) >= 0:
            top = 1.0  # a 0/1 binary mask saved in a wider integer type
        if nbits is not None and nbits.isdigit() and 0 < int(nbits) < info.bits:
            top = float((1 << int(nbits)) - 1)
        out = data.astype(np.float64) / top
        return np.clip(out, 0.0, 1.0).astype(np.float32)
    if np.issubdtype(data.dtype, np.floating):
        out = np.nan_to_num(data.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(out, 0.0, 1.0)
    raise FormatError(f"{path}: a mask band must be integer or real, got {data.dtype}")


def write_raster(
    path: str | os.PathLike[str],
    array: ArrayLike,
    *,
    georef: Georeference | None = None,
    nodata: float | None = None,
) -> None:
    """Write an array as a GeoTIFF (``.tif``/``.tiff``) or PNG (``.png``), atomically.

    Parameters
    ----------
    path : str or PathLike
        Output file; its extension picks the format. Nothing is left at ``path`` (and an
        existing file there is untouched) if the write fails.
    array : (H, W) or (C, H, W) array
        Pixel values, row-major with row 0 at the top. bool is written as 1-bit 0/1 (which
        :func:`read_mask` reads back as 0.0/1.0 and image viewers show black/white). GeoTIFF takes
        any real dtype GDAL supports; PNG only uint8 or uint16 with 1-4 bands.
    georef : Georeference or None
        Written as the GeoTIFF's CRS and transform. PNG cannot hold one: passing it raises.
    nodata : float or None
        Nodata value recorded in the file (GeoTIFF; for PNG, GDAL's transparent colour).

    GeoTIFFs are deflate-compressed (with a predictor), tiled 256 x 256 when at least 512 px a
    side, and BigTIFF when needed.

    Raises
    ------
    FormatError
        Unknown extension, wrong array shape or dtype for the format, or a georef for a PNG.
    """
    p = Path(path)
    driver = _DRIVERS.get(p.suffix.lower())
    if driver is None:
        raise FormatError(
            f"{p}: cannot write rasters as {p.suffix or 'no extension'!r}; use .tif or .png"
        )
    arr = np.asarray(array)
    one_bit = arr.dtype == np.bool_
    if one_bit:
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or 0 in arr.shape:
        raise FormatError(
            f"{p}: expected an (H, W) or (C, H, W) array, got shape {np.shape(array)}"
        )
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise FormatError(f"{p}: cannot write an array of dtype {arr.dtype}")
    count, height, width = arr.shape
    profile: dict[str, Any] = {
        "driver": driver,
        "width": width,
        "height": height,
        "count": count,
        "dtype": arr.dtype.name,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    if one_bit:
        profile["nbits"] = 1
    if driver == "PNG":
        if arr.dtype not in (np.uint8, np.uint16) or count > 4:
            raise FormatError(
                f"{p}: PNG holds 1-4 bands of uint8 or uint16, got {count} band(s) of {arr.dtype};"
                " scale the array (e.g. (prob * 255).astype('uint8')) or write a .tif"
            )
        if georef is not None:
            raise FormatError(f"{p}: PNG cannot store a georeference; write a .tif instead")
    else:
        profile.update(compress="deflate", bigtiff="IF_SAFER")
        if np.issubdtype(arr.dtype, np.floating):
            profile["predictor"] = 3
        elif arr.dtype.itemsize <= 4 and not one_bit:
            profile["predictor"] = 2
        if min(height, width) >= 2 * _TILE:
            profile.update(tiled=True, blockxsize=_TILE, blockysize=_TILE)
    if georef is not None:
        epsg = georef.crs.to_epsg()
        profile["crs"] = RioCRS.from_epsg(epsg) if epsg else RioCRS.from_wkt(georef.crs.to_wkt())
        profile["transform"] = georef.transform
    with atomic_path(p) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        # No .aux.xml sidecars: they would be named after the temporary file.
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
