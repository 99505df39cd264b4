"""Tests of :mod:`linegraph2road.training`, and the Vegas training tile they (and
``bench/learn_smoke.py``) build from the real SpaceNet fixture with ``l2r prep``
(:func:`make_vegas_labels`).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))
VEGAS = FIXTURES / "spacenet_vegas"
VEGAS_TIF = VEGAS / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
VEGAS_GT = VEGAS / "AOI_2_Vegas_img0_gt.geojson"


def make_vegas_labels(out_dir: str | os.PathLike[str], *, gsd: float = 1.0, seed: int = 0) -> Path:
    """Training labels for the Vegas tile at ``gsd`` metres per pixel, made by ``l2r prep``.

    :func:`~linegraph2road.pipelines.prep.prep_osm` (``l2r prep osm --raster``) with the SpaceNet
    GeoJSON centerlines: the 1300 x 1300 GeoTIFF (EPSG:4326, about 0.27 m/px) is resampled to
    ``gsd`` (1 m: 352 x 352 px) and written beside the labels as
    ``RGB-PanSharpen_AOI_2_Vegas_img0_image.tif``.

    Returns
    -------
    Path
        ``out_dir`` (labels and image together).
    """
    from linegraph2road.pipelines.prep import prep_osm

    report = prep_osm(VEGAS_GT, out_dir, raster=VEGAS_TIF, gsd=gsd, seed=seed)
    assert report.tiles and report.tiles[0].edges > 0
    return Path(out_dir)


def make_synthetic_labels(
    out_dir: str | os.PathLike[str], *, size: int = 96, seed: int = 0
) -> Path:
    """A tiny prepared tile, fast to train on: a plus-shaped road crossing plus a diagonal on a
    ``size`` x ``size`` PNG (roads drawn bright on dark ground), labelled by the library steps
    of ``l2r prep``; image ``img.png`` recorded as ``source["image"]``. Tile id ``plus``."""
    import numpy as np

    from linegraph2road.data_prep.grid import TileGrid
    from linegraph2road.data_prep.tagged import TaggedGraph
    from linegraph2road.graph import RoadGraph
    from linegraph2road.io.raster import write_raster
    from linegraph2road.pipelines.prep import write_tile
    from linegraph2road.rasterize import render_road_mask

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = float(size)
    nodes = np.array(
        [[s / 2, 4], [s / 2, s / 2], [s / 2, s - 4], [4, s / 2], [s - 4, s / 2], [s - 8, s - 8]]
    )
    edges = np.array([[0, 1], [1, 2], [1, 3], [1, 4], [1, 5]])
    graph = RoadGraph(nodes, edges)
    road = render_road_mask(graph, (size, size), width=5)
    rng = np.random.default_rng(seed)
    image = (rng.integers(20, 60, (3, size, size)) + 150 * road[None]).astype(np.uint8)
    write_raster(out / "img.png", image)
    grid = TileGrid(size, size)
    write_tile(TaggedGraph.untagged(graph), grid, out, "plus", source={"image": "img.png"})
    return out


def make_vegas_split_labels(
    out_dir: str | os.PathLike[str], *, holdout_width: int = 96, gap: int = 16, seed: int = 0
) -> tuple[Path, Path]:
    """Two ``l2r prep`` folders from the Vegas tile at 1 m/px (352 x 352 px, the image that
    :func:`make_vegas_labels` prepares): ``train`` (the columns left of
    ``352 - holdout_width - gap``) and ``holdout`` (the last ``holdout_width`` columns), ``gap``
    px apart, so a model trained on the first never saw the second.

    Each crop of that image is written as a GeoTIFF with its own transform and labelled from the
    SpaceNet GeoJSON with the library steps of ``l2r prep`` (``roads_on_grid``, ``write_tile``).

    Returns
    -------
    (Path, Path)
        The ``train`` and ``holdout`` folders (tile ids ``vegas_train``, ``vegas_holdout``).
    """
    import json

    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from linegraph2road.data_prep.grid import TileGrid
    from linegraph2road.data_prep.sources import roads_on_grid
    from linegraph2road.georef import Georeference
    from linegraph2road.io.raster import write_raster
    from linegraph2road.pipelines.prep import write_tile
    from linegraph2road.training.dataset import find_tiles

    out = Path(out_dir)
    full = make_vegas_labels(out / "full", seed=seed)
    with rasterio.open(find_tiles(full)[0].image) as ds:
        w, h = ds.width, ds.height
        crops = {
            "train": Window(0, 0, w - holdout_width - gap, h),
            "holdout": Window(w - holdout_width, 0, holdout_width, h),
        }
        folders = []
        for name, win in crops.items():
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            shift = Affine.translation(win.col_off, win.row_off)
            geo = Georeference(ds.crs.to_wkt(), ds.transform @ shift)
            write_raster(folder / f"{name}.tif", ds.read([1, 2, 3], window=win), georef=geo)
            grid = TileGrid.from_raster(folder / f"{name}.tif")
            source = {"kind": "geojson", "geojson": VEGAS_GT.name, "raster": f"{name}.tif"}
            write_tile(roads_on_grid(VEGAS_GT, grid), grid, folder, f"vegas_{name}", seed=seed,
                       source=source)  # fmt: skip
            manifest = {"command": "geojson", "seed": seed,
                        "tiles": [{"tile_id": f"vegas_{name}", "split": ""}]}  # fmt: skip
            (folder / "manifest.json").write_text(json.dumps(manifest) + "\n", encoding="utf-8")
            folders.append(folder)
    return folders[0], folders[1]
