"""Tests of :mod:`linegraph2road.training`, and the Vegas training tile they (and
``bench/learn_smoke.py``) build from the real SpaceNet fixture.

No ``l2r prep`` command takes a GeoJSON ground truth with a raster (``l2r prep osm`` reads OSM
files only), so :func:`make_vegas_labels` calls the library steps that ``l2r prep`` runs:
:func:`~linegraph2road.data_prep.sources.roads_on_grid` and
:func:`~linegraph2road.pipelines.prep.write_tile` (``build_tile_labels`` + ``write_tile_labels``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))
VEGAS = FIXTURES / "spacenet_vegas"
VEGAS_TIF = VEGAS / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
VEGAS_GT = VEGAS / "AOI_2_Vegas_img0_gt.geojson"


def make_vegas_labels(out_dir: str | os.PathLike[str], *, gsd: float = 1.0, seed: int = 0) -> Path:
    """Training labels for the Vegas tile at ``gsd`` metres per pixel, in ``l2r prep``'s layout.

    The 1300 x 1300 GeoTIFF (EPSG:4326, about 0.27 m/px: 0.24 m across, 0.30 m down) is
    resampled by pixel averaging to ``gsd`` m/px (the model's ground sampling distance, 1 m by
    default: 352 x 352 px; the scale uses the raster's mean GSD, so pixels stay square in the
    raster's grid) and written as ``vegas.tif`` (RGB, georeferenced) in ``out_dir``; the
    SpaceNet GeoJSON centerlines are placed on that grid and labelled with the library calls
    ``l2r prep`` runs. Tile id ``vegas``; ``manifest.json`` lists it.

    Returns
    -------
    Path
        ``out_dir`` (labels and image together).
    """
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling

    from linegraph2road.data_prep.grid import TileGrid
    from linegraph2road.data_prep.sources import roads_on_grid
    from linegraph2road.georef import Georeference
    from linegraph2road.io.raster import write_raster
    from linegraph2road.pipelines.prep import write_tile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with rasterio.open(VEGAS_TIF) as ds:
        geo = Georeference.from_dataset(ds)
        assert geo is not None
        scale = geo.gsd((ds.width / 2, ds.height / 2)) / float(gsd)
        w, h = round(ds.width * scale), round(ds.height * scale)
        data = ds.read([1, 2, 3], out_shape=(3, h, w), resampling=Resampling.average)
        transform = ds.transform @ Affine.scale(ds.width / w, ds.height / h)
    write_raster(out / "vegas.tif", data, georef=Georeference(geo.crs, transform))
    grid = TileGrid.from_raster(out / "vegas.tif")
    tagged = roads_on_grid(VEGAS_GT, grid)
    source = {"kind": "geojson", "geojson": VEGAS_GT.name, "raster": "vegas.tif", "gsd": gsd}
    report = write_tile(tagged, grid, out, "vegas", seed=seed, source=source)
    manifest = {"command": "geojson", "seed": seed, "tiles": [{"tile_id": "vegas", "split": ""}]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    assert report.edges > 0
    return out


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
    """Two ``l2r prep`` folders from the Vegas tile at 1 m/px (352 x 352 px): ``train`` (the
    columns left of ``352 - holdout_width - gap``) and ``holdout`` (the last ``holdout_width``
    columns), ``gap`` px apart, so a model trained on the first never saw the second.

    Each crop of ``vegas.tif`` is written as a GeoTIFF with its own transform and labelled from
    the SpaceNet GeoJSON with the library steps of ``l2r prep`` (as :func:`make_vegas_labels`).

    Returns
    -------
    (Path, Path)
        The ``train`` and ``holdout`` folders (tile ids ``vegas_train``, ``vegas_holdout``).
    """
    import rasterio
    from rasterio.windows import Window

    from linegraph2road.data_prep.grid import TileGrid
    from linegraph2road.data_prep.sources import roads_on_grid
    from linegraph2road.georef import Georeference
    from linegraph2road.io.raster import write_raster
    from linegraph2road.pipelines.prep import write_tile

    out = Path(out_dir)
    full = make_vegas_labels(out / "full", seed=seed)
    with rasterio.open(full / "vegas.tif") as ds:
        w, h = ds.width, ds.height
        crops = {
            "train": Window(0, 0, w - holdout_width - gap, h),
            "holdout": Window(w - holdout_width, 0, holdout_width, h),
        }
        folders = []
        for name, win in crops.items():
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            geo = Georeference(ds.crs.to_wkt(), ds.window_transform(win))
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
