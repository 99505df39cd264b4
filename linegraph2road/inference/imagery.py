"""Imagery for the model: bands, bit depth, nodata, ground sampling distance (SPEC "Data flow" 1).

A :class:`RasterSource` opens a raster once and serves windows of the *processed* image: RGB
``uint8`` at the model's ground sampling distance, read window by window with rasterio (never the
whole raster), so memory does not grow with the raster.

* **Bands**: 1 band -> grey repeated to RGB; 2 bands -> grey + alpha; 3 bands -> RGB; 4 or more ->
  the bands whose colour interpretation is red, green, blue (else the first three); an alpha band
  is never image data, it only marks validity.
* **Bit depth**: ``uint8`` is used as is; any other type (``uint16``, ``int16``, float) gets a
  per-band 2-98 % percentile stretch to ``uint8``; the percentiles come from a decimated read
  (at most :data:`STRETCH_SAMPLE` pixels a side), over valid pixels only.
* **Validity**: GDAL's mask (nodata value, alpha band or internal mask) marks invalid pixels;
  they read as 0 and come with ``valid = False`` so the extraction masks them out.
* **Resampling**: to ``gsd`` metres per pixel (default 1.0) from the raster's CRS and transform;
  average resampling when shrinking, bilinear when enlarging, nearest for the validity mask. A
  raster without georeference is taken as already at the model's GSD
  (:attr:`RasterSource.notes` says so). :attr:`RasterSource.georef` is the processed grid's
  georeference (the raster's transform scaled), so graphs in processed pixels map to the right
  place on the Earth.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from linegraph2road.errors import FormatError, InputFileError, ParameterError
from linegraph2road.georef import Georeference

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from rasterio.io import DatasetReader

__all__ = ["STRETCH_SAMPLE", "RasterSource", "stretch_to_uint8"]

#: Side in pixels of the decimated read used for the percentile stretch.
STRETCH_SAMPLE = 1024
#: GDAL block cache while reading, MB: GDAL's default (5 % of RAM) would let the cache grow
#: with the raster (hundreds of MB for an 8192 x 8192 scene); windows need a few MB.
GDAL_CACHE_MB = 64
#: Relative GSD difference below which the raster is used at its own resolution.
GSD_TOLERANCE = 1e-3


def stretch_to_uint8(
    data: NDArray[Any], low: NDArray[np.float64], high: NDArray[np.float64]
) -> NDArray[np.uint8]:
    """Linear stretch of ``(C, H, W)`` values: ``low`` -> 0, ``high`` -> 255, clipped, rounded.

    ``low``/``high`` are ``(C,)`` per band; ``high <= low`` is treated as ``high = low + 1``.
    """
    lo = np.asarray(low, dtype=np.float64)[:, None, None]
    hi = np.maximum(np.asarray(high, dtype=np.float64)[:, None, None], lo + 1e-12)
    hi = np.where(hi - lo < 1e-9, lo + 1.0, hi)
    out = (data.astype(np.float64) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class RasterSource:
    """A raster served as processed RGB windows (see the module docstring).

    Parameters
    ----------
    path : str or PathLike
        GeoTIFF, PNG, JPEG or any raster GDAL reads.
    gsd : float or None
        Target ground sampling distance in metres per pixel (default 1.0, the model's). None keeps
        the raster's own resolution.

    Attributes
    ----------
    shape : (int, int)
        ``(height, width)`` of the processed image in pixels.
    georef : Georeference or None
        Georeference of the processed grid (None when the raster has none).
    source_shape : (int, int)
        ``(height, width)`` of the raster file.
    scale : (float, float)
        ``(sx, sy)`` raster pixels per processed pixel along x and y (1.0 when not resampled).
    source_gsd : float or None
        The raster's ground sampling distance in metres per pixel (None without georeference).
    bands : tuple of int
        The 1-based raster bands read as R, G, B.
    stretch : (low, high) or None
        Per-band ``(C,)`` float64 2 % and 98 % percentiles when the raster is not ``uint8``.
    notes : list of str
        What was done to the raster that the user should know (for the CLI to print).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, gsd: float | None = 1.0) -> None:
        self.path = Path(path)
        self.notes: list[str] = []
        if gsd is not None and (not np.isfinite(gsd) or gsd <= 0):
            raise ParameterError(f"gsd must be a positive number of metres per pixel, got {gsd}")
        self._ds = _open(self.path)
        try:
            self._setup(gsd)
        except BaseException:
            self._ds.close()
            raise

    # -- set-up ---------------------------------------------------------------------------------
    def _setup(self, gsd: float | None) -> None:
        ds = self._ds
        self.source_shape = (int(ds.height), int(ds.width))
        self.bands = self._pick_bands()
        src_georef = Georeference.from_dataset(ds)
        src_gsd = None if src_georef is None else src_georef.gsd((ds.width / 2, ds.height / 2))
        self.source_gsd = src_gsd
        height, width = self.source_shape
        if src_gsd is None:
            self.notes.append(
                f"{self.path.name} has no georeference: taken as already at the model's "
                f"{gsd or 1.0:g} m/px, output in pixel coordinates"
            )
        elif gsd is not None and abs(src_gsd / gsd - 1.0) > GSD_TOLERANCE:
            factor = gsd / src_gsd
            height = max(1, round(ds.height / factor))
            width = max(1, round(ds.width / factor))
            self.notes.append(
                f"resampled from {src_gsd:.3g} m/px ({ds.width} x {ds.height}) to "
                f"{gsd:g} m/px ({width} x {height})"
            )
        self.shape = (height, width)
        self.scale = (ds.width / width, ds.height / height)
        self.georef = None
        if src_georef is not None:
            transform = src_georef.transform @ Affine.scale(*self.scale)
            self.georef = Georeference(src_georef.crs, transform)
        self._resampling = (
            Resampling.average if min(self.scale) > 1.0 + GSD_TOLERANCE else Resampling.bilinear
        )
        self.stretch: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        if np.dtype(ds.dtypes[self.bands[0] - 1]) != np.uint8:
            self.stretch = self._percentiles()
            self.notes.append(
                f"{ds.dtypes[0]} bands stretched to uint8 between their 2 % and 98 % percentiles"
            )

    def _pick_bands(self) -> tuple[int, int, int]:
        ds = self._ds
        interp = list(ds.colorinterp)
        data = [i + 1 for i, c in enumerate(interp) if c != ColorInterp.alpha]
        if ds.count == 2 and interp[1] != ColorInterp.alpha:
            raise FormatError(
                f"{self.path.name}: 2 bands but the second is not alpha ({interp[1].name}); give "
                "a 1-band grey, 3-band RGB or 4-band RGBA image"
            )
        if not data:
            raise FormatError(f"{self.path.name}: only alpha bands, no image data")
        if len(data) < 3:
            return (data[0], data[0], data[0])
        rgb = [
            interp.index(c) + 1
            for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
            if c in interp
        ]
        picked = (rgb[0], rgb[1], rgb[2]) if len(rgb) == 3 else (data[0], data[1], data[2])
        if len(data) > 3:
            self.notes.append(f"{ds.count} bands: bands {picked} used as R, G, B")
        dtypes = {ds.dtypes[b - 1] for b in picked}
        if len(dtypes) > 1:
            raise FormatError(f"{self.path.name}: bands {picked} differ in type ({dtypes})")
        return picked

    def _percentiles(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        ds = self._ds
        factor = max(1.0, max(ds.height, ds.width) / STRETCH_SAMPLE)
        shape = (max(1, round(ds.height / factor)), max(1, round(ds.width / factor)))
        uniq = sorted(set(self.bands))
        try:
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
                data = ds.read(uniq, out_shape=(len(uniq), *shape), resampling=Resampling.nearest)
                mask = ds.read_masks(uniq[0], out_shape=shape, resampling=Resampling.nearest)
            valid = mask > 0
        except RasterioIOError as exc:
            raise FormatError(f"{self.path.name}: corrupt raster data ({exc})") from exc
        low, high = np.zeros(3), np.ones(3)
        for k, band in enumerate(self.bands):
            values = data[uniq.index(band)][valid].astype(np.float64)
            values = values[np.isfinite(values)]
            if values.size:
                low[k], high[k] = np.percentile(values, [2.0, 98.0])
        return low, high

    # -- reading --------------------------------------------------------------------------------
    def read(
        self,
        row0: int,
        col0: int,
        height: int,
        width: int,
        *,
        out_shape: tuple[int, int] | None = None,
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """A window of the processed image.

        Parameters
        ----------
        row0, col0 : int
            Top-left pixel of the window in the processed image; ``row0 >= 0``, ``col0 >= 0``.
        height, width : int
            Window size in pixels; the window may reach past the image (that part reads as 0 and
            invalid).
        out_shape : (int, int) or None
            ``(out_height, out_width)`` to read the window at a lower resolution (a map tile of
            a zoomed-out view): the window is resampled as a whole, GDAL using the raster's
            overviews when it has them. None (default) reads at ``(height, width)``.

        Returns
        -------
        image : (3, out_height, out_width) uint8
            RGB.
        valid : (out_height, out_width) bool
            False at nodata / transparent pixels and outside the image.
        """
        oh, ow = (height, width) if out_shape is None else (int(out_shape[0]), int(out_shape[1]))
        if out_shape is not None and min(oh, ow, height, width) <= 0:
            raise ParameterError(
                f"window {height} x {width} read at {oh} x {ow}: sizes must be positive"
            )
        image = np.zeros((3, oh, ow), dtype=np.uint8)
        valid = np.zeros((oh, ow), dtype=bool)
        h = min(height, self.shape[0] - row0)
        w = min(width, self.shape[1] - col0)
        if row0 < 0 or col0 < 0 or h <= 0 or w <= 0:
            return image, valid
        sx, sy = self.scale
        win = Window(col0 * sx, row0 * sy, w * sx, h * sy)
        # the image part of the window, at the output scale (at least one pixel a side)
        h = h if oh == height else min(oh, max(1, -(-h * oh // height)))
        w = w if ow == width else min(ow, max(1, -(-w * ow // width)))
        shrink = oh < height or ow < width
        resampling = Resampling.average if shrink else self._resampling
        uniq = sorted(set(self.bands))
        try:
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
                data = self._ds.read(
                    uniq, window=win, out_shape=(len(uniq), h, w), resampling=resampling
                )
                mask = self._ds.read_masks(
                    uniq[0], window=win, out_shape=(h, w), resampling=Resampling.nearest
                )
        except RasterioIOError as exc:
            raise FormatError(f"{self.path.name}: corrupt raster data ({exc})") from exc
        rgb = np.stack([data[uniq.index(b)] for b in self.bands])
        if self.stretch is not None:
            rgb = stretch_to_uint8(np.nan_to_num(rgb.astype(np.float64)), *self.stretch)
        ok = mask > 0
        image[:, :h, :w] = np.where(ok, rgb, 0)
        valid[:h, :w] = ok
        return image, valid

    def read_all(self) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """The whole processed image ``(3, H, W) uint8`` and ``(H, W)`` validity (small images)."""
        return self.read(0, 0, *self.shape)

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the raster file."""
        self._ds.close()

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RasterSource({self.path.name!r}, shape={self.shape}, scale={self.scale}, "
            f"bands={self.bands}, stretch={self.stretch is not None})"
        )


def _open(path: Path) -> DatasetReader:
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, expected an image (.tif, .png)")
    with warnings.catch_warnings():
        # Plain images (PNG, JPEG) have no georeference; that is expected and reported in notes.
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            ds = rasterio.open(path)
        except RasterioIOError as exc:
            raise FormatError(f"{path}: not an image GDAL can read ({exc})") from exc
    if ds.width == 0 or ds.height == 0:
        ds.close()
        raise FormatError(f"{path}: empty raster ({ds.width} x {ds.height} pixels)")
    return ds
